#!/usr/bin/env bash
# Build a pinned kube-apiserver and kube-controller-manager into $K8S_DIR/bin
# (default .tools/kubernetes-v1.36.3/bin), once, and install Debian's
# etcd-server if etcd is missing. Prints the bin directory. A cold build takes
# about ten minutes on two cores; an existing pair is reused as is.
# `build.sh etcd` only installs etcd: test/e2e/run.sh does that first, so that
# the build it then runs in the background never holds apt's lock while
# another step installs packages.
#
# k8s.io/kubernetes is built through a scratch module: its go.mod replaces the
# k8s.io/* staging modules with ./staging directories, which a module
# dependency cannot follow, so the scratch module replaces each with the
# published v0.x release of the same Kubernetes version.
set -euo pipefail
version=v1.36.3
staging=v0${version#v1}
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${K8S_DIR:-$root/.tools/kubernetes-$version}
bin=$dir/bin
tools=(kube-apiserver kube-controller-manager)

if ! command -v etcd >/dev/null; then
	echo "installing Debian's etcd-server" >&2
	sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >&2
fi
[ "${1:-}" = etcd ] && exit 0

have_all() { for t in "${tools[@]}"; do [ -x "$bin/$t" ] || return 1; done; }
if have_all; then echo "$bin"; exit 0; fi

mkdir -p "$dir/mod" "$bin"
cd "$dir/mod"
export GOFLAGS=-mod=mod
cat >go.mod <<MOD
module kubebuild

go 1.26

require k8s.io/kubernetes $version
MOD
go mod download -json "k8s.io/kubernetes@$version" >/dev/null
k8smod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$version.mod
for m in $(awk '$2 == "=>" && $3 ~ /^\.\/staging/ {print $1}' "$k8smod"); do
	go mod edit -replace="$m=$m@$staging"
done
cat >tools.go <<'SRC'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
SRC
echo "building kube-apiserver and kube-controller-manager $version into $bin (a cold build takes about ten minutes)" >&2
go mod tidy >&2
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1"
ldflags="$ldflags -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)"
go build -trimpath -ldflags="$ldflags" -o "$bin/" \
	k8s.io/kubernetes/cmd/kube-apiserver \
	k8s.io/kubernetes/cmd/kube-controller-manager >&2
have_all
echo "$bin"
