"""Channels through three engines, each pair linked in memory (fake clock, real journals): one
signed record fanned out over each pairwise link, exactly once through cuts and crashes, the same
causal order at every member, nothing after a removal, and refusals of forged or foreign records."""

from __future__ import annotations

import functools
import itertools
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
from hotline.desk.channels import channel_view
from hotline.desk.records import DeskRecord, RecordType, sign_record
from hotline.engine.pairing import pair
from hotline.engine.peer import Link
from hotline.storage.audit import verify
from hotline.storage.sqlite.journal import Journal
from hotline.storage.sqlite.store import Store
from test_desk_engine import act
from test_engine import FakeClock, Pipe, Side, move_chunks

NAMES = ("kyiv", "moscow", "washington")


class Mesh:
    """Three sides, every pair paired and linked by its own in-memory connection."""

    def __init__(self, root: Path) -> None:
        self.clock = FakeClock()
        self.sides = {name: Side(name, 7401 + i, root, self.clock) for i, name in enumerate(NAMES)}
        for me, other in itertools.permutations(self.sides.values(), 2):
            journal = Journal(me.path, synchronous="NORMAL")
            pair(Store(journal), me.identity, other.card, self.clock.wall_ns())
            journal.close()
        for side in self.sides.values():
            side.start()
        self.links: dict[frozenset[str], tuple[Link, Pipe, Link, Pipe]] = {}

    def connect(self, x: str, y: str) -> None:
        self.disconnect(x, y)
        a, b = self.sides[x], self.sides[y]
        if a.engine is None or b.engine is None:
            return
        pa, pb = Pipe(), Pipe()
        la = a.engine.link_established(y, pa, dialed=True, address="mem", path="primary")
        lb = b.engine.link_established(x, pb, dialed=False, address="mem", path="primary")
        assert la is not None and lb is not None
        self.links[frozenset((x, y))] = (la, pa, lb, pb)

    def connect_all(self) -> None:
        for x, y in itertools.combinations(NAMES, 2):
            if frozenset((x, y)) not in self.links:
                self.connect(x, y)

    def disconnect(self, x: str, y: str) -> None:
        found = self.links.pop(frozenset((x, y)), None)
        if found is None:
            return
        la, pa, lb, pb = found
        pa.closed = pb.closed = True
        # Each link names the peer at its far end: la is held by the side lb leads to (x and y may
        # be given in either order).
        for side, link in ((self.sides[lb.peer], la), (self.sides[la.peer], lb)):
            if side.engine is not None:
                side.engine.connection_lost(link, "test: connection dropped")
        self.settle()

    def crash(self, name: str) -> None:
        for other in NAMES:
            if other != name:
                self.disconnect(name, other)
        self.sides[name].crash()
        self.sides[name].start()

    def settle(self) -> None:
        for _ in range(3):
            for side in self.sides.values():
                side.settle()

    def deliver(self, max_chunks: int) -> bool:
        moved = False
        for key, (la, pa, lb, pb) in list(self.links.items()):
            x, y = la.peer, lb.peer  # each link names the peer at its far end
            linked = functools.partial(self.links.__contains__, key)  # a delivery may cut it
            moved |= move_chunks(pa, self.sides[x], lb, max_chunks, linked)
            moved |= move_chunks(pb, self.sides[y], la, max_chunks, linked)
        self.settle()
        return moved

    def deliver_all(self) -> None:
        while self.deliver(100):
            pass


def view(side: Side, channel: str = "ceasefire") -> dict[str, Any]:
    assert side.engine is not None
    register = side.engine.desk
    return channel_view(register.channel(register.find_channel(channel)), side.name)


def started(mesh: Mesh) -> dict[str, Side]:
    s = mesh.sides
    mesh.connect_all()
    act(s["washington"], {"act": "channel.create", "name": "ceasefire", "members": ["moscow", "kyiv"]})
    mesh.deliver_all()
    for name in ("moscow", "kyiv"):
        act(s[name], {"act": "channel.join", "channel": "ceasefire"})
    mesh.deliver_all()
    return s


script = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from(NAMES), st.just("")),
        st.tuples(st.just("deliver"), st.just(""), st.just("")),
        st.tuples(st.just("cut"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
        st.tuples(st.just("crash"), st.sampled_from(NAMES), st.just("")),
    ),
    max_size=15,
)


