"""Plain values shared by every layer: precedence, message content, receipts, addresses.

Everything here is a frozen dataclass or an enum that validates its own fields,
so a value that exists is a value that is well formed. Nothing here does I/O.
"""

from __future__ import annotations

import enum
import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass, field

from hotline.core.errors import DeliveryError

# Caps that every layer agrees on. An attachment may be as large as the issue
# allows (16 MiB); a whole message is capped so one frame stays bounded.
MAX_ATTACHMENT_BYTES = 16 * 1024 * 1024
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
MAX_ATTACHMENTS = 16
MAX_SUBJECT_CHARS = 500
MAX_BODY_BYTES = 1024 * 1024
MAX_NAME_CHARS = 64
MAX_MARKING_CHARS = 64
# Classification markings a deployment uses when it configures none; the first is the default.
DEFAULT_MARKINGS = ("UNCLASSIFIED", "CONFIDENTIAL", "SECRET")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# BCP 47, loosely: a primary subtag and optional subtags of letters and digits.
_LANG_RE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


EMPTY_STREAM_HASH = bytes(32)


def next_stream_hash(previous: bytes, envelope: bytes) -> bytes:
    """Running hash over one direction's envelopes, so one receipt commits to all of them."""
    return hashlib.sha256(previous + hashlib.sha256(envelope).digest()).digest()


class Precedence(enum.IntEnum):
    """ACP 121/127 precedence; a larger value is more urgent and is sealed first."""

    ROUTINE = 0
    PRIORITY = 1
    IMMEDIATE = 2
    FLASH = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Precedence:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(p.label for p in sorted(cls, reverse=True))
            raise DeliveryError(f"unknown precedence {text!r}; choose one of {choices}") from None


class MessageState(enum.StrEnum):
    """Where an outgoing message stands; incoming messages are always ``received``."""

    QUEUED = "queued"  # in the sender's journal, not yet sealed for the wire
    SENT = "sent"  # sealed (sequence number and ciphertext journaled), no receipt yet
    DELIVERED = "delivered"  # the receiver's signed delivery receipt is journaled
    RECEIVED = "received"  # an incoming message, journaled here


class MessageKind(enum.StrEnum):
    """What travels in the ordered, receipted stream: a person's message, a signed
    READ/ACKNOWLEDGED receipt, or a signed desk record (a call, readout or commitment act),
    the last two riding the same reliable path as messages."""

    MESSAGE = "message"
    RECEIPT = "receipt"
    RECORD = "record"


class ReceiptKind(enum.StrEnum):
    DELIVERED = "delivered"  # automatic: the receiving terminal journaled it
    READ = "read"
    ACKNOWLEDGED = "acknowledged"  # a person: "received and understood"


