#!/usr/bin/env python3
"""Independent check of docs/vectors/net-v1.json, written from docs/protocol.md and docs/keys.md §1 only.

Uses Python's hashlib (BLAKE2b, SHA-512), hmac (HMAC-BLAKE2b-512: hashlib.blake2b has a 128-byte block
and a 64-byte digest, so hmac.new(k, m, hashlib.blake2b) is Noise's HMAC-HASH) and the `cryptography`
package (Ed25519 key pairs from seeds, X25519, ChaCha20-Poly1305). Reimplemented here from the spec:
peer ids (base32, Luhn mod 32, forgiving parser), the Ed25519 -> X25519 conversions (clamped
SHA-512(seed) half; u = (1 + y) / (1 - y) mod p), Noise_XX_25519_ChaChaPoly_BLAKE2b (run as both
initiator and responder with the vectors' fixed ephemeral secrets), the handshake payloads and their
extensions, the device certificate of §3.4 (built, signed with Ed25519 and verified; strict decoder),
Split() and the transport records, shard ids and audit proofs, and a strict encoder/decoder of every
message of §5.1.

Each message vector is built from its fields and compared byte for byte; the fields are taken from
the other vectors and the spec's constants where they are derivable (shard ids, data, sizes,
proofs, MAX_FRAME_BYTES, error codes, ...), otherwise they are the example values written below
(request ids, ports, agent, texts, quotas). Each vector is also decoded strictly (every count, length,
flag, status and text checked against §5's limits and the frame's end) and re-encoded.

    python3 docs/vectors/check_net_v1.py        # exit status 0 when every vector matches
"""

import hashlib
import hmac
import json
import struct
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.exceptions import InvalidTag, InvalidSignature

V = json.loads((Path(__file__).parent / "net-v1.json").read_text(encoding="utf-8"))
failures = []
checked = 0


def check(what, got, want):
    global checked
    checked += 1
    if got != want:
        failures.append(what)
        print(f"MISMATCH {what}:\n  got  {got!r}\n  want {want!r}"[:2000])


def h32(data, key=b""):
    return hashlib.blake2b(data, key=key, digest_size=32).digest()


RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw

# ---- §2 peer ids ----

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def base32_nopad(b):
    bits = int.from_bytes(b, "big")
    nbits = len(b) * 8
    nchars = (nbits + 4) // 5
    bits <<= nchars * 5 - nbits  # zero padding bits at the end
    return "".join(ALPHABET[(bits >> (5 * (nchars - 1 - i))) & 31] for i in range(nchars))


def luhn32(group):
    factor, total = 2, 0
    for c in reversed(group):
        addend = factor * ALPHABET.index(c)
        factor = 3 - factor
        total += addend // 32 + addend % 32
    return ALPHABET[(32 - total % 32) % 32]


def peer_id(pk):
    b = base32_nopad(pk)
    assert len(b) == 52
    s = "".join(b[i:i + 13] + luhn32(b[i:i + 13]) for i in range(0, 52, 13))
    return "-".join(s[i:i + 7] for i in range(0, 56, 7))


class PeerIdInvalid(Exception):
    def __init__(self, why, group=None):
        super().__init__(why)
        self.group = group


def parse_peer_id(text):
    s = text.upper()
    s = "".join(c for c in s if c not in " -")
    s = s.translate(str.maketrans("018", "OIB"))
    if len(s) != 56 or any(c not in ALPHABET for c in s):
        raise PeerIdInvalid("not 56 characters of the alphabet")
    data = ""
    for g in range(4):
        chunk = s[14 * g:14 * g + 13]
        if luhn32(chunk) != s[14 * g + 13]:
            raise PeerIdInvalid(f"group {g + 1}: check character wrong (a typo)", g)
        data += chunk
    bits = 0
    for c in data:
        bits = (bits << 5) | ALPHABET.index(c)
    if bits & 0xF:
        raise PeerIdInvalid("padding bits not zero")
    return (bits >> 4).to_bytes(32, "big")


def try_parse(text):
    try:
        return parse_peer_id(text).hex()
    except PeerIdInvalid as e:
        return f"PEER_ID_INVALID: {e}"


def luhn_catches_single_typos_and_transpositions(pid):
    """Every single-character substitution is rejected by the check of its own group; every adjacent
    transposition within a group+check is rejected except those swapping values 0 and 31 (A/7)."""
    s = pid.replace("-", "")
    if len(s) != 56 or try_parse(s).startswith("PEER_ID_INVALID"):
        return "vector does not parse"
    for pos in range(56):
        g = pos // 14
        for c in ALPHABET:
            if c == s[pos]:
                continue
            t = s[:pos] + c + s[pos + 1:]
            try:
                parse_peer_id(t)
                return f"typo at {pos} ({s[pos]}->{c}) accepted"
            except PeerIdInvalid as e:
                if e.group != g:
                    return f"typo at {pos} ({s[pos]}->{c}) not named as group {g + 1}: {e}"
        if pos % 14 != 13 and s[pos] != s[pos + 1]:
            t = s[:pos] + s[pos + 1] + s[pos] + s[pos + 2:]
            try:
                parse_peer_id(t)
                if {s[pos], s[pos + 1]} != {"A", "7"}:
                    return f"transposition at {pos} ({s[pos]}{s[pos + 1]}) accepted"
            except PeerIdInvalid as e:
                if e.group != g:
                    return f"transposition at {pos} not named as group {g + 1}"
    return "ok"


