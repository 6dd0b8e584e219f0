#!/usr/bin/env bash
# Gateway overhead: pgbench select-only TPS through the gateway (TLS, token
# auth, relay) against the same PostgreSQL directly, in one run, as a ratio.
# Rounds alternate direct and gateway runs so machine noise hits both alike.
#
# Usage: scripts/bench-gateway.sh [SECONDS_PER_RUN] [ROUNDS]
# Environment: DATABASE_URL (else see scripts/postgres.sh), CLIENTS (8).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-10}
rounds=${2:-3}
clients=${CLIENTS:-8}

# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
work=$(mktemp -d)
gateway_pid=
cleanup() {
  [[ -n "$gateway_pid" ]] && kill "$gateway_pid" 2>/dev/null && wait "$gateway_pid" 2>/dev/null
  rm -rf "$work"
  pg_stop_throwaway
}
trap cleanup EXIT
DSQL_TEST_MIN_CONNECTIONS=$((clients + 10)) ensure_postgres

cargo build --release --quiet -p dsql-secrets
binary=${CARGO_TARGET_DIR:-$root/target}/release/dsql-secrets

psql "$DATABASE_URL" -XAtqc 'drop database if exists dsql_bench' -c 'create database dsql_bench'
bench_url=${DATABASE_URL%/*}/dsql_bench
pgbench -i -q -s 10 "$bench_url" >/dev/null 2>&1

"$binary" local gateway --listen 127.0.0.1:0 --upstream "$bench_url" \
  --access-key AKIDBENCH:bench-secret --ca-out "$work/ca.pem" >"$work/gateway.out" 2>"$work/gateway.log" &
gateway_pid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$work/gateway.out" && break; sleep 0.1; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/gateway.out")
[[ -n "$port" ]] || { echo "gateway did not start:" >&2; cat "$work/gateway.log" >&2; exit 1; }
token=$(AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret \
  "$binary" token generate --hostname localhost --region us-east-1 --expires-in 3600)

tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1; }
run_direct() { pgbench -S -n -T "$seconds" -c "$clients" -j 2 "$bench_url" 2>/dev/null | tps; }
run_gateway() {
  PGPASSWORD=$token PGSSLMODE=verify-full PGSSLROOTCERT="$work/ca.pem" PGHOSTADDR=127.0.0.1 \
    pgbench -S -n -T "$seconds" -c "$clients" -j 2 -h localhost -p "$port" -U admin postgres 2>/dev/null | tps
}

echo "pgbench -S, $clients clients, $seconds s per run, $rounds rounds; $(nproc) CPUs"
ratios=()
for round in $(seq "$rounds"); do
  direct=$(run_direct)
  through=$(run_gateway)
  ratio=$(python3 -c "print(f'{$through / $direct:.3f}')")
  ratios+=("$ratio")
  printf 'round %d: direct %10.1f tps   gateway %10.1f tps   ratio %s\n' "$round" "$direct" "$through" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
echo "median gateway/direct TPS ratio: $median (target: at least 0.85)"
psql "$DATABASE_URL" -XAtqc 'drop database if exists dsql_bench' >/dev/null
