# k8s.sh - spotrun as PID 1 of a container (a new PID namespace made with
# `unshare --pid --fork --mount-proc`, as a container runtime does): it
# reaps orphans reparented to it, forwards signals, treats the SIGTERM of a
# pod deletion / preemption as a notice within --signal-grace and exits 75,
# which the Job's podFailurePolicy in examples/k8s/ turns into a retry.
# Also checks the shipped Job's policy rules and grace periods.
. "$SPOTRUN_TOP/tests/lib.sh"

have_unshare() {
	command -v unshare >/dev/null 2>&1 || fail "unshare (util-linux) not installed"
	unshare --pid --fork --mount-proc true 2>/dev/null || fail "cannot create a PID namespace here (needs root)"
}

t_pid1_reaps_orphans() {
	have_unshare
	expect_rc 0 unshare --pid --fork --mount-proc "$SR" --store none -- sh -c \
		'echo "ppid=$PPID"; (sh -c "sleep 0.2" &); (sh -c "sleep 0.3; exit 3" &); sleep 1; ps -eo stat=,comm= | grep -c "^Z" || true'
	assert_eq "$(printf '%s\n' "$OUT" | tr '\n' ' ')" "ppid=1 0 " "spotrun is PID 1, no zombies left"
}

t_pid1_sigterm_is_a_notice() {
	have_unshare
	cat >child.sh <<'EOS'
trap 'echo "got USR1"; exit 0' USR1
trap 'echo "got TERM"; exit 0' TERM
echo ready >ready
sleep 30 & wait
EOS
	unshare --pid --fork --mount-proc "$SR" --store none --signal-grace 20 -- sh child.sh >out 2>err &
	us=$!
	trap 'kill -9 $(ps -o pid= --ppid "$us") "$us" 2>/dev/null || true' EXIT
	wait_for '[ -e ready ]' 10 || fail "child did not start: $(cat err)"
	pid1=$(pgrep -P "$us" spotrun || ps -o pid= --ppid "$us" | head -1)
	[ -n "$pid1" ] || fail "no spotrun under unshare"
	kill -TERM "$pid1"
	set +e; wait "$us"; rc=$?; set -e
	assert_eq "$rc" 75 "exit status"
	assert_eq "$(cat out)" "got USR1" "the child got the notice signal"
	assert_contains "$(cat err)" "interruption notice: scheduler from signal, deadline in 20.0 s"
}

t_pid1_forwards_signals() {
	have_unshare
	cat >child.sh <<'EOS'
trap 'echo "got HUP"' HUP
trap 'echo "got USR2"; exit 4' USR2
echo ready >ready
while :; do sleep 0.05; done
EOS
	unshare --pid --fork --mount-proc "$SR" --store none -- sh child.sh >out 2>err &
	us=$!
	trap 'kill -9 $(ps -o pid= --ppid "$us") "$us" 2>/dev/null || true' EXIT
	wait_for '[ -e ready ]' 10 || fail "child did not start: $(cat err)"
	pid1=$(ps -o pid= --ppid "$us" | head -1 | tr -d ' ')
	kill -HUP "$pid1"
	wait_for 'grep -q HUP out' 5 || fail "HUP not forwarded"
	kill -USR2 "$pid1"
	set +e; wait "$us"; rc=$?; set -e
	assert_eq "$rc" 4 "exit status"
	assert_eq "$(cat out | tr '\n' ' ')" "got HUP got USR2 "
}

t_manifests_parse_and_match() {
	k=$SPOTRUN_TOP/examples/k8s
	python3 - "$k" <<'EOP' || fail "manifests"
import json, os, re, sys
k = sys.argv[1]
try:
    import yaml
except ImportError:
    yaml = None
job = open(os.path.join(k, "job.yaml")).read()
# the contract, checked on the text so that no YAML library is needed
assert re.search(r"podFailurePolicy:", job)
assert re.search(r"action: Ignore\s+onExitCodes:\s+containerName: \S+\s+operator: In\s+values: \[75\]", job), "Ignore on 75"
assert re.search(r"restartPolicy: Never", job)
grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", job).group(1))
sg = int(re.search(r'"--signal-grace", "(\d+)"', job).group(1))
assert sg < grace, (sg, grace)
if yaml:
    for f in sorted(os.listdir(k)):
        if f.endswith(".yaml"):
            list(yaml.safe_load_all(open(os.path.join(k, f))))
EOP
}

run_tests
