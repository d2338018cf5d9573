#!/bin/sh
# demo.sh - `make demo`: the toy trainer under spotrun on the embedded
# defaults (a local folder store, a simulated preemption).  It runs the
# trainer once uninterrupted for a reference digest, then under spotrun with
# a notice mid-run (exit 75), then once more: spotrun restores the newest
# checkpoint, the trainer resumes, and both digests must match.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
SR=${SPOTRUN_BIN:-$top/spotrun}
PY=$(python3 -c 'import sys; print(sys.executable)')
work=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/spotrun-demo.XXXXXX")}
mkdir -p "$work"
cd "$work"
export SPOTRUN_BIN="$SR"
args="--steps 60 --ckpt-every 10 --step-seconds 0.05 --size-mb 8"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. reference run, no interruption"
ref=$(SPOTRUN_CKPT_DIR=$work/ref "$PY" "$top/examples/train.py" $args)
echo "$ref"

say "2. under spotrun, preempted 1.5 s in (simulated notice)"
set +e
"$SR" --job demo --simulate preempt@1.5 --signal-grace 20 -- "$PY" "$top/examples/train.py" $args
rc=$?
set -e
echo "spotrun exited $rc (75 = interrupted, checkpoint safe, retry me)"
[ "$rc" -eq 75 ] || { echo "demo: expected exit 75"; exit 1; }

say "3. the retry: spotrun resumes from the newest checkpoint"
out=$("$SR" --job demo -- "$PY" "$top/examples/train.py" $args)
echo "$out"

say "result"
if [ "$out" = "$ref" ]; then
	echo "the resumed run ends with the same digest as the uninterrupted one: OK"
	echo "(work folder: $work; checkpoints in $work/spotrun-ckpt/demo)"
else
	echo "digest mismatch: '$out' vs '$ref'"
	exit 1
fi
