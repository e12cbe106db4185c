"""Tests of the benchmark's report scripts: scripts/pprof-breakdown.py over
Go CPU profiles written here field by field, and scripts/bench_stats.py.

  python3 -m unittest discover -s scripts -p 'test_*.py'

(`cargo test` runs this through harness/tests/all/bench_scripts.rs.)
"""

import gzip
import importlib.util
import os
import tempfile
import unittest
from math import comb
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent


def load(name, file):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pprof = load("pprof_breakdown", "pprof-breakdown.py")
stats = load("bench_stats", "bench_stats.py")

SERVE = pprof.SERVE
NEXT = pprof.NEXT
GUEST = pprof.GUEST_CODE
HOST = pprof.HOST_CALL
NEW = pprof.NEW_GUEST


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, value):
    """One protobuf field: an int as a varint, bytes length-delimited."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def packed(numbers):
    return b"".join(varint(n) for n in numbers)


class Profile:
    """A Go CPU profile (profile.proto) with one location per stack frame,
    unless a frame is a tuple: then one location of inlined functions,
    innermost first, as Go writes them."""

    def __init__(self):
        self.strings = ["", "samples", "count", "cpu", "nanoseconds"]
        self.functions = {}
        self.locations = {}
        self.samples = []

    def string(self, s):
        if s not in self.strings:
            self.strings.append(s)
        return self.strings.index(s)

    def function(self, name):
        return self.functions.setdefault(name, len(self.functions) + 1)

    def location(self, frame):
        names = frame if isinstance(frame, tuple) else (frame,)
        return self.locations.setdefault(names, len(self.locations) + 1)

    def sample(self, ns, *frames, packed_values=True):
        """A sample of `ns` CPU nanoseconds; frames leaf first."""
        self.samples.append(([self.location(f) for f in frames], ns, packed_values))

    def encode(self):
        out = bytearray()
        for type_, unit in (("samples", "count"), ("cpu", "nanoseconds")):
            out += field(1, field(1, self.string(type_)) + field(2, self.string(unit)))
        for locs, ns, packed_values in self.samples:
            values = (field(2, packed([1, ns])) if packed_values
                      else field(2, 1) + field(2, ns))
            out += field(2, field(1, packed(locs)) + values)
        for names, loc_id in self.locations.items():
            lines = b"".join(field(4, field(1, self.function(n)) + field(2, 7)) for n in names)
            # An address (fixed64 would do as well; Go writes a varint).
            out += field(4, field(1, loc_id) + field(3, 0x401000) + lines)
        for name, fn_id in self.functions.items():
            out += field(5, field(1, fn_id) + field(2, self.string(name)))
        for s in self.strings:
            out += field(6, s.encode())
        # A fixed64 field (time_nanos is a varint in Go; this one exercises
        # the decoder's skip) and duration_nanos.
        out += varint(9 << 3 | 1) + (12345).to_bytes(8, "little")
        out += field(10, 2_000_000_000)
        return bytes(out)


def breakdown(profile, compress=True):
    data = profile.encode()
    if compress:
        data = gzip.compress(data)
    fd, path = tempfile.mkstemp(suffix=".pprof")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return pprof.breakdown(path)
    finally:
        os.unlink(path)


class PprofBreakdown(unittest.TestCase):
    def test_each_kind_of_sample_lands_in_its_columns(self):
        p = Profile()
        p.sample(1, GUEST)  # compiled wasm: no stack
        p.sample(10, HOST, "wazero.call", SERVE, "traefik.router")
        p.sample(100, "runtime.mallocgc", NEW, "sync.Pool.Get", SERVE, "traefik.router")
        p.sample(1000, "nethttp.getHeader", SERVE, "traefik.router")
        # In the next handler (the proxy): not the middleware's.
        p.sample(10_000, "proxy.ServeHTTP", NEXT, "wazero.call", SERVE, "traefik.router")
        # Not under any middleware.
        p.sample(100_000, "runtime.gcBgMarkWorker")
        self.assertEqual(breakdown(p), {
            "total": 111_111,
            "middleware": 1_111,
            "guest_code": 1,
            "host_calls": 10,
            "instantiate": 100,
        })

    def test_in_a_chain_a_sample_belongs_to_the_innermost_copy(self):
        p = Profile()
        # The first copy calls the second from its `next`, itself a host
        # call: what stands outside the innermost copy counts for nothing.
        outer = (NEXT, HOST, "wazero.call", SERVE)
        # The second copy's own work.
        p.sample(7, "nethttp.setHeader", SERVE, *outer)
        # The second copy's host call.
        p.sample(30, HOST, SERVE, *outer)
        # The proxy, below both copies.
        p.sample(500, "proxy.ServeHTTP", NEXT, HOST, SERVE, *outer)
        self.assertEqual(breakdown(p)["middleware"], 37)
        self.assertEqual(breakdown(p)["host_calls"], 30)
        self.assertEqual(breakdown(p)["total"], 537)

    def test_inlined_frames_count_like_their_own(self):
        p = Profile()
        p.sample(5, (HOST, "wazero.callGoFunc"), (SERVE, "inlined.caller"))
        p.sample(6, ("proxy.ServeHTTP", NEXT), SERVE)
        out = breakdown(p)
        self.assertEqual((out["middleware"], out["host_calls"], out["total"]), (5, 5, 11))

    def test_unpacked_values_and_an_uncompressed_file(self):
        p = Profile()
        p.sample(40, GUEST, packed_values=False)
        p.sample(2, NEW, SERVE, packed_values=False)
        out = breakdown(p, compress=False)
        self.assertEqual(out, {"total": 42, "middleware": 42, "guest_code": 40,
                               "host_calls": 0, "instantiate": 2})

    def test_the_nanoseconds_column_is_used_wherever_it_stands(self):
        p = Profile()
        p.sample(9, GUEST)
        self.assertEqual(breakdown(p)["guest_code"], 9)  # not the count, 1


class BenchStats(unittest.TestCase):
    def test_median_ci_is_the_order_statistics_of_the_binomial(self):
        for n in range(6, 60):
            values = [float(v) for v in range(n)]
            median, low, high = stats.median_ci(values[::-1])
            self.assertEqual(median, (n - 1) / 2)
            k = int(low) + 1  # the interval is the k-th and (n+1-k)-th values
            self.assertEqual(high, n - k)
            cover = 1 - 2 * sum(comb(n, j) for j in range(k)) / 2 ** n
            self.assertGreaterEqual(cover, 0.95, n)
            wider = 1 - 2 * sum(comb(n, j) for j in range(k + 1)) / 2 ** n
            self.assertLess(wider, 0.95, f"a narrower interval would do at n={n}")

    def test_median_ci_known_values(self):
        # n = 20: the 6th and 15th values (P(X <= 5) = 0.0207).
        self.assertEqual(stats.median_ci(list(range(1, 21))), (10.5, 6, 15))
        # Under 6 rounds no interval reaches 95 %.
        self.assertEqual(stats.median_ci([3, 1, 2, 5, 4]), (3, None, None))

    def test_copies(self):
        self.assertEqual(stats.copies("plain", 10), 0)
        self.assertEqual(stats.copies("headers", 10), 0)
        self.assertEqual(stats.copies("cohort-new", 10), 1)
        self.assertEqual(stats.copies("chain-cohort-new", 10), 10)

    def test_whole_us(self):
        self.assertEqual(stats.whole_us(-187.6, -250.2, 1234.5), ("-188 µs", "-250 to +1,234 µs"))
        self.assertEqual(stats.whole_us(3, None, None), ("+3 µs", "(under 6 rounds)"))

    def test_paired_table_differs_within_each_round(self):
        rounds = [str(n) for n in range(1, 9)]
        # b is a's value plus 10 in every round, whatever the round's level.
        value = {("a", n): 100.0 * int(n) for n in rounds}
        value.update({("b", n): 100.0 * int(n) + 10 for n in rounds})
        table = stats.paired_table("pair", [("a", "b")], rounds, lambda r, n: value[(r, n)])
        self.assertEqual(table.splitlines(), [
            "| pair | median difference | 95 % CI |",
            "|---|---:|---:|",
            "| a − b | -10 µs | -10 to -10 µs |",
        ])

    def test_extra_chain_pairs_leave_out_this_builds_and_the_calls_only_chains(self):
        routes = ["plain", "chain-noop", "chain-calls-returning", "chain-calls-new",
                  "chain-cohort-returning", "chain-cohort-new", "chain-s13-returning",
                  "chain-s13-new", "s13-returning"]
        self.assertEqual(stats.extra_chain_pairs(routes), [
            ("chain-s13-returning", "chain-cohort-returning"),
            ("chain-s13-new", "chain-cohort-new"),
        ])

    def written(self, text):
        """A temporary file holding `text`, removed after the test."""
        fd, path = tempfile.mkstemp()
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def test_load_profiles_keys_each_line_by_its_round_and_route(self):
        profiles = stats.load_profiles(self.written(
            '{"file": "/w/idle-profiles/3-chain-cohort-new.pprof", "instantiate": 7}\n'
            '{"file": "12-plain.pprof", "instantiate": 0}\n'))
        self.assertEqual(profiles[("3", "chain-cohort-new")]["instantiate"], 7)
        self.assertEqual(sorted(profiles), [("12", "plain"), ("3", "chain-cohort-new")])

    def test_load_runs(self):
        runs = stats.load_runs(self.written(
            "1\tnoop\t9000.5\t200\t900\t110.25\t18001\n"
            "2\tnoop\t8000\t210\t950\t111\t16000\n"))
        self.assertEqual(runs[("1", "noop")], (9000.5, 200.0, 900.0, 110.25, 18001))
        self.assertEqual(len(runs), 2)

    def test_load_prices_and_counts(self):
        prices = stats.load_prices(self.written(
            "base\tbase\t0\t-\tnone\nlines\tbase\t40\tline\t40 lines, one page\n"))
        self.assertEqual(prices[1], ("lines", "base", 40.0, "line", "40 lines, one page"))
        counts = stats.load_counts(self.written(
            "cohort\ttestdata\tbrowser-returning\t3507\t38\t6\t16\n"))
        self.assertEqual(counts[("cohort", "testdata", "browser-returning")], (3507, 38, 6, 16))

    def test_price_rows_divide_by_the_copies_and_then_the_units(self):
        medians = {("chain-price-lines", "chain-price-base"): (8.0, 6.0, 10.0),
                   ("chain-price-pages", "chain-price-lines"): (7.8, None, None),
                   ("chain-cohort-returning", "chain-calls-returning"): (13.0, 12.0, 15.0)}
        prices = [("base", "base", 0.0, "-", "none"), ("lines", "base", 40.0, "line", "40 lines"),
                  ("pages", "lines", 39.0, "page", "40 pages"), ("loop", "base", 3.472, "k", "loop")]
        counts = {("cohort", "testdata", "browser-returning"): (3507, 38, 6, 16),
                  ("calls-returning", "testdata", "browser-returning"): (24, 0, 0, 2)}
        routes = ["chain-price-base", "chain-price-lines", "chain-price-pages",
                  "chain-cohort-returning", "chain-calls-returning"]
        text = stats.price_rows(lambda a, b: medians[(a, b)], 10, prices, counts, routes)
        # 8.0 over 10 copies is 0.80 µs a copy, over 40 lines 20 ns a line.
        self.assertIn("| lines | 40 lines | base | +0.80 µs | +0.60 to +1.00 µs | +20.0 ns per line |", text)
        self.assertIn("| pages | 40 pages | lines | +0.78 µs | (under 6 rounds) | +20.0 ns per page |", text)
        # No route for the loop guest: no row.
        self.assertNotIn("| loop |", text)
        self.assertIn("+1.30 µs a copy (+1.20 to +1.50 µs)", text)
        self.assertIn("runs 3,507 guest instructions against calls-returning's 24", text)
        self.assertIn("touches 38 lines of its memory on 6 pages (16 functions)", text)
        # Without Cohort's chains there is no closing sentence.
        text = stats.price_rows(lambda a, b: medians[(a, b)], 10, prices, counts, routes[:3])
        self.assertNotIn("Cohort's own work", text)


if __name__ == "__main__":
    unittest.main()
