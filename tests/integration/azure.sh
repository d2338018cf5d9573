#!/bin/sh
# azure.sh - integration tests of the Azure Blob store backend (transfer/az.c)
# through build/tools/xfer_tool (and once through spotrun push/pull) against
# Azurite, which checks SharedKey and SAS signatures strictly.  Azurite is
# installed into the repo's node_modules when missing (~1 min, once).  The
# independent client is tests/fixtures/azure-sharedkey/azsign.py (Python
# stdlib, the same oracle as the unit fixture): it creates the containers
# (so every run also proves Azurite accepts that oracle's signatures), makes
# account SAS tokens, and lists committed blocks; plain curl with a SAS
# token reads back what xfer_tool wrote.
# xfer_tool exit codes: 2 not found, 3 exists, else the EX_* code.
. "$(dirname "$0")/../lib.sh"

: "${SPOTRUN_BUILD:=$SPOTRUN_TOP/build}"
TOOL=$SPOTRUN_BUILD/tools/xfer_tool
AZSIGN=$SPOTRUN_TOP/tests/fixtures/azure-sharedkey/azsign.py
AZURITE=$SPOTRUN_TOP/node_modules/.bin/azurite-blob
SHARED=$(mktemp -d "${TMPDIR:-/tmp}/sr-az.XXXXXX")
# Azurite's published development key (not a secret)
DEVKEY=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==
WRONGKEY=$(printf 'not the devstoreaccount1 key, but valid base64 bytes!' | base64 -w0)
export AZURE_STORAGE_ACCOUNT=devstoreaccount1 AZURE_STORAGE_KEY=$DEVKEY SPOTRUN_RETRY_BASE_MS=20
unset AZURE_STORAGE_SAS_TOKEN AZURE_STORAGE_CONNECTION_STRING 2>/dev/null || true

cleanup() {
	[ -f "$SHARED/azurite.pid" ] && kill "$(cat "$SHARED/azurite.pid")" 2>/dev/null
	rm -rf "$SHARED"
}
trap cleanup EXIT INT TERM

if [ ! -x "$AZURITE" ]; then
	(cd "$SPOTRUN_TOP" && npm install --no-audit --no-fund) \
		>"$SHARED/npm.log" 2>&1 || { echo "FAIL $SUITE/setup: npm install azurite failed"; exit 1; }
fi

# The server binary itself (so $! is its pid), from $SHARED: Azurite writes
# its files into the current folder (--location cannot go with
# --inMemoryPersistence).
cd "$SHARED"
"$AZURITE" --blobHost 127.0.0.1 --blobPort 0 --inMemoryPersistence --disableTelemetry \
	--skipApiVersionCheck >"$SHARED/azurite.log" 2>&1 &
echo $! >"$SHARED/azurite.pid"
cd "$SPOTRUN_TOP"
wait_for "grep -q 'listens on http://127.0.0.1:' '$SHARED/azurite.log'" 30 ||
	{ echo "FAIL $SUITE/setup: azurite did not start: $(cat "$SHARED/azurite.log")"; exit 1; }
EP=$(sed -n 's|.*listens on \(http://127.0.0.1:[0-9]*\).*|\1|p' "$SHARED/azurite.log" | head -1)/devstoreaccount1
for c in ckpt other; do
	python3 "$AZSIGN" mkcontainer "$EP" $c >/dev/null ||
		{ echo "FAIL $SUITE/setup: cannot create container '$c' (SharedKey of azsign.py refused?)"; exit 1; }
done
SAS=$(python3 "$AZSIGN" sas)
SIG=$(echo "$SAS" | sed -n 's/.*sig=\([^&]*\).*/\1/p')

xt() { "$TOOL" -e "$EP" "$@"; }
# blob URL + SAS for curl, the independent reader
blob_url() { echo "$EP/$1?$SAS"; }

