#!/bin/sh
# encrypt.sh - client-side encryption (--encrypt-key-file, AES-256-GCM):
# round trip; the stored data is not zstd and holds no plaintext; a wrong
# key, or none, is exit 65 with nothing written; verify without the key
# checks the stored parts; tampered ciphertext (with its part hash fixed
# up, as an attacker would), a tampered manifest and a missing manifest.mac
# are refused; two pushes of the same folder share no ciphertext;
# incremental pushes stay within one key.
. "$(dirname "$0")/../lib.sh"

mk() {
	mkdir -p ck/sub
	python3 -c 'import sys; sys.stdout.write("secret-plaintext-marker\n" * 40000)' >ck/text.txt
	head -c 2500000 /dev/urandom >ck/sub/w.bin
	printf 'hi\n' >ck/a
}
key() { head -c 32 /dev/urandom >"$1"; }
D=ckpt/00000001

# set_part_sha MANIFEST INDEX FILE: recompute part INDEX's sha256 from the data object
fix_sha() {
	python3 - "$1" "$2" "$3" <<'EOF2'
import hashlib, json, sys
m = json.load(open(sys.argv[1])); p = m["parts"][int(sys.argv[2])]
d = open(sys.argv[3], "rb").read()[p["offset"]:p["offset"] + p["size"]]
p["sha256"] = hashlib.sha256(d).hexdigest()
json.dump(m, open(sys.argv[1], "w"), indent=1)
EOF2
}

t_round_trip_and_privacy() {
	mk; key k
	expect_rc 0 "$SR" push ck --job j --part-size 1M --encrypt-key-file k --store file://$T/st
	assert_file "$T/st/j/$D/manifest.mac"
	! grep -q secret-plaintext-marker "$T/st/j/$D/data.tar.zst" || fail "plaintext in the data object"
	! zstd -q -t "$T/st/j/$D/data.tar.zst" 2>/dev/null || fail "data object is plain zstd"
	expect_rc 0 "$SR" pull r --job j --encrypt-key-file k --store file://$T/st
	diff -r ck r >/dev/null || fail "pulled tree differs"
	expect_rc 0 "$SR" verify --job j --encrypt-key-file k --store file://$T/st
	# hex key files work too
	od -An -tx1 -v k | tr -d ' \n' >k.hex; echo >>k.hex
	expect_rc 0 "$SR" verify --job j --encrypt-key-file k.hex --store file://$T/st
}

t_wrong_or_no_key_is_65_nothing_written() {
	mk; key k; key k2
	expect_rc 0 "$SR" push ck --job j --encrypt-key-file k --store file://$T/st
	expect_rc 65 "$SR" pull r --job j --encrypt-key-file k2 --store file://$T/st
	assert_contains "$ERR" "another key"
	expect_rc 65 "$SR" pull r --job j --store file://$T/st
	assert_contains "$ERR" "encrypt-key-file"
	assert_eq "$(ls -A | grep -c '^r$\|spotrun-tmp')" 0 "leftovers"
	expect_rc 65 "$SR" verify --job j --encrypt-key-file k2 --store file://$T/st
	# without a key, verify checks the stored parts only
	expect_rc 0 "$SR" verify --job j --store file://$T/st
	head -c 31 k >short
	expect_rc 64 "$SR" pull r --job j --encrypt-key-file short --store file://$T/st
}

t_tampering_detected() {
	mk; key k
	expect_rc 0 "$SR" push ck --job j --part-size 1M --encrypt-key-file k --store file://$T/st
	cp -a "$T/st" "$T/orig"
	m=$T/st/j/$D/manifest.json; data=$T/st/j/$D/data.tar.zst
	# ciphertext flipped and its part hash fixed up: GCM catches it (and the manifest MAC)
	printf 'Q' | dd of="$data" bs=1 seek=100 conv=notrunc 2>/dev/null
	expect_rc 65 "$SR" verify --job j --store file://$T/st	# keyless: part hash
	fix_sha "$m" 0 "$data"
	expect_rc 65 "$SR" pull r --job j --encrypt-key-file k --store file://$T/st
	assert_no_file r
	# only the manifest changed (a step number): the MAC refuses it
	rm -rf "$T/st"; cp -a "$T/orig" "$T/st"
	sed -i 's/"host": "/"host": "x/' "$m"
	expect_rc 65 "$SR" pull r --job j --encrypt-key-file k --store file://$T/st
	assert_contains "$ERR" "not authentic"
	rm -rf "$T/st"; cp -a "$T/orig" "$T/st"; rm "$T/st/j/$D/manifest.mac"
	expect_rc 65 "$SR" pull r --job j --encrypt-key-file k --store file://$T/st
	rm -rf "$T/st"; cp -a "$T/orig" "$T/st"
	expect_rc 0 "$SR" pull r --job j --encrypt-key-file k --store file://$T/st
}

t_fresh_key_and_nonces_per_push() {
	mk; key k
	expect_rc 0 "$SR" push ck --job a --full --encrypt-key-file k --store file://$T/st
	expect_rc 0 "$SR" push ck --job b --full --encrypt-key-file k --store file://$T/st
	python3 - "$T/st/a/$D" "$T/st/b/$D" <<'EOF2' || fail "two pushes share key material or ciphertext"
import json, sys
a, b = [json.load(open(d + "/manifest.json"))["encryption"] for d in sys.argv[1:]]
assert a["wrapped_key"] != b["wrapped_key"] and a["wrap_nonce"] != b["wrap_nonce"]
da, db = [open(d + "/data.tar.zst", "rb").read() for d in sys.argv[1:]]
assert da[:64] != db[:64] and da[-64:] != db[-64:]
EOF2
}

t_incremental_within_one_key() {
	mk; key k; key k2
	expect_rc 0 "$SR" push ck --job j --encrypt-key-file k --store file://$T/st
	printf 'more\n' >ck/new
	expect_rc 0 "$SR" push ck --job j --encrypt-key-file k --store file://$T/st
	grep -q '"ref"' "$T/st/j/ckpt/00000002/manifest.json" || fail "no references with the same key"
	expect_rc 0 "$SR" pull r --job j --encrypt-key-file k --store file://$T/st
	diff -r ck r >/dev/null || fail "pulled tree differs"
	# another key (or none): everything is pushed again
	expect_rc 0 "$SR" push ck --job j --encrypt-key-file k2 --store file://$T/st
	! grep -q '"ref"' "$T/st/j/ckpt/00000003/manifest.json" || fail "referenced across keys"
	expect_rc 0 "$SR" push ck --job j --store file://$T/st
	! grep -q '"ref"' "$T/st/j/ckpt/00000004/manifest.json" || fail "plain push referenced encrypted data"
}

run_tests
