#!/usr/bin/env bash
# Every benchmark in one go, each against its anchor, written to bench/results/<date>.md with the
# machine it ran on. Usage: bash bench/run.sh [--quick]
#   --quick: shorter rounds and smaller data sets (a smoke of the scripts, not numbers to quote).
# Each benchmark states its anchor and goal in its own header (bench/<name>/run.sh) and in bench/README.md.
set -uo pipefail
cd "$(dirname "$0")/.."
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
DATE=$(date -u +%Y-%m-%d)
OUT="bench/results/$DATE.md"
mkdir -p bench/results
{
  echo "# Benchmarks, $DATE$([ $QUICK = 1 ] && echo " (quick: not numbers to quote)")"
  echo
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
  echo "- .NET: $(dotnet --version); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- the load generator shares the machine with what it measures"
} >"$OUT"

run() { # name, command...
  local name=$1; shift
  echo "== $name: $*"
  local log; log=$(mktemp)
  local started=$SECONDS
  if "$@" >"$log" 2>&1; then status=ok; else status="FAILED (exit $?)"; fi
  {
    echo
    echo "## $name ($status, $((SECONDS - started)) s)"
    echo
    echo '```'
    # The summary each script prints at its end: its tables and ratios.
    grep -E '^\||x,|x \(|RESULT|^round|cost|valid|ratio|/s' "$log" | grep -v '^debconf' | tail -n 40
    echo '```'
  } >>"$OUT"
  [ "$status" = ok ] || tail -n 20 "$log"
  rm -f "$log"
}

if [ $QUICK = 1 ]; then
  run gateway bash bench/gateway/run.sh 3 1
  run config bash bench/config/run.sh 3 1
  run audit bash bench/audit/run.sh 3 1
  run watch bash bench/watch/run.sh 200 1
  run media bash bench/media/run.sh 20 4 2
  run events bash bench/events/run.sh 3 1
  run messaging bash bench/messaging/run.sh 3 1
  run gpu bash bench/gpu/run.sh 2 2
else
  run gateway bash bench/gateway/run.sh 10 3
  run config bash bench/config/run.sh 10 3
  run audit bash bench/audit/run.sh 10 3
  run watch bash bench/watch/run.sh 1000 3
  run media bash bench/media/run.sh
  run events bash bench/events/run.sh 10 3
  run messaging bash bench/messaging/run.sh 10 3
  run gpu bash bench/gpu/run.sh 5 7
fi
echo "== written to $OUT"
cat "$OUT"
