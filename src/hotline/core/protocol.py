"""The per-connection link protocol, sans-IO.

The shell hands this object the bytes that came out of an authenticated TLS 1.3
connection (the peer is already known by its pinned certificate) and the current
time; it hands back typed events and the bytes to write. It never touches a
socket or a clock.

States (every legal move is in ``_TRANSITIONS``)::

    AWAIT_HELLO --hello--> OPEN --bye / error / silence / transport lost--> CLOSED
         \\_____________ error / silence / bye / transport lost ____________/

Frames (msgpack maps, see ``wire``):

    hello   {pv, name, cursor, receipt,  first frame each way: who I am, the highest
             doubt?}                     sequence of yours I have journaled, my latest
                                         signed delivery receipt for you, and, if my own
                                         journal failed its check, how (else absent)
    env     {seq, e}                     one signed envelope
    rcpt    {r}                          one signed receipt
    resume  {cursor}                     "I have up to cursor; send from cursor+1"
    ping    {n, grace?} / pong {n}       liveness and round-trip time; ``grace`` (ms) warns
                                         that the sender may fall silent that long (a large
                                         message to seal or to open)
    test    {id, text}                   a test message on this path, answered at once
    test-ok {id, text}                   by the peer terminal itself, with the same text
    rekey   {r}                          a signed re-key offer (``crypto.rekey``): start a fresh
                                         ratchet and a fresh stream (after a restore)
    doubt   {text}                       my journal's check result changed while connected:
                                         the damage found, or "" once a supervisor accepted it
    bye     {reason, handover?}          orderly close; ``handover: true`` means "I keep this
                                         path on a newer connection of ours", not an outage
    relay   {to, s, f}                   please pass ``f`` (whole frames of my link to ``to``,
                                         envelopes signed by me end to end, of that link's
                                         session ``s``) on to ``to``
    relayed {from, s, f}                 frames of ``from``'s link to you, passed on by me
    relay-bad {from, reason}             a frame of ``from`` you passed on to me failed its
                                         check here (its signature): I dropped it

The three relay frames carry another pair's link inside this one (``engine.relaying``):
``f`` is opaque here, capped at ``MAX_RELAY_BYTES``.

Liveness follows the idea of BFD (RFC 5880): a ping every ``heartbeat_interval``
and the connection is declared dead after ``missed_limit`` intervals with
nothing at all received.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from hotline.core.errors import LocalProtocolError, RemoteProtocolError
from hotline.core.wire import MAX_FRAME_BYTES, FrameDecoder, encode_frame

PROTOCOL_VERSION = 1
MAX_REASON_CHARS = 200
# A terminal seals, journals and opens a message in one go on its event loop: for a message of
# many MiB that is longer than three heartbeats on a slow machine. It says so first (a ping with
# ``grace``), so the peer does not declare a healthy path dead. Large means over 1 MiB; the grace
# is half a second and a tenth of a second a MiB, and never more than MAX_GRACE_MS.
LARGE_FRAME_BYTES = 1024 * 1024
MAX_GRACE_MS = 5000
# What one relay frame may carry: a whole frame of the largest kind, with room left to wrap it.
MAX_RELAY_BYTES = MAX_FRAME_BYTES - 4096


def grace_for(size: int) -> float:
    """Seconds of silence to announce before handling ``size`` bytes at once."""
    return min(MAX_GRACE_MS / 1000, 0.5 + 0.1 * size / (1024 * 1024))


class State(enum.Enum):
    AWAIT_HELLO = "await-hello"
    OPEN = "open"
    CLOSED = "closed"


# Which incoming frame types each state accepts. Anything else is a protocol error.
_TRANSITIONS: dict[State, dict[str, State]] = {
    State.AWAIT_HELLO: {"hello": State.OPEN, "bye": State.CLOSED},
    State.OPEN: {
        "env": State.OPEN,
        "rcpt": State.OPEN,
        "resume": State.OPEN,
        "ping": State.OPEN,
        "pong": State.OPEN,
        "test": State.OPEN,
        "test-ok": State.OPEN,
        "doubt": State.OPEN,
        "rekey": State.OPEN,
        "relay": State.OPEN,
        "relayed": State.OPEN,
        "relay-bad": State.OPEN,
        "bye": State.CLOSED,
    },
    State.CLOSED: {},
}


@dataclass(frozen=True, slots=True)
class HelloReceived:
    name: str
    cursor: int
    receipt: bytes | None
    doubt: str = ""  # the peer's journal failed its check: how ("" if it did not)


@dataclass(frozen=True, slots=True)
class EnvelopeReceived:
    seq: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ReceiptReceived:
    data: bytes


@dataclass(frozen=True, slots=True)
class ResumeRequested:
    cursor: int


@dataclass(frozen=True, slots=True)
class RttMeasured:
    rtt: float


@dataclass(frozen=True, slots=True)
class TestAnswered:
    """The peer answered our test message ``id`` with ``text`` (compare it with what was sent)."""

    id: str
    text: str


@dataclass(frozen=True, slots=True)
class LargeFrameReceived:
    size: int  # bytes; handling the frame that follows will take a while


@dataclass(frozen=True, slots=True)
class RecordInDoubt:
    """The peer says its own journal failed its integrity check (``text`` names the entry),
    or, with ``text`` empty, that a supervisor there has accepted the damage."""

    text: str


@dataclass(frozen=True, slots=True)
class RekeyReceived:
    """The peer offers a fresh ratchet (``crypto.rekey.open_offer`` checks ``data``)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class RelayRequested:
    """The peer asks us to pass ``data`` (frames of its link to ``to``, of ``session``) on to ``to``."""

    to: str
    session: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RelayedReceived:
    """Frames of ``sender``'s link to us (of ``session``), which the peer passed on."""

    sender: str
    session: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RelayRefused:
    """A frame of ``sender`` that we passed on to the peer failed its check there."""

    sender: str
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    reason: str
    by_peer: bool  # True: the peer said bye or misbehaved; False: we closed or it went silent
    handover: bool = False  # the peer closed it because a newer connection replaces it
    silent: bool = False  # we closed it: nothing arrived for ``missed_limit`` heartbeat intervals


