#!/usr/bin/env bash
# The pkcs11 vault on SoftHSM2 next to the file vault, in one run: the same tz1 and tz3 keys
# in a file vault and imported into a SoftHSM2 token, each signer benchmarked in turn
# (ROUNDS times, alternating, durable file watermarks for both), then what the driver adds
# to a raw C_Sign on the same token (signatory-bench pkcs11-overhead). Prints Markdown.
#
#   bench/pkcs11.sh
#   ROUNDS=1 DURATION=5 bench/pkcs11.sh
set -euo pipefail

KEYS_PER_CURVE=${KEYS_PER_CURVE:-50}
THROUGHPUT_KEYS=${THROUGHPUT_KEYS:-50}
CLIENTS=${CLIENTS:-32}
DURATION=${DURATION:-10}
LATENCY_REQUESTS=${LATENCY_REQUESTS:-3000}
ROUNDS=${ROUNDS:-2}
LIBRARY=${PKCS11_LIBRARY:-/usr/lib/softhsm/libsofthsm2.so}
PIN=1234

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
make_signer "$KEYS_PER_CURVE" file

mkdir -p "$work/softhsm/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$work/softhsm/tokens" >"$work/softhsm/softhsm2.conf"
export SOFTHSM2_CONF=$work/softhsm/softhsm2.conf
token_slot() {
  softhsm2-util --init-token --free --label "$1" --so-pin 5678 --pin "$PIN" |
    sed -n 's/.*reassigned to slot //p'
}
slot=$(token_slot bench)
overhead_slot=$(token_slot overhead)
cat >"$work/hsm-vault.yaml" <<YAML
  hsm:
    driver: pkcs11
    config:
      library_path: "$LIBRARY"
      slot: $slot
      pin: "$PIN"
YAML

for vault in file hsm; do
  mkdir -p "$work/base-$vault"
  extra=()
  [[ $vault == hsm ]] && extra=(--vault-yaml "$work/hsm-vault.yaml")
  "$bench" write-config --vault-file "$work/secret.json" --base-dir "$work/base-$vault" \
    --address "$api" --utility-address "$util" --curves tz1,tz3 "${extra[@]}" \
    -o "$work/$vault.yaml" >&2
  "$signatory" watermark init -c "$work/$vault.yaml" >&2
done
# The same keys into the token, through the signer's own `import`.
python3 - "$work/secret.json" <<'PY' >"$work/import-keys"
import json, sys
for entry in json.load(open(sys.argv[1])):
    value = entry["value"].split(":", 1)[-1]
    if value.startswith(("edsk", "p2sk")):
        print(value)
PY
while read -r secret; do
  "$signatory" import -c "$work/hsm.yaml" --vault hsm "$secret" >/dev/null
done <"$work/import-keys"

echo "## The pkcs11 vault (SoftHSM2) next to the file vault"
echo
for ((round = 1; round <= ROUNDS; round++)); do
  for vault in file hsm; do
    "$signatory" serve -c "$work/$vault.yaml" >"$work/serve-$vault.log" 2>&1 &
    pid=$!
    "$bench" wait --addr "$api" --seconds 60 || { cat "$work/serve-$vault.log" >&2; exit 1; }
    echo "### Round $round, vault \`$([[ $vault == hsm ]] && echo pkcs11 || echo file)\`"
    echo
    "$bench" run --addr "$api" --server-pid "$pid" --curves tz1,tz3 -n "$LATENCY_REQUESTS" \
      -c "$CLIENTS" -k "$THROUGHPUT_KEYS" -d "$DURATION" --start-level $((round * 10000000 + 1))
    echo
    kill -TERM "$pid" && wait "$pid" || true
    pid=
  done
done

echo "### What the driver adds to a raw C_Sign (one process, alternating rounds)"
echo
"$bench" pkcs11-overhead --library "$LIBRARY" --slot "$overhead_slot" --pin "$PIN" -n 5000
echo
echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo);" \
  "SoftHSM2 $(softhsm2-util --version)."