t_put_get_head_range_delete() {
	printf 'hello, store\n' >small
	expect_rc 0 xt az://devstoreaccount1/ckpt/p1 put dir/a.txt small
	expect_rc 0 xt az://devstoreaccount1/ckpt/p1 get dir/a.txt
	assert_eq "$OUT" "hello, store"
	expect_rc 0 xt az://devstoreaccount1/ckpt/p1 head dir/a.txt
	assert_eq "$OUT" 13
	expect_rc 0 xt az://devstoreaccount1/ckpt/p1 range dir/a.txt 7 5
	assert_eq "$OUT" "store"
	assert_eq "$(curl -sf "$(blob_url ckpt/p1/dir/a.txt)")" "hello, store" "curl reading the blob"
	expect_rc 0 xt az://devstoreaccount1/ckpt/p1 delete dir/a.txt
	expect_rc 2 xt az://devstoreaccount1/ckpt/p1 get dir/a.txt
	expect_rc 2 xt az://devstoreaccount1/ckpt/p1 head dir/a.txt
	expect_rc 2 xt az://devstoreaccount1/ckpt/p1 delete dir/a.txt
}

t_not_found_is_2_and_missing_container_is_78() {
	expect_rc 2 xt az://devstoreaccount1/ckpt/p2 get missing.json
	assert_eq "$ERR" ""
	expect_rc 2 xt az://devstoreaccount1/ckpt/p2 range missing.bin 0 10
	expect_rc 78 xt az://devstoreaccount1/nosuch/p head k
	assert_contains "$ERR" "container 'nosuch' not found"
	expect_rc 78 xt az://devstoreaccount1/nosuch/p list
}

t_special_key_names() {
	echo utf >u
	expect_rc 0 xt az://devstoreaccount1/ckpt/sp put "a b/é+x=1&y.json" u
	expect_rc 0 xt az://devstoreaccount1/ckpt/sp get "a b/é+x=1&y.json"
	assert_eq "$OUT" utf
	expect_rc 0 xt az://devstoreaccount1/ckpt/sp list
	assert_eq "$OUT" "a b/é+x=1&y.json 4"
}

t_blocks_20mb_read_back_by_curl() {
	head -c 20000000 /dev/urandom >big
	expect_rc 0 xt -w 4 -p 5242880 az://devstoreaccount1/ckpt/bl upload data.tar.zst <big
	curl -sf -o back "$(blob_url ckpt/bl/data.tar.zst)" || fail "curl could not read the blob"
	cmp big back || fail "block blob differs from what was uploaded"
	n=$(curl -sf "$(blob_url ckpt/bl/data.tar.zst)&comp=blocklist&blocklisttype=committed" |
		python3 -c 'import sys, xml.etree.ElementTree as E; print(len(E.parse(sys.stdin).findall("CommittedBlocks/Block")))')
	assert_eq "$n" 4 "committed blocks of 5 MiB"
	# ranged reads: one big (split into parallel GETs), one across a block boundary
	expect_rc 0 xt -w 4 az://devstoreaccount1/ckpt/bl range data.tar.zst 1000 15000000
	tail -c +1001 big | head -c 15000000 >want
	cmp "$T/out" want || fail "big range differs"
	expect_rc 0 xt az://devstoreaccount1/ckpt/bl range data.tar.zst 5242870 20
	tail -c +5242871 big | head -c 20 >want2
	cmp "$T/out" want2 || fail "range across a block boundary differs"
	expect_rc 0 xt az://devstoreaccount1/ckpt/bl pread data.tar.zst 5
	cmp "$T/out" big || fail "parallel ranged reads differ"
	expect_rc 65 xt az://devstoreaccount1/ckpt/bl range data.tar.zst 19999990 20
}

t_small_stream_is_one_put_blob() {
	head -c 3000000 /dev/urandom >s
	expect_rc 0 xt az://devstoreaccount1/ckpt/sp1 upload one.bin <s
	expect_rc 0 xt az://devstoreaccount1/ckpt/sp1 get one.bin
	cmp "$T/out" s || fail "small upload differs"
	: >empty
	expect_rc 0 xt az://devstoreaccount1/ckpt/sp1 upload empty.bin <empty
	expect_rc 0 xt az://devstoreaccount1/ckpt/sp1 head empty.bin
	assert_eq "$OUT" 0
	expect_rc 0 xt az://devstoreaccount1/ckpt/sp1 get empty.bin
	assert_eq "$OUT" ""
}

t_abort_leaves_nothing_visible() {
	head -c 12000000 /dev/urandom >big
	expect_rc 0 xt -w 2 az://devstoreaccount1/ckpt/ab upload-abort data.tar.zst 11000000 <big
	expect_rc 2 xt az://devstoreaccount1/ckpt/ab head data.tar.zst
	expect_rc 0 xt az://devstoreaccount1/ckpt/ab list
	assert_eq "$OUT" ""
}

