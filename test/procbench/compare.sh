#!/usr/bin/env bash
# Measure two revisions of the gateway side by side in one run: build each
# (build.sh, cached under .tools/bench/), then run BenchmarkTokenProcesses
# and BenchmarkDiscoveryProviders with both builds loaded as servers of
# their own (server=gateway-before, server=gateway-after) beside the
# signing-only process, the bare handler and SPIRE's provider, in turn,
# and take a CPU profile of each build under load. `make bench-compare
# BEFORE=REV [AFTER=REV]` calls it.
#
#   test/procbench/compare.sh BEFORE [AFTER]     AFTER defaults to HEAD; "." is the work tree
#
# Results go to .tools/bench/results/<UTC time>/ (printed): tokens.txt and
# discovery.txt (go test's output, for benchstat), NAME.pprof (grant or
# document, then before or after) and top.txt (each profile's first
# entries). Settings, from the environment:
#   BENCHES              tokens and/or discovery (default both)
#   TOKENS_BENCH         -bench of the token run (default TokenProcesses)
#   TOKENS_BENCHTIME     default 1500x
#   DISCOVERY_BENCH      default 'DiscoveryProviders/.*/^http$/' (the plain HTTP rows)
#   DISCOVERY_BENCHTIME  default 20000x
#   COUNT                go test -count (default 1)
#   SPIRE=no             no SPIRE provider (else $GATEWAY_TEST_SPIRE_BIN, or test/spire/build.sh)
#   BENCH_PROFILE_CONNS  the connection count profiled (default 16 for tokens, 64 for discovery)
#   BENCH_PROFILE_SECONDS each profile's length (default 10)
#   BENCH_PROFILE_DIR=none  no profiles
#   BACKPORT_PROFILING=1 give a revision from before serve --dev --profiling that flag (build.sh),
#                        so that its token path is profiled too
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
before=${1:?usage: test/procbench/compare.sh BEFORE [AFTER]}
after=${2:-HEAD}

mapfile -t bins < <(test/procbench/build.sh "$before" "$after")
out=$root/.tools/bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
echo "results go to $out" >&2
{
	for i in 0 1; do
		rev=$([ $i = 0 ] && echo "$before" || echo "$after")
		label=$([ $i = 0 ] && echo before || echo after)
		echo "$label: $rev = $(cat "$(dirname "${bins[$i]}")/commit" 2>/dev/null || echo 'the work tree') (${bins[$i]})"
	done
	echo "go test -count ${COUNT:-1}; $(nproc) cores"
} | tee "$out/builds.txt" >&2
export GATEWAY_BINS="before=${bins[0]},after=${bins[1]}"
if [ "${BENCH_PROFILE_DIR:-}" = none ]; then
	unset BENCH_PROFILE_DIR
else
	export BENCH_PROFILE_DIR=$out
fi

run() { # name, package, -bench, -benchtime
	echo "== $1: go test -run '^\$' -bench '$3' -benchtime $4 -count ${COUNT:-1} $2 (load average $(cut -d' ' -f1-3 /proc/loadavg))" |
		tee "$out/$1.txt" >&2
	go test -run '^$' -bench "$3" -benchtime "$4" -count "${COUNT:-1}" -timeout 0 "$2" | tee -a "$out/$1.txt"
}
for b in ${BENCHES:-tokens discovery}; do
	case $b in
	tokens) run tokens ./test/e2e/ "${TOKENS_BENCH:-TokenProcesses}" "${TOKENS_BENCHTIME:-1500x}" ;;
	discovery)
		if [ "${SPIRE:-}" = no ]; then
			unset GATEWAY_TEST_SPIRE_BIN
		else
			GATEWAY_TEST_SPIRE_BIN=${GATEWAY_TEST_SPIRE_BIN:-$(test/spire/build.sh)}
			export GATEWAY_TEST_SPIRE_BIN
		fi
		run discovery ./test/spire/ "${DISCOVERY_BENCH:-DiscoveryProviders/.*/^http$/}" "${DISCOVERY_BENCHTIME:-20000x}"
		;;
	*) echo "compare.sh: BENCHES names tokens and discovery, not $b" >&2; exit 2 ;;
	esac
done

if [ -n "${BENCH_PROFILE_DIR:-}" ]; then
	for p in "$out"/*.pprof; do
		[ -e "$p" ] || continue
		echo "== $(basename "$p" .pprof): go tool pprof -top -nodecount=15 $p"
		go tool pprof -top -nodecount=15 "$p" 2>&1
	done >"$out/top.txt"
	cat "$out/top.txt"
fi
echo "results in $out" >&2
