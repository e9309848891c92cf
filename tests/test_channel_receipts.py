"""Per-member receipts of channel messages through three engines (fake clock, real journals): each
member's read and acknowledged receipts come back to the author over its own link, a member
acknowledges by the message's id or its carrier's, and a FLASH to the channel stays overdue at its
author until every member it went to has acknowledged it, the alarm naming those still to."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.core.errors import DeliveryError
from hotline.core.model import Attachment, MessageContent, MessageKind, Precedence, uuid7
from hotline.core.wire import unpack
from hotline.desk.channels import channel_document
from hotline.desk.records import DeskRecord, RecordType, sign_record
from test_channels_engine import NAMES, Mesh, started
from test_desk_engine import act
from test_engine import Side

FLASH_S = 600  # the default handling time of a FLASH


def document(side: Side) -> dict[str, Any]:
    assert side.engine is not None
    register, store = side.engine.desk, side.engine.store
    channel = register.channel(register.find_channel("ceasefire"))
    return channel_document(channel, side.name, store.record_carriers("out"), store.record_carriers("in"), {})


def ack(side: Side, message_id: str, by: str = "officer", read: bool = False) -> None:
    assert side.engine is not None
    errors: list[Exception | None] = []
    (side.engine.mark_read if read else side.engine.acknowledge)(message_id, by, errors.append)
    side.settle()
    (error,) = errors
    if error is not None:
        raise error


def overdue(side: Side) -> dict[str, str]:
    """The ack-overdue alarms standing at a side: subject -> detail."""
    assert side.engine is not None
    return {str(a["subject"]): str(a["detail"]) for a in side.engine.alarms() if a["kind"] == "ack-overdue"}


def tick_after(mesh: Mesh, seconds: float) -> None:
    mesh.clock.now += seconds
    for side in mesh.sides.values():
        assert side.engine is not None
        side.engine.tick()
    mesh.settle()


def reconnect(mesh: Mesh) -> None:
    """Fresh links between every pair (the fake clock's long silences cut the old ones)."""
    for x, y in itertools.combinations(NAMES, 2):
        mesh.connect(x, y)
    mesh.deliver_all()


def carrier_at(side: Side, record_id: str) -> str:
    assert side.engine is not None
    carrier = side.engine.store.carrier_of(record_id)
    assert carrier is not None
    return carrier


def test_each_member_s_read_and_acknowledgement_come_back_to_the_author(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path)
    s = started(mesh)
    sent = act(s["washington"], {"act": "channel.message", "channel": "ceasefire", "text": "Hold fire at 06:00.",
                                 "precedence": "immediate"})  # fmt: skip
    mesh.deliver_all()
    (message,) = document(s["washington"])["messages"]
    assert message["delivery"].keys() == {"kyiv", "moscow"}
    assert all(r["state"] == "delivered" and not r["read_at_ns"] for r in message["delivery"].values())
    assert message["unacknowledged_by"] == ["kyiv", "moscow"]

    ack(s["kyiv"], sent.id, "petrenko", read=True)  # the message's own id
    ack(s["moscow"], carrier_at(s["moscow"], sent.id), "ivanov")  # the carrier's id works as well
    mesh.deliver_all()
    (message,) = document(s["washington"])["messages"]
    kyiv, moscow = message["delivery"]["kyiv"], message["delivery"]["moscow"]
    assert kyiv["read_at_ns"] and not kyiv["acknowledged_at_ns"]
    assert moscow["acknowledged_at_ns"] and moscow["acknowledged_by"] == "ivanov" and moscow["read_at_ns"]
    assert message["unacknowledged_by"] == ["kyiv"]
    (at_moscow,) = document(s["moscow"])["messages"]
    assert at_moscow["mine"]["acknowledged_by"] == "ivanov" and "delivery" not in at_moscow

    ack(s["kyiv"], sent.id, "petrenko")
    ack(s["kyiv"], sent.id, "someone else")  # said once: nothing more is sent
    mesh.deliver_all()
    (message,) = document(s["washington"])["messages"]
    assert message["unacknowledged_by"] == [] and message["delivery"]["kyiv"]["acknowledged_by"] == "petrenko"


def test_only_a_member_acknowledges_and_only_what_it_received(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path)
    s = started(mesh)
    sent = act(s["washington"], {"act": "channel.message", "channel": "ceasefire", "text": "ours"})
    assert s["washington"].engine is not None
    created = s["washington"].engine.desk.first(sent.thread)
    mesh.deliver_all()
    for what in (sent.id, created.id):  # the author's own message; a membership record
        with pytest.raises(DeliveryError, match="no received message"):
            ack(s["washington" if what == sent.id else "kyiv"], what)


def test_a_channel_flash_is_overdue_until_every_member_has_acknowledged_it(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path)
    s = started(mesh)
    flash = act(s["washington"], {"act": "channel.message", "channel": "ceasefire", "text": "Launch detected.",
                                  "subject": "Launch", "precedence": "flash"})  # fmt: skip
    mesh.deliver_all()
    tick_after(mesh, FLASH_S - 5)
    assert overdue(s["washington"]) == {}
    tick_after(mesh, 10)
    detail = overdue(s["washington"])[flash.id]
    assert "not acknowledged within its handling time by kyiv, moscow" in detail
    assert {a["peer"] for a in s["washington"].engine.alarms() if a["kind"] == "ack-overdue"} == {"#ceasefire"}  # type: ignore[union-attr]
    # Each member's own record says it has not acknowledged it either (on both sides, as any message).
    assert carrier_at(s["moscow"], flash.id) in overdue(s["moscow"])

    ack(s["moscow"], flash.id, "ivanov")
    reconnect(mesh)
    assert overdue(s["moscow"]) == {}
    detail = overdue(s["washington"])[flash.id]
    assert detail.endswith("by kyiv") and "moscow" not in detail

    s["washington"].crash()  # what is still awaited is found again at the start
    s["washington"].start()
    reconnect(mesh)
    tick_after(mesh, 1)
    assert overdue(s["washington"])[flash.id].endswith("by kyiv")

    ack(s["kyiv"], flash.id, "petrenko")
    reconnect(mesh)
    assert overdue(s["washington"]) == {}
    cleared = s["washington"].journal.execute("SELECT count(*) FROM entries WHERE kind = 'alarm.cleared'").fetchone()
    assert cleared[0] >= 1


def test_an_unacknowledged_channel_flash_is_tracked_again_after_a_restart(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path)
    s = started(mesh)
    flash = act(s["washington"], {"act": "channel.message", "channel": "ceasefire", "text": "now",
                                  "precedence": "flash"})  # fmt: skip
    mesh.deliver_all()
    for name in ("washington", "kyiv"):
        mesh.crash(name)
    mesh.connect_all()
    tick_after(mesh, FLASH_S + 5)
    assert "by kyiv, moscow" in overdue(s["washington"])[flash.id]
    assert carrier_at(s["kyiv"], flash.id) in overdue(s["kyiv"])


def test_a_channel_message_s_files_reach_every_member_as_its_signed_record_names_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mesh = Mesh(tmp_path)
    s = started(mesh)
    files = [("readout.txt", b"The parties agreed."), ("map.bin", bytes(range(256)) * 4)]
    sent = act(s["washington"], {"act": "channel.message", "channel": "ceasefire", "text": "See the files.",
                                 "attachments": [list(f) for f in files]})  # fmt: skip
    mesh.deliver_all()
    named = [[name, hashlib.sha256(data).digest(), len(data)] for name, data in files]
    assert sent.fields["attachments"] == named  # the record, signed once, commits to every file
    for name in ("moscow", "kyiv"):
        side = s[name]
        assert side.engine is not None
        (message,) = document(side)["messages"]
        assert [(a["name"], a["size"]) for a in message["attachments"]] == [("readout.txt", 19), ("map.bin", 1024)]
        carrier = side.engine.store.carrier_of(sent.id)
        assert carrier is not None
        assert side.engine.store.attachment(carrier, 1) == ("map.bin", files[1][1])
    # A message without files is the same record as before files could come along: no such field.
    plain = act(s["washington"], {"act": "channel.message", "channel": "ceasefire", "text": "no files"})
    assert "attachments" not in plain.fields

    # A carrier, from the record's own author, with other files than its signed record names is refused.
    assert s["moscow"].engine is not None
    now = mesh.clock.wall_ns()
    fields = {
        "text": "one file",
        "subject": "",
        "precedence": "routine",
        "lang": "en",
        "seq": 7,
        "seen": {},
        "to": ["kyiv", "washington"],
        "attachments": [["a.txt", hashlib.sha256(b"agreed").digest(), 6]],
    }
    forged = sign_record(s["moscow"].identity, DeskRecord(uuid7(now // 1_000_000, b"f" * 10),
                         RecordType.CHANNEL_MESSAGE, sent.thread, "moscow", "", 50, now, fields))  # fmt: skip
    swapped = MessageContent(id=uuid7(now // 1_000_000, os.urandom(10)), sender="moscow", recipient="kyiv",
                             precedence=Precedence.ROUTINE, lang="zxx", subject="", body="", created_at_ns=now,
                             kind=MessageKind.RECORD, receipt=forged.signed,
                             attachments=(Attachment("a.txt", b"NOT agreed"),))  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="hotline.engine"):
        s["moscow"].engine.submit(swapped, lambda error, created: None)
        s["moscow"].settle()
        mesh.deliver_all()
    assert any("its files are not those its signed record commits to" in r.getMessage() for r in caplog.records)
    assert s["kyiv"].engine is not None and forged.id not in s["kyiv"].engine.desk


ack_script = st.lists(
    st.one_of(
        st.tuples(st.just("ack"), st.sampled_from(("moscow", "kyiv"))),
        st.tuples(st.just("deliver"), st.just("")),
        st.tuples(st.just("cut"), st.sampled_from(("moscow", "kyiv"))),
        st.tuples(st.just("crash"), st.sampled_from(NAMES)),
        st.tuples(st.just("late"), st.just("")),
    ),
    max_size=12,
)


@settings(max_examples=10, deadline=None)
@given(ack_script)
def test_every_member_s_acknowledgement_reaches_the_author_once_and_the_alarm_follows(
    steps: list[tuple[str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mesh = Mesh(Path(tmp))
        s = started(mesh)
        flash = act(s["washington"], {"act": "channel.message", "channel": "ceasefire", "text": "now",
                                      "precedence": "flash"})  # fmt: skip
        mesh.deliver_all()
        acked: set[str] = set()
        late = False
        for kind, who in steps:
            if kind == "ack" and who not in acked:
                ack(s[who], flash.id, f"officer-{who}")
                acked.add(who)
            elif kind == "deliver":
                mesh.deliver(2)
            elif kind == "cut":
                mesh.disconnect("washington", who)
            elif kind == "crash":
                mesh.crash(who)
            elif kind == "late" and not late:
                tick_after(mesh, FLASH_S + 1)
                late = True
        reconnect(mesh)
        tick_after(mesh, 0 if late else FLASH_S + 1)
        reconnect(mesh)
        (message,) = document(s["washington"])["messages"]
        assert {n for n, r in message["delivery"].items() if r["acknowledged_at_ns"]} == acked
        assert all(message["delivery"][n]["acknowledged_by"] == f"officer-{n}" for n in acked)
        waiting = sorted({"moscow", "kyiv"} - acked)
        alarms = overdue(s["washington"])
        if waiting:
            assert alarms[flash.id].endswith("by " + ", ".join(waiting))
        else:
            assert flash.id not in alarms
        bodies = s["washington"].journal.execute("SELECT body FROM entries WHERE kind = 'receipt.received'")
        received = sum(1 for (body,) in bodies if unpack(bytes(body)).get("kind") == "acknowledged")
        assert received == len(acked)  # each member's acknowledgement journaled once
