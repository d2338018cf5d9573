#!/bin/sh
# bench_start.sh - part of `make bench`: what `spotrun -- true` adds to a
# command's start and exit outside any cloud, in three set-ups: the
# defaults (local folder store, auto-detection with every metadata endpoint
# a closed port on 127.0.0.1), --provider none, and --store none --provider
# none.  Median of BENCH_START_RUNS (default 21) against the bare command.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
: "${SPOTRUN_BIN:=$top/spotrun}"
: "${BENCH_START_RUNS:=21}"
W=$(mktemp -d "${TMPDIR:-/tmp}/spotrun-bench-start.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
cd "$W"
export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9 GCE_METADATA_HOST=127.0.0.1:9 \
	SPOTRUN_AZURE_METADATA_ENDPOINT=http://127.0.0.1:9 SPOTRUN_ALIBABA_METADATA_ENDPOINT=http://127.0.0.1:9 \
	SPOTRUN_OCI_METADATA_ENDPOINT=http://127.0.0.1:9 SPOTRUN_IBM_METADATA_ENDPOINT=http://127.0.0.1:9
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
run_ms() { # CMD...: median wall ms over the runs
	for i in $(seq "$BENCH_START_RUNS"); do
		a=$(date +%s%N); "$@" >/dev/null 2>&1 || true; b=$(date +%s%N)
		echo $(( (b - a) / 1000 ))
	done | median
}
bare=$(run_ms /bin/true)
printf '\nstart-up: what spotrun adds to /bin/true (median of %s runs, bare %.1f ms)\n' \
	"$BENCH_START_RUNS" "$(echo "$bare" | awk '{print $1/1000}')"
for setup in "" "--provider none" "--store none --provider none"; do
	t=$(run_ms "$SPOTRUN_BIN" $setup -- /bin/true)
	printf '  %-32s +%.1f ms\n' "${setup:-defaults}" "$(echo "$t $bare" | awk '{print ($1-$2)/1000}')"
done
