# detect.sh - CLI tests of `spotrun detect` and `spotrun watch` and of the
# detection rules: settled on "none" within 300 ms when nothing answers
# (closed ports, or a listener that accepts and never replies), no
# connection at all with --provider none, --provider NAME forcing one, a
# prompt stop even with a request in flight, and watch's own sources
# (--simulate, --notice-file) and exit on SIGINT/SIGTERM.
. "$SPOTRUN_TOP/tests/lib.sh"
. "$SPOTRUN_TOP/tests/servers/metadata_helpers.sh"

# every metadata override at the server on $PORT
all_at_server() {
	export AWS_EC2_METADATA_SERVICE_ENDPOINT=$URL GCE_METADATA_HOST=127.0.0.1:$PORT \
		SPOTRUN_AZURE_METADATA_ENDPOINT=$URL SPOTRUN_ALIBABA_METADATA_ENDPOINT=$URL \
		SPOTRUN_OCI_METADATA_ENDPOINT=$URL SPOTRUN_IBM_METADATA_ENDPOINT=$URL
}

t_detect_none_on_closed_ports() {
	expect_rc 0 "$SR" detect
	assert_contains "$OUT" "provider:      none"
	assert_contains "$OUT" "gpus:"
	expect_rc 0 "$SR" detect --json
	echo "$OUT" >d.json
	jtrue d.json 'n["provider"]=="none" and n["in_guest_notice"] is False and "gpus" in n'
	expect_rc 64 "$SR" detect --provider marsnet
	expect_rc 64 "$SR" detect extra
}
t_settles_within_300ms_when_a_listener_never_replies() {
	serve --provider aws --hang
	all_at_server
	t0=$(now_ms)
	expect_rc 0 "$SR" detect --json
	t1=$(now_ms)
	echo "$OUT" >d.json
	jtrue d.json 'n["provider"]=="none"'
	assert_range $((t1 - t0)) 250 900 "detect wall time ms (settles at 300 ms)"
	assert_ne "$(srv_count CONNECT)" 0 "connections to the silent listener"
	t0=$(now_ms)
	expect_rc 0 "$SR" -- true
	t1=$(now_ms)
	assert_range $((t1 - t0)) 0 900 "'spotrun -- true' wall time ms (never waits for detection)"
	t0=$(now_ms)
	expect_rc 0 "$SR" -v -- sh -c 'sleep 0.5'
	t1=$(now_ms)
	assert_contains "$ERR" "provider: none"
	assert_range $((t1 - t0)) 400 1100 "'spotrun -- sleep 0.5' wall time ms"
}
t_provider_none_makes_no_connection() {
	serve --provider aws
	all_at_server
	expect_rc 0 "$SR" --provider none -- sh -c 'sleep 0.4'
	expect_rc 0 "$SR" detect --provider none
	assert_contains "$OUT" "provider:      none"
	SPOTRUN_PROVIDER_FORCE=none expect_rc 0 "$SR" detect
	watch_start --provider none --simulate preempt@0.3
	wait_for '[ -s "$T/w.out" ]' 5 || fail "no simulated notice"
	watch_stop
	assert_eq "$(srv_count CONNECT)" 0 "connections"
	# auto: now it does connect (the probes wait until the command has run
	# for 20 ms, so a command that ends at once may never make them go)
	expect_rc 0 "$SR" -- sh -c 'sleep 0.3'
	assert_ne "$(srv_count CONNECT)" 0 "connections in auto mode"
}
t_forced_provider() {
	serve --provider gcp
	all_at_server
	expect_rc 0 "$SR" detect --provider gcp --json
	echo "$OUT" >d.json
	jtrue d.json 'n["provider"]=="gcp" and n["region"]=="us-central1"'
	assert_eq "$(srv_count '/latest/api/token')" 0 "AWS probes while gcp is forced"
	# forced onto a closed port: the answer is the forced name, without details
	AWS_EC2_METADATA_SERVICE_ENDPOINT=$CLOSED expect_rc 0 "$SR" detect --provider aws --json
	echo "$OUT" >d.json
	jtrue d.json 'n["provider"]=="aws" and n["region"]==""'
}
t_stop_is_prompt_with_a_request_in_flight() {
	serve --provider gcp --hang
	all_at_server
	t0=$(now_ms)
	expect_rc 0 "$SR" --provider gcp -- sh -c 'sleep 0.3'
	t1=$(now_ms)
	assert_range $((t1 - t0)) 250 900 "wall time ms with a hanging metadata GET"
}
t_watch_simulate_human_and_json() {
	watch_start --simulate rebalance@0.1
	wait_for '[ -s "$T/w.out" ]' 5 || fail "no notice"
	watch_stop
	jtrue w.out 'n["source"]=="simulate" and n["kind"]=="rebalance" and n["raw"]=={"simulated": "rebalance@0.1"}'
	"$SR" watch --simulate preempt@0.1 >h.out 2>h.err &
	w=$!
	wait_for '[ -s h.out ]' 5 || fail "no notice"
	kill -TERM $w
	set +e; wait $w; rc=$?; set -e
	assert_eq "$rc" 0 "exit status on SIGTERM"
	assert_contains "$(cat h.out)" "preempt notice from simulate: deadline "
}
t_watch_notice_file() {
	watch_start --notice-file "$T/trigger"
	sleep 0.3
	printf '{"why": "drain"}' >trigger
	wait_for '[ -s "$T/w.out" ]' 5 || fail "no notice"
	watch_stop
	jtrue w.out 'n["source"]=="file" and n["raw_text"]=="{\"why\": \"drain\"}"'
	expect_rc 64 "$SR" watch --simulate explode@1
}

run_tests
