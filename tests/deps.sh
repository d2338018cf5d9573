#!/bin/sh
# Installs what spotrun's build, demo and test suite need on Debian 12, as root.
# Idempotent and quick: it asks dpkg (or the tool itself) first and calls
# apt-get only for what is missing; npm packages go into ./node_modules.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
updated=""

# apt_need PKG...: installs the packages dpkg does not report as installed
apt_need() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
	done
	[ -n "$missing" ] || return 0
	echo "deps: installing$missing"
	[ -n "$updated" ] || { $SUDO apt-get update -qq; updated=1; }
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# the build and the demo
apt_need gcc make pkg-config libcurl4-openssl-dev libssl-dev libarchive-dev libzstd-dev \
	liburing-dev libjansson-dev libexpat1-dev zstd tar python3 procps time curl util-linux

# Slurm (tests/integration/slurm.sh): Debian's daemons and clients, one node
# on localhost started by the test itself; the packages' own services are not
# used (no systemd here), so a failed postinst start is harmless.
apt_need slurmctld slurmd slurm-client

# moto's S3 server, boto3 and the AWS CLI (the independent S3 client): this
# kind of machine's python3 ships them; Debian 12 packages boto3 and the CLI,
# not moto (and pip has no network here), so a missing moto is reported
python3 -c 'import boto3' 2>/dev/null || apt_need python3-boto3
command -v aws >/dev/null 2>&1 || apt_need awscli
python3 -c 'import moto' 2>/dev/null ||
	echo "deps: warning: python3 has no moto; the S3 integration tests will fail" >&2

# groff (tests/cli/docs.sh renders docs/spotrun.1 with man, else groff)
command -v man >/dev/null 2>&1 || command -v groff >/dev/null 2>&1 || apt_need groff-base

# npm: Azurite (tests/integration/azure.sh) and s3rver (make bench), the
# versions pinned in package.json, into ./node_modules (skipped when present)
if [ ! -x "$top/node_modules/.bin/azurite-blob" ] || [ ! -x "$top/node_modules/.bin/s3rver" ]; then
	command -v npm >/dev/null 2>&1 || apt_need nodejs npm
	echo "deps: installing azurite and s3rver (npm, ~1 min)"
	(cd "$top" && npm install --no-audit --no-fund >/dev/null 2>&1) ||
		echo "deps: warning: npm install failed; the Azure tests will try again" >&2
fi
