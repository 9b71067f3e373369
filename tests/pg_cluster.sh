#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL cluster:
#
#     bash tests/pg_cluster.sh cargo test --test it pg_schema::
#
# The cluster lives in a new temporary directory, listens only on a Unix socket in that
# directory (no TCP port to collide with anything), trusts local connections, and is stopped and
# removed when the command ends, however it ends. The command sees its address in SHEPING_TEST_PG
# (a postgresql:// URL; tests create a database of their own in it, see tests/common/pg.rs).
#
# PostgreSQL comes from Debian's `postgresql` package, installed here when missing (as root;
# tests/run.sh installs it with the other test packages). initdb refuses to run as root, so as
# root the cluster runs as the `postgres` system user that the package creates.
set -euo pipefail

if [ $# -eq 0 ]; then
    echo "usage: bash tests/pg_cluster.sh COMMAND [ARG…]" >&2
    exit 2
fi

find_bindir() {
    # The newest installed major version (Debian keeps each under /usr/lib/postgresql/N/bin).
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
        echo "$d"
    fi
}

bindir="$(find_bindir)"
if [ -z "$bindir" ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "tests/pg_cluster.sh: installing postgresql for the tests" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null
        bindir="$(find_bindir)"
    fi
fi
if [ -z "$bindir" ]; then
    echo "tests/pg_cluster.sh: PostgreSQL's initdb is not installed (Debian package postgresql; run as root to install it)" >&2
    exit 1
fi

# Short path: a Unix socket's path must stay under ~107 bytes.
dir="$(mktemp -d /tmp/sheping-pg.XXXXXX)"
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        echo "tests/pg_cluster.sh: running as root, but there is no postgres system user to run the cluster as" >&2
        rm -rf "$dir"
        exit 1
    fi
    chown postgres: "$dir"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

port=5432 # only names the socket file: the cluster listens on no TCP port
started=0
cleanup() {
    local status=$?
    if [ "$started" -eq 1 ]; then
        as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    exit "$status"
}
trap cleanup EXIT

# --no-locale: the C locale, as a test machine may have no other; the schema declares its
# text columns COLLATE "C" anyway. fsync off: a throwaway cluster need not survive a power cut.
as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale \
    >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
}
if ! as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -k $dir -p $port -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null; then
    echo "tests/pg_cluster.sh: the cluster did not start; its log:" >&2
    cat "$dir/server.log" >&2 || true
    exit 1
fi
started=1

export SHEPING_TEST_PG="postgresql://postgres@/postgres?host=$dir&port=$port"
echo "tests/pg_cluster.sh: PostgreSQL $("$bindir/pg_ctl" --version | awk '{print $3}') at $SHEPING_TEST_PG" >&2

# Not exec, and in the background: bash runs a trap only once the foreground command has ended,
# but interrupts `wait` at once. A TERM or INT sent to this script alone (a CI timeout) is passed
# on to the command, and the cluster is stopped and removed either way.
child=0
trap 'kill -TERM "$child" 2>/dev/null || true; exit 143' TERM
trap 'kill -INT "$child" 2>/dev/null || true; exit 130' INT
"$@" &
child=$!
wait "$child"
