#!/bin/sh
# plan.sh - `spotrun plan`, `spotrun migrate` (file stores) and the resume
# policy of `spotrun run` (with and without --from-store), with a test
# catalog whose egress price is absurd ($1000/GB) so that a 2 MB
# checkpoint's move costs dollars.  Checkpoints "made on aws:us-east-1" are
# ordinary pushes whose manifest's provider and region are rewritten in the
# file store.  This machine is on provider "none" (metadata endpoints closed).
. "$(dirname "$0")/../lib.sh"

cat_json() { # the test catalog
	cat <<'J'
{"format": 1, "currency": "USD", "as_of": "2026-11-30",
 "sources": {"t": {"url": "https://example.com/test", "as_of": "2026-11-30"}},
 "regions": [
  {"provider": "aws", "region": "us-east-1", "source": "t", "store_mb_s": 100, "interruptions_per_hour": 0,
   "egress_per_gb": {"internet": 1000, "cross_region": 100, "same_region": 0},
   "machines": [{"type": "big", "gpus": 1, "on_demand": 6, "spot": 2.0, "source": "t"}]},
  {"provider": "aws", "region": "us-west-2", "source": "t", "store_mb_s": 100, "interruptions_per_hour": 0,
   "egress_per_gb": {"internet": 1000, "cross_region": 100, "same_region": 0},
   "machines": [{"type": "big", "gpus": 1, "on_demand": 6, "spot": 1.8, "source": "t"}]},
  {"provider": "gcp", "region": "us-central1", "source": "t", "store_mb_s": 100, "interruptions_per_hour": 0.5,
   "egress_per_gb": {"internet": 0.12, "cross_region": 0.02, "same_region": 0},
   "machines": [{"type": "cheap", "gpus": 1, "on_demand": 3, "spot": 0.5, "estimate": true, "source": "t"}]}
 ]}
J
}

# mkjob JOB [PROVIDER REGION]: a 2 MB checkpoint pushed to ./st, made "there"
mkjob() {
	mkdir -p "src/$1/step-000100"
	head -c 2000000 /dev/urandom >"src/$1/step-000100/w.bin"
	expect_rc 0 "$SR" push "src/$1/step-000100" --job "$1" --store file://$T/st
	cat_json >cat.json
	[ -z "${2:-}" ] && return 0
	python3 - "$T/st/$1/ckpt/00000001/manifest.json" "$2" "$3" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); m["provider"], m["region"] = sys.argv[2], sys.argv[3]
open(sys.argv[1], "w").write(json.dumps(m))
PY
}

t_plan_ranks_with_reasons() {
	mkjob j aws us-east-1
	expect_rc 0 "$SR" plan --job j --store file://$T/st --catalog cat.json --hours 1 \
		--targets aws:us-east-1,aws:us-west-2:big,gcp:us-central1
	first=$(sed -n 4p "$T/out")
	assert_contains "$first" "aws:us-east-1" "rank 1"
	assert_contains "$first" "already here"
	assert_contains "$OUT" "outweighs the cheaper hourly price"
	# more hours: the cheap GCP machine pays for its egress
	expect_rc 0 "$SR" plan --job j --store file://$T/st --catalog cat.json --hours 100 --json
	python3 - "$T/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["targets"]
assert [x["rank"] for x in t] == [1, 2, 3], t
assert t[0]["provider"] == "gcp" and "pays for egress" in t[0]["reason"], t[0]
assert t[0]["move_bytes"] == d["bytes"] > 2000000, t[0]
assert abs(t[0]["egress_usd"] - d["bytes"] / 1e9 * 1000) < 1e-6, t[0]
assert abs(t[0]["interruptions"] - 50) < 1e-9 and t[0]["overhead_usd"] > 0, t[0]
stay = [x for x in t if x["region"] == "us-east-1"][0]
assert stay["move_bytes"] == 0 and stay["egress_usd"] == 0 and abs(stay["total_usd"] - 200) < 1e-6, stay
west = [x for x in t if x["region"] == "us-west-2"][0]
assert "pays for egress" in west["reason"] and abs(west["egress_usd"] - d["bytes"] / 1e9 * 100) < 1e-6, west
assert d["source"] == {"provider": "aws", "region": "us-east-1"} and d["hours_from"] == "--hours"
PY
}

