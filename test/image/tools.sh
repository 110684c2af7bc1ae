#!/usr/bin/env bash
# Debian's umoci and runc, pinned, unpacked once under .tools/ (no daemon,
# nothing installed into the system), for test/image: umoci unpacks the OCI
# image layout make image wrote into a runtime bundle, runc runs it. Prints
# the export lines the test reads. runc links libseccomp2, which Debian's
# base system has.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

# unpack PACKAGE VERSION: the package's files under .tools/PACKAGE-VERSION.
unpack() {
	local dir=$root/.tools/$1-$2
	if [ ! -d "$dir/usr" ]; then
		echo "unpacking Debian's $1 $2 into $dir" >&2
		local tmp
		tmp=$(mktemp -d)
		(cd "$tmp" && apt-get download -q "$1=$2" >&2) ||
			{ apt-get update -qq >&2 && (cd "$tmp" && apt-get download -q "$1=$2" >&2); }
		rm -rf "$dir.part" && mkdir -p "$dir.part"
		dpkg-deb -x "$tmp"/"$1"_*.deb "$dir.part"
		rm -rf "$tmp" "$dir" && mv "$dir.part" "$dir"
	fi
	echo "$dir"
}

echo "export GATEWAY_TEST_RUNC='$(unpack runc 1.1.5+ds1-1+deb12u1)/usr/sbin/runc'"
echo "export GATEWAY_TEST_UMOCI='$(unpack umoci 0.4.7+ds-3+b7)/usr/bin/umoci'"
