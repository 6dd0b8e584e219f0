#!/usr/bin/env bash
# Checks infrastructure/template.yaml offline, without an AWS account:
#   1. cfn-lint from the test virtual environment, errors, warnings and
#      informational findings all counted as failures;
#   2. the cfn-guard rules in infrastructure/guard/ through
#      `cargo test -p infrastructure-checks`, which also proves that each rule
#      fails on the fixtures in infrastructure/guard/fixtures/.
# Exits non-zero on the first finding. The virtual environment is
# $DSQL_TEST_VENV, by default <workspace>/.venv.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DSQL_TEST_VENV:-$root/.venv}"
template="$root/infrastructure/template.yaml"
cfn_lint="$venv/bin/cfn-lint"

if [[ ! -x "$cfn_lint" ]]; then
    echo "error: cfn-lint not found at $cfn_lint; install it with '$venv/bin/pip install cfn-lint' or set DSQL_TEST_VENV" >&2
    exit 1
fi

echo "== cfn-lint $("$cfn_lint" --version | awk '{print $2}') on infrastructure/template.yaml"
"$cfn_lint" --include-checks I -- "$template"
echo "cfn-lint: no findings"

guard_version="$(cd "$root" && cargo tree -p infrastructure-checks -e dev --prefix none 2>/dev/null | awk '$1 == "cfn-guard" {print $2; exit}')"
echo "== cfn-guard ${guard_version:-(version unknown)} rules in infrastructure/guard/ (cargo test -p infrastructure-checks)"
(cd "$root" && cargo test -p infrastructure-checks -- --nocapture)
echo "infrastructure checks passed"