t_plan_errors() {
	mkjob j aws us-east-1
	expect_rc 78 "$SR" plan --job j --store file://$T/st --catalog cat.json --hours 1 --targets azure:eastus
	assert_contains "$ERR" "no entry for azure:eastus"
	expect_rc 78 "$SR" plan --job j --store file://$T/st --catalog cat.json --hours 1 --targets aws:us-east-1:nope
	assert_contains "$ERR" "no machine type 'nope'"
	expect_rc 64 "$SR" plan --job j --store file://$T/st --catalog cat.json --hours 1 --targets aws
	expect_rc 64 "$SR" plan --job j --store file://$T/st --catalog cat.json
	assert_contains "$ERR" "--hours"
	sed 's/"spot": 2.0/"spot": -2/' cat.json >bad.json
	expect_rc 78 "$SR" plan --job j --store file://$T/st --catalog bad.json --hours 1
	assert_contains "$ERR" "bad.json"
	assert_contains "$ERR" "regions[0].machines[0].spot"
	expect_rc 78 "$SR" plan --job j --store file://$T/st --catalog missing.json --hours 1
	# the shipped catalog next to the binary is the default
	expect_rc 0 "$SR" plan --job j --store file://$T/st --hours 2 --json
	assert_contains "$OUT" "examples/catalog.json"
}

t_plan_hours_from_progress() {
	mkjob j
	mkdir -p src/j/step-000200 && cp src/j/step-000100/w.bin src/j/step-000200/
	expect_rc 0 "$SR" push src/j/step-000200 --job j --store file://$T/st
	python3 - "$T/st/j" <<'PY'
import json, sys
d = sys.argv[1]
for seq, t in (("00000001", "2026-11-30T00:00:00Z"), ("00000002", "2026-11-30T01:00:00Z")):
    p = "%s/ckpt/%s/manifest.json" % (d, seq); m = json.load(open(p)); m["created"] = t
    open(p, "w").write(json.dumps(m))
open(d + "/job.json", "w").write(json.dumps({"version": 1, "job": "j", "total_steps": 1200, "runs": []}))
PY
	expect_rc 0 "$SR" plan --job j --store file://$T/st --catalog cat.json --json
	python3 -c "import json,sys; d=json.load(open('$T/out')); assert abs(d['hours']-10)<1e-9, d['hours']"
}

t_migrate_dry_run_and_max_cost() {
	mkjob j aws us-east-1
	expect_rc 0 "$SR" migrate --job j --store file://$T/st --to file://$T/dst --catalog cat.json --dry-run
	assert_contains "$OUT" "would migrate 'j': 1 checkpoints"
	assert_contains "$OUT" "internet egress from aws"
	assert_no_file "$T/dst/j"
	expect_rc 78 "$SR" migrate --job j --store file://$T/st --to file://$T/dst --catalog cat.json --max-cost 1
	assert_contains "$ERR" "exceeds --max-cost"
	assert_no_file "$T/dst/j"
	expect_rc 64 "$SR" migrate --job j --store file://$T/st --catalog cat.json
}

t_migrate_file_to_file() {
	mkjob j
	mkdir -p src/j/step-000200 && head -c 3000000 /dev/urandom >src/j/step-000200/w.bin
	expect_rc 0 "$SR" push src/j/step-000200 --job j --store file://$T/st
	expect_rc 0 "$SR" migrate --job j --store file://$T/st --to file://$T/dst --catalog cat.json
	assert_contains "$OUT" "2 checkpoints copied"
	cmp "$T/st/j/ckpt/00000002/manifest.json" "$T/dst/j/ckpt/00000002/manifest.json"
	cmp "$T/st/j/ckpt/00000001/data.tar.zst" "$T/dst/j/ckpt/00000001/data.tar.zst"
	expect_rc 0 "$SR" verify --job j --store file://$T/dst
	expect_rc 0 "$SR" pull back --job j --store file://$T/dst
	cmp back/w.bin src/j/step-000200/w.bin
	for s in st dst; do
		python3 -c "import json; m=json.load(open('$T/$s/j/job.json'))['migrations']; assert len(m)==1 and m[0]['copied']==2 and m[0]['estimated']['usd']==0, m"
	done
	# again: everything is already there
	expect_rc 0 "$SR" migrate --job j --store file://$T/st --to file://$T/dst --catalog cat.json
	assert_contains "$OUT" "0 checkpoints copied, 2 already there"
	# a different checkpoint under the same seq at the destination is refused
	python3 - "$T/dst/j/ckpt/00000002/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); m["host"] = "elsewhere"; open(sys.argv[1], "w").write(json.dumps(m))
PY
	expect_rc 65 "$SR" migrate --job j --store file://$T/st --to file://$T/dst --catalog cat.json
	assert_contains "$ERR" "different checkpoint"
}

