# hooks.sh - user hooks (--hook EVENT=PATH, --hooks-dir): execve without a
# shell, the event JSON on stdin and in SPOTRUN_EVENT_FILE, the environment,
# output in the log prefixed with the hook's name, order, timeouts (SIGTERM
# then SIGKILL), failures logged but not fatal unless --hook-strict (70),
# a supervise loop that never waits for a hook, hooks spared by the drain,
# and the shipped hooks in hooks/contrib (webhook against a local server,
# nvidia-smi snapshot with and without nvidia-smi, slurm-requeue).
. "$SPOTRUN_TOP/tests/lib.sh"

PY=$(python3 -c 'import sys; print(sys.executable)')
TRAIN="$SPOTRUN_TOP/examples/train.py"
CONTRIB="$SPOTRUN_TOP/hooks/contrib"
export SPOTRUN_BIN="$SR"

mkhook() { # NAME BODY: an executable sh script in $T
	printf '#!/bin/sh\n%s\n' "$2" >"$T/$1"
	chmod +x "$T/$1"
}
# log lines of hook NAME, without the timestamp and prefix
hook_lines() { sed -n "s/^.*spotrun: note: hook $1: //p" "$T/err"; }

t_event_json_env_and_output() {
	mkhook rec.sh 'cat >"$SPOTRUN_EVENT.stdin"; cp "$SPOTRUN_EVENT_FILE" "$SPOTRUN_EVENT.file"
env | grep -E "^SPOTRUN_(EVENT|JOB|HOOK|CKPT_DIR|STORE|RESTARTS|EXIT_CODE)=" | sort >"$SPOTRUN_EVENT.env"
echo "line one of $SPOTRUN_EVENT"; echo "to stderr" >&2'
	expect_rc 3 "$SR" --job hj --hook start="$T/rec.sh" --hook exit="$T/rec.sh" -- sh -c 'exit 3'
	assert_eq "$(hook_lines rec.sh | tr '\n' '|')" "line one of start|to stderr|line one of exit|to stderr|"
	cmp -s start.stdin start.file || fail "stdin and SPOTRUN_EVENT_FILE differ"
	python3 - <<'EOP' || fail "event documents: $(cat start.stdin exit.stdin)"
import json
s = json.load(open("start.stdin")); e = json.load(open("exit.stdin"))
for d in (s, e):
    assert d["version"] == 1 and d["job"] == "hj" and d["run"] == 1, d
    assert d["time"].endswith("Z") and d["host"] and "name" in d["provider"], d
assert s["event"] == "start" and s["data"]["command"] == ["sh", "-c", "exit 3"], s
assert e["event"] == "exit" and e["data"]["code"] == 3 and e["data"]["reason"] == "failed", e
EOP
	assert_contains "$(cat exit.env)" "SPOTRUN_EXIT_CODE=3"
	assert_contains "$(cat exit.env)" "SPOTRUN_EVENT=exit"
	assert_contains "$(cat exit.env)" "SPOTRUN_JOB=hj"
	assert_contains "$(cat exit.env)" "SPOTRUN_HOOK=rec.sh"
	assert_contains "$(cat start.env)" "SPOTRUN_CKPT_DIR=$T/spotrun-ckpt/hj"
	assert_no_file "$(sed -n 's/^SPOTRUN_EVENT_FILE=//p' start.env)" # temp copy removed
}

t_no_shell_and_exec_failures() {
	expect_rc 0 "$SR" --store none --hook 'start=/bin/echo $(touch pwned)' --hook start="$T/missing" -- true
	assert_no_file pwned
	assert_contains "$ERR" "hook 'echo \$(touch pwned)' for start failed with status 127"
	assert_eq "$(hook_lines missing)" "cannot execute: No such file or directory"
	assert_contains "$ERR" "hook 'missing' for start failed with status 127"
	printf 'echo hi\n' >noexec.sh
	expect_rc 0 "$SR" --store none --hook start="$T/noexec.sh" -- true
	assert_contains "$ERR" "hook 'noexec.sh' for start failed with status 126"
}

t_bad_specs_are_usage_errors() {
	expect_rc 64 "$SR" --hook bogus=/bin/true -- true
	assert_contains "$ERR" "unknown hook event 'bogus'"
	assert_eq "$(wc -l <"$T/err")" 1 "stderr lines"
	expect_rc 64 "$SR" --hook /bin/true -- true
	assert_contains "$ERR" "expected EVENT=PATH"
	expect_rc 64 "$SR" --hook start= -- true
	SPOTRUN_HOOK="start=/bin/true;nope=/bin/true" expect_rc 64 "$SR" -- true
	assert_contains "$ERR" "unknown hook event 'nope'"
}

