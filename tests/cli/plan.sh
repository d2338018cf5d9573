#!/bin/sh
# plan.sh - `spotrun plan`, `spotrun migrate` (file stores) and the resume
# policy of `spotrun run`, with a test catalog whose egress price is absurd
# ($1000/GB) so that a 2 MB checkpoint's move costs dollars.  Checkpoints
# "made on aws:us-east-1" are ordinary pushes whose manifest's provider and
# region are rewritten in the file store.
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

run_tests
