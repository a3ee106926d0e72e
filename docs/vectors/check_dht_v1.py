#!/usr/bin/env python3
"""Independent check of docs/vectors/dht-v1.json, written from docs/discovery.md and docs/keys.md only.

Uses Python's hashlib (BLAKE2b with its own key parameter and digest length, SHA-1) and the
`cryptography` package (Ed25519 from a seed, ChaCha20-Poly1305 of RFC 8439). XChaCha20-Poly1305-IETF
is built here from HChaCha20 (draft-irtf-cfrg-xchacha §2.2), written out by hand: subkey =
HChaCha20(key, nonce[0..16)), then ChaCha20-Poly1305 with the nonce 00000000 || nonce[16..24).

Recomputed from the inputs and the spec: the labels, the public topic, the group key and the group
topics at each epoch, the owner topics, the epochs used at a time with a clock skew (epochsAt), and
the BEP 44 pointer (target, signed bytes, sealed value, signature; it verifies and opens back to the
payload). K_pointer and the Ed25519 pair are derived from the root secret 00 01 ... 1f (keys.md §3)
and compared with keys.* of v1.json.

    python3 docs/vectors/check_dht_v1.py        # exit status 0 when every vector matches
"""

import hashlib
import json
import struct
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

HERE = Path(__file__).parent
V = json.loads((HERE / "dht-v1.json").read_text(encoding="utf-8"))
KEYS = json.loads((HERE / "v1.json").read_text(encoding="utf-8"))["keys"]
failures = []
checked = 0


def check(what, got, want):
    global checked
    checked += 1
    if got != want:
        failures.append(what)
        print(f"MISMATCH {what}:\n  got  {got!r}\n  want {want!r}"[:2000])


def blake2b(n, m, key=b""):
    """BLAKE2b-(8n) of m, keyed with key (libsodium crypto_generichash)."""
    return hashlib.blake2b(m, key=key, digest_size=n).digest()


def u32be(x):
    return struct.pack(">I", x)


def u64be(x):
    return struct.pack(">Q", x)


# ---- XChaCha20-Poly1305-IETF (keys.md §1) ----

MASK = 0xFFFFFFFF


def _rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & MASK


def _qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & MASK; s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & MASK; s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & MASK; s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & MASK; s[b] = _rotl(s[b] ^ s[c], 7)


