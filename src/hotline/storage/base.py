"""The storage interface: what the terminal asks of its record and its working state.

One Protocol per concern, at the level of the domain (peers, messages, alarms,
people), never SQL: a caller outside a backend's own package neither writes nor
reads a query. SQLite implements them today (``hotline.storage.sqlite``), by
structure; a PostgreSQL backend may follow, and must pass the same contract
tests (``tests/test_storage_contract.py``). The rows they pass around live in
``hotline.storage.records``, with the record's format, so every backend shares
them.

Transactions. The stores of one backend work over one ``Record`` and share its
transaction. Every ``PeerStore``, ``MessageStore``, ``AlarmStore`` and
``EventStore`` method that changes anything must run inside
``record.transaction()``, which the caller opens: the engine groups a whole
event-loop turn into one commit. Each of them but ``save_session`` appends the
entry that explains its change, and so is refused with ``JournalError`` outside
a transaction. ``AccessStore`` is the exception: each of its changes is one
transaction of its own, which it opens itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, Self

from hotline.core.access import Principal, Role, Session
from hotline.core.alarms import AlarmChange
from hotline.core.errors import DeliveryError
from hotline.core.model import MessageContent, Precedence
from hotline.crypto.envelope import Receipt
from hotline.storage.records import Arrival, Cursors, Entry, OwnStatement, PastKey, PeerRow, Sealed


class Record(Protocol):
    """The append-only, hash-chained record and a little key/value metadata beside it."""

    @property
    def path(self) -> Path:
        """Where the record lives, for messages that name it."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """One durable write transaction: all of it commits, or (on any exception) none of it.

        Nested use joins the outer one. Two writers (two processes) never fork the chain."""
        ...

    def reader(self) -> Record:
        """A second, read-only handle on the same record, for verifying or exporting it in a worker
        thread without holding up the writer. The caller closes it."""
        ...

    def append(self, kind: str, body: dict[str, Any], at_ns: int, peer: str = "") -> int:
        """Append one entry to the chain (inside a transaction); return its sequence number."""
        ...

    def append_batch(self, entries: Sequence[tuple[str, dict[str, Any], str]], at_ns: int) -> list[int]:
        """Append several entries, each ``(kind, body, peer)``, in this order, as ``append`` would one
        by one (inside a transaction); return their sequence numbers. One statement for all of them
        where the backend can: a flush journals hundreds of messages at once."""
        ...

    def entries(self, start: int = 1) -> Iterator[Entry]:
        """Every entry from sequence number ``start`` on, in order."""
        ...

    def entry_count(self) -> int: ...

    def size_bytes(self) -> int:
        """What the record takes on disk now, in bytes (for metrics); cheap enough to ask often."""
        ...

    def last(self) -> Entry | None:
        """The entry with the highest sequence number (the head), or None if the record is empty."""
        ...

    def get_meta(self, key: str) -> bytes | None: ...

    def snapshot(self, dest: Path) -> None:
        """Copy the whole record, consistent as of one moment, to a new file ``dest`` while writers
        go on (SQLite's online backup). Blocking: call it off the event loop, on a ``reader()``."""
        ...

    def set_meta(self, key: str, value: bytes) -> None:
        """Set one metadata value (inside a transaction); not part of the chain."""
        ...


class PeerStore(Protocol):
    """Paired peers: their pinned cards, ratchet sessions and stream cursors."""

    def add_peer(
        self,
        name: str,
        card_json: str,
        identity_key: bytes,
        safety_number: str,
        session: bytes,
        at_ns: int,
        fresh: bool = False,
    ) -> bool:
        """Pin a peer's card (``peer.paired``). A first pairing, one with a new key, or one marked
        ``fresh`` (our own key changed: ``hotline revoke``) starts a new stream: fresh cursors and
        session, and what was sealed but not delivered goes back to the queue. Returns True if this
        replaced a pairing with a different key."""
        ...

    def peer(self, name: str) -> PeerRow | None: ...

    def peers(self) -> list[PeerRow]:
        """Every paired peer, by name."""
        ...

    def mark_verified(self, name: str, at_ns: int, by: str = "") -> None:
        """An operator confirmed the safety number by voice (``operator.action`` verify-peer)."""
        ...

    def load_session(self, peer: str) -> bytes:
        """The peer's sealed ratchet state; ``JournalError`` if it is not paired."""
        ...

    def save_session(self, peer: str, state: bytes) -> None: ...

    def cursors(self, peer: str) -> Cursors:
        """Where both directions of the peer's stream stand; ``JournalError`` if it is not paired."""
        ...

    def in_stream_hash_at(self, peer: str, seq: int) -> bytes | None:
        """The running hash of the peer's stream as received, at ``seq`` (None if not held)."""
        ...

    def mark_restored(self, backup_at_ns: int, source: str, by: str, at_ns: int) -> list[str]:
        """This record was just restored from a backup taken at ``backup_at_ns``: every peer is marked
        "restored: re-key before sending" (``operator.action`` restore). Returns the peers marked."""
        ...

    def restored_at(self, peer: str) -> int | None:
        """When the backup this record was restored from was taken, while the peer still awaits its
        re-key; else None."""
        ...

    def restart_stream(self, peer: str, session: bytes, held: int, detail: dict[str, Any], at_ns: int) -> list[str]:
        """A re-key (``peer.rekeyed``, with ``detail``): our messages 1..``held`` of the stream are in
        the peer's journal and count as delivered; every later one of the stream goes back to the
        queue, to be sealed afresh; the cursors and the session start again, and the restored mark
        goes. Returns the ids put back in the queue."""
        ...


class MessageStore(Protocol):
    """Messages both ways, from accepted to delivered and acknowledged, with receipts and attachments.

    Listings return dicts with the keys id, peer, seq, precedence (a label), lang, subject, body,
    created_at_ns, state, queued_at_ns, sent_at_ns, delivered_at_ns, received_at_ns,
    acknowledged_at_ns, acknowledged_by, attachments, read_at_ns and classification."""

    # -- outgoing

    def accept(self, content: MessageContent, at_ns: int) -> bool:
        """Journal a message for sending (``message.accepted``, state queued). False if this exact
        message was already accepted (the id is an idempotency key); ``DeliveryError`` if the id is
        taken by a different message or the recipient is not paired."""
        ...

    def accept_batch(self, contents: Sequence[MessageContent], at_ns: int) -> list[bool | DeliveryError]:
        """``accept`` for several messages at once, in this order: for each, True (journaled), False
        (this exact message was already accepted, here or earlier in the batch) or the
        ``DeliveryError`` that refuses it — a refused one does not hold up the others."""
        ...

    def queued(self, peer: str) -> list[tuple[str, Precedence, int]]:
        """Outgoing messages not yet sealed: (id, precedence, order key), oldest first."""
        ...

    def load_content(self, message_id: str, own_name: str) -> MessageContent:
        """A message as it was accepted or received, attachments and all; ``JournalError`` if absent."""
        ...

    def record_sealed(
        self, message_id: str, peer: str, seq: int, envelope: bytes, stream_hash: bytes, at_ns: int
    ) -> None:
        """The message was sealed as ``seq`` of the stream (``message.sealed``, state sent)."""
        ...

    def record_sealed_batch(self, peer: str, sealed: Sequence[Sealed], at_ns: int) -> None:
        """``record_sealed`` for a batch, in stream order: the stream's cursor moves once, to where
        the last envelope leaves it."""
        ...

    def unacked(self, peer: str) -> dict[int, bytes]:
        """Envelopes sealed for the peer and not yet covered by its receipt, by sequence number."""
        ...

    def stream_hash_at(self, peer: str, seq: int) -> bytes | None: ...

    def record_delivered(self, peer: str, receipt: bytes, upto: int, at_ns: int) -> list[str]:
        """The peer's verified delivery receipt up to ``upto`` (``receipt.received``); returns the ids
        it marked delivered."""
        ...

    # -- incoming

    def record_received(
        self, content: MessageContent, seq: int, envelope: bytes, stream_hash: bytes, at_ns: int
    ) -> None:
        """A message from the peer, journaled (``message.received``); the inbound cursor moves on."""
        ...

    def record_received_batch(self, peer: str, arrivals: Sequence[Arrival], at_ns: int) -> None:
        """Envelopes of the peer's stream, in stream order: each a ``message.received`` or, for
        a message journaled already, a ``message.duplicate`` (``record_duplicate``); the inbound
        cursor moves once, to the last of them."""
        ...

    def record_receipt_sent(self, peer: str, receipt: bytes, upto: int, at_ns: int) -> None: ...

    def record_duplicate(self, peer: str, message_id: str, seq: int, envelope: bytes, stream_hash: bytes,
                         at_ns: int) -> None:  # fmt: skip
        """An envelope of the stream carrying a message already journaled (sent again after a
        re-key): ``message.duplicate``; the inbound cursor moves on, nothing is delivered twice."""
        ...

    # -- lookups

    def has_message(self, message_id: str) -> bool:
        """Any message, receipt carrier or test with this id, either direction."""
        ...

    def message_state(self, message_id: str) -> str | None: ...

    def awaiting_ack(self, message_id: str) -> tuple[str, str] | None:
        """(direction, subject) of a message still waiting for a person's acknowledgement, else None."""
        ...

    def incoming(self, message_id: str) -> dict[str, Any] | None:
        """An incoming message's peer, seq, stream_hash, precedence, acknowledged_at_ns, kind and
        read_at_ns; None if no incoming message has this id."""
        ...

    # -- read and acknowledged

    def record_acknowledged_here(self, message_id: str, by: str, at_ns: int) -> None: ...

    def record_read_here(self, message_id: str, by: str, at_ns: int) -> None: ...

    def record_person_receipt(self, peer: str, receipt: Receipt, at_ns: int) -> bool:
        """The peer's signed read or acknowledged receipt; False (nothing journaled) if it names no
        message we sent that peer."""
        ...

    def unacknowledged(self) -> list[tuple[str, str, str, int]]:
        """Messages (both ways) still waiting for a person's acknowledgement: id, peer, precedence
        label, since."""
        ...

    # -- listings

    def messages(self, direction: str, peer: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The latest ``limit`` messages one way ("in" or "out"), oldest first; no receipts or tests."""
        ...

    def message_count(self, direction: str, peer: str | None = None) -> int:
        """How many messages there are one way (all of them, whatever ``messages`` shows)."""
        ...

    def message(self, message_id: str) -> dict[str, Any] | None:
        """One message (either direction, with ``direction``) and its attachments' index, name, size
        and sha256 (hex); a person's, or one that carries a desk record (a channel message's files)."""
        ...

    def attachment(self, message_id: str, index: int) -> tuple[str, bytes] | None:
        """(name, data) of one attachment of a message."""
        ...

    def queue_depth(self, peer: str) -> dict[str, int]:
        """How many outgoing messages to the peer are queued, sent and delivered."""
        ...

    def received_count(self, peer: str) -> int: ...

    def tallies(self) -> list[dict[str, Any]]:
        """A person's messages (not receipts or desk records) counted per peer, direction ("out" or
        "in") and precedence (a label), for metrics: one dict per group with those three keys and
        the counts ``queued``, ``sent``, ``delivered`` and ``received`` (by state) and ``acknowledged``
        (by a person, at either end). Groups with no message are left out."""
        ...


class AlarmStore(Protocol):
    """Alarms a person must see, raised and cleared in the record and restored at start."""

    def record_alarm(self, change: AlarmChange) -> None:
        """``alarm.raised`` or ``alarm.cleared``, and the set of active alarms with it."""
        ...

    def active_alarms(self) -> list[dict[str, Any]]:
        """The alarms standing now, oldest first: id, kind, peer, subject, detail, raised_ns."""
        ...


class EventStore(Protocol):
    """Entries that explain no working state of their own: creation, link events, operator actions."""

    def record_created(self, name: str, identity_key: bytes, dh_key: bytes, cert_der: bytes, at_ns: int) -> None:
        """``terminal.created``: the keys the audit checks our own signatures against."""
        ...

    def record_link(self, kind: str, peer: str, detail: dict[str, Any], at_ns: int) -> None:
        """One of the ``link.*`` entries; ``JournalError`` for any other kind."""
        ...

    def record_operator(self, action: str, detail: dict[str, Any], at_ns: int) -> None: ...


class DeskStore(Protocol):
    """The desk's signed records (``hotline.desk``): calls, readouts, commitments."""

    def record_desk(self, record_id: str, signed: bytes, direction: str, message_id: str, at_ns: int) -> None:
        """File a desk record: ``out`` or ``in`` when it rides message ``message_id`` (journaled
        with it, in this transaction), ``local`` when it stays here (journaled as ``desk.record``)."""
        ...

    def desk_records(self) -> list[bytes]:
        """Every desk record held, signed, in the order they were journaled."""
        ...

    def record_carriers(self, direction: str = "out", signed: bytes | None = None) -> list[dict[str, Any]]:
        """Every message that carries a desk record one way ("out": sent, "in": received and taken into
        the desk), or only those that carry the record ``signed``, oldest first: a dict with the signed
        record (``signed``), the carrier's ``id``, ``peer``, ``state`` and its times and receipts
        (``delivered_at_ns``, ``read_at_ns``, ``acknowledged_at_ns``, ``acknowledged_by``,
        ``received_at_ns``). A channel record sent has one carrier per member (``desk.channels``): its
        receipts are that member's."""
        ...

    def carried_record(self, message_id: str) -> tuple[bytes, str] | None:
        """(the signed desk record, "out" or "in") that a message carries; None if it carries none."""
        ...

    def carrier_of(self, record_id: str) -> str | None:
        """The message that carries a desk record: the one that brought it here, or for one of ours the
        one that took it out (for a channel's, the first of its carriers: each holds the same record and
        files); None for a record kept here or not held."""
        ...


