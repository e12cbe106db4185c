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


def load_prices(path):
    """bench_guests' prices.tsv (name, baseline, units, unit, work) as a
    list of those tuples, units a float."""
    prices = []
    with open(path) as f:
        for line in f:
            name, baseline, units, unit, work = line.rstrip("\n").split("\t")
            prices.append((name, baseline, float(units), unit, work))
    return prices


def load_counts(path):
    """bench_guests' counts.tsv (guest, config, shape, fuel, lines, pages,
    functions) as {(guest, config, shape): (fuel, lines, pages, functions)}."""
    counts = {}
    with open(path) as f:
        for line in f:
            guest, config, shape, *numbers = line.rstrip("\n").split("\t")
            counts[(guest, config, shape)] = tuple(int(n) for n in numbers)
    return counts


def per_copy(m, lo, hi, chain):
    """A chain difference's median and interval divided by its copies."""
    return tuple(None if v is None else v / chain for v in (m, lo, hi))


def price_rows(diff, chain, prices, counts, routes):
    """The markdown of what each price guest costs per copy over its
    baseline (chain-price-NAME − chain-price-BASELINE, ÷ chain) and per unit
    of its work, then Cohort's own work on a returning browser, per copy,
    with what the harness counts of it (`diff(a, b)` is the per-round
    difference of two routes' CPU/req: median, low, high)."""
    rows = ["| price guest | its work | over | per copy | 95 % CI | per unit |",
            "|---|---|---|---:|---:|---:|"]
    for name, baseline, units, unit, work in prices:
        a, b = f"chain-price-{name}", f"chain-price-{baseline}"
        if name == baseline or a not in routes or b not in routes:
            continue
        m, lo, hi = per_copy(*diff(a, b), chain)
        ci = "(under 6 rounds)" if lo is None else f"{lo:+.2f} to {hi:+.2f} µs"
        rows.append(f"| {name} | {work} | {baseline} | {m:+.2f} µs | {ci} | "
                    f"{m / units * 1000:+.1f} ns per {unit} |")
    own = ("chain-cohort-returning", "chain-calls-returning")
    cohort = counts.get(("cohort", "testdata", "browser-returning"))
    calls = counts.get(("calls-returning", "testdata", "browser-returning"))
    if all(r in routes for r in own) and cohort and calls:
        m, lo, hi = per_copy(*diff(*own), chain)
        ci = "under 6 rounds" if lo is None else f"{lo:+.2f} to {hi:+.2f} µs"
        fuel, lines, pages, functions = cohort
        rows.append("")
        rows.append(
            f"Beside them, Cohort's own work on a returning browser, ({own[0]} − {own[1]}) ÷ "
            f"{chain}: {m:+.2f} µs a copy ({ci}). In the harness that request runs {fuel:,} "
            f"guest instructions against calls-returning's {calls[0]:,}, and touches {lines} lines "
            f"of its memory on {pages} pages ({functions} functions) against calls-returning's "
            f"{calls[1]} lines; Cohort's lines include those holding the request's Cookie and "
            f"URI, which the host has just written into both guests' memories.")
    return "\n".join(rows)