t_migrate_runs_migration_hooks() {
	mkjob j
	printf '#!/bin/sh\ncat >"%s/hook.json"\nexit 3\n' "$T" >hook.sh && chmod +x hook.sh
	expect_rc 0 "$SR" migrate --job j --store "file://$T/st" --to "file://$T/dst" --catalog cat.json \
		--hook migration="$T/hook.sh"
	assert_contains "$ERR" "hook 'hook.sh' for migration failed with status 3"
	python3 - hook.json "$T/dst/j/job.json" <<'PY' || fail "hook: $(cat hook.json)"
import json, sys
h = json.load(open(sys.argv[1])); rec = json.load(open(sys.argv[2]))["migrations"][0]
assert h["event"] == "migration" and h["job"] == "j" and h["run"] == 0 and h["version"] == 1, h
assert h["data"] == rec and rec["kind"] == "migrate" and rec["copied"] == 1, (h, rec)
PY
	# --hook-strict: the failed hook fails the command (the copy is done)
	expect_rc 70 "$SR" migrate --job j --store "file://$T/st" --to "file://$T/dst" --catalog cat.json \
		--hook migration="$T/hook.sh" --hook-strict
	assert_contains "$OUT" "0 checkpoints copied, 1 already there"
	# a bad hook is refused before anything moves
	expect_rc 64 "$SR" migrate --job j --store "file://$T/st" --to "file://$T/dst2" --hook bogus=/bin/true
	assert_no_file "$T/dst2"
}

t_resume_policy() {
	mkjob j aws us-east-1
	# provider none here, checkpoint made on aws:us-east-1: a migration
	expect_rc 78 "$SR" run --job j --store file://$T/st --ckpt-dir ck --catalog cat.json -- true
	assert_contains "$ERR" "rerun with --migrate allow or --migrate max-cost="
	assert_contains "$ERR" "made on aws:us-east-1"
	assert_no_file ck/step-000100
	expect_rc 78 "$SR" run --job j --store file://$T/st --ckpt-dir ck --catalog cat.json --migrate max-cost=0.5 -- true
	assert_contains "$ERR" "exceeds --migrate max-cost=0.50"
	expect_rc 64 "$SR" run --job j --store file://$T/st --ckpt-dir ck --migrate sometimes -- true
	expect_rc 0 "$SR" run --job j --store file://$T/st --ckpt-dir ck --catalog cat.json --migrate allow -- \
		sh -c 'test "$SPOTRUN_RESUME_DIR" = "$PWD/ck/step-000100"'
	python3 -c "
import json; m=json.load(open('$T/st/j/job.json'))['migrations']
assert len(m)==1 and m[0]['kind']=='pull' and m[0]['from_place']=='aws' and m[0]['to_place']=='none', m
assert m[0]['estimated']['usd'] > 1 and m[0]['actual']['seconds'] > 0, m"
}

t_resume_same_place() {
	mkjob j	# made on provider none, resumed on none: no question asked
	expect_rc 0 "$SR" run --job j --store file://$T/st --ckpt-dir ck -- sh -c 'test -n "$SPOTRUN_RESUME_DIR"'
	mkjob k none ""
	expect_rc 0 "$SR" run --job k --store file://$T/st --ckpt-dir ck2 -- sh -c 'test -n "$SPOTRUN_RESUME_DIR"'
}

# ---- --from-store: the job ran against ./old, now resumes with --store ./new

# mkold STEP [PROVIDER REGION [STORE]]: a 2 MB checkpoint step-STEP of job j
# pushed to ./old (or ./STORE), made "there"
mkold() {
	d=src/step-$(printf %06d "$1")
	mkdir -p "$d"
	head -c 2000000 /dev/urandom >"$d/w.bin"
	expect_rc 0 "$SR" push "$d" --job j --store "file://$T/${4:-old}"
	cat_json >cat.json
	[ -n "${2:-}" ] || return 0
	python3 - "$T/${4:-old}/j/ckpt" "$2" "$3" <<'PY'
import json, os, sys
p = os.path.join(sys.argv[1], sorted(os.listdir(sys.argv[1]))[-1], "manifest.json")
m = json.load(open(p)); m["provider"], m["region"] = sys.argv[2], sys.argv[3]
open(p, "w").write(json.dumps(m))
PY
}
FROM() { echo --job j --store "file://$T/new" --from-store "file://$T/old" --ckpt-dir ck --catalog cat.json; }
# migrations STORE PYTHON: asserts on m (job.json's migrations) of ./STORE
migrations() {
	python3 -c "import json; m=json.load(open('$T/$1/j/job.json'))['migrations']; $2" ||
		fail "migrations in $1: $(cat "$T/$1/j/job.json")"
}

