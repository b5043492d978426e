#!/usr/bin/env bash
# Benchmark: the Fundament gateway against nginx as a reverse proxy, same backend, one run.
#   direct:          wrk -> backend (nginx serving a static 1 KB body)
#   nginx:           wrk -> nginx proxy (keepalive upstream, as a user would tune it) -> backend
#   haproxy:         wrk -> HAProxy (Debian's; two threads, connection reuse to the backend) -> backend
#   yarp:            wrk -> bare YARP (bench/gateway/BareYarp: one static route, nothing else) -> backend
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
  [ -f "$WORK/haproxy.pid" ] && kill "$(cat "$WORK/haproxy.pid")" 2>/dev/null || true
}
trap cleanup EXIT

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null || ! command -v haproxy >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq nginx haproxy wrk curl >/dev/null
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
cat >"$WORK/haproxy.cfg" <<HAPROXY
global
  maxconn 4096
  nbthread 2
  pidfile $WORK/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend bench
  bind 127.0.0.1:5307
  default_backend backend
backend backend
  http-reuse always
  server b1 127.0.0.1:5301
HAPROXY
haproxy -f "$WORK/haproxy.cfg" -D

echo "== build and start bare YARP"
dotnet build bench/gateway/BareYarp -c Release -o "$WORK/yarp" -v quiet -nologo >/dev/null
"$WORK/yarp/BareYarp" --urls http://127.0.0.1:5308 --backend http://127.0.0.1:5301 >"$WORK/yarp.log" 2>&1 &
PIDS+=($!)

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
  "routes":[{"path":"/backend/plain/{**rest}","stripPrefix":"/backend/plain","auth":"anonymous"},
            {"path":"/backend/secure/{**rest}","stripPrefix":"/backend/secure","auth":"authenticated","rateLimit":"bench"}]}' >/dev/null
for _ in $(seq 1 50); do [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5304/backend/plain/)" = 200 ] && break; sleep 0.2; done
for _ in $(seq 1 50); do [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5306/backend/plain/)" = 200 ] && break; sleep 0.2; done
for _ in $(seq 1 50); do curl -fs http://127.0.0.1:5308/ >/dev/null 2>&1 && break; sleep 0.2; done
for url in http://127.0.0.1:5301/ http://127.0.0.1:5302/ http://127.0.0.1:5307/ http://127.0.0.1:5308/ http://127.0.0.1:5304/backend/plain/ http://127.0.0.1:5306/backend/plain/; do
  [ "$(curl -fs "$url" | wc -c)" = 1024 ] || { echo "$url does not answer the 1 KB body"; exit 1; }
done
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5304/backend/secure/ -H "authorization: Bearer $TOKEN")" = 200 ] || { echo "the JWT route does not answer 200"; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5304/backend/secure/)" = 401 ] || { echo "the JWT route lets anonymous callers through"; exit 1; }
echo "all seven paths answer the 1 KB body; the JWT route refuses anonymous callers"

run_round() { # name -> "rps p50ms p99ms non2xx"
  local out
  case $1 in
    direct) out=$(wrk -t1 -c$CONNECTIONS -d${2}s --latency http://127.0.0.1:5301/);;
    nginx) out=$(wrk -t1 -c$CONNECTIONS -d${2}s --latency http://127.0.0.1:5302/);;
    haproxy) out=$(wrk -t1 -c$CONNECTIONS -d${2}s --latency http://127.0.0.1:5307/);;
    yarp) out=$(wrk -t1 -c$CONNECTIONS -d${2}s --latency http://127.0.0.1:5308/);;
    fundament) out=$(wrk -t1 -c$CONNECTIONS -d${2}s --latency http://127.0.0.1:5304/backend/plain/);;
    fundament-jwt) out=$(wrk -t1 -c$CONNECTIONS -d${2}s --latency -H "Authorization: Bearer $TOKEN" http://127.0.0.1:5304/backend/secure/);;
    fundament-edge) out=$(wrk -t1 -c$CONNECTIONS -d${2}s --latency http://127.0.0.1:5306/backend/plain/);;
  esac
  echo "$out" | python3 bench/wrk_summary.py
}

echo "== warm-up (long enough for .NET's tiered JIT to settle)"
NAMES=${BENCH_TARGETS:-direct nginx haproxy yarp fundament fundament-jwt fundament-edge}
for name in $NAMES; do run_round $name 12 >/dev/null; done
echo "== $ROUNDS alternating rounds of ${SECONDS_PER_ROUND}s, $CONNECTIONS connections"
: >"$WORK/results"
for r in $(seq 1 "$ROUNDS"); do
  for name in $NAMES; do
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
for n in ("direct","nginx","haproxy","yarp","fundament","fundament-jwt","fundament-edge"):
    if n in med:
        print(f"| {n} | {med[n][0]:.0f} | {med[n][1]:.2f} | {med[n][2]:.2f} | {sum(x[3] for x in rows[n])} |")
def ratio(a,b,label):
    if a in med and b in med:
        print(f"{a}/{b}: throughput {med[a][0]/med[b][0]:.2f}x, p99 {med[a][2]/med[b][2]:.2f}x{label}")
print()
ratio("fundament","nginx","  (goal for issue 19: 0.6x or better)")
ratio("fundament","haproxy","")
ratio("fundament","yarp","  (goal: 0.9x or better)")
ratio("yarp","nginx","  (the ceiling a YARP-based proxy reaches here)")
ratio("fundament-edge","nginx","")
if "fundament" in med and "fundament-jwt" in med:
    print(f"JWT + rate limit cost {100*(1-med['fundament-jwt'][0]/med['fundament'][0]):.1f}% of the anonymous route's throughput (goal: under 15%)")
PY
