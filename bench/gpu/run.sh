#!/usr/bin/env bash
# GPU cost simulation: a week of queued analysis work against generated price, capacity and
# preemption traces for six offers of four providers, placed three ways (always-on on-demand,
# cheapest offer without failover, Fundament's planner). Anchor: "one on-demand provider, always on".
# Goal (issue 16): at least 2x cheaper than always-on at the same completion rate.
# Usage: bash bench/gpu/run.sh [seeds] [days]    (default 5 seeds, 7 days; --quick in bench/run.sh: 2 seeds, 2 days)
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet run --project bench/gpu/GpuSim -c Release -- "${1:-5}" "${2:-7}"
