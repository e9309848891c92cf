"""Key rotation and revocation: this terminal's own (``rotate``/``revoke``) and its peers'.

Our side. ``record_rotation`` journals a succession (``crypto.succession``) made by
``hotline rotate-key``: the new public keys, and for each peer the last envelope
the old key sealed for it (``upto``; the peer still opens those with the old
key). Our latest delivery receipt for each peer is signed again with the new key,
since a peer that accepted the succession refuses the old one. ``record_revocation``
journals a revocation (``hotline revoke``) and pairs every peer afresh under the
new identity: new sessions, new streams, new safety numbers, unverified. Both run
on a stopped terminal's journal (the CLI) or inside the running engine. Every
statement we made is sent on every new link to a peer that was paired when we made
it, before our hello: a peer that was away hears it first.

Their side (``TrustHandling``, part of the engine). A succession is judged
against the pinned key and the peer's key history (``judge_succession``); one
signed by the pinned key is journaled (``peer.succeeded``), the new card pinned,
the old key kept as retired, the verification kept, and the alarm
``peer-key-rotated`` raised once. From then on the old key is refused for anything
new: a TLS handshake, a receipt, an envelope past ``upto``. A revocation signed by
the pinned key marks the peer revoked (``peer.revoked``): its links close, nothing
of it is accepted, and only a fresh pairing with a new card ends that.

A peer that rotated while we were apart presents a certificate we do not know.
When we dialled it, the link is *provisional* (``Link.presented``): we send
nothing, and only a succession from the pinned key naming the presented key makes
it a link; a hello without one is refused as a changed key.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from hotline.core.errors import (
    CryptoError,
    IdentityError,
    KeyConflict,
    ProtocolError,
    RemoteProtocolError,
    SignatureError,
    UnknownPeer,
)
from hotline.core.model import ReceiptKind
from hotline.core.protocol import State
from hotline.core.supervision import Supervisor
from hotline.core.times import rfc3339
from hotline.crypto import envelope as env
from hotline.crypto.identity import ContactCard, Identity, fingerprint, safety_number
from hotline.crypto.succession import judge_succession, open_revocation, open_succession, signer_of
from hotline.engine.pairing import pair
from hotline.engine.peer import Clock, Link, PeerState
from hotline.storage.base import Record, TerminalStore
from hotline.storage.integrity import read_checkpoint, write_checkpoint
from hotline.storage.records import PastKey, PeerRow

log = logging.getLogger("hotline.engine")
T = TypeVar("T")


def _check_new_identity(statement_card: ContactCard, new: Identity) -> None:
    if (statement_card.identity_key, statement_card.dh_key, statement_card.cert_der) != (
        new.public_key, new.dh_public, new.cert_der,
    ):  # fmt: skip
        raise IdentityError("the succession's card does not carry the new identity's keys")


def _resign_checkpoint(store: TerminalStore, old: Identity, new: Identity) -> None:
    # The journal's checkpoint is checked against the terminal's key at every start: the same
    # checkpoint, signed by the new key (a bad one stays bad: read_checkpoint refuses it here).
    checkpoint = read_checkpoint(store.journal, old.public_key)
    if checkpoint is not None:
        write_checkpoint(store.journal, new, checkpoint.seq, checkpoint.hash, checkpoint.at_ns)


def record_rotation(
    store: TerminalStore, old: Identity, new: Identity, statement: bytes, now_ns: int
) -> dict[str, bytes]:
    """Inside the caller's transaction: journal our succession ``statement`` (signed by ``old``, naming
    ``new``) and sign each peer's latest delivery receipt again with the new key. Returns them by peer."""
    succession = open_succession(statement, old.public_key)  # made with the key in force: authorised
    if succession.name != old.name:
        raise IdentityError(f"the succession is for {succession.name!r}, not this terminal")
    _check_new_identity(succession.card, new)
    rows = store.peers()
    peers = {row.name: store.cursors(row.name).out_next_seq - 1 for row in rows}
    # The safety number covers both keys: ours changed, so each one does (the peer computes the same).
    numbers = {row.name: safety_number(new.public_key, new.name.encode(), row.identity_key, row.name.encode())
               for row in rows}  # fmt: skip
    body = {"old_key": old.public_key, "identity_key": new.public_key, "dh_key": new.dh_public,
            "cert": new.cert_der, "n": succession.n, "safety_numbers": numbers}  # fmt: skip
    store.record_own_statement("terminal.rotated", body, statement, peers, now_ns)
    for name, number in numbers.items():
        store.set_safety_number(name, number)
    _resign_checkpoint(store, old, new)
    receipts = {}
    for name in peers:
        last = store.cursors(name).last_receipt_out
        if last is None:
            continue
        held = env.open_receipt(last, old.public_key)
        receipt = env.make_receipt(new, kind=ReceiptKind.DELIVERED, sender=new.name, recipient=name, upto=held.upto,
                                   stream_hash=held.stream_hash, at_ns=now_ns)  # fmt: skip
        store.record_receipt_sent(name, receipt, held.upto, now_ns)
        receipts[name] = receipt
    return receipts


