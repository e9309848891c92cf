"""The signed re-key offer: how two paired terminals start a fresh ratchet without re-pairing.

A terminal restored from a backup holds an older ratchet state; using it would
reuse message keys (AES-GCM nonces) the lost newer state already used (DESIGN:
crash safety of the ratchet). Before it sends anything it offers a re-key: a
fresh X25519 public key and where it stands in both directions of the stream,
signed by its identity key (unchanged, and pinned at pairing). The peer answers
with an offer of its own. Each side then derives a new shared secret from the
two fresh keys, bound to the static secret of the pairing and to both offers,
and starts a new Double Ratchet from it exactly as pairing does (the smaller
identity key takes the initiator's role, the fresh keys stand in for the card
keys).

Offer (msgpack map, signed as ``{b, s}`` with its own context)::

    {v, from, to, nonce, dh, in_upto, in_sh, out_upto, restored_at, seen, reply_to}

``in_upto``/``in_sh``: the highest of the peer's sequence numbers this side has
journaled and the running stream hash at it; ``out_upto``: the last it sealed for
the peer; ``restored_at``: the time of the backup it was restored from (0 if it
was not restored: it is answering); ``seen``: in an answer, the stream hash of
what this side received at the other's ``out_upto`` (32 zero bytes if unknown),
so a restored side can tell that the peer's cursor is in the same stream;
``reply_to``: the nonce of the offer this one answers (16 zero bytes: not an answer).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hotline.core.errors import CryptoError, RemoteProtocolError, SignatureError
from hotline.core.wire import pack, unpack
from hotline.crypto.identity import Identity, verify
from hotline.crypto.signed import signed_map, split_signed

REKEY_CONTEXT = b"hotline-rekey-v1\x00"
REKEY_VERSION = 1
MAX_REKEY_BYTES = 2048


@dataclass(frozen=True, slots=True)
class RekeyOffer:
    """A verified offer. ``raw`` is the exact signed form (journaled, and bound into the secret)."""

    sender: str
    recipient: str
    nonce: bytes
    dh: bytes
    in_upto: int
    in_sh: bytes
    out_upto: int
    restored_at: int
    seen: bytes
    reply_to: bytes
    raw: bytes


def make_offer(
    identity: Identity,
    *,
    sender: str,
    recipient: str,
    nonce: bytes,
    dh_public: bytes,
    in_upto: int,
    in_sh: bytes,
    out_upto: int,
    restored_at: int,
    seen: bytes = bytes(32),
    reply_to: bytes = bytes(16),
) -> bytes:
    body = pack(
        {
            "v": REKEY_VERSION, "from": sender, "to": recipient, "nonce": nonce, "dh": dh_public,
            "in_upto": in_upto, "in_sh": in_sh, "out_upto": out_upto, "restored_at": restored_at,
            "seen": seen, "reply_to": reply_to,
        }
    )  # fmt: skip
    return signed_map(identity, REKEY_CONTEXT, body)


def _int(body: dict[str, object], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 63:
        raise RemoteProtocolError(f"re-key offer field {key!r} must be a non-negative integer")
    return value


def _bytes(body: dict[str, object], key: str, length: int) -> bytes:
    value = body.get(key)
    if not isinstance(value, bytes) or len(value) != length:
        raise RemoteProtocolError(f"re-key offer field {key!r} must be {length} bytes")
    return value


def open_offer(data: bytes, signer_key: bytes) -> RekeyOffer:
    """Verify the signature first, then parse; anything wrong is the peer's error."""
    body_bytes, sig = split_signed(data, MAX_REKEY_BYTES, "re-key offer")
    try:
        verify(signer_key, REKEY_CONTEXT, body_bytes, sig)
    except SignatureError:
        raise SignatureError("re-key offer signature does not verify against the paired key") from None
    body = unpack(body_bytes, max_bytes=MAX_REKEY_BYTES)
    if not isinstance(body, dict) or body.get("v") != REKEY_VERSION:
        raise RemoteProtocolError("re-key offer body is not a version-1 map")
    sender, recipient = body.get("from"), body.get("to")
    if not isinstance(sender, str) or not isinstance(recipient, str):
        raise RemoteProtocolError("re-key offer must name its sender and recipient")
    return RekeyOffer(
        sender=sender, recipient=recipient, nonce=_bytes(body, "nonce", 16), dh=_bytes(body, "dh", 32),
        in_upto=_int(body, "in_upto"), in_sh=_bytes(body, "in_sh", 32), out_upto=_int(body, "out_upto"),
        restored_at=_int(body, "restored_at"), seen=_bytes(body, "seen", 32),
        reply_to=_bytes(body, "reply_to", 16), raw=data,
    )  # fmt: skip


def nonce_of(own_offer: bytes) -> bytes:
    """The nonce of an offer this terminal made itself (no signature check: it is ours)."""
    body = unpack(unpack(own_offer, max_bytes=MAX_REKEY_BYTES)["b"], max_bytes=MAX_REKEY_BYTES)
    nonce = body["nonce"]
    if not isinstance(nonce, bytes):
        raise CryptoError("own re-key offer has no nonce")
    return nonce


def rekey_secret(
    static_secret: bytes,
    own_identity: bytes,
    own_ephemeral: X25519PrivateKey,
    own_offer: bytes,
    peer_identity: bytes,
    peer_offer: RekeyOffer,
) -> bytes:
    """The new SK: HKDF over DH(fresh, fresh), salted with the pairing's static secret and bound to
    both signed offers in identity-key order, so both sides derive the same bytes and no one who
    lacks a fresh private key (or the static keys) can."""
    try:
        shared = own_ephemeral.exchange(X25519PublicKey.from_public_bytes(peer_offer.dh))
    except ValueError:
        raise CryptoError("the peer's re-key X25519 key is invalid (low order)") from None
    offers = sorted(((own_identity, own_offer), (peer_identity, peer_offer.raw)))
    info = b"HotlineRekey" + b"".join(key + hashlib.sha256(offer).digest() for key, offer in offers)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=static_secret, info=info).derive(shared)