t_from_store_deny_prints_both_ways() {
	mkold 100 aws us-east-1
	expect_rc 78 "$SR" run $(FROM) -- true
	assert_contains "$ERR" "checkpoint seq 1 of 'j' in file://$T/old (aws:us-east-1) is newer than any in file://$T/new (none); this machine is on none: resuming here is a migration"
	assert_contains "$ERR" "way 1, pull directly from file://$T/old: 0.002 GB, \$2.00 (internet egress from aws), about 0 s"
	assert_contains "$ERR" "way 2, copy into file://$T/new first, then pull: 0.004 GB, \$2.00 (copy 0.002 GB: internet egress from aws; pull 0.002 GB: no egress"
	assert_contains "$ERR" "choosing way 2 (migrate): it costs no more"
	assert_contains "$ERR" "error: not migrating (--migrate deny); rerun with --migrate allow or --migrate max-cost=2.01"
	assert_no_file "$T/new/j/ckpt"
	assert_no_file ck/step-000100
	# the environment twin and the config file key do the same
	SPOTRUN_FROM_STORE=file://$T/old expect_rc 78 "$SR" run --job j --store "file://$T/new" --catalog cat.json -- true
	assert_contains "$ERR" "--migrate max-cost=2.01"
	echo "{\"from-store\": \"file://$T/old\"}" >spotrun.json
	expect_rc 78 "$SR" run --job j --store "file://$T/new" --catalog cat.json -- true
	assert_contains "$ERR" "--migrate max-cost=2.01"
}

t_from_store_max_cost() {
	mkold 100 aws us-east-1
	expect_rc 78 "$SR" run $(FROM) --migrate max-cost=0.5 -- true
	assert_contains "$ERR" "estimated migration cost \$2.00 exceeds --migrate max-cost=0.50; rerun with --migrate allow or --migrate max-cost=2.01"
	assert_no_file "$T/new/j/ckpt"
	expect_rc 0 "$SR" run $(FROM) --migrate max-cost=2.01 -- sh -c 'test -n "$SPOTRUN_RESUME_DIR"'
	migrations new "assert m[0]['kind'] == 'migrate' and m[0]['policy'] == 'max-cost=2.01', m"
}

t_from_store_allow_copies_into_store() {
	mkold 100 aws us-east-1
	printf '#!/bin/sh\ncat >"%s/hook.json"\n' "$T" >hook.sh && chmod +x hook.sh
	expect_rc 0 "$SR" run $(FROM) --migrate allow --hook migration="$T/hook.sh" -- sh -c \
		'test "$SPOTRUN_RESUME_DIR" = "$PWD/ck/step-000100" && cmp "$SPOTRUN_RESUME_DIR/w.bin" src/step-000100/w.bin'
	assert_contains "$ERR" "choosing way 2 (migrate)"
	assert_contains "$ERR" "copying 1 checkpoint(s) of 'j' (seq 1 and what it references) from file://$T/old into file://$T/new"
	assert_contains "$ERR" "restoring checkpoint seq 1 (step 100, 2.0 MB) from file://$T/new"
	cmp old/j/ckpt/00000001/manifest.json new/j/ckpt/00000001/manifest.json
	cmp old/j/ckpt/00000001/data.tar.zst new/j/ckpt/00000001/data.tar.zst
	expect_rc 0 "$SR" verify --job j --store "file://$T/new" --step 100
	for s in new old; do
		migrations $s "
r = m[0]; assert len(m) == 1 and r['kind'] == 'migrate' and r['migration'] and r['policy'] == 'allow', r
assert r['from'] == 'file://$T/old' and r['to'] == 'file://$T/new' and r['from_place'] == 'aws', r
assert r['to_place'] == 'none' and r['seq'] == 1 and r['copied'] == 1 and r['pulled'], r
assert r['estimated']['priced'] and abs(r['estimated']['usd'] - r['copy']['estimated']['usd']) < 1e-9, r
assert r['estimated']['usd'] > 2 and r['actual']['usd'] > 2 and r['actual']['seconds'] > 0, r
assert r['copy']['seconds'] > 0 and r['pull']['seconds'] > 0 and r['verified_bytes'] >= r['copy']['bytes'] > 2000000, r
assert r['alternative']['kind'] == 'pull' and r['alternative']['possible'], r"
	done
	python3 - "$T/new/j/events" "$T/hook.json" <<'PY' || fail "migration event: $(cat "$T/hook.json")"
import json, os, sys
evs = [json.load(open(os.path.join(sys.argv[1], f))) for f in sorted(os.listdir(sys.argv[1]))]
names = [e["event"] for e in evs]
assert names.index("migration") < names.index("resume"), names
mig = [e for e in evs if e["event"] == "migration"][0]
hook = json.load(open(sys.argv[2]))
assert hook["event"] == "migration" and hook["data"] == mig["data"], (hook, mig)
assert mig["data"]["kind"] == "migrate" and mig["data"]["estimated"]["usd"] > 2, mig
PY
	expect_rc 0 "$SR" ls --job j --store "file://$T/new"
	assert_contains "$OUT" "migrate from file://$T/old (aws -> none), 0.004 GB: estimated \$2.00"
}

