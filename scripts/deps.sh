#!/usr/bin/env bash
# Installs the Debian 12 packages kendali needs to build, run and test, when
# they are missing.  Fast no-op when everything is there.
#
#   scripts/deps.sh             build, database and test packages
#   scripts/deps.sh --browser   also Chromium and Node.js with npm, which the
#                               browser tests (tests/browser) drive the pages with
#
# Installing needs root; as another user it only checks, and says what to install.
set -euo pipefail

browser=0
for arg in "$@"; do
	case "$arg" in
	--browser) browser=1 ;;
	-h | --help)
		sed -n '2,10s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*)
		echo "deps.sh: unknown argument: $arg (try --help)" >&2
		exit 2
		;;
	esac
done

packages=(
	# build
	meson ninja-build pkg-config gcc libc6-dev
	libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libjansson-dev libpq-dev libssl-dev
	libsystemd-dev
	# the database (server binaries in /usr/lib/postgresql/<version>/bin)
	postgresql
	# tests
	python3 python3-pytest python3-websockets python3-psycopg2 openssl
	# the clock tests run the server at a chosen time (LD_PRELOAD)
	libfaketime
	# fuzzing (tests/fuzz/run.sh): clang, its libFuzzer and sanitizer
	# runtimes (named after Debian 12's clang 14), and llvm-symbolizer, so
	# that reports name files and lines; gcc's sanitizer runtimes, for the
	# sanitized build, come with gcc
	clang libclang-rt-14-dev llvm
	# the Debian package (debian/, tests/integration/test_package.py):
	# dpkg-buildpackage with debhelper, systemd-analyze to verify its
	# units, pg_dump and pg_restore of its backup script
	debhelper dpkg-dev systemd postgresql-client
)
if ((browser)); then
	# Browser tests run headless Chromium from Node.js.
	packages+=(chromium fonts-liberation nodejs npm)
fi

installed() {
	local status
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	[[ $status == "install ok installed" ]]
}

missing=()
for p in "${packages[@]}"; do
	if installed "$p"; then
		continue
	fi
	# Node.js may come from elsewhere than Debian (and some builds ship npm
	# inside the nodejs package): the commands are what counts.
	if [[ $p == nodejs ]] && command -v node >/dev/null 2>&1; then
		continue
	fi
	if [[ $p == npm ]] && command -v npm >/dev/null 2>&1; then
		continue
	fi
	missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	echo "deps: all ${#packages[@]} packages installed"
	exit 0
fi

if ((EUID != 0)); then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: install them as root:  sudo apt-get install ${missing[*]}" >&2
	echo "deps: (or run: sudo scripts/deps.sh$( ((browser)) && echo ' --browser'))" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
echo "deps: done"
