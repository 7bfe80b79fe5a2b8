#!/usr/bin/env bash
# Benchmark a real signatory: release build, a temporary file vault with KEYS_PER_CURVE keys
# of each curve made by `signatory generate`, file watermarks (in-memory with WATERMARK=mem),
# then latency and throughput per curve with signatory-bench, and the server's resident
# memory. Prints Markdown.
#
#   bench/run.sh                      # defaults below
#   DURATION=5 CURVES=tz1 bench/run.sh
#   WATERMARK=mem bench/run.sh        # what durability costs: compare with the default run
set -euo pipefail

KEYS_PER_CURVE=${KEYS_PER_CURVE:-250}   # 4 curves x 250 = 1,000 keys enabled
THROUGHPUT_KEYS=${THROUGHPUT_KEYS:-100}
CLIENTS=${CLIENTS:-32}
DURATION=${DURATION:-10}
LATENCY_REQUESTS=${LATENCY_REQUESTS:-5000}
CURVES=${CURVES:-tz1,tz2,tz3,tz4}
BENCH_THREADS=${BENCH_THREADS:-1}
SERVE_ARGS=${SERVE_ARGS:-}              # e.g. "--log warn"
WATERMARK=${WATERMARK:-file}            # mem: no durability, to see what the disk costs

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
make_signer "$KEYS_PER_CURVE" "$WATERMARK"

# shellcheck disable=SC2086
"$signatory" serve -c "$work/signatory.yaml" $SERVE_ARGS >"$work/serve.log" 2>&1 &
pid=$!
"$bench" wait --addr "$api" --seconds 60 || { cat "$work/serve.log" >&2; exit 1; }

status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
rss_idle=$(status_kb VmRSS)

echo "## Signing service"
echo
"$bench" run --addr "$api" --server-pid "$pid" --curves "$CURVES" -n "$LATENCY_REQUESTS" -c "$CLIENTS" \
  -k "$THROUGHPUT_KEYS" -d "$DURATION" --threads "$BENCH_THREADS"
rss_after=$(status_kb VmRSS)
rss_peak=$(status_kb VmHWM)
keys=$(grep -c '^  tz' "$work/signatory.yaml")
echo
echo "| server memory ($keys keys enabled) | KiB |"
echo "|---|---:|"
echo "| VmRSS after start | $rss_idle |"
echo "| VmRSS after the runs | $rss_after |"
echo "| VmHWM (peak) | $rss_peak |"
echo
echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
  "$(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo);" \
  "watermarks: $WATERMARK store; base directory on $(df -T "$work" | awk 'NR == 2 { print $2 }')."
# The floor under every signature: the store fdatasyncs the reservation, then the signature.
python3 - "$work/base" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
ts = []
for _ in range(500):
    os.write(fd, b"x" * 128)
    t = time.perf_counter(); os.fdatasync(fd); ts.append(time.perf_counter() - t)
os.close(fd); os.unlink(path)
ts.sort()
q = lambda p: ts[min(len(ts) - 1, int(p * len(ts)))] * 1e3
print(f"fdatasync of a 128-byte append on that filesystem (500 runs, after the benchmark): "
      f"p50 {q(0.5):.3f} ms, p99 {q(0.99):.3f} ms.")
PY
echo "Signer log lines: $(wc -l <"$work/serve.log")"
