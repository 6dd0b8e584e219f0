#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, the whole workspace's tests
# against real PostgreSQL, real clients and the Python reference tools, and
# the offline infrastructure checks. Installs or starts what it needs.
#
# Environment: DATABASE_URL (a PostgreSQL the tests may use; see
# scripts/postgres.sh for what happens without it), DSQL_TEST_VENV (Python
# virtual environment, default .venv), DSQL_TESTDATA_DIR (independent test
# data; default ../shared/testdata beside the workspace), CARGO_TARGET_DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() { printf '\n==> %s\n' "$*" >&2; }

need_command() {
  local command=$1 package=$2
  command -v "$command" >/dev/null 2>&1 && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    step "installing $package for $command"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" >&2
  else
    echo "test: $command is missing; install the Debian package $package" >&2
    exit 1
  fi
}

step "checking tools"
need_command cargo cargo
need_command python3 python3
need_command psql postgresql-client
need_command pgbench postgresql-client

if [[ -z "${DSQL_TESTDATA_DIR:-}" ]]; then
  for candidate in "$root/../shared/testdata" /work/shared/testdata; do
    if [[ -f "$candidate/dsql-token-vectors.json" ]]; then
      DSQL_TESTDATA_DIR=$(cd "$candidate" && pwd)
      break
    fi
  done
fi
if [[ -z "${DSQL_TESTDATA_DIR:-}" || ! -f "$DSQL_TESTDATA_DIR/dsql-token-vectors.json" ]]; then
  echo "test: the independent test data (dsql-token-vectors.json) was not found; set DSQL_TESTDATA_DIR" >&2
  exit 1
fi
export DSQL_TESTDATA_DIR

step "preparing the Python tools"
"$root/scripts/setup-python.sh"
export DSQL_TEST_VENV=${DSQL_TEST_VENV:-$root/.venv}

step "preparing PostgreSQL"
# shellcheck source=scripts/postgres.sh
source "$root/scripts/postgres.sh"
trap pg_stop_throwaway EXIT
ensure_postgres

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "building binaries (debug and release)"
cargo build --workspace --bins --locked
cargo build --release --workspace --bins --locked

step "cargo test"
cargo test --workspace --locked --no-fail-fast

if [[ -x "$root/scripts/check-infrastructure.sh" ]]; then
  step "infrastructure checks"
  "$root/scripts/check-infrastructure.sh"
fi

step "all checks passed"
