#!/bin/sh
# migrate.sh - `spotrun migrate` against real servers: a file store to S3
# (moto), S3 to S3 on one moto (two buckets: the server-side copy path),
# S3 to Azure Blob (Azurite), and a migration killed with SIGKILL half-way
# then resumed.  After each, `spotrun verify` and `pull` at the destination
# and the AWS CLI (or curl) read what spotrun wrote.  Objects stay small
# (moto reads the whole object for every ranged GET).
. "$(dirname "$0")/../lib.sh"

AZSIGN=$SPOTRUN_TOP/tests/fixtures/azure-sharedkey/azsign.py
AZURITE=$SPOTRUN_TOP/node_modules/.bin/azurite-blob
DEVKEY=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==
SHARED=$(mktemp -d "${TMPDIR:-/tmp}/sr-mig.XXXXXX")
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 \
	AWS_PAGER="" SPOTRUN_RETRY_BASE_MS=20
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_REGION \
	AZURE_STORAGE_SAS_TOKEN AZURE_STORAGE_CONNECTION_STRING 2>/dev/null || true

cleanup() {
	for p in "$SHARED"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
	rm -rf "$SHARED"
}
trap cleanup EXIT INT TERM

python3 -m moto.server -H 127.0.0.1 -p 0 >"$SHARED/moto.log" 2>&1 &
echo $! >"$SHARED/moto.pid"
if [ -x "$AZURITE" ]; then
	(cd "$SHARED" && exec "$AZURITE" --blobHost 127.0.0.1 --blobPort 0 --inMemoryPersistence \
		--disableTelemetry --skipApiVersionCheck) >"$SHARED/azurite.log" 2>&1 &
	echo $! >"$SHARED/azurite.pid"
fi
wait_for "grep -q 'Running on http://127.0.0.1:' '$SHARED/moto.log'" 20 ||
	{ echo "FAIL $SUITE/setup: moto did not start"; exit 1; }
MOTO=http://127.0.0.1:$(sed -n 's|.*Running on http://127.0.0.1:\([0-9]*\).*|\1|p' "$SHARED/moto.log" | head -1)
wait_for "curl -sf -o /dev/null $MOTO/moto-api/" 20 || { echo "FAIL $SUITE/setup: moto not ready"; exit 1; }
export AWS_ENDPOINT_URL=$MOTO
# s3curl ARGS: curl signing with SigV4 (an independent client; quicker than
# starting the AWS CLI on two busy cores)
s3curl() { curl -sf --aws-sigv4 aws:amz:us-east-1:s3 -u testing:testing "$@"; }
for b in mig-a mig-b mig-c mig-d; do
	s3curl -X PUT -o /dev/null "$MOTO/$b" || { echo "FAIL $SUITE/setup: cannot create bucket $b"; exit 1; }
done
AZ_EP=
if [ -x "$AZURITE" ] && wait_for "grep -q 'listens on http://127.0.0.1:' '$SHARED/azurite.log'" 30; then
	AZ_EP=$(sed -n 's|.*listens on \(http://127.0.0.1:[0-9]*\).*|\1|p' "$SHARED/azurite.log" | head -1)/devstoreaccount1
	AZURE_STORAGE_ACCOUNT=devstoreaccount1 AZURE_STORAGE_KEY=$DEVKEY python3 "$AZSIGN" mkcontainer "$AZ_EP" mig \
		>/dev/null || AZ_EP=
fi

# mkjob JOB N MB [LAST_MB]: N checkpoints of MB megabytes (random) in
# file://$T/st, the last one LAST_MB
mkjob() {
	i=1
	while [ $i -le "$2" ]; do
		mkdir -p "src/step-$i"
		mb=$3; [ $i -eq "$2" ] && mb=${4:-$3}
		head -c $((mb * 1000000)) /dev/urandom >"src/step-$i/w.bin"
		echo "$i" >"src/step-$i/meta.txt"
		expect_rc 0 "$SR" push "src/step-$i" --job "$1" --store "file://$T/st"
		i=$((i + 1))
	done
}

