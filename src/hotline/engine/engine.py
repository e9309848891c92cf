"""The terminal's engine: every decision between the links and the journal, without asyncio.

The engine owns, per peer, the ratchet, the delivery state (``delivery``) and the
active link; it turns protocol events into journal work and journal commits into
bytes on links. The asyncio shell (``terminal``) only moves bytes, calls
``tick`` on a timer and ``flush`` when asked.

Group commit: events are processed as they arrive into *pending* work; one
``flush`` then writes all of it in one transaction and only after the commit
sends what depends on it — a receipt never leaves before the messages it covers
are durable, and an envelope never leaves before its ciphertext and the ratchet
state that produced it are durable (DESIGN: crash safety of the ratchet).

If a journal write fails, the engine raises and the terminal stops: in-memory
state may then be ahead of the journal, and restarting from the journal is the
only safe way on (restoring an older ratchet state is never done; nothing sealed
in the failed transaction left the process).

While the journal is in doubt (``journal_damaged``, issue 14) nothing is written at
all: no message is accepted, opened or sealed, and the links carry on so the peer
hears why.

Why this module is longer than the others (~660 lines): every path that writes to
the journal — what arrives, what is sent, the group commit, and the refusal while in
doubt — is here, so the crash-safety argument (nothing leaves before it is durable)
reads in one place. Connections and paths are in ``links``, per-peer state in
``peer``, the status view in ``status``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hotline.core.alarms import AlarmChange
from hotline.core.delivery import Inbound, Outbound, OutboxQueue, Verdict
from hotline.core.errors import (
    CryptoError,
    DeliveryError,
    JournalCorrupt,
    ProtocolError,
    RemoteProtocolError,
    SignatureError,
)
from hotline.core.model import MessageContent, MessageKind, Precedence, ReceiptKind, next_stream_hash, uuid7
from hotline.core.paths import PathSelector
from hotline.core.protocol import (
    State,
)
from hotline.core.relay import is_relay_path
from hotline.core.supervision import (
    PathTested,
    PathView,
    Readiness,
    SendTest,
    SupervisionConfig,
    Supervisor,
)
from hotline.crypto import envelope as env
from hotline.crypto.identity import ContactCard, Identity
from hotline.crypto.ratchet import Ratchet
from hotline.desk.forms import FormRegistry
from hotline.engine.desking import DeskHandling, desk_event
from hotline.engine.links import LinkHandling, about
from hotline.engine.peer import Clock, Link, PeerState, open_state, seal_state
from hotline.engine.rekeying import RekeyHandling
from hotline.engine.relaying import RelayHandling
from hotline.engine.status import terminal_status
from hotline.engine.trust import TrustHandling, item_keys, key_for, open_with
from hotline.home.config import Config
from hotline.home.forms import load_forms
from hotline.storage.base import Record, TerminalStore
from hotline.storage.integrity import ACCEPT_ACTION, acceptance, clear_damage
from hotline.storage.records import Arrival, Sealed

log = logging.getLogger("hotline.engine")

SEAL_BATCH = 256  # messages sealed per commit at most, so one flush stays short
SESSION_AD = b"hotline-session-v1\x00"
HELD_IN_DOUBT = 10_000  # link events and alarm changes kept while in doubt, journaled with the acceptance


def _level(precedence: Precedence) -> int:
    """A line per message is logged at INFO for FLASH and IMMEDIATE traffic, at DEBUG for the rest:
    a watch officer's log shows the urgent traffic, and routine bulk does not pay a line each."""
    return logging.INFO if precedence >= Precedence.IMMEDIATE else logging.DEBUG


def _size(content: MessageContent) -> int:
    """Roughly what journaling and sealing a message costs: its text and attachments, in bytes."""
    return len(content.body) + sum(len(a.data) for a in content.attachments)


@dataclass
class _Accept:
    content: MessageContent
    done: Callable[[Exception | None, bool], None]
    by: str = ""  # who sent it, when a person or token did (the API); journaled beside it


@dataclass
class _Ack:
    message_id: str
    by: str
    done: Callable[[Exception | None], None]
    kind: ReceiptKind = ReceiptKind.ACKNOWLEDGED  # or READ: a person has opened it


Listener = Callable[[dict[str, Any]], None]