def record_revocation(store: TerminalStore, old: Identity, new: Identity, statement: bytes, now_ns: int) -> list[str]:
    """Inside the caller's transaction: journal our revocation of ``old``'s key and pair every peer
    afresh under ``new`` (their cards are unchanged; ours is new, and they must pair it)."""
    revocation = open_revocation(statement, old.public_key)
    rows = store.peers()
    body = {"old_key": old.public_key, "identity_key": new.public_key, "dh_key": new.dh_public,
            "cert": new.cert_der, "reason": revocation.reason}  # fmt: skip
    store.record_own_statement("terminal.revoked", body, statement, {row.name: 0 for row in rows}, now_ns)
    _resign_checkpoint(store, old, new)
    revoked = store.revoked_keys()
    paired = [row for row in rows if row.identity_key not in revoked]  # one we distrust waits for its new card
    for row in paired:
        pair(store, new, ContactCard.from_json(row.card_json), now_ns, by="revoke", fresh=True)
    return [row.name for row in paired]


def record_distrust(store: TerminalStore, peer: str, key: bytes, reason: str, by: str, now_ns: int) -> None:
    """Inside the caller's transaction: an operator here revokes trust in ``peer``'s ``key``."""
    store.record_peer_revoked(peer, key, b"", f"revoked here by {by}: {reason}", now_ns)


def key_for(peer: PeerState, seq: int) -> bytes:
    """The key that signed the peer's envelope ``seq``: a retired key for what it sealed before its
    successor (``upto``), the pinned key for everything after."""
    for past in peer.past:
        if past.state == "retired" and seq <= past.upto:
            return past.key
    return peer.identity_key


def item_keys(peer: PeerState, envelope_key: bytes) -> list[bytes]:
    """The keys a signed item inside an authentic envelope (a receipt, a desk record) may carry: the
    envelope's, or one the peer retired by succession. An item is signed when it is made and may be
    sealed after the key changed; the envelope, signed by the key in force, vouches that the peer
    sends it now. A revoked key is never among them."""
    return [envelope_key, *(p.key for p in peer.past if p.state == "retired" and p.key != envelope_key)]


def open_with(keys: list[bytes], opener: Callable[[bytes], T]) -> T:
    """``opener(key)`` with the first of ``keys`` it verifies against; its last refusal otherwise."""
    for key in keys[:-1]:
        try:
            return opener(key)
        except (ProtocolError, CryptoError):
            continue
    return opener(keys[-1])


def stale_reason(name: str, past: PastKey) -> str:
    if past.state == "revoked":
        return f"key {fingerprint(past.key)} of {name!r} was revoked on {rfc3339(past.at_ns)}"
    successor = fingerprint(past.successor) if past.successor else "?"
    return (f"key {fingerprint(past.key)} of {name!r} is stale: it passed to {successor} by a signed succession "
            f"on {rfc3339(past.at_ns)}")  # fmt: skip


