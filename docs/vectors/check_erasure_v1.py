#!/usr/bin/env python3
"""Independent check of docs/vectors/erasure-v1.json, written from docs/erasure.md only.

Pure Python, no package beyond the standard library (hashlib for BLAKE2b). The parameter table
(w, p, x, y, b for every k, m) is read from erasure.md's appendix itself, so the spec's table is
checked too. Recomputed from the spec:

- the field GF(2^w) of each polynomial, the element bit counts, the coding matrix of each (k, m)
  (and its bit count, which must equal the table's b), compared with the vector's matrix;
- every vector block from its rule, the payload size, the chunk size, each shard's header, the data
  payloads, the parity payloads (bit-sliced GF(2^w) products, as erasure.md section 5 defines them)
  and the shard ids (BLAKE2b-256);
- the block rebuilt from each listed subset of k shards, by inverting the k x k matrix of those
  shards over GF(2^w) (not the library's way: it inverts a k*w x k*w bit matrix over GF(2));
- the large vectors (shard ids only): the same, on 4 MiB blocks where the chunk size is halved;
- every invalid shard is refused by this parser for the reason the vector names.

    python3 docs/vectors/check_erasure_v1.py        # exit status 0 when every vector matches
"""

import hashlib
import json
import re
import struct
import sys
from pathlib import Path

HERE = Path(__file__).parent
SPEC = (HERE.parent / "erasure.md").read_text(encoding="utf-8")
V = json.loads((HERE / "erasure-v1.json").read_text(encoding="utf-8"))

VERSION = 1
HEADER = 8
MAX_K = 24
MAX_M = 6
MAX_BLOCK = 64 * 1024 * 1024 + 46
CHUNK_CACHE_BYTES = 1048576

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("MISMATCH:", what)


# --- erasure.md appendix A: the parameter table ---------------------------------------------------

def read_parameters():
    m = re.search(r"```parameters\n(.*?)```", SPEC, re.S)
    if m is None:
        sys.exit("erasure.md has no ```parameters block")
    table = {}
    for line in m.group(1).splitlines()[1:]:
        k, mm, w, p, x, y, b = (int(t) for t in line.split())
        table[(k, mm)] = (w, p, x, y, b)
    assert len(table) == MAX_K * MAX_M, len(table)
    return table


PARAMS = read_parameters()


# --- section 5.1: GF(2^w) -------------------------------------------------------------------------

class Field:
    def __init__(self, w, p):
        self.w = w
        self.top = (1 << w) - 1
        self.log = [None] * (1 << w)
        self.exp = [0] * self.top
        b = 1
        for a in range(self.top):
            assert self.log[b] is None, "2 does not generate the field"
            self.log[b] = a
            self.exp[a] = b
            b <<= 1
            if b & (1 << w):
                b = (b ^ p) & self.top
        # bits(n): ones of the w x w bit matrix of "multiply by n"
        self.bits = [sum(bin(self.mul(n, 1 << r)).count("1") for r in range(w)) for n in range(1 << w)]
        # elements 1..2^w-1 by (bits, value)
        self.order = sorted(range(1, 1 << w), key=lambda n: (self.bits[n], n))

    def mul(self, a, b):
        if a == 0 or b == 0:
            return 0
        return self.exp[(self.log[a] + self.log[b]) % self.top]

    def div(self, a, b):
        assert b != 0
        if a == 0:
            return 0
        return self.exp[(self.log[a] - self.log[b]) % self.top]

    def inv(self, a):
        return self.div(1, a)


# --- section 5.2: the coding matrix ---------------------------------------------------------------

