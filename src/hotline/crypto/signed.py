"""The signed map every signed object of Hotline travels as: ``pack({"b": body, "s": signature})``.

``body`` is itself canonical msgpack; the signature is Ed25519 over a context
naming the kind of object and the body (``Identity.sign``), so a signature on
one kind can never pass for another. Receipts, version-1 envelopes, desk records
and re-key offers share this form, and this one parser of it.
"""

from __future__ import annotations

from hotline.core.errors import RemoteProtocolError
from hotline.core.wire import pack, unpack
from hotline.crypto.identity import Identity


def signed_map(identity: Identity, context: bytes, body: bytes) -> bytes:
    """``body`` with this identity's signature under ``context``, in the signed-map form."""
    return pack({"b": body, "s": identity.sign(context, body)})


def split_signed(data: bytes, max_bytes: int, what: str) -> tuple[bytes, bytes]:
    """The body and signature of a signed map of at most ``max_bytes``; nothing is verified here.
    ``what`` names the object in the refusal ("receipt", "desk record")."""
    outer = unpack(data, max_bytes=max_bytes)
    if not isinstance(outer, dict) or set(outer) != {"b", "s"}:
        raise RemoteProtocolError(f"{what} is not a signed map")
    body, sig = outer["b"], outer["s"]
    if not isinstance(body, bytes) or not isinstance(sig, bytes) or len(sig) != 64:
        raise RemoteProtocolError(f"{what} has a malformed body or signature")
    return body, sig
