# providers.sh - CLI tests of the AWS and GCP interruption sources against
# tests/servers/metadata_server.py serving the documented payloads
# (tests/fixtures/metadata): identity, every notice kind normalized (kind,
# deadline, raw byte for byte) through `spotrun watch --json` and through
# `spotrun run`, rebalance as an early push, IMDSv2 token refresh on 401, the
# GCP hanging GET re-armed with last_etag, 503 retries.
. "$SPOTRUN_TOP/tests/lib.sh"
. "$SPOTRUN_TOP/tests/servers/metadata_helpers.sh"

IA=/latest/meta-data/spot/instance-action
REB=/latest/meta-data/events/recommendations/rebalance
TT=/latest/meta-data/spot/termination-time
PRE=/computeMetadata/v1/instance/preempted
MEV=/computeMetadata/v1/instance/maintenance-event

# ---- AWS ------------------------------------------------------------------
t_aws_identity() {
	serve --provider aws --require-token
	AWS_EC2_METADATA_SERVICE_ENDPOINT=$URL expect_rc 0 "$SR" detect --json
	echo "$OUT" >d.json
	jtrue d.json 'n["provider"]=="aws" and n["region"]=="us-east-1" and n["zone"]=="us-east-1a"'
	jtrue d.json 'n["instance_type"]=="m4.xlarge" and n["instance_id"]=="i-1234567890abcdef0"'
	jtrue d.json 'n["lifecycle"]=="spot" and n["in_guest_notice"] is True'
	jtrue d.json '"spot/instance-action" in n["notices"]'
	assert_ne "$(srv_count 'PUT /latest/api/token 200')" 0 "token PUTs"
}
t_aws_terminate_and_stop_through_watch() {
	for f in terminate:terminate stop:preempt; do
		serve --provider aws --at "$IA=instance-action-${f%%:*}.json@0.3"
		AWS_EC2_METADATA_SERVICE_ENDPOINT=$URL watch_start --poll-interval 0.1
		wait_for '[ -s "$T/w.out" ]' 10 || fail "no notice: $(cat "$T/w.err")"
		watch_stop
		kill $SPID
		jtrue w.out "n['source']=='aws' and n['kind']=='${f#*:}' and n['identity']['provider']=='aws'"
		jtrue w.out 'n["deadline_unix"]==utc("2017-09-18T08:22:00Z")'
		jtrue w.out "n['raw_text']==fx('aws/instance-action-${f%%:*}.json')"
		assert_eq "$(wc -l <w.out)" 1 "notices (each payload once)"
	done
}
t_aws_notice_through_run_exits_75() {
	serve --provider aws --require-token --at "$IA=instance-action-aemm.json@ctl"
	AWS_EC2_METADATA_SERVICE_ENDPOINT=$URL run_notice --store none --poll-interval 0.1
	assert_eq "$RC" 75 "exit status"
	jtrue notice.json 'n["source"]=="aws" and n["kind"]=="terminate" and n["raw_text"]==fx("aws/instance-action-aemm.json")'
	jtrue notice.json 'n["deadline_unix"]==utc("2020-04-24T17:11:44Z") and n["identity"]["instance_type"]=="m4.xlarge"'
}
t_aws_rebalance_does_not_end_the_run() {
	serve --provider aws --at "$REB=rebalance.json@0.2" --at "$IA=instance-action-terminate.json@ctl"
	notice_child
	AWS_EC2_METADATA_SERVICE_ENDPOINT=$URL "$SR" --store none --poll-interval 0.1 -- sh c.sh 2>err &
	sr=$!
	wait_for 'grep -q "rebalance recommendation" err' 10 || fail "no rebalance: $(cat err)"
	sleep 0.5
	kill -0 $sr || fail "spotrun ended on a rebalance recommendation"
	kill -0 "$(cat up)" || fail "the child ended on a rebalance recommendation"
	assert_no_file notice.json
	ctl release
	set +e; wait $sr; rc=$?; set -e
	assert_eq "$rc" 75 "exit status after the instance-action"
	jtrue notice.json 'n["kind"]=="terminate" and n["raw_text"]==fx("aws/instance-action-terminate.json")'
}
t_aws_rebalance_normalized() {
	serve --provider aws --at "$REB=rebalance-aemm.json@0.2"
	AWS_EC2_METADATA_SERVICE_ENDPOINT=$URL watch_start --poll-interval 0.1
	wait_for '[ -s "$T/w.out" ]' 10 || fail "no notice: $(cat "$T/w.err")"
	watch_stop
	jtrue w.out 'n["kind"]=="rebalance" and n["raw_text"]==fx("aws/rebalance-aemm.json")'
	jtrue w.out 'n["raw"]=={"noticeTime": "2020-10-16T19:18:24Z"}'
}
t_aws_token_refreshed_on_401() {
	# tokens die after 0.5 s whatever their TTL: the GETs get 401 and the
	# watcher must fetch a new token and carry on to the notice at 2 s
	serve --provider aws --require-token --token-life 0.5 --at "$IA=instance-action-stop.json@2"
	AWS_EC2_METADATA_SERVICE_ENDPOINT=$URL watch_start --poll-interval 0.2
	wait_for '[ -s "$T/w.out" ]' 10 || fail "no notice: $(cat "$T/w.err")"
	watch_stop
	jtrue w.out 'n["kind"]=="preempt"'
	assert_ne "$(srv_count ' 401$')" 0 "401 answers"
	puts=$(srv_count 'PUT /latest/api/token 200')
	[ "$puts" -ge 3 ] || fail "expected new tokens after 401s, got $puts PUTs"
}
t_aws_legacy_termination_time() {
	serve --provider aws --at "$TT=termination-time.txt@0.2"
	AWS_EC2_METADATA_SERVICE_ENDPOINT=$URL watch_start --poll-interval 0.1
	wait_for '[ -s "$T/w.out" ]' 10 || fail "no notice: $(cat "$T/w.err")"
	watch_stop
	jtrue w.out 'n["kind"]=="terminate" and n["deadline_unix"]==utc("2015-01-05T18:02:00Z")'
	jtrue w.out 'n["raw_text"]==fx("aws/termination-time.txt")'
}
t_aws_termination_time_that_is_no_time_is_no_notice() {
	printf 'none' >"$T/notime"
	serve --provider aws --static "$TT=$T/notime"
	AWS_EC2_METADATA_SERVICE_ENDPOINT=$URL watch_start --poll-interval 0.1
	wait_for '[ "$(srv_count "GET $TT 200")" -ge 3 ]' 10 || fail "not polled: $(cat "$T/srv.log")"
	watch_stop
	assert_eq "$(cat w.out)" "" "notices"
}

