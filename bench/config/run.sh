#!/usr/bin/env bash
# Benchmark: a service reading its resolved configuration.
#   Fundament: GET /api/v1/config/resolved (JWT validated, permission checked, 4-scope overlay on SQLite)
#   etcd:      POST /v3/kv/range over the service's key prefix (no auth, no overlay), the usual DIY setup
# Same 20 keys, same machine, wrk with the same connections, alternating rounds in one run.
# Usage: bash bench/config/run.sh [seconds-per-round] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_ROUND=${1:-10}
ROUNDS=${2:-3}
CONNECTIONS=32
WORK=$(mktemp -d /tmp/fundament-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

for tool in etcd wrk curl python3; do
  command -v "$tool" >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq etcd-server wrk curl >/dev/null; break; }
done

echo "== build"
dotnet build src/Fundament.Server -c Release -o "$WORK/bin" -v quiet -nologo >/dev/null
PASSWORD="Bench-Root-Password-77"
Fundament__Identity__BootstrapAdminPassword=$PASSWORD Logging__LogLevel__Default=Warning \
  "$WORK/bin/fundament" --urls http://127.0.0.1:5180 --data-dir "$WORK/data" --Fundament:Gateway:Urls=http://127.0.0.1:5181 >"$WORK/fundament.log" 2>&1 &
PIDS+=($!)
etcd --data-dir "$WORK/etcd" --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --log-level error >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -fs http://127.0.0.1:5180/health/ready >/dev/null 2>&1 && curl -fs http://127.0.0.1:2379/health >/dev/null 2>&1 && break; sleep 1; done

echo "== seed 20 keys in both"
TOKEN=$(curl -s http://127.0.0.1:5180/api/v1/auth/login -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
b64() { printf '%s' "$1" | base64 -w0; }
for i in $(seq 1 20); do
  case $((i % 4)) in 0) svc='*'; env='*';; 1) svc='*'; env=prod;; 2) svc=orders; env='*';; 3) svc=orders; env=prod;; esac
  value="{\"limit\":$i,\"name\":\"setting-$i\",\"enabled\":true}"
  curl -fs -X PUT http://127.0.0.1:5180/api/v1/config/entries -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{\"service\":\"$svc\",\"environment\":\"$env\",\"key\":\"Orders:Setting$i\",\"value\":$value}" >/dev/null
  curl -fs http://127.0.0.1:2379/v3/kv/put -d "{\"key\":\"$(b64 "/config/orders/prod/Orders:Setting$i")\",\"value\":\"$(b64 "$value")\"}" >/dev/null
done
export ETCD_RANGE_BODY="{\"key\":\"$(b64 /config/orders/prod/)\",\"range_end\":\"$(b64 /config/orders/prod0)\"}"
FUNDAMENT_KEYS=$(curl -fs "http://127.0.0.1:5180/api/v1/config/resolved?service=orders&environment=prod" -H "authorization: Bearer $TOKEN" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["values"]))')
ETCD_KEYS=$(curl -fs http://127.0.0.1:2379/v3/kv/range -d "$ETCD_RANGE_BODY" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["kvs"]))')
echo "keys returned: fundament=$FUNDAMENT_KEYS etcd=$ETCD_KEYS"

run_round() { # name → "rps p50ms p99ms"
  local out
  if [ "$1" = fundament ]; then
    out=$(wrk -t1 -c$CONNECTIONS -d${SECONDS_PER_ROUND}s --latency -H "Authorization: Bearer $TOKEN" \
      "http://127.0.0.1:5180/api/v1/config/resolved?service=orders&environment=prod")
  else
    out=$(wrk -t1 -c$CONNECTIONS -d${SECONDS_PER_ROUND}s --latency -s bench/config/etcd-range.lua http://127.0.0.1:2379/v3/kv/range)
  fi
  echo "$out" >"$WORK/last-$1.txt"
  echo "$out" | python3 bench/wrk_summary.py
}

echo "== warm-up"
SECONDS_PER_ROUND_SAVE=$SECONDS_PER_ROUND; SECONDS_PER_ROUND=3
run_round fundament >/dev/null; run_round etcd >/dev/null
SECONDS_PER_ROUND=$SECONDS_PER_ROUND_SAVE

echo "== $ROUNDS alternating rounds of ${SECONDS_PER_ROUND}s, $CONNECTIONS connections"
: >"$WORK/results"
for r in $(seq 1 "$ROUNDS"); do
  for name in fundament etcd; do
    line=$(run_round $name); echo "$name $line" | tee -a "$WORK/results"
  done
done
python3 - "$WORK/results" <<'PY'
import sys,statistics as st
rows={}
for line in open(sys.argv[1]):
    n,rps,p50,p99,err=line.split(); rows.setdefault(n,[]).append((float(rps),float(p50),float(p99),int(err)))
med={n:tuple(st.median(x[i] for x in v) for i in range(3)) for n,v in rows.items()}
errs={n:sum(x[3] for x in v) for n,v in rows.items()}
print("\n| | requests/s | p50 ms | p99 ms | non-2xx |\n|---|---|---|---|---|")
for n in ("fundament","etcd"):
    print(f"| {n} | {med[n][0]:.0f} | {med[n][1]:.2f} | {med[n][2]:.2f} | {errs[n]} |")
f,e=med["fundament"],med["etcd"]
print(f"\nfundament/etcd: throughput {f[0]/e[0]:.2f}x, p50 {f[1]/e[1]:.2f}x, p99 {f[2]/e[2]:.2f}x (medians of the rounds)")
PY
