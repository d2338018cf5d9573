#!/bin/sh
# s3.sh - integration tests of the S3 / GCS store backend (transfer/s3.c)
# through build/tools/xfer_tool, against two moto servers started here:
# one open (any key accepted) and one with signature checks
# (INITIAL_NO_AUTH_ACTION_COUNT=3: three free calls create an IAM user, its
# key and an allow-all policy; afterwards a wrong secret gets 403).  The AWS
# CLI is the independent client that creates buckets and reads back what
# xfer_tool wrote.  Credential sources (profile files, IMDSv2, web identity,
# the GCE token) are served by tests/integration/metadata_stub.py.
# xfer_tool exit codes: 2 not found, 3 exists, else the EX_* code.
. "$(dirname "$0")/../lib.sh"

: "${SPOTRUN_BUILD:=$SPOTRUN_TOP/build}"
TOOL=$SPOTRUN_BUILD/tools/xfer_tool
STUB=$SPOTRUN_TOP/tests/integration/metadata_stub.py
SHARED=$(mktemp -d "${TMPDIR:-/tmp}/sr-s3.XXXXXX")
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 \
	AWS_PAGER="" SPOTRUN_RETRY_BASE_MS=20
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_REGION 2>/dev/null || true

cleanup() {
	for p in "$SHARED"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
	rm -rf "$SHARED"
}
trap cleanup EXIT INT TERM

# start_server NAME CMD...: background server, its stdout/stderr in $SHARED/NAME.log
start_server() {
	name=$1; shift
	"$@" >"$SHARED/$name.log" 2>&1 &
	echo $! >"$SHARED/$name.pid"
}

# moto_port NAME: waits for "Running on http://127.0.0.1:PORT" and /moto-api/
moto_port() {
	wait_for "grep -q 'Running on http://127.0.0.1:' '$SHARED/$1.log'" 20 || return 1
	p=$(sed -n 's|.*Running on http://127.0.0.1:\([0-9]*\).*|\1|p' "$SHARED/$1.log" | head -1)
	wait_for "curl -sf -o /dev/null http://127.0.0.1:$p/moto-api/" 20 || return 1
	echo "$p"
}

# stub_port NAME: the port a metadata_stub.py printed
stub_port() {
	wait_for "grep -q '^port ' '$SHARED/$1.log'" 10 || return 1
	sed -n 's/^port //p' "$SHARED/$1.log"
}

start_server moto python3 -m moto.server -H 127.0.0.1 -p 0
start_server motoauth env INITIAL_NO_AUTH_ACTION_COUNT=3 python3 -m moto.server -H 127.0.0.1 -p 0
MOTO=http://127.0.0.1:$(moto_port moto) || { echo "FAIL $SUITE/setup: moto did not start"; exit 1; }
AUTH=http://127.0.0.1:$(moto_port motoauth) || { echo "FAIL $SUITE/setup: moto (auth) did not start"; exit 1; }
aws --endpoint-url "$MOTO" s3 mb s3://bkt >/dev/null &
MBPID=$!

# The signature-checking server, in one boto3 process (quicker than four CLI
# runs): user, key, allow-all policy (the three free calls), then a bucket
# created with that key.  Prints "KEY SECRET".
set -- $(python3 - "$AUTH" <<'PY'
import sys, boto3
ep = sys.argv[1]
iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1")
iam.create_user(UserName="sr")
k = iam.create_access_key(UserName="sr")["AccessKey"]
iam.put_user_policy(UserName="sr", PolicyName="all", PolicyDocument='{"Version": "2012-10-17", '
                    '"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}')
boto3.client("s3", endpoint_url=ep, region_name="us-east-1", aws_access_key_id=k["AccessKeyId"],
             aws_secret_access_key=k["SecretAccessKey"]).create_bucket(Bucket="authb")
print(k["AccessKeyId"], k["SecretAccessKey"])
PY
)
AUTH_AK=$1 AUTH_SK=$2
set --
wait $MBPID
[ -n "$AUTH_SK" ] || { echo "FAIL $SUITE/setup: IAM setup on moto failed"; exit 1; }