Event = (
    HelloReceived
    | EnvelopeReceived
    | ReceiptReceived
    | ResumeRequested
    | RttMeasured
    | TestAnswered
    | LargeFrameReceived
    | RecordInDoubt
    | RekeyReceived
    | RelayRequested
    | RelayedReceived
    | RelayRefused
    | ConnectionClosed
)
MAX_DOUBT_TEXT = 1000
MAX_TEST_TEXT = 2000


def _int(frame: dict[str, Any], key: str) -> int:
    value = frame.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value >= 1 << 63:
        raise RemoteProtocolError(f"{frame['t']} frame field {key!r} must be a non-negative integer")
    return value


def _str(frame: dict[str, Any], key: str) -> str:
    value = frame.get(key)
    if not isinstance(value, str) or len(value) > MAX_TEST_TEXT:
        raise RemoteProtocolError(
            f"{frame['t']} frame field {key!r} must be text of at most {MAX_TEST_TEXT} characters"
        )
    return value


def _bytes(frame: dict[str, Any], key: str) -> bytes:
    value = frame.get(key)
    if not isinstance(value, bytes):
        raise RemoteProtocolError(f"{frame['t']} frame field {key!r} must be bytes")
    return value


def _relayed(frame: dict[str, Any]) -> bytes:
    value = _bytes(frame, "f")
    if not value or len(value) > MAX_RELAY_BYTES:
        raise RemoteProtocolError(f"{frame['t']} frame carries {len(value)} bytes; 1 to {MAX_RELAY_BYTES} are allowed")
    return value


