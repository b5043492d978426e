#!/usr/bin/env bash
# Benchmark: Fundament's media ingest against the shell pipeline a user would otherwise script,
# on the same generated camera photos, in one run.
#   shell:      per file `exiftool -json` + two `vipsthumbnail` calls (1280 and 256, WebP),
#               run in parallel with xargs -P <cores>
#   bare vips:  the physical limit (bench/media/BareVips): the same two thumbnails per file with
#               NetVips and shrink-on-load, <cores> files at a time, and nothing else (no upload,
#               hashing, metadata, database or job queue). Goal (issue 19): ingest at 0.8x of it.
#   fundament:  multipart upload of every file (4 at a time) to one all-in-one process on a fresh
#               SQLite data folder, until every asset is `ready` (metadata + both thumbnails,
#               job concurrency = cores)
# Then the 50-megapixel memory check: a fresh process ingests 50 MP photos and its peak resident
# memory (VmHWM) is read from /proc. Fundament runs with MALLOC_ARENA_MAX=2, as the container image
# does; the 50 MP run is repeated with glibc's default arenas for comparison.
# Usage: bash bench/media/run.sh [photos=200] [megapixels=12] [big-photos=12] [reuse-work-dir]
# (a work dir from an earlier run with the same counts skips generating the photos)
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=${1:-200}
MP=${2:-12}
BIG=${3:-12}
CORES=$(nproc)
REUSE=${4:-}
WORK=${REUSE:-$(mktemp -d /tmp/fundament-media-bench.XXXXXX)}
PORT=5381
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; }
trap cleanup EXIT

for tool in vips vipsthumbnail exiftool curl python3; do
  command -v "$tool" >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq --no-install-recommends libvips-tools libimage-exiftool-perl curl >/dev/null; break; }
done

