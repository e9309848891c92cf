"""Signed envelopes and signed receipts: what crosses the link end to end.

An envelope carries one message: the Double Ratchet header and ciphertext, the
sender, the recipient and the sequence number, signed by the sender's identity
key over the exact bytes (DESIGN: "Ed25519 over the exact envelope bytes; verify
before decrypting"). The record is non-repudiable on purpose: either side can
later prove what the other sent, with the envelope from its journal.

A receipt says "I, the receiver, have journaled every message of yours up to
sequence N, and the running hash of those envelopes is H" (kind ``delivered``),
or, for one message, that a person read or acknowledged it. One delivery
receipt covers a whole range with one signature, because Ed25519 verification
is the per-message ceiling.

Wire form of a receipt: ``pack({"b": body_bytes, "s": signature})`` where
``body_bytes`` is itself a canonical msgpack map. An envelope of version 1 has the
same form (one signature each). Version 2 (issue 11) signs a *batch*: the
envelopes sealed in one flush are the leaves of a Merkle tree (RFC 9162 hashing,
``merkle``), one signature covers its root (the *seal*), and each envelope
carries the seal, its position and its inclusion path::

    pack({"b": body, "seal": seal_body, "s": seal_signature, "i": index, "p": [sibling hashes]})

so every envelope still proves itself alone — in the journal, in an export — while
the receiver verifies one signature per batch (``SealCache``) and checks each
envelope's leaf against the signed root before anything is decrypted. One message
alone is a batch of one. Version 1 envelopes (journals written before) still open.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from hotline.core.errors import CryptoError, DecryptError, RemoteProtocolError, SignatureError
from hotline.core.model import (
    MAX_MESSAGE_BYTES,
    Attachment,
    MessageContent,
    MessageKind,
    Precedence,
    ReceiptKind,
)
from hotline.core.wire import pack, unpack
from hotline.crypto import merkle
from hotline.crypto.identity import Identity, verify
from hotline.crypto.ratchet import Header, Ratchet
from hotline.crypto.signed import signed_map, split_signed

ENVELOPE_CONTEXT = b"hotline-envelope-v1\x00"
BATCH_CONTEXT = b"hotline-batch-seal-v1\x00"
RECEIPT_CONTEXT = b"hotline-receipt-v1\x00"
ENVELOPE_VERSION = 1  # receipts, and envelopes signed one by one (journals written before batches)
BATCH_VERSION = 2
SEAL_CACHE = 64  # verified seals remembered per peer: a batch is at most a flush, and they come in order
MAX_ENVELOPE_BYTES = MAX_MESSAGE_BYTES + 64 * 1024
MAX_RECEIPT_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Envelope:
    """A verified envelope. ``raw`` is the exact signed wire form, kept for the journal."""

    sender: str
    recipient: str
    seq: int
    header: Header
    ciphertext: bytes
    raw: bytes

    @property
    def associated_data(self) -> bytes:
        return _associated_data(self.sender, self.recipient, self.seq)


def _associated_data(sender: str, recipient: str, seq: int) -> bytes:
    return pack({"from": sender, "to": recipient, "seq": seq})


def _field(body: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RemoteProtocolError(f"{what} field {key!r} is missing or not {kind.__name__}")
    return value


def encode_content(content: MessageContent) -> bytes:
    return pack(
        {
            "id": content.id,
            "prec": content.precedence.label,
            "lang": content.lang,
            "subj": content.subject,
            "body": content.body,
            "ts": content.created_at_ns,
            "att": [[a.name, a.data] for a in content.attachments],
            "kind": content.kind.value,
            "rcpt": content.receipt,
            "cls": content.classification,
        }
    )


def decode_content(data: bytes, sender: str, recipient: str) -> MessageContent:
    """Parse decrypted content; the sender and recipient come from the signed envelope."""
    body = unpack(data, max_bytes=MAX_ENVELOPE_BYTES)
    if not isinstance(body, dict):
        raise RemoteProtocolError("message content is not a map")
    classification = body.get("cls", "")  # optional: automatic items may carry none
    if not isinstance(classification, str):
        raise RemoteProtocolError("content field 'cls' is not str")
    raw_attachments: list[tuple[str, bytes]] = []
    for item in _field(body, "att", list, "content"):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise RemoteProtocolError("malformed attachment in message content")
        if not isinstance(item[1], bytes):
            raise RemoteProtocolError("malformed attachment data in message content")
        raw_attachments.append((item[0], item[1]))
    try:
        attachments = [Attachment(name=name, data=data) for name, data in raw_attachments]
        return MessageContent(
            id=_field(body, "id", str, "content"),
            sender=sender,
            recipient=recipient,
            precedence=Precedence.parse(_field(body, "prec", str, "content")),
            lang=_field(body, "lang", str, "content"),
            subject=_field(body, "subj", str, "content"),
            body=_field(body, "body", str, "content"),
            created_at_ns=_field(body, "ts", int, "content"),
            attachments=tuple(attachments),
            kind=MessageKind(_field(body, "kind", str, "content")),
            receipt=_field(body, "rcpt", bytes, "content"),
            classification=classification,
        )
    except CryptoError:
        raise
    except Exception as e:  # model validation (DeliveryError) on content from the peer
        raise RemoteProtocolError(f"invalid message content from {sender!r}: {e}") from None


def encrypt_body(ratchet: Ratchet, content: MessageContent, seq: int) -> bytes:
    """Encrypt one message into an envelope body, to be sealed with its batch (``seal_batch``).
    Advances ``ratchet``: journal its new state with the sealed result."""
    ad = _associated_data(content.sender, content.recipient, seq)
    header, ciphertext = ratchet.encrypt(encode_content(content), ad)
    return pack({"v": BATCH_VERSION, "from": content.sender, "to": content.recipient, "seq": seq,
                 "h": header.to_bytes(), "c": ciphertext})  # fmt: skip


def seal_batch(identity: Identity, sender: str, recipient: str, bodies: list[bytes]) -> list[bytes]:
    """Sign a batch of envelope bodies once: the wire envelopes, each with the seal and its path."""
    if not 1 <= len(bodies) <= merkle.MAX_LEAVES:
        raise ValueError(f"a batch holds 1 to {merkle.MAX_LEAVES} envelopes")
    root, paths = merkle.paths([merkle.leaf_hash(b) for b in bodies])
    seal_body = pack({"v": BATCH_VERSION, "from": sender, "to": recipient, "n": len(bodies), "root": root})
    signature = identity.sign(BATCH_CONTEXT, seal_body)
    return [pack({"b": body, "seal": seal_body, "s": signature, "i": i, "p": path})
            for i, (body, path) in enumerate(zip(bodies, paths, strict=True))]  # fmt: skip


def seal(identity: Identity, ratchet: Ratchet, content: MessageContent, seq: int) -> bytes:
    """Encrypt and sign one message: a batch of one. Advances ``ratchet``."""
    return seal_batch(identity, content.sender, content.recipient, [encrypt_body(ratchet, content, seq)])[0]


class SealCache:
    """The seals of one peer's recent batches: verified once, and remembered when one of their
    envelopes did not match (the rest of that batch is refused with it)."""

    def __init__(self, size: int = SEAL_CACHE) -> None:
        self._size = size
        self._seen: dict[bytes, bool] = {}  # seal digest -> good (insertion order: oldest first)

    def get(self, digest: bytes) -> bool | None:
        return self._seen.get(digest)

    def put(self, digest: bytes, good: bool) -> None:
        self._seen[digest] = good
        while len(self._seen) > self._size:
            del self._seen[next(iter(self._seen))]


def _open_sealed(outer: dict[str, Any], sender_key: bytes, seals: SealCache | None) -> tuple[bytes, Any, Any]:
    """A version-2 envelope: the seal's signature (once per batch), then this envelope's place in it.
    Returns the body bytes, now proven to be what the sender signed, and who the seal names."""
    body, seal_body, sig, index, path = outer["b"], outer["seal"], outer["s"], outer["i"], outer["p"]
    if not (
        isinstance(body, bytes)
        and isinstance(seal_body, bytes)
        and isinstance(sig, bytes)
        and len(sig) == 64
        and isinstance(index, int)
        and not isinstance(index, bool)
        and isinstance(path, list)
        and len(path) <= merkle.MAX_PATH
        and all(isinstance(h, bytes) and len(h) == 32 for h in path)
    ):
        raise RemoteProtocolError("sealed envelope is malformed")  # fmt: skip
    seal = unpack(seal_body, max_bytes=1024)
    if not isinstance(seal, dict) or set(seal) != {"v", "from", "to", "n", "root"} or seal["v"] != BATCH_VERSION:
        raise RemoteProtocolError("batch seal is not a version-2 seal")
    size, root = seal["n"], seal["root"]
    if not isinstance(size, int) or isinstance(size, bool) or not isinstance(root, bytes) or len(root) != 32:
        raise RemoteProtocolError("batch seal has a malformed size or root")
    digest = hashlib.sha256(seal_body + sig).digest()
    known = None if seals is None else seals.get(digest)
    if known is False:
        raise RemoteProtocolError("envelope of a batch already refused (another of its envelopes was altered)")
    if known is None:
        try:
            verify(sender_key, BATCH_CONTEXT, seal_body, sig)
        except SignatureError:
            raise SignatureError("batch seal signature does not verify against the paired key") from None
    if merkle.root_from_path(merkle.leaf_hash(body), index, size, path) != root:
        if seals is not None:
            seals.put(digest, False)
        raise RemoteProtocolError(
            f"envelope {index} of a batch of {size} is not what its seal signs (altered in transit or by the "
            "sender): the batch is refused from here on"
        )
    if seals is not None and known is None:
        seals.put(digest, True)
    return body, seal["from"], seal["to"]


def open_envelope(data: bytes, sender_key: bytes, seals: SealCache | None = None) -> Envelope:
    """Verify an envelope (its own signature, or its batch's seal and its place in the batch), then
    parse it. Nothing is decrypted here. ``seals`` remembers verified batches of this sender."""
    outer = unpack(data, max_bytes=MAX_ENVELOPE_BYTES)
    sealed_by: tuple[Any, Any] | None = None
    if isinstance(outer, dict) and set(outer) == {"b", "seal", "s", "i", "p"}:
        body_bytes, seal_from, seal_to = _open_sealed(outer, sender_key, seals)
        version, sealed_by = BATCH_VERSION, (seal_from, seal_to)
    else:
        body_bytes, sig = split_signed(data, MAX_ENVELOPE_BYTES, "envelope")
        verify(sender_key, ENVELOPE_CONTEXT, body_bytes, sig)
        version = ENVELOPE_VERSION
    body = unpack(body_bytes, max_bytes=MAX_ENVELOPE_BYTES)
    if not isinstance(body, dict):
        raise RemoteProtocolError("envelope body is not a map")
    if sealed_by is not None and sealed_by != (body.get("from"), body.get("to")):
        raise RemoteProtocolError("batch seal and envelope name different senders or recipients")
    if body.get("v") != version:
        raise RemoteProtocolError(f"unknown envelope version {body.get('v')!r}")
    try:
        header = Header.from_bytes(_field(body, "h", bytes, "envelope"))
    except DecryptError as e:
        raise RemoteProtocolError(f"malformed ratchet header: {e}") from None
    return Envelope(
        sender=_field(body, "from", str, "envelope"),
        recipient=_field(body, "to", str, "envelope"),
        seq=_field(body, "seq", int, "envelope"),
        header=header,
        ciphertext=_field(body, "c", bytes, "envelope"),
        raw=data,
    )


def decrypt(envelope: Envelope, ratchet: Ratchet) -> MessageContent:
    """Decrypt a verified envelope. Advances ``ratchet`` only on success."""
    plaintext = ratchet.decrypt(envelope.header, envelope.ciphertext, envelope.associated_data)
    return decode_content(plaintext, envelope.sender, envelope.recipient)


@dataclass(frozen=True, slots=True)
class Receipt:
    """A verified receipt. For ``delivered``, ``upto``/``stream_hash`` cover a range;
    for ``read``/``acknowledged``, ``message_id`` names one message."""

    kind: ReceiptKind
    sender: str  # who signed it: the receiver of the messages
    recipient: str  # whose messages it covers
    upto: int
    stream_hash: bytes
    message_id: str
    at_ns: int
    raw: bytes
    by: str = ""  # who acknowledged, for read/acknowledged receipts


def make_receipt(
    identity: Identity,
    *,
    kind: ReceiptKind,
    sender: str,
    recipient: str,
    upto: int,
    stream_hash: bytes,
    at_ns: int,
    message_id: str = "",
    by: str = "",
) -> bytes:
    body = pack(
        {
            "v": ENVELOPE_VERSION,
            "kind": kind.value,
            "from": sender,
            "to": recipient,
            "upto": upto,
            "sh": stream_hash,
            "id": message_id,
            "at": at_ns,
            "by": by,
        }
    )
    return signed_map(identity, RECEIPT_CONTEXT, body)


def open_receipt(data: bytes, signer_key: bytes) -> Receipt:
    body_bytes, sig = split_signed(data, MAX_RECEIPT_BYTES, "receipt")
    try:
        verify(signer_key, RECEIPT_CONTEXT, body_bytes, sig)
    except SignatureError:
        raise SignatureError("receipt signature does not verify against the paired key") from None
    body = unpack(body_bytes, max_bytes=MAX_RECEIPT_BYTES)
    if not isinstance(body, dict) or body.get("v") != ENVELOPE_VERSION:
        raise RemoteProtocolError("receipt body is not a version-1 map")
    try:
        kind = ReceiptKind(_field(body, "kind", str, "receipt"))
    except ValueError:
        raise RemoteProtocolError(f"unknown receipt kind {body.get('kind')!r}") from None
    stream_hash = _field(body, "sh", bytes, "receipt")
    if len(stream_hash) != 32:
        raise RemoteProtocolError("receipt stream hash is not 32 bytes")
    upto = _field(body, "upto", int, "receipt")
    if upto < 0:
        raise RemoteProtocolError("receipt covers a negative sequence number")
    return Receipt(
        kind=kind,
        sender=_field(body, "from", str, "receipt"),
        recipient=_field(body, "to", str, "receipt"),
        upto=upto,
        stream_hash=stream_hash,
        message_id=_field(body, "id", str, "receipt"),
        at_ns=_field(body, "at", int, "receipt"),
        raw=data,
        by=_field(body, "by", str, "receipt")[:200],
    )
