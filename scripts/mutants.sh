#!/usr/bin/env bash
# Mutation testing with cargo-mutants (configuration: .cargo/mutants.toml;
# surviving mutants that are equivalent, with reasons: mutants-equivalent.md).
#
#   bash scripts/mutants.sh                      every file of plugin/src, one at a time
#   bash scripts/mutants.sh plugin/src/config.rs [FILE...]   these files, one at a time
#   bash scripts/mutants.sh --in-diff [BASE]     only code changed since the merge
#                                                base with BASE (default: main)
#   bash scripts/mutants.sh --one-run FILE...    these files in one cargo-mutants run
#                                                (one first build instead of one per file)
#   bash scripts/mutants.sh --ci                 what CI runs: the plugin's code changed
#                                                since the merge base with origin/main (on
#                                                main itself: since HEAD^), at most
#                                                COHORT_MUTANTS_CI_MAX (120) mutants, a
#                                                deterministic shard of them when more
#
# One file (or one diff) per cargo-mutants run keeps the CPU bounded (-j 1)
# and each run short: on 2 cores the plugin's files take 2-12 minutes each.
# Files under plugin/src are mutated against cohort-plugin's tests; under
# harness/lower/src against http-wasm-lower's, harness/host/src against
# http-wasm-host's and harness/src against cohort-harness's (slower: every
# mutant relinks a test binary with wasmtime, and cohort-harness's suite
# runs real Traefiks). Results go to target/mutants/<file or diff>/mutants.out; the
# missed mutants are printed at the end. Exits 1 when any mutant was missed
# or timed out, 2 on a usage error.
#
# Needs cargo-mutants: `cargo install cargo-mutants --locked` (measured with
# 27.1.0).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "cargo-mutants is not installed: cargo install cargo-mutants --locked" >&2
    exit 2
fi

jobs="${COHORT_MUTANTS_JOBS:-1}"
status=0