def hchacha20(key, nonce16):
    assert len(key) == 32 and len(nonce16) == 16
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        _qr(s, 0, 4, 8, 12); _qr(s, 1, 5, 9, 13); _qr(s, 2, 6, 10, 14); _qr(s, 3, 7, 11, 15)
        _qr(s, 0, 5, 10, 15); _qr(s, 1, 6, 11, 12); _qr(s, 2, 7, 8, 13); _qr(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def _xchacha(key, nonce):
    assert len(nonce) == 24
    return ChaCha20Poly1305(hchacha20(key, nonce[:16])), b"\0\0\0\0" + nonce[16:]


def xchacha_seal(key, nonce, msg, ad):
    aead, n12 = _xchacha(key, nonce)
    return aead.encrypt(n12, msg, ad)


def xchacha_open(key, nonce, ct, ad):
    aead, n12 = _xchacha(key, nonce)
    return aead.decrypt(n12, ct, ad)


# draft-irtf-cfrg-xchacha-03 §2.2.1 test vector for HChaCha20
check("hchacha20 draft vector",
      hchacha20(bytes(range(32)), bytes.fromhex("000000090000004a0000000031415927")).hex(),
      "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")

# ---- keys (keys.md §3) ----

root = bytes(range(32))
check("keys.root", root.hex(), KEYS["root"])
K_identity = blake2b(32, b"dustbox/v1/identity", root)
K_pointer = blake2b(32, b"dustbox/v1/pointer-key", root)
check("keys.identitySeed", K_identity.hex(), KEYS["identitySeed"])
check("keys.pointer (K_pointer)", K_pointer.hex(), KEYS["pointer"])
sk = Ed25519PrivateKey.from_private_bytes(K_identity)
pk = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
check("keys.ed25519PublicKey", pk.hex(), KEYS["ed25519PublicKey"])
check("keys.ed25519SecretKey (seed || pk)", (K_identity + pk).hex(), KEYS["ed25519SecretKey"])

# ---- labels (§2, §4) ----

LABEL_PUBLIC = "dustbox/v1/topic/public"
LABEL_GROUP_KEY = "dustbox/v1/group"
LABEL_GROUP = "dustbox/v1/topic/group"
LABEL_OWNER = "dustbox/v1/topic/owner"
SALT = b"dustbox/v1/pointer"
check("labels.public", V["labels"]["public"], LABEL_PUBLIC)
check("labels.groupKey", V["labels"]["groupKey"], LABEL_GROUP_KEY)
check("labels.group", V["labels"]["group"], LABEL_GROUP)
check("labels.owner", V["labels"]["owner"], LABEL_OWNER)
check("labels.pointerSalt", V["labels"]["pointerSalt"], SALT.decode())
check("salt is 18 bytes", len(SALT), 18)

# ---- topics (§2) ----

check("public.topic", blake2b(20, LABEL_PUBLIC.encode()).hex(), V["public"]["topic"])


def group_secret(file_bytes):
    """§2: the file's bytes with trailing \\n, \\r, space and tab removed, 16..4096 bytes."""
    s = file_bytes.rstrip(b"\n\r \t")
    if not 16 <= len(s) <= 4096:
        raise ValueError("CONFIG_INVALID")
    return s


def group_name_ok(name):
    b = name.encode("utf-8")
    return (1 <= len(b) <= 64 and "/" not in name and name == name.strip(" ")
            and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in name))


def group_key(secret, name):
    return blake2b(32, LABEL_GROUP_KEY.encode() + b"\0" + name.encode("utf-8"), blake2b(32, secret))


def group_topic(k_group, epoch):
    return blake2b(20, LABEL_GROUP.encode() + u32be(epoch), k_group)


def owner_topic(pk_, epoch):
    return blake2b(20, LABEL_OWNER.encode() + u32be(epoch), pk_)


G = V["group"]
check("group.name is a valid NAME", group_name_ok(G["name"]), True)
secret = group_secret(G["secretUtf8"].encode("utf-8"))
check("group secret has nothing to trim", secret, G["secretUtf8"].encode("utf-8"))
# a file written with `echo` (trailing newline, CRLF, blanks) gives the same secret
check("group secret trimmed", group_secret(G["secretUtf8"].encode() + b" \t\r\n\n"), secret)
kg = group_key(secret, G["name"])
check("group.key", kg.hex(), G["key"])
for t in G["topics"]:
    check(f"group.topics[epoch {t['epoch']}]", group_topic(kg, t["epoch"]).hex(), t["topic"])

O = V["owner"]
check("owner.publicKey", O["publicKey"], pk.hex())
for t in O["topics"]:
    check(f"owner.topics[epoch {t['epoch']}]", owner_topic(pk, t["epoch"]).hex(), t["topic"])

# ---- epochs and clock skew (§2) ----

DAY_MS = 86_400_000
EPOCH_SKEW_MS = 15 * 60 * 1000


def epoch_of(ms):
    return ms // DAY_MS


def epochs_at(now_ms, skew_ms=EPOCH_SKEW_MS):
    """The current epoch first, then the neighbouring one when now is within skew_ms of the boundary
    with it. Guessed, as neither the spec nor the vectors settle them: exactly skew_ms away counts
    as within (<=), and there is no neighbour below epoch 0 or above 2**32 - 1."""
    e = epoch_of(now_ms)
    out = [e]
    start = e * DAY_MS
    if now_ms - start <= skew_ms and e > 0:
        out.append(e - 1)
    if start + DAY_MS - now_ms <= skew_ms and e + 1 < 2 ** 32:
        out.append(e + 1)
    return out