xt() { "$TOOL" -e "$MOTO" "$@"; }

t_put_get_head_range_delete() {
	printf 'hello, store\n' >small
	expect_rc 0 xt s3://bkt/p1 put dir/a.txt small
	expect_rc 0 xt s3://bkt/p1 get dir/a.txt
	assert_eq "$OUT" "hello, store"
	expect_rc 0 xt s3://bkt/p1 head dir/a.txt
	assert_eq "$OUT" 13
	expect_rc 0 xt s3://bkt/p1 range dir/a.txt 7 5
	assert_eq "$OUT" "store"
	# the AWS CLI sees the key under the store prefix
	assert_eq "$(aws --endpoint-url "$MOTO" s3 cp s3://bkt/p1/dir/a.txt -)" "hello, store"
	expect_rc 0 xt s3://bkt/p1 delete dir/a.txt
	expect_rc 2 xt s3://bkt/p1 get dir/a.txt
	expect_rc 2 xt s3://bkt/p1 head dir/a.txt
}

t_not_found_is_2() {
	expect_rc 2 xt s3://bkt/p2 get missing.json
	assert_eq "$ERR" ""
	expect_rc 2 xt s3://bkt/p2 range missing.bin 0 10
}

t_get_max_exceeded_is_dataerr() {
	head -c 5000 /dev/zero >f
	expect_rc 0 xt s3://bkt/p3 put f f
	expect_rc 65 xt s3://bkt/p3 get f 100
	expect_rc 0 xt s3://bkt/p3 get f 5000
}

t_multipart_20mb_read_back_by_aws_cli() {
	head -c 20000000 /dev/urandom >big
	expect_rc 0 xt -w 4 -p 5242880 s3://bkt/mp upload data.tar.zst <big
	aws --endpoint-url "$MOTO" s3 cp s3://bkt/mp/data.tar.zst back --only-show-errors
	cmp big back || fail "multipart object differs from what was uploaded"
	etag=$(aws --endpoint-url "$MOTO" s3api head-object --bucket bkt --key mp/data.tar.zst \
		--query ETag --output text)
	assert_contains "$etag" "-4" "ETag of a 4-part upload"
	# ranged reads: one crossing part boundaries (split into parallel GETs), one small
	expect_rc 0 xt -w 4 s3://bkt/mp range data.tar.zst 1000 15000000
	tail -c +1001 big | head -c 15000000 >want
	cmp "$T/out" want || fail "big range differs"
	expect_rc 0 xt s3://bkt/mp range data.tar.zst 5242870 20
	tail -c +5242871 big | head -c 20 >want2
	cmp "$T/out" want2 || fail "range across a part boundary differs"
	expect_rc 65 xt s3://bkt/mp range data.tar.zst 19999990 20
}

t_small_stream_is_single_put() {
	head -c 3000000 /dev/urandom >s
	expect_rc 0 xt s3://bkt/sp upload one.bin <s
	etag=$(aws --endpoint-url "$MOTO" s3api head-object --bucket bkt --key sp/one.bin \
		--query ETag --output text)
	assert_not_contains "$etag" "-" "ETag of a single PUT"
	expect_rc 0 xt s3://bkt/sp get one.bin
	cmp "$T/out" s || fail "small upload differs"
	# six threads share one store handle, as checkpoint workers do
	expect_rc 0 xt s3://bkt/sp pread one.bin 6
	cmp "$T/out" s || fail "parallel ranged reads differ"
	: >empty
	expect_rc 0 xt s3://bkt/sp upload empty.bin <empty
	expect_rc 0 xt s3://bkt/sp head empty.bin
	assert_eq "$OUT" 0
}

