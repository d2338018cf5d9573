# metrics.sh - --metrics-file: Prometheus text format (checked by a parser
# that follows the exposition format rules), exact content for a plain run,
# counters after notices, pushes and restarts, and atomic rewrites (a reader
# polling the file during a run never sees a partial file).
. "$SPOTRUN_TOP/tests/lib.sh"

PY=$(python3 -c 'import sys; print(sys.executable)')
TRAIN="$SPOTRUN_TOP/examples/train.py"
export SPOTRUN_BIN="$SR"

# prom_check.py FILE (written into each test's folder): exits non-zero
# (with why) unless FILE is valid text format; prints "name{labels} value"
# lines sorted, values as Python floats
PROM_CHECK=$(cat <<'EOP'
import re, sys
NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
def check(text):
    assert text.endswith("\n"), "no final newline"
    types, helps, seen, out = {}, {}, set(), []
    for ln in text.split("\n")[:-1]:
        if ln.startswith("# HELP ") or ln.startswith("# TYPE "):
            _, kw, name, rest = ln.split(" ", 3)
            assert NAME.match(name), ln
            d = helps if kw == "HELP" else types
            assert name not in d, "duplicate %s for %s" % (kw, name)
            assert name not in seen, "%s after samples of %s" % (kw, name)
            if kw == "TYPE":
                assert rest in ("counter", "gauge", "histogram", "summary", "untyped"), ln
                assert rest != "counter" or name.endswith("_total"), "counter without _total: " + name
            d[name] = rest
            continue
        assert not ln.startswith("#") and ln.strip(), "bad line %r" % ln
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', ln)
        assert m, "bad sample %r" % ln
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        assert name in types, "sample before TYPE: " + name
        pos = 0; keys = []
        while pos < len(labels):
            lm = LABEL.match(labels, pos)
            assert lm, "bad labels %r" % labels
            keys.append(lm.group(1)); pos = lm.end()
            if pos < len(labels):
                assert labels[pos] == ",", labels; pos += 1
        assert len(keys) == len(set(keys)), "duplicate label " + ln
        float(value)
        seen.add(name)
        assert (name, labels) not in [(o[0], o[1]) for o in out], "duplicate series " + ln
        out.append((name, labels, float(value)))
    return out
if __name__ == "__main__":
    for name, labels, v in sorted(check(open(sys.argv[1]).read())):
        print("%s{%s} %r" % (name, labels, v))
EOP
)

metric() { # FILE NAME{labels}: the value
	[ -e prom_check.py ] || printf '%s\n' "$PROM_CHECK" >prom_check.py
	python3 prom_check.py "$1" | sed -n "s/^$2 //p"
}


t_exact_content_plain_run() {
	printf '%s\n' "$PROM_CHECK" >prom_check.py
	expect_rc 0 "$SR" --job m1 --store none --metrics-file m.prom -- true
	sed -E 's/^(spotrun_(start_time|last_event_timestamp)_seconds\{job="m1"\}) [0-9.e+]+$/\1 T/' m.prom >got
	cat >want <<'EOW'
# HELP spotrun_up 1 while spotrun supervises the job, 0 after it exited
# TYPE spotrun_up gauge
spotrun_up{job="m1"} 0
# HELP spotrun_start_time_seconds when this spotrun started (unix time)
# TYPE spotrun_start_time_seconds gauge
spotrun_start_time_seconds{job="m1"} T
# HELP spotrun_notices_total interruption notices received, by source and kind
# TYPE spotrun_notices_total counter
# HELP spotrun_pushes_total checkpoints pushed to the store
# TYPE spotrun_pushes_total counter
spotrun_pushes_total{job="m1"} 0
# HELP spotrun_push_failures_total checkpoint pushes that failed
# TYPE spotrun_push_failures_total counter
spotrun_push_failures_total{job="m1"} 0
# HELP spotrun_push_seconds duration of the last push
# TYPE spotrun_push_seconds gauge
spotrun_push_seconds{job="m1"} 0
# HELP spotrun_push_seconds_total time spent pushing
# TYPE spotrun_push_seconds_total counter
spotrun_push_seconds_total{job="m1"} 0
# HELP spotrun_push_bytes size (uncompressed) of the last pushed checkpoint
# TYPE spotrun_push_bytes gauge
spotrun_push_bytes{job="m1"} 0
# HELP spotrun_push_bytes_total bytes (uncompressed) pushed
# TYPE spotrun_push_bytes_total counter
spotrun_push_bytes_total{job="m1"} 0
# HELP spotrun_last_committed_step step of the newest committed checkpoint, -1 unknown
# TYPE spotrun_last_committed_step gauge
spotrun_last_committed_step{job="m1"} -1
# HELP spotrun_restarts_total starts of this job before the current one
# TYPE spotrun_restarts_total counter
spotrun_restarts_total{job="m1"} 0
# HELP spotrun_last_event_timestamp_seconds unix time of the last event
# TYPE spotrun_last_event_timestamp_seconds gauge
spotrun_last_event_timestamp_seconds{job="m1"} T
EOW
	diff want got >&2 || fail "metrics file differs"
	python3 prom_check.py m.prom >/dev/null || fail "format"
	assert_no_file "m.prom.tmp.*"
	[ -z "$(ls | grep 'm.prom.tmp')" ] || fail "temp file left: $(ls)"
}

