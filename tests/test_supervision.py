"""The supervisor alone: a pure state machine fed views of the paths and the time."""

from __future__ import annotations

from hotline.core.alarms import AlarmChange
from hotline.core.supervision import (
    STARTUP_GRACE_S,
    TEST_PASSAGES,
    PathTested,
    PathView,
    Readiness,
    SendTest,
    SupervisionConfig,
    Supervisor,
)

NS = 1_000_000_000


def _supervisor() -> Supervisor:
    counter = iter(range(1, 1_000_000))
    return Supervisor(
        SupervisionConfig(test_interval_s=60.0, test_timeout_s=5.0, ack_deadlines_s={"flash": 600.0}),
        now=0.0,
        randbytes=lambda n: next(counter).to_bytes(n, "big"),
    )


def _open(up: bool = True) -> list[PathView]:
    return [PathView("moscow", "primary", up, Readiness.OPEN if up else Readiness.DOWN)]


def test_a_path_is_tested_after_the_start_up_grace_and_an_answer_clears_nothing_to_clear() -> None:
    sup = _supervisor()
    sup.tick(1.0, 1 * NS, _open())
    assert sup.take_actions() == [], "no test before the grace has passed"
    sup.tick(STARTUP_GRACE_S, int(STARTUP_GRACE_S * NS), _open())
    [send] = sup.take_actions()
    assert isinstance(send, SendTest) and send.text == TEST_PASSAGES[0]
    sup.test_answered("moscow", "primary", send.test_id, send.text, STARTUP_GRACE_S + 0.25, 11 * NS)
    [result] = sup.take_actions()
    assert isinstance(result, PathTested) and result.ok and result.rtt_ms == 250.0
    assert sup.board.listing() == []


def test_an_unanswered_test_fails_by_its_deadline_and_the_next_good_one_clears_the_alarm() -> None:
    sup = _supervisor()
    sup.path_up("moscow", "primary", 0)
    sup.tick(0.1, 0, _open())
    [first] = sup.take_actions()
    assert isinstance(first, SendTest)
    sup.tick(5.2, 5 * NS, _open())
    result, alarm = sup.take_actions()
    assert isinstance(result, PathTested) and not result.ok and "no answer within 5 s" in result.detail
    assert isinstance(alarm, AlarmChange) and alarm.raised and alarm.alarm.kind == "test-failed"
    sup.tick(61.0, 61 * NS, _open())
    [second] = sup.take_actions()
    assert isinstance(second, SendTest) and second.text == TEST_PASSAGES[1]
    sup.test_answered("moscow", "primary", second.test_id, "GARBLED", 61.1, 61 * NS)
    [garbled] = sup.take_actions()  # the alarm is already up: raised once
    assert isinstance(garbled, PathTested) and not garbled.ok and "garbled" in garbled.detail
    sup.tick(122.0, 122 * NS, _open())
    [third] = sup.take_actions()
    assert isinstance(third, SendTest)
    sup.test_answered("moscow", "primary", third.test_id, third.text, 122.1, 122 * NS)
    ok, cleared = sup.take_actions()
    assert isinstance(ok, PathTested) and ok.ok
    assert isinstance(cleared, AlarmChange) and not cleared.raised
    assert sup.board.listing() == []


def test_a_path_down_at_its_test_time_fails_at_once_and_a_connecting_one_waits() -> None:
    sup = _supervisor()
    sup.path_up("moscow", "primary", 0)
    sup.tick(0.1, 0, [PathView("moscow", "primary", False, Readiness.CONNECTING)])
    assert sup.take_actions() == [], "a connection still saying hello is not a failure"
    sup.tick(1.2, NS, [PathView("moscow", "primary", False, Readiness.DOWN)])
    result, alarm = sup.take_actions()
    assert isinstance(result, PathTested) and not result.ok and "could not be sent" in result.detail
    assert isinstance(alarm, AlarmChange) and alarm.alarm.kind == "test-failed"


def test_paths_that_never_came_up_are_reported_once_after_the_grace() -> None:
    sup = _supervisor()
    sup.tick(STARTUP_GRACE_S + 0.1, 11 * NS, _open(up=False))
    kinds = [a.alarm.kind for a in sup.take_actions() if isinstance(a, AlarmChange)]
    assert kinds.count("path-down") == 1 and kinds.count("all-paths-down") == 1
    sup.tick(STARTUP_GRACE_S + 0.2, 11 * NS, _open(up=False))
    assert not [a for a in sup.take_actions() if isinstance(a, AlarmChange)], "raised once, not every tick"


def test_an_overdue_acknowledgement_is_due_once_its_handling_time_passes() -> None:
    sup = _supervisor()
    sup.track_ack("m1", "moscow", "flash", start_ns=0)
    sup.track_ack("m2", "moscow", "routine", start_ns=0)  # no deadline configured for routine here
    assert sup.acks_due(1.0, 599 * NS) == []
    assert sup.acks_due(2.5, 601 * NS) == [("m1", "moscow")]
    assert sup.acks_due(4.0, 10_000 * NS) == [], "handed out once"
    sup.ack_overdue("m1", "moscow", outgoing=True, subject="hello", now_ns=601 * NS)
    [alarm] = sup.take_actions()
    assert isinstance(alarm, AlarmChange) and "the peer's operator" in alarm.alarm.detail
    sup.acknowledged("m1", "moscow", "ivan", 700 * NS)
    [cleared] = sup.take_actions()
    assert isinstance(cleared, AlarmChange) and not cleared.raised