typo_groups = set()
for e in V["peerIds"]:
    key = bytes.fromhex(e["key"])
    pid = e["peerId"]
    check(f"peer id of {e['key'][:16]}", peer_id(key), pid)
    check(f"peer id length {pid[:7]}", len(pid), 63)
    check(f"parse peer id {pid[:7]}", try_parse(pid), e["key"])
    forgiving = pid.lower().replace("-", " ").replace("o", "0").replace("i", "1").replace("b", "8")
    check(f"parse forgiving form {forgiving[:7]}", try_parse(forgiving), e["key"])
    check(f"parse without separators {pid[:7]}", try_parse(pid.replace("-", "")), e["key"])
    check(f"short id {pid[:7]}", pid[:7], pid.replace("-", "")[:7])
    check(f"Luhn typos/transpositions {pid[:7]}", luhn_catches_single_typos_and_transpositions(pid), "ok")
    # nonzero padding bits with correct check characters: still refused (one spelling per key)
    s = pid.replace("-", "")
    last = s[54]  # the last base32 character: its low 4 bits are padding
    bad = ALPHABET[ALPHABET.index(last) ^ 1]
    t = s[:54] + bad + luhn32(s[42:54] + bad)
    try:
        parse_peer_id(t)
        check(f"padding bits refused {pid[:7]}", "accepted", "refused")
    except PeerIdInvalid as ex:
        check(f"padding bits refused {pid[:7]}", str(ex), "padding bits not zero")
    for bad_text in (pid[:-1], pid + "A", pid[:-1] + "9"):
        try:
            parse_peer_id(bad_text)
            check(f"malformed peer id refused {bad_text[-9:]}", "accepted", "refused")
        except PeerIdInvalid:
            check(f"malformed peer id refused {bad_text[-9:]}", "refused", "refused")
check("peerIds has the all-zero key", any(e["key"] == "00" * 32 for e in V["peerIds"]), True)
check("peerIds has the all-ff key", any(e["key"] == "ff" * 32 for e in V["peerIds"]), True)

# ---- §3 identities: Ed25519 seeds -> X25519 keys ----

P = 2**255 - 19


