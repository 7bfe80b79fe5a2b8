#!/usr/bin/env bash
# Network vaults: each network driver against the test suite's fake of its service, which
# answers every call after DELAY_MS (20 by default), in one run. Per driver: CLIENTS (32)
# concurrent clients over as many tz3 keys for DURATION seconds (signatures/s, p50, p99),
# then one client for LATENCY_REQUESTS sequential requests, set beside the fake's own
# delay as its timer keeps it. Durable file watermarks. Prints Markdown.
#
#   bench/network.sh
#   DRIVERS="azure awskms" DURATION=5 bench/network.sh
set -euo pipefail

DRIVERS=${DRIVERS:-"awskms cloudkms azure hashicorpvault"}
DELAY_MS=${DELAY_MS:-20}
CLIENTS=${CLIENTS:-32}
DURATION=${DURATION:-10}
LATENCY_REQUESTS=${LATENCY_REQUESTS:-300}

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
fake=
stop_fake() {
  if [[ -n $fake ]] && kill -0 "$fake" 2>/dev/null; then
    kill -TERM "$fake" && wait "$fake" || true
  fi
  fake=
}
trap 'stop_fake; cleanup' EXIT

echo "## Network vaults against fakes answering after ${DELAY_MS} ms"
echo
for driver in $DRIVERS; do
  dir=$work/$driver
  mkdir -p "$dir/base"
  "$bench" fake-backend --driver "$driver" --delay-ms "$DELAY_MS" --keys "$CLIENTS" \
    --dir "$dir" 2>"$dir/fake.log" &
  fake=$!
  for _ in $(seq 100); do [[ -s $dir/delay ]] && break; sleep 0.1; done
  [[ -s $dir/delay ]] || { cat "$dir/fake.log" >&2; exit 1; }
  "$bench" write-config --pkhs-file "$dir/pkhs" --vault-yaml "$dir/vault.yaml" \
    --base-dir "$dir/base" --address "$api" --utility-address "$util" \
    -o "$dir/signatory.yaml" >&2
  "$signatory" watermark init -c "$dir/signatory.yaml" >&2
  "$signatory" serve -c "$dir/signatory.yaml" >"$dir/serve.log" 2>&1 &
  pid=$!
  "$bench" wait --addr "$api" --seconds 60 || { cat "$dir/serve.log" >&2; exit 1; }
  read -r delay_p50 delay_p99 <"$dir/delay"
  echo "### \`$driver\` (the fake's ${DELAY_MS} ms delay as its timer keeps it: p50 ${delay_p50} ms, p99 ${delay_p99} ms)"
  echo
  "$bench" run --addr "$api" --server-pid "$pid" --curves tz3 -n "$LATENCY_REQUESTS" \
    -c "$CLIENTS" -k "$CLIENTS" -d "$DURATION"
  echo
  kill -TERM "$pid" && wait "$pid" || true
  pid=
  stop_fake
done
echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)."
