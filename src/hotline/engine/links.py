"""Links and paths: connections coming and going, handovers, failover, and the frames they carry.

``LinkHandling`` is the engine's half that deals with connections (the engine
inherits it): a TLS connection to a paired peer becomes a ``Link`` on one path;
both sides dialling at once keep the connection the smaller identity key opened;
a newer connection on the same path is a *handover* (no outage, no alarm); a
connection that goes away marks its path down and lets the ``PathSelector``
move traffic, which resumes from what the peer says it holds (``hello``). The
frames a link delivers are dispatched here; what they mean for the record
(envelopes, receipts) is the engine's (``_on_envelope``, ``_on_receipt``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from hotline.core.errors import CryptoError, ProtocolError, RemoteProtocolError
from hotline.core.paths import Switch
from hotline.core.protocol import (
    LARGE_FRAME_BYTES,
    Connection,
    ConnectionClosed,
    EnvelopeReceived,
    HelloReceived,
    LargeFrameReceived,
    ReceiptReceived,
    RecordInDoubt,
    RekeyReceived,
    RelayedReceived,
    RelayRefused,
    RelayRequested,
    ResumeRequested,
    RevocationReceived,
    RttMeasured,
    State,
    SuccessionReceived,
    TestAnswered,
    grace_for,
)
from hotline.core.supervision import Supervisor
from hotline.core.times import rfc3339
from hotline.crypto.identity import Identity, fingerprint
from hotline.engine.peer import Clock, Link, LinkIO, PeerState
from hotline.home.config import Config

log = logging.getLogger("hotline.engine")


def about(peer: str, path: object = None, message_id: str | None = None) -> dict[str, str]:
    """What a log line concerns, for ``extra=``: the JSON log format (``hotline run --log-format json``)
    gives each as a field of its own (``peer``, ``path``, ``message_id``); the text format ignores them."""
    found = {"peer": peer}
    if isinstance(path, str) and path:
        found["path"] = path
    if message_id:
        found["message_id"] = message_id
    return found


def changed_key_reason(name: str, address: str, presented: bytes, pinned: bytes, paired_at_ns: int) -> str:
    """Why a peer that presented another key than the pinned one (and no succession from it) is refused."""
    paired_on = rfc3339(paired_at_ns)[:10]
    return (f"peer {name!r} at {address} presented identity key {fingerprint(presented)}, not the key "
            f"{fingerprint(pinned)} paired on {paired_on}; verify the safety number with its operator, then "
            "re-pair with `hotline pair`")  # fmt: skip


class LinkHandling(ABC):
    """Connections and paths; the engine supplies the record-keeping half."""

    name: str
    identity: Identity
    config: Config
    clock: Clock
    peers: dict[str, PeerState]
    supervisor: Supervisor
    stopping: bool
    damage: str  # this terminal's journal failed its check: how ("" while it is sound)
    _request_flush: Callable[[], None]
    _link_events: list[tuple[str, str, dict[str, Any]]]

    @abstractmethod
    def _on_envelope(self, peer: PeerState, link: Link, seq: int, data: bytes) -> None: ...

    @abstractmethod
    def _on_receipt(self, peer: PeerState, data: bytes) -> None: ...

    @abstractmethod
    def _supervise(self) -> None: ...

    @abstractmethod
    def _peer_doubt(self, peer: PeerState, text: str) -> None: ...

    @abstractmethod
    def _offer_rekey(self, peer: PeerState, link: Link) -> None: ...

    @abstractmethod
    def _on_rekey(self, peer: PeerState, link: Link, data: bytes) -> None: ...

    @abstractmethod
    def _relay_event(self, link: Link, event: RelayRequested | RelayedReceived | RelayRefused) -> None: ...

    @abstractmethod
    def _relay_refused_here(self, link: Link, reason: str) -> None: ...

    @abstractmethod
    def _on_succession(self, peer: PeerState, link: Link, data: bytes, upto: int) -> None: ...

    @abstractmethod
    def _on_revocation(self, peer: PeerState, link: Link, data: bytes) -> None: ...

    @abstractmethod
    def _send_statements(self, peer: PeerState, link: Link) -> None: ...

    def refuse(self, peer_name: str, reason: str, detail: dict[str, Any]) -> None:
        """A link attempt to a known peer was refused (wrong key, TLS failure). Journal once per reason."""
        peer = self.peers.get(peer_name)
        if peer is None:
            return
        if peer.refused != reason:
            log.error("refused link to %s: %s", peer_name, reason, extra=about(peer_name, detail.get("path")))
            self._link_events.append(("link.refused", peer_name, {"reason": reason, **detail}))
            self._request_flush()
        peer.refused = reason
        if detail.get("presented"):
            self.supervisor.raise_alarm("peer-key-changed", peer_name, "", reason, self.clock.wall_ns())
            self._supervise()

    # -- links ------------------------------------------------------------------------------

    def link_established(
        self,
        peer_name: str,
        io: LinkIO,
        *,
        dialed: bool,
        address: str,
        path: str = "primary",
        presented: bytes | None = None,
    ) -> Link | None:
        """A TLS connection whose certificate matches ``peer_name``'s pinned key is up on ``path``; or,
        with ``presented``, one we dialled that presented another key: provisional until a succession
        from the pinned key names it (``trust``), and nothing is sent on it until then."""
        peer = self.peers[peer_name]
        we_are_smaller = self.identity.public_key < peer.identity_key
        link = Link(
            peer=peer_name,
            io=io,
            conn=self._connection(peer_name),
            dialed=dialed,
            preferred=(dialed == we_are_smaller),
            address=address,
            path=path,
            presented=presented,
        )
        if presented is not None:
            log.warning("path %s to %s: it presents key %s, not the pinned %s; waiting for a succession "
                        "signed by the pinned key", path, peer_name, fingerprint(presented),
                        fingerprint(peer.identity_key), extra=about(peer_name, path))  # fmt: skip
            return link
        return self._register(peer, link)

    def _provisional_accepted(self, peer: PeerState, link: Link) -> None:
        """A succession from the pinned key named the key this provisional link presented."""
        link.presented = None
        if link.conn.state is not State.CLOSED:
            self._register(peer, link)

    def _register(self, peer: PeerState, link: Link) -> Link | None:
        """The link's key is the pinned one: it takes its path, and we say hello."""
        peer_name, path, io = peer.name, link.path, link.io
        current = peer.links.get(path)
        if current is not None and current.conn.state is not State.CLOSED and current.preferred and not link.preferred:
            # Both sides dialled this path at once: keep the connection the smaller key
            # opened, so both ends settle on the same one.
            link.conn.close("duplicate connection on this path; keeping the existing one")
            link.pump()
            io.close()
            return None
        if current is not None:
            # A handover, not an outage: no link.down, no alarm, no failover.
            link.inherits_up = current.hello_cursor is not None or current.inherits_up
            del peer.links[path]
            peer.resend_receipt_on.discard(current)
            if current.conn.state is not State.CLOSED:
                current.conn.close("superseded by a newer connection on the same path", handover=True)
                current.pump()
            current.io.close()
            log.info("path %s to %s: a newer connection replaces the current one", path, peer_name,
                     extra=about(peer_name, path))  # fmt: skip
        peer.refused = None
        self.supervisor.clear_alarm("peer-key-changed", peer_name, "", "the pinned key was presented",
                                    self.clock.wall_ns())  # fmt: skip
        self._supervise()
        peer.links[path] = link
        self._hello(peer, link)
        return link

    def _connection(self, peer_name: str) -> Connection:
        return Connection(local_name=self.name, peer_name=peer_name, now=self.clock.monotonic(),
                          heartbeat_interval=self.config.heartbeat_ms / 1000,
                          missed_limit=self.config.missed_heartbeats)  # fmt: skip

    def _hello(self, peer: PeerState, link: Link) -> None:
        """The first frames on a new connection, direct or relayed: our key changes the peer may not
        know of (``trust``), then what we hold of the peer's stream."""
        self._send_statements(peer, link)
        if peer.restored_at is None:
            link.conn.send_hello(peer.committed_in_upto, peer.last_receipt_out, self.damage)
        else:  # restored: we hold nothing of whatever stream the peer is in now (``rekeying``)
            link.conn.send_hello(0, None, self.damage)
        link.pump()

    def close_all_links(self, reason: str) -> None:
        """The terminal is stopping: close every link and journal each going down (in the next
        flush). A deliberate stop raises no alarm and moves no traffic; the peer raises its own."""
        self.stopping = True
        for peer in self.peers.values():
            for link in list(peer.links.values()):
                self._close_link(link, reason)

    def _close_link(self, link: Link, reason: str) -> None:
        link.handover_until = None  # closed on purpose: no newer connection is awaited
        if link.conn.state is not State.CLOSED:
            link.conn.close(reason)
            link.pump()
        link.io.close()
        self._link_gone(link, reason)

    def _link_gone(self, link: Link, reason: str, *, silent: bool = False) -> None:
        peer = self.peers.get(link.peer)
        if peer is None or peer.links.get(link.path) is not link:
            return
        if link.handover_until is not None and self.clock.monotonic() < link.handover_until and not self.stopping:
            return  # its transport closing is expected: the newer connection decides (see tick)
        del peer.links[link.path]
        peer.resend_receipt_on.discard(link)
        if link.hello_cursor is None and not link.inherits_up:
            return  # never came up: nothing to report
        now = self.clock.monotonic()
        peer.last_error = reason
        log.warning("path %s to %s down: %s", link.path, link.peer, reason, extra=about(link.peer, link.path))
        self._link_events.append(
            ("link.down", link.peer, {"path": link.path, "address": link.address, "reason": reason})
        )
        self._request_flush()
        if self.stopping:
            return
        health = peer.selector.ensure(link.path)
        health.downs += 1
        if silent:
            health.heartbeat_misses += 1
        if link.via is None:  # a relayed path is a stand-in, not a circuit: no path alarm of its own
            self.supervisor.path_down(peer.name, link.path, reason, self.clock.wall_ns())
        self._apply_switch(peer, peer.selector.mark_down(link.path, now))
        if link.via is not None:
            del peer.selector.paths[link.path]  # opened again, if ever, as a new path
        self._supervise()

    def _apply_switch(self, peer: PeerState, switch: Switch | None) -> None:
        """Move our transmissions to the path the selector chose; resend what lacks a receipt."""
        if switch is None:
            return
        peer.link_since_ns = self.clock.wall_ns()
        detail = {"from": switch.old, "to": switch.new, "reason": switch.reason}
        if switch.new is None:
            peer.active = None
            peer.outbound.link_down()
            log.error("all paths to %s are down", peer.name, extra=about(peer.name))
            self.supervisor.all_paths(peer.name, up=False, now_ns=self.clock.wall_ns())
        else:
            self._activate(peer, peer.links[switch.new])
            if switch.reason == "failover":
                peer.failovers += 1
            log.info("traffic to %s now on path %s (%s)", peer.name, switch.new, switch.reason,
                     extra=about(peer.name, switch.new))  # fmt: skip
            self.supervisor.all_paths(peer.name, up=True, now_ns=self.clock.wall_ns())
        self._link_events.append(("link.switch", peer.name, detail))
        self._request_flush()
        self._transmit(peer)

    def _activate(self, peer: PeerState, link: Link) -> None:
        """Send on ``link`` from now on. Resume from what the peer is known to hold; anything
        in flight on the old connection is sent again and dropped there if it had arrived."""
        peer.active = link
        peer.outbound.link_down()
        peer.outbound.link_up(link.hello_cursor or 0, self.clock.monotonic())
        peer.inbound.link_up()

    def connection_lost(self, link: Link, reason: str) -> None:
        """The transport is gone (reset, EOF, error)."""
        if link.conn.state is not State.CLOSED:
            link.conn.transport_lost(reason)
            if link.hello_cursor is None and not link.inherits_up and not self.stopping:
                # No bye, no error, no hello: nothing else would say why this connection came to
                # nothing (a peer that refused us after TLS, or died mid-start).
                log.warning(
                    "path %s to %s at %s closed before its hello: %s",
                    link.path,
                    link.peer,
                    link.address,
                    reason,
                    extra=about(link.peer, link.path),
                )
        self._link_gone(link, reason)

    def data_received(self, link: Link, data: bytes) -> None:
        now = self.clock.monotonic()
        link.conn.receive_data(data, now)
        peer = self.peers.get(link.peer)
        if peer is not None and link.hello_cursor is not None:
            peer.selector.ensure(link.path).last_heartbeat = now
        self._drain(link)

    def _drain(self, link: Link) -> None:
        """Handle every event the connection has produced; write what it wants to send."""
        peer = self.peers.get(link.peer)
        while not (peer is not None and peer.hold_reading) and (event := link.conn.next_event()) is not None:
            if peer is None:
                break
            try:
                if isinstance(event, EnvelopeReceived):
                    self._on_envelope(peer, link, event.seq, event.data)
                elif isinstance(event, ReceiptReceived):
                    self._on_receipt(peer, event.data)
                elif isinstance(event, HelloReceived):
                    self._on_hello(peer, link, event)
                elif isinstance(event, ResumeRequested):
                    if peer.restored_at is None:
                        peer.outbound.on_resume(event.cursor)
                        self._transmit(peer)
                elif isinstance(event, RekeyReceived):
                    self._on_rekey(peer, link, event.data)
                elif isinstance(event, SuccessionReceived):
                    self._on_succession(peer, link, event.data, event.upto)
                    if link.presented is not None and link.presented == peer.identity_key:
                        self._provisional_accepted(peer, link)
                elif isinstance(event, RevocationReceived):
                    self._on_revocation(peer, link, event.data)
                elif isinstance(event, RttMeasured):
                    peer.selector.ensure(link.path).add_rtt(self.clock.monotonic(), event.rtt)
                elif isinstance(event, LargeFrameReceived):
                    self._announce_busy(event.size)
                elif isinstance(event, RecordInDoubt):
                    if link.via is None:  # unsigned: over a relay, the member carrying it could forge it
                        self._peer_doubt(peer, event.text)
                elif isinstance(event, RelayRequested | RelayedReceived | RelayRefused):
                    self._relay_event(link, event)
                elif isinstance(event, TestAnswered):
                    self.supervisor.test_answered(
                        peer.name, link.path, event.id, event.text, self.clock.monotonic(), self.clock.wall_ns()
                    )
                elif isinstance(event, ConnectionClosed):
                    if link.presented is not None:
                        # Not a refusal by itself: the peer may have closed a duplicate connection
                        # before its succession; a hello without one is the refusal (``_on_hello``).
                        log.info("provisional path %s to %s closed before any succession: %s", link.path,
                                 link.peer, event.reason, extra=about(link.peer, link.path))  # fmt: skip
                    link.pump()
                    link.io.close()
                    was_up = link.hello_cursor is not None or link.inherits_up
                    if event.handover and was_up and peer.links.get(link.path) is link and not self.stopping:
                        grace = self.config.heartbeat_ms / 1000 * self.config.missed_heartbeats
                        link.handover_until = self.clock.monotonic() + grace
                        log.info("path %s to %s: the peer moved it to a newer connection; waiting for it",
                                 link.path, link.peer, extra=about(link.peer, link.path))  # fmt: skip
                        return
                    (log.warning if event.by_peer else log.info)("link to %s closed: %s", link.peer, event.reason,
                                                                 extra=about(link.peer, link.path))  # fmt: skip
                    self._link_gone(link, event.reason, silent=event.silent)
                    return
            except (ProtocolError, CryptoError) as e:
                # The peer sent something we refuse: close this connection with the
                # reason; nothing of it reached the journal.
                log.error("refusing input from %s: %s", link.peer, e, extra=about(link.peer, link.path))
                if link.via is not None:
                    self._relay_refused_here(link, str(e))
                self._close_link(link, f"refused: {e}")
                return
        link.pump()

    def _unproven(self, peer: PeerState, link: Link) -> None:
        """A provisional link said hello without a succession for the key it presented: a changed key."""
        presented = link.presented or b""
        reason = changed_key_reason(peer.name, link.address, presented, peer.identity_key, peer.paired_at_ns)
        self.refuse(peer.name, reason, {"path": link.path, "address": link.address, "presented": presented})

    def _on_hello(self, peer: PeerState, link: Link, hello: HelloReceived) -> None:
        if link.presented is not None:
            self._unproven(peer, link)
            raise RemoteProtocolError(f"{peer.name} presented an unknown key and no succession from the pinned one")
        if peer.revoked:
            raise RemoteProtocolError(f"{peer.name}'s key {fingerprint(peer.identity_key)} is revoked; pair its "
                                      "new card (`hotline pair FILE`) and verify the safety number aloud")  # fmt: skip
        # Everything the hello claims is checked before the link counts as up, so a
        # refused hello leaves a refusal in the record, never a false link.up.
        restored = peer.restored_at is not None
        try:
            if restored:
                pass  # the peer's cursor and receipt are of a stream we no longer fully hold: re-key first
            elif hello.cursor >= peer.outbound.next_seq:
                raise RemoteProtocolError(
                    f"peer claims to have sequence {hello.cursor} but only {peer.outbound.next_seq - 1} "
                    "were ever sent; its journal belongs to another pairing"
                )
            if hello.receipt is not None and not restored:
                self._on_receipt(peer, hello.receipt)
        except (ProtocolError, CryptoError) as e:
            self.refuse(peer.name, str(e), {"path": link.path, "address": link.address})
            raise
        link.hello_cursor = 0 if restored else hello.cursor
        peer.last_error = None
        if link.via is None:  # unsigned: over a relay, the member carrying it could forge it
            self._peer_doubt(peer, hello.doubt)
        log.info("path %s to %s up via %s (peer holds ours up to %d)", link.path, peer.name, link.address, hello.cursor,
                 extra=about(peer.name, link.path))  # fmt: skip
        self._link_events.append(
            ("link.up", peer.name, {"path": link.path, "address": link.address, "dialed": link.dialed,
                                    "peer_cursor": hello.cursor})
        )  # fmt: skip
        self._request_flush()
        if link.via is None:
            self.supervisor.path_up(peer.name, link.path, self.clock.wall_ns())
        switch = peer.selector.mark_up(link.path, self.clock.monotonic())
        if switch is None and peer.active is not None and peer.active.path == link.path and peer.active is not link:
            self._activate(peer, link)  # the handover on the active path: resume on the new connection
            self._transmit(peer)
        self._apply_switch(peer, switch)
        if peer.restored_at is not None:
            self._offer_rekey(peer, link)

    def _transmit(self, peer: PeerState) -> None:
        link = peer.active
        if link is None or link.conn.state is not State.OPEN or peer.restored_at is not None:
            return
        for seq, data in peer.outbound.to_transmit():
            link.conn.send_envelope(seq, data)
        link.pump()

    def _announce_busy(self, size: int) -> None:
        """About to journal, seal or open ``size`` bytes at once, which holds this whole terminal up
        for a while: every peer hears it first, on every path, so no healthy path is called dead."""
        if size <= LARGE_FRAME_BYTES:
            return
        for peer in self.peers.values():
            for link in peer.links.values():
                link.conn.announce_busy(grace_for(size))
                link.pump()
