# providers_azure.sh - CLI tests of the Azure Scheduled Events source
# (identity, Preempt through watch and run, the StartRequests ack after the
# commit, events for other VMs ignored, SPOTRUN_AZURE_ACT_ON), Alibaba's
# termination-time, and the identity-only providers (OCI, IBM, RunPod,
# Vast, Kubernetes and Slurm as schedulers), against
# tests/servers/metadata_server.py.
. "$SPOTRUN_TOP/tests/lib.sh"
. "$SPOTRUN_TOP/tests/servers/metadata_helpers.sh"

SE=/metadata/scheduledevents
EVID=C7061BAC-AFDC-4513-B24B-AA5F13A16123
NOTBEFORE='"Mon, 11 Apr 2022 22:26:58 GMT"'

# ---- Azure ------------------------------------------------------------------
t_azure_identity() {
	serve --provider azure
	SPOTRUN_AZURE_METADATA_ENDPOINT=$URL expect_rc 0 "$SR" detect --json
	echo "$OUT" >d.json
	jtrue d.json 'n["provider"]=="azure" and n["region"]=="norwayeast" and n["zone"]=="1"'
	jtrue d.json 'n["instance_type"]=="Standard_D2s_v3" and n["lifecycle"]=="spot"'
	jtrue d.json 'n["instance_id"]=="02aab8a4-74ef-476e-8182-f6d2ba4166a6"'
}
t_azure_preempt_through_watch() {
	serve --provider azure --at "$SE=events-preempt.json@0.3"
	SPOTRUN_AZURE_METADATA_ENDPOINT=$URL watch_start --poll-interval 0.1
	wait_for '[ -s "$T/w.out" ]' 10 || fail "no notice: $(cat "$T/w.err")"
	sleep 0.4 # the same document again must not repeat the notice
	watch_stop
	assert_eq "$(wc -l <w.out)" 1 "notices"
	jtrue w.out 'n["source"]=="azure" and n["kind"]=="preempt" and n["raw_text"]==fx("azure/events-preempt.json")'
	jtrue w.out "n['deadline_unix']==calendar.timegm(time.strptime($NOTBEFORE, '%a, %d %b %Y %H:%M:%S GMT'))"
	assert_eq "$(srv_count '^ACK')" 0 "acks without a commit"
}
t_azure_ack_sent_after_commit_through_run() {
	# with --store none the runner calls prov_watch_committed() right after
	# the child exits; the StartRequests POST must reach the server before
	# spotrun exits
	serve --provider azure --at "$SE=events-preempt.json@ctl"
	SPOTRUN_AZURE_METADATA_ENDPOINT=$URL run_notice --store none --poll-interval 0.1
	assert_eq "$RC" 75 "exit status"
	jtrue notice.json 'n["kind"]=="preempt" and n["raw_text"]==fx("azure/events-preempt.json")'
	assert_eq "$(srv_count '^ACK')" 1 "StartRequests POSTs"
	grep -q "^ACK {\"StartRequests\": *\[{\"EventId\": *\"$EVID\"}\]}" "$T/srv.log" ||
		fail "ack body: $(grep ^ACK "$T/srv.log")"
}
t_azure_event_for_another_vm_ignored() {
	serve --provider azure --static "/metadata/instance/compute=compute-other-vm.json" \
		--at "$SE=events-preempt.json@0.2"
	SPOTRUN_AZURE_METADATA_ENDPOINT=$URL watch_start --poll-interval 0.1
	wait_for '[ "$(srv_count "GET $SE.* 200")" -ge 6 ]' 10 || fail "not polled: $(cat "$T/srv.log")"
	watch_stop
	assert_eq "$(cat w.out)" "" "notices"
}
t_azure_freeze_only_when_asked() {
	serve --provider azure --at "$SE=events-freeze.json@0.2"
	SPOTRUN_AZURE_METADATA_ENDPOINT=$URL watch_start --poll-interval 0.1
	wait_for '[ "$(srv_count "GET $SE.* 200")" -ge 5 ]' 10 || fail "not polled"
	watch_stop
	assert_eq "$(cat w.out)" "" "notices for Freeze by default"
	SPOTRUN_AZURE_ACT_ON=Preempt,Terminate,Freeze SPOTRUN_AZURE_METADATA_ENDPOINT=$URL \
		watch_start --poll-interval 0.1
	wait_for '[ -s "$T/w.out" ]' 10 || fail "no notice: $(cat "$T/w.err")"
	watch_stop
	jtrue w.out 'n["kind"]=="maintenance" and n["raw_text"]==fx("azure/events-freeze.json")'
	SPOTRUN_AZURE_ACT_ON=Preempt,Explode expect_rc 78 "$SR" watch
	assert_contains "$ERR" "SPOTRUN_AZURE_ACT_ON"
}