@settings(max_examples=8, deadline=None)
@given(script)
def test_three_members_hold_every_message_once_in_one_causal_order(steps: list[tuple[str, str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mesh = Mesh(Path(tmp))
        s = started(mesh)
        sent: list[str] = []
        for kind, x, y in steps:
            if kind == "send":
                sent.append(act(s[x], {"act": "channel.message", "channel": "ceasefire", "text": f"from {x}"}).id)
            elif kind == "deliver":
                mesh.deliver(2)
            elif kind == "cut" and x != y:
                mesh.disconnect(x, y)
            elif kind == "crash":
                mesh.crash(x)
        mesh.connect_all()
        mesh.deliver_all()
        orders = {name: [m["id"] for m in view(side)["messages"]] for name, side in s.items()}
        assert sorted(orders["kyiv"]) == sorted(sent)
        assert orders["kyiv"] == orders["moscow"] == orders["washington"]
        for side in s.values():
            ids = side.journal.execute("SELECT count(*), count(DISTINCT id) FROM desk_records").fetchone()
            assert ids[0] == ids[1]
            assert verify(side.journal).ok


def test_a_removed_member_receives_nothing_after_its_removal_and_carriers_are_tracked_per_member(
    tmp_path: Path,
) -> None:
    mesh = Mesh(tmp_path)
    s = started(mesh)
    first = act(s["moscow"], {"act": "channel.message", "channel": "ceasefire", "text": "before"})
    mesh.deliver_all()
    act(s["washington"], {"act": "channel.remove", "channel": "ceasefire", "member": "kyiv"})
    mesh.deliver_all()
    after = act(s["moscow"], {"act": "channel.message", "channel": "ceasefire", "text": "after"})
    mesh.deliver_all()
    assert [m["id"] for m in view(s["washington"])["messages"]] == [first.id, after.id]
    assert [m["id"] for m in view(s["kyiv"])["messages"]] == [first.id]
    assert view(s["kyiv"])["state"] == "removed"
    held = [r[0] for r in s["kyiv"].journal.execute("SELECT id FROM desk_records")]
    assert after.id not in held
    assert s["moscow"].engine is not None
    carriers = {
        (r["peer"], r["state"]) for r in s["moscow"].engine.store.record_carriers() if r["signed"] == after.signed
    }
    assert carriers == {("washington", "delivered")}
    store = s["moscow"].engine.store
    assert store.record_carriers("out", after.signed) == [
        r for r in store.record_carriers() if r["signed"] == after.signed
    ]
    with pytest.raises(DeskError, match="not a joined member"):
        act(s["kyiv"], {"act": "channel.message", "channel": "ceasefire", "text": "still here?"})


def test_a_member_added_later_gets_the_history_and_only_what_follows_its_joining(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path)
    s = mesh.sides
    mesh.connect_all()
    act(s["washington"], {"act": "channel.create", "name": "ceasefire", "members": ["moscow"]})
    mesh.deliver_all()
    act(s["moscow"], {"act": "channel.join", "channel": "ceasefire"})
    mesh.deliver_all()
    early = act(s["washington"], {"act": "channel.message", "channel": "ceasefire", "text": "early"})
    act(s["moscow"], {"act": "channel.add", "channel": "ceasefire", "member": "kyiv"})
    mesh.deliver_all()
    assert view(s["kyiv"])["state"] == "invited"
    mesh.disconnect("kyiv", "washington")  # kyiv's join reaches washington only later
    act(s["kyiv"], {"act": "channel.join", "channel": "ceasefire"})
    mesh.deliver_all()
    later = act(s["moscow"], {"act": "channel.message", "channel": "ceasefire", "text": "later"})
    mesh.connect_all()
    mesh.deliver_all()
    assert [m["id"] for m in view(s["kyiv"])["messages"]] == [later.id]
    assert [m["id"] for m in view(s["washington"])["messages"]] == [early.id, later.id]
    assert view(s["washington"])["members"] == view(s["kyiv"])["members"] == view(s["moscow"])["members"]


def _carry(side: Side, signed: bytes, to: str) -> None:
    assert side.engine is not None
    now = side.clock.wall_ns()
    content = MessageContent(id=uuid7(now // 1_000_000, os.urandom(10)), sender=side.name, recipient=to,
                             precedence=Precedence.ROUTINE, lang="zxx", subject="", body="", created_at_ns=now,
                             kind=MessageKind.RECORD, receipt=signed)  # fmt: skip
    side.engine.submit(content, lambda error, created: None)
    side.settle()


def test_a_channel_record_signed_by_the_wrong_key_or_by_a_non_member_never_enters_the_register(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mesh = Mesh(tmp_path)
    s = mesh.sides
    mesh.connect_all()
    create = act(s["washington"], {"act": "channel.create", "name": "ceasefire", "members": ["moscow"]})
    mesh.deliver_all()
    act(s["moscow"], {"act": "channel.join", "channel": "ceasefire"})
    mesh.deliver_all()
    now = s["kyiv"].clock.wall_ns()
    fields = {"text": "x", "subject": "", "precedence": "routine", "lang": "en", "seq": 1, "seen": {},
              "to": ["moscow", "washington"]}  # fmt: skip
    outsider = sign_record(s["kyiv"].identity, DeskRecord(uuid7(now // 1_000_000, b"k" * 10),
                           RecordType.CHANNEL_MESSAGE, create.id, "kyiv", "", 9, now, fields))  # fmt: skip
    impostor = sign_record(Identity.generate("moscow"), DeskRecord(uuid7(now // 1_000_000, b"m" * 10),
                           RecordType.CHANNEL_MESSAGE, create.id, "moscow", "", 9, now, fields))  # fmt: skip
    relayed = sign_record(s["moscow"].identity, DeskRecord(uuid7(now // 1_000_000, b"r" * 10),
                          RecordType.CHANNEL_MESSAGE, create.id, "moscow", "", 9, now, fields))  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="hotline.engine"):
        _carry(s["kyiv"], outsider.signed, "washington")
        _carry(s["moscow"], impostor.signed, "washington")
        _carry(s["kyiv"], relayed.signed, "washington")
        mesh.deliver_all()
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 3, refusals
    for reason in ("kyiv is not a member of #ceasefire", "does not verify", "came from kyiv, not its author"):
        assert sum(reason in text for text in refusals) == 1, (reason, refusals)
    assert view(s["washington"])["messages"] == []
    assert s["washington"].engine is not None
    assert not {outsider.id, impostor.id, relayed.id} & {r.id for r in s["washington"].engine.desk.thread(create.id)}
    assert verify(s["washington"].journal).ok
