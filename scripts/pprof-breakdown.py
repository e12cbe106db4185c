#!/usr/bin/env python3
"""Where a Traefik CPU profile's time went in its wasm middlewares.

Reads Go CPU profiles (`/debug/pprof/profile`, gzipped protobuf) and prints
one JSON object per file, in nanoseconds of CPU:

  total       every sample
  middleware  samples inside an http-wasm middleware and not in what it calls
              next: the innermost `nethttp.(*guest).ServeHTTP` on the stack
              has no `handleNext` below it. In a chain each sample belongs
              to the one copy it was taken in, so this is the sum of the
              copies' own costs, the next handler's (Traefik's service, the
              proxy) left out.
  guest_code  of those, samples in compiled wasm (Go sees that code as
              `runtime._ExternalCode`, with no stack: it is counted in
              `middleware` although no ServeHTTP frame shows)
  host_calls  of those, samples in a host function the guest called
              (wazero's `api.GoModuleFunc.Call`: http_handler and WASI)
  instantiate of those, samples instantiating a guest for the pool
              (`(*middleware).newGuest`: memory, data, `_start`)

Standard library only, so that the benchmark needs no Go toolchain:

  python3 scripts/pprof-breakdown.py A.pprof [B.pprof ...]
"""

import gzip
import json
import sys

SERVE = "github.com/http-wasm/http-wasm-host-go/handler/nethttp.(*guest).ServeHTTP"
NEXT = "github.com/http-wasm/http-wasm-host-go/handler/nethttp.(*requestState).handleNext"
GUEST_CODE = "runtime._ExternalCode"
HOST_CALL = "github.com/tetratelabs/wazero/api.GoModuleFunc.Call"
NEW_GUEST = "github.com/http-wasm/http-wasm-host-go/handler.(*middleware).newGuest"


def varint(buf, i):
    shift = result = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7


def fields(buf):
    """(field number, value) of a protobuf message: ints for varints,
    bytes for length-delimited fields; fixed-width fields are skipped."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 2:
            length, i = varint(buf, i)
            value, i = buf[i:i + length], i + length
        elif wire == 1:
            i += 8
            continue
        elif wire == 5:
            i += 4
            continue
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def ints(value):
    """A repeated integer field, packed (bytes) or not (one int)."""
    if isinstance(value, int):
        return [value]
    out, i = [], 0
    while i < len(value):
        n, i = varint(value, i)
        out.append(n)
    return out


def breakdown(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    strings, functions, locations, samples, types = [], {}, {}, [], []
    for number, value in fields(data):
        if number == 1:  # sample_type
            types.append(dict(fields(value)))
        elif number == 2:  # sample: location ids (leaf first), values
            sample = {"loc": [], "val": []}
            for n, v in fields(value):
                if n == 1:
                    sample["loc"] += ints(v)
                elif n == 2:
                    sample["val"] += ints(v)
            samples.append(sample)
        elif number == 4:  # location: id, lines (innermost inlined first)
            loc_id, funcs = 0, []
            for n, v in fields(value):
                if n == 1:
                    loc_id = v
                elif n == 4:
                    funcs.append(dict(fields(v)).get(1, 0))
            locations[loc_id] = funcs
        elif number == 5:  # function: id, name (a string index)
            f = dict(fields(value))
            functions[f.get(1, 0)] = f.get(2, 0)
        elif number == 6:
            strings.append(value.decode("utf-8", "replace"))
    # The CPU-time value ("cpu", "nanoseconds"); the sample count otherwise.
    column = next((k for k, t in enumerate(types) if strings[t.get(2, 0)] == "nanoseconds"), 0)
    out = {"total": 0, "middleware": 0, "guest_code": 0, "host_calls": 0, "instantiate": 0}
    for sample in samples:
        ns = sample["val"][column]
        out["total"] += ns
        # Frames leaf first; inlined functions expanded in place.
        frames = [strings[functions.get(fid, 0)] for loc in sample["loc"]
                  for fid in locations.get(loc, [])]
        if frames and frames[0] == GUEST_CODE:
            # Go cannot walk the stack out of compiled wasm, so these
            # samples have no caller: with no cgo in Traefik, this is guest
            # code (and wazero's generated trampolines) of some middleware.
            out["guest_code"] += ns
            out["middleware"] += ns
            continue
        serve = next((k for k, name in enumerate(frames) if name == SERVE), None)
        if serve is None or NEXT in frames[:serve]:
            continue
        out["middleware"] += ns
        inner = frames[:serve]
        if HOST_CALL in inner:
            out["host_calls"] += ns
        if NEW_GUEST in inner:
            out["instantiate"] += ns
    return out


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(json.dumps({"file": path, **breakdown(path)}))
