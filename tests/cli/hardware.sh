# hardware.sh - the GPU fingerprint and --hardware-change: a stub NVML built
# here (cc -shared) and selected with SPOTRUN_GPU_LIB reports fake devices
# (FAKE_GPU_COUNT x FAKE_GPU_NAME); a first run commits a checkpoint and is
# interrupted by a notice (SIGTERM from the command: 75), the second resumes and sees (or not) a hardware change,
# recorded as a hardware-change event (store and hooks).
. "$SPOTRUN_TOP/tests/lib.sh"
export SR

stub() {
	cat >stub.c <<'EOS'
#include <stdlib.h>
#include <string.h>
static const char *env(const char *n, const char *d) { const char *v = getenv(n); return v && *v ? v : d; }
int nvmlInit_v2(void) { return 0; }
int nvmlShutdown(void) { return 0; }
int nvmlDeviceGetCount_v2(unsigned *n) { *n = (unsigned)atoi(env("FAKE_GPU_COUNT", "1")); return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **d) { *d = (void *)(long)(i + 1); return 0; }
int nvmlDeviceGetName(void *d, char *s, unsigned n) { strncpy(s, env("FAKE_GPU_NAME", "Fake H100 80GB"), n); return 0; }
int nvmlDeviceGetCudaComputeCapability(void *d, int *a, int *b) { *a = 9; *b = 0; return 0; }
int nvmlDeviceGetMemoryInfo(void *d, unsigned long long *m) { m[0] = 85899345920ULL; m[1] = m[0]; m[2] = 0; return 0; }
int nvmlSystemGetDriverVersion(char *s, unsigned n) { strncpy(s, env("FAKE_GPU_DRIVER", "550.54.15"), n); return 0; }
int nvmlSystemGetCudaDriverVersion_v2(int *v) { *v = 12040; return 0; }
int cudaRuntimeGetVersion(int *v) { *v = 12020; return 0; }
EOS
	cc -shared -fPIC -o "$T/libstub.so" stub.c || fail "cannot build the stub NVML"
	cat >c.sh <<'EOS'
if [ -n "$SPOTRUN_RESUME_DIR" ]; then
	echo "changed=[${SPOTRUN_HARDWARE_CHANGED-}]"
	echo "old=[${SPOTRUN_HARDWARE_OLD-}]"
	echo "new=[${SPOTRUN_HARDWARE_NEW-}]"
	exit 0
fi
d=$SPOTRUN_CKPT_DIR/step-000010; mkdir -p $d; echo a >$d/w
"$SR" commit $d || exit 9
trap 'exit 0' USR1
kill -TERM $PPID # a notice once committed (not --simulate: no race with a slow build)
while :; do sleep 0.05; done
EOS
}
# first N NAME: the preempted first run, on N stub devices (0: no GPU)
first() {
	if [ "$1" = 0 ]; then
		SPOTRUN_NO_GPU=1 expect_rc 75 "$SR" --job hw --provider none -- sh c.sh
	else
		SPOTRUN_GPU_LIB=$T/libstub.so FAKE_GPU_COUNT=$1 FAKE_GPU_NAME=$2 \
			expect_rc 75 "$SR" --job hw --provider none -- sh c.sh
	fi
	assert_file spotrun-store/hw/ckpt/00000001/manifest.json
	rm -rf spotrun-ckpt # a new machine: restored from the store
}
# second RC N NAME [FLAGS...]: the resumed run
second() {
	rc=$1 n=$2 name=$3; shift 3
	if [ "$n" = 0 ]; then
		SPOTRUN_NO_GPU=1 expect_rc "$rc" "$SR" --job hw --provider none "$@" -- sh c.sh
	else
		SPOTRUN_GPU_LIB=$T/libstub.so FAKE_GPU_COUNT=$n FAKE_GPU_NAME=$name \
			expect_rc "$rc" "$SR" --job hw --provider none "$@" -- sh c.sh
	fi
}