class Connection:
    """One authenticated connection to one peer, as a pure state machine."""

    def __init__(
        self,
        *,
        local_name: str,
        peer_name: str,
        now: float,
        heartbeat_interval: float = 0.2,
        missed_limit: int = 3,
    ) -> None:
        if heartbeat_interval <= 0 or missed_limit < 1:
            raise LocalProtocolError("heartbeat interval must be positive and missed limit >= 1")
        self.local_name = local_name
        self.peer_name = peer_name
        self.state = State.AWAIT_HELLO
        self._decoder = FrameDecoder()
        self._events: list[Event] = []
        self._out = bytearray()
        self._interval = heartbeat_interval
        self._missed_limit = missed_limit
        self._last_received = now
        self._quiet_until = now  # the peer announced it may be silent until then (see grace_for)
        self._next_ping = now + heartbeat_interval
        self._ping_sent: dict[int, float] = {}
        self._ping_counter = 0
        self.last_rtt: float | None = None
        self.close_reason: str | None = None

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def is_open(self) -> bool:
        return self.state is State.OPEN

    # -- outgoing ---------------------------------------------------------------------------

    def _emit(self, frame: dict[str, Any]) -> None:
        if self.state is State.CLOSED:
            raise LocalProtocolError(f"cannot send {frame['t']!r}: connection to {self.peer_name} is closed")
        self._out += encode_frame(frame)

    def send_hello(self, cursor: int, receipt: bytes | None, doubt: str = "") -> None:
        frame: dict[str, Any] = {
            "t": "hello",
            "pv": PROTOCOL_VERSION,
            "name": self.local_name,
            "cursor": cursor,
            "receipt": receipt,
        }
        if doubt:
            frame["doubt"] = doubt[:MAX_DOUBT_TEXT]
        self._emit(frame)

    def _require_open(self, what: str) -> None:
        if self.state is not State.OPEN:
            raise LocalProtocolError(f"cannot send {what} before the peer's hello (state {self.state.value})")

    def send_envelope(self, seq: int, data: bytes) -> None:
        self._require_open("an envelope")
        self._emit({"t": "env", "seq": seq, "e": data})

    def send_receipt(self, data: bytes) -> None:
        self._require_open("a receipt")
        self._emit({"t": "rcpt", "r": data})

    def send_resume(self, cursor: int) -> None:
        self._require_open("a resume request")
        self._emit({"t": "resume", "cursor": cursor})

    def announce_busy(self, seconds: float) -> None:
        """Warn the peer that we may be silent for up to ``seconds`` (a ping that carries a grace).
        Its pong is not timed: it would measure the very stall announced, not the path."""
        if self.state is not State.OPEN:
            return
        self._ping_counter += 1
        grace_ms = min(MAX_GRACE_MS, max(0, round(seconds * 1000)))
        self._out += encode_frame({"t": "ping", "n": self._ping_counter, "grace": grace_ms})

    def excuse_silence(self, now: float) -> None:
        """We were not listening until ``now`` (our own stall): count the peer's silence from here."""
        self._quiet_until = max(self._quiet_until, now)

    def send_test(self, test_id: str, text: str) -> None:
        self._require_open("a test message")
        self._emit({"t": "test", "id": test_id, "text": text[:MAX_TEST_TEXT]})

    def send_rekey(self, data: bytes) -> None:
        self._require_open("a re-key offer")
        self._emit({"t": "rekey", "r": data})

    def send_relay(self, to: str, session: int, data: bytes) -> None:
        """Ask the peer to pass ``data`` (whole frames of our link to ``to``) on to ``to``."""
        self._require_open("a frame to relay")
        self._emit({"t": "relay", "to": to, "s": session, "f": data})

    def send_relayed(self, sender: str, session: int, data: bytes) -> None:
        """Pass on to the peer frames of ``sender``'s link to it."""
        self._require_open("a relayed frame")
        self._emit({"t": "relayed", "from": sender, "s": session, "f": data})

    def send_relay_refused(self, sender: str, reason: str) -> None:
        """Tell the peer that a frame of ``sender`` it passed on failed its check here."""
        self._require_open("a relay refusal")
        self._emit({"t": "relay-bad", "from": sender, "reason": reason[:MAX_REASON_CHARS]})

    def send_doubt(self, text: str) -> None:
        """Tell the peer this terminal's journal check changed: the damage found, or "" once accepted."""
        self._emit({"t": "doubt", "text": text[:MAX_DOUBT_TEXT]})

    def close(self, reason: str, *, handover: bool = False) -> None:
        """Close from our side: queue a bye and report the closure as an event. ``handover``
        tells the peer a newer connection on the same path takes over from this one."""
        if self.state is State.CLOSED:
            return
        bye: dict[str, Any] = {"t": "bye", "reason": reason[:MAX_REASON_CHARS]}
        if handover:
            bye["handover"] = True
        self._emit(bye)
        self._closed(reason, by_peer=False)

    def transport_lost(self, reason: str) -> None:
        """The shell lost the transport under us (reset, EOF, error): closed at once, nothing to
        send and no event, since the shell is the one telling us."""
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            self.close_reason = reason

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    # -- incoming ---------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the peer. Protocol errors close the connection and become events."""
        if self.state is State.CLOSED:
            return
        self._last_received = now
        self._decoder.receive_data(data)
        try:
            while not self.closed:
                size = self._decoder.announced
                frame = self._decoder.next_frame()
                if frame is None:
                    break
                if size > LARGE_FRAME_BYTES:
                    # Opening and journaling it will hold the whole terminal up: the engine warns
                    # every peer first (the event comes before the frame's own).
                    self._events.append(LargeFrameReceived(size))
                self._handle_frame(frame, now)
        except RemoteProtocolError as e:
            self._fail(str(e))

    def _fail(self, reason: str) -> None:
        """The peer broke the protocol: say why, then close."""
        self._out += encode_frame({"t": "bye", "reason": f"protocol error: {reason}"[:MAX_REASON_CHARS]})
        self._closed(f"protocol error from {self.peer_name}: {reason}", by_peer=True)

    def _closed(self, reason: str, *, by_peer: bool, handover: bool = False, silent: bool = False) -> None:
        self.state = State.CLOSED
        self.close_reason = reason
        self._events.append(ConnectionClosed(reason=reason, by_peer=by_peer, handover=handover, silent=silent))

    def _handle_frame(self, frame: dict[str, Any], now: float) -> None:
        kind = frame["t"]
        allowed = _TRANSITIONS[self.state]
        if kind not in allowed:
            raise RemoteProtocolError(f"unexpected {kind!r} frame in state {self.state.value}")
        next_state = allowed[kind]
        if kind == "hello":
            if frame.get("pv") != PROTOCOL_VERSION:
                raise RemoteProtocolError(
                    f"peer speaks protocol version {frame.get('pv')!r}; this terminal speaks {PROTOCOL_VERSION}"
                )
            if frame.get("name") != self.peer_name:
                raise RemoteProtocolError(
                    f"peer introduced itself as {frame.get('name')!r}, but its key is paired as {self.peer_name!r}"
                )
            receipt = frame.get("receipt")
            if receipt is not None and not isinstance(receipt, bytes):
                raise RemoteProtocolError("hello frame field 'receipt' must be bytes or nil")
            doubt = frame.get("doubt", "")
            if not isinstance(doubt, str) or len(doubt) > MAX_DOUBT_TEXT:
                raise RemoteProtocolError(
                    f"hello frame field 'doubt' must be text of at most {MAX_DOUBT_TEXT} characters"
                )
            self._events.append(
                HelloReceived(name=self.peer_name, cursor=_int(frame, "cursor"), receipt=receipt, doubt=doubt)
            )
        elif kind == "env":
            self._events.append(EnvelopeReceived(seq=_int(frame, "seq"), data=_bytes(frame, "e")))
        elif kind == "rcpt":
            self._events.append(ReceiptReceived(data=_bytes(frame, "r")))
        elif kind == "resume":
            self._events.append(ResumeRequested(cursor=_int(frame, "cursor")))
        elif kind == "ping":
            self._out += encode_frame({"t": "pong", "n": _int(frame, "n")})
            if "grace" in frame:
                grace_ms = _int(frame, "grace")
                if grace_ms > MAX_GRACE_MS:
                    raise RemoteProtocolError(f"ping grace of {grace_ms} ms exceeds {MAX_GRACE_MS} ms")
                self._quiet_until = max(self._quiet_until, now + grace_ms / 1000)
        elif kind == "pong":
            sent = self._ping_sent.pop(_int(frame, "n"), None)
            if sent is not None:
                self.last_rtt = now - sent
                self._events.append(RttMeasured(self.last_rtt))
        elif kind == "test":
            # Answered by the terminal itself, on the path it came by: that is the test.
            self._out += encode_frame({"t": "test-ok", "id": _str(frame, "id"), "text": _str(frame, "text")})
        elif kind == "doubt":
            text = _str(frame, "text")
            if len(text) > MAX_DOUBT_TEXT:
                raise RemoteProtocolError(f"doubt text longer than {MAX_DOUBT_TEXT} characters")
            self._events.append(RecordInDoubt(text))
        elif kind == "rekey":
            self._events.append(RekeyReceived(_bytes(frame, "r")))
        elif kind == "relay":
            self._events.append(RelayRequested(to=_str(frame, "to"), session=_int(frame, "s"), data=_relayed(frame)))
        elif kind == "relayed":
            sender = _str(frame, "from")
            self._events.append(RelayedReceived(sender=sender, session=_int(frame, "s"), data=_relayed(frame)))
        elif kind == "relay-bad":
            why = _str(frame, "reason")[:MAX_REASON_CHARS]
            self._events.append(RelayRefused(sender=_str(frame, "from"), reason=why))
        elif kind == "test-ok":
            self._events.append(TestAnswered(id=_str(frame, "id"), text=_str(frame, "text")))
        elif kind == "bye":
            reason = frame.get("reason")
            text = reason[:MAX_REASON_CHARS] if isinstance(reason, str) else "no reason given"
            handover = frame.get("handover") is True
            self._closed(f"{self.peer_name} closed the connection: {text}", by_peer=True, handover=handover)
            return
        self.state = next_state

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None

    # -- time -------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        if self.state is State.CLOSED:
            return None
        return min(self._next_ping, max(self._last_received, self._quiet_until) + self._interval * self._missed_limit)

    def handle_timer(self, now: float) -> None:
        if self.state is State.CLOSED:
            return
        silent_for = now - max(self._last_received, self._quiet_until)
        if silent_for >= self._interval * self._missed_limit:
            self._closed(
                f"no heartbeat from {self.peer_name} for {silent_for * 1000:.0f} ms "
                f"({self._missed_limit} intervals of {self._interval * 1000:.0f} ms)",
                by_peer=False,
                silent=True,
            )
            return
        if now >= self._next_ping:
            self._ping_counter += 1
            self._ping_sent[self._ping_counter] = now
            # Unanswered pings older than the dead interval are of no use; keep the map small.
            for n in [n for n, t in self._ping_sent.items() if now - t > self._interval * self._missed_limit]:
                del self._ping_sent[n]
            self._out += encode_frame({"t": "ping", "n": self._ping_counter})
            self._next_ping = now + self._interval