t_hooks_dir_name_order() {
	mkdir -p hd/exit.d
	mkhook hd/exit 'echo main'
	mkhook hd/exit.d/20-b 'echo b'
	mkhook hd/exit.d/10-a 'echo a'
	printf 'echo never\n' >hd/exit.d/15-notexec
	mkhook hd/exit.d/.hidden 'echo hidden'
	mkhook first.sh 'echo flag'
	expect_rc 0 "$SR" --store none --hook exit="$T/first.sh" --hooks-dir hd -- true
	assert_eq "$(sed -n 's/^.*spotrun: note: hook [^:]*: //p' "$T/err" | tr '\n' ' ')" "flag main a b "
	SPOTRUN_HOOKS_DIR=hd expect_rc 0 "$SR" --store none -- true
	assert_eq "$(sed -n 's/^.*spotrun: note: hook [^:]*: //p' "$T/err" | tr '\n' ' ')" "main a b "
}

t_timeout_term_then_kill_not_fatal() {
	mkhook slow.sh 'trap "echo got TERM; exit 9" TERM; sleep 30 & wait'
	mkhook stubborn.sh 'trap "" TERM; echo stubborn; sleep 30'
	t0=$(now_ms)
	expect_rc 0 "$SR" --store none --hook-timeout 0.5 --hook start="$T/slow.sh" --hook exit="$T/stubborn.sh" -- true
	el=$(( $(now_ms) - t0 ))
	assert_range "$el" 400 10000 "ms for two timed-out hooks"
	assert_contains "$ERR" "hook 'slow.sh' still running after 0.5 s: sending SIGTERM"
	assert_eq "$(hook_lines slow.sh)" "got TERM"
	assert_contains "$ERR" "hook 'slow.sh' for start timed out after 0.5 s"
	assert_contains "$ERR" "hook 'stubborn.sh' ignored SIGTERM: sending SIGKILL"
	assert_contains "$ERR" "hook 'stubborn.sh' for exit timed out after 0.5 s"
}

t_strict_makes_failures_fatal() {
	mkhook fail.sh 'echo failing; exit 3'
	expect_rc 0 "$SR" --store none --hook start="$T/fail.sh" -- true
	assert_contains "$ERR" "hook 'fail.sh' for start failed with status 3"
	expect_rc 70 "$SR" --store none --hook-strict --hook start="$T/fail.sh" -- true
	assert_contains "$ERR" "1 hook(s) failed and --hook-strict is set: exiting 70"
	# the command's own failure and an interruption keep their codes
	expect_rc 4 "$SR" --store none --hook-strict --hook start="$T/fail.sh" -- sh -c 'exit 4'
	expect_rc 75 "$SR" --store none --hook-strict --hook notice="$T/fail.sh" --simulate preempt@0.2 -- sleep 5
}

t_loop_never_waits_for_a_hook() {
	# the notice hook takes 3 s; the command must get its signal at once
	mkhook slownotice.sh 'sleep 3; touch hook-done'
	cat >child.sh <<'EOS'
trap 'if [ -e hook-done ]; then echo late; else echo prompt; fi; exit 0' USR1
sleep 20 & wait
EOS
	t0=$(now_ms)
	expect_rc 75 "$SR" -v --store none --hook notice="$T/slownotice.sh" --simulate preempt@0.3 -- sh child.sh
	assert_eq "$OUT" "prompt" "child signalled before the hook ended"
	# the drain spared the hook: it ran to its end before spotrun exited
	assert_file hook-done
	assert_contains "$ERR" "hook 'slownotice.sh' for notice done"
	assert_range "$(( $(now_ms) - t0 ))" 2500 15000 "ms"
}

t_committed_hook_with_store_none_and_with_store() {
	mkhook c.sh 'cat >>committed.json; echo >>committed.json'
	expect_rc 0 "$SR" --job cs --store none --hook checkpoint-committed="$T/c.sh" -- \
		"$PY" "$TRAIN" --steps 10 --ckpt-every 5 --step-seconds 0.01 --size-mb 1
	python3 - <<'EOP' || fail "committed events: $(cat committed.json)"
import json
docs = [json.loads(x) for x in open("committed.json").read().split("\n}\n") if x.strip() and not x.strip().startswith("}") for x in [x + "\n}"]]
steps = [d["data"]["step"] for d in docs]
assert steps == [5, 10] and all(d["data"]["local"] for d in docs), docs
EOP
	rm committed.json
	expect_rc 0 "$SR" --job cs2 --hook checkpoint-committed="$T/c.sh" -- \
		"$PY" "$TRAIN" --steps 10 --ckpt-every 10 --step-seconds 0.01 --size-mb 1
	python3 -c '
import json
d = json.loads(open("committed.json").read())
assert d["event"] == "checkpoint-committed" and d["data"]["step"] == 10 and d["data"]["seq"] == 1, d
assert d["data"]["raw_bytes"] > 1000000 and d["data"]["seconds"] > 0, d' || fail "$(cat committed.json)"
}

