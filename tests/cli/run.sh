# run.sh - CLI tests of `spotrun run`: exit codes, signals, the notice state
# machine with its timings, reaping, the child protocol environment,
# restarts, local resume, commits, and option/config precedence.
. "$SPOTRUN_TOP/tests/lib.sh"

# ---- exit codes -----------------------------------------------------------
t_exit_codes_passed_through() {
	for c in 0 1 7 255; do
		expect_rc $c "$SR" -- sh -c "exit $c"
	done
}
t_signal_death_is_128_plus_n() {
	expect_rc 137 "$SR" -- sh -c 'kill -9 $$'
	expect_rc 143 "$SR" -- sh -c 'kill -15 $$'
}
t_exec_failure_126_127() {
	expect_rc 127 "$SR" -- ./no-such-command
	assert_contains "$ERR" "cannot run './no-such-command': No such file or directory"
	printf 'data' >notexec
	expect_rc 126 "$SR" -- ./notexec
	assert_contains "$ERR" "Permission denied"
	mkdir adir
	expect_rc 126 "$SR" -- ./adir
}
t_run_subcommand_and_bare_options() {
	expect_rc 3 "$SR" run -- sh -c 'exit 3'
	expect_rc 4 "$SR" run --job j -- sh -c 'exit 4'
}

# ---- usage and configuration errors ---------------------------------------
t_bad_flag_is_64_one_line() {
	expect_rc 64 "$SR" --bogus -- true
	assert_eq "$(wc -l <"$T/err")" 1 "stderr lines"
	assert_contains "$ERR" "unknown option '--bogus'"
	expect_rc 64 "$SR" --signal-grace abc -- true
	assert_contains "$ERR" "invalid value 'abc' for --signal-grace"
	assert_eq "$(wc -l <"$T/err")" 1 "stderr lines"
	expect_rc 64 "$SR" run
	assert_contains "$ERR" "no command to run"
	expect_rc 64 "$SR" --notice-signal NOPE -- true
	expect_rc 64 "$SR" --simulate explode@3 -- true
	expect_rc 64 "$SR" --provider marsnet -- true
	expect_rc 64 "$SR" pyhton train.py
	assert_contains "$ERR" "unknown subcommand 'pyhton'"
	expect_rc 64 "$SR" --job
	assert_contains "$ERR" "missing value for '--job'"
}
t_malformed_config_is_78() {
	printf '{\n  "job": "x",\n  "signal-grace": \n}\n' >spotrun.json
	expect_rc 78 "$SR" -- true
	assert_contains "$ERR" "config 'spotrun.json': line 4"
	assert_eq "$(wc -l <"$T/err")" 1 "stderr lines"
	printf '{"no-such-option": 1}' >c2.json
	expect_rc 78 "$SR" --config c2.json -- true
	assert_contains "$ERR" "unknown option \"no-such-option\""
	printf '{"kill-after": "soon"}' >c3.json
	expect_rc 78 "$SR" --config c3.json -- true
	assert_contains "$ERR" "invalid value for \"kill-after\""
	expect_rc 78 "$SR" --config missing.json -- true
	assert_contains "$ERR" "missing.json"
	printf '[1,2]' >c4.json
	expect_rc 78 "$SR" --config c4.json -- true
}
t_bad_env_is_78() {
	SPOTRUN_KILL_AFTER=xyz expect_rc 78 "$SR" -- true
	assert_contains "$ERR" "SPOTRUN_KILL_AFTER"
}
t_config_precedence_flag_env_file() {
	printf '{"job": "fromfile", "exit-interrupted": 70}' >spotrun.json
	expect_rc 0 "$SR" -- sh -c 'echo $SPOTRUN_JOB'
	assert_eq "$OUT" fromfile
	SPOTRUN_JOB=fromenv expect_rc 0 "$SR" -- sh -c 'echo $SPOTRUN_JOB'
	assert_eq "$OUT" fromenv
	SPOTRUN_JOB=fromenv expect_rc 0 "$SR" --job fromflag -- sh -c 'echo $SPOTRUN_JOB'
	assert_eq "$OUT" fromflag
	# typed values too: the interrupted exit code from file, env, flag
	expect_rc 70 "$SR" --simulate preempt@0 -- sleep 5
	SPOTRUN_EXIT_INTERRUPTED=71 expect_rc 71 "$SR" --simulate preempt@0 -- sleep 5
	SPOTRUN_EXIT_INTERRUPTED=71 expect_rc 72 "$SR" --exit-interrupted 72 --simulate preempt@0 -- sleep 5
}
t_help_and_version() {
	for c in run push pull ls verify gc detect watch plan migrate commit; do
		expect_rc 0 "$SR" $c --help
		assert_contains "$OUT" "usage: spotrun"
	done
	expect_rc 0 "$SR" run --help
	assert_contains "$OUT" "--signal-grace SECS"
	assert_contains "$OUT" "[SPOTRUN_SIGNAL_GRACE]"
	expect_rc 0 "$SR" --help
	assert_contains "$OUT" "subcommands:"
	expect_rc 0 "$SR" --version
	assert_eq "$OUT" "spotrun $(cat "$SPOTRUN_TOP/VERSION")"
	expect_rc 64 "$SR"
}
t_every_option_has_an_env_twin() {
	for c in run push pull ls verify gc detect watch plan migrate commit; do
		"$SR" $c --help | grep -E '^  (-., )?--' | grep -vE -- '--(help|version) ' |
			grep -v '\[SPOTRUN_[A-Z_]*\]' >>missing || true
	done
	assert_eq "$(cat missing)" "" "options without an env twin"
}
t_log_format_json() {
	expect_rc 75 "$SR" --log-format json --simulate preempt@0 -- sleep 5
	python3 -c '
import json,sys
lines=[l for l in open(sys.argv[1]) if l.strip()]
assert lines, "no log lines"
for l in lines:
    o=json.loads(l); assert o["level"] and o["msg"] and o["time"], o
' "$T/err" || fail "stderr is not JSON lines: $ERR"
}
t_quiet_prints_nothing_on_success() {
	expect_rc 75 "$SR" -q --simulate preempt@0 -- sleep 5
	assert_eq "$ERR" "" "stderr with -q"
}

