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

It is a pure state machine (sans-IO, like ``protocol``): it is told what
happens and what time it is, and it answers with *actions* the engine carries
out — ``SendTest`` (write a test frame on a path), ``PathTested`` (journal a
``link.test`` and show it in status) and ``AlarmChange`` (journal the change,
then tell listeners). The engine collects them with ``take_actions()`` after
each call. It never sees a link, a socket or the journal: the engine tells it
which paths exist and whether they can carry a test now (``PathView``), and
looks up in the journal whether a message due for acknowledgement still waits
(``acks_due`` → ``ack_overdue``).
"""

from __future__ import annotations

import enum
import heapq
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hotline.core.alarms import AlarmBoard, AlarmChange

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


@dataclass(frozen=True, slots=True)
class SupervisionConfig:
    test_interval_s: float = 3600.0
    test_timeout_s: float = 30.0
    ack_deadlines_s: Mapping[str, float] = field(default_factory=dict)  # precedence label -> seconds


class Readiness(enum.Enum):
    """Whether a path can carry a test message right now."""

    OPEN = "open"  # its connection is up and has said hello
    CONNECTING = "connecting"  # connected, hello not yet in (fresh, or replacing another): not a failure
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class PathView:
    """What the supervisor is told of one path at each tick."""

    peer: str
    path: str
    up: bool  # the path selector counts it up
    readiness: Readiness


@dataclass(frozen=True, slots=True)
class SendTest:
    """Action: write a test message on this path now."""

    peer: str
    path: str
    test_id: str
    text: str


@dataclass(frozen=True, slots=True)
class PathTested:
    """Action: journal this test's outcome (``link.test``) and show it in the path's status."""

    peer: str
    path: str
    ok: bool
    at_ns: int
    rtt_ms: float | None
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "at_ns": self.at_ns, "rtt_ms": self.rtt_ms, "detail": self.detail}


Action = SendTest | PathTested | AlarmChange


@dataclass
class _PendingTest:
    peer: str
    path: str
    text: str
    sent_mono: float
    deadline: float


class Supervisor:
    def __init__(self, config: SupervisionConfig, now: float, randbytes: Callable[[int], bytes]) -> None:
        self.config = config
        self.board = AlarmBoard()
        self._randbytes = randbytes
        self._actions: list[Action] = []
        self._pending_tests: dict[str, _PendingTest] = {}
        self._next_test: dict[tuple[str, str], float] = {}
        self._ack_heap: list[tuple[int, str, str]] = []  # (deadline_ns, message id, peer)
        self._next_ack_check = 0.0
        self._started = now
        self._grace_done = False
        self._passage = 0

    def take_actions(self) -> list[Action]:
        """What the engine must now carry out, in order; each action is handed out once."""
        actions, self._actions = self._actions, []
        return actions

    # -- alarms -----------------------------------------------------------------------------

    def raise_alarm(self, kind: str, peer: str, subject: str, detail: str, now_ns: int) -> None:
        change = self.board.raise_(kind, peer, subject, detail, now_ns)
        if change is not None:
            log.error("ALARM %s %s %s: %s", kind, peer, subject, detail)
            self._actions.append(change)

    def clear_alarm(self, kind: str, peer: str, subject: str, reason: str, now_ns: int) -> None:
        change = self.board.clear(kind, peer, subject, now_ns, reason)
        if change is not None:
            log.warning("alarm cleared %s %s %s: %s", kind, peer, subject, reason)
            self._actions.append(change)

    def restore(self, alarms: Iterable[Mapping[str, Any]]) -> None:
        """Alarms still active when the terminal last stopped stay active until their condition clears."""
        for a in alarms:
            self.board.raise_(a["kind"], a["peer"], a["subject"], a["detail"], a["raised_ns"])

    # -- paths ------------------------------------------------------------------------------

    def path_up(self, peer: str, path: str, now_ns: int) -> None:
        self.clear_alarm("path-down", peer, path, "the path is up again", now_ns)
        # A test still pending on this path left on an earlier connection (one that died, or that
        # a simultaneous dial replaced); its answer can only come back on that connection, so
        # it is dropped, not left to time out, and the path is tested afresh on this one.
        for test_id in [t for t, p in self._pending_tests.items() if (p.peer, p.path) == (peer, path)]:
            del self._pending_tests[test_id]
        self._next_test[(peer, path)] = 0.0  # test a path as soon as it comes up

    def path_down(self, peer: str, path: str, reason: str, now_ns: int) -> None:
        self.raise_alarm("path-down", peer, path, f"path {path} to {peer} is down: {reason}", now_ns)

    def all_paths(self, peer: str, *, up: bool, now_ns: int) -> None:
        if up:
            self.clear_alarm("all-paths-down", peer, "", "a path is up again", now_ns)
        else:
            self.raise_alarm("all-paths-down", peer, "", f"no path to {peer} is up: the line is dead", now_ns)

    # -- test messages ----------------------------------------------------------------------

    def _send_test(self, view: PathView, now: float, now_ns: int) -> None:
        if view.readiness is Readiness.CONNECTING:
            # The hello makes path_up test it at once; this is only the fallback.
            self._next_test[(view.peer, view.path)] = now + 1.0
            return
        if view.readiness is Readiness.DOWN:
            self._test_result(view.peer, view.path, now_ns, ok=False,
                              detail="path is down: the test could not be sent")  # fmt: skip
            return
        test_id = self._randbytes(8).hex()
        text = TEST_PASSAGES[self._passage % len(TEST_PASSAGES)]
        self._passage += 1
        self._pending_tests[test_id] = _PendingTest(view.peer, view.path, text, now, now + self.config.test_timeout_s)
        self._actions.append(SendTest(view.peer, view.path, test_id, text))

    def test_answered(self, peer: str, path: str, test_id: str, text: str, now: float, now_ns: int) -> None:
        pending = self._pending_tests.pop(test_id, None)
        if pending is None or pending.peer != peer:
            log.warning("unexpected test answer %s from %s on %s (late or unknown)", test_id, peer, path)
            return
        rtt_ms = round((now - pending.sent_mono) * 1000, 3)
        if text != pending.text:
            self._test_result(peer, pending.path, now_ns, ok=False, detail=f"answer garbled: {text[:80]!r}",
                              rtt_ms=rtt_ms)  # fmt: skip
        else:
            self._test_result(peer, pending.path, now_ns, ok=True, detail=text, rtt_ms=rtt_ms)

    def tests_pending(self) -> int:
        """Test messages sent and not yet answered or timed out."""
        return len(self._pending_tests)

    def _test_result(
        self, peer: str, path: str, now_ns: int, *, ok: bool, detail: str, rtt_ms: float | None = None
    ) -> None:
        self._actions.append(PathTested(peer, path, ok, now_ns, rtt_ms, detail))
        if ok:
            self.clear_alarm("test-failed", peer, path, f"test answered in {rtt_ms} ms", now_ns)
        else:
            self.raise_alarm("test-failed", peer, path, f"test message on path {path} to {peer} failed: {detail}",
                             now_ns)  # fmt: skip

    # -- acknowledgement deadlines ----------------------------------------------------------

    def track_ack(self, message_id: str, peer: str, precedence: str, start_ns: int) -> None:
        deadline_s = self.config.ack_deadlines_s.get(precedence)
        if deadline_s is not None:
            heapq.heappush(self._ack_heap, (start_ns + int(deadline_s * 1e9), message_id, peer))

    def acknowledged(self, message_id: str, peer: str, by: str, now_ns: int) -> None:
        self.clear_alarm("ack-overdue", peer, message_id, f"acknowledged by {by or 'the peer'}", now_ns)

    def acks_due(self, now: float, now_ns: int) -> list[tuple[str, str]]:
        """(message id, peer) whose handling time has run out, at most once a second; the engine
        answers each that still waits for a person with ``ack_overdue``."""
        if now < self._next_ack_check:
            return []
        self._next_ack_check = now + ACK_CHECK_INTERVAL_S
        due = []
        while self._ack_heap and self._ack_heap[0][0] <= now_ns:
            _, message_id, peer = heapq.heappop(self._ack_heap)
            due.append((message_id, peer))
        return due

    def ack_overdue(self, message_id: str, peer: str, *, outgoing: bool, subject: str, now_ns: int) -> None:
        who = "the peer's operator" if outgoing else "an operator here"
        self.raise_alarm(
            "ack-overdue", peer, message_id,
            f"message {message_id} ({subject!r}) was not acknowledged by {who} within its handling time", now_ns,
        )  # fmt: skip

    # -- time -------------------------------------------------------------------------------

    def tick(self, now: float, now_ns: int, paths: Iterable[PathView]) -> None:
        views = list(paths)
        if not self._grace_done and now - self._started >= STARTUP_GRACE_S:
            self._grace_done = True
            for view in views:
                if not view.up:
                    self.path_down(view.peer, view.path, "it has not come up since the terminal started", now_ns)
            for peer in dict.fromkeys(v.peer for v in views):
                if not any(v.up for v in views if v.peer == peer):
                    self.all_paths(peer, up=False, now_ns=now_ns)
        for view in views:
            key = (view.peer, view.path)
            due = self._next_test.setdefault(key, self._started + STARTUP_GRACE_S)
            if now >= due:
                self._next_test[key] = now + self.config.test_interval_s
                self._send_test(view, now, now_ns)
        for test_id, pending in list(self._pending_tests.items()):
            if now >= pending.deadline:
                del self._pending_tests[test_id]
                timeout = self.config.test_timeout_s
                self._test_result(pending.peer, pending.path, now_ns, ok=False,
                                  detail=f"no answer within {timeout:g} s")  # fmt: skip