t_list_paginates() {
	echo x >x
	for k in ckpt/0003/m ckpt/0001/m ckpt/0002/m ckpt/0002/data job.json; do
		expect_rc 0 xt s3://bkt/lp/job put "$k" x
	done
	expect_rc 0 xt s3://bkt/lp put other.json x
	expect_rc 0 env SPOTRUN_S3_LIST_MAX_KEYS=2 "$TOOL" -e "$MOTO" -v s3://bkt/lp/job list
	assert_eq "$OUT" "$(printf 'ckpt/0001/m 2\nckpt/0002/data 2\nckpt/0002/m 2\nckpt/0003/m 2\njob.json 2')"
	assert_contains "$ERR" "listed 5 keys in 3 pages"
	expect_rc 0 env SPOTRUN_S3_LIST_MAX_KEYS=2 "$TOOL" -e "$MOTO" s3://bkt/lp/job list ckpt/0002/
	assert_eq "$OUT" "$(printf 'ckpt/0002/data 2\nckpt/0002/m 2')"
	expect_rc 0 xt s3://bkt/lp/none list
	assert_eq "$OUT" ""
}

t_virtual_hosted_addressing() {
	# curl resolves *.localhost to the loopback, and moto reads the bucket from Host
	echo vh >v
	expect_rc 0 env SPOTRUN_S3_ADDRESSING=virtual "$TOOL" -v -e "http://localhost:${MOTO##*:}" \
		s3://bkt/vh put k v
	assert_contains "$ERR" "http://bkt.localhost:${MOTO##*:}, virtual-style"
	assert_eq "$(aws --endpoint-url "$MOTO" s3 cp s3://bkt/vh/k -)" vh
	expect_rc 0 "$TOOL" -v -e "$MOTO" s3://bkt/vh get k
	assert_contains "$ERR" "path-style"
}

t_create_only_conflict() {
	echo first >a; echo second >b
	expect_rc 0 xt s3://bkt/co create ckpt/1/manifest.json a
	expect_rc 3 xt s3://bkt/co create ckpt/1/manifest.json b
	expect_rc 0 xt s3://bkt/co get ckpt/1/manifest.json
	assert_eq "$OUT" "first"
}

t_abort_leaves_no_multipart_upload() {
	head -c 12000000 /dev/urandom >big
	expect_rc 0 xt -w 2 s3://bkt/ab upload-abort data.tar.zst 11000000 <big
	ups=$(aws --endpoint-url "$MOTO" s3api list-multipart-uploads --bucket bkt --prefix ab/ \
		--query 'length(Uploads || `[]`)' --output text)
	assert_eq "$ups" 0 "multipart uploads left"
	expect_rc 2 xt s3://bkt/ab head data.tar.zst
}

t_closed_port_is_unavailable_after_retries() {
	start=$(now_ms)
	expect_rc 69 "$TOOL" -e http://127.0.0.1:9 s3://bkt/x get a
	assert_range $(( $(now_ms) - start )) 0 5000 "ms until giving up"
	assert_contains "$ERR" "after 5 tries"
	expect_rc 69 env SPOTRUN_RETRY_TRIES=2 "$TOOL" -e http://127.0.0.1:9 s3://bkt/x put a /dev/null
	assert_contains "$ERR" "after 2 tries"
}

t_no_credentials_is_config_error() {
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	expect_rc 78 xt s3://bkt/nc get a
	assert_contains "$ERR" "no AWS credentials found"
}

