#!/bin/sh
# Installs what spotrun's build, demo and test suite need on Debian 12, as root.
# Idempotent and quick: it asks dpkg first and calls apt-get only for what is
# missing.  npm packages (later: azurite, s3rver) go into ./node_modules.
set -eu
PKGS="gcc make pkg-config libcurl4-openssl-dev libssl-dev libarchive-dev libzstd-dev
liburing-dev libjansson-dev libexpat1-dev zstd tar python3 procps time curl"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# npm: Azurite (tests/integration/azure.sh) and s3rver (make bench), the
# versions pinned in package.json, into ./node_modules (skipped when present)
top=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$top/node_modules/.bin/azurite-blob" ] || [ ! -x "$top/node_modules/.bin/s3rver" ]; then
	if command -v npm >/dev/null 2>&1; then
		echo "deps: installing azurite and s3rver (npm, ~1 min)"
		(cd "$top" && npm install --no-audit --no-fund >/dev/null 2>&1) ||
			echo "deps: warning: npm install failed; the Azure tests will try again" >&2
	else
		echo "deps: warning: npm not found; the Azure tests need it" >&2
	fi
fi

# Slurm (tests/integration/slurm.sh): Debian's daemons and clients, one node
# on localhost started by the test itself; the packages' own services are not
# used (no systemd here), so a failed postinst start is harmless.
SLURM_PKGS="slurmctld slurmd slurm-client"
missing=""
for p in $SLURM_PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# groff (tests/cli/docs.sh renders docs/spotrun.1 with man, else groff)
command -v man >/dev/null 2>&1 || command -v groff >/dev/null 2>&1 ||
	{ SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"; $SUDO apt-get update -qq &&
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends groff-base >/dev/null; }
