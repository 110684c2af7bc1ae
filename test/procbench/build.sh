#!/usr/bin/env bash
# Build the gateway binary of each git revision REV into
# .tools/bench/<commit>/spiffe-entra-gateway, once per commit (a build that
# is there is reused), and print one path a line, in the order given. The
# revision's tree is taken with git archive into a temporary directory, so
# the work tree is left alone. "." is the work tree as it is, uncommitted
# changes included, built again every time into .tools/bench/worktree/.
#
# With BACKPORT_PROFILING=1, a revision whose `serve --dev` has no
# --profiling yet (it came in 1d25887) gets that commit's change to
# cmd/spiffe-entra-gateway/serve.go and pkg/gateway/dev.go, a flag that is off
# unless given and only sets health.profiling, so that its token path can be
# profiled too; it goes into .tools/bench/<commit>+profiling/.
#
#   test/procbench/build.sh e9f65bc^ HEAD
set -euo pipefail
profiling_commit=1d25887
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
[ $# -gt 0 ] || { echo "usage: test/procbench/build.sh REV..." >&2; exit 2; }

for rev in "$@"; do
	if [ "$rev" = . ]; then
		out=$root/.tools/bench/worktree
		mkdir -p "$out"
		echo "building the work tree into $out" >&2
		CGO_ENABLED=0 go build -trimpath -o "$out/spiffe-entra-gateway" ./cmd/spiffe-entra-gateway >&2
		echo "$out/spiffe-entra-gateway"
		continue
	fi
	commit=$(git rev-parse --verify --quiet "$rev^{commit}") || { echo "build.sh: no commit $rev" >&2; exit 2; }
	out=$root/.tools/bench/$commit
	backport=
	if [ "${BACKPORT_PROFILING:-}" = 1 ] && ! git merge-base --is-ancestor "$profiling_commit" "$commit"; then
		backport=1
		out=$out+profiling
	fi
	if [ ! -x "$out/spiffe-entra-gateway" ]; then
		src=$(mktemp -d)
		trap 'rm -rf "$src"' EXIT
		git archive "$commit" | tar -x -C "$src"
		if [ -n "$backport" ]; then
			echo "adding serve --dev --profiling ($profiling_commit) to $rev" >&2
			git diff "$profiling_commit^" "$profiling_commit" -- cmd/spiffe-entra-gateway/serve.go pkg/gateway/dev.go |
				(cd "$src" && git apply -) || { echo "build.sh: $profiling_commit's --profiling does not apply to $rev" >&2; exit 1; }
		fi
		echo "building $rev ($commit) into $out" >&2
		mkdir -p "$out"
		(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$out/spiffe-entra-gateway.partial" ./cmd/spiffe-entra-gateway) >&2
		mv "$out/spiffe-entra-gateway.partial" "$out/spiffe-entra-gateway"
		{ git log -1 --format='%H %s' "$commit"; [ -z "$backport" ] || echo "with $profiling_commit's serve --dev --profiling"; } >"$out/commit"
		rm -rf "$src"
		trap - EXIT
	fi
	echo "$out/spiffe-entra-gateway"
done