t_from_store_incremental_same_place() {
	# seq 2 references big.bin in seq 1: both are copied; made outside a
	# cloud, so no question is asked (--migrate deny, the default)
	mkdir -p src/step-000100 src/step-000200
	head -c 2000000 /dev/urandom >src/step-000100/big.bin && echo 1 >src/step-000100/small
	expect_rc 0 "$SR" push src/step-000100 --job j --store "file://$T/old"
	cp -p src/step-000100/big.bin src/step-000200/ && echo 2 >src/step-000200/small
	expect_rc 0 "$SR" push src/step-000200 --job j --store "file://$T/old"
	grep -q '"ref"' old/j/ckpt/00000002/manifest.json || fail "seq 2 is not incremental"
	cat_json >cat.json
	expect_rc 0 "$SR" run $(FROM) -- sh -c \
		'cmp "$SPOTRUN_RESUME_DIR/big.bin" src/step-000100/big.bin && test "$(cat "$SPOTRUN_RESUME_DIR/small")" = 2'
	assert_not_contains "$ERR" "is a migration"
	assert_contains "$ERR" "copying 2 checkpoint(s) of 'j' (seq 2 and what it references)"
	for s in 1 2; do cmp old/j/ckpt/0000000$s/manifest.json new/j/ckpt/0000000$s/manifest.json; done
	expect_rc 0 "$SR" verify --job j --store "file://$T/new" --step 200
	migrations new "r = m[0]; assert r['kind'] == 'migrate' and not r['migration'] and r['copied'] == 2, r
assert r['policy'] == 'not a migration (same place)' and r['estimated']['usd'] == 0, r"
}

t_from_store_direct_pull_when_copy_impossible() {
	mkold 200 aws us-east-1
	mkold 100 "" "" new	# ./new holds an older seq 1: a copy would not be the newest there
	cp new/j/ckpt/00000001/manifest.json before.json
	expect_rc 0 "$SR" run $(FROM) --migrate allow -- sh -c \
		'test "$SPOTRUN_RESUME_DIR" = "$PWD/ck/step-000200" && cmp "$SPOTRUN_RESUME_DIR/w.bin" src/step-000200/w.bin'
	assert_contains "$ERR" "way 2, copy into file://$T/new first, then pull: not possible: --store already holds seq 1"
	assert_contains "$ERR" "choosing way 1 (pull): the only way"
	assert_contains "$ERR" "restoring checkpoint seq 1 (step 200, 2.0 MB) from file://$T/old"
	cmp before.json new/j/ckpt/00000001/manifest.json
	for s in new old; do
		migrations $s "r = m[0]; assert r['kind'] == 'pull' and r['from'] == 'file://$T/old' and r['seq'] == 1, r
assert r['estimated']['usd'] > 2 and r['actual']['seconds'] > 0 and 'copied' not in r, r
assert not r['alternative']['possible'] and 'already holds seq 1' in r['alternative']['why_not'], r"
	done
}

t_from_store_older_or_misused() {
	mkold 100 aws us-east-1
	mkold 200 "" "" new
	expect_rc 0 "$SR" run $(FROM) -v -- sh -c 'test "$SPOTRUN_RESUME_DIR" = "$PWD/ck/step-000200"'
	assert_contains "$ERR" "file://$T/old holds nothing newer than file://$T/new (seq 1, step 200)"
	assert_not_contains "$ERR" "way 1"
	expect_rc 64 "$SR" run --job j --store "file://$T/old" --from-store "file://$T/old" -- true
	assert_contains "$ERR" "--from-store names the store itself"
	expect_rc 64 "$SR" run --job j --store none --from-store "file://$T/old" -- true
	assert_contains "$ERR" "--from-store needs a store"
}

run_tests