package_of() {
    case "$1" in
        plugin/*) echo cohort-plugin ;;
        harness/lower/*) echo http-wasm-lower ;;
        harness/host/*) echo http-wasm-host ;;
        harness/test-support/*) echo cohort-test-support ;;
        harness/*) echo cohort-harness ;;
        *) echo "no package for $1 (plugin/src/..., harness/{lower,host,}/src/...)" >&2; exit 2 ;;
    esac
}

# Runs cargo mutants with `$@`, output in target/mutants/$1.
run() {
    local name="$1"
    shift
    local out="target/mutants/$name"
    mkdir -p "$out"
    echo "== cargo mutants $* (output: $out/mutants.out)"
    local started
    started=$(date +%s)
    rm -rf "$out/mutants.out"
    # cargo-mutants exits 2 when a mutant is missed, 3 on a timeout: the
    # counts below say which; anything else is a failure of the run itself.
    local rc=0
    cargo mutants -j "$jobs" -o "$out" "$@" || rc=$?
    case "$rc" in
        0 | 2 | 3) ;;
        *) echo "== cargo mutants failed (exit $rc)" >&2; status=1 ;;
    esac
    local dir="$out/mutants.out"
    if [ ! -f "$dir/caught.txt" ]; then
        echo "== $name: no mutant to test"
        return
    fi
    local caught missed timeout unviable
    caught=$(wc -l <"$dir/caught.txt")
    missed=$(wc -l <"$dir/missed.txt")
    timeout=$(wc -l <"$dir/timeout.txt")
    unviable=$(wc -l <"$dir/unviable.txt")
    local viable=$((caught + missed + timeout))
    if [ "$viable" -gt 0 ]; then
        echo "== $name: $caught caught, $timeout timed out, $missed missed of $viable viable" \
            "($unviable unviable): $(awk -v c="$caught" -v v="$viable" 'BEGIN { printf "%.1f", 100 * c / v }') % caught," \
            "$(( $(date +%s) - started )) s"
    else
        echo "== $name: no viable mutant"
    fi
    # Per file, when the run covered several.
    if [ "$(cut -d: -f1 "$dir"/{caught,missed,timeout}.txt | sort -u | wc -l)" -gt 1 ]; then
        cut -d: -f1 "$dir"/{caught,missed,timeout}.txt | sort -u | while read -r file; do
            local c m t
            c=$(grep -c "^$file:" "$dir/caught.txt" || true)
            m=$(grep -c "^$file:" "$dir/missed.txt" || true)
            t=$(grep -c "^$file:" "$dir/timeout.txt" || true)
            echo "   $file: $c caught, $t timed out, $m missed of $((c + m + t))"
        done
    fi
    if [ "$missed" -gt 0 ] || [ "$timeout" -gt 0 ]; then
        status=1
        cat "$dir/missed.txt" "$dir/timeout.txt"
    fi
}

if [ "${1:-}" = "--in-diff" ]; then
    base="${2:-main}"
    merge_base=$(git merge-base HEAD "$base")
    mkdir -p target/mutants
    diff_file="target/mutants/in-diff.patch"
    dirs=(plugin/src harness/lower/src harness/host/src harness/src)
    git diff "$merge_base" -- "${dirs[@]}" >"$diff_file"
    if [ ! -s "$diff_file" ]; then
        echo "nothing changed in ${dirs[*]} since $merge_base"
        exit 0
    fi
    for dir in "${dirs[@]}"; do
        if git diff --quiet "$merge_base" -- "$dir"; then
            continue
        fi
        package=$(package_of "$dir/")
        run "in-diff-$package" -p "$package" --in-diff "$diff_file"
    done
    exit "$status"
fi

if [ "${1:-}" = "--ci" ]; then
    # The change under test: against the merge base with origin/main, as
    # for a pull request; a clone of main itself (CI's fresh clone) has no
    # other base, so its last commit is the change. COHORT_MUTANTS_BASE
    # names another base.
    base="${COHORT_MUTANTS_BASE:-}"
    if [ -z "$base" ]; then
        if git rev-parse -q --verify origin/main >/dev/null &&
            [ "$(git merge-base HEAD origin/main)" != "$(git rev-parse HEAD)" ]; then
            base=$(git merge-base HEAD origin/main)
        else
            base=$(git rev-parse HEAD^)
        fi
    fi
    mkdir -p target/mutants
    diff_file="target/mutants/ci.patch"
    # Only the plugin: every harness mutant rebuilds wasmtime's users and
    # reruns the real-Traefik suite, minutes each (run those by file).
    git diff "$base" -- plugin/src >"$diff_file"
    if [ ! -s "$diff_file" ]; then
        echo "== mutants: nothing changed in plugin/src since $(git rev-parse --short "$base")"
        exit 0
    fi
    count=$(cargo mutants -p cohort-plugin --in-diff "$diff_file" --list | grep -c . || true)
    max="${COHORT_MUTANTS_CI_MAX:-120}"
    shard=()
    if [ "$count" -gt "$max" ]; then
        shards=$(((count + max - 1) / max))
        # The same shard for the same commit; another commit, another shard.
        k=$(($(git rev-parse HEAD | cut -c1-7 | xargs -I{} printf '%d' 0x{}) % shards))
        shard=(--shard "$k/$shards")
        echo "== mutants: $count mutants in the change since $(git rev-parse --short "$base"); testing shard $k/$shards"
    else
        echo "== mutants: $count mutants in the change since $(git rev-parse --short "$base")"
    fi
    run "ci-plugin" -p cohort-plugin --in-diff "$diff_file" "${shard[@]}"
    exit "$status"
fi

if [ "${1:-}" = "--one-run" ]; then
    shift
    [ "$#" -gt 0 ] || { echo "--one-run needs files" >&2; exit 2; }
    package=$(package_of "$1")
    args=()
    name="one-run"
    for file in "$@"; do
        name="$name-$(basename "$file" .rs)"
        [ -f "$file" ] || { echo "no such file: $file" >&2; exit 2; }
        [ "$(package_of "$file")" = "$package" ] || { echo "--one-run: one package at a time" >&2; exit 2; }
        args+=(-f "$file")
    done
    run "$name" -p "$package" "${args[@]}"
    exit "$status"
fi

if [ "$#" -eq 0 ]; then
    set -- plugin/src/{bucket,config,cookie,decision,net,pattern,scan,sticky_watch,values}.rs
fi
for file in "$@"; do
    if [ ! -f "$file" ]; then
        echo "no such file: $file" >&2
        exit 2
    fi
    name=$(basename "$file" .rs)
    run "$name" -p "$(package_of "$file")" -f "$file"
done
exit "$status"
