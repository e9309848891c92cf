"""Re-keying after a restore: a fresh ratchet and a fresh stream before anything is sent.

A terminal restored from a backup (``hotline restore``) has every peer marked
"restored: re-key before sending" in its journal. Its ratchet states are older
than the ones it last used, so sealing with them would reuse message keys. Until
the re-key is done it seals nothing, transmits nothing, opens nothing the peer
sends (the peer keeps it) and says in its hello that it holds nothing (cursor 0),
which is true of every stream the peer may be in by then.

The exchange (``crypto.rekey`` offers on the link, ``rekey`` frames):

    restored side R                          peer P
    hello(cursor 0) ───────────────────────>
    <─────────────────────────────────────── hello
    offer(fresh key, R's cursors) ─────────> restart: fresh ratchet, fresh stream,
                                             re-queue what R lacks (``core.rekey``)
    <───────────────────────────────────────  answer(fresh key, P's cursors, reply_to)
    restart likewise; announce what R lost;
    resume(0) ─────────────────────────────>  envelopes 1, 2, ... of the new stream

R makes one offer per run and repeats the same one on each new connection until
answered; P answers a repeated offer with the same answer, so a lost answer costs
nothing. If both sides were restored, both offer: the offer of the smaller identity
key is answered, the other is ignored. Each side's restart is one transaction
(``PeerStore.restart_stream``) taken after the group commit of what arrived before.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hotline.core.delivery import Inbound, Outbound, OutboxQueue
from hotline.core.errors import RemoteProtocolError
from hotline.core.model import EMPTY_STREAM_HASH
from hotline.core.protocol import State
from hotline.core.rekey import plan_restart
from hotline.core.supervision import Supervisor
from hotline.core.times import rfc3339
from hotline.crypto import envelope as env
from hotline.crypto import rekey
from hotline.crypto.identity import Identity
from hotline.crypto.ratchet import Ratchet, initial_secret, is_initiator
from hotline.engine.peer import Clock, Link, PeerState, seal_state
from hotline.home.config import Config
from hotline.storage.base import Record, TerminalStore

log = logging.getLogger("hotline.engine")

NO_REPLY = bytes(16)


class RekeyHandling(ABC):
    """The engine's half that re-keys a peer's session; the engine supplies the rest."""

    name: str
    identity: Identity
    config: Config
    clock: Clock
    journal: Record
    store: TerminalStore
    supervisor: Supervisor
    peers: dict[str, PeerState]
    _randbytes: Callable[[int], bytes]
    _request_flush: Callable[[], None]

    @abstractmethod
    def flush(self) -> None: ...

    @abstractmethod
    def _supervise(self) -> None: ...

    @abstractmethod
    def _wake_delivered(self) -> None: ...

    def _offer_rekey(self, peer: PeerState, link: Link) -> None:
        """A link to a peer we must re-key with is up: (re)send our offer on it."""
        if peer.rekey_offer is None:
            peer.rekey_key = X25519PrivateKey.from_private_bytes(self._randbytes(32))
            peer.rekey_offer = self._make_offer(peer, peer.rekey_key, NO_REPLY, bytes(32))
            log.warning("%s: restored from a backup of %s; re-keying before anything is sent",
                        peer.name, rfc3339(peer.restored_at or 0))  # fmt: skip
        if link.conn.state is State.OPEN:
            link.conn.send_rekey(peer.rekey_offer)
            link.pump()

    def _make_offer(self, peer: PeerState, key: X25519PrivateKey, reply_to: bytes, seen: bytes) -> bytes:
        return rekey.make_offer(
            self.identity, sender=self.name, recipient=peer.name, nonce=self._randbytes(16),
            dh_public=key.public_key().public_bytes_raw(), in_upto=peer.committed_in_upto,
            in_sh=peer.inbound.stream_hash if not peer.pending_in else self.store.cursors(peer.name).in_stream_hash,
            out_upto=peer.outbound.next_seq - 1, restored_at=peer.restored_at or 0, seen=seen, reply_to=reply_to,
        )  # fmt: skip

    def _on_rekey(self, peer: PeerState, link: Link, data: bytes) -> None:
        offer = rekey.open_offer(data, peer.identity_key)  # signature first
        if offer.sender != peer.name or offer.recipient != self.name:
            raise RemoteProtocolError(f"re-key offer from {offer.sender} to {offer.recipient} on {peer.name}'s link")
        digest = hashlib.sha256(data).digest()
        if offer.reply_to != NO_REPLY:  # an answer to an offer of ours
            if peer.rekey_offer is None or peer.rekey_key is None or offer.reply_to != rekey.nonce_of(peer.rekey_offer):
                log.info("%s answered a re-key offer we no longer hold; ignored", peer.name)
                return
            self._restart(peer, offer, peer.rekey_key, peer.rekey_offer)
            for live in peer.links.values():
                if live.conn.state is State.OPEN:
                    live.conn.send_resume(0)  # what came before our restart was dropped: all of it again
                    live.pump()
            return
        answered = peer.answers.get(digest)
        if answered is not None:  # the same offer again (our answer was lost): the same answer
            link.conn.send_rekey(answered)
            link.pump()
            return
        if peer.rekey_offer is not None and self.identity.public_key < peer.identity_key:
            log.info("%s offers a re-key while ours is outstanding; the smaller key's offer stands", peer.name)
            return
        self.flush()  # what arrived in the old stream is journaled in it, before it ends
        key = X25519PrivateKey.from_private_bytes(self._randbytes(32))
        seen = self.store.in_stream_hash_at(peer.name, offer.out_upto) if offer.out_upto else EMPTY_STREAM_HASH
        answer = self._make_offer(peer, key, offer.nonce, seen or bytes(32))
        self._restart(peer, offer, key, answer)
        peer.answers = {digest: answer}
        for live in peer.links.values():  # before any envelope of the new stream, on every path
            if live.conn.state is State.OPEN:
                live.conn.send_rekey(answer)
                live.pump()

    def _restart(self, peer: PeerState, offer: rekey.RekeyOffer, key: X25519PrivateKey, own_offer: bytes) -> None:
        """Both offers are known: derive the new ratchet, end the old stream, start the new one."""
        self.flush()
        static = initial_secret(self.identity.public_key, self.identity.dh_key, peer.identity_key, peer.card.dh_key)
        secret = rekey.rekey_secret(static, self.identity.public_key, key, own_offer, peer.identity_key, offer)
        if is_initiator(self.identity.public_key, peer.identity_key):
            ratchet = Ratchet.initiator(secret, key, offer.dh)
        else:
            ratchet = Ratchet.responder(secret, key, offer.dh)
        out_upto = peer.outbound.next_seq - 1
        plan = plan_restart(
            our_out_upto=out_upto, our_hash_at_peer_cursor=self.store.stream_hash_at(peer.name, offer.in_upto),
            peer_in_upto=offer.in_upto, peer_in_sh=offer.in_sh, we_were_restored=peer.restored_at is not None,
            our_out_sh=peer.out_stream_hash, peer_hash_at_our_out=offer.seen if offer.seen != bytes(32) else None,
        )  # fmt: skip
        now_ns = self.clock.wall_ns()
        restored_at = peer.restored_at
        detail: dict[str, Any] = {
            "offer_in": offer.raw, "offer_out": own_offer, "restored_at": restored_at or 0,
            "same_stream": plan.same_stream, "lost": list(plan.lost) if plan.lost else None,
        }  # fmt: skip
        lost_text = ""
        if restored_at is not None and plan.lost is not None:
            first, last = plan.lost
            lost_text = (f"restored from a backup of {rfc3339(restored_at)}: messages {first}..{last} that "
                         f"{self.name} sent after it are held by {peer.name} only")  # fmt: skip
        elif restored_at is not None and not plan.same_stream:
            lost_text = (f"restored from a backup of {rfc3339(restored_at)}: {peer.name}'s record of our stream "
                         "could not be matched with ours; what we sent after the backup is held by "
                         f"{peer.name} only")  # fmt: skip
        with self.journal.transaction():
            requeued = self.store.restart_stream(
                peer.name, seal_state(self.identity.state_key, peer.name, ratchet.to_bytes(), self._randbytes(12)),
                plan.held, detail, now_ns,
            )  # fmt: skip
            if lost_text:
                self.store.record_operator("restore-lost", {"peer": peer.name, "text": lost_text,
                                                            "lost": detail["lost"]}, now_ns)  # fmt: skip
        log.warning("re-keyed with %s: a fresh ratchet and a fresh stream; %d of ours sent again, %d held there",
                    peer.name, len(requeued), plan.held)  # fmt: skip
        if lost_text:
            log.error("%s", lost_text)
            self.supervisor.raise_alarm("restored-messages-lost", peer.name, "", lost_text, now_ns)
            self._supervise()
        self._fresh_stream(peer, ratchet)
        self._wake_delivered()  # what the peer was found to hold is delivered, though no receipt said so

    def _fresh_stream(self, peer: PeerState, ratchet: Ratchet) -> None:
        """Memory follows the journal: the new stream from sequence 1, the queue as journaled."""
        peer.ratchet = ratchet
        peer.outbound = Outbound(next_seq=1, acked=0, unacked={}, window=self.config.window)
        peer.inbound = Inbound()
        peer.queue = OutboxQueue()
        for message_id, precedence, order in self.store.queued(peer.name):
            peer.queue.push(message_id, precedence, order)
        peer.out_stream_hash = EMPTY_STREAM_HASH
        peer.committed_in_upto = 0
        peer.last_receipt_out = None
        peer.stream_hashes.clear()
        peer.pending_receipt = None
        peer.resend_receipt_on.clear()
        peer.seals = env.SealCache()
        peer.restored_at = None
        peer.rekey_key = None
        peer.rekey_offer = None
        peer.ratchet_dirty = False
        for live in peer.links.values():
            if live.hello_cursor is not None:
                live.hello_cursor = 0
        if peer.active is not None and peer.active.conn.state is State.OPEN:
            peer.outbound.link_up(0, self.clock.monotonic())
        self._request_flush()
