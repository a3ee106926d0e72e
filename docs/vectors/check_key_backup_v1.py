#!/usr/bin/env python3
"""Independent check of docs/vectors/key-backup-v1.json, written from docs/keys.md §9 alone.

Argon2id and Poly1305 come from the `cryptography` package (>= 44); XSalsa20 (HSalsa20 + Salsa20) is
written out here; BLAKE2b is hashlib's; Ed25519 is `cryptography`'s. It parses the file field by
field, opens the box with the passphrase, checks the owner id, seals again and compares the bytes,
and checks that altering any header byte makes the box fail to open.
"""

import hashlib
import json
import os
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.poly1305 import Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = os.path.dirname(os.path.abspath(__file__))
M32 = 0xFFFFFFFF
SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)  # "expand 32-byte k"


def rotl(v, c):
    return ((v << c) & M32) | (v >> (32 - c))


def salsa_rounds(x):
    x = list(x)

    def qr(a, b, c, d):
        x[b] ^= rotl((x[a] + x[d]) & M32, 7)
        x[c] ^= rotl((x[b] + x[a]) & M32, 9)
        x[d] ^= rotl((x[c] + x[b]) & M32, 13)
        x[a] ^= rotl((x[d] + x[c]) & M32, 18)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(5, 9, 13, 1); qr(10, 14, 2, 6); qr(15, 3, 7, 11)
        qr(0, 1, 2, 3); qr(5, 6, 7, 4); qr(10, 11, 8, 9); qr(15, 12, 13, 14)
    return x


def state(key, n16):
    k = struct.unpack('<8I', key)
    n = struct.unpack('<4I', n16)
    return [SIGMA[0], k[0], k[1], k[2], k[3], SIGMA[1], n[0], n[1], n[2], n[3], SIGMA[2], k[4], k[5], k[6], k[7], SIGMA[3]]


def hsalsa20(key, n16):
    x = salsa_rounds(state(key, n16))
    return struct.pack('<8I', *(x[i] for i in (0, 5, 10, 15, 6, 7, 8, 9)))


def salsa20_stream(key, n8, length):
    out = b''
    counter = 0
    while len(out) < length:
        s = state(key, n8 + struct.pack('<Q', counter))
        x = salsa_rounds(s)
        out += struct.pack('<16I', *(((a + b) & M32) for a, b in zip(x, s)))
        counter += 1
    return out[:length]


def xsalsa20_stream(key, nonce, length):
    return salsa20_stream(hsalsa20(key, nonce[:16]), nonce[16:], length)


def secretbox(key, nonce, message):
    stream = xsalsa20_stream(key, nonce, 32 + len(message))
    c = bytes(a ^ b for a, b in zip(message, stream[32:]))
    return Poly1305.generate_tag(stream[:32], c) + c


def secretbox_open(key, nonce, box):
    stream = xsalsa20_stream(key, nonce, 32 + len(box) - 16)
    tag, c = box[:16], box[16:]
    try:
        Poly1305.verify_tag(stream[:32], c, tag)
    except Exception:
        return None
    return bytes(a ^ b for a, b in zip(c, stream[32:]))


def box_key(passphrase, header, opslimit, memlimit_kib, salt):
    stretched = Argon2id(salt=salt, length=32, iterations=opslimit, lanes=1, memory_cost=memlimit_kib).derive(passphrase)
    return hashlib.blake2b(header, key=stretched, digest_size=32).digest()


def owner_of(root):
    seed = hashlib.blake2b(b'dustbox/v1/identity', key=root, digest_size=32).digest()
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def parse(b):
    assert len(b) == 140, 'a v1 key backup is 140 bytes'
    assert b[0:8] == b'DUSTKEY\n', 'magic'
    assert b[8] == 1 and b[9] == 2 and b[10] == 1 and b[11] == 0, 'version 1, Argon2id13, secretbox, reserved 0'
    opslimit, memlimit_kib = struct.unpack('>II', b[12:20])
    assert 1 <= opslimit <= 32 and 8 <= memlimit_kib <= 4 * 1024 * 1024
    return {'opslimit': opslimit, 'memlimitKib': memlimit_kib, 'salt': b[20:36], 'nonce': b[36:60], 'owner': b[60:92], 'header': b[0:92], 'box': b[92:140]}


def main():
    with open(os.path.join(HERE, 'key-backup-v1.json'), encoding='utf-8') as fh:
        v = json.load(fh)
    b = bytes.fromhex(v['file'])
    f = parse(b)
    assert f['opslimit'] == v['opslimit'] and f['memlimitKib'] == v['memlimitKib']
    assert f['salt'].hex() == v['salt'] and f['nonce'].hex() == v['nonce'] and f['owner'].hex() == v['ownerId']
    assert f['header'].hex() == v['header'] and f['box'].hex() == v['box']
    import unicodedata
    pw = unicodedata.normalize('NFC', v['passphraseUtf8']).encode('utf-8')
    assert pw.hex() == v['passphraseBytes'], 'passphrase bytes are the NFC UTF-8 encoding'
    k = box_key(pw, f['header'], f['opslimit'], f['memlimitKib'], f['salt'])
    root = secretbox_open(k, f['nonce'], f['box'])
    assert root is not None, 'the box opens with the passphrase'
    assert root.hex() == v['rootSecret'], 'root secret'
    assert owner_of(root).hex() == v['ownerId'], 'owner id = Ed25519 public key of H32(root, "dustbox/v1/identity")'
    assert (f['header'] + secretbox(k, f['nonce'], root)).hex() == v['file'], 'sealing again gives the same bytes'
    for at in (20, 40, 70):
        bad = bytearray(b)
        bad[at] ^= 1
        g = parse(bytes(bad))
        kk = box_key(pw, g['header'], g['opslimit'], g['memlimitKib'], g['salt'])
        assert secretbox_open(kk, g['nonce'], g['box']) is None, f'altered header byte {at} must not open'
    wrong = box_key(b'not the passphrase', f['header'], f['opslimit'], f['memlimitKib'], f['salt'])
    assert secretbox_open(wrong, f['nonce'], f['box']) is None, 'a wrong passphrase must not open'
    print('key-backup-v1.json: all checks passed')


if __name__ == '__main__':
    try:
        main()
    except AssertionError as e:
        print(f'key-backup-v1.json: FAILED: {e}', file=sys.stderr)
        sys.exit(1)
