#!/usr/bin/env bash
# Soak: one all-in-one Fundament process (SQLite) under mixed, paced load for a given time: logins,
# secret reads, configuration watches with a writer, gateway traffic to an upstream, photo uploads
# (each processed into thumbnails by a job). Samples RSS, GC heap, threads and open files every 10 s.
# Goals (issue 17): memory growth under 5% after warm-up, 0 errors, no handle growth.
# Usage: bash bench/soak/run.sh [minutes=60] [warm-up minutes=10]
set -euo pipefail
cd "$(dirname "$0")/../.."
MINUTES=${1:-60}
WARMUP=${2:-10}
WORK=$(mktemp -d /tmp/fundament-soak.XXXXXX)
PORT=5391
GWPORT=5392
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; }
trap cleanup EXIT

dotnet build -c Release src/Fundament.Server -v q -nologo >/dev/null
dotnet build -c Release bench/soak/Soak -v q -nologo >/dev/null
MALLOC_ARENA_MAX=2 src/Fundament.Server/bin/Release/net10.0/fundament --urls "http://127.0.0.1:$PORT" --data-dir "$WORK/data" \
  --Fundament:Gateway:Urls="http://127.0.0.1:$GWPORT" --Fundament:Identity:BootstrapAdminPassword=Soak-Password-123456 \
  --Logging:LogLevel:Default=Warning --Fundament:Jobs:PollInterval=00:00:00.5 \
  --Fundament:Quotas:Defaults:Requests:PerMinute=1000000 >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.2; done

echo "== soak: $MINUTES minutes, samples in $WORK/out/samples.csv"
bench/soak/Soak/bin/Release/net10.0/Soak "http://127.0.0.1:$PORT" "http://127.0.0.1:$GWPORT" "$PID" Soak-Password-123456 "$MINUTES" \
  tests/Fundament.Tests/Media/Fixtures/canon-paris.jpg "$WORK/out"
cat "$WORK/out/counts.txt"
python3 - "$WORK/out/samples.csv" "$WARMUP" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
warm = float(sys.argv[2]) * 60
after = [r for r in rows if float(r["seconds"]) >= warm]
if len(after) < 2:
    sys.exit("not enough samples after the warm-up")
first, last = after[0], after[-1]
def growth(k):
    a, b = float(first[k]), float(last[k])
    return (b - a) / a * 100 if a else float("nan")
peak_rss = max(float(r["rss_mb"]) for r in after)
print(f"after {warm/60:.0f} min of warm-up, over {(float(last['seconds']) - float(first['seconds']))/60:.0f} min:")
print(f"  RSS        {float(first['rss_mb']):.0f} MB -> {float(last['rss_mb']):.0f} MB ({growth('rss_mb'):+.1f}%), peak {peak_rss:.0f} MB")
print(f"  GC heap    {float(first['gc_heap_mb']):.0f} MB -> {float(last['gc_heap_mb']):.0f} MB")
print(f"  threads    {first['threads']} -> {last['threads']} (max {max(int(float(r['threads'])) for r in after)})")
print(f"  open files {first['open_files']} -> {last['open_files']} (max {max(int(r['open_files']) for r in after)})")
print(f"  requests   {last['requests']}, errors {last['errors']}")
PY
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
echo "work folder: $WORK"
