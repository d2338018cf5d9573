#!/bin/sh
# migrate.sh - `spotrun migrate` against real servers: a file store to S3
# (moto), S3 to S3 on one moto (two buckets: the server-side copy path),
# S3 to Azure Blob (Azurite), and a migration killed with SIGKILL half-way
# then resumed; and `spotrun run --from-store`, whose resume policy pulls
# directly or copies into --store first, whichever the catalog prices lower.  After each, `spotrun verify` and `pull` at the destination
# and the AWS CLI (or curl) read what spotrun wrote.  Objects stay small
# (moto reads the whole object for every ranged GET).
. "$(dirname "$0")/../lib.sh"

AZSIGN=$SPOTRUN_TOP/tests/fixtures/azure-sharedkey/azsign.py
AZURITE=$SPOTRUN_TOP/node_modules/.bin/azurite-blob
DEVKEY=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==
SHARED=$(mktemp -d "${TMPDIR:-/tmp}/sr-mig.XXXXXX")
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 \
	AWS_PAGER="" SPOTRUN_RETRY_BASE_MS=20
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_REGION \
	AZURE_STORAGE_SAS_TOKEN AZURE_STORAGE_CONNECTION_STRING 2>/dev/null || true

cleanup() {
	for p in "$SHARED"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
	rm -rf "$SHARED"
}
trap cleanup EXIT INT TERM

python3 -m moto.server -H 127.0.0.1 -p 0 >"$SHARED/moto.log" 2>&1 &
echo $! >"$SHARED/moto.pid"
if [ -x "$AZURITE" ]; then
	(cd "$SHARED" && exec "$AZURITE" --blobHost 127.0.0.1 --blobPort 0 --inMemoryPersistence \
		--disableTelemetry --skipApiVersionCheck) >"$SHARED/azurite.log" 2>&1 &
	echo $! >"$SHARED/azurite.pid"
fi
wait_for "grep -q 'Running on http://127.0.0.1:' '$SHARED/moto.log'" 20 ||
	{ echo "FAIL $SUITE/setup: moto did not start"; exit 1; }
MOTO=http://127.0.0.1:$(sed -n 's|.*Running on http://127.0.0.1:\([0-9]*\).*|\1|p' "$SHARED/moto.log" | head -1)
wait_for "curl -sf -o /dev/null $MOTO/moto-api/" 20 || { echo "FAIL $SUITE/setup: moto not ready"; exit 1; }
export AWS_ENDPOINT_URL=$MOTO
# s3curl ARGS: curl signing with SigV4 (an independent client; quicker than
# starting the AWS CLI on two busy cores)
s3curl() { curl -sf --aws-sigv4 aws:amz:us-east-1:s3 -u testing:testing "$@"; }
for b in mig-a mig-b mig-c mig-d mig-e mig-f mig-g mig-h; do
	s3curl -X PUT -o /dev/null "$MOTO/$b" || { echo "FAIL $SUITE/setup: cannot create bucket $b"; exit 1; }
done
AZ_EP=
if [ -x "$AZURITE" ] && wait_for "grep -q 'listens on http://127.0.0.1:' '$SHARED/azurite.log'" 30; then
	AZ_EP=$(sed -n 's|.*listens on \(http://127.0.0.1:[0-9]*\).*|\1|p' "$SHARED/azurite.log" | head -1)/devstoreaccount1
	AZURE_STORAGE_ACCOUNT=devstoreaccount1 AZURE_STORAGE_KEY=$DEVKEY python3 "$AZSIGN" mkcontainer "$AZ_EP" mig \
		>/dev/null || AZ_EP=
fi

# mkjob JOB N MB [LAST_MB]: N checkpoints of MB megabytes (random) in
# file://$T/st, the last one LAST_MB
mkjob() {
	i=1
	while [ $i -le "$2" ]; do
		mkdir -p "src/step-$i"
		mb=$3; [ $i -eq "$2" ] && mb=${4:-$3}
		head -c $((mb * 1000000)) /dev/urandom >"src/step-$i/w.bin"
		echo "$i" >"src/step-$i/meta.txt"
		expect_rc 0 "$SR" push "src/step-$i" --job "$1" --store "file://$T/st"
		i=$((i + 1))
	done
}

