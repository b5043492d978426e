"""Reads wrk --latency output on stdin; prints 'requests/s p50-ms p99-ms non-2xx' (and max-ms with --max)."""
import re
import sys

text = sys.stdin.read()


def ms(value):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        sys.exit("cannot read latency " + repr(value) + " in:\n" + text)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[m.group(2)]


rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
line = f"{rps:.0f} {p50:.2f} {p99:.2f} {errors.group(1) if errors else 0}"
if "--max" in sys.argv:
    worst = ms(re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", text, re.M).group(1))
    line += f" {worst:.2f}"
print(line)
