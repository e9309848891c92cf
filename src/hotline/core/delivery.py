"""Delivery decisions for one peer, sans-IO: what to seal next, what to (re)send, what is a
duplicate, what a receipt settles.

The model is magic-wormhole's: outbound records are numbered, kept until
acknowledged, and replayed on whichever connection comes up next.

Outbound, per peer::

    queued ──seal──> unacked[seq] ──transmit──> (on the wire) ──receipt(upto)──> delivered
       ^ precedence order       ^ resent from the peer's cursor on every new connection,
                                  on a resume request, and one probe after a silent timeout

* Sequence numbers are assigned when a message is *sealed*, and messages are
  sealed in precedence order (FLASH first, then by acceptance). So a flash
  message overtakes every queued message of lower precedence, while the order
  on the wire, in the receiver's journal and in receipts is still simply 1, 2, 3...
* At most ``window`` envelopes (and ``window_bytes``) are unacknowledged at once;
  that is what leaves room for a later flash to overtake.

Inbound, per peer: the next acceptable sequence is ``upto + 1``. Anything at or
below ``upto`` is a duplicate (dropped before decryption, answered with our
latest receipt); anything above is a gap (dropped, answered once with a resume
request). Duplicates are thereby dropped by (sender, sequence) before any key is
touched, as DESIGN requires.
"""

from __future__ import annotations

import enum
import heapq
from collections import OrderedDict
from dataclasses import dataclass

from hotline.core.errors import LocalProtocolError, RemoteProtocolError
from hotline.core.model import EMPTY_STREAM_HASH, Precedence, next_stream_hash

DEFAULT_WINDOW = 1024
DEFAULT_WINDOW_BYTES = 64 * 1024 * 1024
DEFAULT_PROBE_TIMEOUT = 2.0