class Engine(TrustHandling, RekeyHandling, RelayHandling, LinkHandling, DeskHandling):
    def __init__(
        self,
        *,
        identity: Identity,
        config: Config,
        journal: Record,
        store: TerminalStore,
        clock: Clock,
        request_flush: Callable[[], None],
        randbytes: Callable[[int], bytes] = os.urandom,
        forms: FormRegistry | None = None,
    ) -> None:
        self.identity = identity
        self.forms = forms if forms is not None else load_forms(None, config)
        self.name = identity.name
        self.config = config
        self.journal = journal
        self.store = store
        self.clock = clock
        self._request_flush = request_flush
        self.peers: dict[str, PeerState] = {}
        self._accepts: list[_Accept] = []
        self._contents: dict[str, MessageContent] = {}
        self._delivered_waiters: dict[str, list[Callable[[], None]]] = {}
        self._link_events: list[tuple[str, str, dict[str, Any]]] = []
        self._acks: list[_Ack] = []
        self._acks_in: list[tuple[str, env.Receipt]] = []
        self.listeners: list[Listener] = []
        self.request_flush = request_flush
        self.stopping = False  # set by close_all_links: links that go down now raise no alarm
        # Set when this terminal's own journal fails its check (issue 14): it then appends
        # nothing — no message is accepted, received or sealed — until a supervisor accepts the
        # damage; links stay up so the peer hears of it and nothing it sends is lost (it keeps
        # what we do not acknowledge, and sends it again).
        self.damage = ""
        self._held_link_events: list[tuple[str, str, dict[str, Any], int]] = []  # (kind, peer, detail, at_ns)
        self._held_alarms: list[AlarmChange] = []  # told to listeners already; journaled with the acceptance
        self._last_tick: float | None = None
        self._randbytes = randbytes
        self._alarm_changes: list[AlarmChange] = []  # journaled in the next commit, then emitted
        self.supervisor = Supervisor(
            SupervisionConfig(config.test_interval_s, config.test_timeout_s, dict(config.ack_deadlines_s)),
            clock.monotonic(),
            randbytes,
        )
        self.supervisor.restore(self.store.active_alarms())
        self._init_desk()
        self._init_relay()
        for message_id, peer_name, precedence, since_ns in self.store.unacknowledged():
            self.supervisor.track_ack(message_id, peer_name, precedence, since_ns)
        self.reload_peers()

    def emit(self, event: dict[str, Any]) -> None:
        """Tell listeners (the console, the alarm hook) about something now durable."""
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed on %s", event.get("event"))

    # -- peers ------------------------------------------------------------------------------

    def reload_peers(self) -> list[str]:
        """(Re)load peers from the journal; a re-paired peer gets fresh state. Returns changed names."""
        changed = []
        for row in self.store.peers():
            self._settle_key_alarms(row)
            current = self.peers.get(row.name)
            if current is not None and current.identity_key == row.identity_key:
                continue
            if current is not None:
                for link in list(current.links.values()):
                    self._close_link(link, "peer was re-paired with a new key")
            card = ContactCard.from_json(row.card_json)
            cursors = self.store.cursors(row.name)
            unacked = self.store.unacked(row.name)
            state = PeerState(
                name=row.name,
                identity_key=row.identity_key,
                card=card,
                ratchet=Ratchet.from_bytes(
                    open_state(self.identity.state_key, row.name, self.store.load_session(row.name))
                ),
                outbound=Outbound(
                    next_seq=cursors.out_next_seq,
                    acked=cursors.out_acked,
                    unacked=unacked,
                    window=self.config.window,
                ),
                inbound=Inbound(upto=cursors.in_upto, stream_hash=cursors.in_stream_hash),
                queue=OutboxQueue(),
                out_stream_hash=cursors.out_stream_hash,
                committed_in_upto=cursors.in_upto,
                last_receipt_out=cursors.last_receipt_out,
                last_contact_ns=cursors.last_contact_ns,
                selector=PathSelector([a.path for a in card.addresses], self.config.hold_down_s),
                # Still in doubt when we last stopped: the peer's next hello says whether it still is.
                doubt="in doubt before this terminal restarted"
                if self.supervisor.board.is_active("peer-record-in-doubt", row.name, "")
                else "",
                restored_at=self.store.restored_at(row.name),
                past=self.store.past_keys(row.name),
                paired_at_ns=row.paired_at_ns,
            )
            for seq in unacked:
                sh = self.store.stream_hash_at(row.name, seq)
                if sh is not None:
                    state.stream_hashes[seq] = sh
            for message_id, precedence, order in self.store.queued(row.name):
                state.queue.push(message_id, precedence, order)
            self.peers[row.name] = state
            changed.append(row.name)
        if changed:
            self._request_flush()
        return changed

    def peer_by_key(self, identity_key: bytes) -> PeerState | None:
        for peer in self.peers.values():
            if peer.identity_key == identity_key:
                return peer
        return None

    def _on_envelope(self, peer: PeerState, link: Link, seq: int, data: bytes) -> None:
        if self.damage:
            log.debug("envelope %d from %s left unopened: the journal is in doubt", seq, peer.name,
                      extra=about(peer.name, link.path))  # fmt: skip
            return  # not opened, not acknowledged: the peer keeps it and sends it again later
        if peer.restored_at is not None:
            log.debug("envelope %d from %s left unopened: re-keying after a restore", seq, peer.name)
            return  # our ratchet is older than the peer's: the new stream brings it again
        verdict = peer.inbound.classify(seq)
        if verdict is Verdict.DUPLICATE:
            # A replay or a resend: dropped before any key is touched; remind the
            # sender where we stand once the journal is caught up.
            log.debug("dropping duplicate envelope %d from %s", seq, peer.name, extra=about(peer.name, link.path))
            peer.resend_receipt_on.add(link)
            self._request_flush()
            return
        if verdict is Verdict.GAP:
            log.info("gap from %s: got %d, expected %d", peer.name, seq, peer.inbound.upto + 1,
                     extra=about(peer.name, link.path))  # fmt: skip
            if peer.inbound.should_request_resume():
                link.conn.send_resume(peer.committed_in_upto if not peer.pending_in else peer.inbound.upto)
            return
        self._refuse_if_revoked(peer)
        key = key_for(peer, seq)  # the old key for what it sealed before its succession
        try:
            sealed = env.open_envelope(data, key, peer.seals)  # signature first (DESIGN)
        except SignatureError:
            if self._refuse_stale(peer, f"envelope {seq}", lambda k: env.open_envelope(data, k)):
                raise SignatureError(f"envelope {seq} is signed by a stale key of {peer.name}") from None
            raise
        if sealed.sender != peer.name or sealed.recipient != self.name or sealed.seq != seq:
            raise RemoteProtocolError(
                f"envelope {seq} is addressed {sealed.sender}->{sealed.recipient} seq {sealed.seq}; "
                f"expected {peer.name}->{self.name} seq {seq}"
            )
        content = env.decrypt(sealed, peer.ratchet)  # the ratchet changes only on success
        if content.id in self._contents or self.store.has_message(content.id):
            if not self._resent(peer, content):
                raise RemoteProtocolError(f"envelope {seq} reuses message id {content.id}")
            # Sent again after a re-key (the peer could not know we held it): it takes its place in
            # the stream, and is not delivered twice.
            log.info("message %s from %s is already journaled; not delivered twice", content.id, peer.name)
            peer.pending_in.append(Arrival(content, seq, data, peer.inbound.accept(seq, data), duplicate=True))
            peer.ratchet_dirty = True
            self._request_flush()
            return
        if content.kind is MessageKind.RECEIPT:
            self._check_receipt_item(peer, content, item_keys(peer, key))
        elif content.kind is MessageKind.RECORD:
            self._check_record_item(peer, content, item_keys(peer, key))
        self._contents[content.id] = content
        peer.pending_in.append(Arrival(content, seq, data, peer.inbound.accept(seq, data)))
        if content.precedence > Precedence.ROUTINE:
            # Journal it and send its receipt before opening what follows it in the stream: a FLASH
            # must not wait for the routine batch behind it to be opened too (issue 11).
            peer.hold_reading = True
        if link is not peer.active:
            # The sender has moved to a path we still think is standby (it noticed a failure
            # first): its receipt goes back where it spoke, not only into our dying path.
            peer.resend_receipt_on.add(link)
        peer.ratchet_dirty = True
        self._request_flush()

    def _resent(self, peer: PeerState, content: MessageContent) -> bool:
        """Is ``content`` a message this peer already sent us, the same in every field we keep?"""
        if content.id in self._contents:
            held = self._contents[content.id]
            return held.sender == peer.name and held == content
        found = self.store.incoming(content.id)
        if found is None or found["peer"] != peer.name:
            return False
        held = self.store.load_content(content.id, self.name)
        return (held.kind, held.subject, held.body, held.precedence) == (
            content.kind, content.subject, content.body, content.precedence)  # fmt: skip

    def _check_receipt_item(self, peer: PeerState, content: MessageContent, keys: list[bytes]) -> None:
        """A read/acknowledged receipt that rode the stream, signed by one of ``keys`` (``item_keys``).
        The envelope is authentic and is journaled regardless (the stream must not stall); a bad inner
        receipt is logged."""
        try:
            receipt = open_with(keys, lambda k: env.open_receipt(content.receipt, k))
        except (ProtocolError, CryptoError) as e:
            log.error("receipt item %s from %s refused: %s", content.id, peer.name, e,
                      extra=about(peer.name, message_id=content.id))  # fmt: skip
            return
        if receipt.kind is ReceiptKind.DELIVERED or receipt.sender != peer.name or receipt.recipient != self.name:
            log.error("receipt item %s from %s is not an acknowledgement addressed to us", content.id, peer.name,
                      extra=about(peer.name, message_id=content.id))  # fmt: skip
            return
        self._acks_in.append((peer.name, receipt))

    def _on_receipt(self, peer: PeerState, data: bytes) -> None:
        if self.damage or peer.restored_at is not None:
            return  # cannot be journaled now / of a stream about to end; the peer repeats it later
        self._refuse_if_revoked(peer)
        try:
            receipt = env.open_receipt(data, peer.identity_key)
        except SignatureError:
            if self._refuse_stale(peer, "a receipt", lambda k: env.open_receipt(data, k)):
                return  # one in flight when the key changed: the next one, under the new key, says as much
            raise
        if receipt.sender != peer.name or receipt.recipient != self.name:
            raise RemoteProtocolError(
                f"receipt from {receipt.sender} to {receipt.recipient} arrived on {peer.name}'s link"
            )
        if receipt.kind is not ReceiptKind.DELIVERED:
            log.info(
                "receipt %s for %s from %s (not yet handled)",
                receipt.kind,
                receipt.message_id,
                peer.name,
                extra=about(peer.name, message_id=receipt.message_id),
            )
            return
        if receipt.upto <= peer.outbound.acked:
            return
        expected = peer.stream_hashes.get(receipt.upto)
        if expected is not None and expected != receipt.stream_hash:
            raise RemoteProtocolError(
                f"receipt up to {receipt.upto} commits to different envelopes than we sent; "
                "the two journals disagree — investigate before re-pairing"
            )
        peer.outbound.on_receipt(receipt.upto, self.clock.monotonic())
        for seq in [s for s in peer.stream_hashes if s <= receipt.upto]:
            del peer.stream_hashes[seq]
        peer.pending_receipt = (receipt.upto, data)
        self._request_flush()

    # -- accepting messages -----------------------------------------------------------------

    def submit(self, content: MessageContent, done: Callable[[Exception | None, bool], None], by: str = "") -> None:
        """Queue a message for the next commit; ``done(error, created)`` runs after it."""
        if self.damage:
            done(self._refusal(), False)
            return
        if content.recipient not in self.peers:
            done(DeliveryError(f"no peer named {content.recipient!r}; see `hotline peers`"), False)
            return
        self._accepts.append(_Accept(content, done, by))
        self._request_flush()

    def acknowledge(self, message_id: str, by: str, done: Callable[[Exception | None], None]) -> None:
        """A person acknowledges an incoming message; the signed receipt goes back in the stream."""
        self._acks.append(_Ack(message_id, by, done))
        self._request_flush()

    def mark_read(self, message_id: str, by: str, done: Callable[[Exception | None], None]) -> None:
        """A person opened an incoming message: journal it once and send a signed read receipt back."""
        self._acks.append(_Ack(message_id, by, done, ReceiptKind.READ))
        self._request_flush()

    def on_delivered(self, message_id: str, callback: Callable[[], None]) -> None:
        # A message accepted in this run is held in ``_contents`` until its receipt comes: no need
        # to ask the journal (a statement per message sent with --wait).
        if message_id not in self._contents and self.store.message_state(message_id) == "delivered":
            callback()
            return
        self._delivered_waiters.setdefault(message_id, []).append(callback)

    def _wake_delivered(self) -> None:
        """The journal marked messages delivered without a receipt here (a restarted stream counts what
        the peer holds): forget their contents and answer their waiters, as a receipt would have."""
        held = [m for m in {*self._contents, *self._delivered_waiters} if self.store.message_state(m) == "delivered"]
        for message_id in held:
            self._contents.pop(message_id, None)
            for callback in self._delivered_waiters.pop(message_id, []):
                callback()

    def wake(self) -> None:
        """Another process journaled messages (``hotline send`` racing the start): pick them up."""
        for peer in self.peers.values():
            for message_id, precedence, order in self.store.queued(peer.name):
                peer.queue.push(message_id, precedence, order)
        self.reload_desk()
        self._request_flush()

    # -- the group commit -------------------------------------------------------------------

    def flush(self) -> None:
        if self.damage:
            self._flush_refused()
            return
        now_ns = self.clock.wall_ns()
        accepts, self._accepts = self._accepts, []
        self._announce_busy(sum(_size(a.content) for a in accepts))
        results: list[tuple[_Accept, Exception | None, bool]] = []
        receipts_out: dict[str, bytes] = {}
        delivered_ids: list[tuple[str, str]] = []  # (peer, message id)
        received_events: list[tuple[str, dict[str, Any]]] = []
        desk_events: list[dict[str, Any]] = []
        with self.journal.transaction():
            for kind, peer_name, detail in self._link_events:
                self.store.record_link(kind, peer_name, detail, now_ns)
            self._link_events.clear()
            accepted = self.store.accept_batch([item.content for item in accepts], now_ns) if accepts else []
            for item, outcome in zip(accepts, accepted, strict=True):
                if isinstance(outcome, DeliveryError):
                    results.append((item, outcome, False))
                    continue
                created = outcome
                results.append((item, None, created))
                if created and item.by:
                    self.store.record_operator("send", {"id": item.content.id, "by": item.by}, now_ns)
                if created and item.content.kind is MessageKind.MESSAGE:
                    self.supervisor.track_ack(
                        item.content.id, item.content.recipient, item.content.precedence.label, now_ns
                    )
                if created:
                    self._contents[item.content.id] = item.content
                    self.peers[item.content.recipient].queue.push(item.content.id, item.content.precedence)
            desk_written = self._write_desk_acts(now_ns)
            for _, carriers in desk_written:
                for carrier in carriers:
                    self._contents[carrier.id] = carrier
            ack_results = [(item, self._record_ack(item, now_ns)) for item in self._acks]
            self._acks.clear()
            acked_in = []
            for peer_name, ack_in in self._acks_in:
                if self.store.record_person_receipt(peer_name, ack_in, now_ns):
                    acked_in.append((peer_name, ack_in))
                    if ack_in.kind is ReceiptKind.ACKNOWLEDGED:
                        self.supervisor.acknowledged(ack_in.message_id, peer_name, ack_in.by, now_ns)
                        self._channel_acknowledged(ack_in.message_id, peer_name, ack_in.by, now_ns)
                else:
                    log.error("%s sent a %s receipt for message %s, which we never sent it", peer_name,
                              ack_in.kind, ack_in.message_id,
                              extra=about(peer_name, message_id=ack_in.message_id))  # fmt: skip
            self._acks_in.clear()
            for peer in self.peers.values():
                if peer.pending_in:
                    self.store.record_received_batch(peer.name, peer.pending_in, now_ns)
                    for arrival in peer.pending_in:
                        if arrival.duplicate:
                            continue
                        content, seq = arrival.content, arrival.seq
                        self._contents.pop(content.id, None)
                        if content.kind is MessageKind.RECORD:
                            desk_in = self._write_desk_in(content, now_ns)
                            if desk_in is not None:
                                desk_events.append(desk_event(desk_in, "in"))
                        if content.kind is MessageKind.MESSAGE:
                            self.supervisor.track_ack(content.id, peer.name, content.precedence.label, now_ns)
                            received_events.append(
                                (peer.name, {"id": content.id, "precedence": content.precedence.label,
                                             "subject": content.subject, "seq": seq})
                            )  # fmt: skip
                    receipt = env.make_receipt(
                        self.identity, kind=ReceiptKind.DELIVERED, sender=self.name, recipient=peer.name,
                        upto=peer.inbound.upto, stream_hash=peer.inbound.stream_hash, at_ns=now_ns,
                    )  # fmt: skip
                    self.store.record_receipt_sent(peer.name, receipt, peer.inbound.upto, now_ns)
                    receipts_out[peer.name] = receipt
                    peer.pending_in.clear()
                if peer.pending_receipt is not None:
                    upto, raw = peer.pending_receipt
                    delivered_ids += [(peer.name, m) for m in self.store.record_delivered(peer.name, raw, upto, now_ns)]
                    peer.pending_receipt = None
                    peer.last_contact_ns = now_ns
                self._seal(peer, now_ns)
                if peer.ratchet_dirty:
                    blob = seal_state(self.identity.state_key, peer.name, peer.ratchet.to_bytes(), self._randbytes(12))
                    self.store.save_session(peer.name, blob)
                    peer.ratchet_dirty = False
            self._supervise()
            alarm_events = self._write_alarm_changes()
        # Committed: now, and only now, things may leave.
        for event in alarm_events:
            self.emit(event)
        for item, error, created in results:
            item.done(error, created)
            if error is None and created:
                log.log(
                    _level(item.content.precedence),
                    "message %s to %s accepted (%s)",
                    item.content.id,
                    item.content.recipient,
                    item.content.precedence.label,
                    extra=about(item.content.recipient, message_id=item.content.id),
                )
                self.emit({"event": "accepted", "id": item.content.id, "peer": item.content.recipient})
        for desk_act, _ in desk_written:
            desk_act.done(None, desk_act.record)
            desk_events.append(desk_event(desk_act.record, "out"))
        for ack, ack_error in ack_results:
            ack.done(ack_error)
            if ack_error is None:
                log.info("message %s marked %s here by %s", ack.message_id, ack.kind, ack.by,
                         extra={"message_id": ack.message_id})  # fmt: skip
                self.emit({"event": f"{ack.kind}-here", "id": ack.message_id, "by": ack.by})
        for peer_name, ack_in in acked_in:
            log.info("message %s %s at %s by %s", ack_in.message_id, ack_in.kind, peer_name, ack_in.by,
                     extra=about(peer_name, message_id=ack_in.message_id))  # fmt: skip
            self.emit({"event": str(ack_in.kind), "id": ack_in.message_id, "peer": peer_name, "by": ack_in.by})
        for peer in self.peers.values():
            new_receipt = receipts_out.get(peer.name)
            if new_receipt is not None:
                peer.last_receipt_out = new_receipt
                peer.committed_in_upto = peer.inbound.upto
                peer.last_contact_ns = now_ns
                if peer.active is not None and peer.active.conn.state is State.OPEN:
                    peer.active.conn.send_receipt(new_receipt)
                    peer.active.pump()
            if peer.last_receipt_out is not None:
                for link in peer.resend_receipt_on:
                    already_told = new_receipt is not None and link is peer.active
                    if link.conn.state is State.OPEN and not already_told:
                        link.conn.send_receipt(peer.last_receipt_out)
                        link.pump()
            peer.resend_receipt_on.clear()
            self._transmit(peer)
        for peer_name, received in received_events:
            log.log(_level(Precedence.parse(received["precedence"])), "message %s from %s received (%s, seq %d)",
                    received["id"], peer_name, received["precedence"], received["seq"],
                    extra=about(peer_name, message_id=received["id"]))  # fmt: skip
            self.emit({"event": "received", "peer": peer_name, **received})
        for event in desk_events:
            self.emit(event)
        for peer_name, message_id in delivered_ids:
            log.debug(
                "message %s delivered to %s", message_id, peer_name, extra=about(peer_name, message_id=message_id)
            )
            self.emit({"event": "delivered", "id": message_id})
            self._contents.pop(message_id, None)
            for callback in self._delivered_waiters.pop(message_id, []):
                callback()
        for peer in self.peers.values():
            self._read_on(peer)  # what held its stream is journaled, receipted and told: open what follows
        if any(p.queue and p.outbound.room() and p.restored_at is None for p in self.peers.values()):
            self._request_flush()  # more to seal than one batch

    def _read_on(self, peer: PeerState) -> None:
        """Open what follows in the peer's stream, once the arrival that held it is settled."""
        if peer.hold_reading:
            peer.hold_reading = False
            for link in list(peer.links.values()):
                self._drain(link)

    def _record_ack(self, item: _Ack, now_ns: int) -> Exception | None:
        """Inside the flush transaction: journal the acknowledgement and queue its receipt."""
        # A channel's message is acknowledged on the carrier that brought it, by either id (``desking``).
        item.message_id = self.store.carrier_of(item.message_id) or item.message_id
        found = self.store.incoming(item.message_id)
        channel = found is not None and found["kind"] != MessageKind.MESSAGE.value
        if found is None or (channel and self._carried_message(item.message_id) is None):
            return DeliveryError(f"no received message with id {item.message_id}; see `hotline inbox`")
        if found["acknowledged_at_ns"] is not None or (item.kind is ReceiptKind.READ and found["read_at_ns"]):
            return None  # already said: nothing more to say
        peer = self.peers.get(found["peer"])
        if peer is None:
            return DeliveryError(f"message {item.message_id} came from {found['peer']!r}, which is no longer paired")
        receipt = env.make_receipt(
            self.identity, kind=item.kind, sender=self.name, recipient=peer.name, upto=found["seq"],
            stream_hash=found["stream_hash"], at_ns=now_ns, message_id=item.message_id, by=item.by,
        )  # fmt: skip
        carrier = MessageContent(
            id=uuid7(now_ns // 1_000_000, self._randbytes(10)), sender=self.name, recipient=peer.name,
            precedence=found["precedence"], lang="zxx", subject="", body="", created_at_ns=now_ns,
            kind=MessageKind.RECEIPT, receipt=receipt,
        )  # fmt: skip
        if item.kind is ReceiptKind.READ:
            self.store.record_read_here(item.message_id, item.by, now_ns)
        else:
            self.store.record_acknowledged_here(item.message_id, item.by, now_ns)
            self.supervisor.acknowledged(item.message_id, peer.name, item.by, now_ns)
        self.store.accept(carrier, now_ns)
        self._contents[carrier.id] = carrier
        peer.queue.push(carrier.id, carrier.precedence)
        return None

    def _seal(self, peer: PeerState, now_ns: int) -> None:
        """Seal what the window allows as one batch: encrypt each message in queue order, then sign
        the batch once (a Merkle root over the envelopes, ``envelope.seal_batch``), then journal each
        envelope with its proof. One message alone is a batch of one."""
        if peer.restored_at is not None:
            return  # never with a restored ratchet: the re-key comes first (``rekeying``)
        budget = min(peer.outbound.room(), SEAL_BATCH)
        batch: list[tuple[str, int, bytes]] = []
        precedence = peer.queue.peek()
        # One precedence per batch: a FLASH is sealed, journaled and sent without waiting for the
        # routine messages queued behind it to be encrypted in the same batch (the next flush has them).
        while len(batch) < budget and precedence is not None and peer.queue.peek() == precedence:
            message_id = peer.queue.pop()
            if message_id is None:
                break
            content = self._contents.get(message_id) or self.store.load_content(message_id, self.name)
            self._announce_busy(_size(content))  # one held back by a full window is sealed only now
            seq = peer.outbound.next_seq + len(batch)
            batch.append((message_id, seq, env.encrypt_body(peer.ratchet, content, seq)))
        if not batch:
            return
        peer.ratchet_dirty = True
        sealed_batch = env.seal_batch(self.identity, self.name, peer.name, [body for _, _, body in batch])
        rows = []
        for (message_id, seq, _), sealed in zip(batch, sealed_batch, strict=True):
            peer.out_stream_hash = next_stream_hash(peer.out_stream_hash, sealed)
            rows.append(Sealed(message_id, seq, sealed, peer.out_stream_hash))
            peer.outbound.sealed(seq, sealed)
            peer.stream_hashes[seq] = peer.out_stream_hash
        self.store.record_sealed_batch(peer.name, rows, now_ns)

    # -- time -------------------------------------------------------------------------------

    def tick(self) -> None:
        now = self.clock.monotonic()
        if self._last_tick is not None and now - self._last_tick > 2 * self.config.heartbeat_ms / 1000:
            # This terminal was itself held up (a large message, a slow disk): whatever the peers
            # sent meanwhile is still unread in the sockets, so their silence proves nothing yet.
            log.info("this terminal was busy for %.0f ms; peers' silence in that time is not held against them",
                     (now - self._last_tick) * 1000)  # fmt: skip
            for peer in self.peers.values():
                for link in peer.links.values():
                    link.conn.excuse_silence(now)
        self._last_tick = now
        for peer in self.peers.values():
            for link in list(peer.links.values()):
                if link.handover_until is not None and now >= link.handover_until:
                    link.handover_until = None
                    self._link_gone(link, "the peer moved this path to a newer connection, which never came up")
                    continue
                link.conn.handle_timer(now)
                self._drain(link)
            self._apply_switch(peer, peer.selector.evaluate(now))  # failback after the hold-down
            if peer.active is not None and peer.active.conn.state is State.OPEN and peer.restored_at is None:
                for seq, data in peer.outbound.handle_timer(now):
                    peer.active.conn.send_envelope(seq, data)
                peer.active.pump()
        self._relay_tick(now)
        now_ns = self.clock.wall_ns()
        self._desk_alarms(now_ns)
        self.supervisor.tick(now, now_ns, self._path_views())
        for message_id, peer_name in self.supervisor.acks_due(now, now_ns):
            if peer_name.startswith("#"):  # one of this terminal's messages to a channel (``desking``)
                self._channel_ack_due(message_id, peer_name, now_ns)
                continue
            waiting = self.store.awaiting_ack(message_id)
            if waiting is not None:
                direction, subject = waiting
                self.supervisor.ack_overdue(message_id, peer_name, outgoing=direction == "out", subject=subject,
                                            now_ns=now_ns)  # fmt: skip
        self._supervise()

    # -- the journal's own integrity (issue 14) ---------------------------------------------

    def _refusal(self) -> JournalCorrupt:
        return JournalCorrupt(
            f"this terminal's journal failed its integrity check ({self.damage}); it appends nothing until a "
            "supervisor accepts the damage with `hotline journal accept-damage --reason ...` or restores a backup"
        )

    def journal_damaged(self, damage: str, entry: int) -> None:
        """The journal failed its check: stop appending, raise the alarm, tell every peer."""
        if self.damage == damage:
            return
        log.critical("JOURNAL ALTERED: %s; appending stops until a supervisor accepts the damage", damage)
        self.damage = damage
        self.supervisor.raise_alarm("journal-altered", "", str(entry), damage, self.clock.wall_ns())
        self._supervise()
        self._tell_peers(damage)

    def damage_accepted(self, found: dict[int, bytes], reason: str, by: str) -> None:
        """A supervisor has looked at the damage and accepts it: journal that, then carry on.

        ``found`` holds each damaged entry's digest as found (``integrity.entries_as_found``); the
        acceptance is signed with this terminal's key, so nobody without it can accept damage. What
        happened while in doubt (link events, alarm changes) is journaled in the same commit, before
        it. Only once that commit has succeeded is the doubt over."""
        now_ns = self.clock.wall_ns()
        damage = self.damage
        body = acceptance(self.identity, found, damage, reason, by)
        with self.journal.transaction():
            for kind, peer_name, detail, at_ns in self._held_link_events:
                self.store.record_link(kind, peer_name, detail, at_ns)
            for change in self._held_alarms:
                self.store.record_alarm(change)
            self.store.record_operator(ACCEPT_ACTION, body, now_ns)
            clear_damage(self.journal)
        self.damage = ""
        self._held_link_events, self._held_alarms = [], []
        log.warning("journal damage accepted by %s (%s): %s", by, reason, damage)
        for alarm in self.supervisor.board.listing():
            if alarm["kind"] == "journal-altered":
                self.supervisor.clear_alarm("journal-altered", "", str(alarm["subject"]), f"accepted by {by}: {reason}",
                                            now_ns)  # fmt: skip
        self._supervise()
        self._tell_peers("")
        for peer in self.peers.values():
            # What the peer sent while we were in doubt was dropped unacknowledged: ask for all of it
            # now, rather than wait for its probe to bring it back one envelope at a time.
            if peer.active is not None and peer.active.conn.state is State.OPEN:
                peer.active.conn.send_resume(peer.inbound.upto if peer.pending_in else peer.committed_in_upto)
                peer.active.pump()
        self.wake()

    def _tell_peers(self, doubt: str) -> None:
        for peer in self.peers.values():
            for link in peer.links.values():
                if link.conn.state is not State.CLOSED:
                    link.conn.send_doubt(doubt)
                    link.pump()

    def _peer_doubt(self, peer: PeerState, text: str) -> None:
        """What the peer says of its own journal, on each hello and when it changes."""
        if text == peer.doubt:
            return
        peer.doubt = text
        now_ns = self.clock.wall_ns()
        self._link_events.append(("link.doubt", peer.name, {"in_doubt": bool(text), "text": text}))
        self._request_flush()
        if text:
            log.error("%s says its journal failed its check: %s", peer.name, text, extra=about(peer.name))
            self.supervisor.raise_alarm("peer-record-in-doubt", peer.name, "",
                                        f"{peer.name} says its own journal was altered: {text}", now_ns)  # fmt: skip
        else:
            self.supervisor.clear_alarm("peer-record-in-doubt", peer.name, "",
                                        "its journal's damage was accepted there", now_ns)  # fmt: skip
        self._supervise()

    def _flush_refused(self) -> None:
        """The journal is in doubt: nothing is written. Waiting callers hear why; listeners still
        hear of alarms (the console and the alarm command are how a person finds out)."""
        error = self._refusal()
        accepts, self._accepts = self._accepts, []
        acks, self._acks = self._acks, []
        desk_acts, self._desk_acts = self._desk_acts, []
        # ``_acks_in`` and ``pending_in`` are kept: they arrived before the doubt and are journaled
        # after it (a peer's acknowledgement is not asked for again once its envelope is received).
        # Links read on meanwhile (no envelope is opened while in doubt, but tests and doubts are heard).
        for peer in self.peers.values():
            self._read_on(peer)
        now_ns = self.clock.wall_ns()
        self._held_link_events += [(kind, peer, detail, now_ns) for kind, peer, detail in self._link_events]
        self._link_events.clear()
        events = [self._alarm_event(change) for change in self._alarm_changes]
        self._held_alarms += self._alarm_changes
        self._alarm_changes.clear()
        if max(len(self._held_link_events), len(self._held_alarms)) > HELD_IN_DOUBT:  # a cap, as on every buffer
            log.error("a long doubt: only the first %d link events and alarm changes of it will be journaled",
                      HELD_IN_DOUBT)  # fmt: skip
            del self._held_link_events[HELD_IN_DOUBT:], self._held_alarms[HELD_IN_DOUBT:]
        for event in events:
            self.emit(event)
        for item in accepts:
            item.done(error, False)
        for ack in acks:
            ack.done(error)
        for desk_act in desk_acts:
            desk_act.done(error, None)
        if desk_acts:
            self._reload_register()  # forget the acts taken into the register before the refusal

    # -- supervision: the line proves itself -------------------------------------------------

    def _path_views(self) -> list[PathView]:
        """Every path to every peer, as the supervisor needs to see it."""
        views = []
        for peer in self.peers.values():
            for health in peer.selector.paths.values():
                if is_relay_path(health.name):
                    continue  # tested end to end by its heartbeats; its carrier's paths are tested
                link = peer.links.get(health.name)
                if link is not None and (
                    link.handover_until is not None
                    or (link.hello_cursor is None and link.conn.state is not State.CLOSED)
                ):
                    readiness = Readiness.CONNECTING  # a fresh connection, or one replacing another
                elif link is None or link.hello_cursor is None or link.conn.state is not State.OPEN:
                    readiness = Readiness.DOWN
                else:
                    readiness = Readiness.OPEN
                views.append(PathView(peer.name, health.name, health.up, readiness))
        return views

    def _supervise(self) -> None:
        """Carry out what the supervisor decided: test frames leave now; results and alarm
        changes are journaled in the next commit (alarms are told to listeners after it)."""
        for action in self.supervisor.take_actions():
            if isinstance(action, SendTest):
                link = self.peers[action.peer].links[action.path]
                link.conn.send_test(action.test_id, action.text)
                link.pump()
                continue
            if isinstance(action, PathTested):
                peer = self.peers.get(action.peer)
                if peer is not None:
                    peer.selector.ensure(action.path).last_test = action.as_dict()
                self._link_events.append(("link.test", action.peer, {"path": action.path, **action.as_dict()}))
            else:
                self._alarm_changes.append(action)
            self._request_flush()

    def _write_alarm_changes(self) -> list[dict[str, Any]]:
        """Inside the commit: journal the alarm changes; return the events to emit once committed."""
        events: list[dict[str, Any]] = []
        for change in self._alarm_changes:
            self.store.record_alarm(change)
            events.append(self._alarm_event(change))
        self._alarm_changes.clear()
        return events

    @staticmethod
    def _alarm_event(change: AlarmChange) -> dict[str, Any]:
        return {"event": "alarm", "state": "raised" if change.raised else "cleared", "reason": change.reason,
                "at_ns": change.at_ns, **change.alarm.as_dict()}  # fmt: skip

    # -- alarms and the record, for the layers above (web, control) ------------------------

    def raise_alarm(self, kind: str, peer: str, subject: str, detail: str) -> None:
        """Raise an alarm (journaled and emitted in the next commit); once per condition."""
        self.supervisor.raise_alarm(kind, peer, subject, detail, self.clock.wall_ns())
        self._supervise()

    def clear_alarm(self, kind: str, peer: str, subject: str, reason: str) -> None:
        self.supervisor.clear_alarm(kind, peer, subject, reason, self.clock.wall_ns())
        self._supervise()

    def alarms(self) -> list[dict[str, Any]]:
        """The alarms now active, oldest first."""
        return self.supervisor.board.listing()

    # -- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return terminal_status(self.name, self.peers.values(), self.supervisor.board.listing(), self.clock.monotonic())
