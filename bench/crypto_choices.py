"""Measure the crypto choices on this machine (issue 11, item 2): Ed25519 sign and verify with pyca
`cryptography` and with PyNaCl (libsodium); AES-256-GCM and ChaCha20-Poly1305 at the sizes Hotline
sends. Not part of the test suite; prints one line per figure, best of several runs.

    .venv/bin/python bench/crypto_choices.py          # PyNaCl is optional: `pip install pynacl`
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

RUNS = 5


def rate(fn: Callable[[], object], n: int) -> float:
    """Operations per second: the best of RUNS runs of n calls (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    message = os.urandom(200)  # an envelope body's order of size
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    signature = key.sign(message)
    print(f"ed25519 sign    cryptography  {rate(lambda: key.sign(message), 2000):>9,.0f} /s")
    print(f"ed25519 verify  cryptography  {rate(lambda: public.verify(signature, message), 2000):>9,.0f} /s")
    try:
        import nacl.signing
    except ImportError:
        print("ed25519         pynacl        not installed (pip install pynacl)")
    else:
        nkey = nacl.signing.SigningKey.generate()
        nsigned = nkey.sign(message)
        nverify = nkey.verify_key
        print(f"ed25519 sign    pynacl        {rate(lambda: nkey.sign(message), 2000):>9,.0f} /s")
        print(f"ed25519 verify  pynacl        {rate(lambda: nverify.verify(nsigned), 2000):>9,.0f} /s")
    aes, chacha = AESGCM(os.urandom(32)), ChaCha20Poly1305(os.urandom(32))
    nonce = os.urandom(12)
    for size in (256, 1024, 16 * 1024, 1024 * 1024):
        data = os.urandom(size)
        n = max(20, 200_000 // max(1, size // 256))
        for name, aead in (("aes-256-gcm", aes), ("chacha20-poly1305", chacha)):
            per_s = rate(lambda aead=aead, data=data: aead.encrypt(nonce, data, b"ad"), n)  # type: ignore[misc]
            print(f"{name:<18} {size:>8} B  {per_s:>10,.0f} /s  {per_s * size / 2**20:>8,.0f} MiB/s")


if __name__ == "__main__":
    main()
