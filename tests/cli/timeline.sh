# timeline.sh - the record of a job: every run, notice, push, pull and
# restart in job.json runs[] and as event objects (<job>/events/, one
# schema), shown by `spotrun ls --job J` as a timeline table and by --json
# as {job, runs, timeline, checkpoints}; jobs that only got `spotrun push`
# keep the plain checkpoint listing.
. "$SPOTRUN_TOP/tests/lib.sh"

PY=$(python3 -c 'import sys; print(sys.executable)')
TRAIN="$SPOTRUN_TOP/examples/train.py"
ARGS="--steps 40 --ckpt-every 5 --step-seconds 0.04 --size-mb 2"
export SPOTRUN_BIN="$SR"

two_runs() { # run 1: notice -> 75; run 2 on a new machine: a crash, a restart, done
	expect_rc 75 "$SR" --job tl --simulate preempt@1 -- "$PY" "$TRAIN" $ARGS
	rm -rf spotrun-ckpt
	expect_rc 0 "$SR" --job tl --max-restarts 1 --restart-delay 0.05 -- sh -c \
		'if [ ! -e failed-once ]; then touch failed-once; exit 3; fi; exec "$0" "$@"' "$PY" "$TRAIN" $ARGS
}

t_table_shows_runs_notices_pushes_restarts() {
	two_runs
	expect_rc 0 "$SR" ls --job tl
	printf '%s\n' "$OUT" >table
	assert_eq "$(head -1 table | tr -s ' ')" "TIME RUN EVENT HOST DETAILS"
	seq=$(awk 'NR > 1 && /^20/ && $3 != "checkpoint" { print $2 ":" $3 }' table | tr '\n' ' ')
	assert_eq "$seq" "1:start 1:notice 1:exit 2:start 2:resume 2:restart 2:exit " "timeline"
	# checkpoints: the one taken on the notice in run 1, the rest in run 2
	seq=$(awk 'NR > 1 && /^20/ && $3 != "start" { print $2 ":" $3 }' table | uniq | sed -n '/1:notice/,$p' | tr '\n' ' ')
	assert_eq "$seq" "1:notice 1:checkpoint 1:exit 2:resume 2:restart 2:checkpoint 2:exit " "timeline from the notice"
	assert_contains "$(grep ' notice ' table)" "from simulate, lead 30.0 s"
	grep ' checkpoint ' table | head -1 | grep -Eq 'seq 1 step [0-9]+, [0-9.]+ MB in [0-9.]+ s \([0-9.]+ MB/s\)$' ||
		fail "checkpoint row: $(grep ' checkpoint ' table | head -1)"
	assert_contains "$(grep ' exit ' table | head -1)" "code 75 (interrupted)"
	assert_contains "$(grep ' exit ' table | tail -1)" "code 0 (finished)"
	assert_contains "$(grep ' restart ' table)" "restart 1 after status 3"
	assert_contains "$(grep ' resume ' table)" "pulled in"
	# the checkpoint table follows the timeline
	assert_contains "$OUT" "SEQ      STEP"
}

t_json_runs_and_event_schema() {
	two_runs
	expect_rc 0 "$SR" ls --job tl --json
	printf '%s' "$OUT" | python3 -c '
import json,sys
d=json.load(sys.stdin)
assert d["job"]=="tl", d.keys()
r1, r2 = d["runs"]
assert (r1["exit"], r1["reason"], r2["exit"], r2["reason"]) == (75, "interrupted", 0, "finished"), d["runs"]
p1 = r1["pushes"]
assert p1["count"] >= 1 and p1["bytes"] >= 2000000 and p1["mb_per_s"] > 0 and p1["failures"] == 0, p1
assert p1["last_step"] == max(c["step"] for c in d["checkpoints"] if c["seq"] <= p1["last_seq"]), (p1, d["checkpoints"])
n = r1["notices"][0]
assert n["source"] == "simulate" and n["kind"] == "preempt" and n["lead_seconds"] == 30.0 and n["time"].endswith("Z"), n
rs = r2["restarts"][0]
assert rs["code"] == 3 and rs["delay"] >= 0 and rs["time"].endswith("Z"), rs
assert r2["resumed_from"]["step"] == p1["last_step"] and r2["resumed_from"]["seq"] == p1["last_seq"], r2
assert r2["pushes"]["last_step"] == 40, r2["pushes"]
assert d["checkpoints"][-1]["step"] == 40, d["checkpoints"]
' || fail "json: $OUT"
	python3 - spotrun-store/tl/events/*.json <<'EOP' || fail "event objects"
import json, sys, re
kinds = []
for p in sys.argv[1:]:
    d = json.load(open(p))
    if "data" not in d:
        continue  # the run-end notice copy written by sv_push.c
    assert set(d) >= {"version", "event", "job", "time", "unix", "host", "pid", "run", "provider", "data"}, d
    assert d["version"] == 1 and d["job"] == "tl" and "name" in d["provider"], d
    assert re.match(r".*/\d{8}T\d{6}\.\d{6}Z-[A-Za-z0-9._-]+\.json$", p), p
    kinds.append(d["event"])
for k in ("start", "notice", "checkpoint-committed", "exit", "resume", "restart"):
    assert k in kinds, (k, kinds)
EOP
}

t_push_only_job_keeps_plain_listing() {
	mkdir step-000001 && echo x >step-000001/f
	"$SR" push step-000001 --job plain 2>/dev/null
	expect_rc 0 "$SR" ls --job plain
	assert_eq "$(printf '%s\n' "$OUT" | wc -l)" 2 "header + 1 row"
	expect_rc 0 "$SR" ls --job plain --json
	assert_eq "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(type(json.load(sys.stdin)).__name__)')" list
}

t_store_none_records_nothing() {
	expect_rc 0 "$SR" --job sn --store none --simulate preempt@5 -- true
	assert_no_file spotrun-store
}

run_tests