t_list_paginates() {
	echo x >x
	for k in ckpt/0003/m ckpt/0001/m ckpt/0002/m ckpt/0002/data job.json; do
		expect_rc 0 xt az://devstoreaccount1/ckpt/lp/job put "$k" x
	done
	expect_rc 0 xt az://devstoreaccount1/ckpt/lp put other.json x
	expect_rc 0 env SPOTRUN_AZ_LIST_MAX_RESULTS=2 "$TOOL" -e "$EP" -v az://devstoreaccount1/ckpt/lp/job list
	assert_eq "$OUT" "$(printf 'ckpt/0001/m 2\nckpt/0002/data 2\nckpt/0002/m 2\nckpt/0003/m 2\njob.json 2')"
	assert_contains "$ERR" "listed 5 keys in 3 pages"
	expect_rc 0 env SPOTRUN_AZ_LIST_MAX_RESULTS=2 "$TOOL" -e "$EP" az://devstoreaccount1/ckpt/lp/job list ckpt/0002/
	assert_eq "$OUT" "$(printf 'ckpt/0002/data 2\nckpt/0002/m 2')"
	expect_rc 0 xt az://devstoreaccount1/ckpt/lp/none list
	assert_eq "$OUT" ""
}

t_create_only_conflict() {
	echo first >a; echo second >b
	expect_rc 0 xt az://devstoreaccount1/ckpt/co create ckpt/1/manifest.json a
	expect_rc 3 xt az://devstoreaccount1/ckpt/co create ckpt/1/manifest.json b
	expect_rc 0 xt az://devstoreaccount1/ckpt/co get ckpt/1/manifest.json
	assert_eq "$OUT" "first"
}

t_wrong_key_is_77_without_secrets() {
	echo d >d
	expect_rc 77 env AZURE_STORAGE_KEY="$WRONGKEY" "$TOOL" -v -e "$EP" az://devstoreaccount1/ckpt/wk put k d
	assert_contains "$ERR" "HTTP 403: Authorization"  # AuthorizationFailure (Azurite), AuthenticationFailed (Azure)
	assert_not_contains "$ERR" "$WRONGKEY" "stderr"
	assert_not_contains "$ERR" "$DEVKEY" "stderr"
	expect_rc 77 env AZURE_STORAGE_KEY="$WRONGKEY" "$TOOL" -e "$EP" az://devstoreaccount1/ckpt/wk head k
	assert_contains "$ERR" "HTTP 403: Authorization"
	expect_rc 78 env AZURE_STORAGE_KEY='not*base64' "$TOOL" -e "$EP" az://devstoreaccount1/ckpt/wk get k
	assert_contains "$ERR" "not valid Base64"
	assert_not_contains "$ERR" "not*base64" "stderr"
}

t_sas_token() {
	unset AZURE_STORAGE_KEY
	echo sas >s
	expect_rc 0 env AZURE_STORAGE_SAS_TOKEN="?$SAS" "$TOOL" -v -e "$EP" az://devstoreaccount1/ckpt/sas put k s
	assert_contains "$ERR" "SAS (environment)"
	head -c 9000000 /dev/urandom >big
	expect_rc 0 env AZURE_STORAGE_SAS_TOKEN="$SAS" "$TOOL" -e "$EP" az://devstoreaccount1/ckpt/sas upload big <big
	expect_rc 0 env AZURE_STORAGE_SAS_TOKEN="$SAS" "$TOOL" -e "$EP" az://devstoreaccount1/ckpt/sas list
	assert_eq "$OUT" "$(printf 'big 9000000\nk 4')"
	expect_rc 0 env AZURE_STORAGE_KEY=$DEVKEY "$TOOL" -e "$EP" az://devstoreaccount1/ckpt/sas get k
	assert_eq "$OUT" sas
	# a read-only token cannot write; a tampered one is refused
	ro=$(AZURE_STORAGE_KEY=$DEVKEY python3 "$AZSIGN" sas rl)
	expect_rc 77 env AZURE_STORAGE_SAS_TOKEN="$ro" "$TOOL" -e "$EP" az://devstoreaccount1/ckpt/sas put k2 s
	expect_rc 77 env AZURE_STORAGE_SAS_TOKEN="$(echo "$SAS" | sed 's/sp=rwdlac/sp=rwdlacx/')" \
		"$TOOL" -v -e "$EP" az://devstoreaccount1/ckpt/sas get k
	assert_contains "$ERR" "HTTP 403"
	assert_not_contains "$ERR" "$SIG" "stderr"
}

