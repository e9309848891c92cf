"""Desk records: what the two sides say of calls, readouts and commitments, each signed by its author.

A desk record is one act of one side — "washington proposes a call", "moscow
accepts it", "washington ends it", "moscow agrees to commitment C" — as a small
map signed with the author's identity key (Ed25519 over the exact bytes, with a
context of its own so no other signed object can pass for one). Records that
concern the peer travel to it inside the ordinary message stream (a message of
kind ``record``: end-to-end encrypted, exactly once, journaled on both sides);
notes and unshared readouts stay with their author and are journaled there only.

Every record names its *thread* (the call or commitment it belongs to; a
proposal is its own thread) and carries a Lamport number one above every record
of that thread its author had seen. Sorting a thread's records by
``(lamport, author, id)`` gives both sides the same order whatever order they
arrived in — which is how both sides reach the same state when they act at once
(``desk.register``).

Wire form: ``pack({"b": body, "s": signature})``, ``body`` a canonical msgpack
map. Every field is checked on the way in with a cap, as any parser of peer input.
"""

from __future__ import annotations

import enum
import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hotline.core.errors import CryptoError, DeliveryError, DeskError, RemoteProtocolError
from hotline.core.model import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    Precedence,
    validate_attachment_name,
    validate_lang,
    validate_name,
    validate_text,
)
from hotline.core.wire import pack, unpack
from hotline.crypto.identity import Identity, verify
from hotline.crypto.signed import signed_map, split_signed

DESK_CONTEXT = b"hotline-desk-record-v1\x00"
DESK_VERSION = 1
MAX_RECORD_BYTES = 512 * 1024
MAX_TEXT_CHARS = 200_000  # a readout or an agenda
MAX_LINE_CHARS = 500  # a subject, a title, a reason
MAX_DURATION_S = 7 * 24 * 3600


class RecordType(enum.StrEnum):
    CALL_PROPOSE = "call.propose"
    CALL_ACCEPT = "call.accept"
    CALL_DECLINE = "call.decline"
    CALL_COUNTER = "call.counter"
    CALL_WITHDRAW = "call.withdraw"
    CALL_START = "call.start"
    CALL_END = "call.end"
    CALL_NOTE = "call.note"  # kept by its author only
    READOUT = "readout"  # shared or kept, as its ``shared`` field says
    COMMITMENT_PROPOSE = "commitment.propose"
    COMMITMENT_AGREE = "commitment.agree"
    COMMITMENT_DECLINE = "commitment.decline"
    COMMITMENT_STATUS = "commitment.status"
    COMMITMENT_ROUND = "commitment.round"
    NOTIFICATION = "notification"  # a formatted notification (``desk.forms``); a response is one too
    NOTIFICATION_ACK = "notification.ack"  # a person at the receiving side: "received and understood"
    NOTIFICATION_REFUSED = "notification.refused"  # the receiver could not take it (unknown form, invalid)
    # Channels (``desk.channels``): one record, signed once, fanned out to every member over its own link.
    CHANNEL_CREATE = "channel.create"
    CHANNEL_JOIN = "channel.join"
    CHANNEL_ADD = "channel.add"
    CHANNEL_REMOVE = "channel.remove"
    CHANNEL_LEAVE = "channel.leave"
    CHANNEL_MESSAGE = "channel.message"

    @property
    def starts_thread(self) -> bool:
        return self in (
            RecordType.CALL_PROPOSE, RecordType.COMMITMENT_PROPOSE, RecordType.NOTIFICATION, RecordType.CHANNEL_CREATE,
        )  # fmt: skip

    @property
    def is_channel(self) -> bool:
        """A channel's record names no single peer: it goes to the channel's members (``desk.channels``)."""
        return self.value.startswith("channel.")

    @property
    def is_membership(self) -> bool:
        """A record that changes who is in a channel (everything of a channel but its messages)."""
        return self.is_channel and self is not RecordType.CHANNEL_MESSAGE


class Disclosure(enum.StrEnum):
    """Who may learn of a call, readout or commitment: announced, or kept to the two sides."""

    PUBLIC = "public"
    CONFIDENTIAL = "confidential"
    SECRET = "secret"  # noqa: S105 (a disclosure level, not a password)

    @classmethod
    def parse(cls, text: str) -> Disclosure:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise DeskError(f"unknown disclosure {text!r}; choose public, confidential or secret") from None


class CommitmentKind(enum.StrEnum):
    MEETING = "meeting"
    SUMMIT = "summit"
    EXCHANGE = "exchange"
    MORATORIUM = "moratorium"
    OTHER = "other"


class CommitmentStatus(enum.StrEnum):
    FULFILLED = "fulfilled"
    LAPSED = "lapsed"
    WITHDRAWN = "withdrawn"


