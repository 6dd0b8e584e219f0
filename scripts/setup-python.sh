#!/usr/bin/env bash
# Creates (or updates) the virtual environment with the Python tools the
# tests use as independent references and real clients: moto, boto3, the
# AWS CLI, psycopg and cfn-lint. The folder is $DSQL_TEST_VENV, default
# .venv in the workspace root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${DSQL_TEST_VENV:-$root/.venv}
requirements="$root/scripts/requirements-test.txt"
stamp="$venv/.requirements-installed"

if ! command -v python3 >/dev/null 2>&1; then
  echo "setup-python: python3 is missing; install Debian's python3 and python3-venv" >&2
  exit 1
fi
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv" || {
    echo "setup-python: cannot create a virtual environment; install Debian's python3-venv" >&2
    exit 1
  }
fi
if [[ ! -f "$stamp" ]] || ! cmp -s "$requirements" "$stamp"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi
echo "setup-python: $venv is ready" >&2
