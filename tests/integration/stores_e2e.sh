#!/bin/sh
# stores_e2e.sh - spotrun itself (push, pull, verify, ls, run) against a real
# S3 server (moto, on 127.0.0.1), with the AWS CLI as the independent client
# that must list and restore what spotrun wrote, foreign objects under a
# job's prefix that must never pass for a checkpoint, and a fault-injecting
# proxy (tests/servers/fault_proxy.py): a share of 503/500/reset answers
# must still end in a committed, verified checkpoint; 100% failure must end
# in exit 69 with the previous checkpoint intact.
. "$(dirname "$0")/../lib.sh"

PY=$(python3 -c 'import sys; print(sys.executable)')
SHARED=$(mktemp -d "${TMPDIR:-/tmp}/sr-e2e.XXXXXX")
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 \
	AWS_PAGER="" SPOTRUN_RETRY_BASE_MS=20 SPOTRUN_BIN="$SR"
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_REGION 2>/dev/null || true

cleanup() {
	for p in "$SHARED"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
	rm -rf "$SHARED"
}
trap cleanup EXIT INT TERM

start_server() { # NAME CMD...
	name=$1; shift
	"$@" >"$SHARED/$name.log" 2>&1 &
	echo $! >"$SHARED/$name.pid"
}
start_server moto "$PY" -m moto.server -H 127.0.0.1 -p 0
wait_for "grep -q 'Running on http://127.0.0.1:' '$SHARED/moto.log'" 30 ||
	{ echo "FAIL $SUITE/setup: moto did not start"; exit 1; }
MOTO=http://127.0.0.1:$(sed -n 's|.*Running on http://127.0.0.1:\([0-9]*\).*|\1|p' "$SHARED/moto.log" | head -1)
wait_for "curl -sf -o /dev/null $MOTO/moto-api/" 20 || { echo "FAIL $SUITE/setup: moto not ready"; exit 1; }
aws --endpoint-url "$MOTO" s3 mb s3://e2e >/dev/null || { echo "FAIL $SUITE/setup: bucket"; exit 1; }

# proxy NAME ARGS...: a fault proxy in front of moto; prints its URL
proxy() {
	name=$1; shift
	start_server "$name" "$PY" "$SPOTRUN_TOP/tests/servers/fault_proxy.py" --upstream "$MOTO" "$@"
	wait_for "grep -q '^port ' '$SHARED/$name.log'" 10 || return 1
	echo "http://127.0.0.1:$(sed -n 's/^port //p' "$SHARED/$name.log")"
}

mkckpt() { # DIR MB: a checkpoint folder with a few files
	mkdir -p "$1/sub"
	head -c "$(( $2 * 1048576 ))" /dev/urandom >"$1/weights.bin"
	printf '{"step": 7}\n' >"$1/trainer_state.json"
	printf 'tok' >"$1/sub/tokenizer.txt"
	ln -s weights.bin "$1/link"
}

S3() { "$SR" "$@" --endpoint "$MOTO"; }

