"""What every storage backend shares: the record's format and the rows the interfaces return.

The hash chain is defined here, not in a backend: an entry's hash is SHA-256
over the previous entry's hash and the msgpack of ``[seq, at_ns, kind, peer,
body]``, and the first entry links to 32 zero bytes. ``hotline.storage.audit``
checks the chain with these same functions, so a record written by any backend
verifies the same way, and a journal written by an earlier release still does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

from hotline.core.errors import JournalError
from hotline.core.model import Attachment, MessageContent
from hotline.core.wire import pack, unpack

GENESIS_HASH = bytes(32)

# Every kind of entry the record holds; a backend writes no other.
ENTRY_KINDS = (
    "terminal.created",
    "peer.paired",
    "peer.rekeyed",
    "message.accepted",
    "message.sealed",
    "message.received",
    "message.duplicate",
    "receipt.sent",
    "receipt.received",
    "link.up",
    "link.down",
    "link.refused",
    "link.switch",
    "link.test",
    "link.doubt",
    "alarm.raised",
    "alarm.cleared",
    "operator.action",
    "desk.record",
)
LINK_KINDS = frozenset(kind for kind in ENTRY_KINDS if kind.startswith("link."))


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of the hash-chained record, as stored."""

    seq: int
    at_ns: int
    kind: str
    peer: str
    body: bytes
    prev: bytes
    hash: bytes

    def decoded(self) -> dict[str, Any]:
        value = unpack(self.body)
        if not isinstance(value, dict):
            raise JournalError(f"entry {self.seq} body is not a map")
        return value


def entry_hash(prev: bytes, seq: int, at_ns: int, kind: str, peer: str, body: bytes) -> bytes:
    """The chain link: SHA-256 over the previous hash and this entry's fields."""
    return hashlib.sha256(prev + pack([seq, at_ns, kind, peer, body])).digest()


class Sealed(NamedTuple):
    """One envelope of a batch as sealed, for ``MessageStore.record_sealed_batch``."""

    message_id: str
    seq: int
    envelope: bytes
    stream_hash: bytes  # our stream's running hash after this envelope


class Arrival(NamedTuple):
    """One envelope of the peer's stream as opened, for ``MessageStore.record_received_batch``.
    (A named tuple, not a dataclass: a flush makes one per message, and it is only carried.)"""

    content: MessageContent
    seq: int
    envelope: bytes
    stream_hash: bytes  # the peer's stream's running hash after this envelope
    duplicate: bool = False  # the message is journaled already (sent again after a re-key)


@dataclass(frozen=True, slots=True)
class PeerRow:
    """A paired peer as pinned: its card, key and safety number, and when an operator verified it."""

    name: str
    card_json: str
    identity_key: bytes
    safety_number: str
    paired_at_ns: int
    verified_at_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Cursors:
    """Where each direction of a peer's stream stands (the delivery layer resumes from these)."""

    out_next_seq: int
    out_acked: int
    out_stream_hash: bytes
    in_upto: int
    in_stream_hash: bytes
    last_receipt_out: bytes | None
    last_receipt_in: bytes | None
    last_contact_ns: int | None


def _attachment_meta(attachments: tuple[Attachment, ...]) -> list[dict[str, Any]]:
    return [{"name": a.name, "size": len(a.data), "sha256": hashlib.sha256(a.data).digest()} for a in attachments]


def content_fields(content: MessageContent) -> dict[str, Any]:
    """The body of a ``message.accepted`` entry (and the start of a ``message.received`` one)."""
    return {
        "id": content.id,
        "from": content.sender,
        "to": content.recipient,
        "prec": content.precedence.label,
        "lang": content.lang,
        "subj": content.subject,
        "body": content.body,
        "ts": content.created_at_ns,
        "att": _attachment_meta(content.attachments),
        "kind": content.kind.value,
        "rcpt": content.receipt,
        "cls": content.classification,
    }


@dataclass(frozen=True, slots=True)
class PastKey:
    """A key a peer held before its current one: ``state`` is "retired" (passed on by a signed
    succession to ``successor``; valid for envelopes up to ``upto`` of the stream then running) or
    "revoked" (refused for everything)."""

    key: bytes
    state: str
    successor: bytes | None
    upto: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class OwnStatement:
    """A succession (``kind`` "terminal.rotated") or revocation ("terminal.revoked") this terminal made,
    and the peers paired then, each to the last envelope the old key sealed for it."""

    kind: str
    statement: bytes
    peers: dict[str, int]
