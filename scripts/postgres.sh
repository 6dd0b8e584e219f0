# Sourced by scripts/test.sh: makes DATABASE_URL point at a PostgreSQL that
# the test suite may use, starting a throwaway cluster when needed.
#
# Order: DATABASE_URL, else 127.0.0.1:5432, as long as the server accepts at
# least $DSQL_TEST_MIN_CONNECTIONS connections (the gateway tests open 200 at
# once); else a throwaway cluster from the system's PostgreSQL binaries on a
# free loopback port, stopped and removed when the calling script exits.
# initdb refuses to run as root, so as root the cluster runs as the
# unprivileged user $DSQL_TEST_PG_USER (created when missing).

DSQL_TEST_MIN_CONNECTIONS=${DSQL_TEST_MIN_CONNECTIONS:-250}
DSQL_TEST_PG_USER=${DSQL_TEST_PG_USER:-dsqltest}

pg_max_connections() {
  psql "$1" -XAtqc 'show max_connections' 2>/dev/null
}

pg_usable() {
  local url=$1 max
  max=$(pg_max_connections "$url") || return 1
  [[ -n "$max" ]] || return 1
  if (( max < DSQL_TEST_MIN_CONNECTIONS )); then
    echo "postgres: $url allows $max connections; the tests need $DSQL_TEST_MIN_CONNECTIONS, so a throwaway cluster is used" >&2
    return 1
  fi
}

pg_find_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir 2>/dev/null)
    [[ -x "$dir/initdb" ]] && { echo "$dir"; return 0; }
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$dir/initdb" ]] && { echo "$dir"; return 0; }
  done
  if command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  return 1
}

pg_install() {
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "postgres: installing PostgreSQL with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql postgresql-client >&2
  else
    echo "postgres: no PostgreSQL server binaries (initdb, pg_ctl) found and cannot install them;" >&2
    echo "  install the Debian packages postgresql and postgresql-client, or set DATABASE_URL" >&2
    return 1
  fi
}

pg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_start_throwaway() {
  local bindir port run_as=()
  if ! bindir=$(pg_find_bindir); then
    pg_install || return 1
    bindir=$(pg_find_bindir) || { echo "postgres: initdb still not found after installing" >&2; return 1; }
  fi
  PG_THROWAWAY_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dsql-test-pg.XXXXXX")
  port=$(pg_free_port)
  if [[ $(id -u) -eq 0 ]]; then
    id "$DSQL_TEST_PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$DSQL_TEST_PG_USER"
    chown "$DSQL_TEST_PG_USER" "$PG_THROWAWAY_DIR"
    run_as=(runuser -u "$DSQL_TEST_PG_USER" --)
  fi
  "${run_as[@]}" "$bindir/initdb" -D "$PG_THROWAWAY_DIR/data" -U postgres -A trust --no-sync >"$PG_THROWAWAY_DIR/initdb.log" 2>&1 \
    || { cat "$PG_THROWAWAY_DIR/initdb.log" >&2; return 1; }
  "${run_as[@]}" "$bindir/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -l "$PG_THROWAWAY_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_THROWAWAY_DIR -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { cat "$PG_THROWAWAY_DIR/server.log" >&2; return 1; }
  PG_THROWAWAY_STOP=("${run_as[@]}" "$bindir/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -m fast -w stop)
  DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "postgres: started a throwaway cluster at $DATABASE_URL (data in $PG_THROWAWAY_DIR)" >&2
}

pg_stop_throwaway() {
  if [[ -n "${PG_THROWAWAY_DIR:-}" ]]; then
    "${PG_THROWAWAY_STOP[@]}" >/dev/null 2>&1 || true
    rm -rf "$PG_THROWAWAY_DIR"
    PG_THROWAWAY_DIR=
  fi
}

ensure_postgres() {
  if [[ -n "${DATABASE_URL:-}" ]] && pg_usable "$DATABASE_URL"; then
    echo "postgres: using DATABASE_URL" >&2
  elif pg_usable "postgres://postgres@127.0.0.1:5432/postgres"; then
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
    echo "postgres: using $DATABASE_URL" >&2
  else
    pg_start_throwaway || return 1
  fi
  export DATABASE_URL
}
