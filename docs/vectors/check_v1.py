#!/usr/bin/env python3
"""Independent check of docs/vectors/v1.json, written from docs/keys.md and docs/stub-format.md only.

Uses Python's hashlib (BLAKE2b) and the `cryptography` package (Ed25519, ChaCha20-Poly1305; XChaCha20
is built here from HChaCha20). The chunker (unkeyed and keyed gear tables), the LZ4 block decoder, the
block layout and nonce rules, the stub text (shell quoting included) and the stub names are
reimplemented here from the specs. The optional `lz4` package (python-lz4) is used, when present, to
re-compress the compressible blocks with LZ4_compress_default; without it, compressed payloads are
taken from the vectors (every other byte is still recomputed). When `bash` is on the PATH, the quoted
stub names of the comment lines are also checked to expand to the stub file names.

    python3 docs/vectors/check_v1.py            # exit status 0 when every vector matches
"""

import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
from decimal import Decimal, ROUND_HALF_UP
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

try:
    import lz4.block as lz4block  # optional
except ImportError:  # pragma: no cover
    lz4block = None

V = json.loads((Path(__file__).parent / "v1.json").read_text(encoding="utf-8"))
failures = []
checked = 0


def check(what, got, want):
    global checked
    checked += 1
    if got != want:
        failures.append(what)
        print(f"MISMATCH {what}:\n  got  {got!r}\n  want {want!r}"[:2000])


def b2b(data, key=b"", n=32):
    return hashlib.blake2b(data, key=key, digest_size=n).digest()


# ---- inputs ----

