#!/usr/bin/env bash
# Builds the release binaries and starts the local stack:
# scripts/local-up.sh [--demo] [--state-dir DIR] [--port P]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --locked -p dsql-secrets -p rotation-lambda -p customer-api
exec "${CARGO_TARGET_DIR:-$root/target}/release/dsql-secrets" local up "$@"
