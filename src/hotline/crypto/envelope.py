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

Wire form of both: ``pack({"b": body_bytes, "s": signature})`` where
``body_bytes`` is itself a canonical msgpack map.
"""

from __future__ import annotations

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
from hotline.crypto.identity import Identity, verify
from hotline.crypto.ratchet import Header, Ratchet

ENVELOPE_CONTEXT = b"hotline-envelope-v1\x00"
RECEIPT_CONTEXT = b"hotline-receipt-v1\x00"
ENVELOPE_VERSION = 1
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


def _split_signed(data: bytes, max_bytes: int, what: str) -> tuple[bytes, bytes]:
    outer = unpack(data, max_bytes=max_bytes)
    if not isinstance(outer, dict) or set(outer) != {"b", "s"}:
        raise RemoteProtocolError(f"{what} is not a signed map")
    body, sig = outer["b"], outer["s"]
    if not isinstance(body, bytes) or not isinstance(sig, bytes) or len(sig) != 64:
        raise RemoteProtocolError(f"{what} has a malformed body or signature")
    return body, sig


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


def seal(identity: Identity, ratchet: Ratchet, content: MessageContent, seq: int) -> bytes:
    """Encrypt and sign one message. Advances ``ratchet``: journal its new state with the result."""
    ad = _associated_data(content.sender, content.recipient, seq)
    header, ciphertext = ratchet.encrypt(encode_content(content), ad)
    body = pack(
        {
            "v": ENVELOPE_VERSION,
            "from": content.sender,
            "to": content.recipient,
            "seq": seq,
            "h": header.to_bytes(),
            "c": ciphertext,
        }
    )
    return pack({"b": body, "s": identity.sign(ENVELOPE_CONTEXT, body)})


def open_envelope(data: bytes, sender_key: bytes) -> Envelope:
    """Verify an envelope's signature, then parse it. Nothing is decrypted here."""
    body_bytes, sig = _split_signed(data, MAX_ENVELOPE_BYTES, "envelope")
    verify(sender_key, ENVELOPE_CONTEXT, body_bytes, sig)
    body = unpack(body_bytes, max_bytes=MAX_ENVELOPE_BYTES)
    if not isinstance(body, dict):
        raise RemoteProtocolError("envelope body is not a map")
    if body.get("v") != ENVELOPE_VERSION:
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
    return pack({"b": body, "s": identity.sign(RECEIPT_CONTEXT, body)})


def open_receipt(data: bytes, signer_key: bytes) -> Receipt:
    body_bytes, sig = _split_signed(data, MAX_RECEIPT_BYTES, "receipt")
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
