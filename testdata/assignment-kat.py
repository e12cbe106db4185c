#!/usr/bin/env python3
"""Known answers for Cohort's assignment formula, computed without Rust.

Run `python3 testdata/assignment-kat.py > testdata/assignment-kat.json`.
Only the standard library (hashlib, math, json): nothing here shares code
with the plugin, so `plugin/tests/assignment_kat.rs` checks the plugin
against the formula as documented (README, plugin/src/bucket.rs), not
against itself.

The formula (weighted rendezvous hashing):

    h   = first 8 bytes, big-endian, of
          SHA-256(u32be(len(seed)) || seed || u32be(len(v)) || v || key)
    u_v = ((h >> 11) + 1) / 2**53                    in (0, 1]
    winner = argmin over the ACTIVE variants with weight > 0 of
             -ln(u_v) / w_v                          (w_v in basis points)

and `bucket_of` is the winner, or the default variant when no active
variant has weight. That is `assignmentHash: sha256`, the default; under
`assignmentHash: siphash` the draw is instead

    K_v = first 16 bytes of SHA-256(u32be(len(seed)) || seed || u32be(len(v)) || v)
    h   = SipHash-2-4 of key under K_v (k0, k1 = K_v[0:8], K_v[8:16], little-endian)

with u_v and the winner as above. SipHash is written out below and checked
against the paper's reference vectors before anything is printed. Drained and disabled variants take no part in the draw
(their weights still count towards the configuration's 100 %).

Also the one-off draws and visitor ids of IdGenerator (SplitMix64 and a
SHA-256 chain), the one-off weighted pick, and Traefik's sticky-cookie values for a weighted child `name`: the first
16 hex digits of SHA-256(name) (Traefik >= 3.3.4) and FNV-1 (not 1a) 64-bit
as Go's `%x` (no leading zeros; Traefik < 3.3.4).
"""

import hashlib
import json
import math
import struct

FULL = 10_000  # basis points


def draw(seed: bytes, variant: bytes, key: bytes):
    """(h, m, u) with u = m / 2**53 and m = (h >> 11) + 1."""
    data = (
        struct.pack(">I", len(seed)) + seed + struct.pack(">I", len(variant)) + variant + key
    )
    h = int.from_bytes(hashlib.sha256(data).digest()[:8], "big")
    m = (h >> 11) + 1
    return h, m, m / 2.0**53


MASK = 2**64 - 1


def rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & MASK