t_counters_after_notice_pushes_restarts() {
	printf '%s\n' "$PROM_CHECK" >prom_check.py
	args="--steps 30 --ckpt-every 5 --step-seconds 0.03 --size-mb 1"
	expect_rc 75 "$SR" --job m2 --metrics-file m.prom --simulate preempt@0.5 -- "$PY" "$TRAIN" $args
	python3 prom_check.py m.prom >/dev/null || fail "format: $(cat m.prom)"
	assert_eq "$(metric m.prom 'spotrun_notices_total{job="m2",provider="simulate",kind="preempt"}')" "1.0"
	assert_eq "$(metric m.prom 'spotrun_up{job="m2"}')" "0.0"
	assert_eq "$(metric m.prom 'spotrun_restarts_total{job="m2"}')" "0.0"
	assert_eq "$(metric m.prom 'spotrun_push_failures_total{job="m2"}')" "0.0"
	pushes=$(metric m.prom 'spotrun_pushes_total{job="m2"}')
	assert_range "$pushes" 1 7 "pushes"
	step=$(metric m.prom 'spotrun_last_committed_step{job="m2"}')
	newest=$("$SR" ls --job m2 --json | python3 -c 'import json,sys; print(float(json.load(sys.stdin)["checkpoints"][-1]["step"]))')
	assert_eq "$step" "$newest" "last committed step"
	assert_range "$(metric m.prom 'spotrun_push_bytes{job="m2"}')" 1000000 2000000 "bytes of the last push"
	assert_range "$(metric m.prom 'spotrun_push_seconds{job="m2"}')" 0.000001 30 "push seconds"
	# the requeued run: one earlier start, resumes, the step goes on
	expect_rc 0 "$SR" --job m2 --metrics-file m.prom -- "$PY" "$TRAIN" $args
	assert_eq "$(metric m.prom 'spotrun_restarts_total{job="m2"}')" "1.0"
	assert_eq "$(metric m.prom 'spotrun_last_committed_step{job="m2"}')" "30.0"
	assert_eq "$(metric m.prom 'spotrun_notices_total{job="m2",provider="simulate",kind="preempt"}')" ""
}

t_rewrites_are_atomic() {
	printf '%s\n' "$PROM_CHECK" >prom_check.py
	"$SR" --job m3 --store none --metrics-file m.prom --max-restarts 4 --restart-delay 0.05 -- \
		"$PY" "$TRAIN" --steps 40 --ckpt-every 1 --step-seconds 0.02 --size-mb 0.1 2>/dev/null >/dev/null &
	pid=$!
	python3 - "$pid" <<'EOP' || fail "a reader saw a broken file"
import os, sys, time
sys.path.insert(0, ".")
from prom_check import check
pid = int(sys.argv[1]); reads = 0; steps = set()
while True:
    try:
        text = open("m.prom").read()
    except FileNotFoundError:
        text = None
    if text is not None:
        for n, l, v in check(text):
            if n == "spotrun_last_committed_step": steps.add(v)
        reads += 1
    try:
        if open("/proc/%d/stat" % pid).read().split()[2] == "Z":
            break
    except (FileNotFoundError, ProcessLookupError):
        break
assert reads > 20 and len(steps) > 3, (reads, steps)
EOP
	wait $pid || fail "run failed"
}

run_tests
