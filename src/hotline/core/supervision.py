"""The line proves itself: test messages on every path, acknowledgement deadlines, alarms.

The supervisor belongs to the engine and decides, from events and the clock:

* **Test messages.** Every path to every peer carries a test message at a fixed
  interval (default one hour; seconds in tests), answered automatically by the
  peer terminal on the same path; the round trip is journaled (``link.test``).
  A path also gets a test as soon as it comes up. A test that is not answered
  by its deadline, comes back garbled, or cannot be sent because its path is
  down raises ``test-failed`` for that path; the next good test clears it. Like
  the original Moscow-Washington link, tests carry a passage of public-domain
  text, so a garbled line is obvious to a person reading the journal.
* **Acknowledgement deadlines.** A message not acknowledged by a person within
  its precedence's handling time raises ``ack-overdue``, on both sides.
* **Alarms** (see ``alarms``): raised and cleared once per condition; each change
  is journaled (``alarm.raised`` / ``alarm.cleared``) in the next commit and
  then emitted to listeners (the terminal hands it to the operator's command).

It does no I/O of its own: it asks the engine to write to links and queues
journal work for the engine's group commit.
"""

from __future__ import annotations

import heapq
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hotline.core.alarms import AlarmBoard, AlarmChange
from hotline.core.protocol import State

if TYPE_CHECKING:
    from hotline.engine.engine import Engine

log = logging.getLogger("hotline.supervision")

# Public-domain passages, rotated through the tests. The first is the test message
# the Moscow-Washington teletype actually carried in 1963.
TEST_PASSAGES = (
    "THE QUICK BROWN FOX JUMPED OVER THE LAZY DOG'S BACK 1234567890",
    "Все счастливые семьи похожи друг на друга, каждая несчастливая семья несчастлива по-своему. (Л. Толстой)",
    "Shall I compare thee to a summer's day? Thou art more lovely and more temperate. (W. Shakespeare)",
    "Говорили, что на набережной появилось новое лицо: дама с собачкой. (А. Чехов)",
    "You don't know about me without you have read a book by the name of The Adventures of Tom Sawyer. (M. Twain)",
)
STARTUP_GRACE_S = 10.0  # a path that never comes up is reported after this long
ACK_CHECK_INTERVAL_S = 1.0


@dataclass
class _PendingTest:
    peer: str
    path: str
    text: str
    sent_mono: float
    sent_ns: int
    deadline: float


