#!/usr/bin/env bash
# Installs the Python Azure clients and az that make e2e runs, from Debian's archive at the
# versions Debian bookworm ships (azure-identity 1.13.0b2 inside python3-azure,
# MSAL 1.21, azure-cli 2.45), and does nothing when they are already there.
# Needs root (apt-get) only when something is missing.
set -euo pipefail

pins=(
	python3-msal=1.21.0-1
	python3-azure=20230112+git-1
	azure-cli=2.45.0-1
)

missing=()
for pin in "${pins[@]}"; do
	pkg=${pin%%=*} want=${pin#*=}
	have=$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null || true)
	[ "$have" = "install ok installed $want" ] || missing+=("$pin")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "test/python/install.sh: root is needed to install ${missing[*]} with apt-get" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >&2 || {
	apt-get update >&2
	apt-get install -y --no-install-recommends "${missing[@]}" >&2
}