# ---- the child protocol environment ---------------------------------------
t_child_environment() {
	expect_rc 0 "$SR" --job envtest --provider none -- sh -c 'env | grep ^SPOTRUN_ | sort'
	assert_contains "$OUT" "SPOTRUN_JOB=envtest"
	assert_contains "$OUT" "SPOTRUN_CKPT_DIR=$T/spotrun-ckpt/envtest"
	assert_contains "$OUT" "SPOTRUN_RESTARTS=0"
	assert_contains "$OUT" "SPOTRUN_NOTICE_FILE=/"
	assert_contains "$OUT" "SPOTRUN_SOCKET=/"
	assert_contains "$OUT" "SPOTRUN_PROVIDER=none"
	assert_not_contains "$OUT" "SPOTRUN_RESUME_DIR"
	[ -d "$T/spotrun-ckpt/envtest" ] || fail "checkpoint folder not created"
	# stale protocol variables from our own environment never leak through
	SPOTRUN_RESUME_DIR=/stale expect_rc 0 "$SR" --job envtest -- sh -c 'echo "[$SPOTRUN_RESUME_DIR]"'
	assert_eq "$OUT" "[]"
	# the start counter persists per job
	expect_rc 0 "$SR" --job envtest -- sh -c 'echo $SPOTRUN_RESTARTS'
	assert_eq "$OUT" 2
}
t_default_job_from_script_name() {
	printf 'echo $SPOTRUN_JOB\n' >train.sh
	expect_rc 0 "$SR" -- sh train.sh
	assert_eq "$OUT" train
}
t_signal_mask_and_dispositions_restored() {
	# the child sees exactly what it would have seen without spotrun
	want=$(sh -c 'grep -E "^Sig(Blk|Ign)" /proc/self/status')
	expect_rc 0 "$SR" -- sh -c 'grep -E "^Sig(Blk|Ign)" /proc/self/status'
	assert_eq "$OUT" "$want" "blocked/ignored signals"
	assert_contains "$OUT" "SigBlk:	0000000000000000"
}
t_child_in_own_process_group() {
	expect_rc 0 "$SR" -- sh -c 'ps -o pid=,pgid= -p $$'
	set -- $OUT
	assert_eq "$1" "$2" "child pid == pgid"
}

