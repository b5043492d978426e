#!/usr/bin/env bash
# Benchmark: the Fundament gateway against nginx as a reverse proxy, same backend, one run.
#   direct:          wrk -> backend (nginx serving a static 1 KB body)
#   nginx:           wrk -> nginx proxy (keepalive upstream, as a user would tune it) -> backend
#   fundament:       wrk -> Fundament gateway, anonymous route -> backend
#   fundament-jwt:   wrk -> Fundament gateway, JWT-validated route with a rate-limit policy -> backend
#   fundament-edge:  wrk -> a second process, --roles gateway only, tuned as docs/operations.md
#                    suggests for edge replicas (inline socket completions, workstation GC) -> backend
# Alternating rounds; access logs off on both proxies (they would cost both the same disk writes).
# Usage: bash bench/gateway/run.sh [seconds-per-round=10] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_ROUND=${1:-10}
ROUNDS=${2:-3}
CONNECTIONS=64
WORK=$(mktemp -d /tmp/fundament-gw-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq nginx wrk curl >/dev/null
fi

BODY=$(head -c 1024 /dev/zero | tr '\0' 'x')
cat >"$WORK/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  server { listen 127.0.0.1:5301; location / { default_type text/plain; return 200 '$BODY'; } }
  upstream backend { server 127.0.0.1:5301; keepalive 128; }
  server {
    listen 127.0.0.1:5302;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK"

echo "== build and start Fundament"
dotnet build src/Fundament.Server -c Release -o "$WORK/bin" -v quiet -nologo >/dev/null
PASSWORD="Bench-Root-Password-77"
Fundament__Identity__BootstrapAdminPassword=$PASSWORD \
Logging__LogLevel__Default=Warning \
Fundament__Gateway__RateLimits__bench__Algorithm=tokenBucket \
Fundament__Gateway__RateLimits__bench__PermitLimit=1000000 \
Fundament__Gateway__RateLimits__bench__TokensPerPeriod=1000000 \
Fundament__Gateway__RateLimits__bench__ReplenishmentPeriod=00:00:01 \
Fundament__Gateway__RateLimits__bench__PartitionBy=user \
  "$WORK/bin/fundament" --urls http://127.0.0.1:5303 --data-dir "$WORK/data" --Fundament:Gateway:Urls=http://127.0.0.1:5304 >"$WORK/fundament.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -fs http://127.0.0.1:5303/health/ready >/dev/null 2>&1 && break; sleep 1; done
# The same data folder (SQLite in WAL mode serves several processes on one machine).
DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_gcServer=0 \
Logging__LogLevel__Default=Warning \
  "$WORK/bin/fundament" --roles gateway --urls http://127.0.0.1:5305 --data-dir "$WORK/data" --Fundament:Gateway:Urls=http://127.0.0.1:5306 >"$WORK/fundament-edge.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -fs http://127.0.0.1:5305/health/ready >/dev/null 2>&1 && break; sleep 1; done
TOKEN=$(curl -s http://127.0.0.1:5303/api/v1/auth/login -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -fs http://127.0.0.1:5303/api/v1/registry/instances -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{
  "service":"backend","address":"127.0.0.1","port":5301,
  "routes":[{"path":"/plain/{**rest}","stripPrefix":"/plain","auth":"anonymous"},
            {"path":"/secure/{**rest}","stripPrefix":"/secure","auth":"authenticated","rateLimit":"bench"}]}' >/dev/null
for _ in $(seq 1 50); do [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5304/plain/)" = 200 ] && break; sleep 0.2; done
for _ in $(seq 1 50); do [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5306/plain/)" = 200 ] && break; sleep 0.2; done
for url in http://127.0.0.1:5301/ http://127.0.0.1:5302/ http://127.0.0.1:5304/plain/ http://127.0.0.1:5306/plain/; do
  [ "$(curl -fs "$url" | wc -c)" = 1024 ] || { echo "$url does not answer the 1 KB body"; exit 1; }
done
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5304/secure/ -H "authorization: Bearer $TOKEN")" = 200 ] || { echo "the JWT route does not answer 200"; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5304/secure/)" = 401 ] || { echo "the JWT route lets anonymous callers through"; exit 1; }
echo "all five paths answer the 1 KB body; the JWT route refuses anonymous callers"

run_round() { # name -> "rps p50ms p99ms non2xx"
  local out
  case $1 in
    direct) out=$(wrk -t1 -c$CONNECTIONS -d${2}s --latency http://127.0.0.1:5301/);;
    nginx) out=$(wrk -t1 -c$CONNECTIONS -d${2}s --latency http://127.0.0.1:5302/);;
    fundament) out=$(wrk -t1 -c$CONNECTIONS -d${2}s --latency http://127.0.0.1:5304/plain/);;
    fundament-jwt) out=$(wrk -t1 -c$CONNECTIONS -d${2}s --latency -H "Authorization: Bearer $TOKEN" http://127.0.0.1:5304/secure/);;
    fundament-edge) out=$(wrk -t1 -c$CONNECTIONS -d${2}s --latency http://127.0.0.1:5306/plain/);;
  esac
  echo "$out" | python3 bench/wrk_summary.py
}

echo "== warm-up (long enough for .NET's tiered JIT to settle)"
for name in direct nginx fundament fundament-jwt fundament-edge; do run_round $name 12 >/dev/null; done
echo "== $ROUNDS alternating rounds of ${SECONDS_PER_ROUND}s, $CONNECTIONS connections"
: >"$WORK/results"
for r in $(seq 1 "$ROUNDS"); do
  for name in direct nginx fundament fundament-jwt fundament-edge; do
    echo "$name $(run_round $name "$SECONDS_PER_ROUND")" | tee -a "$WORK/results"
  done
done
python3 - "$WORK/results" <<'PY'
import sys,statistics as st
rows={}
for line in open(sys.argv[1]):
    n,rps,p50,p99,err=line.split(); rows.setdefault(n,[]).append((float(rps),float(p50),float(p99),int(err)))
med={n:tuple(st.median(x[i] for x in v) for i in range(3)) for n,v in rows.items()}
print("\n| | requests/s | p50 ms | p99 ms | non-2xx |\n|---|---|---|---|---|")
for n in ("direct","nginx","fundament","fundament-jwt","fundament-edge"):
    print(f"| {n} | {med[n][0]:.0f} | {med[n][1]:.2f} | {med[n][2]:.2f} | {sum(x[3] for x in rows[n])} |")
f,x,j,e=med["fundament"],med["nginx"],med["fundament-jwt"],med["fundament-edge"]
print(f"\nfundament/nginx: throughput {f[0]/x[0]:.2f}x, p99 {f[2]/x[2]:.2f}x; JWT + rate limit cost {100*(1-j[0]/f[0]):.1f}% of plain throughput")
print(f"fundament-edge/nginx: throughput {e[0]/x[0]:.2f}x, p99 {e[2]/x[2]:.2f}x")
PY
