#!/usr/bin/env bash
# Run Cohort's fuzz targets (fuzz/, cargo-fuzz + libFuzzer) for a bounded
# time each and report the executions.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
#   SECONDS_PER_TARGET  default 60
#   TARGET              cookie, config, decision, wasm_request (default: all)
#
#   FUZZ_SANITIZER      address (default) or none: none runs about 4x as many
#                       executions (decision: ~16,700/s against ~3,700/s
#                       here); the plugin has no unsafe code, so
#                       AddressSanitizer mostly watches its dependencies.
#
# Works on stable Rust: cargo-fuzz passes `-Z` flags, which stable accepts
# with RUSTC_BOOTSTRAP=1 (set here, for the fuzz builds only). Installs
# cargo-fuzz from crates.io if it is missing. Each target fuzzes a working
# corpus in fuzz/target/corpus/<target> (git-ignored), seeded from the
# committed fuzz/corpus/<target>, with the dictionary fuzz/dict/<target>.dict
# when there is one. A crash stops the run: the reproducer is written to
# fuzz/artifacts/<target>/ and the script exits non-zero. Turn every
# reproducer into a regression test (see fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=(cookie config decision wasm_request)
fi
sanitizer="${FUZZ_SANITIZER:-address}"

say() { printf 'fuzz: %s\n' "$*"; }

case "$seconds" in
    ''|*[!0-9]*) say "SECONDS_PER_TARGET must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    say "cargo-fuzz not found: installing it from crates.io (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

# The fuzz crate is its own workspace with its own target directory; do not
# let an outer build's settings (a cargo test that runs this script, say)
# move or re-flag it.
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS \
    RUSTC_WORKSPACE_WRAPPER CARGO_MAKEFLAGS MAKEFLAGS MFLAGS
export RUSTC_BOOTSTRAP=1

summary=()
status=0
for target in "${targets[@]}"; do
    features=()
    case "$target" in
        cookie|config|decision) ;;
        wasm_request) features=(--features wasm) ;;
        *) say "unknown target '$target' (cookie, config, decision, wasm_request)" >&2; exit 2 ;;
    esac
    work="fuzz/target/corpus/$target"
    seeds="fuzz/corpus/$target"
    mkdir -p "$work" "$seeds" "fuzz/artifacts/$target"
    dict=()
    if [ -f "fuzz/dict/$target.dict" ]; then
        dict=("-dict=fuzz/dict/$target.dict")
    fi
    log="fuzz/target/$target.log"

    say "building $target (sanitizer: $sanitizer)"
    started=$(date +%s)
    cargo fuzz build --sanitizer "$sanitizer" "${features[@]}" "$target"
    built=$(( $(date +%s) - started ))

    say "running $target for ${seconds}s (corpus $work, seeds $seeds)"
    started=$(date +%s)
    set +e
    # -timeout: one input may not take a minute (the first wasm_request input
    # also compiles the guest once per configuration).
    cargo fuzz run --sanitizer "$sanitizer" "${features[@]}" "$target" "$work" "$seeds" -- \
        -max_total_time="$seconds" -timeout=60 -print_final_stats=1 "${dict[@]}" \
        >"$log" 2>&1
    rc=$?
    set -e
    ran=$(( $(date +%s) - started ))
    execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log" | tail -n 1)
    execs="${execs:-?}"
    corpus=$(find "$work" -type f | wc -l | tr -d ' ')
    if [ "$rc" -ne 0 ]; then
        status=1
        say "$target FAILED after ${ran}s, $execs executions (exit $rc); the end of $log:" >&2
        tail -n 40 "$log" >&2
        artifact=$(sed -n 's/^.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        if [ -n "$artifact" ]; then
            say "reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${features[*]} $target $artifact" >&2
        fi
        summary+=("$(printf '%-13s FAILED  %10s execs  %5ss run  %4ss build' "$target" "$execs" "$ran" "$built")")
        break
    fi
    summary+=("$(printf '%-13s ok      %10s execs  %5ss run  %4ss build  %5s inputs in corpus' \
        "$target" "$execs" "$ran" "$built" "$corpus")")
done

say "summary (${seconds}s per target, sanitizer $sanitizer):"
for line in "${summary[@]}"; do
    say "  $line"
done
exit "$status"
