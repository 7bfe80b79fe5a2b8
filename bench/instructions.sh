#!/usr/bin/env bash
# Count the instructions the signer executes per signing request, under valgrind's
# callgrind: unlike time, the count hardly moves with what else the machine is doing,
# so it shows changes of a few percent that this shared host's noise hides in the
# throughput runs (bench/run.sh remains the measure of the targets).
#
#   bench/instructions.sh                    # tz1, 1,000 requests, in-memory watermarks
#   CURVES=tz1,tz4 REQUESTS=300 bench/instructions.sh
#   WATERMARK=file bench/instructions.sh
#   SIGNATORY_BIN=/path/to/other/signatory bench/instructions.sh   # another build
#
# One client sends the requests one after another (`signatory-bench latency`), so every
# signature is verified alone; the count is of user space only (no kernel), and SHA-256
# runs its portable code under valgrind, which lacks the SHA extensions.
set -euo pipefail

CURVES=${CURVES:-tz1}
REQUESTS=${REQUESTS:-1000}
WATERMARK=${WATERMARK:-mem}
SERVE_ARGS=${SERVE_ARGS:-}

command -v valgrind >/dev/null || { echo "valgrind is needed (Debian: apt-get install valgrind)" >&2; exit 1; }

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
make_signer 1 "$WATERMARK"

out=$work/callgrind.out
# shellcheck disable=SC2086
valgrind --tool=callgrind --callgrind-out-file="$out" \
  "$signatory" serve -c "$work/signatory.yaml" $SERVE_ARGS >"$work/serve.log" 2>&1 &
pid=$!
"$bench" wait --addr "$api" --seconds 600 || { cat "$work/serve.log" >&2; exit 1; }

# Signing requests answered so far, from the signer's own counter.
answered() {
  python3 - "$util" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics").read().decode()
print(int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
              if l.startswith("sign_handler_requests_total{"))))
PY
}

echo "| curve | requests | instructions per request |"
echo "|---|---:|---:|"
dump=0
for curve in ${CURVES//,/ }; do
  # Warm up (first series, allocator pools, lazy statics), then count only the run.
  "$bench" latency --addr "$api" --curve "$curve" -n 100 >/dev/null
  before=$(answered)
  callgrind_control --zero "$pid" >/dev/null 2>&1
  "$bench" latency --addr "$api" --curve "$curve" -n "$REQUESTS" --start-level 1000 >/dev/null
  callgrind_control --dump "$pid" >/dev/null 2>&1
  dump=$((dump + 1))
  requests=$(($(answered) - before))
  total=$(awk '/^(summary|totals):/ { print $2; exit }' "$out.$dump")
  echo "| $curve | $requests | $((total / requests)) |"
done
echo
echo "Watermarks: $WATERMARK store. $(valgrind --version), one client, user space only."
