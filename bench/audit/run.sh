#!/usr/bin/env bash
# Benchmark: an audited read against an unaudited one of similar work, on the same server, in one run.
#   audited:   GET /api/v1/secrets/app/db   (JWT, vault policy check, envelope decrypt, an audit entry durable before the answer)
#   unaudited: GET /api/v1/config/resolved  (JWT, permission check, four-scope overlay of 20 keys)
# At 1, 4 and 16 connections, alternating rounds. SQLite by default; BENCH_POSTGRES=<connection string>
# runs the server on PostgreSQL instead (the database must exist and be empty).
# Usage: bash bench/audit/run.sh [seconds-per-round=10] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_ROUND=${1:-10}
ROUNDS=${2:-3}
WORK=$(mktemp -d /tmp/fundament-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq wrk curl >/dev/null; break; }
done

echo "== build"
dotnet build src/Fundament.Server -c Release -o "$WORK/bin" -v quiet -nologo >/dev/null
PASSWORD="Bench-Root-Password-77"
STORAGE=()
ENGINE=sqlite
if [ -n "${BENCH_POSTGRES:-}" ]; then
  STORAGE=(--Fundament:Storage:Provider=postgres "--ConnectionStrings:Fundament=$BENCH_POSTGRES" "--Fundament:MasterKey=$(head -c 32 /dev/urandom | base64 -w0)" --Fundament:Identity:Issuer=http://127.0.0.1)
  ENGINE=postgres
fi
Fundament__Identity__BootstrapAdminPassword=$PASSWORD Logging__LogLevel__Default=Warning \
  "$WORK/bin/fundament" --urls http://127.0.0.1:5180 --data-dir "$WORK/data" --Fundament:Gateway:Urls=http://127.0.0.1:5181 "${STORAGE[@]}" >"$WORK/fundament.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -fs http://127.0.0.1:5180/health/ready >/dev/null 2>&1 && break; sleep 1; done

echo "== seed ($ENGINE)"
TOKEN=$(curl -s http://127.0.0.1:5180/api/v1/auth/login -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for i in $(seq 1 20); do
  case $((i % 4)) in 0) svc='*'; env='*';; 1) svc='*'; env=prod;; 2) svc=orders; env='*';; 3) svc=orders; env=prod;; esac
  curl -fs -X PUT http://127.0.0.1:5180/api/v1/config/entries -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{\"service\":\"$svc\",\"environment\":\"$env\",\"key\":\"Orders:Setting$i\",\"value\":{\"limit\":$i,\"name\":\"setting-$i\",\"enabled\":true}}" >/dev/null
done
curl -fs -X PUT http://127.0.0.1:5180/api/v1/secrets/app/db -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"value":{"host":"db.internal","user":"orders","password":"s3cr3t-Bench-Value"}}' >/dev/null
curl -fs http://127.0.0.1:5180/api/v1/secrets/app/db -H "authorization: Bearer $TOKEN" >/dev/null

URL_unaudited="http://127.0.0.1:5180/api/v1/config/resolved?service=orders&environment=prod"
URL_audited="http://127.0.0.1:5180/api/v1/secrets/app/db"
run_round() { # name connections → "rps p50ms p99ms non2xx maxms"
  local url="URL_$1" out
  out=$(wrk -t1 -c"$2" -d"${SECONDS_PER_ROUND}"s --latency -H "Authorization: Bearer $TOKEN" "${!url}")
  echo "$out" >"$WORK/last-$1-$2.txt"
  echo "$out" | python3 bench/wrk_summary.py --max
}

echo "== warm-up"
for c in 1 16; do for name in unaudited audited; do SECONDS_PER_ROUND=3 run_round $name $c >/dev/null; done; done
ENTRIES_BEFORE=$(curl -fs "http://127.0.0.1:5180/api/v1/audit/verify" -H "authorization: Bearer $TOKEN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')

echo "== $ROUNDS alternating rounds of ${SECONDS_PER_ROUND}s at 1, 4 and 16 connections"
: >"$WORK/results"
for r in $(seq 1 "$ROUNDS"); do
  for c in 1 4 16; do
    for name in unaudited audited; do
      line=$(run_round $name $c); echo "$name $c $line" | tee -a "$WORK/results"
    done
  done
done
VERIFY=$(curl -fs "http://127.0.0.1:5180/api/v1/audit/verify" -H "authorization: Bearer $TOKEN")
echo "audit chain after the run: $VERIFY (entries before the rounds: $ENTRIES_BEFORE)"
python3 - "$WORK/results" "$ENGINE" <<'PY'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    name, c, rps, p50, p99, err, mx = line.split()
    rows.setdefault((name, int(c)), []).append((float(rps), float(p50), float(p99), int(err), float(mx)))
print(f"\n{sys.argv[2]}: medians of the rounds (max: the worst of the rounds)\n")
print("| path | connections | requests/s | p50 ms | p99 ms | max ms | non-2xx |\n|---|---|---|---|---|---|---|")
for c in (1, 4, 16):
    for name in ("unaudited", "audited"):
        v = rows[(name, c)]
        print(f"| {name} | {c} | {st.median(x[0] for x in v):.0f} | {st.median(x[1] for x in v):.2f} | {st.median(x[2] for x in v):.2f} | {max(x[4] for x in v):.1f} | {sum(x[3] for x in v)} |")
for c in (1, 4, 16):
    a = st.median(x[0] for x in rows[("audited", c)]); u = st.median(x[0] for x in rows[("unaudited", c)])
    pa = st.median(x[2] for x in rows[("audited", c)]); pu = st.median(x[2] for x in rows[("unaudited", c)])
    print(f"{c} connections: audited/unaudited throughput {a / u:.2f}x, p99 {pa / pu:.2f}x")
PY