# ---- Alibaba ----------------------------------------------------------------
t_alibaba_identity_and_termination_time() {
	serve --provider alibaba --at "/latest/meta-data/instance/spot/termination-time=termination-time.txt@ctl"
	SPOTRUN_ALIBABA_METADATA_ENDPOINT=$URL expect_rc 0 "$SR" detect --json
	echo "$OUT" >d.json
	jtrue d.json 'n["provider"]=="alibaba" and n["region"]=="cn-hangzhou" and n["zone"]=="cn-hangzhou-i"'
	jtrue d.json 'n["instance_type"]=="ecs.gn6i-c4g1.xlarge" and n["instance_id"]=="i-bp67acfmxazb4ph4c3xx"'
	SPOTRUN_ALIBABA_METADATA_ENDPOINT=$URL run_notice --store none --poll-interval 0.1
	assert_eq "$RC" 75 "exit status"
	jtrue notice.json 'n["source"]=="alibaba" and n["kind"]=="preempt"'
	jtrue notice.json 'n["deadline_unix"]==utc("2018-04-07T17:03:00Z") and n["raw_text"]==fx("alibaba/termination-time.txt")'
}
t_alibaba_empty_answer_is_no_notice() {
	: >"$T/empty"
	serve --provider alibaba --static "/latest/meta-data/instance/spot/termination-time=$T/empty"
	SPOTRUN_ALIBABA_METADATA_ENDPOINT=$URL watch_start --poll-interval 0.1
	wait_for '[ "$(srv_count "termination-time 200")" -ge 3 ]' 10 || fail "not polled"
	watch_stop
	assert_eq "$(cat w.out)" "" "notices"
}

# ---- identity only ----------------------------------------------------------
t_oci_identity_only() {
	serve --provider oci
	SPOTRUN_OCI_METADATA_ENDPOINT=$URL expect_rc 0 "$SR" detect
	assert_contains "$OUT" "no in-guest notice exists"
	assert_contains "$OUT" "VM.GPU.A10.1"
	SPOTRUN_OCI_METADATA_ENDPOINT=$URL expect_rc 0 "$SR" detect --json
	echo "$OUT" >d.json
	jtrue d.json 'n["provider"]=="oci" and n["region"]=="us-phoenix-1" and n["zone"]=="EMIr:PHX-AD-1"'
	jtrue d.json 'n["instance_id"]=="ocid1.instance.oc1.phx.anyhqljt" and n["in_guest_notice"] is False'
}
t_ibm_identity_only() {
	serve --provider ibm
	SPOTRUN_IBM_METADATA_ENDPOINT=$URL expect_rc 0 "$SR" detect --json
	echo "$OUT" >d.json
	jtrue d.json 'n["provider"]=="ibm" and n["region"]=="us-south" and n["zone"]=="us-south-1"'
	jtrue d.json 'n["instance_type"]=="gx2-8x64x1v100" and n["lifecycle"]=="spot"'
	jtrue d.json '"no in-guest notice exists" in n["notices"] and n["in_guest_notice"] is False'
	assert_eq "$(srv_count 'PUT /identity/v1/token?version=2022-03-01 200')" 1 "token PUTs"
}
t_env_providers_and_schedulers() {
	RUNPOD_POD_ID=pod42 RUNPOD_DC_ID=EU-RO-1 expect_rc 0 "$SR" detect --json
	echo "$OUT" >d.json
	jtrue d.json 'n["provider"]=="runpod" and n["instance_id"]=="pod42" and n["region"]=="EU-RO-1"'
	VAST_CONTAINERLABEL=C.77 CONTAINER_ID=77 expect_rc 0 "$SR" detect
	assert_contains "$OUT" "no in-guest notice exists"
	assert_contains "$OUT" "vast"
	SLURM_JOB_ID=12 expect_rc 0 "$SR" detect --json
	echo "$OUT" >d.json
	jtrue d.json 'n["provider"]=="none" and n["scheduler"]=="slurm"'
	KUBERNETES_SERVICE_HOST=10.0.0.1 expect_rc 0 "$SR" detect
	assert_contains "$OUT" "kubernetes"
}

run_tests