def ed_pk(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(*RAW)


def ed_sk_to_x25519(seed):
    k = bytearray(hashlib.sha512(seed).digest()[:32])
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return bytes(k)


def ed_pk_to_x25519(pk):
    y = int.from_bytes(pk, "little") & ((1 << 255) - 1)
    u = (1 + y) * pow((1 - y) % P, P - 2, P) % P
    return u.to_bytes(32, "little")


def x25519_pub(secret):
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(*RAW)


def x25519(secret, pub):
    return X25519PrivateKey.from_private_bytes(secret).exchange(X25519PublicKey.from_public_bytes(pub))


ids = V["identities"]
ID = {}
for who in ("initiator", "responder"):
    seed = bytes.fromhex(ids[f"{who}Ed25519Seed"])
    pk = ed_pk(seed)
    xs, xp = ed_sk_to_x25519(seed), ed_pk_to_x25519(pk)
    check(f"{who} Ed25519 public key", pk.hex(), ids[f"{who}Ed25519PublicKey"])
    check(f"{who} X25519 secret key", xs.hex(), ids[f"{who}X25519SecretKey"])
    check(f"{who} X25519 public key (birational map)", xp.hex(), ids[f"{who}X25519PublicKey"])
    check(f"{who} X25519 public key = X25519(secret, 9)", x25519_pub(xs).hex(), ids[f"{who}X25519PublicKey"])
    ID[who] = {"seed": seed, "ed": pk, "xs": xs, "xp": xp}
check("initiator identity is peerIds[0]", ID["initiator"]["ed"].hex(), V["peerIds"][0]["key"])
check("responder identity is peerIds[1]", ID["responder"]["ed"].hex(), V["peerIds"][1]["key"])

# ---- §3 Noise_XX_25519_ChaChaPoly_BLAKE2b ----

HS = V["handshake"]
PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_BLAKE2b"
PROLOGUE = b"dustbox/net"
check("protocol name", PROTOCOL_NAME.decode(), HS["protocolName"])
check("prologue", PROLOGUE.hex(), HS["prologue"])
HASHLEN = 64


def noise_hmac(key, data):
    return hmac.new(key, data, hashlib.blake2b).digest()


def hkdf(ck, ikm, n):
    temp = noise_hmac(ck, ikm)
    o1 = noise_hmac(temp, b"\x01")
    o2 = noise_hmac(temp, o1 + b"\x02")
    if n == 2:
        return o1, o2
    return o1, o2, noise_hmac(temp, o2 + b"\x03")


def aead_nonce(n):
    return b"\x00" * 4 + struct.pack("<Q", n)


def aead_enc(k, n, ad, pt):
    return ChaCha20Poly1305(k).encrypt(aead_nonce(n), pt, ad)


def aead_dec(k, n, ad, ct):
    return ChaCha20Poly1305(k).decrypt(aead_nonce(n), ct, ad)


class Symmetric:
    def __init__(self):
        self.h = PROTOCOL_NAME.ljust(HASHLEN, b"\x00") if len(PROTOCOL_NAME) <= HASHLEN else hashlib.blake2b(PROTOCOL_NAME).digest()
        self.ck = self.h
        self.k = None
        self.n = 0

    def mix_hash(self, data):
        self.h = hashlib.blake2b(self.h + data).digest()

    def mix_key(self, ikm):
        self.ck, tk = hkdf(self.ck, ikm, 2)
        self.k, self.n = tk[:32], 0

    def encrypt_and_hash(self, pt):
        if self.k is None:
            ct = pt
        else:
            ct = aead_enc(self.k, self.n, self.h, pt)
            self.n += 1
        self.mix_hash(ct)
        return ct

    def decrypt_and_hash(self, ct):
        if self.k is None:
            pt = ct
        else:
            pt = aead_dec(self.k, self.n, self.h, ct)
            self.n += 1
        self.mix_hash(ct)
        return pt

    def split(self):
        t1, t2 = hkdf(self.ck, b"", 2)
        return t1[:32], t2[:32]


def payload1(min_v, max_v):
    return b"dbx" + bytes([min_v, max_v])


EXT_DEVICE_CERT = 0x01


def payload23(version, caps, ed25519_pk, reason="", cert=None):
    r = reason.encode("utf-8")
    out = bytes([version]) + struct.pack(">I", caps) + ed25519_pk + struct.pack(">H", len(r)) + r
    if cert is not None:
        out += bytes([EXT_DEVICE_CERT]) + struct.pack(">H", len(cert)) + cert
    return out


def parse_payload23_ext(p):
    """(version, caps, pk, reason, extensions): extensions = [(type, bytes)], each within the payload."""
    if len(p) < 39:
        raise ValueError("payload too short")
    version, caps = p[0], struct.unpack(">I", p[1:5])[0]
    pk = p[5:37]
    rl = struct.unpack(">H", p[37:39])[0]
    if len(p) < 39 + rl:
        raise ValueError("payload length")
    reason = p[39:39 + rl].decode("utf-8")
    exts, i = [], 39 + rl
    while i < len(p):
        if len(p) - i < 3:
            raise ValueError("extension header truncated")
        t, n = p[i], struct.unpack(">H", p[i + 1:i + 3])[0]
        if len(p) - i - 3 < n:
            raise ValueError("extension truncated")
        exts.append((t, p[i + 3:i + 3 + n]))
        i += 3 + n
    if sum(1 for t, _ in exts if t == EXT_DEVICE_CERT) > 1:
        raise ValueError("two device certificates")
    return version, caps, pk, reason, exts


def parse_payload23(p):
    version, caps, pk, reason, exts = parse_payload23_ext(p)
    if exts:
        raise ValueError("unexpected extensions")
    return version, caps, pk, reason


def choose_version(offer, speaks):
    """The highest version both speak, or 0 and the refusal reason."""
    lo, hi = max(offer[0], speaks[0]), min(offer[1], speaks[1])
    if lo > hi:
        return 0, (f"no common protocol version: it offered {offer[0]}..{offer[1]}, "
                   f"this node speaks {speaks[0]}..{speaks[1]}")
    return hi, ""


CAP_STORAGE = 1
e_i = bytes.fromhex(HS["initiatorEphemeralSecret"])
e_r = bytes.fromhex(HS["responderEphemeralSecret"])
I, R = ID["initiator"], ID["responder"]

# initiator writes message 1
si = Symmetric()
si.mix_hash(PROLOGUE)
p1 = payload1(1, 1)
check("payload1", p1.hex(), HS["payload1"])
msg1 = x25519_pub(e_i)
si.mix_hash(msg1)
msg1 += si.encrypt_and_hash(p1)
check("message1", msg1.hex(), HS["message1"])

# responder reads message 1, writes message 2
sr = Symmetric()
sr.mix_hash(PROLOGUE)
re_i = msg1[:32]
sr.mix_hash(re_i)
got_p1 = sr.decrypt_and_hash(msg1[32:])
check("responder reads payload1 magic", got_p1[:3], b"dbx")
version, reason = choose_version((got_p1[3], got_p1[4]), (1, 1))
check("responder picks version 1", (version, reason), (1, ""))
p2 = payload23(version, CAP_STORAGE, R["ed"])
check("payload2", p2.hex(), HS["payload2"])
msg2 = x25519_pub(e_r)
sr.mix_hash(msg2)
sr.mix_key(x25519(e_r, re_i))  # ee
msg2 += sr.encrypt_and_hash(R["xp"])  # s
sr.mix_key(x25519(R["xs"], re_i))  # es
msg2 += sr.encrypt_and_hash(p2)
check("message2 length (32 + 48 + payload2 + 16)", len(msg2), 32 + 48 + len(p2) + 16)
check("message2", msg2.hex(), HS["message2"])

# initiator reads message 2, writes message 3
re_r = msg2[:32]
si.mix_hash(re_r)
si.mix_key(x25519(e_i, re_r))  # ee
rs_r = si.decrypt_and_hash(msg2[32:80])
si.mix_key(x25519(e_i, rs_r))  # es
got_p2 = parse_payload23(si.decrypt_and_hash(msg2[80:]))
check("initiator reads payload2", got_p2, (1, CAP_STORAGE, R["ed"], ""))
check("binding: X25519 form of payload2's Ed25519 key = responder's Noise static key", ed_pk_to_x25519(got_p2[2]), rs_r)
p3 = payload23(got_p2[0], CAP_STORAGE, I["ed"])
check("payload3", p3.hex(), HS["payload3"])
msg3 = si.encrypt_and_hash(I["xp"])  # s
si.mix_key(x25519(I["xs"], re_r))  # se
msg3 += si.encrypt_and_hash(p3)
check("message3 length (48 + payload3 + 16)", len(msg3), 48 + len(p3) + 16)
check("message3", msg3.hex(), HS["message3"])

# responder reads message 3
rs_i = sr.decrypt_and_hash(msg3[:48])
sr.mix_key(x25519(e_r, rs_i))  # se
got_p3 = parse_payload23(sr.decrypt_and_hash(msg3[48:]))
check("responder reads payload3", got_p3, (1, CAP_STORAGE, I["ed"], ""))
check("binding: X25519 form of payload3's Ed25519 key = initiator's Noise static key", ed_pk_to_x25519(got_p3[2]), rs_i)
check("payload3 version = responder's choice, reason_len 0", (got_p3[0], got_p3[3]), (version, ""))

check("handshake hash (initiator)", si.h.hex(), HS["handshakeHash"])
check("handshake hash (responder)", sr.h.hex(), HS["handshakeHash"])
for name, m in (("message1", msg1), ("message2", msg2), ("message3", msg3)):
    check(f"{name} within 1024 bytes", len(m) <= 1024, True)

# altering any byte of message 2 or 3 fails to authenticate (a few positions)
for name, m, reader in (("message2", msg2, "initiator"), ("message3", msg3, "responder")):
    for pos in (0, 40, len(m) - 1):
        bad = bytearray(m)
        bad[pos] ^= 1
        s = Symmetric()
        s.mix_hash(PROLOGUE)
        s.mix_hash(msg1[:32])
        s.mix_hash(msg1[32:])
        try:
            if name == "message2":
                s.mix_hash(bytes(bad[:32]))
                s.mix_key(x25519(e_i, bytes(bad[:32])))
                rs = s.decrypt_and_hash(bytes(bad[32:80]))
                s.mix_key(x25519(e_i, rs))
                s.decrypt_and_hash(bytes(bad[80:]))
            else:
                s.mix_hash(msg2[:32])
                s.mix_key(x25519(e_r, msg1[:32]))
                s.decrypt_and_hash(msg2[32:80])
                s.mix_key(x25519(R["xs"], msg1[:32]))
                s.decrypt_and_hash(msg2[80:])
                rs = s.decrypt_and_hash(bytes(bad[:48]))
                s.mix_key(x25519(e_r, rs))
                s.decrypt_and_hash(bytes(bad[48:]))
            check(f"altered {name} byte {pos} refused", "accepted", "refused")
        except (InvalidTag, ValueError):
            check(f"altered {name} byte {pos} refused", "refused", "refused")

# a refusal: the initiator offers 2..2, the responder speaks 1..1
v0, why = choose_version((2, 2), (1, 1))
refusal = payload23(v0, 0, R["ed"], why)
check("refusalPayload2", refusal.hex(), HS["refusalPayload2"])
check("refusalPayload2 parses (version 0, caps 0)", parse_payload23(bytes.fromhex(HS["refusalPayload2"]))[:2], (0, 0))

k1, k2 = si.split()
check("Split() agrees on both sides", sr.split(), (k1, k2))

# ---- §3.4 device certificates ----

DC = V["deviceCert"]
CERT_LABEL = b"dustbox/v1/device-cert"
CONTROL = set(range(0x00, 0x20)) | set(range(0x7F, 0xA0))


def device_cert_body(identity_pk, device_pk, created_ms, name):
    nb = name.encode("utf-8")
    assert len(nb) <= 64
    return b"DBXC" + bytes([1]) + identity_pk + device_pk + struct.pack(">Q", created_ms) + bytes([len(nb)]) + nb


def decode_device_cert(c):
    """Strict decode: exact length, magic, version, name (valid UTF-8, no control characters)."""
    if not 4 + 1 + 32 + 32 + 8 + 1 + 64 <= len(c) <= 4 + 1 + 32 + 32 + 8 + 1 + 64 + 64:
        raise ValueError("certificate length")
    if c[:4] != b"DBXC" or c[4] != 1:
        raise ValueError("magic or version")
    n = c[77]
    if n > 64 or len(c) != 78 + n + 64:
        raise ValueError("name length")
    name = c[78:78 + n].decode("utf-8", errors="strict")
    if any(ord(ch) in CONTROL for ch in name):
        raise ValueError("control characters in the name")
    return {"identity": c[5:37], "device": c[37:69], "created_ms": struct.unpack(">Q", c[69:77])[0],
            "name": name, "body": c[:78 + n], "sig": c[78 + n:]}


def verify_device_cert(c, expect_device):
    d = decode_device_cert(c)
    try:
        Ed25519PublicKey.from_public_bytes(d["identity"]).verify(d["sig"], CERT_LABEL + b"\x00" + d["body"])
    except InvalidSignature:
        raise ValueError("invalid signature")
    if d["device"] != expect_device:
        raise ValueError("certificate for another device key")
    return d


id_seed = bytes.fromhex(DC["identitySeed"])
dev_seed = bytes.fromhex(DC["deviceSeed"])
check("deviceCert identity is the initiator's", id_seed, ID["initiator"]["seed"])
id_pk = ed_pk(id_seed)
dev_pk = ed_pk(dev_seed)
check("deviceCert identity public key", id_pk.hex(), DC["identityPublicKey"])
check("deviceCert device public key", dev_pk.hex(), DC["devicePublicKey"])
body = device_cert_body(id_pk, dev_pk, DC["createdMs"], DC["name"])
sig_input = CERT_LABEL + b"\x00" + body
check("deviceCert signature input", sig_input.hex(), DC["signatureInput"])
check("deviceCert label is 22 bytes", len(CERT_LABEL), 22)
sig = Ed25519PrivateKey.from_private_bytes(id_seed).sign(sig_input)
cert = body + sig
check("deviceCert bytes (Ed25519 is deterministic)", cert.hex(), DC["cert"])
check("deviceCert length", len(cert), 4 + 1 + 32 + 32 + 8 + 1 + len(DC["name"].encode("utf-8")) + 64)
try:
    d = verify_device_cert(bytes.fromhex(DC["cert"]), dev_pk)
    check("deviceCert verifies and decodes", (d["identity"], d["device"], d["created_ms"], d["name"]),
          (id_pk, dev_pk, DC["createdMs"], DC["name"]))
except ValueError as e:
    check("deviceCert verifies and decodes", str(e), "ok")
for what, mutate, expect_dev in (
    ("altered name byte", lambda b: b[:78] + bytes([b[78] ^ 1]) + b[79:], dev_pk),
    ("identity replaced", lambda b: b[:5] + ID["responder"]["ed"] + b[37:], dev_pk),
    ("altered signature", lambda b: b[:-1] + bytes([b[-1] ^ 1]), dev_pk),
    ("for another device key", lambda b: b, ID["responder"]["ed"]),
    ("truncated", lambda b: b[:-1], dev_pk),
    ("trailing byte", lambda b: b + b"\x00", dev_pk),
    ("version 2", lambda b: b[:4] + b"\x02" + b[5:], dev_pk),
    ("name_len 65", lambda b: b[:77] + b"\x41" + b[78:], dev_pk),
    ("control character in the name", lambda b: b[:78] + b"\x07" + b[79:], dev_pk),
):
    try:
        verify_device_cert(mutate(bytes.fromhex(DC["cert"])), expect_dev)
        check(f"deviceCert {what} refused", "accepted", "refused")
    except (ValueError, UnicodeDecodeError):
        check(f"deviceCert {what} refused", "refused", "refused")

p3c = payload23(1, 0, dev_pk, "", cert)
check("payload3 with the device certificate extension", p3c.hex(), DC["payload3WithCert"])
v_, c_, pk_, r_, ex_ = parse_payload23_ext(bytes.fromhex(DC["payload3WithCert"]))
check("payload3WithCert parses", (v_, c_, pk_, r_, ex_), (1, 0, dev_pk, "", [(EXT_DEVICE_CERT, cert)]))
old = bytes.fromhex(DC["payload3WithCert"])
rl = struct.unpack(">H", old[37:39])[0]
check("an old decoder (ignoring bytes after the reason) reads the same fields", old[:39 + rl], payload23(1, 0, dev_pk))
check("payload3WithCert keeps message 3 within 1024 bytes", 48 + len(old) + 16 <= 1024, True)
big = payload23(0, 0, dev_pk, "r" * 200, device_cert_body(id_pk, dev_pk, 0, "n" * 64) + bytes(64))
check("largest payload 2 (200-byte reason, 206-byte certificate) within 1024 bytes", 32 + 48 + len(big) + 16 <= 1024, True)
check("unknown extensions are skipped", parse_payload23_ext(old + b"\x7f\x00\x01\x00")[4], [(EXT_DEVICE_CERT, cert), (0x7F, b"\x00")])
for what, bad in (("truncated extension", old[:-1]), ("extension header", payload23(1, 0, dev_pk) + b"\x01\x00"),
                  ("two certificates", old + old[39 + rl:])):
    try:
        parse_payload23_ext(bad)
        check(f"payload extension refused: {what}", "accepted", "refused")
    except ValueError:
        check(f"payload extension refused: {what}", "refused", "refused")

# ---- §6 shards and audits ----

SH = V["shards"]
data = bytes.fromhex(SH["data"])
sid = h32(data)
empty_id = h32(b"")
nonce = bytes.fromhex(SH["auditNonce"])
check("shard id = H32(data)", sid.hex(), SH["id"])
check("empty shard id = H32('')", empty_id.hex(), SH["emptyId"])


def audit_proof(nonce, shard_id, shard, offset, length):
    end = offset + length if length else len(shard)
    if offset > len(shard) or end > len(shard):
        return 2, bytes(32)
    return 0, h32(b"dustbox/v1/audit" + shard_id + struct.pack(">II", offset, length) + shard[offset:end], key=nonce)


proof_whole = audit_proof(nonce, sid, data, 0, 0)
check("audit proof, whole shard (offset 0, length 0)", proof_whole[1].hex(), SH["auditProofWhole"])
check("audit proof, offset 8 length 5", audit_proof(nonce, sid, data, 8, 5)[1].hex(), SH["auditProofRange8_5"])
check("audit offset past the end is BAD_RANGE", audit_proof(nonce, sid, data, len(data) + 1, 0)[0], 2)
check("audit end past the end is BAD_RANGE", audit_proof(nonce, sid, data, 8, len(data))[0], 2)

# ---- §5 messages ----

MAX_SHARD_BYTES = 4 * 1024 * 1024 + 4 * 1024
MAX_FRAME_BYTES = 4 * 1024 * 1024 + 8 * 1024
MAX_IDS = 1024
MAX_LIST = 4096
MAX_AUDIT = 64
MAX_TEXT = 256
MAX_AGENT = 64
MAX_HANDLERS = 8
MAX_DEVICE = 4 * 1024 * 1024
MAX_KEEP_POINTER = 1024
MAX_RELAY_CHUNK = 64 * 1024
check("MAX_SHARD_BYTES", MAX_SHARD_BYTES, 4198400)
check("MAX_FRAME_BYTES", MAX_FRAME_BYTES, 4202496)

TYPES = {"HELLO": 0x01, "PING": 0x02, "PUT_SHARD": 0x03, "GET_SHARD": 0x04, "HAS": 0x05, "DELETE": 0x06,
         "LIST": 0x07, "AUDIT": 0x08, "SPACE": 0x09, "GOODBYE": 0x0A, "DEVICE": 0x0B, "KEEP_POINTER": 0x0C,
         "INTRODUCE": 0x0D, "PUNCH": 0x0E, "RELAY_OPEN": 0x0F, "RELAY_ACCEPT": 0x10, "RELAY_DATA": 0x11,
         "RELAY_CLOSE": 0x12, "ERROR": 0xFF}
NAMES = {v: k for k, v in TYPES.items()}
NOTICES = {"HELLO", "GOODBYE"}
CODES = {"BAD_MESSAGE": 1, "UNKNOWN_TYPE": 2, "NOT_FOUND": 3, "HASH_MISMATCH": 4, "QUOTA_EXCEEDED": 5,
         "SPACE_EXCEEDED": 6, "DISK_FULL": 7, "TOO_LARGE": 8, "BUSY": 9, "INTERNAL": 10, "TIMEOUT": 11,
         "FRAME_TOO_LARGE": 12, "FRAME_INVALID": 13, "VERSION_MISMATCH": 14, "REFUSED": 15, "CLOSED": 16}


class BadMessage(Exception):
    pass


class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, n):
        if self.i + n > len(self.b):
            raise BadMessage(f"truncated: need {n} bytes at {self.i}")
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def rest(self):
        return self.take(len(self.b) - self.i)

    def end(self):
        if self.i != len(self.b):
            raise BadMessage(f"{len(self.b) - self.i} trailing bytes")


