#!/bin/bash
# tests/run.sh - the test command: install what the tests need, build lexfs three
# times (normal, in the source tree; ASan+UBSan, in build-asan/; without the cloud
# drivers, in build-min/), run the C unit tests and the whole pytest suite against
# the first two, and fail if anything failed.
#
# Run it as root on Debian 12 (apt-get installs the packages; FUSE mounts need
# /dev/fuse). Without root it installs nothing and stops if a package is missing.
set -uo pipefail

# Every Debian package the build and the tests need. Areas that need more (a test
# server, a client library) add their packages here, in this one list.
TEST_PACKAGES=(
	build-essential autoconf automake pkg-config
	libfuse3-dev libcurl4-openssl-dev libssl-dev libxml2-dev libjansson-dev libconfig-dev
	fuse3 attr rsync curl tar coreutils procps util-linux
	python3 python3-pytest python3-botocore python3-boto3 python3-azure python3-cryptography
	logrotate systemd
	python3-crcmod
	radosgw ceph-mon ceph-osd
)

cd "$(dirname "$0")/.." || exit 1
SRC=$PWD
JOBS=$(nproc 2>/dev/null || echo 2)

step() { printf '\n=== %s\n' "$*"; }
die() { printf 'tests/run.sh: %s\n' "$*" >&2; exit 1; }

install_packages() {
	local missing=()
	local p
	for p in "${TEST_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		die "missing Debian packages (run as root to install them): ${missing[*]}"
	fi
	step "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q || die "apt-get update failed"
	apt-get install -y -q --no-install-recommends "${missing[@]}" ||
		die "apt-get install failed"
}

# automake refuses a build directory beside a configured source tree (and make
# would pick up the tree's objects), so the source tree is cleaned, the sanitizer
# build made first, and the normal in-tree build last.
build_all() {
	step "autoreconf"
	autoreconf -fi || die "autoreconf failed"
	if [ -f "$SRC/config.status" ]; then
		make -s distclean >/dev/null 2>&1 || rm -f "$SRC/config.status"
	fi
	rm -rf "$SRC/build-asan" "$SRC/build-min"
	mkdir -p "$SRC/build-asan" "$SRC/build-min"
	step "build with ASan+UBSan in build-asan/"
	(cd "$SRC/build-asan" && ../configure -q --enable-werror --enable-sanitize &&
		make -s -j"$JOBS" && make -s -j"$JOBS" check) || die "sanitizer build failed"
	# The cloud drivers left out: what a user of such a build is told is tested
	# (tests/test_cli_errors.py, LEXFS_MIN_BUILD).
	step "build without the cloud drivers in build-min/"
	(cd "$SRC/build-min" &&
		../configure -q --enable-werror --disable-s3 --disable-azure --disable-gcs &&
		make -s -j"$JOBS" lexfs tests/unit/source_test && tests/unit/source_test) ||
		die "build without the cloud drivers failed"
	step "normal build"
	(./configure -q --enable-werror && make -s -j"$JOBS" && make -s -j"$JOBS" check) ||
		die "build failed"
}

# Azurite (the Azure Storage emulator) comes from npm, into the build area
# tests/.node (git-ignored); tests/servers/azurite.py starts it.
install_azurite() {
	[ -x "$SRC/tests/.node/node_modules/.bin/azurite-blob" ] && return 0
	# The machine's own Node.js and npm when it has them (a Debian nodejs would
	# replace a newer node under its npm); Debian's otherwise.
	if ! command -v npm >/dev/null; then
		[ "$(id -u)" -eq 0 ] || die "npm is missing (Debian: apt-get install nodejs npm)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm ||
			die "apt-get install nodejs npm failed"
	fi
	step "npm install azurite@3 into tests/.node"
	npm install --prefix "$SRC/tests/.node" --no-audit --no-fund azurite@3 ||
		die "npm install azurite failed"
}

run_pytest() {
	local build=$1 rc
	step "pytest with LEXFS_BUILD=$build"
	LEXFS_BUILD=$build LEXFS_MIN_BUILD=$SRC/build-min \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/
	rc=$?
	if [ $rc -eq 5 ]; then
		echo "tests/run.sh: pytest collected no tests: that is a failure" >&2
		rc=1
	fi
	return $rc
}

install_packages
install_azurite
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ -e /dev/fuse ] || die "/dev/fuse is missing: FUSE is not available here"
build_all

start=$(date +%s)
fail=0
run_pytest "$SRC" || fail=1
run_pytest "$SRC/build-asan" || fail=1
step "done in $(( $(date +%s) - start ))s: $([ $fail -eq 0 ] && echo PASSED || echo FAILED)"
exit $fail
