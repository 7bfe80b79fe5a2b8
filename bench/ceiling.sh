#!/usr/bin/env bash
# What this host allows any signer: tz1 throughput of `signatory-bench ceiling` (the signer's
# HTTP stack doing only HTTP, then signing, then signing and verifying each signature alone,
# then with verification batched as the signer batches it; no policy, no
# watermark, no log, no metrics) interleaved with the real signer on in-memory and on
# durable file watermarks, ROUNDS times, with the same load. Prints Markdown.
#
#   bench/ceiling.sh                   # 3 rounds of 5-second runs, 32 clients, 100 keys
#   ROUNDS=5 DURATION=10 bench/ceiling.sh
set -euo pipefail

ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-32}
KEYS=${KEYS:-100}
DURATION=${DURATION:-5}

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
make_signer "$KEYS" file
"$bench" write-config --vault-file "$work/secret.json" --base-dir "$work/base" \
  --address "$api" --utility-address "$util" --watermark-driver mem \
  -o "$work/signatory-mem.yaml" >&2

# measure LABEL COMMAND...: start the server, load it, print one row, stop it.
measure() {
  local label=$1 row
  shift
  "$@" >"$work/server.log" 2>&1 &
  pid=$!
  "$bench" wait --addr "$api" --seconds 60 >/dev/null || { cat "$work/server.log" >&2; exit 1; }
  row=$("$bench" throughput --addr "$api" --server-pid "$pid" --curve tz1 -c "$CLIENTS" \
    -k "$KEYS" -d "$DURATION" | tail -n 1)
  # The row's cells after `| curve | scenario | clients | keys |`.
  echo "| $label | $round |${row#*|*|*|*|*|}"
  kill -TERM "$pid" && wait "$pid" || true
  pid=
}

echo "| server | round | signatures | signatures/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU µs/sig | load generator CPU µs/sig |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for round in $(seq 1 "$ROUNDS"); do
  for kind in http sign sign-verify sign-batch-verify; do
    measure "ceiling: $kind" "$bench" ceiling --vault-file "$work/secret.json" --addr "$api" --work "$kind"
  done
  measure "signatory, mem watermarks" "$signatory" serve -c "$work/signatory-mem.yaml"
  rm -rf "$work/base/watermarks"
  "$signatory" watermark init -c "$work/signatory.yaml" >/dev/null 2>&1
  measure "signatory, file watermarks" "$signatory" serve -c "$work/signatory.yaml"
done
echo
echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)."