# -- field checks: each takes the raw value and returns it, or raises ValueError saying why --------


def _line(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_LINE_CHARS or "\n" in value:
        raise ValueError(f"must be one line of text, up to {MAX_LINE_CHARS} characters")
    validate_text(value, "text")
    return value


def _required_line(value: Any) -> str:
    if not _line(value).strip():
        raise ValueError("must not be empty")
    return str(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"must be text, up to {MAX_TEXT_CHARS} characters")
    validate_text(value, "text")
    return value


def _time(value: Any) -> int:
    """A time in integer nanoseconds since 1970 (UTC); 0 means none was given."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise ValueError("must be a time in nanoseconds (0 for none)")
    return value


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1000:
        raise ValueError("must be a whole number from 0 to 1000")
    return value


def _duration(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DURATION_S:
        raise ValueError(f"must be a duration in seconds, up to {MAX_DURATION_S}")
    return value


def _enum(kind: type[enum.StrEnum]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in {m.value for m in kind}:
            raise ValueError(f"must be one of {', '.join(m.value for m in kind)}")
        return value

    return check


def _precedence(value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in Precedence.__members__:
        raise ValueError("must be flash, immediate, priority or routine")
    return value


def _lang(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a BCP 47 language tag")
    try:
        return validate_lang(value)
    except Exception:
        raise ValueError("must be a BCP 47 language tag such as en, ru, zh-Hans") from None


def _uuid_or_empty(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a call id (a UUID) or empty")
    if value:
        try:
            uuid.UUID(value)
        except ValueError:
            raise ValueError("must be a call id (a UUID) or empty") from None
    return value


def _owner(value: Any) -> str:
    if not isinstance(value, str) or (value != "both" and not value):
        raise ValueError("must be a terminal's name or 'both'")
    if value != "both":
        validate_name(value, "owner")
    return value


def _hash(value: Any) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError("must be a SHA-256 digest (32 bytes)")
    return value


def _form_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 48:
        raise ValueError("must be a form type's id")
    return value


def _form_data(value: Any) -> dict[str, Any]:
    """A form's fields as a map; the form type's schema checks them (``desk.forms``)."""
    if not isinstance(value, dict) or len(pack(value)) > 64 * 1024:
        raise ValueError("must be a map of the form's fields, up to 64 KiB")
    return value


MAX_CHANNEL_MEMBERS = 16
MAX_CHANNEL_AUTHORS = 64  # entries in a message's seen vector: members come and go over a channel's life
_CHANNEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,47}")


def _channel_name(value: Any) -> str:
    if not isinstance(value, str) or not _CHANNEL_NAME.fullmatch(value):
        raise ValueError("must be a channel name: lower-case letters, digits, '.', '_' or '-', up to 48")
    return value


def _member(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a terminal's name")
    try:
        return validate_name(value, "member")
    except DeliveryError:
        raise ValueError("must be a terminal's name") from None


def _members(value: Any) -> list[str]:
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_CHANNEL_MEMBERS:
        raise ValueError(f"must list 2 to {MAX_CHANNEL_MEMBERS} terminals, the creator among them")
    names = [_member(v) for v in value]
    if len(set(names)) != len(names) or names != sorted(names):
        raise ValueError("must list each terminal once, in sorted order")
    return names


def _recipients(value: Any) -> list[str]:
    """The members a channel message is addressed to: those its author held as joined."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CHANNEL_MEMBERS:
        raise ValueError(f"must list 1 to {MAX_CHANNEL_MEMBERS} members")
    names = [_member(v) for v in value]
    if len(set(names)) != len(names) or names != sorted(names):
        raise ValueError("must list each member once, in sorted order")
    return names


def _seq(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < 2**53:
        raise ValueError("must be a positive whole number")
    return value


def _seen(value: Any) -> dict[str, int]:
    """What a message's author had seen of the channel: author -> the highest sequence number."""
    if not isinstance(value, dict) or len(value) > MAX_CHANNEL_AUTHORS:
        raise ValueError(f"must map up to {MAX_CHANNEL_AUTHORS} authors to sequence numbers")
    for author, seq in value.items():
        _member(author)
        _seq(seq)
    return value


def _attachments(value: Any) -> list[list[Any]]:
    """The files of a channel message, as its record commits to them: [name, SHA-256, size] each. The
    files themselves ride the message that carries the record to each member (``desk.channels``)."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ATTACHMENTS:
        raise ValueError(f"must list 1 to {MAX_ATTACHMENTS} files")
    for item in value:
        if not isinstance(item, list) or len(item) != 3 or not isinstance(item[0], str):
            raise ValueError("must list each file as [name, SHA-256, size]")
        try:
            validate_attachment_name(item[0])
        except DeliveryError as e:
            raise ValueError(str(e)) from None
        _hash(item[1])
        if not isinstance(item[2], int) or isinstance(item[2], bool) or not 0 <= item[2] <= MAX_ATTACHMENT_BYTES:
            raise ValueError(f"must give each file's size, up to {MAX_ATTACHMENT_BYTES} bytes")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


Check = Callable[[Any], Any]

# What each type of record holds: every field is required (a record is written by our own code,
# which fills in defaults), and no other field is allowed — but for those in OPTIONAL_FIELDS, left out
# when empty, so that a record without them is the same bytes as before they existed.
FIELDS: dict[RecordType, dict[str, Check]] = {
    RecordType.CALL_PROPOSE: {
        "subject": _required_line, "agenda": _text, "at": _time, "duration_s": _duration, "answer_by": _time,
        "precedence": _precedence, "disclosure": _enum(Disclosure), "every": _line,
    },
    RecordType.CALL_ACCEPT: {"at": _time},
    RecordType.CALL_DECLINE: {"reason": _required_line},
    RecordType.CALL_COUNTER: {"at": _time, "reason": _line},
    RecordType.CALL_WITHDRAW: {"reason": _line},
    RecordType.CALL_START: {},
    RecordType.CALL_END: {},
    RecordType.CALL_NOTE: {"text": _text},
    RecordType.READOUT: {"lang": _lang, "disclosure": _enum(Disclosure), "text": _text, "shared": _flag},
    RecordType.COMMITMENT_PROPOSE: {
        "call": _uuid_or_empty, "title": _required_line, "detail": _text, "owner": _owner, "due": _time,
        "kind": _enum(CommitmentKind), "disclosure": _enum(Disclosure), "starts": _time, "ends": _time,
        "rounds": _count,
    },
    RecordType.COMMITMENT_AGREE: {"text_hash": _hash},
    RecordType.COMMITMENT_DECLINE: {"reason": _required_line},
    RecordType.COMMITMENT_STATUS: {"status": _enum(CommitmentStatus), "reason": _required_line},
    RecordType.COMMITMENT_ROUND: {"round": _count, "done_at": _time, "note": _line},
    RecordType.NOTIFICATION: {"form": _form_id, "form_hash": _hash, "data": _form_data, "answers": _uuid_or_empty},
    RecordType.NOTIFICATION_ACK: {"by": _line},
    RecordType.NOTIFICATION_REFUSED: {"reason": _required_line, "form": _form_id, "form_hash": _hash},
    RecordType.CHANNEL_CREATE: {"name": _channel_name, "members": _members, "disclosure": _enum(Disclosure),
                                "relay": _flag},
    RecordType.CHANNEL_JOIN: {},
    RecordType.CHANNEL_ADD: {"member": _member},
    RecordType.CHANNEL_REMOVE: {"member": _member, "reason": _line},
    RecordType.CHANNEL_LEAVE: {"reason": _line},
    RecordType.CHANNEL_MESSAGE: {
        "text": _text, "subject": _line, "precedence": _precedence, "lang": _lang, "seq": _seq, "seen": _seen,
        "to": _recipients, "attachments": _attachments,
    },
}  # fmt: skip
# Fields a record may leave out (then they are absent from its signed bytes too): a channel that
# does not allow relay says nothing of it, a message without files names none, so records written
# before either existed still check.
OPTIONAL_FIELDS: dict[RecordType, frozenset[str]] = {
    RecordType.CHANNEL_CREATE: frozenset({"relay"}),
    RecordType.CHANNEL_MESSAGE: frozenset({"attachments"}),
}


def check_fields(rtype: RecordType, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of a record of this type, checked; a clear error names the first wrong one."""
    expected = FIELDS[rtype]
    unknown = sorted(set(fields) - set(expected))
    missing = sorted(set(expected) - set(fields) - OPTIONAL_FIELDS.get(rtype, frozenset()))
    if unknown or missing:
        raise DeskError(f"{rtype} record: unknown fields {unknown}, missing fields {missing}")
    checked = {}
    for name, check in expected.items():
        if name not in fields:
            continue  # an optional field, left out
        try:
            checked[name] = check(fields[name])
        except ValueError as e:
            raise DeskError(f"{rtype} record: field {name!r} {e}") from None
    return checked


@dataclass(frozen=True, slots=True)
class DeskRecord:
    """One signed act of one side. ``signed`` is the exact wire form, kept in both journals."""

    id: str
    type: RecordType
    thread: str
    author: str
    peer: str  # the other side of the call or commitment; "" for a channel's record (it goes to the members)
    lamport: int
    at_ns: int
    fields: dict[str, Any] = field(hash=False)
    signed: bytes = field(default=b"", repr=False, compare=False)

    @property
    def order(self) -> tuple[int, str, str]:
        """The order both sides agree on within a thread (see the module's docstring)."""
        return (self.lamport, self.author, self.id)

    @property
    def shared(self) -> bool:
        """Whether this record goes to the peer (notes and kept readouts do not)."""
        if self.type is RecordType.CALL_NOTE:
            return False
        if self.type is RecordType.READOUT:
            return bool(self.fields["shared"])
        return True

    @property
    def digest(self) -> bytes:
        """SHA-256 of the signed bytes: what a countersignature (``commitment.agree``) binds to."""
        return hashlib.sha256(self.signed).digest()


def _body(record: DeskRecord) -> bytes:
    return pack(
        {
            "v": DESK_VERSION, "id": record.id, "type": record.type.value, "thread": record.thread,
            "author": record.author, "peer": record.peer, "lamport": record.lamport, "at": record.at_ns,
            "f": record.fields,
        }
    )  # fmt: skip


def sign_record(identity: Identity, record: DeskRecord) -> DeskRecord:
    """The record with its signature; its author must be this identity."""
    if record.author != identity.name:
        raise DeskError(f"a record by {record.author!r} cannot be signed by {identity.name!r}")
    body = _body(record)
    signed = signed_map(identity, DESK_CONTEXT, body)
    return DeskRecord(record.id, record.type, record.thread, record.author, record.peer, record.lamport,
                      record.at_ns, record.fields, signed)  # fmt: skip


def _parse(body_bytes: bytes, signed: bytes) -> DeskRecord:
    body = unpack(body_bytes, max_bytes=MAX_RECORD_BYTES)
    if not isinstance(body, dict) or type(body.get("v")) is not int or body["v"] != DESK_VERSION:
        raise RemoteProtocolError("desk record is not a version-1 map")
    if set(body) != {"v", "id", "type", "thread", "author", "peer", "lamport", "at", "f"}:
        raise RemoteProtocolError(f"desk record has fields {sorted(body)}")
    try:
        rtype = RecordType(body["type"])
        for key in ("id", "thread", "author", "peer"):
            if not isinstance(body[key], str):
                raise DeskError(f"field {key!r} is not text")
        uuid.UUID(body["id"])
        uuid.UUID(body["thread"])
        validate_name(body["author"], "author")
        if rtype.is_channel:
            # One record, signed once, goes to every member: the members are the channel's, as each
            # member's register folds them (``desk.channels``), not a name in the record.
            if body["peer"] != "":
                raise DeskError("a channel record names no peer")
        else:
            validate_name(body["peer"], "peer")
        lamport, at_ns, fields = body["lamport"], body["at"], body["f"]
        if not isinstance(lamport, int) or isinstance(lamport, bool) or not 1 <= lamport < 2**53:
            raise DeskError("lamport is not a positive whole number")
        _time(at_ns)
        if not isinstance(fields, dict):
            raise DeskError("fields are not a map")
        if rtype.starts_thread and body["thread"] != body["id"]:
            raise DeskError("a proposal must be its own thread")
        checked = check_fields(rtype, fields)
    # validate_name and validate_text (core.model) raise DeliveryError: a bad name or text from the
    # peer is its protocol error too, never an exception that escapes the engine's handler.
    except (ValueError, KeyError, DeskError, DeliveryError) as e:
        raise RemoteProtocolError(f"malformed desk record: {e}") from None
    return DeskRecord(body["id"], rtype, body["thread"], body["author"], body["peer"], lamport, at_ns, checked,
                      signed)  # fmt: skip


def _split(signed: bytes) -> tuple[bytes, bytes]:
    if len(signed) > MAX_RECORD_BYTES:
        raise RemoteProtocolError(f"desk record is {len(signed)} bytes; the limit is {MAX_RECORD_BYTES}")
    return split_signed(signed, MAX_RECORD_BYTES, "desk record")


def open_record(signed: bytes, author_key: bytes) -> DeskRecord:
    """Verify a record's signature against its author's pinned key, then parse it (signature first)."""
    body, sig = _split(signed)
    try:
        verify(author_key, DESK_CONTEXT, body, sig)
    except CryptoError:
        raise RemoteProtocolError("desk record signature does not verify against the author's paired key") from None
    return _parse(body, signed)


def decode_record(signed: bytes) -> DeskRecord:
    """Parse a record read back from this terminal's own journal (verified when it was written;
    ``hotline journal verify`` checks the journal as a whole)."""
    body, _ = _split(signed)
    return _parse(body, signed)
