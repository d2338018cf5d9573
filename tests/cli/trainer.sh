# trainer.sh - tests of the toy trainer examples/train.py on its own (no spotrun, no
# SPOTRUN_SOCKET): checkpoint folders with .spotrun-complete markers, notices by
# signal and by file (exit 75), resume to the same digest, corrupt resume data (65).
. "$SPOTRUN_TOP/tests/lib.sh"

# the interpreter itself, not a version-manager shim that costs half a second a start
PY=${PYTHON:-$(python3 -c "import sys; print(sys.executable)")}
TRAIN=$SPOTRUN_TOP/examples/train.py
# small and quick; the digest does not depend on --step-seconds or --ckpt-every
SMALL="--steps 20 --ckpt-every 5 --size-mb 0.1"
LONG="--steps 80 --ckpt-every 10 --size-mb 0.25"

digest_of() { # ARGS...: the digest of an uninterrupted run, computed in its own folder
	d=$(mktemp -d "$T/base.XXXXXX")
	expect_rc 0 env SPOTRUN_CKPT_DIR="$d" "$PY" "$TRAIN" --step-seconds 0 --ckpt-every 7 "$@"
	echo "$OUT"
}

newest() { ls -d "$1"/step-* | sort | tail -1; }

# notice_run SIG ARGS...: start the trainer in the background, wait until it is
# training, send SIG after a moment, and wait: $RC, $OUT, $ERR as with run
notice_run() {
	sig=$1; shift
	"$PY" "$TRAIN" "$@" >"$T/out" 2>"$T/err" &
	pid=$!
	wait_for "grep -q '^start:' '$T/err'" 10 || fail "trainer did not start: $(cat "$T/err")"
	sleep 0.4
	kill -"$sig" "$pid"
	RC=0; wait "$pid" || RC=$?
	OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
}

t_uninterrupted_run() {
	export SPOTRUN_CKPT_DIR=$T/ck
	expect_rc 0 "$PY" "$TRAIN" $SMALL --step-seconds 0.01
	assert_eq "$(echo "$OUT" | wc -l | tr -d ' ')" 1 "stdout lines"
	echo "$OUT" | grep -Eq '^digest [0-9a-f]{64}$' || fail "bad digest line: '$OUT'"
	assert_contains "$ERR" "step 20 checkpointed in"
	assert_eq "$(cd ck && ls -A | tr '\n' ' ')" "step-000005 step-000010 step-000015 step-000020 " "folders"
	for s in 05 10 15 20; do
		d=ck/step-0000$s
		assert_file "$d/.spotrun-complete"
		assert_contains "$(cat "$d/meta.json")" "\"step\": $((1$s - 100))"
		assert_contains "$(cat "$d/meta.json")" "$(sha256sum "$d/state.bin" | cut -d' ' -f1)" "meta.json of $d"
	done
	assert_eq "$(wc -c <ck/step-000020/state.bin | tr -d ' ')" $((26214 * 4)) "state.bin size"
	# deterministic: the same arguments give the same digest, whatever the pacing
	assert_eq "$(digest_of $SMALL)" "$OUT" "digest of a second run"
	assert_ne "$(digest_of $SMALL --seed 2)" "$OUT" "digest with another seed"
}

t_notice_then_resume_same_digest() {
	ref=$(digest_of $LONG)
	export SPOTRUN_CKPT_DIR=$T/ck
	notice_run USR1 $LONG --step-seconds 0.02
	assert_eq "$RC" 75 "exit status after SIGUSR1"
	assert_eq "$OUT" "" "stdout of an interrupted run"
	n=$(echo "$ERR" | sed -n 's/^notice: checkpointed step \([0-9]*\), exiting$/\1/p')
	[ -n "$n" ] || fail "no notice line: $ERR"
	assert_range "$n" 1 79 "notice step"
	last=$(newest ck)
	assert_eq "$last" "ck/$(printf 'step-%06d' "$n")" "newest folder"
	assert_file "$last/.spotrun-complete"
	assert_eq "$(ls -A ck | grep -c tmp)" 0 "temp folders left"
	expect_rc 0 env SPOTRUN_RESUME_DIR=$T/$last "$PY" "$TRAIN" $LONG --step-seconds 0
	assert_contains "$ERR" "resumed from step $n"
	assert_eq "$OUT" "$ref" "digest after resume"
	assert_file ck/step-000080/.spotrun-complete
}

t_sigterm_and_custom_signal_are_notices() {
	export SPOTRUN_CKPT_DIR=$T/a
	notice_run TERM $LONG --step-seconds 0.02
	assert_eq "$RC" 75 "exit status after SIGTERM"
	assert_contains "$ERR" "notice received (SIGTERM)"
	export SPOTRUN_CKPT_DIR=$T/b
	notice_run USR2 $LONG --step-seconds 0.02 --notice-signal usr2
	assert_eq "$RC" 75 "exit status after SIGUSR2 with --notice-signal usr2"
	assert_contains "$ERR" "notice: checkpointed step"
}

t_notice_file() {
	ref=$(digest_of $SMALL)
	export SPOTRUN_CKPT_DIR=$T/ck SPOTRUN_NOTICE_FILE=$T/notice.json
	echo '{"kind":"preemption"}' >notice.json
	expect_rc 75 "$PY" "$TRAIN" $SMALL --step-seconds 0
	assert_contains "$ERR" "notice: checkpointed step 0, exiting"
	assert_file ck/step-000000/.spotrun-complete
	rm notice.json
	expect_rc 0 env SPOTRUN_RESUME_DIR=$T/ck/step-000000 "$PY" "$TRAIN" $SMALL --step-seconds 0
	assert_eq "$OUT" "$ref" "digest after resume from step 0"
}

t_fail_at_step_once() {
	ref=$(digest_of $SMALL)
	export SPOTRUN_CKPT_DIR=$T/ck
	expect_rc 1 "$PY" "$TRAIN" $SMALL --step-seconds 0 --fail-at-step 12
	assert_eq "$(newest ck)" ck/step-000010 "newest folder after the failure"
	expect_rc 0 env SPOTRUN_RESTARTS=1 SPOTRUN_RESUME_DIR=$T/ck/step-000010 \
		"$PY" "$TRAIN" $SMALL --step-seconds 0 --fail-at-step 12
	assert_eq "$OUT" "$ref" "digest after the restart"
}

t_corrupt_resume_is_data_error() {
	export SPOTRUN_CKPT_DIR=$T/ck
	expect_rc 0 "$PY" "$TRAIN" $SMALL --step-seconds 0
	cp -R ck/step-000010 bad
	printf 'X' | dd of=bad/state.bin bs=1 seek=100 conv=notrunc 2>/dev/null
	expect_rc 65 env SPOTRUN_RESUME_DIR=$T/bad "$PY" "$TRAIN" $SMALL --step-seconds 0
	assert_contains "$ERR" "corrupt"
	assert_eq "$OUT" "" "stdout"
	# a checkpoint of other arguments is refused too, and usage errors are 64
	expect_rc 65 env SPOTRUN_RESUME_DIR=$T/ck/step-000010 "$PY" "$TRAIN" $SMALL --seed 9
	expect_rc 64 "$PY" "$TRAIN" --size-mb 0
}

run_tests
