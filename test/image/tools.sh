#!/usr/bin/env bash
# Debian's umoci, runc and skopeo, pinned, unpacked once under .tools/ (no
# daemon, nothing installed into the system), for test/image: umoci unpacks
# the OCI image layout make image wrote into a runtime bundle, runc runs it,
# skopeo reads the docker-load tarball. Prints the export lines the test
# reads. runc links libseccomp2, which Debian's base system has; skopeo
# links libgpgme11, unpacked beside it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

# unpack NAME PACKAGE=VERSION...: the packages' files under .tools/NAME.
unpack() {
	local dir=$root/.tools/$1
	shift
	if [ ! -d "$dir/usr" ]; then
		echo "unpacking Debian's $* into $dir" >&2
		local tmp deb
		tmp=$(mktemp -d)
		(cd "$tmp" && apt-get download -q "$@" >&2) ||
			{ apt-get update -qq >&2 && (cd "$tmp" && apt-get download -q "$@" >&2); }
		rm -rf "$dir.part" && mkdir -p "$dir.part"
		for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$dir.part"; done
		rm -rf "$tmp" "$dir" && mv "$dir.part" "$dir"
	fi
	echo "$dir"
}

runc=$(unpack runc-1.1.5+ds1-1+deb12u1 runc=1.1.5+ds1-1+deb12u1)
umoci=$(unpack umoci-0.4.7+ds-3+b7 umoci=0.4.7+ds-3+b7)
skopeo=$(unpack skopeo-1.9.3+ds1-1+b10 skopeo=1.9.3+ds1-1+b10 libgpgme11=1.18.0-3+deb12u1)
cat >"$skopeo/skopeo" <<SH
#!/bin/sh
LD_LIBRARY_PATH='$skopeo/usr/lib/x86_64-linux-gnu:$skopeo/usr/lib/aarch64-linux-gnu' exec '$skopeo/usr/bin/skopeo' "\$@"
SH
chmod +x "$skopeo/skopeo"
echo "export GATEWAY_TEST_RUNC='$runc/usr/sbin/runc'"
echo "export GATEWAY_TEST_UMOCI='$umoci/usr/bin/umoci'"
echo "export GATEWAY_TEST_SKOPEO='$skopeo/skopeo'"