t_fingerprint_in_manifest_and_detect() {
	stub
	first 2 "Fake H100 80GB"
	python3 -c '
import json,sys
g=json.load(open(sys.argv[1]))["gpu"]
assert g["count"]==2 and g["via"]=="nvml" and g["driver"]=="550.54.15", g
assert g["cuda_driver"]=="12.4" and g["runtime"]=="12.2", g
assert [(d["name"],d["cc"],d["memory"]) for d in g["devices"]]==[("Fake H100 80GB","9.0",85899345920)]*2, g
' spotrun-store/hw/ckpt/00000001/manifest.json || fail "manifest gpu"
	SPOTRUN_GPU_LIB=$T/libstub.so FAKE_GPU_COUNT=3 expect_rc 0 "$SR" detect --json --provider none
	echo "$OUT" | python3 -c '
import json,sys
g=json.load(sys.stdin)["gpus"]
assert g["count"]==3 and g["runtime"]=="12.2" and g["devices"][0]["memory"]==85899345920, g' || fail "detect: $OUT"
}
t_fingerprint_from_a_cuda_runtime() {
	# a stand-in libcudart: cudaDeviceProp has name[256] first and, since
	# CUDA 10, totalGlobalMem at byte 288
	cat >rt.c <<'EOS'
#include <string.h>
int cudaGetDeviceCount(int *n) { *n = 2; return 0; }
int cudaDeviceGetAttribute(int *v, int attr, int dev) { *v = attr == 75 ? 8 : 6; return 0; }
int cudaGetDeviceProperties(void *p, int dev) { size_t m = 42949672960ULL; strcpy(p, "Fake A100 40GB"); memcpy((char *)p + 288, &m, sizeof(m)); return 0; }
int cudaDriverGetVersion(int *v) { *v = 12040; return 0; }
int cudaRuntimeGetVersion(int *v) { *v = 12020; return 0; }
EOS
	cc -shared -fPIC -o "$T/librt.so" rt.c || fail "cannot build the stub runtime"
	SPOTRUN_GPU_LIB=$T/librt.so expect_rc 0 "$SR" detect --json --provider none
	echo "$OUT" | python3 -c '
import json,sys
g=json.load(sys.stdin)["gpus"]
assert g["count"]==2 and g["via"]=="cudart" and g["driver"]=="cuda 12.4" and g["runtime"]=="12.2", g
assert g["cuda_driver"]=="12.4" and g["devices"]==[{"name":"Fake A100 40GB","cc":"8.6","memory":42949672960}]*2, g' ||
		fail "detect: $OUT"
	SPOTRUN_GPU_LIB=$T/missing.so expect_rc 0 "$SR" detect --json --provider none
	assert_contains "$ERR" "SPOTRUN_GPU_LIB"
	assert_eq "$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["gpus"])')" "None"
}
t_same_hardware_no_variables() {
	stub
	first 2 "Fake H100 80GB"
	# a different driver alone is not a change
	FAKE_GPU_DRIVER=560.1 second 0 2 "Fake H100 80GB"
	assert_contains "$OUT" "changed=[]"
	assert_contains "$OUT" "old=[]"
	assert_not_contains "$ERR" "hardware changed"
}
t_fewer_devices_warns_and_tells_the_child() {
	stub
	first 2 "Fake H100 80GB"
	second 0 1 "Fake H100 80GB"
	assert_contains "$ERR" "hardware changed"
	assert_contains "$ERR" "old: 2x Fake H100 80GB, new: 1x Fake H100 80GB"
	assert_contains "$OUT" "changed=[1]"
	python3 -c '
import json,sys
kv=dict(l.split("=",1) for l in open(sys.argv[1]).read().splitlines() if "=[" in l)
old=json.loads(kv["old"][1:-1]); new=json.loads(kv["new"][1:-1])
assert old["count"]==2 and new["count"]==1 and new["devices"][0]["name"]=="Fake H100 80GB", (old,new)
' "$T/out" || fail "child's fingerprints: $OUT"
}
t_deny_exits_78_and_never_starts_the_child() {
	stub
	first 2 "Fake H100 80GB"
	second 78 1 "Fake A100 40GB" --hardware-change deny
	assert_contains "$ERR" "old: 2x Fake H100 80GB, new: 1x Fake A100 40GB"
	assert_contains "$ERR" "--hardware-change"
	assert_not_contains "$OUT" "changed="
	[ "$(grep -c 'hardware changed' "$T/err")" = 1 ] || fail "not one line: $ERR"
	# the same through the environment twin, then a bad value
	SPOTRUN_HARDWARE_CHANGE=deny second 78 1 "Fake A100 40GB"
	second 64 2 "Fake H100 80GB" --hardware-change maybe
	assert_contains "$ERR" "--hardware-change"
}
t_allow_is_quiet() {
	stub
	first 2 "Fake H100 80GB"
	second 0 2 "Fake A100 40GB" --hardware-change allow
	assert_not_contains "$ERR" "hardware changed"
	assert_contains "$OUT" "changed=[1]"
	assert_not_contains "$ERR" "warn"
	# logged at info level
	rm -rf spotrun-store spotrun-ckpt
	first 2 "Fake H100 80GB"
	second 0 2 "Fake A100 40GB" --hardware-change allow -v
	assert_contains "$ERR" "info: hardware changed"
	# that resume committed nothing, so nothing was pushed: the newest
	# checkpoint is still the one made on the H100s, and deny refuses
	second 78 2 "Fake A100 40GB" --hardware-change deny
	assert_contains "$ERR" "old: 2x Fake H100 80GB"
	assert_not_contains "$OUT" "changed="
}
t_no_gpu_to_gpu_is_a_change() {
	stub
	first 0
	assert_eq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gpu"])' \
		spotrun-store/hw/ckpt/00000001/manifest.json)" "None"
	second 0 1 "Fake L4"
	assert_contains "$ERR" "old: no GPU, new: 1x Fake L4"
	assert_contains "$OUT" "old=[null]"
}
t_no_gpu_both_times_nothing() {
	stub
	first 0
	second 0 0 ""
	assert_contains "$OUT" "changed=[]"
	assert_not_contains "$ERR" "hardware"
}

