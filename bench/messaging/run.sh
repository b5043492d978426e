#!/usr/bin/env bash
# Benchmark: publish + consume through Fundament's bus against raw RabbitMQ.Client, in one run.
#   fundament: POST /api/v1/topics/{topic}/messages (JWT, topic grant check, id dedupe, one transaction writing
#              the message and its delivery, 202 once durable) by P publishers, while C consumers pull
#              (max 100, long-poll) and ack each batch: the embedded transport on SQLite, or on PostgreSQL
#              with BENCH_POSTGRES=<connection string> (the database must exist and be empty).
#              BENCH_TRANSPORT=rabbitmq: Fundament's RabbitMQ transport on the same broker instead (quorum queue
#              per group, a confirm per publish, the delivery acked once the pulled lease is acked).
#   rabbitmq:  the same messages through RabbitMQ.Client 7: a durable quorum queue, persistent messages,
#              publisher confirms awaited per publish (the same promise as the 202), manual acks, prefetch 100.
#              A private rabbitmq-server (Debian package) is started on 127.0.0.1:55672 unless BENCH_RABBITMQ
#              names a running one (amqp://user:password@host:port/).
# Also: 4 publishers sending 100 messages per request (POST .../messages/batch, one transaction) against RabbitMQ
# publishers with 100 publishes in flight awaited together.
# Reported: messages consumed and acknowledged per second (end to end), and publishes acknowledged per second.
# Usage: bash bench/messaging/run.sh [seconds-per-round=10] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_ROUND=${1:-10}
ROUNDS=${2:-3}
WORK=$(mktemp -d /tmp/fundament-messaging-bench.XXXXXX)
PIDS=()
RMQ_STARTED=""
cleanup() {
  for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$RMQ_STARTED" ]; then
    HOME="$WORK/rmq" /usr/lib/rabbitmq/bin/rabbitmqctl -n fundament-bench@localhost stop >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

echo "== build"
dotnet build src/Fundament.Server -c Release -o "$WORK/bin" -v quiet -nologo >/dev/null
dotnet build bench/messaging/MessageBench -c Release -o "$WORK/client" -v quiet -nologo >/dev/null

AMQP=${BENCH_RABBITMQ:-}
if [ -z "$AMQP" ]; then
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || { echo "rabbitmq-server is not installed (apt-get install rabbitmq-server) and BENCH_RABBITMQ is not set"; exit 1; }
  mkdir -p "$WORK/rmq"
  echo "[]." > "$WORK/rmq/enabled_plugins"
  printf 'loopback_users = none\nlisteners.tcp.default = 55672\n' > "$WORK/rmq/rabbitmq.conf"
  HOME="$WORK/rmq" RABBITMQ_NODENAME=fundament-bench@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=55672 \
    RABBITMQ_DIST_PORT=55673 RABBITMQ_MNESIA_BASE="$WORK/rmq/mnesia" RABBITMQ_LOG_BASE="$WORK/rmq/log" \
    RABBITMQ_CONFIG_FILE="$WORK/rmq/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$WORK/rmq/enabled_plugins" \
    nohup /usr/lib/rabbitmq/bin/rabbitmq-server >"$WORK/rmq/server.out" 2>&1 &
  RMQ_STARTED=1
  for _ in $(seq 1 60); do
    HOME="$WORK/rmq" /usr/lib/rabbitmq/bin/rabbitmqctl -n fundament-bench@localhost await_startup >/dev/null 2>&1 && break
    sleep 1
  done
  AMQP=amqp://guest:guest@127.0.0.1:55672/
fi

PASSWORD="Bench-Root-Password-77"
STORAGE=()
ENGINE=sqlite
if [ -n "${BENCH_POSTGRES:-}" ]; then
  STORAGE=(--Fundament:Storage:Provider=postgres "--ConnectionStrings:Fundament=$BENCH_POSTGRES" "--Fundament:MasterKey=$(head -c 32 /dev/urandom | base64 -w0)" --Fundament:Identity:Issuer=http://127.0.0.1)
  ENGINE=postgres
fi
if [ "${BENCH_TRANSPORT:-embedded}" = rabbitmq ]; then
  STORAGE+=("--Fundament:Messaging:RabbitMq:Uri=$AMQP" --Fundament:Messaging:RabbitMq:Prefix=bench)
  ENGINE="$ENGINE, RabbitMQ transport,"
else
  ENGINE="$ENGINE embedded"
fi
Fundament__Identity__BootstrapAdminPassword=$PASSWORD Logging__LogLevel__Default=Warning \
  "$WORK/bin/fundament" --urls http://127.0.0.1:5187 --data-dir "$WORK/data" --Fundament:Gateway:Urls=http://127.0.0.1:5188 "${STORAGE[@]}" >"$WORK/fundament.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -fs http://127.0.0.1:5187/health/ready >/dev/null 2>&1 && break; sleep 1; done
TOKEN=$(curl -s http://127.0.0.1:5187/api/v1/auth/login -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
BENCH="$WORK/client/MessageBench"
API=http://127.0.0.1:5187

echo "== warm-up ($ENGINE)"
"$BENCH" fundament "$API" "$TOKEN" 4 1 3 >/dev/null
"$BENCH" fundament "$API" "$TOKEN" 4 1 3 100 >/dev/null
"$BENCH" rabbitmq "$AMQP" 4 1 3 >/dev/null

echo "== $ROUNDS alternating rounds of ${SECONDS_PER_ROUND}s ($ENGINE vs RabbitMQ)"
: >"$WORK/results.txt"
for round in $(seq 1 "$ROUNDS"); do
  for pcb in "1 1 1" "16 4 1" "4 4 100"; do
    set -- $pcb
    "$BENCH" fundament "$API" "$TOKEN" "$1" "$2" "$SECONDS_PER_ROUND" "$3" | tee -a "$WORK/results.txt"
    "$BENCH" rabbitmq "$AMQP" "$1" "$2" "$SECONDS_PER_ROUND" "$3" | tee -a "$WORK/results.txt"
  done
done

python3 - "$WORK/results.txt" "$ENGINE" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    parts = line.split()
    if parts and parts[0] == "RESULT":
        rows[parts[1]].append(tuple(float(x) for x in parts[2:6]))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(4)) for k, v in rows.items()}
print(f"\n| {sys.argv[2]} vs raw RabbitMQ | Fundament consumed/s | RabbitMQ consumed/s | ratio | Fundament published/s (p50 / p99 ms) | RabbitMQ published/s (p50 / p99 ms) |")
print("|---|---|---|---|---|---|")
for p, c, b in ((1, 1, 1), (16, 4, 1), (4, 4, 100)):
    f, r = med[f"fundament-p{p}-c{c}-b{b}"], med[f"rabbitmq-p{p}-c{c}-b{b}"]
    how = "one message per publish" if b == 1 else f"{b} messages per publish (batch request / {b} confirms awaited together)"
    print(f"| {p} publisher{'s' if p > 1 else ''}, {c} consumer{'s' if c > 1 else ''}, {how} | {f[0]:.0f} | {r[0]:.0f} | {f[0] / r[0]:.2f}x | {f[1]:.0f} ({f[2]:.1f} / {f[3]:.1f}) | {r[1]:.0f} ({r[2]:.1f} / {r[3]:.1f}) |")
PY