class OutboxQueue:
    """Accepted messages not yet sealed, most urgent first, then in acceptance order."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str]] = []
        self._ids: set[str] = set()
        self._last = -1  # the highest order given so far

    def push(self, message_id: str, precedence: Precedence, order: int | None = None) -> None:
        """Queue a message; ``order`` is its place in acceptance order (its journal entry), as
        restored from the journal. A message pushed without one was accepted after every message
        pushed before it, so it goes after them all — after a restart's backlog too (found by
        tools/soak.py: numbering new messages from 0 let them overtake it)."""
        if message_id in self._ids:
            return
        self._ids.add(message_id)
        if order is None:
            order = self._last + 1
        self._last = max(self._last, order)
        heapq.heappush(self._heap, (-int(precedence), order, message_id))

    def pop(self) -> str | None:
        if not self._heap:
            return None
        _, _, message_id = heapq.heappop(self._heap)
        self._ids.discard(message_id)
        return message_id

    def peek(self) -> Precedence | None:
        """The precedence of the message ``pop`` would give next (None if the queue is empty)."""
        return Precedence(-self._heap[0][0]) if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


class Outbound:
    """Sealed envelopes awaiting a delivery receipt, and where sending stands."""

    def __init__(
        self,
        *,
        next_seq: int = 1,
        acked: int = 0,
        unacked: dict[int, bytes] | None = None,
        window: int = DEFAULT_WINDOW,
        window_bytes: int = DEFAULT_WINDOW_BYTES,
        probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
    ) -> None:
        self.next_seq = next_seq
        self.acked = acked
        self._unacked: OrderedDict[int, bytes] = OrderedDict(sorted((unacked or {}).items()))
        self._unacked_bytes = sum(len(e) for e in self._unacked.values())
        expected = list(range(acked + 1, next_seq))
        if list(self._unacked) != expected:
            raise LocalProtocolError(
                f"journal inconsistency: unacknowledged envelopes {list(self._unacked)[:5]}... "
                f"do not match the range {acked + 1}..{next_seq - 1}"
            )
        self._window = window
        self._window_bytes = window_bytes
        self._probe_timeout = probe_timeout
        self._pointer: int | None = None  # next seq to transmit; None while no connection
        self._last_progress = 0.0

    @property
    def unacked_count(self) -> int:
        return len(self._unacked)

    @property
    def linked(self) -> bool:
        return self._pointer is not None

    def room(self) -> int:
        """How many more messages may be sealed now (at least one if nothing is in flight)."""
        if not self._unacked:
            return self._window
        if self._unacked_bytes >= self._window_bytes:
            return 0
        return max(0, self._window - len(self._unacked))

    def sealed(self, seq: int, envelope: bytes) -> None:
        if seq != self.next_seq:
            raise LocalProtocolError(f"sealed sequence {seq}, expected {self.next_seq}")
        self._unacked[seq] = envelope
        self._unacked_bytes += len(envelope)
        self.next_seq += 1

    def link_up(self, peer_cursor: int, now: float) -> None:
        """A new connection: the peer has journaled everything up to ``peer_cursor``."""
        if peer_cursor >= self.next_seq:
            raise RemoteProtocolError(
                f"peer claims to have sequence {peer_cursor} but only {self.next_seq - 1} were ever sent; "
                "its journal belongs to another pairing"
            )
        self._pointer = max(peer_cursor, self.acked) + 1
        self._last_progress = now

    def link_down(self) -> None:
        self._pointer = None

    def to_transmit(self) -> list[tuple[int, bytes]]:
        """Envelopes to write on the current connection now, in order."""
        if self._pointer is None:
            return []
        out = []
        seq = self._pointer
        while seq < self.next_seq:
            out.append((seq, self._unacked[seq]))
            seq += 1
        self._pointer = seq
        return out

    def on_receipt(self, upto: int, now: float) -> list[int]:
        """A verified delivery receipt for 1..upto: return the newly delivered sequences."""
        if upto >= self.next_seq:
            raise RemoteProtocolError(f"receipt covers sequence {upto}, but only {self.next_seq - 1} were sent")
        if upto <= self.acked:
            return []
        delivered = list(range(self.acked + 1, upto + 1))
        for seq in delivered:
            self._unacked_bytes -= len(self._unacked.pop(seq))
        self.acked = upto
        self._last_progress = now
        if self._pointer is not None and self._pointer <= upto:
            self._pointer = upto + 1
        return delivered

    def on_resume(self, cursor: int) -> None:
        """The peer has journaled up to ``cursor`` and wants the rest again (a gap)."""
        if cursor >= self.next_seq:
            raise RemoteProtocolError(f"resume from {cursor}, but only {self.next_seq - 1} were sent")
        if self._pointer is not None:
            self._pointer = max(cursor, self.acked) + 1

    def get_timer(self) -> float | None:
        if self._pointer is None or not self._unacked:
            return None
        return self._last_progress + self._probe_timeout

    def handle_timer(self, now: float) -> list[tuple[int, bytes]]:
        """No receipt progress for a while: probe with the oldest unacknowledged envelope.

        On TCP this rarely fires (a lost connection is caught by heartbeats and
        resumed by hello); it covers a lost tail, and the peer's answer (a receipt
        for a duplicate, or a resume for a gap) restarts the flow.
        """
        timer = self.get_timer()
        if timer is None or now < timer:
            return []
        self._last_progress = now
        seq = self.acked + 1
        return [(seq, self._unacked[seq])]


class Verdict(enum.Enum):
    ACCEPT = "accept"
    DUPLICATE = "duplicate"
    GAP = "gap"


@dataclass(slots=True)
class Inbound:
    """Where the incoming stream from one peer stands."""

    upto: int = 0
    stream_hash: bytes = EMPTY_STREAM_HASH
    _resume_sent_for: int = -1

    def classify(self, seq: int) -> Verdict:
        if seq <= self.upto:
            return Verdict.DUPLICATE
        if seq == self.upto + 1:
            return Verdict.ACCEPT
        return Verdict.GAP

    def should_request_resume(self) -> bool:
        """Ask for a resend once per cursor value, so a burst after a gap is one request."""
        if self._resume_sent_for == self.upto:
            return False
        self._resume_sent_for = self.upto
        return True

    def accept(self, seq: int, envelope: bytes) -> bytes:
        """Record a verified, decrypted envelope; return the new running stream hash."""
        if seq != self.upto + 1:
            raise LocalProtocolError(f"accepting sequence {seq} out of order; expected {self.upto + 1}")
        self.upto = seq
        self.stream_hash = next_stream_hash(self.stream_hash, envelope)
        return self.stream_hash

    def link_up(self) -> None:
        self._resume_sent_for = -1
