"""Relay in the engine: a pair's link carried through a third member when their own paths are cut.

``RelayHandling`` is the engine's half that deals with relayed links (the engine inherits it).
The policy is ``core.relay``'s; the channels that allow it are ``desk.channels.relay_vias``.

A relayed link is an ordinary ``Link`` whose transport is another link: its ``Connection`` is the
same state machine as on a direct path (hello, envelopes, receipts, resume, pings), and what it
writes goes, cut at frame boundaries, into ``relay`` frames to the member carrying it (``RelayIO``).
So the whole pairwise stream moves to the relayed path — one sequence per pair, with its
exactly-once rules untouched — and comes back to a direct path by the ordinary failback.

Three roles, one terminal may play all at once:

* ends A and C (``_relay_tick``): no direct path up for ``RELAY_DELAY_S``, a live link to a member B
  that a shared channel allows: the end with the smaller name opens ``relay:B``, a session with a
  fresh id, and says hello through it; the other answers (``_on_relayed``). Both then send over it;
* relay B (``_forward``): pass A's frames to C as they are, if B has a live link to C and a channel
  all three joined allows relay; B holds no A-C key, so it reads and alters nothing (an altered
  envelope fails A's signature at C). B counts what it carries and journals none of it;
* recipient C (``_on_relayed``): feed the frames to its ``relay:B`` link to A (opened on the first
  one), where A's signature is checked against A's pinned key and duplicates are dropped by
  sequence, exactly as on a direct path. A frame that fails its check closes that relayed link and
  is reported to B (``relay-bad``), whose operator sees a ``relay-refused`` alarm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hotline.core.errors import RemoteProtocolError
from hotline.core.protocol import (
    MAX_RELAY_BYTES,
    Connection,
    RelayedReceived,
    RelayRefused,
    RelayRequested,
)
from hotline.core.relay import (
    RETRY_AFTER_S,
    choose_via,
    forward_problem,
    opens_relay,
    relay_path,
    split_frames,
    starts_afresh,
    take_relayed,
)
from hotline.core.supervision import Supervisor
from hotline.desk.channels import relay_vias
from hotline.desk.register import Register
from hotline.engine.links import about
from hotline.engine.peer import Clock, Link, PeerState

log = logging.getLogger("hotline.engine")

RELAY_DELAY_S = 1.5  # no direct path for this long before relaying: a start-up's dials come first
RELAY_ALARM_HOLD_S = 600.0  # a relay-refused alarm clears after this long without another report


class RelayIO:
    """The transport of a relayed link: what its connection writes leaves through ``via``."""

    def __init__(self, send: Callable[[str, str, int, bytes], None], via: str, to: str, session: int) -> None:
        self._send = send
        self.via = via
        self.to = to
        self.session = session
        self.closed = False

    def write(self, data: bytes) -> None:
        if not self.closed:
            self._send(self.via, self.to, self.session, data)

    def close(self) -> None:
        self.closed = True


class RelayHandling:
    """Relayed links; the engine supplies the links, the desk and the supervisor."""

    name: str
    clock: Clock
    peers: dict[str, PeerState]
    supervisor: Supervisor
    desk: Register
    _randbytes: Callable[[int], bytes]

    # the engine's (``links``): a new connection's hello, closing a link, feeding one bytes
    _hello: Callable[[PeerState, Link], None]
    _connection: Callable[[str], Connection]
    _close_link: Callable[[Link, str], None]
    data_received: Callable[[Link, bytes], None]
    _supervise: Callable[[], None]

    def _init_relay(self) -> None:
        self._relay_retry: dict[str, dict[str, float]] = {}  # peer -> member -> when to try it again
        self._direct_down_since: dict[str, float] = {}  # peer -> since when no direct path is up
        self.relayed: dict[tuple[str, str], int] = {}  # (from, to) -> frames of theirs carried here
        self._relay_refusing: dict[tuple[str, str, str], str] = {}  # ("out"|"in", from, to|via) -> why, logged
        self._relay_alarms: dict[tuple[str, str], float] = {}  # (to, from) -> when it last reported

    def live_link(self, name: str) -> Link | None:
        """The peer's direct link that is up (hello received), the active one first; None if none is."""
        peer = self.peers.get(name)
        if peer is None:
            return None
        for link in [peer.active, *peer.links.values()]:
            if link is not None and link.via is None and link.hello_cursor is not None and link.conn.is_open:
                return link
        return None

    def _vias(self, a: str, c: str) -> set[str]:
        return relay_vias(self.desk.channels(), a, c)

    # -- sender -----------------------------------------------------------------------------

    def _relay_tick(self, now: float) -> None:
        """Open a relayed path to each peer no direct path reaches, where a channel allows one;
        close relayed paths once a direct one carries the traffic again, or their carrier is gone."""
        for peer in self.peers.values():
            relayed = [link for link in peer.links.values() if link.via is not None]
            if self.live_link(peer.name) is not None:
                self._direct_down_since.pop(peer.name, None)
                if peer.active is not None and peer.active.via is None:
                    for link in relayed:
                        self._close_link(link, "a direct path carries the traffic again")
                continue
            since = self._direct_down_since.setdefault(peer.name, now)
            for link in relayed:
                if self.live_link(link.via or "") is None:
                    self._close_link(link, f"the link to {link.via}, which carried it, is down")
            if any(link.via is not None for link in peer.links.values()) or now - since < RELAY_DELAY_S:
                continue
            if not opens_relay(self.name, peer.name):
                continue  # the other end opens; this one answers (``_on_relayed``)
            allowed = self._vias(self.name, peer.name)
            if not allowed:
                continue
            retry = self._relay_retry.setdefault(peer.name, {})
            live = [name for name in self.peers if name in allowed and self.live_link(name) is not None]
            via = choose_via(direct_up=False, live=live, allowed=allowed, peer=peer.name, retry_at=retry, now=now)
            if via is not None:
                retry[via] = now + RETRY_AFTER_S
                log.debug("no direct path to %s: relaying through %s", peer.name, via, extra=about(peer.name))
                self._open_relay(peer, via, int.from_bytes(self._randbytes(8), "big") >> 1)
        for key, last in list(self._relay_alarms.items()):
            if now - last >= RELAY_ALARM_HOLD_S:
                del self._relay_alarms[key]
                self.supervisor.clear_alarm("relay-refused", key[0], key[1],
                                            f"no further report for {RELAY_ALARM_HOLD_S:.0f} s",
                                            self.clock.wall_ns())  # fmt: skip
                self._supervise()

    def _open_relay(self, peer: PeerState, via: str, session: int) -> Link:
        """A relayed link to ``peer`` through ``via``, saying hello as a new connection does."""
        link = Link(
            peer=peer.name,
            io=RelayIO(self._relay_out, via, peer.name, session),
            conn=self._connection(peer.name),
            dialed=opens_relay(self.name, peer.name),  # as the link.up entry records it
            preferred=True,
            address=via,  # "up via moscow" in the log; the path name says it is relayed
            path=relay_path(via),
            via=via,
            session=session,
        )
        peer.links[link.path] = link
        self._hello(peer, link)
        return link

    def _relay_out(self, via: str, to: str, session: int, data: bytes) -> None:
        """What a relayed link wrote: to ``via`` in relay frames of whole frames each."""
        carrier = self.live_link(via)
        if carrier is None:
            return  # the carrier is gone: the relayed link falls silent and closes on its own
        for piece in split_frames(data, MAX_RELAY_BYTES):
            if len(piece) > MAX_RELAY_BYTES:
                log.error("a frame of %d bytes for %s is too large to relay; dropped", len(piece), to)
                continue
            carrier.conn.send_relay(to, session, piece)
        carrier.pump()

    def _refusing(self, key: tuple[str, str, str], why: str, what: str, peer: str) -> bool:
        """Log a refusal once per reason, however often the frames come (``why`` "": none now).
        Returns whether frames of ``key`` were being refused until now."""
        before = self._relay_refusing.get(key)
        if not why:
            self._relay_refusing.pop(key, None)
        elif before != why:
            log.warning("%s: %s", what, why, extra=about(peer))
            self._relay_refusing[key] = why
        return before is not None

    # -- relay ------------------------------------------------------------------------------

    def _relay_event(self, link: Link, event: RelayRequested | RelayedReceived | RelayRefused) -> None:
        if link.via is not None:
            raise RemoteProtocolError("relay frames came inside a relayed link; relays do not nest")
        if isinstance(event, RelayRequested):
            self._forward(link.peer, event.to, event.session, event.data)
        elif isinstance(event, RelayedReceived):
            self._on_relayed(link.peer, event.sender, event.session, event.data)
        else:
            self._on_relay_refused(link.peer, event.sender, event.reason)

    def _forward(self, sender: str, to: str, session: int, data: bytes) -> None:
        """Pass ``sender``'s frames on to ``to`` as they are, or refuse (logged once per reason)."""
        target = self.live_link(to)
        linked = [name for name in self.peers if self.live_link(name) is not None]
        why = forward_problem(sender=sender, to=to, me=self.name, linked=linked, allowed=self._vias(sender, to))
        refused_before = self._refusing(("out", sender, to), why, f"not relaying for {sender} to {to}", sender)
        if why or target is None:
            return
        if (sender, to) not in self.relayed or refused_before:
            log.info("relaying %s's link to %s (ciphertext only)", sender, to, extra=about(sender))
        self.relayed[(sender, to)] = self.relayed.get((sender, to), 0) + 1
        target.conn.send_relayed(sender, session, data)
        target.pump()

    def _on_relay_refused(self, recipient: str, sender: str, reason: str) -> None:
        """``recipient`` says a frame of ``sender`` that we carried failed its check there."""
        if (sender, recipient) not in self.relayed:
            log.warning("%s reports a bad relayed frame from %s, which this terminal never relayed: %s",
                        recipient, sender, reason, extra=about(recipient))  # fmt: skip
            return
        detail = (f"{recipient} refused a frame of {sender} that this terminal relayed: {reason}. Either it "
                  f"was altered here or {sender} sent a bad one; investigate this terminal first")  # fmt: skip
        log.error("RELAY REFUSED: %s", detail, extra=about(recipient))
        self._relay_alarms[(recipient, sender)] = self.clock.monotonic()
        self.supervisor.raise_alarm("relay-refused", recipient, sender, detail, self.clock.wall_ns())
        self._supervise()

    # -- recipient --------------------------------------------------------------------------

    def _on_relayed(self, via: str, sender: str, session: int, data: bytes) -> None:
        """Frames of ``sender``'s link to us, carried by ``via``: into our relayed link to it."""
        peer = self.peers.get(sender)
        why = ""
        if peer is None or sender in (via, self.name):
            why = f"{sender!r} is not a third paired terminal"
        elif via not in self._vias(self.name, sender):
            why = f"no channel that {sender}, {via} and {self.name} have joined allows relay"
        self._refusing(("in", sender, via), why, f"refusing frames of {sender} relayed by {via}", via)
        if why or peer is None:
            return
        link = peer.links.get(relay_path(via))
        held = link.session if link is not None else None
        hello = held != session and starts_afresh(data)  # decoded only when it decides something
        action = take_relayed(held=held, session=session, opener=opens_relay(self.name, sender), hello=hello)
        if action == "drop":
            log.debug("dropping frames of %s relayed by %s: of a session not held here", sender, via,
                      extra=about(sender))  # fmt: skip
            return
        if action == "replace":
            old = link
            log.info("%s's link reaches us through %s", sender, via, extra=about(sender))
            link = self._open_relay(peer, via, session)
            if old is not None:  # a newer session replaces it, as a handover does: no outage
                link.inherits_up = old.hello_cursor is not None or old.inherits_up
                peer.resend_receipt_on.discard(old)
                old.io.close()
                old.conn.transport_lost("replaced by a newer relayed session")
        if link is not None:
            self.data_received(link, data)

    def _relay_refused_here(self, link: Link, reason: str) -> None:
        """A frame on relayed ``link`` failed its check: tell the member that carried it."""
        log.error("a frame of %s relayed by %s was refused: %s", link.peer, link.via, reason,
                  extra=about(link.peer, link.path))  # fmt: skip
        carrier = self.live_link(link.via or "")
        if carrier is not None:
            carrier.conn.send_relay_refused(link.peer, reason)
            carrier.pump()