# ---- the notice state machine --------------------------------------------
# A child that records when each signal arrives and ignores USR1 and TERM,
# so spotrun must escalate USR1 -> TERM (grace deadline) -> KILL.
stubborn_child() {
	cat >stubborn.sh <<'EOS'
trap 'echo "USR1 $(date +%s%3N)" >>sigs' USR1
trap 'echo "TERM $(date +%s%3N)" >>sigs' TERM
echo "START $(date +%s%3N)" >>sigs
while :; do sleep 0.05; done
EOS
}
t_notice_escalation_timings() {
	stubborn_child
	"$SR" --signal-grace 2 --kill-after 1 -- sh stubborn.sh 2>err &
	sr=$!
	wait_for 'grep -q START sigs' 5 || fail "child did not start"
	t0=$(now_ms)
	kill -USR1 $sr
	set +e; wait $sr; rc=$?; set -e
	t_end=$(now_ms)
	assert_eq "$rc" 75 "exit status"
	u=$(sed -n 's/^USR1 //p' sigs | head -1); te=$(sed -n 's/^TERM //p' sigs | head -1)
	[ -n "$u" ] && [ -n "$te" ] || fail "signals seen: $(cat sigs)"
	assert_range $((u - t0)) -50 600 "USR1 delay ms"
	assert_range $((te - t0)) 800 1700 "SIGTERM delay ms (grace 2 - kill-after 1)"
	assert_range $((t_end - t0)) 1800 3500 "SIGKILL/exit delay ms"
	grep -q "sending SIGKILL" err || fail "no SIGKILL logged: $(cat err)"
}
t_sigterm_to_spotrun_is_a_notice() {
	cat >c.sh <<'EOS'
trap 'echo got-usr1 >seen; cat "$SPOTRUN_NOTICE_FILE" >notice.json; exit 0' USR1
echo up >up; while :; do sleep 0.05; done
EOS
	"$SR" --signal-grace 10 -- sh c.sh 2>err &
	sr=$!
	wait_for '[ -f up ]' 5 || fail "child did not start"
	kill -TERM $sr
	set +e; wait $sr; rc=$?; set -e
	assert_eq "$rc" 75 "exit status"
	assert_eq "$(cat seen)" got-usr1
	python3 -c '
import json,sys
n=json.load(open("notice.json"))
assert n["source"]=="signal" and n["kind"]=="scheduler", n
assert 9 <= n["deadline_unix"]-n["received_unix"] <= 10.5, n
assert n["raw"]["signal"]=="SIGTERM", n
' || fail "notice file: $(cat notice.json)"
}
t_notice_signal_configurable() {
	cat >c.sh <<'EOS'
trap 'echo got-usr2 >seen; exit 0' USR2
while :; do sleep 0.05; done
EOS
	expect_rc 75 "$SR" --notice-signal SIGUSR2 --simulate preempt@0.2 -- sh c.sh
	assert_eq "$(cat seen)" got-usr2
}
t_simulated_notice_file_and_deadline() {
	cat >c.sh <<'EOS'
trap 'cp "$SPOTRUN_NOTICE_FILE" notice.json; exit 0' USR1
while :; do sleep 0.05; done
EOS
	expect_rc 75 "$SR" --signal-grace 12 --simulate terminate@0.2 -- sh c.sh
	python3 -c '
import json
n=json.load(open("notice.json"))
assert n["source"]=="simulate" and n["kind"]=="terminate", n
assert abs(n["lead_seconds"]-12) < 0.01, n
assert n["raw"]=={"simulated":"terminate@0.2"}, n
'
}
t_simulated_provider_payloads() {
	cat >c.sh <<'EOS'
trap 'cp "$SPOTRUN_NOTICE_FILE" notice.json; exit 0' USR1
while :; do sleep 0.05; done
EOS
	expect_rc 75 "$SR" --provider none --simulate aws:terminate@200ms -- sh c.sh
	python3 -c '
import json
n=json.load(open("notice.json"))
assert n["source"]=="simulate:aws" and n["kind"]=="terminate", n
assert abs(n["lead_seconds"]-120) < 0.01, n
assert n["raw"]["action"]=="terminate" and n["raw"]["time"].endswith("Z"), n'
	expect_rc 75 "$SR" --provider none --simulate azure:preempt@0.2s -- sh c.sh
	python3 -c '
import json
n=json.load(open("notice.json"))
assert n["source"]=="simulate:azure" and abs(n["lead_seconds"]-30) < 0.01, n
assert n["raw"]["Events"][0]["EventType"]=="Preempt", n'
	# a rebalance recommendation is an early push, never an exit
	expect_rc 0 "$SR" --provider none --simulate aws:rebalance@0.1 -- sh -c 'sleep 0.6; exit 0'
	assert_contains "$ERR" "rebalance recommendation"
	expect_rc 64 "$SR" --simulate mars:preempt@1 -- true
	expect_rc 64 "$SR" --simulate aws:preempt@soon -- true
}
t_notice_trigger_file() {
	cat >c.sh <<'EOS'
trap 'cp "$SPOTRUN_NOTICE_FILE" notice.json; exit 0' USR1
echo up >up; while :; do sleep 0.05; done
EOS
	"$SR" --notice-file "$T/trigger" -- sh c.sh 2>err &
	sr=$!
	wait_for '[ -f up ]' 5 || fail "child did not start"
	echo '{"why":"maintenance window"}' >trigger
	set +e; wait $sr; rc=$?; set -e
	assert_eq "$rc" 75
	python3 -c '
import json
n=json.load(open("notice.json"))
assert n["source"]=="file" and n["raw"]=={"why":"maintenance window"}, n'
}
t_child_exit_code_after_notice_is_75() {
	expect_rc 75 "$SR" --simulate preempt@0.1 -- sh -c 'trap "exit 3" USR1; while :; do sleep 0.05; done'
	expect_rc 9 "$SR" --exit-interrupted 9 --simulate preempt@0.1 -- sh -c 'trap "exit 0" USR1; while :; do sleep 0.05; done'
}
t_sigint_forwarded() {
	cat >c.sh <<'EOS'
trap 'echo got-int >seen; exit 5' INT
trap 'echo got-hup >>seen' HUP
echo up >up; while :; do sleep 0.05; done
EOS
	# a non-interactive shell starts background jobs with SIGINT ignored, and
	# spotrun hands the child its parent's dispositions: undo that here
	env --default-signal=INT "$SR" -- sh c.sh 2>err &
	sr=$!
	( sleep 20; kill -9 $sr ) 2>/dev/null &
	dog=$!
	wait_for '[ -f up ]' 5 || fail "child did not start"
	kill -HUP $sr
	wait_for 'grep -q got-hup seen' 5 || fail "SIGHUP not forwarded"
	kill -INT $sr
	set +e; wait $sr; rc=$?; set -e
	kill $dog 2>/dev/null || true
	assert_eq "$rc" 5
	assert_contains "$(cat seen)" got-int
}