t_signature_env_and_profile_against_checking_server() {
	secret=WrongSecretDoNotPrint0123456789abcdefghij
	echo data >d
	# right key from the environment: moto verifies the signature
	expect_rc 0 env AWS_ACCESS_KEY_ID=$AUTH_AK AWS_SECRET_ACCESS_KEY=$AUTH_SK \
		"$TOOL" -e "$AUTH" s3://authb/e put k d
	# wrong secret: 403 -> 77, the code in the message, the secret nowhere
	expect_rc 77 env AWS_ACCESS_KEY_ID=$AUTH_AK AWS_SECRET_ACCESS_KEY=$secret \
		"$TOOL" -v -e "$AUTH" s3://authb/e get k
	assert_contains "$ERR" "SignatureDoesNotMatch"
	assert_not_contains "$ERR" "$secret" "stderr"
	assert_not_contains "$ERR" "$AUTH_SK" "stderr"
	# the shared credentials file with AWS_PROFILE, no keys in the environment
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	mkdir -p "$HOME/.aws"
	printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n\n[good]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
		"$AUTH_AK" "$secret" "$AUTH_AK" "$AUTH_SK" >"$HOME/.aws/credentials"
	printf '[profile good]\nregion = us-east-1\n' >"$HOME/.aws/config"
	expect_rc 0 env AWS_PROFILE=good "$TOOL" -v -e "$AUTH" s3://authb/e get k
	assert_eq "$OUT" data
	assert_contains "$ERR" "profile 'good'"
	expect_rc 77 "$TOOL" -e "$AUTH" s3://authb/e get k
	assert_not_contains "$ERR" "$secret" "stderr"
	# the environment wins over the profile
	expect_rc 0 env AWS_ACCESS_KEY_ID=$AUTH_AK AWS_SECRET_ACCESS_KEY=$AUTH_SK \
		"$TOOL" -e "$AUTH" s3://authb/e get k
	# AWS_SHARED_CREDENTIALS_FILE moves the file
	mv "$HOME/.aws/credentials" "$T/creds"
	expect_rc 0 env AWS_SHARED_CREDENTIALS_FILE=$T/creds AWS_PROFILE=good \
		"$TOOL" -e "$AUTH" s3://authb/e get k
}

t_imds_v2_credentials_sign_requests() {
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	printf '{"AccessKeyId": "%s", "SecretAccessKey": "%s", "Token": ""}' "$AUTH_AK" "$AUTH_SK" >c.json
	python3 "$STUB" imds c.json "$T/imds.log" >stub.out 2>&1 &
	pid=$!
	wait_for "grep -q '^port ' stub.out" 10 || fail "stub did not start"
	port=$(sed -n 's/^port //p' stub.out)
	echo data >d
	expect_rc 0 env AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$port \
		"$TOOL" -v -e "$AUTH" s3://authb/i put k d
	kill $pid
	assert_contains "$ERR" "instance metadata (IMDSv2)"
	assert_not_contains "$ERR" "$AUTH_SK" "stderr"
	log=$(cat "$T/imds.log")
	assert_contains "$log" "PUT /latest/api/token 200"
	assert_contains "$log" "GET /latest/meta-data/iam/security-credentials/ 200"
	assert_contains "$log" "GET /latest/meta-data/iam/security-credentials/spotrun-test-role 200"
	assert_not_contains "$log" " 401" "stub log"
	expect_rc 0 env AWS_ACCESS_KEY_ID=$AUTH_AK AWS_SECRET_ACCESS_KEY=$AUTH_SK \
		"$TOOL" -e "$AUTH" s3://authb/i get k
	assert_eq "$OUT" data
}

t_web_identity_through_sts() {
	echo "eyJhbGciOiJSUzI1NiJ9.test-oidc-token.sig" >token
	echo wi >d
	expect_rc 0 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_WEB_IDENTITY_TOKEN_FILE=$T/token AWS_ROLE_ARN=arn:aws:iam::123456789012:role/trainer \
		AWS_ENDPOINT_URL_STS=$MOTO "$TOOL" -e "$MOTO" -v s3://bkt/wi put k d
	assert_contains "$ERR" "web identity (STS)"
	assert_not_contains "$ERR" "test-oidc-token" "stderr"
	expect_rc 0 xt s3://bkt/wi get k
	assert_eq "$OUT" wi
}

