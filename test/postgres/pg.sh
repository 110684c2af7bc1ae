#!/usr/bin/env bash
# A private PostgreSQL cluster for the test suites, on a loopback port.
#
#   test/postgres/pg.sh start    initialise (once) and start it; prints the
#                                export lines the suites read
#   test/postgres/pg.sh restart  restart it (the fault tests call this)
#   test/postgres/pg.sh stop     stop it
#
# PostgreSQL comes from Debian's packages, installed when missing. The
# cluster lives in $PG_DIR (default .tools/postgres), listens on 127.0.0.1
# only and requires a password.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${PG_DIR:-$root/.tools/postgres}
data=$dir/data
port_file=$dir/port

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

as_owner() {
	# PostgreSQL refuses to run as root: run it as the postgres user then.
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install() {
	[ -n "$(bindir)" ] && return
	echo "installing PostgreSQL from Debian's packages" >&2
	local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
		node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

pg_ctl_() { as_owner "$(bindir)/pg_ctl" -D "$data" -l "$dir/log" -w -t 60 "$@" >&2; }

case "${1:-}" in
start)
	install
	mkdir -p "$dir"
	if [ ! -f "$data/PG_VERSION" ]; then
		[ "$(id -u)" = 0 ] && chown postgres "$dir"
		openssl rand -hex 16 >"$dir/password" 2>/dev/null || od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$dir/password"
		chmod 644 "$dir/password"
		as_owner "$(bindir)/initdb" -D "$data" -U gateway --pwfile="$dir/password" --auth=scram-sha-256 -E UTF8 >/dev/null
		free_port >"$port_file"
		cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $(cat "$port_file")
unix_socket_directories = '$data'
max_connections = 200
fsync = off
CONF
	fi
	as_owner "$(bindir)/pg_ctl" -D "$data" status >/dev/null 2>&1 || pg_ctl_ start
	echo "export GATEWAY_TEST_POSTGRES_DSN='postgres://gateway:$(cat "$dir/password")@127.0.0.1:$(cat "$port_file")/postgres?sslmode=disable'"
	echo "export GATEWAY_TEST_POSTGRES_CTL='$root/test/postgres/pg.sh'"
	;;
restart) pg_ctl_ restart -m fast ;;
stop) as_owner "$(bindir)/pg_ctl" -D "$data" status >/dev/null 2>&1 && pg_ctl_ stop -m fast || true ;;
*) echo "usage: $0 start|restart|stop" >&2; exit 2 ;;
esac
