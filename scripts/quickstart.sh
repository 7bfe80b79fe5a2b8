#!/usr/bin/env bash
# Quick start on a fresh checkout: build the signer, prepare a local data directory, and
# run it with the example configuration and its PUBLIC TEST KEYS (examples/README.md).
#
#   scripts/quickstart.sh            # API on 127.0.0.1:6732, metrics/health on 127.0.0.1:9583
#
# Then, from another terminal:
#   curl http://127.0.0.1:6732/keys/tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx
#   curl http://127.0.0.1:9583/healthz
# Ctrl-C stops it. Watermarks are kept in ./.signatory/watermarks between runs.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=examples/signatory.yaml
BASE_DIR=./.signatory
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/release/signatory

echo "==> building signatory (release)"
cargo build --release -p signatory --locked

# Git records files as 0644; the signer refuses a key file others can read.
chmod 600 examples/secret.json

mkdir -p "$BASE_DIR"
if [[ ! -d $BASE_DIR/watermarks ]]; then
  echo "==> creating the watermark store in $BASE_DIR/watermarks"
  "$BIN" watermark init -c "$CONFIG" --base-dir "$BASE_DIR"
fi

"$BIN" config check -c "$CONFIG" --base-dir "$BASE_DIR"

echo "==> starting the signer (Ctrl-C to stop)"
exec "$BIN" serve -c "$CONFIG" --base-dir "$BASE_DIR" \
  --address 127.0.0.1:6732 --utility-address 127.0.0.1:9583