# ---- reaping: nothing started is left running ------------------------------
t_orphans_reaped_and_killed() {
	cat >c.sh <<'EOS'
setsid sh -c 'echo $$ >orphan1; exec sleep 300' &
sh -c 'trap "" TERM; echo $$ >orphan2; while :; do sleep 0.1; done' &
( sleep 300 & echo $! >orphan3 ) 
while [ ! -s orphan1 ] || [ ! -s orphan2 ] || [ ! -s orphan3 ]; do sleep 0.02; done
exit 0
EOS
	t0=$(now_ms)
	expect_rc 0 "$SR" -- sh c.sh
	for f in orphan1 orphan2 orphan3; do
		p=$(cat $f)
		if kill -0 "$p" 2>/dev/null; then fail "$f (pid $p) still running: $(ps -o pid,ppid,stat,cmd -p $p)"; fi
	done
	assert_range $(( $(now_ms) - t0 )) 0 6000 "exit time ms"
}
t_no_zombies_while_running() {
	cat >c.sh <<'EOS'
for i in 1 2 3 4 5; do setsid sh -c 'exit 0' & done
sleep 0.5
ps -o stat= --ppid $PPID | grep -c Z || true
EOS
	expect_rc 0 "$SR" -- sh c.sh
	assert_eq "$OUT" 0 "zombie children of spotrun"
}

