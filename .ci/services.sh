#!/usr/bin/env bash
# Start the services the tests need (PostgreSQL on 127.0.0.1:5432, trust auth) if they are
# down, and wait for them.  Idempotent.  Uses the machine's own cluster where Debian's
# pg_ctlcluster knows one; anywhere else (no pg_ctlcluster, or no cluster) it initialises
# a server of its own in $WIREWATCH_PGDATA with initdb and starts it with pg_ctl.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

bindir() {
    local dir
    dir="$(pg_config --bindir 2>/dev/null || true)"
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
    dirname "$(command -v initdb)"
}

start_own_server() {
    local bin data as=()
    bin="$(bindir)"
    data="${WIREWATCH_PGDATA:-/var/tmp/wirewatch-pgdata}"
    # PostgreSQL refuses to run as root.
    if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); mkdir -p "$data"; chown postgres "$data"; chmod 700 "$data"; fi
    if [ ! -f "$data/PG_VERSION" ]; then
        "${as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
        -o "-p 5432 -c listen_addresses=127.0.0.1 -k /tmp" start
}

if ! pg_up; then
    echo "starting PostgreSQL"
    cluster="$(ls /etc/postgresql 2>/dev/null | head -n1 || true)"
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -n "$cluster" ] && [ -d "/etc/postgresql/$cluster/main" ]; then
        pg_ctlcluster --skip-systemctl-redirect "$cluster" main start || true
    else
        start_own_server || true
    fi
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
echo "PostgreSQL is up"