def siphash24(k: bytes, m: bytes) -> int:
    """SipHash-2-4 as the paper (Aumasson, Bernstein 2012) defines it."""
    k0 = int.from_bytes(k[:8], "little")
    k1 = int.from_bytes(k[8:16], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D,
         k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rounds(n):
        for _ in range(n):
            v[0] = (v[0] + v[1]) & MASK; v[1] = rotl(v[1], 13) ^ v[0]; v[0] = rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & MASK; v[3] = rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & MASK; v[3] = rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & MASK; v[1] = rotl(v[1], 17) ^ v[2]; v[2] = rotl(v[2], 32)

    end = len(m) - len(m) % 8
    blocks = [int.from_bytes(m[i:i + 8], "little") for i in range(0, end, 8)]
    blocks.append(int.from_bytes(m[end:], "little") | ((len(m) & 0xFF) << 56))
    for b in blocks:
        v[3] ^= b
        rounds(2)
        v[0] ^= b
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


# The reference implementation's vectors: key 00..0f, message 00..(n-1).
_REF_KEY = bytes(range(16))
assert siphash24(_REF_KEY, b"") == 0x726FDB47DD0E0E31
assert siphash24(_REF_KEY, bytes(range(7))) == 0xAB0200F58B01D137
assert siphash24(_REF_KEY, bytes(range(8))) == 0x93F5F5799A932462
assert siphash24(_REF_KEY, bytes(range(15))) == 0xA129CA6149BE45E5


def sip_key(seed: bytes, variant: bytes) -> bytes:
    data = struct.pack(">I", len(seed)) + seed + struct.pack(">I", len(variant)) + variant
    return hashlib.sha256(data).digest()[:16]


def sip_draw(seed: bytes, variant: bytes, key: bytes):
    """(h, m, u) under assignmentHash: siphash."""
    h = siphash24(sip_key(seed, variant), key)
    m = (h >> 11) + 1
    return h, m, m / 2.0**53


def winner(seed: bytes, key: bytes, variants, draw_of=None):
    """The index of the winning variant, or None when none has weight."""
    draw_of = draw_of or draw
    best = None
    for i, v in enumerate(variants):
        if v["state"] != "active" or v["weight_bp"] == 0:
            continue
        _, _, u = draw_of(seed, v["name"].encode(), key)
        score = -math.log(u) / v["weight_bp"]
        if best is None or score < best[0]:
            best = (score, i)
    return None if best is None else best[1]


def fnv1_64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = (h * 0x100000001B3) % 2**64
        h ^= b
    return h


def percent(bp: int) -> str:
    """Basis points as the configuration's percentage string."""
    return f"{bp // 100}" if bp % 100 == 0 else f"{bp // 100}.{bp % 100:02d}"


def variant(name, bp, state="active"):
    return {"name": name, "weight_bp": bp, "state": state}


# (name, seed, variants, default index, keys). Keys are bytes.
CASES = [
    (
        "canary 10 % (the testData seed)",
        "checkout-2026",
        [variant("v1", 9_000), variant("v2", 1_000)],
        0,
        [b"u123", b"alice", b"bob", b"203.0.113.7", b"", b"user-2", b"user-4",
         b"user-7", b"user-22", b"0123456789abcdef0123456789abcdef"],
    ),
    (
        "three ways 50/30/20",
        "fuzz-2",
        [variant("a", 5_000), variant("b", 3_000), variant("c", 2_000)],
        0,
        [b"k0", b"k1", b"k2", b"k3", b"k4", b"k5", b"k6", b"k7", b"jos\xc3\xa9",
         b"\x00\xff\x01binary", b"x" * 100],
    ),
    (
        "edge: 0.01 % against 99.99 %",
        "edge",
        [variant("v1", 9_999), variant("v2", 1)],
        0,
        # key-3845 is the first key-N that the 0.01 % wins.
        [b"a", b"b", b"c", b"key-3844", b"key-3845"],
    ),
    (
        "edge: a zero weight never wins",
        "zero",
        [variant("v1", 0), variant("v2", 10_000)],
        1,
        [b"a", b"b", b"c"],
    ),
    (
        "edge: the default at 100 %, the others at 0",
        "all-default",
        [variant("stable", 10_000), variant("canary", 0), variant("beta", 0)],
        0,
        [b"a", b"b"],
    ),
    (
        "drained and disabled variants are left out of the draw",
        "states",
        [variant("v1", 5_000), variant("v2", 3_000, "drained"),
         variant("v3", 2_000), variant("v4", 0, "disabled")],
        0,
        [b"k0", b"k1", b"k2", b"k3", b"k4", b"k5"],
    ),
    (
        "no active variant has weight: the default",
        "nobody",
        [variant("v1", 0), variant("v2", 10_000, "drained")],
        0,
        [b"a", b"b"],
    ),
    (
        "a default that is not the first, four variants",
        "abn-2026-05",
        [variant("control", 2_500), variant("red", 2_500),
         variant("green", 2_500), variant("blue", 2_500)],
        2,
        [b"visitor-1", b"visitor-2", b"visitor-3", b"visitor-4", b"visitor-5"],
    ),
    (
        "a long seed (the hashed input spans two SHA-256 blocks)",
        "s" * 70,
        [variant("v1", 7_000), variant("v2", 3_000)],
        0,
        [b"a", b"b", b"c"],
    ),
]

# Field boundaries: each pair would hash the same without the length
# prefixes (seed "ab" + variant "c" vs seed "a" + variant "bc").
BOUNDARY_DRAWS = [
    ("ab", "c", b"k"),
    ("a", "bc", b"k"),
    ("", "v1", b"k"),
    ("v1", "", b"k"),
    ("seed", "v1", b""),
]

STICKY_NAMES = ["v1", "v2", "app-v1@file", "app-v2@file", "canary-v2@kubernetescrd",
                "abc", "a", "", "s196000"]


class IdGenerator:
    """Cohort's visitor ids and one-off draws (plugin/src/bucket.rs):
    state = SHA-256(boot), a counter shared by both;
    next_id: counter += 1; state = SHA-256(state || u64be(counter) ||
      u128be(now_nanos) || (u32be(len(d)) || d for d in request_data));
      the id is the first 16 bytes of the state as lowercase hex;
    next_draw: counter += 1; SplitMix64's finaliser over
      u64be(state[:8]) + counter * 0x9E3779B97F4A7C15 (mod 2^64)."""

    def __init__(self, boot: bytes):
        self.state = hashlib.sha256(boot).digest()
        self.counter = 0

    def next_id(self, now_nanos: int, request_data):
        self.counter += 1
        h = hashlib.sha256()
        h.update(self.state)
        h.update(self.counter.to_bytes(8, "big"))
        h.update(now_nanos.to_bytes(16, "big"))
        for d in request_data:
            h.update(struct.pack(">I", len(d)))
            h.update(d)
        self.state = h.digest()
        return self.state[:16].hex()

    def next_draw(self):
        self.counter += 1
        m = 2**64
        z = (int.from_bytes(self.state[:8], "big") + self.counter * 0x9E3779B97F4A7C15) % m
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % m
        return z ^ (z >> 31)


def pick(draw: int, weights):
    """The one-off choice: walk the candidates with draw % sum(weights)."""
    total = sum(weights)
    if total == 0:
        return None
    rest = draw % total
    for i, w in enumerate(weights):
        if rest < w:
            return i
        rest -= w
    return None


# (boot, operations): ("draw",) or ("id", now_nanos, [request data...]).
ID_SEQUENCES = [
    (b"boot", [("draw",), ("draw",), ("draw",), ("id", 1_700_000_000_000_000_000, [b"127.0.0.1:50000"]),
               ("draw",), ("id", 0, []), ("id", 2**100 + 7, [b"", b"session=abc", b"\x00\xff"])]),
    (b"", [("id", 1, [b"x"]), ("draw",), ("draw",)]),
    (b"1764633600123456789", [("draw",)] * 6),
]

PICKS = [
    # (draw, weights in basis points)
    (0, [9_000, 1_000]),
    (8_999, [9_000, 1_000]),
    (9_000, [9_000, 1_000]),
    (9_999, [9_000, 1_000]),
    (10_000, [9_000, 1_000]),
    (2**64 - 1, [9_000, 1_000]),
    (12_345_678_901_234_567_890, [5_000, 3_000, 2_000]),
    (4_999, [5_000, 0, 5_000]),
    (5_000, [5_000, 0, 5_000]),
    (7, [0, 0]),
    (3, [0, 10_000]),
]


def config_json(seed, variants, default):
    items = []
    for i, v in enumerate(variants):
        item = {"name": v["name"], "weight": percent(v["weight_bp"])}
        if v["state"] != "active":
            item["state"] = v["state"]
        if i == default and default != 0:
            item["default"] = "true"
        items.append(item)
    return {"seed": seed, "variants": items}


def key_entry(key: bytes):
    entry = {"key_hex": key.hex()}
    try:
        entry["key"] = key.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return entry


def main():
    cases = []
    for name, seed, variants, default, keys in CASES:
        seed_b = seed.encode()
        rows = []
        for key in keys:
            draws = []
            for v in variants:
                h, m, u = draw(seed_b, v["name"].encode(), key)
                draws.append({"variant": v["name"], "h": h, "m": m, "u": u})
            w = winner(seed_b, key, variants)
            row = key_entry(key)
            row["draws"] = draws
            row["winner"] = None if w is None else variants[w]["name"]
            row["bucket_of"] = variants[default if w is None else w]["name"]
            sip = []
            for v in variants:
                h, m, u = sip_draw(seed_b, v["name"].encode(), key)
                sip.append({"variant": v["name"], "h": h, "m": m, "u": u})
            w = winner(seed_b, key, variants, sip_draw)
            row["siphash"] = {
                "draws": sip,
                "winner": None if w is None else variants[w]["name"],
                "bucket_of": variants[default if w is None else w]["name"],
            }
            rows.append(row)
        cases.append({
            "name": name,
            "seed": seed,
            "variants": variants,
            "default": default,
            "config": config_json(seed, variants, default),
            "siphash_keys": {v["name"]: sip_key(seed_b, v["name"].encode()).hex() for v in variants},
            "keys": rows,
        })
    boundary = []
    for seed, v, key in BOUNDARY_DRAWS:
        h, m, u = draw(seed.encode(), v.encode(), key)
        row = {"seed": seed, "variant": v}
        row.update(key_entry(key))
        row.update({"h": h, "m": m, "u": u})
        boundary.append(row)
    sticky = [
        {
            "name": n,
            "sha256": hashlib.sha256(n.encode()).hexdigest()[:16],
            "fnv": format(fnv1_64(n.encode()), "x"),
        }
        for n in STICKY_NAMES
    ]
    ids = []
    for boot, ops in ID_SEQUENCES:
        gen = IdGenerator(boot)
        steps = []
        for op in ops:
            if op[0] == "draw":
                steps.append({"draw": gen.next_draw()})
            else:
                _, now, data = op
                steps.append({"id": gen.next_id(now, data), "now_nanos": str(now),
                              "request_data_hex": [d.hex() for d in data]})
        ids.append({"boot_hex": boot.hex(), "steps": steps})
    picks = [{"draw": d, "weights_bp": w, "index": pick(d, w)} for d, w in PICKS]
    out = {
        "generated_by": "python3 testdata/assignment-kat.py > testdata/assignment-kat.json",
        "formula": "u_v = ((h >> 11) + 1) / 2^53, h = first 8 bytes big-endian of "
                   "SHA-256(u32be(len(seed)) seed u32be(len(v)) v key); "
                   "winner = argmin over active variants with weight > 0 of -ln(u_v) / w_v; "
                   "under assignmentHash: siphash (each row's `siphash`), h = SipHash-2-4(key) "
                   "under the 16-byte key SHA-256(u32be(len(seed)) seed u32be(len(v)) v)[..16]",
        "assignments": cases,
        "boundary_draws": boundary,
        "sticky": sticky,
        "id_generator": ids,
        "picks": picks,
    }
    print(json.dumps(out, indent=1, ensure_ascii=True))


if __name__ == "__main__":
    main()
