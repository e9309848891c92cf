"""The desk through two engines back to back (in memory, fake clock): exactly once through drops and
crashes, the same register on both sides, refusals of bad records, and deadline alarms."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.core.errors import DeskError
from hotline.core.model import MessageContent, MessageKind, Precedence, uuid7
from hotline.crypto.identity import Identity
from hotline.desk import acts
from hotline.desk.records import DeskRecord, RecordType, sign_record
from hotline.desk.register import call_view, commitment_view
from hotline.storage.audit import verify
from test_engine import Side, World

SECOND_NS = 1_000_000_000


def act(side: Side, request: dict[str, Any]) -> DeskRecord:
    """Take an act at one side's engine and return its record once committed; DeskError if refused."""
    assert side.engine is not None
    result: list[tuple[Exception | None, DeskRecord | None]] = []
    side.engine.submit_desk(request, lambda error, record: result.append((error, record)))
    side.settle()
    ((error, record),) = result
    if error is not None:
        raise error
    assert record is not None
    return record


def views(side: Side) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    assert side.engine is not None
    now = side.clock.wall_ns()
    register = side.engine.desk
    return [call_view(c, now) for c in register.calls()], [commitment_view(c, now) for c in register.commitments()]


desk_script = st.lists(
    st.one_of(
        st.tuples(st.just("propose"), st.sampled_from("ab")),
        st.tuples(st.just("answer"), st.sampled_from("ab")),
        st.tuples(st.just("commit"), st.sampled_from("ab")),
        st.tuples(st.just("agree"), st.sampled_from("ab")),
        st.tuples(st.just("deliver"), st.just("a")),
        st.tuples(st.just("drop"), st.just("a")),
        st.tuples(st.just("connect"), st.just("a")),
        st.tuples(st.just("crash"), st.sampled_from("ab")),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(desk_script)
def test_desk_records_arrive_exactly_once_and_both_sides_hold_the_same_register(
    script: list[tuple[str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        w.connect()
        for kind, who in script:
            side, other = (w.a, "moscow") if who == "a" else (w.b, "washington")
            assert side.engine is not None
            try:
                if kind == "propose":
                    act(side, {"act": "call.propose", "to": other, "subject": f"call by {side.name}"})
                elif kind == "commit":
                    act(side, {"act": "commitment.propose", "to": other, "title": f"promise by {side.name}"})
                elif kind in ("answer", "agree"):
                    register = side.engine.desk
                    threads = register.calls() if kind == "answer" else register.commitments()
                    if threads:
                        name = "call.accept" if kind == "answer" else "commitment.agree"
                        act(side, {"act": name, "id": threads[-1].id})
            except DeskError:
                pass  # refused before anything was journaled: what the state machine says
            if kind == "deliver":
                w.deliver(2)
            elif kind == "drop":
                w.disconnect()
            elif kind == "connect":
                w.connect()
            elif kind == "crash":
                w.crash(side)
        w.connect()
        w.deliver_all()
        w.tick(3)
        w.deliver_all()
        assert views(w.a) == views(w.b)
        for side in (w.a, w.b):
            records = side.journal.execute("SELECT count(*), count(DISTINCT id) FROM desk_records").fetchone()
            assert records[0] == records[1]
            assert verify(side.journal).ok


def _carry(side: Side, signed: bytes, to: str) -> None:
    """Send arbitrary signed bytes as a desk record item, as a faulty or hostile peer would."""
    assert side.engine is not None
    now = side.clock.wall_ns()
    content = MessageContent(id=uuid7(now // 1_000_000, os.urandom(10)), sender=side.name,
                             recipient=to, precedence=Precedence.ROUTINE, lang="zxx", subject="", body="",
                             created_at_ns=now, kind=MessageKind.RECORD, receipt=signed)  # fmt: skip
    side.engine.submit(content, lambda error, created: None)
    side.settle()


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.connect()
    return w


def test_a_record_signed_by_another_key_replayed_or_about_an_unknown_call_never_enters_the_desk(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = world.a, world.b
    assert a.engine is not None and b.engine is not None
    proposal = act(b, {"act": "call.propose", "to": "washington", "subject": "genuine"})
    world.deliver_all()
    assert proposal.id in a.engine.desk
    now = b.clock.wall_ns()
    impostor = Identity.generate("moscow")  # the right name, the wrong key
    forged = sign_record(impostor, DeskRecord(uuid7(now // 1_000_000, b"f" * 10), RecordType.CALL_PROPOSE,
                                              uuid7(now // 1_000_000, b"f" * 10), "moscow", "washington", 1, now,
                                              proposal.fields))  # fmt: skip
    unknown_thread = sign_record(b.identity, DeskRecord(uuid7(now // 1_000_000, b"u" * 10), RecordType.CALL_ACCEPT,
                                                        uuid7(now // 1_000_000, b"x" * 10), "moscow", "washington", 2,
                                                        now, {"at": 0}))  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="hotline.engine"):
        for signed in (forged.signed, proposal.signed, unknown_thread.signed, b"\x81\xa1b\xc4\x00"):
            _carry(b, signed, "washington")
            world.deliver_all()
    refusals = [r.getMessage() for r in caplog.records if "desk record" in r.getMessage()]
    assert len(refusals) == 4, refusals
    assert "does not verify" in refusals[0]
    assert "already received" in refusals[1]
    assert "does not hold" in refusals[2]
    assert "not a signed map" in refusals[3] or "malformed" in refusals[3]
    held = [r[0] for r in a.journal.execute("SELECT id FROM desk_records").fetchall()]
    assert held == [proposal.id]
    assert [c.id for c in a.engine.desk.calls()] == [proposal.id]
    assert verify(a.journal).ok  # the stream stays whole: the carriers are journaled, the records refused


def test_an_overdue_commitment_raises_one_reminder_then_one_overdue_alarm_on_each_side(world: World) -> None:
    a, b = world.a, world.b
    assert a.engine is not None and b.engine is not None
    due = a.clock.wall_ns() + 30 * SECOND_NS
    record = act(a, {"act": "commitment.propose", "to": "moscow", "title": "Advisers meet", "due": due})
    world.deliver_all()
    act(b, {"act": "commitment.agree", "id": record.id})
    world.deliver_all()

    def desk_alarms(side: Side) -> list[tuple[str, str]]:
        assert side.engine is not None
        return [(str(x["kind"]), str(x["subject"])) for x in side.engine.alarms()
                if str(x["kind"]).startswith("commitment")]  # fmt: skip

    world.tick(2)
    assert desk_alarms(a) == desk_alarms(b) == [("commitment-due-soon", record.id)]
    world.tick(30)
    assert desk_alarms(a) == desk_alarms(b) == [("commitment-overdue", record.id)]
    world.tick(5)
    for side in (a, b):
        raised = [e.decoded() for e in side.journal.entries() if e.kind == "alarm.raised"]
        assert [x["kind"] for x in raised if x["kind"].startswith("commitment")] == [
            "commitment-due-soon", "commitment-overdue",
        ]  # fmt: skip
    world.connect()  # the ticks above passed without traffic: the line went down meanwhile
    act(b, {"act": "commitment.status", "id": record.id, "status": "fulfilled", "reason": "met in Riyadh"})
    world.deliver_all()
    world.tick(2)
    assert desk_alarms(a) == desk_alarms(b) == []


def test_acts_are_refused_with_a_reason_and_nothing_journaled(world: World) -> None:
    a = world.a
    assert a.engine is not None
    before = a.journal.entry_count()
    for request, words in (
        ({"act": "call.propose", "to": "paris", "subject": "x"}, "no peer named 'paris'"),
        ({"act": "call.propose", "to": "moscow", "subject": ""}, "must not be empty"),
        ({"act": "call.accept", "id": "0190f2a0-0000-7000-8000-000000000000"}, "no call or commitment"),
        ({"act": "call.propose", "to": "moscow", "subject": "x", "every": "FREQ=WEEKLY"}, "needs its first time"),
        (
            {"act": "call.propose", "to": "moscow", "subject": "x", "every": "FREQ=SOMETIMES", "at": 10**18},
            "invalid recurrence",
        ),
        ({"act": "launch"}, "unknown desk act"),
    ):
        with pytest.raises(DeskError, match=words):
            act(a, request)
    assert a.journal.entry_count() == before
    assert acts.ACTS  # the table the refusals name


def test_a_recurrence_finer_than_daily_is_refused_so_listing_the_next_time_stays_quick(world: World) -> None:
    for freq in ("SECONDLY", "MINUTELY", "HOURLY"):
        with pytest.raises(DeskError, match="at most daily"):
            act(world.a, {"act": "call.propose", "to": "moscow", "subject": "x", "every": f"FREQ={freq}",
                          "at": 10**18})  # fmt: skip
    record = act(world.a, {"act": "call.propose", "to": "moscow", "subject": "weekly", "every": "FREQ=WEEKLY",
                           "at": 10**18})  # fmt: skip
    assert world.a.engine is not None
    now = world.a.clock.wall_ns()
    following = world.a.engine.desk.call(record.id).next_occurrence_ns(now)
    week = 7 * 86400 * 10**9
    assert now < following <= now + week and (following - 10**18) % week == 0  # weekly from the first time