# ---- crash restarts ---------------------------------------------------------
t_restarts_with_backoff() {
	cat >c.sh <<'EOS'
echo "$SPOTRUN_RESTARTS" >>starts
n=$(wc -l <starts)
[ "$n" -ge 3 ] && exit 0
exit 3
EOS
	expect_rc 0 "$SR" --job rs --max-restarts 2 --restart-delay 0.05 -- sh c.sh
	assert_eq "$(tr '\n' ' ' <starts)" "0 1 2 "
	assert_contains "$ERR" "restart 2 of 2"
	rm -f starts
	expect_rc 3 "$SR" --job rs2 --max-restarts 1 --restart-delay 0.05 -- sh c.sh
	assert_eq "$(wc -l <starts | tr -d ' ')" 2
}
t_restart_on_codes() {
	printf 'echo x >>starts; exit 3\n' >c.sh
	expect_rc 3 "$SR" --max-restarts 3 --restart-on 4,10-20 --restart-delay 0.01 -- sh c.sh
	assert_eq "$(wc -l <starts | tr -d ' ')" 1 "starts with 3 not in 4,10-20"
	rm starts
	expect_rc 3 "$SR" --max-restarts 2 --restart-on 1-3 --restart-delay 0.01 -- sh c.sh
	assert_eq "$(wc -l <starts | tr -d ' ')" 3
	expect_rc 64 "$SR" --restart-on 1,x -- true
}
t_backoff_grows() {
	printf 'date +%%s%%3N >>starts; exit 1\n' >c.sh
	expect_rc 1 "$SR" --max-restarts 3 --restart-delay 0.2 -- sh c.sh
	python3 -c '
t=[int(x) for x in open("starts")]
d=[b-a for a,b in zip(t,t[1:])]
assert len(d)==3, d
# delay n is 0.2*2^n with jitter in [0.5,1]: 100-200, 200-400, 400-800 ms (+ start cost)
for i,(lo,hi) in enumerate([(100,450),(200,650),(400,1100)]):
    assert lo <= d[i] <= hi, (i, d)
' || fail "backoff delays: $(cat starts)"
}
t_notice_during_backoff_exits_75() {
	printf 'exit 1\n' >c.sh
	expect_rc 75 "$SR" --max-restarts 5 --restart-delay 5 --simulate preempt@0.3 -- sh c.sh
}

