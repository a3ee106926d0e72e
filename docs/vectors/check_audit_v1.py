#!/usr/bin/env python3
"""Independent check of docs/vectors/audit-v1.json, written from docs/audits.md §2 and docs/keys.md.

Only Python's hashlib (BLAKE2b) is used. From the root secret 00 01 ... 1f and the data rule it
recomputes K_audit, each shard's bytes and id, the range plan (n, L) of every listed size, the order
pi, the first challenges and all the expected proofs, and checks that every challenge of an epoch
covers the shard exactly once. Exits 0 when everything matches, 1 otherwise.
"""

import hashlib
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROOF_BYTES = 8
RANGE_BYTES = 4096
MIN_PROOFS = 8
MAX_PROOFS = 256

failures = []
checks = 0


def check(what, found, expected):
    """`found`: the vector's value (or a property of it); `expected`: what the spec gives."""
    global checks
    checks += 1
    if found != expected:
        failures.append(f"{what}: found {found!r}, expected {expected!r}")


def h(data, key=None, size=32):
    """BLAKE2b with a `size`-byte digest (a BLAKE2b parameter, not a truncation), keyed when key is given."""
    if key is None:
        return hashlib.blake2b(data, digest_size=size).digest()
    return hashlib.blake2b(data, key=key, digest_size=size).digest()


def plan(z):
    assert 1 <= z <= 0xFFFFFFFF
    n0 = min(MAX_PROOFS, max(MIN_PROOFS, -(-z // RANGE_BYTES)))
    L = -(-z // n0)
    return -(-z // L), L


def u32(x):
    return struct.pack(">I", x)


def order(k_audit, shard_id, n, epoch):
    o = [h(b"dustbox/v1/audit-order" + shard_id + u32(epoch) + u32(j), k_audit, 8) for j in range(n)]
    return sorted(range(n), key=lambda j: (o[j], j))


def nonce(k_audit, shard_id, epoch, i):
    return h(b"dustbox/v1/audit-nonce" + shard_id + u32(epoch) + u32(i), k_audit, 32)


def proof(shard_id, nonce_i, offset, length, data):
    """The peer's answer (docs/protocol.md §6): BLAKE2b-256 keyed with the nonce."""
    return h(b"dustbox/v1/audit" + shard_id + u32(offset) + u32(length) + data[offset:offset + length], nonce_i, 32)


def main():
    with open(os.path.join(HERE, "audit-v1.json"), encoding="utf-8") as fh:
        v = json.load(fh)
    root = bytes(range(32))
    check("rootSecret", v["rootSecret"], root.hex())
    check("labels", v["labels"], {"auditKey": "dustbox/v1/audit", "order": "dustbox/v1/audit-order",
                                  "nonce": "dustbox/v1/audit-nonce", "proof": "dustbox/v1/audit"})
    check("constants", v["constants"], {"proofBytes": PROOF_BYTES, "rangeBytes": RANGE_BYTES,
                                        "minProofs": MIN_PROOFS, "maxProofs": MAX_PROOFS})
    k_audit = h(b"dustbox/v1/audit", root, 32)
    check("auditKey = H32(root, \"dustbox/v1/audit\")", v["auditKey"], k_audit.hex())
    with open(os.path.join(HERE, "v1.json"), encoding="utf-8") as fh:
        check("v1.json keys.audit", json.load(fh)["keys"].get("audit"), k_audit.hex())

    for p in v["plans"]:
        n, L = plan(p["size"])
        check(f"plan of {p['size']}", (p["n"], p["rangeBytes"]), (n, L))
        check(f"plan of {p['size']}: n ranges, none empty, the last ends at the size",
              ((n - 1) * L < p["size"] <= n * L), True)

    check("shards listed", [(s["size"], s["epoch"]) for s in v["shards"]],
          [(1, 0), (10, 0), (5000, 0), (5000, 1), (70000, 0), (70000, 0xFFFFFFFF)])
    for s in v["shards"]:
        z, e = s["size"], s["epoch"]
        what = f"shard of {z} bytes, epoch {e}"
        data = bytes((i * 31 + 7) & 255 for i in range(z))
        sid = h(data)
        check(f"{what}: id = H32(data)", s["id"], sid.hex())
        n, L = plan(z)
        check(f"{what}: n, L", (s["n"], s["rangeBytes"]), (n, L))
        pi = order(k_audit, sid, n, e)
        check(f"{what}: order", s["order"], pi)
        expected = b""
        covered = []
        for i in range(n):
            off = pi[i] * L
            length = min(L, z - off)
            check(f"{what}: challenge {i} length >= 1", length >= 1, True)
            covered.append((off, length))
            nn = nonce(k_audit, sid, e, i)
            if i < len(s["challenges"]):
                check(f"{what}: challenge {i}", s["challenges"][i],
                      {"i": i, "nonce": nn.hex(), "offset": off, "length": length})
            expected += proof(sid, nn, off, length, data)[:PROOF_BYTES]
        check(f"{what}: challenges listed", len(s["challenges"]), min(3, n))
        check(f"{what}: proofs", s["proofs"], expected.hex())
        pos = 0
        for off, length in sorted(covered):
            check(f"{what}: ranges contiguous", off, pos)
            pos = off + length
        check(f"{what}: ranges end at the size", pos, z)

    # A flipped byte changes exactly the proof of the challenge whose range holds it.
    s = v["shards"][4]
    data = bytearray((i * 31 + 7) & 255 for i in range(s["size"]))
    sid = bytes.fromhex(s["id"])
    n, L = s["n"], s["rangeBytes"]
    data[5 * L + 17] ^= 1
    got = b"".join(proof(sid, nonce(k_audit, sid, s["epoch"], i), s["order"][i] * L, min(L, s["size"] - s["order"][i] * L), bytes(data))[:PROOF_BYTES]
                   for i in range(n))
    want = bytes.fromhex(s["proofs"])
    bad = [i for i in range(n) if got[i * 8:i * 8 + 8] != want[i * 8:i * 8 + 8]]
    check("a flipped byte fails exactly one challenge", bad, [s["order"].index(5)])

    if failures:
        for f in failures:
            print(f"audit-v1.json: MISMATCH {f}", file=sys.stderr)
        print(f"audit-v1.json: {len(failures)} of {checks} checks failed", file=sys.stderr)
        sys.exit(1)
    print(f"audit-v1.json: all checks passed ({checks} checks)")


if __name__ == "__main__":
    main()
