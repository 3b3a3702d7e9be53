#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL cluster for the store tests.
#
#   pg.sh start DIR   initdb a cluster in DIR (created), start it listening on
#                     a Unix socket in DIR only (no TCP port), create database
#                     "artemis", and print its DSN on stdout
#   pg.sh stop DIR    stop the cluster and remove DIR
#
# Typical use (what .ci/run does):
#   PGDIR=$(mktemp -d)
#   export ARTEMIS_TEST_POSTGRES=$(bash store/testdata/pg.sh start "$PGDIR")
#   trap 'bash store/testdata/pg.sh stop "$PGDIR"' EXIT
#
# As root the cluster runs as the "postgres" user (PostgreSQL refuses root).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

bindir=""
for d in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
	if [ -n "$d" ] && [ -x "$d/pg_ctl" ]; then bindir=$d; fi
done
[ -n "$bindir" ] || { echo "pg.sh: PostgreSQL server binaries (pg_ctl, initdb) not found; apt-get install postgresql" >&2; exit 1; }

as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

case $cmd in
start)
	mkdir -p "$dir"
	chmod 755 "$dir"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir"
	port=$(( 20000 + RANDOM % 20000 ))
	as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
		|| { cat "$dir/initdb.log" >&2; exit 1; }
	as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses='' -k $dir -p $port -c fsync=on -c max_connections=200" start >/dev/null \
		|| { cat "$dir/server.log" >&2; exit 1; }
	as_pg "$bindir/createdb" -h "$dir" -p "$port" -U postgres artemis
	echo "postgres://postgres@/artemis?host=$dir&port=$port&sslmode=disable"
	;;
stop)
	if [ -d "$dir/data" ]; then
		as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	;;
*)
	echo "usage: $0 start|stop DIR" >&2; exit 2
	;;
esac
