#!/bin/bash
# contrib/demo.sh - the first command of the README, for a fresh Debian 12 machine
# (run as root): install the build packages, build lexfs in the source tree, mount
# the local driver over ./storage at ./mnt, copy a file in, list it, print its URL
# and a presigned URL, and say how to unmount.
set -euo pipefail

DEMO_PACKAGES=(
	build-essential autoconf automake pkg-config
	libfuse3-dev libcurl4-openssl-dev libssl-dev libxml2-dev libjansson-dev libconfig-dev
	fuse3 attr
)

cd "$(dirname "$0")/.."
top=$PWD

missing=()
for p in "${DEMO_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "demo: run as root to install: ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "== building lexfs"
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure -q
make -s -j"$(nproc)"

mkdir -p "$top/storage" "$top/mnt"
if grep -qs " $top/mnt fuse" /proc/mounts; then
	fusermount3 -u "$top/mnt"
fi

# No source: lexfs mounts its embedded default, the local driver over ./storage
# (config=none: no configuration file of this machine is read).
echo "== lexfs ./mnt -o config=none   (the embedded default: the local driver over ./storage)"
./lexfs "$top/mnt" -o config=none
trap 'echo "demo: a step failed; the mount stays up: fusermount3 -u $top/mnt" >&2' ERR

echo "== cp README.md mnt/hello.md; ls -l mnt"
cp README.md "$top/mnt/hello.md"
ls -l "$top/mnt"
echo "== the object behind it: storage/hello.md"
ls -l "$top/storage/hello.md"

echo "== getfattr -n user.lexfs.url mnt/hello.md"
getfattr --absolute-names --only-values -n user.lexfs.url "$top/mnt/hello.md"; echo
echo "== getfattr -n user.lexfs.presigned_url mnt/hello.md"
url=$(getfattr --absolute-names --only-values -n user.lexfs.presigned_url "$top/mnt/hello.md")
echo "$url"
echo "== lexfs verify-url (what a web server serving ./storage would check)"
./lexfs verify-url "$url" --source "$top/storage" -o config=none

echo
echo "Mounted. To unmount:"
echo "fusermount3 -u $top/mnt"
