# shellcheck shell=bash
# Shared by bench/run.sh and bench/instructions.sh: a release build, a temporary file vault
# filled by `signatory generate`, and a configuration on free loopback ports. Source it
# after `set -euo pipefail`; it sets `root`, `signatory`, `bench`, `work`, `api`, `util`
# and removes `work` (stopping the signer in `pid`, if any) on exit.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
cargo build --release --locked -p signatory -p signatory-bench >&2
target=${CARGO_TARGET_DIR:-$root/target}
# SIGNATORY_BIN compares another build (say, of an earlier commit) with the same harness.
signatory=${SIGNATORY_BIN:-$target/release/signatory}
bench=$target/release/signatory-bench

work=$(mktemp -d "${TMPDIR:-/tmp}/signatory-bench.XXXXXX")
pid=
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" && wait "$pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
api=127.0.0.1:$(free_port)
util=127.0.0.1:$(free_port)

# make_signer KEYS_PER_CURVE WATERMARK_DRIVER: the vault, $work/signatory.yaml enabling
# every key, and for the file store an initialised watermark directory.
make_signer() {
  local keys_per_curve=$1 driver=$2 t left n
  mkdir -p "$work/base"
  ( umask 077 && echo '[]' >"$work/secret.json" )
  cat >"$work/generate.yaml" <<YAML
base_dir: "$work/base"
vaults:
  local:
    driver: file
    config:
      file: "$work/secret.json"
YAML
  for t in tz1 tz2 tz3 tz4; do
    left=$keys_per_curve
    while ((left > 0)); do   # `generate` makes at most 100 keys per call
      n=$((left > 100 ? 100 : left))
      "$signatory" generate -c "$work/generate.yaml" -t "$t" --vault local -n "$n" >/dev/null
      left=$((left - n))
    done
  done
  "$bench" write-config --vault-file "$work/secret.json" --base-dir "$work/base" \
    --address "$api" --utility-address "$util" --watermark-driver "$driver" \
    -o "$work/signatory.yaml" >&2
  if [[ $driver == file ]]; then
    "$signatory" watermark init -c "$work/signatory.yaml" >&2
  fi
}
