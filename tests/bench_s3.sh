#!/bin/sh
# bench_s3.sh - the S3 half of `make bench`: spotrun push/pull of the
# synthetic checkpoint to a local s3rver (npm; it streams to disk, fast
# enough to measure a client, unlike moto) next to the peer pipelines
# against the same server in the same run:
#   push: tar -cf - D | zstd -1 -T0 | aws s3 cp - s3://b/peer.tar.zst
#         aws s3 cp --recursive D s3://b/rec/
#   pull: aws s3 cp s3://b/peer.tar.zst - | zstd -dc | tar -x
# Prints wall MB/s, the client's CPU seconds per GB, its peak RSS, and the
# server's CPU seconds, since the local server can be the ceiling.
#   BENCH_S3_SIZE  checkpoint size (default 1G)    BENCH_REPS runs (default 1)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
: "${SPOTRUN_BIN:=$top/spotrun}"
: "${BENCH_S3_SIZE:=1G}"
: "${BENCH_REPS:=1}"
SR=$SPOTRUN_BIN
cd "$top"
make --no-print-directory build/tools/ckpt_gen >/dev/null
[ -x node_modules/.bin/s3rver ] || npm install --no-audit --no-fund >/dev/null
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (apt-get install time)" >&2; exit 69; }
W=$(mktemp -d "${TMPDIR:-/tmp}/spotrun-bench-s3.XXXXXX")
SPID=""
trap '[ -n "$SPID" ] && kill $SPID 2>/dev/null; rm -rf "$W"' EXIT INT TERM
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 AWS_PAGER="" \
	AWS_REQUEST_CHECKSUM_CALCULATION=when_required
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL 2>/dev/null || true

mkdir -p "$W/data" "$W/ckpt"
NODE_OPTIONS=--openssl-legacy-provider node_modules/.bin/s3rver -d "$W/data" -a 127.0.0.1 -p 0 \
	--silent >"$W/s3rver.log" 2>&1 &
SPID=$!
i=0
until grep -q 'listening on 127.0.0.1:' "$W/s3rver.log"; do
	i=$((i + 1)); [ $i -gt 200 ] && { echo "bench: s3rver did not start" >&2; exit 1; }
	sleep 0.05
done
EP=http://127.0.0.1:$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$W/s3rver.log")
aws --endpoint-url "$EP" s3 mb s3://bench >/dev/null
C=$W/ckpt/step-000100
echo "bench-s3: generating a $BENCH_S3_SIZE synthetic checkpoint" >&2
build/tools/ckpt_gen "$C" "$BENCH_S3_SIZE"
BYTES=$(du -sb "$C" | cut -f1)
cat "$C"/*.safetensors "$C"/optimizer/* >/dev/null

server_cpu() { awk '{print $14 + $15}' "/proc/$SPID/stat"; }
measure() { # NAME CMD...: "name wall user sys rss_kb server_ticks" into $W/times
	name=$1; shift
	before=$(server_cpu)
	/usr/bin/time -f "%e %U %S %M" -o "$W/t.one" "$@" >/dev/null 2>"$W/t.err" ||
		{ cat "$W/t.err" >&2; echo "bench-s3: '$name' failed" >&2; exit 1; }
	echo "$name $(cat "$W/t.one") $(( $(server_cpu) - before ))" >>"$W/times"
}

: >"$W/times"
for rep in $(seq "$BENCH_REPS"); do
	rm -rf "$W/pulled" "$W/peer-x"
	measure push "$SR" push "$C" --job b$rep --store s3://bench/sr --endpoint "$EP"
	measure peer_pipe sh -c "tar -cf - -C '$W/ckpt' step-000100 | zstd -q -1 -T0 | aws --endpoint-url '$EP' s3 cp --only-show-errors - s3://bench/peer$rep.tar.zst"
	measure peer_recursive aws --endpoint-url "$EP" s3 cp --only-show-errors --recursive "$C" "s3://bench/rec$rep/"
	measure pull "$SR" pull "$W/pulled" --job b$rep --store s3://bench/sr --endpoint "$EP"
	mkdir "$W/peer-x"
	measure peer_pull sh -c "aws --endpoint-url '$EP' s3 cp --only-show-errors s3://bench/peer$rep.tar.zst - | zstd -q -dc | tar -xf - -C '$W/peer-x'"
	echo "bench-s3: run $rep of $BENCH_REPS done" >&2
done
diff -r "$C" "$W/pulled" >/dev/null || { echo "bench-s3: pulled tree differs" >&2; exit 1; }

python3 - "$W/times" "$BYTES" "$(getconf CLK_TCK)" "$BENCH_S3_SIZE" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    n, wall, user, sys_, rss, srv = line.split()
    rows.setdefault(n, []).append((float(wall), float(user) + float(sys_), int(rss), int(srv)))
size, tck = int(sys.argv[2]), int(sys.argv[3])
def med(n, i): return statistics.median(r[i] for r in rows[n])
print(f"\nS3 bench: {size/1e9:.2f} GB synthetic checkpoint ({sys.argv[4]}) against a local s3rver\n")
print(f"{'':16} {'MB/s':>8} {'client CPU s/GB':>16} {'peak RSS MiB':>13} {'server CPU s':>13}")
for n in ["push", "peer_pipe", "peer_recursive", "pull", "peer_pull"]:
    w = med(n, 0)
    print(f"{n:16} {size/w/1e6:8.0f} {med(n,1)/(size/1e9):16.2f} {med(n,2)/1024:13.0f} {med(n,3)/tck:13.2f}")
r = lambda a, b: med(b, 0) / med(a, 0)
print(f"\npush vs tar|zstd|aws s3 cp -:    {r('push','peer_pipe'):.2f}x  (target 1.5x)")
print(f"push vs aws s3 cp --recursive:   {r('push','peer_recursive'):.2f}x  (target 2x)")
print(f"pull vs aws s3 cp -|zstd -d|tar: {r('pull','peer_pull'):.2f}x  (target 2x)")
PY