def xorshift32(seed, n):
    out = bytearray()
    x = seed & 0xFFFFFFFF
    for _ in range((n + 3) // 4):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out += struct.pack("<I", x)
    return bytes(out[:n])


def repeat(s, n):
    b = s.encode("ascii")
    return (b * (n // len(b) + 1))[:n]


def make_input(formula):
    """The few input formulas the vectors use (see "inputs" in v1.json)."""
    return eval(formula, {"xorshift32": xorshift32, "repeat": repeat, "zeros": lambda n: bytes(n),
                          "concat": lambda a, b: a + b})


# ---- keys (docs/keys.md) ----

root = bytes(range(32))
k = V["keys"]
check("root", root.hex(), k["root"])
check("secret file", "# dustbox root secret. Anyone holding this file can read all your data: keep it private.\n"
      "dustbox-secret-v1:" + root.hex() + "\n", k["secretFile"])
labels = {"identity": "dustbox/v1/identity", "data": "dustbox/v1/data", "plainHash": "dustbox/v1/plain-hash",
          "stubMac": "dustbox/v1/stub-mac", "index": "dustbox/v1/index", "chunker": "dustbox/v1/chunker",
          "pointer": "dustbox/v1/pointer-key", "audit": "dustbox/v1/audit"}
check("labels", labels, k["labels"])
K = {name: b2b(label.encode("ascii"), key=root) for name, label in labels.items()}
check("identity seed", K["identity"].hex(), k["identitySeed"])
for name in ("data", "plainHash", "stubMac", "index", "chunker", "pointer", "audit"):
    check(f"key {name}", K[name].hex(), k[name])
pk = Ed25519PrivateKey.from_private_bytes(K["identity"]).public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw)
check("ed25519 public key", pk.hex(), k["ed25519PublicKey"])
check("ed25519 secret key (seed || public key)", (K["identity"] + pk).hex(), k["ed25519SecretKey"])
owner = pk.hex()
check("owner id", owner, k["ownerId"])

# ---- gear table and chunker (docs/stub-format.md, "Chunking") ----

def gear_table(key=b""):
    """GEAR[i] = LE32(BLAKE2b-512("dustbox/v1/gear" || byte i)[0..4)), keyed with K_chunker for owners."""
    return [struct.unpack("<I", hashlib.blake2b(b"dustbox/v1/gear" + bytes([i]), key=key, digest_size=64).digest()[:4])[0]
            for i in range(256)]


TABLES = {"unkeyed": gear_table(), "keyed": gear_table(K["chunker"])}
check("gear tables differ", TABLES["unkeyed"] != TABLES["keyed"], True)
for kind, table in TABLES.items():
    g = V["gear"][kind]
    check(f"gear {kind} first 8", [f"{x:08x}" for x in table[:8]], g["first8"])
    check(f"gear {kind} last", f"{table[255]:08x}", g["last"])
    check(f"gear {kind} table hash", b2b(b"".join(struct.pack("<I", x) for x in table)).hex(), g["tableBlake2b256"])


def top_mask(bits):
    return 0 if bits <= 0 else (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF


def find_cut(data, start, end, mn, avg, mx, gear):
    n = end - start
    if n <= mn:
        return n
    n = min(n, mx)
    bits = avg.bit_length() - 1
    mask_s, mask_l = top_mask(bits + 2), top_mask(bits - 2)
    normal = min(avg, n)
    h = 0
    i = start + mn
    while i < start + normal:
        h = ((h << 1) + gear[data[i]]) & 0xFFFFFFFF
        if h & mask_s == 0:
            return i - start + 1
        i += 1
    while i < start + n:
        h = ((h << 1) + gear[data[i]]) & 0xFFFFFFFF
        if h & mask_l == 0:
            return i - start + 1
        i += 1
    return n


def chunk_lengths(data, p, gear):
    out, pos = [], 0
    while pos < len(data):
        n = find_cut(data, pos, len(data), p["min"], p["avg"], p["max"], gear)
        out.append(n)
        pos += n
    return out


check("chunker cases: each input with both tables", sorted((c["input"], c["gear"]) for c in V["chunker"]),
      sorted((i, g) for i in {c["input"] for c in V["chunker"]} for g in TABLES))
for c in V["chunker"]:
    data = make_input(c["input"])
    check(f"chunker input size {c['name']}", len(data), c["inputBytes"])
    check(f"chunker lengths {c['name']}", chunk_lengths(data, c["params"], TABLES[c["gear"]]), c["lengths"])

# ---- encrypted blocks (docs/stub-format.md, "Encrypted block") ----


def rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def hchacha20(key, nonce16):
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574] + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha_seal(key, nonce24, msg, ad):
    return ChaCha20Poly1305(hchacha20(key, nonce24[:16])).encrypt(b"\0\0\0\0" + nonce24[16:], msg, ad)


def xchacha_open(key, nonce24, ct, ad):
    return ChaCha20Poly1305(hchacha20(key, nonce24[:16])).decrypt(b"\0\0\0\0" + nonce24[16:], ct, ad)


def lz4_block_decode(src, size):
    out, i = bytearray(), 0
    while True:
        token = src[i]; i += 1
        lit = token >> 4
        if lit == 15:
            while True:
                b = src[i]; i += 1; lit += b
                if b != 255:
                    break
        out += src[i:i + lit]; i += lit
        if i == len(src):
            break
        off = src[i] | (src[i + 1] << 8); i += 2
        ml = token & 15
        if ml == 15:
            while True:
                b = src[i]; i += 1; ml += b
                if b != 255:
                    break
        for _ in range(ml + 4):
            out.append(out[-off])
    if len(out) != size:
        raise ValueError("bad LZ4 block")
    return bytes(out)


BLOCK_OVERHEAD = 1 + 24 + 5 + 16  # version, nonce, codec + u32be length, Poly1305 tag


def key_nonce(ph):
    """o = H64(K_data, "dustbox/v1/block" || ph): block key o[0..32), raw-codec nonce o[32..56)."""
    o = b2b(b"dustbox/v1/block" + ph, key=K["data"], n=64)
    return o, o[:32], o[32:56]


def nonce_for(key, raw_nonce, inner):
    """raw codec: o[32..56); lz4 codec: BLAKE2b-192 keyed with the block key over the inner bytes."""
    return raw_nonce if inner[0] == 0 else b2b(inner, key=key, n=24)


def seal_block(ph, inner):
    _, key, raw_nonce = key_nonce(ph)
    nonce = nonce_for(key, raw_nonce, inner)
    return b"\x01" + nonce + xchacha_seal(key, nonce, inner, b"\x01")


def open_block(ph, block):
    """Returns the inner bytes; raises if the version byte or the tag is wrong."""
    if len(block) < BLOCK_OVERHEAD or block[0] != 1:
        raise ValueError("bad block")
    _, key, _ = key_nonce(ph)
    return xchacha_open(key, block[1:25], block[25:], b"\x01")


def encode_block(plain, inner_if_lz4=None):
    """Returns (ph, block, codec). LZ4 payload: python-lz4 when present, else the given inner bytes."""
    ph = b2b(plain, key=K["plainHash"])
    payload, codec = plain, 0
    if lz4block is not None and len(plain) > 0:
        comp = lz4block.compress(plain, mode="default", store_size=False)
        if len(comp) < len(plain):
            payload, codec = comp, 1
    elif inner_if_lz4 is not None and inner_if_lz4[0] == 1:
        payload, codec = inner_if_lz4[5:], 1
    inner = bytes([codec]) + struct.pack(">I", len(plain)) + payload
    return ph, seal_block(ph, inner), codec


for b in V["blocks"]:
    name = b["name"]
    plain = make_input(b["plaintext"])
    check(f"block plaintext {name}", plain.hex(), b["plaintextHex"])
    ph = b2b(plain, key=K["plainHash"])
    check(f"block ph {name}", ph.hex(), b["ph"])
    o, key, raw_nonce = key_nonce(ph)
    check(f"block key/nonce derivation {name}", o.hex(), b["blockKeyNonce"])
    check(f"block key {name}", key.hex(), b["key"])
    block = bytes.fromhex(b["block"])
    check(f"block version byte {name}", block[0], 1)
    inner = open_block(ph, block)  # raises if the tag does not verify
    check(f"block inner {name}", inner.hex(), b["inner"])
    nonce = nonce_for(key, raw_nonce, inner)
    check(f"block nonce {name}", nonce.hex(), b["nonce"])
    check(f"block nonce is block[1..25) {name}", block[1:25].hex(), b["nonce"])
    check(f"block nonce rule {name}", b["nonceRule"],
          "raw: blockKeyNonce[32..56)" if inner[0] == 0 else "lz4: BLAKE2b-192(key = key, inner)")
    codec, size = inner[0], struct.unpack(">I", inner[1:5])[0]
    check(f"block size {name}", size, len(plain))
    decoded = inner[5:] if codec == 0 else lz4_block_decode(inner[5:], size)
    check(f"block decodes {name}", decoded, plain)
    check(f"block codec {name}", {0: "raw", 1: "lz4"}[codec], b["codec"])
    _, reblock, recodec = encode_block(plain, inner)
    check(f"block re-encrypted {name}", reblock.hex(), b["block"])
    check(f"block id {name}", b2b(block).hex(), b["id"])
    check(f"block stored {name}", len(block), b["stored"])
    check(f"block stored = payload + 46 {name}", len(block), len(inner) - 5 + BLOCK_OVERHEAD)


def lz4_length_bytes(n):
    out = b""
    n -= 15
    while n >= 255:
        out += b"\xff"
        n -= 255
    return out + bytes([n])


def lz4_literals_match_literals(plain, lit, offset):
    """One sequence of `lit` literals and a match at `offset` up to 5 bytes before the end, then 5 literals."""
    ml = len(plain) - lit - 5
    token = (min(lit, 15) << 4) | min(ml - 4, 15)
    return (bytes([token]) + (lz4_length_bytes(lit) if lit >= 15 else b"") + plain[:lit]
            + struct.pack("<H", offset) + (lz4_length_bytes(ml - 4) if ml - 4 >= 15 else b"")
            + b"\x50" + plain[-5:])


alt = V["altLz4Block"]
base = next(b for b in V["blocks"] if b["plaintext"] == alt["plaintext"])
plain = make_input(alt["plaintext"])
ph = b2b(plain, key=K["plainHash"])
check("alt lz4 ph", ph.hex(), alt["ph"])
m = re.fullmatch(r"LZ4 sequences: (\d+) literals \(plaintext\[0\.\.\1\)\), a match at offset (\d+) of length (\d+), "
                 r"then the last 5 bytes as literals", alt["payload"])
check("alt lz4 payload description parses", m is not None, True)
lit, off, ml = (int(x) for x in m.groups())
check("alt lz4 lengths add up", lit + ml + 5, len(plain))
inner = b"\x01" + struct.pack(">I", len(plain)) + lz4_literals_match_literals(plain, lit, off)
check("alt lz4 inner", inner.hex(), alt["inner"])
check("alt lz4 decodes to the plaintext", lz4_block_decode(inner[5:], len(plain)), plain)
_, key, raw_nonce = key_nonce(ph)
check("alt lz4 nonce", nonce_for(key, raw_nonce, inner).hex(), alt["nonce"])
block = seal_block(ph, inner)
check("alt lz4 block", block.hex(), alt["block"])
check("alt lz4 opens", open_block(ph, bytes.fromhex(alt["block"])), inner)
check("alt lz4 stored", len(block), alt["stored"])
check("alt lz4 id", b2b(block).hex(), alt["id"])
check("alt lz4 differs from the reference encoding (inner, nonce, id)",
      (inner.hex() != base["inner"], alt["nonce"] != base["nonce"], alt["id"] != base["id"]), (True, True, True))

# ---- names (docs/stub-format.md, "Stub file names") ----


def truncate_utf8(s, mx):
    out, n = "", 0
    for ch in s:
        m = len(ch.encode("utf-8"))
        if n + m > mx:
            break
        out += ch
        n += m
    return out


def stub_name_for(name):
    if len(name.encode("utf-8")) + 2 <= 255:
        return name + ".f"
    tag = hashlib.blake2b(name.encode("utf-8"), digest_size=64).hexdigest()[:8]
    return truncate_utf8(name, 244) + "~" + tag + ".f"


def target_name_for(stub_file_name, recorded):
    if stub_name_for(recorded) == stub_file_name:
        return recorded
    return stub_file_name[:-2] if stub_file_name.endswith(".f") else stub_file_name


for c in V["names"]["stubNameFor"]:
    check(f"stub name for {c['formula']}", stub_name_for(c["name"]), c["stubName"])
    check(f"stub name bytes {c['formula']}", len(c["stubName"].encode("utf-8")), c["stubNameBytes"])
for c in V["names"]["targetNameFor"]:
    check(f"target name for {c['stubFileName'][:40]}", target_name_for(c["stubFileName"], c["recordedName"]), c["target"])

# ---- stubs (docs/stub-format.md, "The .f stub") ----


def human_size(n):
    units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    v, u = Decimal(n), 0
    while v >= 1024 and u < len(units) - 1:
        v /= 1024
        u += 1
    if u == 0:
        return f"{n} bytes"
    return f"{v.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} {units[u]}"


def json_string(s):
    return json.dumps(s, ensure_ascii=False)


def shell_quote(s):
    """POSIX shell quoting on one line: '...' (' as '\\''), or $'...' with \\xHH when s has control characters."""
    if not re.search(r"[\x00-\x1f\x7f]", s):
        return "'" + s.replace("'", "'\\''") + "'"
    out = ""
    for ch in s:
        if ch in "\\'":
            out += "\\" + ch
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out += f"\\x{ord(ch):02x}"
        else:
            out += ch
    return "$'" + out + "'"


BASH = shutil.which("bash")


for s in V["stubs"]:
    f = s["file"]
    data = make_input(f["content"])
    check(f"stub file size {f['name']}", len(data), f["size"])
    whole = b2b(data, key=K["plainHash"])
    check(f"stub whole-file hash {f['name']}", whole.hex(), s["wholeFileHash"])
    blocks, pos = [], 0
    check(f"stub gear {f['name']}", f["gear"], "keyed")
    for i, n in enumerate(chunk_lengths(data, f["chunker"], TABLES["keyed"])):
        want = s["blocks"][i] if i < len(s["blocks"]) else None
        ph, block, codec = encode_block(data[pos:pos + n])
        if lz4block is None and want is not None and want["stored"] < n + BLOCK_OVERHEAD:
            # No LZ4 compressor here: a compressed block's id and size are taken from the vector.
            blocks.append((want["id"], ph.hex(), n, want["stored"]))
        else:
            blocks.append((b2b(block).hex(), ph.hex(), n, len(block)))
        pos += n
    check(f"stub blocks {f['name']}", [dict(id=a, ph=b, size=c, stored=d) for a, b, c, d in blocks], s["blocks"])
    check(f"stub stored sizes in [46, size + 46] {f['name']}",
          all(BLOCK_OVERHEAD <= d <= c + BLOCK_OVERHEAD for _, _, c, d in blocks), True)
    stub_name = stub_name_for(f["name"])
    check(f"stub file name {f['name']}", stub_name, s["stubFileName"])
    ch = f["chunker"]
    lines = [
        "dustbox-stub v1",
        f"# dustbox stub: \"{json_string(f['name'])[1:-1]}\" ({human_size(f['size'])}) is stored encrypted in the owner's dustbox.",
        f"# To get the file back, double-click this file or run: dustbox open {shell_quote(stub_name)}",
        "# Do not edit: any change makes this stub invalid. Format: docs/stub-format.md",
        f"owner ed25519:{owner}",
        f"name {json_string(f['name'])}",
        f"size {f['size']}",
        f"mode {f['mode']}",
        f"mtime {f['mtimeNs']}",
        f"hash {whole.hex()}",
        f"chunker fastcdc32 {ch['min']} {ch['avg']} {ch['max']}",
        f"blocks {len(blocks)}",
    ] + [f"block {a} {b} {c} {d}" for a, b, c, d in blocks]
    body = ("\n".join(lines) + "\n").encode("utf-8")
    mac = b2b(body, key=K["stubMac"])
    text = body + f"mac {mac.hex()}\n".encode("ascii")
    check(f"stub mac {f['name']}", mac.hex(), s["mac"])
    check(f"stub mac input bytes {f['name']}", len(body), s["macInputBytes"])
    check(f"stub bytes {f['name']}", text.decode("utf-8"), s["stub"])
    check(f"stub length {f['name']}", len(text), s["stubBytes"])
    if BASH is not None:
        # The quoted name, pasted into a shell, is exactly the stub's file name.
        out = subprocess.run([BASH, "-c", "printf %s " + shell_quote(stub_name)], capture_output=True, check=True).stdout
        check(f"stub comment quoting expands to the stub name {f['name']}", out, stub_name.encode("utf-8"))

print(f"{checked} checks, {len(failures)} mismatches"
      + ("" if lz4block is not None else " (python-lz4 absent: compressed payloads taken from the vectors)")
      + ("" if BASH is not None else " (bash absent: shell quoting not run)"))
sys.exit(1 if failures else 0)