class Supervisor:
    def __init__(self, engine: Engine, now: float) -> None:
        self.engine = engine
        self.board = AlarmBoard()
        self._changes: list[AlarmChange] = []
        self._records: list[tuple[str, str, dict[str, Any]]] = []  # journal entries for the next commit
        self._pending_tests: dict[str, _PendingTest] = {}
        self._next_test: dict[tuple[str, str], float] = {}
        self._ack_heap: list[tuple[int, str, str]] = []  # (deadline_ns, message id, peer)
        self._next_ack_check = 0.0
        self._started = now
        self._grace_done = False
        self._passage = 0

    # -- alarms -----------------------------------------------------------------------------

    def raise_alarm(self, kind: str, peer: str, subject: str, detail: str) -> None:
        change = self.board.raise_(kind, peer, subject, detail, self.engine.clock.wall_ns())
        if change is not None:
            log.error("ALARM %s %s %s: %s", kind, peer, subject, detail)
            self._changes.append(change)
            self.engine.request_flush()

    def clear_alarm(self, kind: str, peer: str, subject: str, reason: str) -> None:
        change = self.board.clear(kind, peer, subject, self.engine.clock.wall_ns(), reason)
        if change is not None:
            log.warning("alarm cleared %s %s %s: %s", kind, peer, subject, reason)
            self._changes.append(change)
            self.engine.request_flush()

    def restore(self, alarms: list[dict[str, Any]]) -> None:
        """Alarms still active when the terminal last stopped stay active until their condition clears."""
        for a in alarms:
            self.board.raise_(a["kind"], a["peer"], a["subject"], a["detail"], a["raised_ns"])

    # -- paths ------------------------------------------------------------------------------

    def path_up(self, peer: str, path: str) -> None:
        self.clear_alarm("path-down", peer, path, "the path is up again")
        # A test still pending on this path left on an earlier connection (one that died, or that
        # a simultaneous dial replaced); its answer can only come back on that connection, so
        # it is dropped, not left to time out, and the path is tested afresh on this one.
        for test_id in [t for t, p in self._pending_tests.items() if (p.peer, p.path) == (peer, path)]:
            del self._pending_tests[test_id]
        self._next_test[(peer, path)] = 0.0  # test a path as soon as it comes up

    def path_down(self, peer: str, path: str, reason: str) -> None:
        self.raise_alarm("path-down", peer, path, f"path {path} to {peer} is down: {reason}")

    def all_paths(self, peer: str, *, up: bool) -> None:
        if up:
            self.clear_alarm("all-paths-down", peer, "", "a path is up again")
        else:
            self.raise_alarm("all-paths-down", peer, "", f"no path to {peer} is up: the line is dead")

    # -- test messages ----------------------------------------------------------------------

    def _send_test(self, peer_name: str, path: str, now: float, now_ns: int) -> None:
        peer = self.engine.peers[peer_name]
        link = peer.links.get(path)
        handing_over = link is not None and link.handover_until is not None
        if link is not None and (handing_over or (link.hello_cursor is None and link.conn.state is not State.CLOSED)):
            # Connected, hello not yet in (a fresh connection, or one replacing another): not a
            # failure. The hello makes path_up test it at once; this is only the fallback.
            self._next_test[(peer_name, path)] = now + 1.0
            return
        if link is None or link.hello_cursor is None or link.conn.state is not State.OPEN:
            self._test_result(peer_name, path, ok=False, detail="path is down: the test could not be sent")
            return
        test_id = os.urandom(8).hex()
        text = TEST_PASSAGES[self._passage % len(TEST_PASSAGES)]
        self._passage += 1
        self._pending_tests[test_id] = _PendingTest(
            peer_name, path, text, now, now_ns, now + self.engine.config.test_timeout_s
        )
        link.conn.send_test(test_id, text)
        link.pump()

    def test_answered(self, peer: str, path: str, test_id: str, text: str) -> None:
        pending = self._pending_tests.pop(test_id, None)
        if pending is None or pending.peer != peer:
            log.warning("unexpected test answer %s from %s on %s (late or unknown)", test_id, peer, path)
            return
        rtt_ms = round((self.engine.clock.monotonic() - pending.sent_mono) * 1000, 3)
        if text != pending.text:
            self._test_result(peer, pending.path, ok=False, detail=f"answer garbled: {text[:80]!r}", rtt_ms=rtt_ms)
        else:
            self._test_result(peer, pending.path, ok=True, detail=text, rtt_ms=rtt_ms)

    def _test_result(self, peer: str, path: str, *, ok: bool, detail: str, rtt_ms: float | None = None) -> None:
        state = self.engine.peers.get(peer)
        result: dict[str, object] = {"ok": ok, "at_ns": self.engine.clock.wall_ns(), "rtt_ms": rtt_ms, "detail": detail}
        if state is not None:
            state.selector.ensure(path).last_test = result
        self._records.append(("link.test", peer, {"path": path, **result}))
        self.engine.request_flush()
        if ok:
            self.clear_alarm("test-failed", peer, path, f"test answered in {rtt_ms} ms")
        else:
            self.raise_alarm("test-failed", peer, path, f"test message on path {path} to {peer} failed: {detail}")

    # -- acknowledgement deadlines ----------------------------------------------------------

    def track_ack(self, message_id: str, peer: str, precedence: str, start_ns: int) -> None:
        deadline_s = self.engine.config.ack_deadlines_s.get(precedence)
        if deadline_s is not None:
            heapq.heappush(self._ack_heap, (start_ns + int(deadline_s * 1e9), message_id, peer))

    def acknowledged(self, message_id: str, peer: str, by: str) -> None:
        self.clear_alarm("ack-overdue", peer, message_id, f"acknowledged by {by or 'the peer'}")

    def _check_acks(self, now_ns: int) -> None:
        while self._ack_heap and self._ack_heap[0][0] <= now_ns:
            _, message_id, peer = heapq.heappop(self._ack_heap)
            waiting = self.engine.store.awaiting_ack(message_id)
            if waiting is None:
                continue
            direction, subject = waiting
            who = "the peer's operator" if direction == "out" else "an operator here"
            self.raise_alarm(
                "ack-overdue", peer, message_id,
                f"message {message_id} ({subject!r}) was not acknowledged by {who} within its handling time",
            )  # fmt: skip

    # -- time -------------------------------------------------------------------------------

    def tick(self, now: float, now_ns: int) -> None:
        interval = self.engine.config.test_interval_s
        if not self._grace_done and now - self._started >= STARTUP_GRACE_S:
            self._grace_done = True
            for peer in self.engine.peers.values():
                for path in peer.selector.paths.values():
                    if not path.up:
                        self.path_down(peer.name, path.name, "it has not come up since the terminal started")
                if not peer.selector.any_up():
                    self.all_paths(peer.name, up=False)
        for peer in self.engine.peers.values():
            for path in list(peer.selector.paths.values()):
                key = (peer.name, path.name)
                due = self._next_test.setdefault(key, self._started + STARTUP_GRACE_S)
                if now >= due:
                    self._next_test[key] = now + interval
                    self._send_test(peer.name, path.name, now, now_ns)
        for test_id, pending in list(self._pending_tests.items()):
            if now >= pending.deadline:
                del self._pending_tests[test_id]
                timeout = self.engine.config.test_timeout_s
                self._test_result(pending.peer, pending.path, ok=False, detail=f"no answer within {timeout:g} s")
        if now >= self._next_ack_check:
            self._next_ack_check = now + ACK_CHECK_INTERVAL_S
            self._check_acks(now_ns)

    # -- the group commit -------------------------------------------------------------------

    def write_pending(self, now_ns: int) -> list[dict[str, Any]]:
        """Inside the engine's transaction: journal alarm changes and test results.

        Returns the events to emit once the transaction has committed.
        """
        events: list[dict[str, Any]] = []
        store = self.engine.store
        for kind, peer, detail in self._records:
            store.record_link(kind, peer, detail, now_ns)
        self._records.clear()
        for change in self._changes:
            store.record_alarm(change)
            events.append({"event": "alarm", "state": "raised" if change.raised else "cleared",
                           "reason": change.reason, "at_ns": change.at_ns, **change.alarm.as_dict()})  # fmt: skip
        self._changes.clear()
        return events
