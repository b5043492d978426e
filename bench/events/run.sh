#!/usr/bin/env bash
# Benchmark: the event store against the physical limit of its database, in one run.
#   appends:  POST /api/v1/streams/{stream}/events (JWT, stream grant check, expected version, idempotency
#             lookup, the gap-free head lock, quota, an audit entry in the same transaction) with 1 and with
#             100 events per request, at 1 and 16 concurrent writers,
#   against   raw INSERTs of the same rows (same columns, keys and indexes as events_events) in transactions
#             of the same size on the same database, through Npgsql or Microsoft.Data.Sqlite.
#   catch-up: one catch-up subscription from the start pulling (max 1000) and acking 20,000 events,
#   against   raw SELECTs of the same number of rows from events_events in pages of 1000 (parsing the JSON).
# Goals (issue 14): 0.7x of raw or better, and 20,000 single-event appends/s on PostgreSQL.
# SQLite by default; BENCH_POSTGRES=<connection string> runs the server and the raw side on PostgreSQL
# (the database must exist and be empty).
# Usage: bash bench/events/run.sh [seconds-per-round=10] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_ROUND=${1:-10}
ROUNDS=${2:-3}
WORK=$(mktemp -d /tmp/fundament-events-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== build"
dotnet build src/Fundament.Server -c Release -o "$WORK/bin" -v quiet -nologo >/dev/null
dotnet build bench/events/EventBench -c Release -o "$WORK/client" -v quiet -nologo >/dev/null
PASSWORD="Bench-Root-Password-77"
STORAGE=()
ENGINE=sqlite
RAW=(sqlite "Data Source=$WORK/data/fundament.db")
if [ -n "${BENCH_POSTGRES:-}" ]; then
  STORAGE=(--Fundament:Storage:Provider=postgres "--ConnectionStrings:Fundament=$BENCH_POSTGRES" "--Fundament:MasterKey=$(head -c 32 /dev/urandom | base64 -w0)" --Fundament:Identity:Issuer=http://127.0.0.1)
  ENGINE=postgres
  RAW=(postgres "$BENCH_POSTGRES")
fi
Fundament__Identity__BootstrapAdminPassword=$PASSWORD Logging__LogLevel__Default=Warning \
  "$WORK/bin/fundament" --urls http://127.0.0.1:5185 --data-dir "$WORK/data" --Fundament:Gateway:Urls=http://127.0.0.1:5186 "${STORAGE[@]}" >"$WORK/fundament.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -fs http://127.0.0.1:5185/health/ready >/dev/null 2>&1 && break; sleep 1; done
# The admin appends: the built-in admin role has no storedEvents limit.
TOKEN=$(curl -s http://127.0.0.1:5185/api/v1/auth/login -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
BENCH="$WORK/client/EventBench"
API=http://127.0.0.1:5185

echo "== warm-up ($ENGINE)"
"$BENCH" append "$API" "$TOKEN" 4 1 3 >/dev/null
"$BENCH" append "$API" "$TOKEN" 4 100 3 >/dev/null
"$BENCH" raw-append "${RAW[@]}" 4 1 3 >/dev/null

echo "== $ROUNDS alternating rounds of ${SECONDS_PER_ROUND}s ($ENGINE)"
: >"$WORK/results.txt"
for round in $(seq 1 "$ROUNDS"); do
  for batch in 1 100; do
    for c in 1 16; do
      "$BENCH" append "$API" "$TOKEN" "$c" "$batch" "$SECONDS_PER_ROUND" | tee -a "$WORK/results.txt"
      "$BENCH" raw-append "${RAW[@]}" "$c" "$batch" "$SECONDS_PER_ROUND" | tee -a "$WORK/results.txt"
    done
  done
  "$BENCH" catchup "$API" "$TOKEN" 20000 | tee -a "$WORK/results.txt"
  "$BENCH" raw-read "${RAW[@]}" 20000 | tee -a "$WORK/results.txt"
done

python3 - "$WORK/results.txt" "$ENGINE" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    parts = line.split()
    if parts and parts[0] == "RESULT":
        rows[parts[1]].append((float(parts[2]), float(parts[3]), float(parts[4])))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in rows.items()}
print(f"\n| {sys.argv[2]} | Fundament events/s | raw events/s | ratio | Fundament p50 / p99 ms | raw p50 / p99 ms |")
print("|---|---|---|---|---|---|")
for batch in (1, 100):
    for c in (1, 16):
        f, r = med[f"append-c{c}-b{batch}"], med[f"raw-append-c{c}-b{batch}"]
        print(f"| append, {batch} event{'s' if batch > 1 else ''}/request, {c} writer{'s' if c > 1 else ''} | {f[0]:.0f} | {r[0]:.0f} | {f[0] / r[0]:.2f}x | {f[1]:.1f} / {f[2]:.1f} | {r[1]:.1f} / {r[2]:.1f} |")
f, r = med["catchup"], med["raw-read"]
print(f"| subscription catch-up (pull 1000 + ack) vs raw paged read | {f[0]:.0f} | {r[0]:.0f} | {f[0] / r[0]:.2f}x | {f[1]:.1f} / {f[2]:.1f} per batch | {r[1]:.1f} / {r[2]:.1f} per page |")
PY