t_file_to_s3_then_s3_to_s3() {
	mkjob j 2 9
	expect_rc 0 "$SR" migrate --job j --store "file://$T/st" --to s3://mig-a/p
	assert_contains "$OUT" "2 checkpoints copied"
	expect_rc 0 "$SR" verify --job j --store s3://mig-a/p
	expect_rc 0 "$SR" pull back --job j --store s3://mig-a/p
	cmp back/w.bin src/step-2/w.bin
	# the AWS CLI reads what spotrun wrote: the archive restores without spotrun
	aws s3 cp --only-show-errors s3://mig-a/p/j/ckpt/00000001/data.tar.zst - | zstd -dc | tar -xf - -C .
	cmp step-1/w.bin src/step-1/w.bin
	s3curl -o job.json "$MOTO/mig-a/p/j/job.json"
	python3 -c "import json; m=json.load(open('job.json'))['migrations']; assert len(m)==1 and m[0]['copied']==2 and m[0]['from'].startswith('file://'), m"
	# same service, same endpoint: copied inside the service (CopyObject)
	expect_rc 0 "$SR" migrate --job j --store s3://mig-a/p --to s3://mig-b/q -v
	assert_contains "$ERR" "copied inside the service"
	assert_contains "$OUT" "2 checkpoints copied"
	expect_rc 0 "$SR" verify --job j --store s3://mig-b/q
	s3curl -o job2.json "$MOTO/mig-b/q/j/job.json"
	python3 -c "
import json; m=json.load(open('job2.json'))['migrations']
assert len(m)==2 and m[1]['server_side_bytes']>17000000 and m[1]['verified_bytes']>=m[1]['bytes'], m"
	s3curl -o job1.json "$MOTO/mig-a/p/j/job.json"
	python3 -c "import json; m=json.load(open('job1.json'))['migrations']; assert len(m)==2, m"
}

t_interrupted_migration_resumes() {
	mkjob k 3 3 30
	"$SR" migrate --job k --store "file://$T/st" --to s3://mig-c/p >mig.out 2>mig.err &
	pid=$!
	wait_for "s3curl -o /dev/null $MOTO/mig-c/p/k/ckpt/00000001/manifest.json" 30 || fail "seq 1 never committed"
	kill -9 $pid
	set +e; wait $pid; rc=$?; set -e
	assert_eq "$rc" 137 "the first migrate (killed)"
	expect_rc 0 "$SR" migrate --job k --store "file://$T/st" --to s3://mig-c/p
	assert_contains "$ERR" "seq 1 is already at the destination"
	assert_contains "$OUT" "already there"
	expect_rc 0 "$SR" verify --job k --store s3://mig-c/p --step 3
	expect_rc 0 "$SR" verify --job k --store s3://mig-c/p --step 1
	n=$(s3curl "$MOTO/mig-c?list-type=2&prefix=p/k/ckpt/" | grep -o 'manifest.json</Key>' | wc -l)
	assert_eq "$n" 3 "manifests at the destination"
}

t_s3_to_azure() {
	[ -n "$AZ_EP" ] || { echo "azurite not available: skipped"; return 0; }
	mkjob m 1 6
	expect_rc 0 "$SR" migrate --job m --store "file://$T/st" --to s3://mig-d/p
	export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$DEVKEY;BlobEndpoint=$AZ_EP;"
	expect_rc 0 "$SR" migrate --job m --store s3://mig-d/p --to az://devstoreaccount1/mig/p
	assert_contains "$OUT" "1 checkpoints copied"
	expect_rc 0 "$SR" verify --job m --store az://devstoreaccount1/mig/p
	expect_rc 0 "$SR" pull back --job m --store az://devstoreaccount1/mig/p
	cmp back/w.bin src/step-1/w.bin
}


# ---- spotrun run --from-store: the resume policy's two ways against real servers

# run_cat: aws egress is dear ($1000/GB to the internet), gcp's cheap, and
# a test path makes aws -> azure free with azure's egress cheap
run_cat() {
	cat >cat.json <<'J'
{"format": 1, "currency": "USD", "as_of": "2026-11-30",
 "sources": {"t": {"url": "https://example.com/test", "as_of": "2026-11-30"}},
 "regions": [
  {"provider": "aws", "region": "us-east-1", "source": "t", "store_mb_s": 100, "interruptions_per_hour": 0,
   "egress_per_gb": {"internet": 1000, "cross_region": 100, "same_region": 0}, "machines": []},
  {"provider": "gcp", "region": "us-central1", "source": "t", "store_mb_s": 100, "interruptions_per_hour": 0,
   "egress_per_gb": {"internet": 0.5, "cross_region": 0.02, "same_region": 0}, "machines": []},
  {"provider": "azure", "region": "eastus", "source": "t", "store_mb_s": 100, "interruptions_per_hour": 0,
   "egress_per_gb": {"internet": 0.01, "cross_region": 0.02, "same_region": 0}, "machines": []}],
 "paths": [{"from": "aws", "to": "azure", "per_gb": 0, "note": "test path: free", "source": "t"}]}
J
}
# RESUMED: the command of a resumed run checks what it got back
RESUMED='test "$SPOTRUN_RESUME_DIR" = "$PWD/ck/step-1" && cmp "$SPOTRUN_RESUME_DIR/w.bin" src/step-1/w.bin'

