# slurm.sh - spotrun under a real single-node Slurm (Debian's slurmctld and
# slurmd, started by the test under a temp folder and stopped on exit): a
# batch job running examples/train.py under spotrun, submitted with
# --requeue, gets a notice through `scancel --signal=USR1 --batch` (fast and
# deterministic), checkpoints, requeues itself with `scontrol requeue`,
# restarts with SLURM_RESTART_COUNT=1 (SPOTRUN_RESTARTS=1), resumes from the
# store on a fresh checkpoint folder and ends with the digest of an
# uninterrupted run.  With SPOTRUN_SLOW_TESTS=1 also the real time limit
# (`--time=1 --signal=B:USR1@10`, ~100 s).  Slurm missing is a failure, not
# a skip: tests/deps.sh installs it.
. "$SPOTRUN_TOP/tests/lib.sh"
. "$SPOTRUN_TOP/tests/servers/slurm_helpers.sh"

PY=$(python3 -c 'import sys; print(sys.executable)')
TRAIN="$SPOTRUN_TOP/examples/train.py"

# job.sh NAME ARGS...: the batch script; a fresh checkpoint folder per
# attempt stands for another node, so the resume must come from the store
write_job() {
	cat >job.sh <<EOS
#!/bin/sh
echo "attempt restart_count=\${SLURM_RESTART_COUNT:-unset}"
exec "$SR" --store "file://$T/store" --ckpt-dir "$T/ckpt-\${SLURM_RESTART_COUNT:-0}" -- \\
	sh -c 'echo "child SPOTRUN_RESTARTS=\$SPOTRUN_RESTARTS SPOTRUN_JOB=\$SPOTRUN_JOB" >&2; exec "\$0" "\$@"' \\
	"$PY" "$TRAIN" $*
EOS
	chmod +x job.sh
}

# wait_job JOBID SECS: until the job completed (or failed)
wait_job() {
	_wj=0
	while :; do
		st=$(slurm_state "$1")
		case $st in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) return 0 ;; esac
		_wj=$((_wj + 1)); [ $_wj -ge $(($2 * 5)) ] && fail "job $1 still $st after $2 s: $(cat slurm.out 2>/dev/null | tail -20)"
		sleep 0.2
	done
}

check_resumed() { # REF
	out=$(cat slurm.out)
	assert_contains "$out" "attempt restart_count=unset"
	assert_contains "$out" "attempt restart_count=1"
	assert_contains "$out" "child SPOTRUN_RESTARTS=0 SPOTRUN_JOB=trainjob"
	assert_contains "$out" "child SPOTRUN_RESTARTS=1 SPOTRUN_JOB=trainjob"
	assert_contains "$out" "interruption notice: scheduler from signal"
	assert_contains "$out" "requeued Slurm job $JOB"
	assert_contains "$out" "restoring checkpoint"
	assert_contains "$out" "resumed from step"
	assert_eq "$(grep '^digest ' slurm.out)" "$1" "digest after requeue + resume"
	assert_eq "$(slurm_field "$JOB" ExitCode)" "0:0" "final exit code"
	assert_eq "$(slurm_field "$JOB" Restarts)" "1" "Slurm restarts"
	# the job record: two runs, the first interrupted, the second finished
	expect_rc 0 "$SR" ls --store "file://$T/store" --job trainjob --json
	printf '%s' "$OUT" | python3 -c '
import json,sys
d=json.load(sys.stdin)
runs=d["runs"]
assert [r["exit"] for r in runs]==[75,0], runs
ev=[e["event"] for e in d["timeline"]]
assert "notice" in ev and "requeue" in ev and "resume" in ev, ev
assert d["timeline"][0]["slurm"]["restart_count"]==0 and any(e["slurm"]["restart_count"]==1 for e in d["timeline"]), d["timeline"]
' || fail "job record: $OUT"
}

t_scancel_usr1_requeues_and_resumes() {
	slurm_start "$T/slurm" || fail "cannot start slurm"
	trap slurm_stop EXIT
	args="--steps 60 --ckpt-every 5 --step-seconds 0.1 --size-mb 1"
	ref=$(SPOTRUN_CKPT_DIR=$T/ref "$PY" "$TRAIN" $args 2>/dev/null)
	write_job $args
	JOB=$(sbatch --parsable --requeue -J trainjob -o "$T/slurm.out" --open-mode=append --chdir "$T" ./job.sh) ||
		fail "sbatch failed"
	wait_for 'ls "$T"/store/trainjob/ckpt/*/manifest.json' 40 || fail "no checkpoint pushed: $(cat slurm.out)"
	scancel --signal=USR1 --batch "$JOB"
	wait_job "$JOB" 90
	check_resumed "$ref"
}

t_time_limit_signal_requeues_and_resumes() {
	[ "${SPOTRUN_SLOW_TESTS:-0}" = 1 ] || { echo "needs SPOTRUN_SLOW_TESTS=1 (a real time limit, ~100 s; the scancel test above covers the same path)"; exit 77; }
	slurm_start "$T/slurm" || fail "cannot start slurm"
	trap slurm_stop EXIT
	args="--steps 800 --ckpt-every 50 --step-seconds 0.1 --size-mb 1"
	ref=$(SPOTRUN_CKPT_DIR=$T/ref "$PY" "$TRAIN" $args 2>/dev/null)
	write_job $args
	JOB=$(sbatch --parsable --requeue --time=1 --signal=B:USR1@10 -J trainjob -o "$T/slurm.out" \
		--open-mode=append --chdir "$T" ./job.sh) || fail "sbatch failed"
	wait_job "$JOB" 240
	check_resumed "$ref"
}

run_tests