def coding_matrix(k, m):
    w, p, x, y, b = PARAMS[(k, m)]
    f = Field(w, p)
    if m == 1:
        rows = [[1] * k]
        count = f.bits[1] * k
    elif m == 2:
        rows = [[1] * k, [f.order[c] for c in range(k)]]
        count = f.bits[1] * k + sum(f.bits[v] for v in rows[1])
    else:
        rows = [[f.inv((y + r) ^ (x + c)) for c in range(k)] for r in range(m)]
        for r in range(1, m):
            rows[r] = [f.div(rows[r][c], rows[0][c]) for c in range(k)]
        rows[0] = [1] * k
        count = f.bits[1] * k
        for r in range(1, m):
            row = rows[r]
            best = sum(f.bits[v] for v in row)
            by = None
            for c in range(k):
                ones = sum(f.bits[f.div(row[d], row[c])] for d in range(k))
                if ones < best:
                    best = ones
                    by = row[c]
            if by is not None:
                rows[r] = [f.div(v, by) for v in row]
            count += best
    check(count == b, f"{k}+{m}: matrix bit count {count} != table b {b}")
    return f, rows


# --- section 3 and 5.3: sizes, chunks, bit-sliced products -----------------------------------------

def payload_size(length, k):
    return -(-(-(-length // k)) // 8) * 8


def chunk_size(w, k, size):
    c = size // w
    while c > 64 and c % 2 == 0 and (1 + k * w) * c > CHUNK_CACHE_BYTES:
        c //= 2
    return c


def slices(payload, w, chunk):
    """A payload as strides of w packets (each packet an int, little-endian bytes)."""
    stride = w * chunk
    assert len(payload) % stride == 0
    return [[int.from_bytes(payload[s + c * chunk: s + (c + 1) * chunk], "little") for c in range(w)]
            for s in range(0, len(payload), stride)]


def unslice(strides, chunk):
    return b"".join(p.to_bytes(chunk, "little") for stride in strides for p in stride)


def combine(f, coefficients, sources, chunk):
    """sum_j coefficients[j] * sources[j] over bit-sliced payloads: output packet a of a stride is
    the XOR of source packets c with bit a of (coefficient * 2^c) set."""
    w = f.w
    plans = []
    for x, src in zip(coefficients, sources):
        if x == 0:
            continue
        cols = [f.mul(x, 1 << c) for c in range(w)]
        plans.append(([[c for c in range(w) if (cols[c] >> a) & 1] for a in range(w)], slices(src, w, chunk)))
    n = len(sources[0]) // (w * chunk)
    out = []
    for s in range(n):
        stride = []
        for a in range(w):
            acc = 0
            for rows, sl in plans:
                for c in rows[a]:
                    acc ^= sl[s][c]
            stride.append(acc)
        out.append(stride)
    return unslice(out, chunk)


def gf_invert(f, a):
    n = len(a)
    a = [row[:] + [1 if i == j else 0 for j in range(n)] for i, row in enumerate(a)]
    for col in range(n):
        piv = next(r for r in range(col, n) if a[r][col] != 0)
        a[col], a[piv] = a[piv], a[col]
        iv = f.inv(a[col][col])
        a[col] = [f.mul(v, iv) for v in a[col]]
        for r in range(n):
            if r != col and a[r][col] != 0:
                t = a[r][col]
                a[r] = [v ^ f.mul(t, u) for v, u in zip(a[r], a[col])]
    return [row[n:] for row in a]


# --- section 6: the vector block rule -------------------------------------------------------------

def vector_block(length):
    out = bytearray()
    i = 0
    label = V["blockRule"]["label"].encode("ascii")
    while len(out) < length:
        out += hashlib.blake2b(label + struct.pack(">II", length, i), digest_size=64).digest()
        i += 1
    return bytes(out[:length])


def encode(block, k, m):
    f, rows = coding_matrix(k, m)
    length = len(block)
    size = payload_size(length, k)
    chunk = chunk_size(f.w, k, size)
    padded = block + bytes(k * size - length)
    data = [padded[i * size:(i + 1) * size] for i in range(k)]
    parity = [combine(f, rows[r], data, chunk) for r in range(m)]
    shards = [struct.pack(">BBBBI", VERSION, k, m, i, length) + pl for i, pl in enumerate(data + parity)]
    return f, rows, size, chunk, shards


def decode(f, rows, k, m, length, shards, subset, chunk):
    """The block from the shards whose indices are in `subset` (k of them)."""
    assert len(subset) == k
    size = payload_size(length, k)
    generator = [[1 if c == i else 0 for c in range(k)] for i in range(k)] + rows
    inv = gf_invert(f, [generator[i] for i in subset])
    given = [shards[i][HEADER:] for i in subset]
    data = []
    for i in range(k):
        if i in subset:
            data.append(shards[i][HEADER:])
        else:
            data.append(combine(f, inv[i], given, chunk))
    out = b"".join(data)
    check(len(out) == k * size and out[length:] == bytes(k * size - length), "decoded padding is not zero")
    return out[:length]


def shard_id(shard):
    return hashlib.blake2b(shard, digest_size=32).hexdigest()


# --- section 7: header checks ---------------------------------------------------------------------

def parse_header(shard):
    """Returns (k, m, index, length) or raises ValueError(reason) in the spec's order."""
    if len(shard) < HEADER:
        raise ValueError("short")
    version, k, m, index, length = struct.unpack(">BBBBI", shard[:HEADER])
    if version != VERSION:
        raise ValueError("version")
    if not 1 <= k <= MAX_K:
        raise ValueError("k")
    if not 1 <= m <= MAX_M:
        raise ValueError("m")
    if index >= k + m:
        raise ValueError("index")
    if not 1 <= length <= MAX_BLOCK:
        raise ValueError("blockLength")
    if len(shard) - HEADER != payload_size(length, k):
        raise ValueError("payloadSize")
    return k, m, index, length


# --- the vectors ----------------------------------------------------------------------------------

def main():
    for name, mat in V["matrices"].items():
        k, m = (int(t) for t in name.split("+"))
        w, p, x, y, b = PARAMS[(k, m)]
        f, rows = coding_matrix(k, m)
        check((mat["w"], mat["p"]) == (w, p), f"{name}: w, p")
        check(mat["rows"] == rows, f"{name}: coding matrix {rows} != vector {mat['rows']}")
    count = 0
    for case in V["cases"]:
        k, m, length = case["k"], case["m"], case["blockLength"]
        what = f"{k}+{m} L={length}"
        block = vector_block(length)
        f, rows, size, chunk, shards = encode(block, k, m)
        check(case["payloadSize"] == size, f"{what}: payload size")
        check(case["chunkSize"] == chunk, f"{what}: chunk size")
        want = [bytes.fromhex(h) for h in case["shards"]]
        check(len(want) == k + m, f"{what}: shard count")
        for i, (got, exp) in enumerate(zip(shards, want)):
            check(got == exp, f"{what}: shard {i}")
            check(parse_header(exp) == (k, m, i, length), f"{what}: shard {i} header")
            check(shard_id(exp) == case["ids"][i], f"{what}: shard {i} id")
        for subset in case["decodeFrom"]:
            check(decode(f, rows, k, m, length, want, subset, chunk) == block, f"{what}: decode from {subset}")
        count += 1
    for case in V["large"]:
        k, m, length = case["k"], case["m"], case["blockLength"]
        what = f"large {k}+{m} L={length}"
        block = vector_block(length)
        f, rows, size, chunk, shards = encode(block, k, m)
        check(case["payloadSize"] == size, f"{what}: payload size")
        check(case["chunkSize"] == chunk, f"{what}: chunk size")
        check([shard_id(s) for s in shards] == case["ids"], f"{what}: shard ids")
        for subset in case["decodeFrom"]:
            check(decode(f, rows, k, m, length, shards, subset, chunk) == block, f"{what}: decode from {subset}")
        count += 1
    for bad in V["invalid"]:
        try:
            parse_header(bytes.fromhex(bad["shard"]))
            reason = None
        except ValueError as e:
            reason = str(e)
        check(reason == bad["reason"], f"invalid shard {bad['shard'][:40]}: refused for {reason}, vector says {bad['reason']}")
    if failures:
        print(f"{len(failures)} mismatches")
        sys.exit(1)
    print(f"erasure-v1: {count} vectors ({len(V['large'])} large), {len(V['matrices'])} coding matrices, "
          f"{len(V['invalid'])} invalid shards, {len(PARAMS)} parameter rows: all match")


main()