t_gs_with_hmac_keys() {
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	echo gcs >g
	expect_rc 0 env SPOTRUN_GCS_HMAC_ACCESS_ID=GOOGTS7C7FUP3AIRVJTE2BCD SPOTRUN_GCS_HMAC_SECRET=bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ \
		"$TOOL" -e "$MOTO" -v gs://bkt/g put k g
	assert_contains "$ERR" "region auto"
	assert_not_contains "$ERR" "bGoa+V7g" "stderr"
	expect_rc 0 env GS_ACCESS_KEY_ID=GOOG1 GS_SECRET_ACCESS_KEY=x "$TOOL" -e "$MOTO" gs://bkt/g get k
	assert_eq "$OUT" gcs
	expect_rc 78 xt gs://bkt/g get k
	assert_contains "$ERR" "no GCS credentials found"
}

t_gs_with_metadata_bearer_token() {
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	echo '{"access_token": "ya29.stub-access-token"}' >tok.json
	python3 "$STUB" gce tok.json "$T/gce.log" >stub.out 2>&1 &
	pid=$!
	wait_for "grep -q '^port ' stub.out" 10 || fail "stub did not start"
	port=$(sed -n 's/^port //p' stub.out)
	head -c 6000000 /dev/urandom >obj
	expect_rc 0 env GCE_METADATA_HOST=127.0.0.1:$port "$TOOL" -e "$MOTO" -v gs://bkt/gb upload obj <obj
	assert_contains "$ERR" "GCE metadata token"
	assert_not_contains "$ERR" "ya29.stub" "stderr"
	expect_rc 0 env GCE_METADATA_HOST=127.0.0.1:$port "$TOOL" -e "$MOTO" gs://bkt/gb get obj
	kill $pid
	cmp "$T/out" obj || fail "gs object differs"
	assert_contains "$(cat "$T/gce.log")" "GET /computeMetadata/v1/instance/service-accounts/default/token 200"
}

# fault_stub STATUS CODE [FAIL_FIRST]: a fake S3 endpoint; sets $FAULT (URL) and $FPID
fault_stub() {
	printf '{"status": %s, "code": "%s"%s}' "$1" "$2" "${3:+, \"fail_first\": $3}" >f.json
	# a fresh output file each time: the background redirection truncates it
	# only once the child runs, after wait_for may have read the old port
	rm -f fstub.out
	python3 "$STUB" s3fault f.json "$T/fault.log" >fstub.out 2>&1 &
	FPID=$!
	wait_for "grep -q '^port ' fstub.out" 10 || fail "stub did not start"
	FAULT=http://127.0.0.1:$(sed -n 's/^port //p' fstub.out)
}

t_retry_policy_5xx_slowdown_4xx() {
	fault_stub 503 SlowDown
	expect_rc 69 "$TOOL" -e "$FAULT" s3://b/x get k
	assert_contains "$ERR" "SlowDown"
	assert_contains "$ERR" "after 5 tries"
	assert_eq "$(wc -l <"$T/fault.log")" 5 "requests for a 503"
	kill $FPID; : >"$T/fault.log"
	fault_stub 400 InvalidArgument
	expect_rc 76 "$TOOL" -e "$FAULT" s3://b/x get k
	assert_contains "$ERR" "InvalidArgument"
	assert_eq "$(wc -l <"$T/fault.log")" 1 "requests for a 400"
	kill $FPID; : >"$T/fault.log"
	fault_stub 403 AccessDenied
	expect_rc 77 "$TOOL" -e "$FAULT" s3://b/x put k /dev/null
	assert_contains "$ERR" "AccessDenied"
	assert_eq "$(wc -l <"$T/fault.log")" 1 "requests for a 403"
	kill $FPID; : >"$T/fault.log"
	fault_stub 400 RequestTimeout 2
	expect_rc 0 "$TOOL" -e "$FAULT" s3://b/x get k
	assert_eq "$OUT" ok
	assert_eq "$(wc -l <"$T/fault.log")" 3 "requests until the answer"
	kill $FPID
}

t_bad_urls_are_usage_errors() {
	expect_rc 64 xt s3:// list
	expect_rc 64 "$TOOL" -e "not a url" s3://bkt list
}

run_tests