t_aws_cli_reads_what_spotrun_wrote() {
	mkckpt step-000007 12
	expect_rc 0 S3 push step-000007 --job cli --store s3://e2e/runs --part-size 1M --portable
	expect_rc 0 aws --endpoint-url "$MOTO" s3 ls --recursive s3://e2e/runs/cli/
	assert_contains "$OUT" "cli/ckpt/00000001/manifest.json"
	assert_contains "$OUT" "cli/ckpt/00000001/data.tar.zst"
	expect_rc 0 aws --endpoint-url "$MOTO" s3 cp s3://e2e/runs/cli/ckpt/00000001/data.tar.zst data.tar.zst
	mkdir plain && (cd plain && zstd -dc ../data.tar.zst | tar -xf -) || fail "zstd | tar failed"
	diff -r step-000007 plain/step-000007 || fail "restored tree differs"
	expect_rc 0 aws --endpoint-url "$MOTO" s3 cp s3://e2e/runs/cli/ckpt/00000001/manifest.json m.json
	python3 -c 'import json,sys; m=json.load(open("m.json")); assert m["job"]=="cli" and m["parts"], m'
	expect_rc 0 S3 verify --job cli --store s3://e2e/runs
	expect_rc 0 S3 pull back --job cli --store s3://e2e/runs
	diff -r step-000007 back || fail "pulled tree differs"
}
t_foreign_objects_never_a_checkpoint() {
	mkckpt s1 1
	expect_rc 0 S3 push s1 --job fj --store s3://e2e/f --step 1
	# an upload without a manifest, and junk, under the job's prefix
	head -c 100000 /dev/urandom >junk
	aws --endpoint-url "$MOTO" s3 cp junk s3://e2e/f/fj/ckpt/00000009/data.tar.zst >/dev/null
	aws --endpoint-url "$MOTO" s3 cp junk s3://e2e/f/fj/ckpt/notaseq/manifest.json >/dev/null
	aws --endpoint-url "$MOTO" s3 cp junk s3://e2e/f/fj/random.bin >/dev/null
	expect_rc 0 S3 ls --job fj --store s3://e2e/f --json
	python3 -c '
import json,sys
d=json.load(open(sys.argv[1])); c=d["checkpoints"] if isinstance(d,dict) else d
assert [x["seq"] for x in c]==[1], c' "$T/out" || fail "ls: $OUT"
	expect_rc 0 S3 pull got --job fj --store s3://e2e/f
	diff -r s1 got || fail "pulled the wrong thing"
}
t_faults_still_commit_and_verify() {
	P=$(proxy faulty --fail-every 4 --error-every 7 --reset-every 9) || fail "proxy did not start"
	mkckpt f1 14
	expect_rc 0 "$SR" push f1 --job flt --store s3://e2e/flt --endpoint "$P" --part-size 1M
	st=$(curl -s "$P/_proxy/stats")
	python3 -c 'import json,sys; s=json.loads(sys.argv[1]); assert s["slowdown"]>0 and s["error"]>0 and s["reset"]>0, s' "$st" ||
		fail "no faults injected: $st"
	expect_rc 0 S3 verify --job flt --store s3://e2e/flt
	expect_rc 0 S3 pull f1back --job flt --store s3://e2e/flt
	diff -r f1 f1back || fail "tree differs after faults"
}
t_total_failure_is_69_previous_intact() {
	mkckpt g1 2
	expect_rc 0 S3 push g1 --job dead --store s3://e2e/dead --step 1
	P=$(proxy down --fail-all) || fail "proxy did not start"
	mkckpt g2 2
	t0=$(now_ms)
	expect_rc 69 "$SR" push g2 --job dead --store s3://e2e/dead --endpoint "$P" --step 2
	assert_range $(( $(now_ms) - t0 )) 0 30000 "time to give up (ms)"
	expect_rc 0 S3 ls --job dead --store s3://e2e/dead --json
	python3 -c '
import json,sys
d=json.load(open(sys.argv[1])); c=d["checkpoints"] if isinstance(d,dict) else d
assert [x["step"] for x in c]==[1], c' "$T/out" || fail "ls: $OUT"
	expect_rc 0 S3 verify --job dead --store s3://e2e/dead
}
t_run_loop_on_s3_restores_on_a_new_machine() {
	TRAIN="$SPOTRUN_TOP/examples/train.py"
	ARGS="--steps 30 --ckpt-every 5 --step-seconds 0.03 --size-mb 1"
	ref=$(SPOTRUN_CKPT_DIR=$T/ref "$PY" "$TRAIN" $ARGS 2>/dev/null)
	expect_rc 75 "$SR" --job loop --store s3://e2e/loop --endpoint "$MOTO" --simulate preempt@0.7 -- "$PY" "$TRAIN" $ARGS
	rm -rf spotrun-ckpt
	expect_rc 0 "$SR" --job loop --store s3://e2e/loop --endpoint "$MOTO" -- "$PY" "$TRAIN" $ARGS
	assert_contains "$ERR" "restoring checkpoint"
	assert_eq "$OUT" "$ref" "digest"
	expect_rc 0 aws --endpoint-url "$MOTO" s3 cp s3://e2e/loop/loop/job.json job.json
	python3 -c '
import json; j=json.load(open("job.json"))
assert len(j["runs"])==2 and j["runs"][0]["exit"]==75 and j["runs"][1]["exit"]==0, j["runs"]'
}
t_gc_deletes_in_batches() {
	for i in 1 2 3 4; do
		mkckpt g$i 1
		expect_rc 0 S3 push g$i --job gcb --store s3://e2e/gc --step $i --full
	done
	expect_rc 0 S3 gc -v --keep 1 --job gcb --store s3://e2e/gc
	expect_rc 0 aws --endpoint-url "$MOTO" s3 ls --recursive s3://e2e/gc/gcb/ckpt/
	assert_not_contains "$OUT" "ckpt/00000001/"
	assert_not_contains "$OUT" "ckpt/00000003/"
	assert_contains "$OUT" "ckpt/00000004/manifest.json"
	assert_contains "$OUT" "ckpt/00000004/data.tar.zst"
	expect_rc 0 S3 verify --job gcb --store s3://e2e/gc
}
t_store_unreachable_run_exits_69() {
	expect_rc 69 "$SR" --job un --store s3://e2e/x --endpoint http://127.0.0.1:9 -- sh -c 'echo started >started'
	assert_contains "$ERR" "http://127.0.0.1:9 unreachable"
	assert_no_file started "the command must not start without the store's checkpoints"
}

run_tests