# ---- GCP ------------------------------------------------------------------
t_gcp_identity() {
	serve --provider gcp
	GCE_METADATA_HOST=127.0.0.1:$PORT expect_rc 0 "$SR" detect --json
	echo "$OUT" >d.json
	jtrue d.json 'n["provider"]=="gcp" and n["zone"]=="us-central1-a" and n["region"]=="us-central1"'
	jtrue d.json 'n["instance_type"]=="n1-standard-1" and n["lifecycle"]=="spot"'
	jtrue d.json 'n["instance_id"]=="4520031799277581759"'
}
t_gcp_preempted_hanging_get_rearmed_with_last_etag() {
	# the server ends each hanging GET after 0.3 s: the watcher must re-arm
	# it with the ETag it last saw (the server logs NOETAG otherwise)
	serve --provider gcp --max-hang 0.3 --at "$PRE=preempted-true.txt@1.5"
	GCE_METADATA_HOST=127.0.0.1:$PORT watch_start
	wait_for '[ -s "$T/w.out" ]' 10 || fail "no notice: $(cat "$T/w.err")"
	watch_stop
	jtrue w.out 'n["source"]=="gcp" and n["kind"]=="preempt" and n["raw_text"]=="TRUE"'
	jtrue w.out 'abs(n["lead_seconds"]-30) < 0.01'
	etag=$("$PY" -c 'import hashlib; print(hashlib.md5(b"FALSE").hexdigest()[:16])')
	n=$(srv_count "GET $PRE?wait_for_change=true&timeout_sec=60&last_etag=$etag 200")
	[ "$n" -ge 3 ] || fail "expected re-armed hanging GETs with last_etag=$etag: $(cat "$T/srv.log")"
	assert_eq "$(srv_count NOETAG)" 0 "hanging GETs without last_etag"
}
t_gcp_503_retried() {
	serve --provider gcp --fail-503 3 --fail-path preempted --at "$PRE=preempted-true.txt@0.2"
	GCE_METADATA_HOST=127.0.0.1:$PORT watch_start
	wait_for '[ -s "$T/w.out" ]' 15 || fail "no notice: $(cat "$T/w.err")"
	watch_stop
	assert_eq "$(srv_count "$PRE.* 503")" 3 "503 answers"
	jtrue w.out 'n["kind"]=="preempt"'
}
t_gcp_maintenance_event() {
	serve --provider gcp --at "$MEV=maintenance-terminate.txt@0.3"
	GCE_METADATA_HOST=127.0.0.1:$PORT watch_start
	wait_for '[ -s "$T/w.out" ]' 10 || fail "no notice: $(cat "$T/w.err")"
	watch_stop
	jtrue w.out 'n["kind"]=="maintenance" and n["raw_text"]=="TERMINATE_ON_HOST_MAINTENANCE"'
	jtrue w.out 'abs(n["lead_seconds"]-60) < 0.01'
}
t_gcp_preempted_through_run_exits_75() {
	serve --provider gcp --at "$PRE=preempted-true.txt@ctl"
	GCE_METADATA_HOST=127.0.0.1:$PORT run_notice --store none
	assert_eq "$RC" 75 "exit status"
	jtrue notice.json 'n["source"]=="gcp" and n["kind"]=="preempt" and n["raw_text"]=="TRUE"'
	jtrue notice.json 'n["identity"]["region"]=="us-central1"'
}

run_tests
