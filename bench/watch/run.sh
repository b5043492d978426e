#!/usr/bin/env bash
# Benchmark: watch fan-out. N blocking watchers (default 1,000) on one service's instances, one
# registration, and the time until every watcher has seen it, with the server's memory per parked
# watcher. Anchor: Consul's blocking queries, where a change reaches 1,000 watchers in under a second
# (the goal of issue 19). One all-in-one server on SQLite; the watchers come from one client process.
# Usage: bash bench/watch/run.sh [watchers=1000] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
WATCHERS=${1:-1000}
ROUNDS=${2:-3}
WORK=$(mktemp -d /tmp/fundament-watch-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true

echo "== build"
dotnet build src/Fundament.Server -c Release -o "$WORK/bin" -v quiet -nologo >/dev/null
dotnet build bench/watch/WatchFanout -c Release -o "$WORK/client" -v quiet -nologo >/dev/null
PASSWORD="Bench-Root-Password-77"
Fundament__Identity__BootstrapAdminPassword=$PASSWORD Logging__LogLevel__Default=Warning \
  "$WORK/bin/fundament" --urls http://127.0.0.1:5190 --data-dir "$WORK/data" --Fundament:Gateway:Urls=http://127.0.0.1:5191 >"$WORK/fundament.log" 2>&1 &
SERVER=$!
PIDS+=($SERVER)
for _ in $(seq 1 60); do curl -fs http://127.0.0.1:5190/health/ready >/dev/null 2>&1 && break; sleep 1; done
TOKEN=$(curl -s http://127.0.0.1:5190/api/v1/auth/login -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
echo "== $ROUNDS rounds of $WATCHERS watchers (after one warm-up round)"
# The admin holds no concurrentWatches quota; any other caller would need one of at least $WATCHERS.
"$WORK/client/WatchFanout" http://127.0.0.1:5190 "$TOKEN" "$SERVER" "$WATCHERS" "$ROUNDS"
