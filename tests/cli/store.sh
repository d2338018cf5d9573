#!/bin/sh
# store.sh - push / pull / ls / verify / gc against a file:// store, byte for
# byte: contents with diff -r, and types, modes, mtimes (ns) and link targets
# with a find listing.  Also the restore-without-spotrun promise
# (zstd -dc | tar -x), a >4 GiB sparse file, 10,000 small files, step
# selection, concurrent pushes, exit codes and the progress line rule.
. "$(dirname "$0")/../lib.sh"

# a tree with every kind of entry
mk_tree() {
	d=$1; mkdir -p "$d/sub/deeper" "$d/empty" "$d/locked" "$d/empty2/nested"
	printf 'hello\n' >"$d/a.txt"
	head -c 3000000 /dev/urandom >"$d/sub/random.bin"
	python3 -c 'import sys; sys.stdout.write("x = 1\n" * 200000)' >"$d/sub/deeper/text.py"
	: >"$d/zero-length"
	printf 'é\n' >"$d/héllo wörld ñ.txt"
	printf 'sp\n' >"$d/with space"
	printf '#!/bin/sh\n' >"$d/run.sh"; chmod 755 "$d/run.sh"
	printf 'secret\n' >"$d/locked/key"; chmod 600 "$d/locked/key"; chmod 700 "$d/locked"
	printf 'ro\n' >"$d/readonly"; chmod 444 "$d/readonly"
	ln -s ../a.txt "$d/sub/link-up"
	ln -s sub/deeper "$d/link-dir"
	ln -s does-not-exist "$d/dangling"
	touch -h -d '2020-02-02 02:02:02.123456789' "$d/sub/link-up"
	touch -d '2001-01-01 01:01:01.5' "$d/a.txt" "$d/empty"
	touch -d '2019-05-05 05:05:05.000000042' "$d/sub/random.bin"
}

t_roundtrip_tree() {
	mk_tree step-000100
	expect_rc 0 "$SR" push step-000100 --job j1 --part-size 256K
	assert_eq "$OUT" "" "push stdout"
	assert_not_contains "$ERR" "$(printf '\r')" "non-tty stderr"
	expect_rc 0 "$SR" pull restored --job j1
	assert_eq "$OUT" "$T/restored" "printed path"
	same_tree step-000100 restored
	# default destination: ./<name>, and it must not exist yet
	mkdir elsewhere && cd elsewhere
	expect_rc 0 "$SR" pull --job j1 --store "$T/spotrun-store"
	assert_eq "$OUT" "$T/elsewhere/step-000100"
	same_tree ../step-000100 step-000100
	expect_rc 73 "$SR" pull --job j1 --store "$T/spotrun-store"
	assert_contains "$ERR" "already exists"
	assert_eq "$(ls -A | wc -l)" 1 "no leftovers next to the destination"
}

t_plain_zstd_tar_restores() {
	mk_tree ck
	expect_rc 0 "$SR" push ck --job j --part-size 64K --portable --store file://$T/st
	data=$T/st/j/ckpt/00000001/data.tar.zst
	assert_file "$data"
	frames=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["parts"]))' \
		"$T/st/j/ckpt/00000001/manifest.json")
	assert_range "$frames" 10 100000 "parts"
	mkdir plain && zstd -q -dc "$data" | (cd plain && tar -xf - 2>"$T/tar.err")
	assert_eq "$(cat "$T/tar.err")" "" "tar warnings"
	same_tree ck plain/ck
}

t_many_small_files() {
	python3 - <<'EOF'
import os
for d in range(100):
    os.makedirs(f"many/d{d:03d}")
    for f in range(100):
        with open(f"many/d{d:03d}/f{f:03d}.json", "w") as fh:
            fh.write('{"d": %d, "f": %d}\n' % (d, f) * (f % 7))
EOF
	expect_rc 0 "$SR" push many --job small --step 7
	expect_rc 0 "$SR" ls --job small --json
	files=$(printf '%s' "$OUT" | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]; print(c["files"], c["step"])')
	assert_eq "$files" "10100 7" "entries, step"
	expect_rc 0 "$SR" pull back --job small
	same_tree many back
}

t_file_over_4gib_sparse() {
	mkdir big && truncate -s 4100M big/huge.bin && printf 'tail' >>big/huge.bin
	printf 'x' | dd of=big/huge.bin bs=1 seek=1000000000 conv=notrunc 2>/dev/null
	expect_rc 0 "$SR" push big --job big --workers 2
	expect_rc 0 "$SR" ls --job big
	assert_contains "$OUT" "4.3 GB"
	expect_rc 0 "$SR" pull back --job big
	assert_sparse_copy big back huge.bin
}