t_sas_signature_redacted_in_retry_lines() {
	unset AZURE_STORAGE_KEY
	expect_rc 69 env AZURE_STORAGE_SAS_TOKEN="$SAS" SPOTRUN_RETRY_TRIES=2 "$TOOL" -v \
		-e http://127.0.0.1:9/devstoreaccount1 az://devstoreaccount1/ckpt/r get k
	assert_contains "$ERR" "sig=REDACTED"
	assert_contains "$ERR" "retry 1 of 1"
	assert_not_contains "$ERR" "$SIG" "stderr"
}

t_connection_string() {
	unset AZURE_STORAGE_KEY AZURE_STORAGE_ACCOUNT
	export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$DEVKEY;BlobEndpoint=$EP;"
	echo cs >c
	expect_rc 0 "$TOOL" -v az://devstoreaccount1/ckpt/cs put k c
	assert_contains "$ERR" "az: $EP, account devstoreaccount1, SharedKey (connection string)"
	assert_not_contains "$ERR" "$DEVKEY" "stderr"
	# the account may come from the connection string alone
	expect_rc 0 "$TOOL" az:///ckpt/cs get k
	assert_eq "$OUT" cs
	export AZURE_STORAGE_CONNECTION_STRING="BlobEndpoint=$EP;SharedAccessSignature=$SAS"
	expect_rc 0 "$TOOL" -v az://devstoreaccount1/ckpt/cs get k
	assert_eq "$OUT" cs
	assert_contains "$ERR" "SAS (connection string)"
	export AZURE_STORAGE_CONNECTION_STRING="AccountName=devstoreaccount1;garbage-without-equals"
	expect_rc 78 "$TOOL" -e "$EP" az://devstoreaccount1/ckpt/cs get k
	assert_contains "$ERR" "malformed"
}

t_spotrun_push_pull() {
	mkdir -p ck/step-000100
	head -c 300000 /dev/urandom >ck/step-000100/w.bin
	echo meta >ck/step-000100/meta.txt
	expect_rc 0 "$SR" push ck/step-000100 --job azj --store az://devstoreaccount1/ckpt/e2e --endpoint "$EP"
	expect_rc 0 "$SR" pull back --job azj --store az://devstoreaccount1/ckpt/e2e --endpoint "$EP"
	cmp ck/step-000100/w.bin back/w.bin || fail "pulled checkpoint differs"
	expect_rc 0 xt az://devstoreaccount1/ckpt/e2e list azj/
	assert_contains "$OUT" "manifest.json"
}

t_closed_port_is_unavailable_after_retries() {
	start=$(now_ms)
	expect_rc 69 "$TOOL" -e http://127.0.0.1:9/devstoreaccount1 az://devstoreaccount1/ckpt/x get a
	assert_range $(( $(now_ms) - start )) 0 5000 "ms until giving up"
	assert_contains "$ERR" "after 5 tries"
}

t_no_credentials_is_78_and_bad_urls_64() {
	unset AZURE_STORAGE_KEY
	expect_rc 78 xt az://devstoreaccount1/ckpt/nc get a
	assert_contains "$ERR" "no Azure credentials found"
	expect_rc 64 xt az://devstoreaccount1 list
	expect_rc 64 xt az://devstoreaccount1/ list
	expect_rc 64 env AZURE_STORAGE_KEY=$DEVKEY "$TOOL" -e "not a url" az://devstoreaccount1/ckpt list
	expect_rc 64 env AZURE_STORAGE_KEY=$DEVKEY "$TOOL" -e "ftp://127.0.0.1/x" az://devstoreaccount1/ckpt list
	unset AZURE_STORAGE_ACCOUNT
	expect_rc 64 env AZURE_STORAGE_KEY=$DEVKEY "$TOOL" -e "$EP" az:///ckpt list
}

run_tests
