#!/bin/sh
# The test runner: runs every unit binary, every shell test file (tests/cli,
# tests/integration) and the fuzz corpus replays, counts their PASS/FAIL
# lines and ends with "N passed, N failed".  A program that exits non-zero
# without printing a FAIL line counts as one failure itself, so a crash is
# never silent.  Arguments: name filters (substring of the file name).
#   SPOTRUN_BIN    the binary under test (set by `make check`)
#   SPOTRUN_BUILD  the build folder holding tests/ and fuzz/ binaries
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
: "${SPOTRUN_BIN:=$top/spotrun}"
: "${SPOTRUN_BUILD:=$top/build}"
export SPOTRUN_BIN SPOTRUN_BUILD SPOTRUN_TOP="$top"
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/spotrun-tests.XXXXXX")
passed=0; failed=0; skipped=0; failures=""

want() {
	[ -z "$FILTERS" ] && return 0
	for f in $FILTERS; do case "$1" in *"$f"*) return 0 ;; esac; done
	return 1
}
FILTERS="$*"

run_one() { # name command...
	name=$1; shift
	out="$log_dir/$(echo "$name" | tr '/' '_').log"
	start=$(date +%s)
	timeout -k 10 900 "$@" >"$out" 2>&1
	rc=$?
	p=$(grep -c '^PASS ' "$out"); f=$(grep -c '^FAIL ' "$out")
	k=$(grep -c '^SKIP ' "$out"); skipped=$((skipped + k))
	grep '^SKIP ' "$out" | sed 's/^/    /' || true
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $name: exited $rc with no FAIL line" >>"$out"; f=1
	fi
	passed=$((passed + p)); failed=$((failed + f))
	printf '%-44s %4d passed %3d failed  %3ss\n' "$name" "$p" "$f" "$(( $(date +%s) - start ))"
	if [ "$f" -gt 0 ]; then
		grep -A12 '^FAIL ' "$out" | sed 's/^/    /' | head -60
		failures="$failures $name"
	fi
}

for b in "$SPOTRUN_BUILD"/tests/test_*; do
	[ -x "$b" ] || continue
	n=unit/$(basename "$b"); want "$n" || continue
	run_one "$n" "$b"
done
for t in "$top"/tests/cli/*.sh "$top"/tests/integration/*.sh; do
	[ -f "$t" ] || continue
	n=$(basename "$(dirname "$t")")/$(basename "$t" .sh); want "$n" || continue
	run_one "$n" sh "$t"
done
for b in "$SPOTRUN_BUILD"/fuzz/fuzz_*; do
	[ -x "$b" ] || continue
	n=fuzz/$(basename "$b"); want "$n" || continue
	corpus="$top/tests/fuzz/corpus/$(basename "$b" | sed 's/^fuzz_//')"
	run_one "$n" "$b" "$corpus"
done

[ -n "$failures" ] && echo "failed:$failures (logs in $log_dir)"
[ -z "$failures" ] && rm -rf "$log_dir"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