t_contrib_webhook_posts_event() {
	cat >srv.py <<'EOP'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open("posted.json", "ab") as f:
            f.write(self.headers.get("Content-Type", "").encode() + b" " + self.path.encode() + b" " +
                    self.headers.get("Authorization", "-").encode() + b"\n" + body + b"\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOP
	"$PY" srv.py >port &
	srv=$!
	wait_for '[ -s port ]' 10 || fail "server did not start"
	export SPOTRUN_WEBHOOK_URL="http://127.0.0.1:$(cat port)/spotrun" SPOTRUN_WEBHOOK_HEADER="Authorization: Bearer t0k"
	expect_rc 75 "$SR" --job wh --store none --hook notice="$CONTRIB/webhook" --simulate preempt@0.2 -- sleep 5
	kill $srv
	assert_eq "$(hook_lines webhook)" "posted notice (HTTP 204)"
	assert_eq "$(head -1 posted.json)" "application/json /spotrun Bearer t0k"
	tail -n +2 posted.json | python3 -c '
import json,sys
d=json.load(sys.stdin)
assert d["event"]=="notice" and d["job"]=="wh" and d["data"]["source"]=="simulate" and d["data"]["kind"]=="preempt", d' ||
		fail "posted: $(cat posted.json)"
	unset SPOTRUN_WEBHOOK_URL
	expect_rc 0 "$SR" --store none --hook start="$CONTRIB/webhook" -- true
	assert_eq "$(hook_lines webhook)" "SPOTRUN_WEBHOOK_URL is not set: nothing sent"
	assert_contains "$ERR" "hook 'webhook' for start failed with status 1"
}

t_contrib_nvidia_smi_snapshot_into_record() {
	# no nvidia-smi here: a clear message, success, "unavailable" recorded
	PATH=/usr/bin:/bin expect_rc 0 "$SR" --job gpu --hook start="$CONTRIB/nvidia-smi-snapshot" -- true
	assert_eq "$(hook_lines nvidia-smi-snapshot)" "nvidia-smi not found: no GPU snapshot (recorded as unavailable)"
	mkdir fake
	printf '#!/bin/sh\necho "0, NVIDIA H200, GPU-1, 550.54, 1024, 143771, 97, 61, 612.3"\necho "1, NVIDIA H200, GPU-2, 550.54, 0, 143771, 0, 30, 70.1"\n' >fake/nvidia-smi
	chmod +x fake/nvidia-smi
	PATH="$T/fake:$PATH" expect_rc 0 "$SR" --job gpu --hook start="$CONTRIB/nvidia-smi-snapshot" -- true
	assert_eq "$(hook_lines nvidia-smi-snapshot)" "recorded 2 GPU(s)"
	expect_rc 0 "$SR" ls --job gpu --json
	printf '%s' "$OUT" | python3 -c '
import json,sys
t=[e for e in json.load(sys.stdin)["timeline"] if e["event"]=="hook-record"]
assert len(t)==2 and t[0]["data"]["record"]["nvidia_smi"]=="unavailable", t
g=t[1]["data"]["record"]["gpus"]
assert t[1]["data"]["for"]=="start" and t[1]["data"]["hook"]=="nvidia-smi-snapshot", t[1]
assert [x["utilization_pct"] for x in g]==[97,0] and g[0]["name"]=="NVIDIA H200" and g[1]["power_w"]==70.1, g' ||
		fail "record: $OUT"
}

t_contrib_slurm_requeue() {
	mkdir fake
	printf '#!/bin/sh\necho "$*" >>"%s/scontrol.log"\n' "$T" >fake/scontrol
	chmod +x fake/scontrol
	export PATH="$T/fake:$PATH" SLURM_JOB_ID=41 SLURM_ARRAY_JOB_ID=40 SLURM_ARRAY_TASK_ID=3
	expect_rc 75 "$SR" --job sr --store none --hook exit="$CONTRIB/slurm-requeue" --simulate preempt@0.2 -- sleep 5
	assert_eq "$(hook_lines slurm-requeue)" "requeued Slurm job 40_3"
	# the built-in requeue (job not submitted with --requeue: scontrol show
	# job says nothing) did not run, the hook did, once
	assert_eq "$(grep -c requeue scontrol.log)" 1
	expect_rc 0 "$SR" --job sr --store none --hook exit="$CONTRIB/slurm-requeue" -- true
	assert_eq "$(hook_lines slurm-requeue)" "run not interrupted (exit 0): no requeue"
}

run_tests