t_run_from_store_pulls_directly() {
	# made on gcp in a file store; --store is S3 (aws, dear to leave): copying
	# into it first would cost aws's egress on the way here, so a direct pull
	run_cat
	mkjob p 1 3
	python3 - "$T/st/p/ckpt/00000001/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); m["provider"], m["region"] = "gcp", "us-central1"
open(sys.argv[1], "w").write(json.dumps(m))
PY
	expect_rc 0 "$SR" run --job p --store s3://mig-e/p --from-store "file://$T/st" --ckpt-dir ck --catalog cat.json \
		--migrate allow -- sh -c "$RESUMED"
	assert_contains "$ERR" "way 1, pull directly from file://$T/st: 0.003 GB, \$0.00 (internet egress from gcp)"
	assert_contains "$ERR" "way 2, copy into s3://mig-e/p/ first, then pull: 0.006 GB, \$3.00"
	assert_contains "$ERR" "choosing way 1 (pull): it costs less"
	assert_contains "$ERR" "restoring checkpoint seq 1 (step 1, 3.0 MB) from file://$T/st"
	s3curl -o job.json "$MOTO/mig-e/p/p/job.json"
	python3 -c "
import json; m=json.load(open('job.json'))['migrations']; r=m[0]
assert len(m)==1 and r['kind']=='pull' and r['from_place']=='gcp' and r['store_place']=='aws', r
assert r['alternative']['kind']=='migrate' and r['alternative']['usd'] > r['estimated']['usd'] > 0, r
assert r['actual']['seconds'] > 0 and 'copied' not in r, r" || fail "job.json: $(cat job.json)"
}

t_run_from_store_s3_to_azure() {
	[ -n "$AZ_EP" ] || { echo "azurite not available: skipped"; exit 77; }
	export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$DEVKEY;BlobEndpoint=$AZ_EP;"
	run_cat
	mkdir -p src/step-1 && head -c 3000000 /dev/urandom >src/step-1/w.bin
	expect_rc 0 "$SR" push src/step-1 --job q --store s3://mig-f/p
	# a direct pull costs aws's $1000/GB; the copy to Azure is free and
	# Azure's egress cheap: max-cost applies to the way chosen
	expect_rc 78 "$SR" run --job q --store az://devstoreaccount1/mig/r --from-store s3://mig-f/p --ckpt-dir ck \
		--catalog cat.json --migrate max-cost=0 -- true
	assert_contains "$ERR" "choosing way 2 (migrate): it costs less"
	assert_contains "$ERR" "exceeds --migrate max-cost=0.00; rerun with --migrate allow or --migrate max-cost=0.01"
	expect_rc 0 "$SR" run --job q --store az://devstoreaccount1/mig/r --from-store s3://mig-f/p --ckpt-dir ck \
		--catalog cat.json --migrate max-cost=0.01 -- sh -c "$RESUMED"
	assert_contains "$ERR" "way 1, pull directly from s3://mig-f/p/: 0.003 GB, \$3.00 (internet egress from aws)"
	assert_contains "$ERR" "migrate: seq 1 committed at az://devstoreaccount1/mig/r/"
	assert_contains "$ERR" "restoring checkpoint seq 1 (step 1, 3.0 MB) from az://devstoreaccount1/mig/r/"
	expect_rc 0 "$SR" verify --job q --store az://devstoreaccount1/mig/r --step 1
	s3curl -o job.json "$MOTO/mig-f/p/q/job.json"
	python3 -c "
import json; r=json.load(open('job.json'))['migrations'][0]
assert r['kind']=='migrate' and r['to']=='az://devstoreaccount1/mig/r/' and r['copied']==1, r
assert r['copy']['egress_rule']=='test path: free' and r['estimated']['usd'] < 0.01, r
assert r['policy']=='max-cost=0.01' and r['actual']['seconds'] > 0, r" || fail "job.json: $(cat job.json)"
	# the destination's record: the migration event in its timeline
	expect_rc 0 "$SR" ls --job q --store az://devstoreaccount1/mig/r --json
	echo "$OUT" | python3 -c "
import json, sys; t=json.load(sys.stdin)['timeline']
m=[e for e in t if e['event']=='migration']
assert len(m)==1 and m[0]['data']['kind']=='migrate' and m[0]['data']['from']=='s3://mig-f/p/', t" ||
		fail "timeline: $OUT"
}

t_run_from_store_inside_one_s3() {
	# both stores in aws on one endpoint: the copy is free and made inside
	# the service; a tie with the direct pull goes to the copy
	run_cat
	mkdir -p src/step-1 && head -c 3000000 /dev/urandom >src/step-1/w.bin
	expect_rc 0 "$SR" push src/step-1 --job s --store s3://mig-g/p
	expect_rc 0 "$SR" run --job s --store s3://mig-h/q --from-store s3://mig-g/p --ckpt-dir ck --catalog cat.json \
		--migrate allow -v -- sh -c "$RESUMED"
	assert_contains "$ERR" "choosing way 2 (migrate): it costs no more"
	assert_contains "$ERR" "copied inside the service"
	expect_rc 0 "$SR" verify --job s --store s3://mig-h/q --step 1
	s3curl -o job.json "$MOTO/mig-h/q/s/job.json"
	python3 -c "
import json; r=json.load(open('job.json'))['migrations'][0]
assert r['kind']=='migrate' and r['server_side_bytes'] > 3000000 and r['copy']['usd']==0, r" ||
		fail "job.json: $(cat job.json)"
}

run_tests