def validate_name(name: str, what: str = "name") -> str:
    """Terminal and peer names are short lowercase slugs so they are safe everywhere."""
    if not _NAME_RE.match(name):
        raise DeliveryError(
            f"invalid {what} {name!r}: use 1-64 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_marking(marking: str) -> str:
    """A classification marking: printable text such as SECRET//NOFORN, in any script, shown as is."""
    if not marking or len(marking) > MAX_MARKING_CHARS or marking != marking.strip() or not marking.isprintable():
        raise DeliveryError(
            f"invalid classification marking {marking[:80]!r}: 1-{MAX_MARKING_CHARS} printable characters, "
            "no leading or trailing space"
        )
    return marking


def validate_lang(tag: str) -> str:
    if not _LANG_RE.match(tag):
        raise DeliveryError(f"invalid language tag {tag!r}: expected BCP 47 such as en, ru, zh-Hans")
    return tag


def uuid7(unix_ms: int, rand: bytes) -> str:
    """A UUIDv7 (RFC 9562 §5.7) from a millisecond timestamp and 10 random bytes.

    Time and randomness are passed in so the core stays deterministic under test.
    """
    if len(rand) < 10:
        raise ValueError("uuid7 needs 10 random bytes")
    rand_a = int.from_bytes(rand[0:2], "big") & 0x0FFF  # 12 bits
    rand_b = int.from_bytes(rand[2:10], "big") & ((1 << 62) - 1)  # 62 bits
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= rand_a << 64
    value |= 0b10 << 62  # variant
    value |= rand_b
    return str(uuid.UUID(int=value))


@dataclass(frozen=True, slots=True)
class Address:
    """A named path to a terminal: ``primary`` first, then ``backup`` and so on."""

    path: str
    host: str
    port: int

    def __post_init__(self) -> None:
        validate_name(self.path, "path name")
        if not self.host or len(self.host) > 255:
            raise DeliveryError(f"invalid host {self.host!r}")
        if not 0 < self.port < 65536:
            raise DeliveryError(f"invalid port {self.port}: must be 1-65535")

    @classmethod
    def parse(cls, text: str, path: str = "primary") -> Address:
        """Parse ``HOST:PORT`` or ``[V6]:PORT``."""
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise DeliveryError(f"invalid address {text!r}: expected HOST:PORT")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return cls(path=path, host=host, port=int(port))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def validate_text(value: str, what: str) -> None:
    """Refuse text that cannot be written as UTF-8: a lone surrogate (JSON's "\\ud800") would
    otherwise pass every other check and fail only when the journal encodes it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DeliveryError(f"{what} is not valid Unicode text (a lone surrogate at position {e.start})") from None


def _unsafe_in_name(c: str) -> bool:
    # Control characters break a header or a log line; format characters (U+202E and its kin)
    # make "readout\u202efdp.exe" read as "readoutexe.pdf"; \\ and : mean a folder or a stream
    # on some system, / on every one.
    return c in "/\\:" or unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"}


def validate_attachment_name(name: str) -> None:
    """The name of a file we send: it is saved under that name at the other end."""
    validate_text(name, "attachment name")
    if not name or len(name) > 255 or name in {".", ".."} or any(map(_unsafe_in_name, name)):
        raise DeliveryError(
            f"invalid attachment name {name[:80]!r}: 1 to 255 characters; no / \\ or :, no control or "
            "format characters; not . or .."
        )


# Names Windows reserves for devices, with any extension ("con", "NUL.txt", "com1.pdf"): a file
# saved under one is not a file at all there, so it is renamed like any other unsafe name.
_DEVICE_NAMES = frozenset({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {f"{d}{n}" for d in ("COM", "LPT")
                                                                          for n in "123456789¹²³"})  # fmt: skip


def safe_file_name(name: str) -> str:
    """A received attachment's name, fit to save as a file here or on a Windows desk it is
    downloaded to (a peer's rules may differ)."""
    cleaned = "".join("_" if _unsafe_in_name(c) else c for c in name).strip()
    if cleaned in {"", ".", ".."}:
        return "attachment"
    if cleaned.split(".", 1)[0].rstrip(" ").upper() in _DEVICE_NAMES:
        return f"_{cleaned}"
    return cleaned


def validate_label(value: str, what: str, max_chars: int = 100) -> None:
    """A short label a person gives (who acknowledged, what a token is for): text, no control characters."""
    validate_text(value, what)
    if not value.strip() or len(value) > max_chars or any(unicodedata.category(c) == "Cc" for c in value):
        raise DeliveryError(f"{what} must be 1 to {max_chars} characters of text, without control characters")


def canonical_message_id(value: str) -> str:
    """A caller's message id in the one form it is stored under: the same UUID written in capitals,
    in braces or as a URN is the same message, not a new one."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise DeliveryError(f"invalid message id {value[:80]!r}: expected a UUID") from None


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        # What any peer's message must hold to be taken at all; what we send is held to more
        # (validate_attachment_name), and what we save is made safe first (safe_file_name).
        validate_text(self.name, "attachment name")
        if not self.name or len(self.name) > 255 or "/" in self.name or "\x00" in self.name:
            raise DeliveryError(f"invalid attachment name {self.name[:80]!r}")
        if len(self.data) > MAX_ATTACHMENT_BYTES:
            raise DeliveryError(
                f"attachment {self.name!r} is {len(self.data)} bytes; the limit is "
                f"{MAX_ATTACHMENT_BYTES} bytes (16 MiB)"
            )


_ITEM_CAPS = {MessageKind.MESSAGE: 0, MessageKind.RECEIPT: 4096, MessageKind.RECORD: 512 * 1024}


@dataclass(frozen=True, slots=True)
class MessageContent:
    """What a person wrote: everything in a message that is end-to-end encrypted."""

    id: str
    sender: str
    recipient: str
    precedence: Precedence
    lang: str
    subject: str
    body: str
    created_at_ns: int
    attachments: tuple[Attachment, ...] = ()
    kind: MessageKind = MessageKind.MESSAGE
    # The signed item a carrier carries: the receipt (kind RECEIPT) or the desk record (kind RECORD).
    receipt: bytes = field(default=b"", repr=False)
    # The sender's marking (e.g. SECRET), signed with the rest; "" only on automatic items.
    classification: str = ""

    def __post_init__(self) -> None:
        if (self.kind is MessageKind.MESSAGE) == bool(self.receipt) or len(self.receipt) > _ITEM_CAPS[self.kind]:
            raise DeliveryError(
                "a receipt item carries one signed receipt (up to 4 KiB), a record item one signed desk record "
                "(up to 512 KiB); a message carries neither"
            )
        try:
            uuid.UUID(self.id)
        except ValueError:
            raise DeliveryError(f"invalid message id {self.id!r}: expected a UUID") from None
        validate_name(self.sender, "sender")
        validate_name(self.recipient, "recipient")
        validate_lang(self.lang)
        validate_text(self.subject, "subject")
        validate_text(self.body, "body")
        if self.classification:
            validate_marking(self.classification)
        if len(self.subject) > MAX_SUBJECT_CHARS:
            raise DeliveryError(f"subject is {len(self.subject)} characters; the limit is {MAX_SUBJECT_CHARS}")
        if len(self.body.encode()) > MAX_BODY_BYTES:
            raise DeliveryError(f"body is over {MAX_BODY_BYTES} bytes; send long text as an attachment")
        if len(self.attachments) > MAX_ATTACHMENTS:
            raise DeliveryError(f"{len(self.attachments)} attachments; the limit is {MAX_ATTACHMENTS}")
        total = sum(len(a.data) for a in self.attachments) + len(self.body.encode())
        if total > MAX_MESSAGE_BYTES:
            raise DeliveryError(
                f"message is {total / 2**20:.1f} MiB; the limit is {MAX_MESSAGE_BYTES // 2**20} MiB for the body and "
                "attachments together"
            )
