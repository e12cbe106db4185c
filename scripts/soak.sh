#!/usr/bin/env bash
# The long soak and reload-safety runs of Cohort in a real Traefik 3.7.15
# (issue 5, items 4 and 5). CI runs short versions of the same code
# (`cargo test`, harness/tests/all/traefik_soak.rs); this runs the long ones:
#
#   bash scripts/soak.sh [REQUESTS] [RELOADS]
#
# REQUESTS (default 200000): requests of the soak after a 10,000-request
#   warm-up, and requests through the harness for guest memory per instance.
# RELOADS (default 30): dynamic-config reloads under traffic, done once with
#   Cohort, once with Cohort's module made inert and once with a no-op guest.
# COHORT_SOAK_THREADS (default 4): client threads, one keep-alive connection
#   each.
#
# Everything binds 127.0.0.1; Traefik and the whoami pods are stopped at the
# end. Each part stops at an hour whatever happens. The output (the tables
# of notes/soak.md) is also written to target/soak-<time>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS="${1:-200000}"
RELOADS="${2:-30}"
mkdir -p target
log="target/soak-$(date -u +%Y%m%dT%H%M%SZ).log"

{
    echo "# Cohort soak: $REQUESTS requests, $RELOADS reloads, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
    echo "traefik: $(traefik version 2>/dev/null | awk '/^Version:|^Go version:/ {printf "%s ", $0}')"
    echo "rustc: $(rustc --version)"
} | tee "$log"

start=$(date +%s)
COHORT_SOAK_REQUESTS="$REQUESTS" COHORT_SOAK_RELOADS="$RELOADS" \
    cargo test -p cohort-harness --test all -- \
    --ignored --nocapture --test-threads 1 traefik_soak::long_ 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
echo "wall time: $(( $(date +%s) - start )) s; log: $log" | tee -a "$log"
exit "$status"