check("EPOCH_SKEW_MS", EPOCH_SKEW_MS, V["epochsAt"][0]["skewMs"])
for c in V["epochsAt"]:
    check(f"epochsAt[{c['nowMs']}, skew {c['skewMs']}]", epochs_at(c["nowMs"], c["skewMs"]), c["epochs"])

# ---- the owner's pointer (§4) ----

P = V["pointer"]
check("pointer.publicKey", P["publicKey"], pk.hex())
check("pointer.salt", P["salt"].encode(), SALT)
check("pointer.target = SHA-1(pk || salt)", hashlib.sha1(pk + SALT).hexdigest(), P["target"])

seq = P["seq"]
payload = P["payloadUtf8"].encode("utf-8")
nonce = bytes.fromhex(P["nonce"])
ad = SALT + pk + u64be(seq)
v = b"\x01" + nonce + xchacha_seal(K_pointer, nonce, payload, ad)
check("pointer.v", v.hex(), P["v"])
check("pointer.v length = 1 + 24 + payload + 16", len(v), 1 + 24 + len(payload) + 16)
check("pointer.v within 996 bytes", len(v) <= 996, True)


def bstr(b):
    return str(len(b)).encode() + b":" + b


signed = b"4:salt" + bstr(SALT) + b"3:seqi" + str(seq).encode() + b"e1:v" + bstr(v)
check("pointer.signedBytes", signed.hex(), P["signedBytes"])
# the signed bytes are BEP 44's dict {salt, seq, v} bencoded, keys sorted, outer d/e removed
check("pointer.signedBytes is the bencoded dict without d/e",
      b"d" + signed + b"e", b"d4:salt18:dustbox/v1/pointer3:seqi3e1:v" + bstr(v) + b"e")
sig = sk.sign(signed)
check("pointer.sig", sig.hex(), P["sig"])


def verifies(pub, sig_, msg):
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig_, msg)
        return True
    except InvalidSignature:
        return False


want_sig = bytes.fromhex(P["sig"])
want_v = bytes.fromhex(P["v"])
check("pointer.sig verifies under pk", verifies(pk, want_sig, bytes.fromhex(P["signedBytes"])), True)


def signed_bytes(seq_, v_):
    return b"4:salt" + bstr(SALT) + b"3:seqi" + str(seq_).encode() + b"e1:v" + bstr(v_)


check("signedBytes rebuilt from vector v", signed_bytes(seq, want_v).hex(), P["signedBytes"])
check("pointer.sig does not verify with seq+1", verifies(pk, want_sig, signed_bytes(seq + 1, want_v)), False)
tampered = bytearray(want_v); tampered[-1] ^= 1
check("pointer.sig does not verify a tampered v", verifies(pk, want_sig, signed_bytes(seq, bytes(tampered))), False)


def open_pointer(v_, seq_, pk_=pk, key=K_pointer):
    if len(v_) < 1 + 24 + 16 or v_[0] != 1:
        return None
    try:
        return xchacha_open(key, v_[1:25], v_[25:], SALT + pk_ + u64be(seq_))
    except InvalidTag:
        return None


check("pointer.v format byte", want_v[0], 1)
check("pointer.v nonce", want_v[1:25].hex(), P["nonce"])
check("pointer.v opens to the payload", open_pointer(want_v, seq), payload)
check("payload decodes as UTF-8", open_pointer(want_v, seq).decode("utf-8"), P["payloadUtf8"])
check("pointer.v does not open under seq+1 (AD binds seq)", open_pointer(want_v, seq + 1), None)
check("pointer.v does not open under another pk (AD binds pk)", open_pointer(want_v, seq, bytes(32)), None)
check("pointer.v does not open with another key", open_pointer(want_v, seq, pk, bytes(32)), None)

print(f"{checked} checks, {len(failures)} mismatches" + (f"; first: {failures[0]}" if failures else ""))
sys.exit(1 if failures else 0)
