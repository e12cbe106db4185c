"""Statistics shared by the report blocks of scripts/bench-traefik.sh."""

import json
import os
import statistics
from math import comb


def load_runs(path):
    """A results file (round, route, req/s, p50 µs, p99 µs, CPU/req µs,
    requests, tab-separated) as {(round, route): (rps, p50, p99, cpu, requests)}."""
    runs = {}
    with open(path) as f:
        for line in f:
            rnd, route, rps, p50, p99, cpu, requests = line.strip().split("\t")
            runs[(rnd, route)] = (float(rps), float(p50), float(p99), float(cpu), int(requests))
    return runs


def median_ci(values):
    """The median and a distribution-free 95 % confidence interval for it
    from the order statistics; `None` for the interval with under 6 rounds,
    where even the whole range covers less than 95 %."""
    values = sorted(values)
    n, k, cdf = len(values), 0, 0.0
    for j in range(n):
        cdf += comb(n, j) / 2 ** n
        if cdf > 0.025:
            break
        k = j + 1
    if k == 0:
        return statistics.median(values), None, None
    return statistics.median(values), values[k - 1], values[n - k]


def copies(route, chain):
    """How many copies of a guest a route runs: none on plain and headers."""
    return 0 if route in ("plain", "headers") else chain if route.startswith("chain-") else 1


def whole_us(m, lo, hi):
    """A median and its interval as whole microseconds, signed."""
    ci = "(under 6 rounds)" if lo is None else f"{lo:+,.0f} to {hi:+,.0f} µs"
    return f"{m:+,.0f} µs", ci


def paired_table(title, pairs, rounds, value):
    """The markdown rows of `value(a, round) - value(b, round)` for each pair
    (a, b): the median over the rounds and its 95 % interval."""
    rows = [f"| {title} | median difference | 95 % CI |", "|---|---:|---:|"]
    for a, b in pairs:
        m, ci = whole_us(*median_ci([value(a, n) - value(b, n) for n in rounds]))
        rows.append(f"| {a} − {b} | {m} | {ci} |")
    return "\n".join(rows)


def extra_chain_pairs(routes):
    """(chain route, Cohort's chain of the same shape) for every chain that
    is neither Cohort's nor the calls-only guest's: the EXTRA_WASM builds'
    chains, compared with this build's."""
    return [(r, "chain-cohort-" + shape) for shape in ("returning", "new") for r in routes
            if r.startswith("chain-") and r.endswith("-" + shape)
            and r not in ("chain-cohort-" + shape, "chain-calls-" + shape)]


def load_profiles(path):
    """scripts/pprof-breakdown.py's lines, each profile named
    `<round>-<route>.pprof`, as {(round, route): its fields}."""
    profiles = {}
    with open(path) as f:
        for line in f:
            p = json.loads(line)
            rnd, route = os.path.basename(p["file"])[:-len(".pprof")].split("-", 1)
            profiles[(rnd, route)] = p
    return profiles