class TrustHandling(ABC):
    """The engine's half that handles key statements, ours and the peers'."""

    name: str
    identity: Identity
    clock: Clock
    journal: Record
    store: TerminalStore
    supervisor: Supervisor
    peers: dict[str, PeerState]
    _request_flush: Callable[[], None]

    @abstractmethod
    def flush(self) -> None: ...

    @abstractmethod
    def _supervise(self) -> None: ...

    @abstractmethod
    def emit(self, event: dict[str, Any]) -> None: ...

    _close_link: Callable[[Link, str], None]  # ``links``: later in the engine's bases
    damage: str  # the journal failed its check: nothing is appended (``engine``)

    @abstractmethod
    def _refusal(self) -> Exception: ...

    @abstractmethod
    def reload_peers(self) -> list[str]: ...

    def _settle_key_alarms(self, row: PeerRow) -> None:
        """The operators read the new safety number aloud after a rotation, or paired a revoked peer's
        new card: the alarm about its key has done its work."""
        now_ns = self.clock.wall_ns()
        for alarm in self.supervisor.board.listing():
            if alarm["peer"] != row.name:
                continue
            if alarm["kind"] == "peer-key-rotated" and (row.verified_at_ns or 0) > int(str(alarm["raised_ns"])):
                reason = "the new safety number was read aloud and confirmed"
            elif alarm["kind"] == "peer-key-revoked" and alarm["subject"] != fingerprint(row.identity_key):
                reason = "paired afresh with a new key"
            else:
                continue
            self.supervisor.clear_alarm(str(alarm["kind"]), row.name, str(alarm["subject"]), reason, now_ns)
            self._supervise()

    # -- keys we know, for the TLS layer ----------------------------------------------------

    def stale_key(self, key: bytes) -> str | None:
        """Why ``key`` is refused, if it is a peer's retired or revoked key (else None)."""
        for peer in self.peers.values():
            for past in peer.past:
                if past.key == key:
                    return stale_reason(peer.name, past)
        return None

    def _refuse_stale(self, peer: PeerState, what: str, opener: Callable[[bytes], object]) -> bool:
        """``what`` failed against the pinned key: if one of the peer's past keys signed it, log that
        it is refused as stale (nothing of it is journaled) and return True."""
        for past in peer.past:
            try:
                opener(past.key)
            except (ProtocolError, CryptoError):
                continue
            log.error("refused %s from %s: %s; it is not journaled", what, peer.name, stale_reason(peer.name, past))
            return True
        return False

    # -- ours ---------------------------------------------------------------------------------

    def _send_statements(self, peer: PeerState, link: Link) -> None:
        """Before our hello on a new link: every statement we made while this peer was paired."""
        for own in self.store.own_statements():
            if peer.name not in own.peers:
                continue
            if own.kind == "terminal.rotated":
                link.conn.send_succession(own.statement, own.peers[peer.name])
            else:
                link.conn.send_revocation(own.statement)

    def rotate(self, new: Identity, statement: bytes) -> dict[str, Any]:
        """``hotline rotate-key`` on the running terminal: journal it, sign with the new key from now
        on, and tell every peer on every live link (the others hear it when their link comes up)."""
        if self.damage:
            raise self._refusal()
        self.flush()  # what the old key sealed is journaled as the old key's
        now_ns = self.clock.wall_ns()
        with self.journal.transaction():
            receipts = record_rotation(self.store, self.identity, new, statement, now_ns)
        old, self.identity = self.identity, new
        for peer in self.peers.values():
            if peer.name in receipts:
                peer.last_receipt_out = receipts[peer.name]
            for link in peer.links.values():
                if link.conn.state is State.CLOSED:
                    continue
                self._send_statements(peer, link)
                if link.conn.state is State.OPEN and peer.last_receipt_out is not None:
                    link.conn.send_receipt(peer.last_receipt_out)  # the old key's one is refused there now
                link.pump()
        log.warning("identity key rotated: %s -> %s; peers are told by a succession signed with the old key",
                    fingerprint(old.public_key), fingerprint(new.public_key))  # fmt: skip
        self.emit({"event": "key-rotated", "old": fingerprint(old.public_key), "new": fingerprint(new.public_key)})
        return {"old": fingerprint(old.public_key), "new": fingerprint(new.public_key), "peers": sorted(self.peers)}

    def revoke(self, new: Identity, statement: bytes) -> dict[str, Any]:
        """``hotline revoke`` on the running terminal: tell every peer on every live link, journal it,
        then start afresh under ``new``: every link closes, every peer must pair our new card."""
        if self.damage:
            raise self._refusal()
        for peer in self.peers.values():
            for link in peer.links.values():
                if link.conn.state is not State.CLOSED:
                    link.conn.send_revocation(statement)
                    link.pump()
        self.flush()
        now_ns = self.clock.wall_ns()
        with self.journal.transaction():
            names = record_revocation(self.store, self.identity, new, statement, now_ns)
        old, self.identity = self.identity, new
        for peer in self.peers.values():
            for link in list(peer.links.values()):
                self._close_link(link, "this terminal revoked its key; pair its new card")
        self.peers.clear()
        self.reload_peers()
        log.critical("identity key %s REVOKED; new key %s: every peer must pair the new card and verify the "
                     "safety number aloud", fingerprint(old.public_key), fingerprint(new.public_key))  # fmt: skip
        self.emit({"event": "key-rotated", "old": fingerprint(old.public_key), "new": fingerprint(new.public_key)})
        return {"old": fingerprint(old.public_key), "new": fingerprint(new.public_key), "peers": names}

    # -- theirs -------------------------------------------------------------------------------

    def _on_succession(self, peer: PeerState, link: Link, data: bytes, upto: int) -> None:
        if self.damage:
            log.info("%s's key succession left for later: the journal is in doubt", peer.name)
            return  # it comes again on the next link, before anything else
        revoked = {p.key for p in peer.past if p.state == "revoked"} | set(self.store.revoked_keys())
        if peer.identity_key in revoked:
            raise RemoteProtocolError(f"{peer.name}'s key was revoked: a succession from it is refused; "
                                      "pair its new card")  # fmt: skip
        retired = {p.key: p.successor for p in peer.past if p.state == "retired" and p.successor is not None}
        try:
            succession = judge_succession(data, pinned=peer.identity_key, retired=retired, revoked=revoked)
        except KeyConflict as e:
            # Both cannot come from the terminal we paired with: its old key is in someone else's hands.
            self.supervisor.raise_alarm("peer-key-changed", peer.name, "", f"{e}; the key {peer.name} rotated "
                                        "away from is held by someone else: ask its operator to `hotline revoke`",
                                        self.clock.wall_ns())  # fmt: skip
            self._supervise()
            raise
        if succession is None:
            log.debug("%s re-sent a key succession already accepted", peer.name)
            return
        if succession.name != peer.name:
            raise RemoteProtocolError(f"key succession for {succession.name!r} arrived on {peer.name}'s link")
        holder = next((p.name for p in self.peers.values() if p.identity_key == succession.new_key), None)
        if holder is not None or succession.new_key == self.identity.public_key:
            raise RemoteProtocolError(f"key succession names key {fingerprint(succession.new_key)}, which is "
                                      f"{holder or self.name}'s: refused")  # fmt: skip
        self.flush()  # what the old key signed is journaled before the key changes
        now_ns = self.clock.wall_ns()
        new_key = succession.new_key
        number = safety_number(self.identity.public_key, self.name.encode(), new_key, peer.name.encode())
        with self.journal.transaction():
            self.store.record_succession(peer.name, data, succession.card.to_json(), succession.old_key, new_key,
                                         number, upto, now_ns)  # fmt: skip
        peer.identity_key, peer.card = new_key, succession.card
        peer.past = self.store.past_keys(peer.name)
        detail = (f"{peer.name} rotated its identity key {fingerprint(succession.old_key)} -> {fingerprint(new_key)} "
                  f"by a succession signed with the pinned key; new safety number {number}")  # fmt: skip
        log.warning("%s", detail)
        self.supervisor.raise_alarm("peer-key-rotated", peer.name, fingerprint(new_key), detail, now_ns)
        self._supervise()
        self.emit({"event": "peer-key-rotated", "peer": peer.name, "fingerprint": fingerprint(new_key),
                   "safety_number": number})  # fmt: skip

    def _on_revocation(self, peer: PeerState, link: Link, data: bytes) -> None:
        if self.damage:
            log.info("%s's key revocation left for later: the journal is in doubt", peer.name)
            for live in list(peer.links.values()):  # but nothing more of it is taken meanwhile
                self._close_link(live, f"{peer.name} revokes its key; heard again once the journal is sound")
            return
        key = signer_of(data)
        if any(p.key == key and p.state == "revoked" for p in peer.past):
            if link.presented is not None or key == peer.identity_key:
                raise RemoteProtocolError(f"{peer.name} revoked its key {fingerprint(key)}; pair its new card "
                                          "(`hotline pair FILE`) and verify the safety number aloud")  # fmt: skip
            return  # a revocation we hold, re-sent
        revocation = open_revocation(data, key)
        if revocation.name != peer.name:
            raise RemoteProtocolError(f"key revocation for {revocation.name!r} arrived on {peer.name}'s link")
        self.flush()
        now_ns = self.clock.wall_ns()
        with self.journal.transaction():
            self.store.record_peer_revoked(peer.name, key, data, revocation.reason, now_ns)
        peer.past = self.store.past_keys(peer.name)
        if key != peer.identity_key:
            log.info("%s revoked its earlier key %s, no longer pinned here", peer.name, fingerprint(key))
            return  # it only takes away trust we no longer give
        text = (f"{peer.name} REVOKED its identity key {fingerprint(key)} as compromised ({revocation.reason}); "
                "nothing signed by it is accepted; pair its new card (`hotline pair FILE`) and verify the safety "
                "number aloud")  # fmt: skip
        log.critical("%s", text)
        self.supervisor.raise_alarm("peer-key-revoked", peer.name, fingerprint(key), text, now_ns)
        self._supervise()
        for live in list(peer.links.values()):
            self._close_link(live, f"{peer.name} revoked its key")

    def distrust(self, peer_name: str, reason: str, by: str) -> dict[str, Any]:
        """An operator here revokes trust in the peer's current key (`hotline revoke --peer`): as if the
        peer had revoked it, without its word; only pairing its new card ends it."""
        if self.damage:
            raise self._refusal()
        peer = self.peers.get(peer_name)
        if peer is None:
            raise UnknownPeer(f"no peer named {peer_name!r}; see `hotline peers`")
        self.flush()
        now_ns = self.clock.wall_ns()
        with self.journal.transaction():
            record_distrust(self.store, peer_name, peer.identity_key, reason, by, now_ns)
        peer.past = self.store.past_keys(peer.name)
        log.critical("trust in %s's key %s revoked here by %s: %s", peer.name, fingerprint(peer.identity_key), by,
                     reason)  # fmt: skip
        for live in list(peer.links.values()):
            self._close_link(live, f"this terminal's operator revoked trust in {peer.name}'s key")
        return {"peer": peer.name, "revoked": fingerprint(peer.identity_key)}

    def _refuse_if_revoked(self, peer: PeerState) -> None:
        if peer.revoked:
            raise SignatureError(f"{peer.name}'s key {fingerprint(peer.identity_key)} is revoked; pair its new "
                                 "card (`hotline pair FILE`) and verify the safety number aloud")  # fmt: skip
