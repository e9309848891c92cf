"""What the engine holds per peer and per connection, and the ratchet state at rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hotline.core.delivery import Inbound, Outbound, OutboxQueue
from hotline.core.errors import JournalError
from hotline.core.paths import PathSelector
from hotline.core.protocol import Connection
from hotline.crypto import envelope as env
from hotline.crypto.identity import ContactCard
from hotline.crypto.ratchet import Ratchet
from hotline.storage.records import Arrival, PastKey

SESSION_AD = b"hotline-session-v1\x00"


def seal_state(key: bytes, peer: str, state: bytes, nonce: bytes) -> bytes:
    """Encrypt a ratchet state at rest under the terminal's state key (``nonce``: 12 fresh random bytes)."""
    return nonce + AESGCM(key).encrypt(nonce, state, SESSION_AD + peer.encode())


def open_state(key: bytes, peer: str, blob: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], SESSION_AD + peer.encode())
    except (InvalidTag, ValueError):
        raise JournalError(f"the ratchet session for {peer!r} does not decrypt with this terminal's keys") from None


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def wall_ns(self) -> int: ...


class LinkIO(Protocol):
    """What the engine needs from a transport: write bytes, close."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...


@dataclass(eq=False)
class Link:
    """One authenticated connection to a peer."""

    peer: str
    io: LinkIO
    conn: Connection
    dialed: bool  # we opened it
    preferred: bool  # opened by the side with the smaller identity key (tie-break)
    address: str
    path: str = "primary"
    hello_cursor: int | None = None  # the peer's cursor from its hello on this link
    # It replaced a live connection on the same path (both sides dialled at once):
    # the path stays up across the handover, and goes down if this one never comes up.
    inherits_up: bool = False
    # The peer closed this one for a newer connection on the same path, which has not reached us
    # yet (its handshake finishes later at our end): it keeps the path's place, and the path stays
    # up, until this monotonic time; then the path is down after all.
    handover_until: float | None = None
    # A relayed path (``engine.relaying``): the peer whose own link carries this one; None if direct.
    via: str | None = None
    session: int = 0  # a relayed link's session, chosen by the end that opened it
    # We dialled the peer and it presented this key, not the pinned one: a provisional link that
    # waits, sending nothing, for a succession from the pinned key naming it (``trust``).
    presented: bytes | None = None

    def pump(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.io.write(data)


@dataclass(eq=False)
class PeerState:
    name: str
    identity_key: bytes
    card: ContactCard
    ratchet: Ratchet
    outbound: Outbound
    inbound: Inbound
    queue: OutboxQueue
    out_stream_hash: bytes
    committed_in_upto: int
    last_receipt_out: bytes | None
    last_contact_ns: int | None
    selector: PathSelector
    stream_hashes: dict[int, bytes] = field(default_factory=dict)  # unacked seq -> our running hash
    active: Link | None = None  # the link that carries our envelopes
    links: dict[str, Link] = field(default_factory=dict)  # one live link per path
    pending_in: list[Arrival] = field(default_factory=list)  # opened, to be journaled in the next flush
    # An arrival above ROUTINE is in ``pending_in``: open nothing more of this peer's stream until
    # the flush has journaled it and sent its receipt (what follows it waits in the connection).
    hold_reading: bool = False
    pending_receipt: tuple[int, bytes] | None = None
    resend_receipt_on: set[Link] = field(default_factory=set)
    ratchet_dirty: bool = False
    refused: str | None = None  # why the last link attempt was refused (key mismatch...)
    last_error: str | None = None
    doubt: str = ""  # the peer says its journal failed its check: how ("" while it does not)
    link_since_ns: int | None = None
    seals: env.SealCache = field(default_factory=env.SealCache)  # the peer's batches verified lately
    failovers: int = 0  # times traffic moved off a failed path to another, since the terminal started
    # Restored from a backup taken then (ns): nothing is sealed, sent or opened until re-keyed
    # (``rekeying``); our offer and its fresh key while one is outstanding; our answer to the
    # peer's latest offer, by the offer's digest, to repeat if it comes again.
    restored_at: int | None = None
    rekey_key: X25519PrivateKey | None = None
    rekey_offer: bytes | None = None
    answers: dict[bytes, bytes] = field(default_factory=dict)
    paired_at_ns: int = 0  # when the pinned card was paired (for the reasons a changed key is refused)
    past: list[PastKey] = field(default_factory=list)  # keys it held before, retired or revoked (``trust``)

    @property
    def revoked(self) -> bool:
        """The pinned key itself was revoked: nothing of this peer is accepted until it is paired afresh."""
        return any(p.state == "revoked" and p.key == self.identity_key for p in self.past)