# ---- local resume and commits ----------------------------------------------
t_local_resume_from_committed_folder() {
	cat >c.sh <<'EOS'
echo "resume=[$SPOTRUN_RESUME_DIR] step=[$SPOTRUN_RESUME_STEP]"
d=$SPOTRUN_CKPT_DIR/step-000010; mkdir -p $d; echo a >$d/w
"$SR" commit $d || exit 9
d=$SPOTRUN_CKPT_DIR/step-000020; mkdir -p $d; echo b >$d/w   # never committed
trap '' USR1    # ignores the notice: SIGTERM kills it, so step-000020 is not finished
while :; do sleep 0.05; done
EOS
	export SR
	expect_rc 75 "$SR" --job lr --store none --signal-grace 0.6 --kill-after 0.3 --simulate preempt@0.3 -- sh c.sh
	assert_contains "$OUT" "resume=[] step=[]"
	assert_file "spotrun-ckpt/lr/step-000010/.spotrun-complete"
	assert_no_file "spotrun-ckpt/lr/step-000020/.spotrun-complete"
	expect_rc 75 "$SR" --job lr --store none --signal-grace 0.6 --kill-after 0.3 --simulate preempt@0.3 -- sh c.sh
	assert_contains "$OUT" "resume=[$T/spotrun-ckpt/lr/step-000010] step=[10]"
}
t_marker_file_and_clean_exit_after_notice_count_as_finished() {
	cat >c.sh <<'EOS'
echo "resume=[$SPOTRUN_RESUME_DIR]"
mkdir -p $SPOTRUN_CKPT_DIR/a-7 && touch $SPOTRUN_CKPT_DIR/a-7/.spotrun-complete
trap 'mkdir -p $SPOTRUN_CKPT_DIR/b-8; echo x >$SPOTRUN_CKPT_DIR/b-8/w; exit 0' USR1
while :; do sleep 0.05; done
EOS
	expect_rc 75 "$SR" --job mk --simulate preempt@0.3 -- sh c.sh
	assert_file spotrun-ckpt/mk/b-8/.spotrun-complete
	expect_rc 75 "$SR" --job mk --simulate preempt@0.3 -- sh c.sh
	assert_contains "$OUT" "resume=[$T/spotrun-ckpt/mk/b-8]"
}
t_killed_child_folder_is_not_finished() {
	cat >c.sh <<'EOS'
echo "resume=[$SPOTRUN_RESUME_DIR]"
mkdir -p $SPOTRUN_CKPT_DIR/half-1; echo x >$SPOTRUN_CKPT_DIR/half-1/w
kill -9 $$
EOS
	expect_rc 137 "$SR" --job kf -- sh c.sh
	assert_no_file spotrun-ckpt/kf/half-1/.spotrun-complete
	expect_rc 137 "$SR" --job kf -- sh c.sh
	assert_contains "$OUT" "resume=[]"
}
t_commit_validation() {
	mkdir -p outside
	export SR
	expect_rc 0 "$SR" --job cv -- sh -c '"$SR" commit "$0"/outside; echo rc=$?' "$T"
	assert_contains "$OUT" "rc=65"
	assert_contains "$ERR" "not a folder directly inside SPOTRUN_CKPT_DIR"
	expect_rc 0 "$SR" --job cv -- sh -c '"$SR" commit /nonexistent; echo rc=$?'
	assert_contains "$OUT" "rc=66"
	# without a supervisor: the marker is written directly
	mkdir -p solo/step-3
	SPOTRUN_SOCKET= expect_rc 0 "$SR" commit solo/step-3
	assert_contains "$(cat solo/step-3/.spotrun-complete)" '"step":3'
	# supervisor gone: marker written, exit 69
	mkdir -p gone-5
	SPOTRUN_SOCKET=$T/nosock expect_rc 69 "$SR" commit gone-5
	assert_file gone-5/.spotrun-complete
}
t_plain_run_loads_no_curl_or_archive() {
	# libcurl and libarchive (and their ~40 dependencies) are loaded on
	# first use: a run that neither probes a provider nor pushes maps none
	expect_rc 0 "$SR" --provider none -- sh -c 'cat /proc/$PPID/maps'
	assert_contains "$OUT" "libjansson"
	assert_not_contains "$OUT" "libcurl"
	assert_not_contains "$OUT" "libarchive"
	# a push does load libarchive, in the same binary
	mkdir -p c/step-1 && echo x >c/step-1/a
	expect_rc 0 "$SR" push --job lz c/step-1
}

t_start_overhead_small() {
	# what spotrun adds to a command outside any cloud (every metadata
	# endpoint a closed port): the median of 7 runs minus the median of the
	# bare command, measured side by side so machine load cancels out.
	# Generous: the sanitizer build runs this too; `make bench` prints the
	# real figure.
	for i in 1 2 3 4 5 6 7; do
		a=$(date +%s%N); true; /bin/true; b=$(date +%s%N)
		"$SR" -- /bin/true; c=$(date +%s%N)
		echo "$(( (b - a) / 1000000 )) $(( (c - b) / 1000000 ))"
	done >times
	bare=$(cut -d' ' -f1 times | sort -n | sed -n 4p)
	with=$(cut -d' ' -f2 times | sort -n | sed -n 4p)
	assert_range $((with - bare)) -50 300 "median ms that 'spotrun -- true' adds"
}

run_tests
