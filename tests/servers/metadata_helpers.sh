# metadata_helpers.sh - shell helpers for the provider tests (tests/cli/providers*.sh,
# tests/cli/detect*.sh), sourced after tests/lib.sh: start metadata_server.py for one
# provider with a readiness wait and a kill on exit, talk to its control endpoint,
# and assert facts about JSON output with python3.

# The system python starts in ~0.3 s; a pyenv shim takes over a second.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
MDS=$SPOTRUN_TOP/tests/servers/metadata_server.py
FIX=$SPOTRUN_TOP/tests/fixtures/metadata

# serve ARGS...: starts the server (--log $T/srv.log); sets PORT, SPID, URL.
serve() {
	rm -f "$T/port"
	"$PY" "$MDS" --log "$T/srv.log" "$@" >"$T/port" 2>"$T/srv.err" &
	SPID=$!
	trap 'kill $SPID 2>/dev/null || true' EXIT
	wait_for '[ -s "$T/port" ]' 15 || fail "metadata server did not start: $(cat "$T/srv.err")"
	PORT=$(head -1 "$T/port")
	URL=http://127.0.0.1:$PORT
}
# ctl NAME[?QUERY]: POST to the server's control endpoint
ctl() { curl -sf -X POST "$URL/_control/$1" >/dev/null || fail "control $1 failed"; }
# srv_count PATTERN: lines of the server log matching PATTERN
srv_count() {
	if [ -f "$T/srv.log" ]; then grep -c -- "$1" "$T/srv.log" || true; else echo 0; fi
}

# jtrue FILE EXPR: EXPR (python) is true with n = the JSON in FILE (the whole
# file, else its first line); fx(PATH) reads a fixture file byte for byte.
jtrue() {
	"$PY" -c 'import json, sys, calendar, time
t = open(sys.argv[1]).read()
try:
    n = json.loads(t)
except ValueError:
    n = json.loads(t.splitlines()[0])
fx = lambda p: open(sys.argv[3] + "/" + p).read()
utc = lambda s: calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" "$FIX" ||
		fail "not true: $2; in: $(head -c 1500 "$1")"
}

# watch_start ARGS...: `spotrun watch --json ARGS` in the background -> $T/w.out
watch_start() {
	rm -f "$T/w.out"
	"$SR" watch --json "$@" >"$T/w.out" 2>"$T/w.err" &
	WPID=$!
}
# watch_stop: SIGINT, expects exit 0
watch_stop() {
	kill -INT $WPID
	set +e; wait $WPID; wrc=$?; set -e
	assert_eq "$wrc" 0 "spotrun watch exit status"
}
# a child that copies the notice file and exits when the notice signal comes
# (or SIGTERM: documented payloads carry deadlines long past, so SIGTERM
# follows the notice signal at once)
notice_child() {
	cat >c.sh <<'EOS'
trap 'cp "$SPOTRUN_NOTICE_FILE" notice.json; exit 0' USR1 TERM
echo $$ >up; while :; do sleep 0.05; done
EOS
}
# run_notice ARGS...: `spotrun ARGS -- sh c.sh` (notice_child) in the
# background; once the child is up, releases the server's "@ctl" payloads
# (so the notice never beats the child's trap); sets RC, OUT, ERR.
run_notice() {
	notice_child
	"$SR" "$@" -- sh c.sh >"$T/out" 2>"$T/err" &
	rp=$!
	wait_for '[ -s up ]' 10 || fail "child did not start: $(cat "$T/err")"
	ctl release
	set +e; wait $rp; RC=$?; set -e
	OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
}
