# loop.sh - the whole loop on the default local store: examples/train.py
# under spotrun, a notice at a random moment, exit 75, a restart on a "new
# machine" (local folder gone) that restores from the store, and the final
# digest equal to an uninterrupted run's.  Also: newest-wins background
# pushes, a corrupted newest checkpoint falling back to the previous one,
# --keep-local, and the measured push rate kept for the grace budget.
. "$SPOTRUN_TOP/tests/lib.sh"

PY=$(python3 -c 'import sys; print(sys.executable)')
TRAIN="$SPOTRUN_TOP/examples/train.py"
ARGS="--steps 40 --ckpt-every 5 --step-seconds 0.04 --size-mb 2"
export SPOTRUN_BIN="$SR"

reference() { SPOTRUN_CKPT_DIR=$T/ref "$PY" "$TRAIN" $ARGS 2>/dev/null; }

t_interrupt_restore_resume_same_digest() {
	ref=$(reference)
	at=$(awk -v s="$(date +%N)" 'BEGIN { srand(s); printf "%.2f", 0.6 + rand() * 1.0 }')
	expect_rc 75 "$SR" --job loop --simulate preempt@"$at" -- "$PY" "$TRAIN" $ARGS
	assert_contains "$ERR" "pushed '"
	expect_rc 0 "$SR" ls --job loop
	n1=$(grep -c '^ *[0-9]' "$T/out" || true)
	[ "$n1" -ge 1 ] || fail "no checkpoints listed: $OUT"
	rm -rf spotrun-ckpt # a new machine: only the store survives
	expect_rc 0 "$SR" --job loop -- "$PY" "$TRAIN" $ARGS
	assert_contains "$ERR" "restoring checkpoint"
	assert_contains "$ERR" "resumed from step"
	assert_eq "$OUT" "$ref" "digest after interrupt at ${at}s + restore"
}
t_resume_does_not_push_the_restored_checkpoint_again() {
	expect_rc 75 "$SR" --job rr --simulate preempt@0.8 -- "$PY" "$TRAIN" $ARGS
	expect_rc 0 "$SR" ls --job rr
	before=$(grep -c ' step-0' "$T/out" || true)
	rm -rf spotrun-ckpt
	# the command resumes and exits at once, committing nothing new
	expect_rc 0 "$SR" --job rr -- sh -c 'test -n "$SPOTRUN_RESUME_DIR"'
	assert_contains "$ERR" "restoring checkpoint"
	assert_not_contains "$ERR" "pushed '"
	expect_rc 0 "$SR" ls --job rr
	assert_eq "$(grep -c ' step-0' "$T/out" || true)" "$before" "checkpoints after a resume that committed nothing"
}
t_emergency_plan_skips_a_push_that_cannot_finish() {
	# a checkpoint is safe in the store; after the notice the command
	# commits a 200 GB (sparse) folder with 3 s left: pushing it cannot
	# finish, so the plan keeps the committed one instead of a half push
	cat >c.sh <<'EOS'
d=$SPOTRUN_CKPT_DIR/step-000001; mkdir -p $d; echo a >$d/w
"$SR" commit $d || exit 9
on_notice() {
	d=$SPOTRUN_CKPT_DIR/step-000002; mkdir -p $d; truncate -s 200G $d/big
	"$SR" commit $d; exit 0
}
trap on_notice USR1
while :; do sleep 0.05; done
EOS
	export SR
	expect_rc 75 "$SR" --job em --signal-grace 3 --kill-after 0.5 --simulate preempt@1 -- sh c.sh
	assert_contains "$ERR" "emergency plan: skip pushing"
	assert_contains "$ERR" "checkpoint 1 stays the newest in the store"
	expect_rc 0 "$SR" ls --job em
	assert_eq "$(grep -c ' step-0' "$T/out" || true)" 1 "checkpoints in the store"
	assert_contains "$OUT" "step-000001"
}
t_background_pushes_newest_wins() {
	# many quick commits while pushes run: the loop never blocks, and the
	# store's newest checkpoint ends as the last committed step
	expect_rc 0 "$SR" -v --job nw --part-size 256K -- "$PY" "$TRAIN" --steps 30 --ckpt-every 1 --step-seconds 0.01 --size-mb 4
	expect_rc 0 "$SR" ls --job nw --json
	python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
cks=d["checkpoints"] if isinstance(d,dict) else d
steps=[c["step"] for c in cks]
assert steps and max(steps)==30, steps
assert len(steps) < 31, ("every commit pushed: newest-wins did not skip any", steps)
' "$T/out" || fail "ls: $OUT"
}
t_corrupt_newest_falls_back_to_previous() {
	ref=$(reference)
	# the notice comes once two checkpoints are in the store (however slow
	# the machine), so there is a previous one to fall back to
	( wait_for '[ "$(ls spotrun-store/cf/ckpt 2>/dev/null | wc -l)" -ge 2 ]' 60; touch notice ) &
	expect_rc 75 "$SR" --job cf --notice-file notice -- "$PY" "$TRAIN" $ARGS
	wait
	newest=$(ls -d spotrun-store/cf/ckpt/* | sort | tail -1)
	python3 - "$newest/data.tar.zst" <<'EOP'
import sys
p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=0x40; open(p,'wb').write(b)
EOP
	rm -rf spotrun-ckpt
	expect_rc 0 "$SR" --job cf -- "$PY" "$TRAIN" $ARGS
	assert_contains "$ERR" "failed verification; trying the previous one"
	assert_eq "$OUT" "$ref" "digest after falling back"
}
t_keep_local_prunes_safe_folders() {
	expect_rc 0 "$SR" --job kl --keep-local 2 -- "$PY" "$TRAIN" --steps 30 --ckpt-every 5 --step-seconds 0.02 --size-mb 1
	n=$(ls -d spotrun-ckpt/kl/step-* | wc -l)
	assert_range "$n" 2 3 "local folders left with --keep-local 2"
	assert_file spotrun-ckpt/kl/step-000030
}
t_push_rate_measured_and_kept() {
	expect_rc 0 "$SR" --job pr -- "$PY" "$TRAIN" --steps 10 --ckpt-every 5 --step-seconds 0.01 --size-mb 2
	python3 -c '
import json
s=json.load(open("spotrun-ckpt/pr/.spotrun-state.json"))
assert s["push_bytes_per_sec"] > 0 and s["push_last_raw_bytes"] > 2000000, s'
	# the next run's notice subtracts the upload estimate from the grace
	expect_rc 75 "$SR" --job pr --simulate preempt@0.5 -- "$PY" "$TRAIN" $ARGS
	assert_contains "$ERR" "upload reserve"
	assert_not_contains "$ERR" "upload reserve 0.0 s"
}
t_store_none_keeps_everything_local() {
	ref=$(reference)
	expect_rc 75 "$SR" --job sn --store none --simulate preempt@1 -- "$PY" "$TRAIN" $ARGS
	assert_no_file spotrun-store
	expect_rc 0 "$SR" --job sn --store none -- "$PY" "$TRAIN" $ARGS
	assert_eq "$OUT" "$ref"
}
t_store_unreachable_refuses_to_start_from_scratch() {
	echo blocked >spotrun-store
	expect_rc 74 "$SR" --job su -- true
	assert_eq "$(wc -l <"$T/err")" 1
}

t_encrypted_run_restores_with_its_key() {
	ref=$(reference)
	head -c 32 /dev/urandom >key.bin
	head -c 32 /dev/urandom >other.bin
	expect_rc 75 "$SR" --job enc --encrypt-key-file key.bin --simulate preempt@0.8 -- "$PY" "$TRAIN" $ARGS
	# the store holds no plaintext of the state
	if grep -rqa '"seed"' spotrun-store/enc/ckpt/*/data.tar.zst; then fail "plaintext in the store"; fi
	rm -rf spotrun-ckpt
	expect_rc 65 "$SR" --job enc --encrypt-key-file other.bin -- "$PY" "$TRAIN" $ARGS
	assert_no_file spotrun-ckpt/enc/step-000005
	expect_rc 0 "$SR" --job enc --encrypt-key-file key.bin -- "$PY" "$TRAIN" $ARGS
	assert_eq "$OUT" "$ref" "digest after an encrypted restore"
}

run_tests