t_change_is_an_event_and_a_hook() {
	stub
	first 2 "Fake H100 80GB"
	printf '#!/bin/sh\ncat >"%s/hook.json"\n' "$T" >hook.sh && chmod +x hook.sh
	second 0 1 "Fake A100 40GB" --hook hardware-change="$T/hook.sh"
	assert_contains "$OUT" "changed=[1]"
	python3 - spotrun-store/hw/events hook.json <<'PY' || fail "hardware-change event: $(cat hook.json)"
import json, os, sys
evs = [json.load(open(os.path.join(sys.argv[1], f))) for f in sorted(os.listdir(sys.argv[1]))]
hw = [e for e in evs if e["event"] == "hardware-change"]
assert len(hw) == 1 and hw[0]["run"] == 2, [e["event"] for e in evs]
d = hw[0]["data"]
assert d["seq"] == 1 and d["policy"] == "warn", d
assert d["old_summary"] == "2x Fake H100 80GB" and d["new_summary"] == "1x Fake A100 40GB", d
assert d["old"]["count"] == 2 and d["new"]["count"] == 1, d
assert d["new"]["devices"][0]["name"] == "Fake A100 40GB", d
hook = json.load(open(sys.argv[2]))
assert hook["event"] == "hardware-change" and hook["data"] == d, hook
PY
	expect_rc 0 "$SR" ls --job hw --store spotrun-store
	assert_contains "$OUT" "hardware-change"
	assert_contains "$OUT" "seq 1: old 2x Fake H100 80GB, new 1x Fake A100 40GB (warn)"
	# no GPU before: the old fingerprint is null; allow records it too
	rm -rf spotrun-store spotrun-ckpt
	first 0
	second 0 1 "Fake L4" --hardware-change allow
	grep -l '"hardware-change"' spotrun-store/hw/events/* >list || fail "no event with allow"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["data"]; assert d["old"] is None and d["policy"] == "allow", d' \
		"$(head -1 list)" || fail "null fingerprint"
	# deny records nothing: nothing was resumed
	rm -rf spotrun-store spotrun-ckpt
	first 2 "Fake H100 80GB"
	second 78 1 "Fake A100 40GB" --hardware-change deny
	! grep -l '"hardware-change"' spotrun-store/hw/events/* 2>/dev/null || fail "an event after deny"
}

run_tests
