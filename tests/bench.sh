#!/bin/sh
# bench.sh - `make bench`: spotrun push/pull against a file:// store versus
# the peer pipelines `tar -cf - D | zstd -1 -T0 > x.tar.zst` and
# `zstd -dc x.tar.zst | tar -xf -`, on the synthetic checkpoint of PERF.md
# (tests/tools/ckpt_gen.c), all in the same run so the ratios are fair.
# Prints wall time, MB/s of checkpoint bytes, CPU seconds, peak RSS and the
# compression ratio of each (median of BENCH_REPS runs), then the ratios.
#   BENCH_SIZE  checkpoint size (default 2G)      BENCH_REPS  runs (default 3)
#   BENCH_DIR   scratch folder (default a temp folder in $TMPDIR; needs ~5x size)
#   SPOTRUN_BIN binary (default ./spotrun)        BENCH_ARGS  extra push/pull flags
#   SPOTRUN_BUILD build folder holding tools/ckpt_gen (default build, made here)
# Inputs are read from the page cache (a warm-up read first) on both sides;
# spotrun fsyncs what it writes (its contract), the peers do not.  Last, a
# LoRA-style step (base files unchanged, a small adapter and its optimizer
# state added, trainer_state.json rewritten) is pushed incrementally and its
# bytes compared with the full push's.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
: "${SPOTRUN_BIN:=$top/spotrun}"
: "${BENCH_SIZE:=2G}"
: "${BENCH_REPS:=3}"
: "${BENCH_ARGS:=}"
SR=$SPOTRUN_BIN
cd "$top"
if [ -z "${SPOTRUN_BUILD:-}" ]; then
	make --no-print-directory build/tools/ckpt_gen >/dev/null
fi
GEN=${SPOTRUN_BUILD:-build}/tools/ckpt_gen
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (apt-get install time)" >&2; exit 69; }
W=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/spotrun-bench.XXXXXX")}
mkdir -p "$W"
trap 'rm -rf "$W"' EXIT INT TERM
C=$W/ckpt/step-000100
mkdir -p "$W/ckpt"
echo "bench: generating a $BENCH_SIZE synthetic checkpoint in $C" >&2
"$GEN" "$C" "$BENCH_SIZE"
BYTES=$(du -sb "$C" | cut -f1)
cat "$C"/*.safetensors "$C"/optimizer/* >/dev/null	# warm the page cache

# measure NAME CMD...: appends "name wall user sys maxrss_kb" to $W/times
measure() {
	name=$1; shift
	/usr/bin/time -f "$name %e %U %S %M" -o "$W/t.one" "$@" >/dev/null 2>"$W/t.err" ||
		{ cat "$W/t.err" >&2; echo "bench: '$name' failed" >&2; exit 1; }
	cat "$W/t.one" >>"$W/times"
}

: >"$W/times"
for rep in $(seq "$BENCH_REPS"); do
	rm -rf "$W/store" "$W/pulled" "$W/peer.tar.zst" "$W/peer-x"
	measure push "$SR" push "$C" --job bench --store "file://$W/store" $BENCH_ARGS
	sync
	measure peer_push sh -c "tar -cf - -C '$W/ckpt' step-000100 | zstd -q -1 -T0 > '$W/peer.tar.zst'"
	sync
	measure pull "$SR" pull "$W/pulled" --job bench --store "file://$W/store" $BENCH_ARGS
	sync
	mkdir "$W/peer-x"
	measure peer_pull sh -c "zstd -q -dc '$W/peer.tar.zst' | tar -xf - -C '$W/peer-x'"
	sync
	echo "bench: run $rep of $BENCH_REPS done" >&2
done
diff -r "$C" "$W/pulled" >/dev/null || { echo "bench: pulled tree differs" >&2; exit 1; }
STORED=$(stat -c %s "$W/store/bench/ckpt/00000001/data.tar.zst" 2>/dev/null ||
	find "$W/store" -name data.tar.zst -exec stat -c %s {} \; | head -1)
PEER=$(stat -c %s "$W/peer.tar.zst")

# the LoRA-style step, pushed incrementally on top of the last full push
C2=$W/ckpt/step-000200
cp -al "$C" "$C2"
rm "$C2/trainer_state.json"
printf '{"global_step": 200, "log_history": [{"loss": 1.234}]}\n' >"$C2/trainer_state.json"
ADAPTER=$((BYTES / 300))
head -c "$ADAPTER" /dev/urandom >"$C2/adapter_model.bin"
head -c $((ADAPTER * 2)) /dev/urandom >"$C2/optimizer/adapter_optimizer.pt"
measure incr "$SR" push "$C2" --job bench --store "file://$W/store" $BENCH_ARGS
INCR=$(cat "$W/store/bench/ckpt/00000002/data.tar.zst" "$W/store/bench/ckpt/00000002/manifest.json" | wc -c)
FULL=$(cat "$W/store/bench/ckpt/00000001/data.tar.zst" "$W/store/bench/ckpt/00000001/manifest.json" | wc -c)

python3 - "$W/times" "$BYTES" "$STORED" "$PEER" "$BENCH_SIZE" "$BENCH_REPS" "$INCR" "$FULL" <<'EOF'
import statistics, sys
rows, nbytes, stored, peer = {}, int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
incr, full = int(sys.argv[7]), int(sys.argv[8])
for line in open(sys.argv[1]):
    n, wall, usr, sys_, rss = line.split()
    rows.setdefault(n, []).append((float(wall), float(usr) + float(sys_), int(rss)))
def med(n, i):
    return statistics.median(r[i] for r in rows[n])
print("synthetic checkpoint %s (%.0f MB), median of %s runs" % (sys.argv[5], nbytes / 1e6, sys.argv[6]))
print("%-10s %8s %9s %8s %9s %7s" % ("pipeline", "wall s", "MB/s", "CPU s", "RSS MiB", "ratio"))
for n in ("push", "peer_push", "pull", "peer_pull"):
    ratio = nbytes / (stored if n in ("push", "pull") else peer)
    print("%-10s %8.2f %9.0f %8.2f %9.1f %7.3f" % (n, med(n, 0), nbytes / 1e6 / med(n, 0), med(n, 1),
                                                  max(r[2] for r in rows[n]) / 1024, ratio))
print("push speed spotrun/peer: %.2fx (targets: >= 1.0 engine, >= 3 codec issue)" %
      (med("peer_push", 0) / med("push", 0)))
print("stored size spotrun/peer: %.3f (target < 1)" % (stored / peer))
print("pull speed spotrun/peer: %.2fx (targets: >= 1.6 engine, >= 2.5 codec issue)" %
      (med("peer_pull", 0) / med("pull", 0)))
print("incremental LoRA-style push: %d bytes = %.2f%% of the full push's %d, %.2f s (target < 10%%)" %
      (incr, 100.0 * incr / full, full, med("incr", 0)))
print("peak RSS push/pull: %.0f / %.0f MiB (target < 200)" %
      (max(r[2] for r in rows["push"]) / 1024, max(r[2] for r in rows["pull"]) / 1024))
EOF