t_ls_jobs_and_checkpoints() {
	mk_tree step-000100; mkdir step-000200; echo x >step-000200/f
	expect_rc 0 "$SR" ls
	assert_eq "$OUT" "" "empty store"
	"$SR" push step-000100 --job alpha 2>/dev/null
	"$SR" push step-000200 --job alpha 2>/dev/null
	"$SR" push step-000200 --job beta --step 5 2>/dev/null
	expect_rc 0 "$SR" ls
	assert_contains "$OUT" "alpha"
	assert_contains "$OUT" "beta"
	expect_rc 0 "$SR" ls --json
	n=$(printf '%s' "$OUT" | python3 -c 'import json,sys; print([ (j["job"], j["checkpoints"]) for j in json.load(sys.stdin)])')
	assert_eq "$n" "[('alpha', 2), ('beta', 1)]"
	expect_rc 0 "$SR" ls --job alpha
	assert_eq "$(printf '%s\n' "$OUT" | wc -l)" 3 "header + 2 rows"
	assert_contains "$(printf '%s\n' "$OUT" | sed -n 2p)" "step-000100"
	assert_contains "$(printf '%s\n' "$OUT" | sed -n 3p)" "200"
	expect_rc 0 "$SR" ls --job alpha --json
	v=$(printf '%s' "$OUT" | python3 -c '
import json,sys
c=json.load(sys.stdin)
print(";".join("%d,%s,%s,%d" % (x["seq"], x["step"], x["name"], x["raw_bytes"] > x["stored_bytes"] > 0) for x in c))')
	assert_eq "$v" "1,100,step-000100,1;2,200,step-000200,1"
	# the manifest records what the contract lists
	python3 - "$T/spotrun-store/alpha/ckpt/00000001/manifest.json" <<'EOF' || fail "manifest fields"
import json, sys
m = json.load(open(sys.argv[1]))
for k in ("format", "job", "seq", "step", "name", "created", "host", "provider", "region",
          "instance", "gpu", "files", "parts", "totals", "compression"):
    assert k in m, k
assert m["format"] == 1 and m["compression"]["codec"] == "zstd" and m["compression"]["level"] == 1
assert m["compression"]["part_size"] == 8 << 20
f = {x["path"]: x for x in m["files"]}
assert f["a.txt"]["sha256"] == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
assert f["sub/link-up"]["type"] == "symlink" and f["sub/link-up"]["target"] == "../a.txt"
assert f["empty"]["type"] == "dir" and f["locked/key"]["mode"] == 0o600
assert m["created"].endswith("Z") and m["totals"]["files"] == len(m["files"])
EOF
}

t_step_selection() {
	mkdir step-000100 step-000200 other
	echo one >step-000100/f; echo two >step-000200/f; echo three >other/f
	"$SR" push step-000100 --job j 2>/dev/null
	"$SR" push step-000200 --job j 2>/dev/null
	"$SR" push other --job j --step 100 2>/dev/null
	expect_rc 0 "$SR" pull a --job j --step 200
	assert_eq "$(cat a/f)" "two"
	expect_rc 0 "$SR" pull b --job j --step 100
	assert_eq "$(cat b/f)" "three" "newest checkpoint of step 100"
	expect_rc 0 "$SR" pull c --job j
	assert_eq "$(cat c/f)" "three" "newest"
	expect_rc 66 "$SR" pull d --job j --step 999
	assert_no_file d
	expect_rc 0 "$SR" verify --job j --step 200
	assert_contains "$OUT" "intact"
	expect_rc 0 "$SR" verify --json
	assert_contains "$OUT" '"ok": true'
}

t_usage_and_missing() {
	mkdir d && echo x >d/f
	expect_rc 64 "$SR" push d
	assert_contains "$ERR" "job"
	expect_rc 64 "$SR" push --job j
	expect_rc 64 "$SR" push d d --job j
	expect_rc 64 "$SR" push d --job 'bad/job'
	expect_rc 66 "$SR" push nope --job j
	expect_rc 66 "$SR" pull --job j
	expect_rc 66 "$SR" verify --job j
	expect_rc 64 "$SR" gc
	expect_rc 64 "$SR" gc --keep 0 --job j
	expect_rc 64 "$SR" ls --store ftp://x
	export SPOTRUN_JOB=envjob
	expect_rc 0 "$SR" push d
	unset SPOTRUN_JOB
	expect_rc 0 "$SR" ls --job envjob --json
	assert_contains "$OUT" '"seq": 1'
	# one job in the store: pull and verify find it without --job
	expect_rc 0 "$SR" verify
	"$SR" push d --job second 2>/dev/null
	expect_rc 64 "$SR" verify
	assert_contains "$ERR" "--job"
}

t_gc_keep() {
	for s in 1 2 3 4; do mkdir step-$s; echo $s >step-$s/f; "$SR" push step-$s --job g 2>/dev/null; done
	expect_rc 0 "$SR" gc --keep 2 --job g --dry-run
	assert_contains "$ERR" "would delete"
	expect_rc 0 "$SR" ls --job g --json
	assert_eq "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 4
	expect_rc 0 "$SR" gc --keep 2
	expect_rc 0 "$SR" ls --job g --json
	assert_eq "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print([c["seq"] for c in json.load(sys.stdin)])')" "[3, 4]"
	assert_no_file spotrun-store/g/ckpt/00000001
	expect_rc 0 "$SR" gc --keep 1 --job g
	expect_rc 0 "$SR" pull back --job g
	assert_eq "$(cat back/f)" 4 "newest survives"
	assert_eq "$(ls spotrun-store/g/ckpt)" "00000004"
}

t_concurrent_pushes_get_distinct_seqs() {
	mkdir d && head -c 2000000 /dev/urandom >d/f
	for i in 1 2 3 4 5 6; do "$SR" push d --job c --part-size 64K 2>"$T/err.$i" & done
	wait
	expect_rc 0 "$SR" ls --job c --json
	assert_eq "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print([c["seq"] for c in json.load(sys.stdin)])')" "[1, 2, 3, 4, 5, 6]"
	expect_rc 0 "$SR" verify --job c
	expect_rc 0 "$SR" pull back --job c
	same_tree d back
}

t_progress_only_on_a_tty() {
	mkdir d && head -c 1000000 /dev/urandom >d/f
	expect_rc 0 "$SR" push d --job p
	assert_not_contains "$ERR" "MB/s  ETA"
	command -v script >/dev/null || return 0
	script -qec "$SR push d --job p --part-size 64K" /dev/null >"$T/tty.out" 2>&1 || fail "push under a tty"
	grep -q "ETA" "$T/tty.out" || fail "no progress line on a tty: $(cat "$T/tty.out")"
}

t_gpu_fingerprint_from_nvml() {
	# a stand-in for NVIDIA's libnvidia-ml.so.1, loaded by dlopen like the real one
	mkdir lib d && echo x >d/f
	cat >nvml.c <<'EOF'
#include <string.h>
int nvmlInit_v2(void) { return 0; }
int nvmlShutdown(void) { return 0; }
int nvmlDeviceGetCount_v2(unsigned *n) { *n = 2; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **d) { *d = (void *)(long)(i + 1); return 0; }
int nvmlDeviceGetName(void *d, char *s, unsigned n) { strncpy(s, d == (void *)1 ? "Fake H200" : "Fake L4", n); return 0; }
int nvmlDeviceGetCudaComputeCapability(void *d, int *a, int *b) { *a = d == (void *)1 ? 9 : 8; *b = d == (void *)1 ? 0 : 9; return 0; }
int nvmlSystemGetDriverVersion(char *s, unsigned n) { strncpy(s, "550.54.15", n); return 0; }
EOF
	cc -shared -fPIC -o lib/libnvidia-ml.so.1 nvml.c || fail "cannot build the fake NVML"
	export LD_LIBRARY_PATH="$T/lib"
	expect_rc 0 "$SR" push d --job g
	unset LD_LIBRARY_PATH
	gpu=$(python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["gpu"]; print(g["count"], g["driver"], [(d["name"], d["cc"]) for d in g["devices"]])' \
		spotrun-store/g/ckpt/00000001/manifest.json)
	assert_eq "$gpu" "2 550.54.15 [('Fake H200', '9.0'), ('Fake L4', '8.9')]"
	expect_rc 0 "$SR" push d --job g
	assert_eq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gpu"])' \
		spotrun-store/g/ckpt/00000002/manifest.json)" "None" "no GPU library: null"
}

run_tests