# Photos: W×H at the given megapixels (3:2), camera-like content (noise over a gradient, so JPEG
# sizes are realistic), quality 90, then camera EXIF written by exiftool.
make_photos() { # dir count megapixels
  local dir=$1 n=$2 mp=$3
  mkdir -p "$dir"
  local w h
  w=$(python3 -c "import math;print(int(math.sqrt($mp*1e6*3/2)))"); h=$(python3 -c "print(int($w*2/3))")
  vips gaussnoise "$WORK/noise.v" "$w" "$h" --sigma 40 --mean 128
  vips xyz "$WORK/xyz.v" "$w" "$h"
  vips extract_band "$WORK/xyz.v" "$WORK/x.v" 0
  vips linear "$WORK/x.v" "$WORK/xs.v" "$(python3 -c "print(100/$w)")" 0
  vips add "$WORK/noise.v" "$WORK/xs.v" "$WORK/sum.v"
  vips cast "$WORK/sum.v" "$WORK/g.v" uchar
  vips bandjoin "$WORK/g.v $WORK/g.v $WORK/g.v" "$WORK/rgb.v"
  vips copy "$WORK/rgb.v" "$dir/base.jpg[Q=90]"
  rm -f "$WORK"/*.v
  for i in $(seq -w 1 "$n"); do
    # Every file differs (one byte in a comment), so nothing is deduplicated.
    cp "$dir/base.jpg" "$dir/IMG_$i.jpg"
  done
  rm "$dir/base.jpg"
  exiftool -q -overwrite_original -Make=Canon "-Model=Canon EOS R5" "-LensModel=RF24-105mm F4 L IS USM" \
    "-DateTimeOriginal=2024:06:01 14:30:05" -OffsetTimeOriginal=+02:00 -GPSLatitude=48.8584 -GPSLatitudeRef=N \
    -GPSLongitude=2.2945 -GPSLongitudeRef=E -Orientation#=1 -ExposureTime=0.004 -FNumber=4 -ISO=200 '-Comment<FileName' "$dir" >/dev/null
}

if [ -z "$REUSE" ]; then
  echo "== generating $COUNT photos of ${MP} MP and $BIG of 50 MP in $WORK"
  make_photos "$WORK/photos" "$COUNT" "$MP"
  make_photos "$WORK/big" "$BIG" 50
fi
rm -rf "$WORK/shell-out" "$WORK/data" "$WORK/data-big"
du -sh "$WORK/photos" "$WORK/big"

echo "== shell pipeline: exiftool -json + 2x vipsthumbnail per file, xargs -P $CORES"
mkdir -p "$WORK/shell-out"
cat >"$WORK/one.sh" <<'ONE'
#!/usr/bin/env bash
f=$1; out=$2; b=$(basename "$f" .jpg)
exiftool -json "$f" >"$out/$b.json"
vipsthumbnail "$f" -s 1280 -o "$out/${b}-large.webp[Q=80]"
vipsthumbnail "$f" -s 256 -o "$out/${b}-small.webp[Q=80]"
ONE
chmod +x "$WORK/one.sh"
sync
start=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$WORK/shell-mem" bash -c "ls '$WORK'/photos/*.jpg | xargs -P $CORES -I{} '$WORK/one.sh' {} '$WORK/shell-out'"
shell_s=$(python3 -c "print($(date +%s.%N)-$start)")
shell_fps=$(python3 -c "print(round($COUNT/$shell_s,2))")
echo "shell: ${shell_s}s, $shell_fps files/s, largest single process $(cat "$WORK/shell-mem") KB"

echo "== bare NetVips loop: the same two thumbnails per file, $CORES at a time, nothing else"
dotnet build -c Release bench/media/BareVips -v q -nologo >/dev/null
rm -rf "$WORK/bare-out"
sync
read -r bare_s bare_fps < <(bench/media/BareVips/bin/Release/net10.0/BareVips "$WORK/photos" "$WORK/bare-out" "$CORES")
echo "bare vips: ${bare_s}s, $bare_fps files/s"

dotnet build -c Release src/Fundament.Server -v q -nologo >/dev/null
BIN=src/Fundament.Server/bin/Release/net10.0/fundament

start_server() { # data-dir [arena-max]
  rm -rf "$1"
  env ${2:+MALLOC_ARENA_MAX=$2} "$BIN" --urls "http://127.0.0.1:$PORT" --data-dir "$1" --Fundament:Identity:BootstrapAdminPassword=Bench-Password-123456 \
    --roles control,media,media-worker --Logging:LogLevel:Default=Warning --Fundament:Jobs:PollInterval=00:00:00.2 \
    --Fundament:Media:MaxUploadBytes=1073741824 >"$1.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.2; done
  TOKEN=$(curl -s -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"Bench-Password-123456"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
}

ingest() { # dir count -> seconds until all ready
  local dir=$1 n=$2 t0
  t0=$(date +%s.%N)
  ls "$dir"/*.jpg | xargs -P 4 -I{} curl -sf -o /dev/null -H "authorization: Bearer $TOKEN" -F file=@{} "http://127.0.0.1:$PORT/api/v1/media"
  while true; do
    ready=$(curl -s -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/media/stats" | python3 -c '
import sys,json
s=json.load(sys.stdin)
print(sum(b["count"] for b in s["buckets"] if b["state"] in ("ready","failed")))')
    [ "$ready" -ge "$n" ] && break
    sleep 0.1
  done
  python3 -c "print($(date +%s.%N)-$t0)"
}

echo "== fundament: multipart upload x4 until all ready"
start_server "$WORK/data" 2
fund_s=$(ingest "$WORK/photos" "$COUNT")
fund_fps=$(python3 -c "print(round($COUNT/$fund_s,2))")
fund_mem=$(awk '/VmHWM/{print $2}' /proc/$PID/status)
failed=$(curl -s -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/media/stats" | python3 -c 'import sys,json;print(json.load(sys.stdin)["failureRate"])')
stats=$(curl -s -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/media/stats" | python3 -c 'import sys,json;s=json.load(sys.stdin);print("p50 %s ms, p95 %s ms per asset" % (s["processingP50Ms"], s["processingP95Ms"]))')
echo "fundament: ${fund_s}s, $fund_fps files/s, peak RSS $((fund_mem/1024)) MB, failure rate $failed, $stats"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=

echo "== fundament, 50 MP photos: peak memory"
start_server "$WORK/data-big" 2
big_s=$(ingest "$WORK/big" "$BIG")
big_mem=$(awk '/VmHWM/{print $2}' /proc/$PID/status)
echo "fundament 50 MP: ${big_s}s for $BIG files, peak RSS $((big_mem/1024)) MB"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
start_server "$WORK/data-big"
big2_s=$(ingest "$WORK/big" "$BIG")
big2_mem=$(awk '/VmHWM/{print $2}' /proc/$PID/status)
echo "fundament 50 MP, default malloc arenas: ${big2_s}s for $BIG files, peak RSS $((big2_mem/1024)) MB"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=

echo
echo "| | files/s | time | peak memory |"
echo "|---|---|---|---|"
echo "| shell (exiftool + 2x vipsthumbnail, -P $CORES) | $shell_fps | ${shell_s%.*} s | $(( $(cat "$WORK/shell-mem") / 1024 )) MB (largest process) |"
echo "| bare NetVips loop (2 thumbnails, -P $CORES, nothing else) | $bare_fps | ${bare_s%.*} s | |"
echo "| Fundament ingest (upload + metadata + 2 thumbnails) | $fund_fps | ${fund_s%.*} s | $((fund_mem/1024)) MB |"
echo "| Fundament, 50 MP photos | $(python3 -c "print(round($BIG/$big_s,2))") | ${big_s%.*} s | $((big_mem/1024)) MB |"
echo "| Fundament, 50 MP photos, glibc default arenas | $(python3 -c "print(round($BIG/$big2_s,2))") | ${big2_s%.*} s | $((big2_mem/1024)) MB |"
echo "ratio fundament/shell: $(python3 -c "print(round($fund_fps/$shell_fps,2))")x (goal 1.5x)"
echo "ratio fundament/bare NetVips loop: $(python3 -c "print(round($fund_fps/$bare_fps,2))")x (goal 0.8x); 50 MP peak $((big_mem/1024)) MB (goal under 300 MB)"
if [ -z "$REUSE" ]; then rm -rf "$WORK"; fi