t_file_to_s3_then_s3_to_s3() {
	mkjob j 2 9
	expect_rc 0 "$SR" migrate --job j --store "file://$T/st" --to s3://mig-a/p
	assert_contains "$OUT" "2 checkpoints copied"
	expect_rc 0 "$SR" verify --job j --store s3://mig-a/p
	expect_rc 0 "$SR" pull back --job j --store s3://mig-a/p
	cmp back/w.bin src/step-2/w.bin
	# the AWS CLI reads what spotrun wrote: the archive restores without spotrun
	aws s3 cp --only-show-errors s3://mig-a/p/j/ckpt/00000001/data.tar.zst - | zstd -dc | tar -xf - -C .
	cmp step-1/w.bin src/step-1/w.bin
	s3curl -o job.json "$MOTO/mig-a/p/j/job.json"
	python3 -c "import json; m=json.load(open('job.json'))['migrations']; assert len(m)==1 and m[0]['copied']==2 and m[0]['from'].startswith('file://'), m"
	# same service, same endpoint: copied inside the service (CopyObject)
	expect_rc 0 "$SR" migrate --job j --store s3://mig-a/p --to s3://mig-b/q -v
	assert_contains "$ERR" "copied inside the service"
	assert_contains "$OUT" "2 checkpoints copied"
	expect_rc 0 "$SR" verify --job j --store s3://mig-b/q
	s3curl -o job2.json "$MOTO/mig-b/q/j/job.json"
	python3 -c "
import json; m=json.load(open('job2.json'))['migrations']
assert len(m)==2 and m[1]['server_side_bytes']>17000000 and m[1]['verified_bytes']>=m[1]['bytes'], m"
	s3curl -o job1.json "$MOTO/mig-a/p/j/job.json"
	python3 -c "import json; m=json.load(open('job1.json'))['migrations']; assert len(m)==2, m"
}

t_interrupted_migration_resumes() {
	mkjob k 3 3 30
	"$SR" migrate --job k --store "file://$T/st" --to s3://mig-c/p >mig.out 2>mig.err &
	pid=$!
	wait_for "s3curl -o /dev/null $MOTO/mig-c/p/k/ckpt/00000001/manifest.json" 30 || fail "seq 1 never committed"
	kill -9 $pid
	set +e; wait $pid; rc=$?; set -e
	assert_eq "$rc" 137 "the first migrate (killed)"
	expect_rc 0 "$SR" migrate --job k --store "file://$T/st" --to s3://mig-c/p
	assert_contains "$ERR" "seq 1 is already at the destination"
	assert_contains "$OUT" "already there"
	expect_rc 0 "$SR" verify --job k --store s3://mig-c/p --step 3
	expect_rc 0 "$SR" verify --job k --store s3://mig-c/p --step 1
	n=$(s3curl "$MOTO/mig-c?list-type=2&prefix=p/k/ckpt/" | grep -o 'manifest.json</Key>' | wc -l)
	assert_eq "$n" 3 "manifests at the destination"
}

t_s3_to_azure() {
	[ -n "$AZ_EP" ] || { echo "azurite not available: skipped"; return 0; }
	mkjob m 1 6
	expect_rc 0 "$SR" migrate --job m --store "file://$T/st" --to s3://mig-d/p
	export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$DEVKEY;BlobEndpoint=$AZ_EP;"
	expect_rc 0 "$SR" migrate --job m --store s3://mig-d/p --to az://devstoreaccount1/mig/p
	assert_contains "$OUT" "1 checkpoints copied"
	expect_rc 0 "$SR" verify --job m --store az://devstoreaccount1/mig/p
	expect_rc 0 "$SR" pull back --job m --store az://devstoreaccount1/mig/p
	cmp back/w.bin src/step-1/w.bin
}

run_tests