class KeyStore(Protocol):
    """Key rotation and revocation (``crypto.succession``): a peer's past keys, our own statements."""

    def record_succession(self, peer: str, statement: bytes, card_json: str, old_key: bytes, new_key: bytes,
                          safety_number: str, upto: int, at_ns: int) -> None:  # fmt: skip
        """``peer.succeeded``: pin the new card and key, keep the old key as retired (valid for its
        envelopes up to ``upto``), keep the verification."""
        ...

    def record_peer_revoked(self, peer: str, key: bytes, statement: bytes, reason: str, at_ns: int) -> None:
        """``peer.revoked``: ``key`` is refused from now on, and no pairing may pin it again."""
        ...

    def set_safety_number(self, peer: str, number: str) -> None:
        """Our own key changed by succession: the peer's safety number with it (journaled by the caller)."""
        ...

    def past_keys(self, peer: str) -> list[PastKey]:
        """The peer's retired and revoked keys, oldest first."""
        ...

    def revoked_keys(self) -> dict[bytes, str]:
        """Every revoked key, to the name of the peer that held it."""
        ...

    def record_own_statement(self, kind: str, body: dict[str, Any], statement: bytes, peers: dict[str, int],
                             at_ns: int) -> None:  # fmt: skip
        """``terminal.rotated`` or ``terminal.revoked``, with the new public keys in ``body`` and the
        peers paired then (each to the last envelope the old key sealed for it)."""
        ...

    def own_statements(self) -> list[OwnStatement]:
        """Our own successions and revocations, oldest first."""
        ...