def text(r, limit):
    n = r.u16()
    if n > limit:
        raise BadMessage(f"text of {n} bytes over {limit}")
    try:
        return r.take(n).decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadMessage("text is not valid UTF-8")


def put_text(s, limit):
    b = s.encode("utf-8")
    assert len(b) <= limit
    return struct.pack(">H", len(b)) + b


def count(r, lo, hi, what):
    n = r.u16()
    if not lo <= n <= hi:
        raise BadMessage(f"{what} count {n} not in {lo}..{hi}")
    return n


def bitmap(r, n):
    bm = r.take((n + 7) // 8)
    bits = [bool(bm[i // 8] >> (i % 8) & 1) for i in range(n)]
    if n % 8 and bm[-1] >> (n % 8):
        raise BadMessage("bitmap bits set past n")
    return bits


def put_bitmap(bits):
    bm = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            bm[i // 8] |= 1 << (i % 8)
    return struct.pack(">H", len(bits)) + bytes(bm)


def addr(r, required):
    fam, ip, port = r.u8(), r.take(4), r.u16()
    if fam == 0 and not required and port == 0 and ip == bytes(4):
        return None
    if fam != 4 or port == 0:
        raise BadMessage(f"address family {fam} port {port}")
    return (".".join(str(x) for x in ip), port)


def put_addr(a):
    if a is None:
        return bytes(7)
    return b"\x04" + bytes(int(x) for x in a[0].split(".")) + struct.pack(">H", a[1])


def dec_body(name, reply, r):
    f = {}
    if name in ("GOODBYE", "ERROR"):
        f["code"] = r.u16()
        f["text"] = text(r, MAX_TEXT)
    elif name == "HELLO":
        f["agent"] = text(r, MAX_AGENT)
        f["utp_port"], f["tcp_port"] = r.u16(), r.u16()
        fam = r.u8()
        if fam == 0:
            f["observed"] = None
        elif fam == 4:
            ip = r.take(4)
            f["observed"] = (".".join(str(x) for x in ip), r.u16())
        else:
            raise BadMessage(f"address family {fam}")
        f["max_frame"], f["max_requests"] = r.u32(), r.u16()
    elif name == "PING":
        f["nonce"] = r.u64()
    elif name == "PUT_SHARD" and not reply:
        f["shard_id"] = r.take(32)
        f["data"] = r.rest()
        if len(f["data"]) > MAX_SHARD_BYTES:
            raise BadMessage("shard over MAX_SHARD_BYTES")
    elif name == "PUT_SHARD":
        f["status"] = r.u8()
        if f["status"] not in (0, 1):
            raise BadMessage(f"PUT status {f['status']}")
        f["used_by_you"], f["quota_for_you"] = r.u64(), r.u64()
    elif name == "GET_SHARD" and not reply:
        f["shard_id"] = r.take(32)
    elif name == "GET_SHARD":
        f["data"] = r.rest()
        if len(f["data"]) > MAX_SHARD_BYTES:
            raise BadMessage("shard over MAX_SHARD_BYTES")
    elif name in ("HAS", "DELETE") and not reply:
        n = count(r, 1, MAX_IDS, name)
        f["ids"] = [r.take(32) for _ in range(n)]
    elif name in ("HAS", "DELETE"):
        n = count(r, 1, MAX_IDS, name)
        f["bits"] = bitmap(r, n)
        if name == "DELETE":
            f["used_by_you"] = r.u64()
    elif name == "LIST" and not reply:
        flags = r.u8()
        if flags & ~1:
            raise BadMessage(f"unknown LIST flags {flags:#x}")
        f["cursor"] = r.take(32) if flags & 1 else None
        f["limit"] = r.u16()
        if not 1 <= f["limit"] <= MAX_LIST:
            raise BadMessage(f"LIST limit {f['limit']}")
    elif name == "LIST":
        more = r.u8()
        if more not in (0, 1):
            raise BadMessage(f"LIST more {more}")
        f["more"] = bool(more)
        n = count(r, 0, MAX_LIST, "LIST")
        f["entries"] = [(r.take(32), r.u32()) for _ in range(n)]
    elif name == "AUDIT" and not reply:
        n = count(r, 1, MAX_AUDIT, "AUDIT")
        f["challenges"] = [(r.take(32), r.take(32), r.u32(), r.u32()) for _ in range(n)]
    elif name == "AUDIT":
        n = count(r, 1, MAX_AUDIT, "AUDIT")
        f["results"] = []
        for _ in range(n):
            st, proof = r.u8(), r.take(32)
            if st not in (0, 1, 2):
                raise BadMessage(f"AUDIT status {st}")
            if st == 1 and proof != bytes(32):
                raise BadMessage("MISSING with a nonzero proof")
            f["results"].append((st, proof))
    elif name == "DEVICE":
        f["body"] = r.rest()
        if not (0 if reply else 1) <= len(f["body"]) <= MAX_DEVICE:
            raise BadMessage(f"DEVICE body of {len(f['body'])} bytes")
    elif name == "KEEP_POINTER" and not reply:
        f["item"] = r.rest()
        if not 1 <= len(f["item"]) <= MAX_KEEP_POINTER:
            raise BadMessage(f"KEEP_POINTER item of {len(f['item'])} bytes")
    elif name == "KEEP_POINTER":
        pass
    elif name == "INTRODUCE" and not reply:
        f["target"], f["target_addr"], f["self"] = r.take(32), addr(r, False), addr(r, False)
    elif name == "INTRODUCE":
        f["key"], f["addr"], f["nonce"] = r.take(32), addr(r, True), r.take(8)
    elif name == "PUNCH" and not reply:
        f["from"], f["addr"], f["nonce"] = r.take(32), addr(r, True), r.take(8)
    elif name == "RELAY_OPEN" and not reply:
        f["target"] = r.take(32)
    elif name == "RELAY_OPEN":
        f["circuit"] = r.u32()
    elif name == "RELAY_ACCEPT" and not reply:
        f["circuit"], f["from"] = r.u32(), r.take(32)
    elif name == "RELAY_DATA" and not reply:
        f["circuit"], f["data"] = r.u32(), r.rest()
        if not 1 <= len(f["data"]) <= MAX_RELAY_CHUNK:
            raise BadMessage(f"RELAY_DATA of {len(f['data'])} bytes")
    elif name == "RELAY_CLOSE" and not reply:
        f["circuit"] = r.u32()
    elif name in ("PUNCH", "RELAY_ACCEPT", "RELAY_DATA", "RELAY_CLOSE"):
        pass
    elif name == "SPACE" and not reply:
        pass
    elif name == "SPACE":
        for k in ("donated", "used", "free", "quota_for_you", "used_by_you"):
            f[k] = r.u64()
        f["max_shard"] = r.u32()
    r.end()
    return f


def decode(frame):
    """Strict decode of a frame plaintext: (name, is_reply, id, fields)."""
    r = Reader(frame)
    t, mid = r.u8(), r.u32()
    reply = t != 0xFF and bool(t & 0x80)
    name = NAMES.get(t & 0x7F if reply else t)
    if name is None or (reply and name in NOTICES):
        raise BadMessage(f"unknown type {t:#x}")
    if name in NOTICES and mid != 0:
        raise BadMessage("notice with a nonzero id")
    if name not in NOTICES and mid == 0:
        raise BadMessage("request or reply with id 0")
    return name, reply, mid, dec_body(name, reply, r)


def encode(name, reply, mid, f):
    t = TYPES[name] | (0x80 if reply else 0)
    out = bytes([t]) + struct.pack(">I", mid)
    if name in ("GOODBYE", "ERROR"):
        out += struct.pack(">H", f["code"]) + put_text(f["text"], MAX_TEXT)
    elif name == "HELLO":
        out += put_text(f["agent"], MAX_AGENT) + struct.pack(">HH", f["utp_port"], f["tcp_port"])
        if f["observed"] is None:
            out += b"\x00"
        else:
            ip, port = f["observed"]
            out += b"\x04" + bytes(int(x) for x in ip.split(".")) + struct.pack(">H", port)
        out += struct.pack(">IH", f["max_frame"], f["max_requests"])
    elif name == "PING":
        out += struct.pack(">Q", f["nonce"])
    elif name == "PUT_SHARD" and not reply:
        out += f["shard_id"] + f["data"]
    elif name == "PUT_SHARD":
        out += struct.pack(">BQQ", f["status"], f["used_by_you"], f["quota_for_you"])
    elif name == "GET_SHARD":
        out += f["data"] if reply else f["shard_id"]
    elif name in ("HAS", "DELETE") and not reply:
        out += struct.pack(">H", len(f["ids"])) + b"".join(f["ids"])
    elif name in ("HAS", "DELETE"):
        out += put_bitmap(f["bits"])
        if name == "DELETE":
            out += struct.pack(">Q", f["used_by_you"])
    elif name == "LIST" and not reply:
        out += (b"\x00" if f["cursor"] is None else b"\x01" + f["cursor"]) + struct.pack(">H", f["limit"])
    elif name == "LIST":
        out += struct.pack(">BH", int(f["more"]), len(f["entries"]))
        out += b"".join(i + struct.pack(">I", s) for i, s in f["entries"])
    elif name == "AUDIT" and not reply:
        out += struct.pack(">H", len(f["challenges"]))
        out += b"".join(i + n + struct.pack(">II", o, l) for i, n, o, l in f["challenges"])
    elif name == "AUDIT":
        out += struct.pack(">H", len(f["results"])) + b"".join(bytes([s]) + p for s, p in f["results"])
    elif name == "DEVICE":
        out += f["body"]
    elif name == "KEEP_POINTER" and not reply:
        out += f["item"]
    elif name == "INTRODUCE" and not reply:
        out += f["target"] + put_addr(f["target_addr"]) + put_addr(f["self"])
    elif name == "INTRODUCE":
        out += f["key"] + put_addr(f["addr"]) + f["nonce"]
    elif name == "PUNCH" and not reply:
        out += f["from"] + put_addr(f["addr"]) + f["nonce"]
    elif name == "RELAY_OPEN":
        out += struct.pack(">I", f["circuit"]) if reply else f["target"]
    elif name == "RELAY_ACCEPT" and not reply:
        out += struct.pack(">I", f["circuit"]) + f["from"]
    elif name == "RELAY_DATA" and not reply:
        out += struct.pack(">I", f["circuit"]) + f["data"]
    elif name == "RELAY_CLOSE" and not reply:
        out += struct.pack(">I", f["circuit"])
    elif name == "SPACE" and reply:
        out += struct.pack(">QQQQQI", f["donated"], f["used"], f["free"], f["quota_for_you"],
                           f["used_by_you"], f["max_shard"])
    return out


GiB = 1 << 30
n_data = len(data)
A_PUB, B_PUB = ID["initiator"]["ed"], ID["responder"]["ed"]
# (vector name) -> (type name, is reply, id, fields). Derived values come from the shards vectors, the
# audit proofs computed above and the spec's constants; the rest are example values.
EXPECTED = {
    "HELLO": ("HELLO", False, 0, {"agent": "dustbox/0.1", "utp_port": 49737, "tcp_port": 49737,
                                  "observed": ("127.0.0.1", 40000), "max_frame": MAX_FRAME_BYTES,
                                  "max_requests": MAX_HANDLERS}),
    "HELLO_noObserved": ("HELLO", False, 0, {"agent": "x", "utp_port": 1, "tcp_port": 0, "observed": None,
                                             "max_frame": 65536, "max_requests": 1}),
    "GOODBYE": ("GOODBYE", False, 0, {"code": CODES["REFUSED"], "text": "refused: not on the allow list"}),
    "ERROR": ("ERROR", False, 7, {"code": CODES["NOT_FOUND"], "text": "no shard 0123456789ab\u2026 here for this owner"}),
    "PING": ("PING", False, 1, {"nonce": 0x0102030405060708}),
    "PING_reply": ("PING", True, 1, {"nonce": 0x0102030405060708}),
    "PUT_SHARD": ("PUT_SHARD", False, 2, {"shard_id": sid, "data": data}),
    "PUT_SHARD_reply": ("PUT_SHARD", True, 2, {"status": 0, "used_by_you": n_data, "quota_for_you": GiB}),
    "GET_SHARD": ("GET_SHARD", False, 3, {"shard_id": sid}),
    "GET_SHARD_reply": ("GET_SHARD", True, 3, {"data": data}),
    "HAS": ("HAS", False, 4, {"ids": [sid, empty_id]}),
    "HAS_reply": ("HAS", True, 4, {"bits": [True, False]}),
    "DELETE": ("DELETE", False, 5, {"ids": [sid]}),
    "DELETE_reply": ("DELETE", True, 5, {"bits": [True], "used_by_you": 0}),
    "LIST": ("LIST", False, 6, {"cursor": None, "limit": 1024}),
    "LIST_after": ("LIST", False, 6, {"cursor": empty_id, "limit": 2}),
    "LIST_reply": ("LIST", True, 6, {"more": True, "entries": [(empty_id, 0), (sid, n_data)]}),
    "AUDIT": ("AUDIT", False, 0xFFFFFFFE, {"challenges": [(sid, nonce, 0, 0), (sid, nonce, 8, 5)]}),
    "AUDIT_reply": ("AUDIT", True, 0xFFFFFFFE, {"results": [proof_whole, audit_proof(nonce, sid, data, 8, 5)]}),
    "SPACE": ("SPACE", False, 9, {}),
    "SPACE_reply": ("SPACE", True, 9, {"donated": 10 * GiB, "used": n_data, "free": GiB - n_data,
                                       "quota_for_you": GiB, "used_by_you": n_data, "max_shard": MAX_SHARD_BYTES}),
    "DEVICE": ("DEVICE", False, 10, {"body": b"opaque device request"}),
    "DEVICE_reply": ("DEVICE", True, 10, {"body": b"opaque answer"}),
    "DEVICE_reply_empty": ("DEVICE", True, 11, {"body": b""}),
    "KEEP_POINTER": ("KEEP_POINTER", False, 12, {"item": b"d1:v3:abce"}),
    "KEEP_POINTER_reply": ("KEEP_POINTER", True, 12, {}),
    "INTRODUCE": ("INTRODUCE", False, 13, {"target": B_PUB, "target_addr": None, "self": ("203.0.113.7", 51000)}),
    "INTRODUCE_byAddress": ("INTRODUCE", False, 14, {"target": bytes(32), "target_addr": ("198.51.100.2", 6881), "self": None}),
    "INTRODUCE_reply": ("INTRODUCE", True, 13, {"key": B_PUB, "addr": ("198.51.100.2", 6881), "nonce": bytes(range(0xA0, 0xA8))}),
    "PUNCH": ("PUNCH", False, 15, {"from": A_PUB, "addr": ("203.0.113.7", 51000), "nonce": bytes(range(0xA0, 0xA8))}),
    "PUNCH_reply": ("PUNCH", True, 15, {}),
    "RELAY_OPEN": ("RELAY_OPEN", False, 16, {"target": B_PUB}),
    "RELAY_OPEN_reply": ("RELAY_OPEN", True, 16, {"circuit": 7}),
    "RELAY_ACCEPT": ("RELAY_ACCEPT", False, 17, {"circuit": 7, "from": A_PUB}),
    "RELAY_ACCEPT_reply": ("RELAY_ACCEPT", True, 17, {}),
    "RELAY_DATA": ("RELAY_DATA", False, 18, {"circuit": 7, "data": b"ciphertext of the inner channel"}),
    "RELAY_DATA_reply": ("RELAY_DATA", True, 18, {}),
    "RELAY_CLOSE": ("RELAY_CLOSE", False, 19, {"circuit": 7}),
    "RELAY_CLOSE_reply": ("RELAY_CLOSE", True, 19, {}),
}
MSG = V["messages"]
check("message vector names", sorted(MSG), sorted(EXPECTED))
for vname, (name, reply, mid, fields) in EXPECTED.items():
    want = MSG.get(vname, "")
    built = encode(name, reply, mid, fields)
    check(f"message {vname} built from its fields", built.hex(), want)
    try:
        dec = decode(bytes.fromhex(want))
    except BadMessage as e:
        check(f"message {vname} decodes strictly", str(e), "ok")
        continue
    check(f"message {vname} decodes to its fields", dec, (name, reply, mid, fields))
    check(f"message {vname} re-encodes", encode(*dec).hex(), want)
    check(f"message {vname} within MAX_FRAME_BYTES", len(want) // 2 <= MAX_FRAME_BYTES, True)
lr = EXPECTED["LIST_reply"][3]["entries"]
check("LIST_reply ids in ascending byte order", [i for i, _ in lr], sorted(i for i, _ in lr))

# the strict decoder refuses what §5.1 calls errors
REFUSE = {
    "trailing byte": MSG["PING"] + "00",
    "truncated": MSG["PING"][:-2],
    "HAS bitmap bit past n": MSG["HAS_reply"][:-2] + "05",
    "HAS n = 0": "050000000400" + "00",
    "LIST unknown flag": "070000000602" + "0400",
    "LIST limit 0": "07000000060000" + "00",
    "LIST limit 4097": "0700000006001001",
    "AUDIT unknown status": MSG["AUDIT_reply"][:14] + "03" + MSG["AUDIT_reply"][16:],
    "PUT status 2": "83000000020200000000000000260000000040000000",
    "HELLO family 6": MSG["HELLO_noObserved"][:-14] + "06" + MSG["HELLO_noObserved"][-12:],
    "GOODBYE invalid UTF-8": "0a00000000000f0001ff",
    "GOODBYE text 257 bytes": "0a00000000000f0101" + "61" * 257,
    "HELLO with id 1": "01" + "00000001" + MSG["HELLO"][10:],
    "PING with id 0": "02" + "00000000" + MSG["PING"][10:],
    "HELLO reply type": "81" + MSG["HELLO"][2:],
    "unknown type 0x0d": "0d00000001",
    "DEVICE request empty": "0b0000000a",
    "DEVICE request over 4 MiB": "0b0000000a" + "00" * (MAX_DEVICE + 1),
    "KEEP_POINTER item empty": "0c0000000c",
    "KEEP_POINTER item of 1025 bytes": "0c0000000c" + "00" * (MAX_KEEP_POINTER + 1),
    "KEEP_POINTER reply with a body": "8c0000000c00",
}
for what, hx in REFUSE.items():
    try:
        decode(bytes.fromhex(hx))
        check(f"decoder refuses {what}", "accepted", "refused")
    except BadMessage:
        check(f"decoder refuses {what}", "refused", "refused")

# ---- §4 records after Split() ----


def record(key, n, plaintext):
    ct = ChaCha20Poly1305(key).encrypt(aead_nonce(n), plaintext, b"")
    return struct.pack(">I", len(ct)) + ct


def open_record(key, n, rec):
    (L,) = struct.unpack(">I", rec[:4])
    if L > MAX_FRAME_BYTES + 16:
        raise ValueError("FRAME_TOO_LARGE")
    if L < 21 or len(rec) != 4 + L:
        raise ValueError("FRAME_INVALID")
    return ChaCha20Poly1305(key).decrypt(aead_nonce(n), rec[4:], b"")


RECORDS = [("initiatorRecord1", k1, 0), ("initiatorRecord2", k1, 1), ("responderRecord1", k2, 0)]
for rname, key, n in RECORDS:
    ref = HS["recordPlaintexts"][rname]
    check(f"{rname} plaintext reference", ref.startswith("messages.") and ref[9:] in MSG, True)
    if ref[9:] not in MSG:
        continue
    pt = bytes.fromhex(MSG[ref[9:]])
    rec = bytes.fromhex(HS[rname])
    try:
        check(f"{rname} decrypts (key {'k1' if key is k1 else 'k2'}, n {n}) to {ref}", open_record(key, n, rec).hex(), pt.hex())
    except (InvalidTag, ValueError) as e:
        check(f"{rname} decrypts (key {'k1' if key is k1 else 'k2'}, n {n}) to {ref}", repr(e), "ok")
    check(f"{rname} re-encrypts", record(key, n, pt).hex(), HS[rname])
    wrong = bytearray(rec)
    wrong[3] ^= 1  # a wrong length (or any altered byte) fails
    try:
        open_record(key, n, bytes(wrong[:4]) + rec[4:])
        check(f"{rname} with an altered length refused", "accepted", "refused")
    except (InvalidTag, ValueError):
        check(f"{rname} with an altered length refused", "refused", "refused")
    try:
        open_record(key, n + 1, rec)
        check(f"{rname} under the next nonce refused (reorder/replay)", "accepted", "refused")
    except InvalidTag:
        check(f"{rname} under the next nonce refused (reorder/replay)", "refused", "refused")

print(f"{checked} checks, {len(failures)} mismatches" + (f"; first: {failures[0]}" if failures else ""))
sys.exit(1 if failures else 0)
