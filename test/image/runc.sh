#!/usr/bin/env bash
# Prints the path of Debian's runc, pinned, unpacked once under .tools/ (no
# daemon, no installation into the system): test/image runs the gateway's
# image with it. runc links libseccomp2, which Debian's base system has.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=1.1.5+ds1-1+deb12u1
dir=$root/.tools/runc-$version
if [ ! -x "$dir/usr/sbin/runc" ]; then
	echo "unpacking Debian's runc $version into $dir" >&2
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt-get download -q "runc=$version" >&2) || {
		apt-get update -qq >&2 && (cd "$tmp" && apt-get download -q "runc=$version" >&2)
	}
	mkdir -p "$dir.part"
	dpkg-deb -x "$tmp"/runc_*.deb "$dir.part"
	rm -rf "$dir" && mv "$dir.part" "$dir"
fi
echo "$dir/usr/sbin/runc"