class TerminalStore(PeerStore, MessageStore, AlarmStore, EventStore, DeskStore, KeyStore, Protocol):
    """Everything the engine keeps, over one record whose transactions it shares."""

    @property
    def journal(self) -> Record: ...


class AccessStore(Protocol):
    """Users, API tokens and console sessions; every change journaled as an operator action.

    Passwords arrive hashed (``core.access.new_password_hash``); tokens and session ids are kept
    only as digests. Each changing method runs in a transaction of its own."""

    def add_user(self, name: str, role: Role, password_hash: str, lang: str, *, by: str, at_ns: int) -> None:
        """``AccessError`` if the name is taken or the console does not speak ``lang``."""
        ...

    def remove_user(self, name: str, *, by: str, at_ns: int) -> None:
        """Remove a user and end their sessions; ``UnknownUser`` if there is none by that name."""
        ...

    def set_lang(self, name: str, lang: str) -> None: ...

    def users(self) -> list[dict[str, Any]]:
        """name, role, lang and created_at_ns of every user, by name."""
        ...

    def password_record(self, name: str) -> tuple[Principal | None, str]:
        """The user and their stored password hash; for an unknown name, None and a hash that takes
        as long to check (``core.access.unknown_user_hash``)."""
        ...

    def authenticate(self, name: str, password: str) -> Principal | None:
        """Blocking (~70-150 ms of scrypt): the user, if the password is theirs."""
        ...

    def record_login_throttle(self, detail: Mapping[str, object], at_ns: int) -> None:
        """Journal a login throttle's start or end (an ``operator.action`` ``login.throttle`` with
        ``detail``: scope, user, from, counts); no person made it, so it names no ``by``."""
        ...

    def create_token(self, role: Role, label: str, *, by: str, at_ns: int) -> tuple[str, str]:
        """A new bearer token: (id, secret). Only the secret's digest is kept."""
        ...

    def revoke_token(self, token_id: str, *, by: str, at_ns: int) -> None:
        """``UnknownToken`` if no live token has this id."""
        ...

    def tokens(self) -> list[dict[str, Any]]:
        """id, role, label, created_by, created_at_ns and revoked_at_ns of every token, oldest first."""
        ...

    def token_principal(self, secret: str) -> Principal | None:
        """Who a live token's secret speaks for."""
        ...

    def open_session(self, user: Principal, lifetime_ns: int, now_ns: int, client: str = "") -> tuple[str, Session]:
        """A console login (journaled with where from); returns the session id (shown once) and the
        session. Expired sessions are dropped on the way."""
        ...

    def session(self, session_id: str, now_ns: int) -> Session | None:
        """The live session with this id, else None."""
        ...

    def close_session(self, session_id: str, now_ns: int) -> None:
        """A logout, journaled; nothing if there is no such session."""
        ...
