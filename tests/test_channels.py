"""Channels, pure: 3-5 members' acts over pairwise links with cuts, duplicates and reorders.

Each member holds a ``Register``; each ordered pair of members a link that carries signed records
in order (the stream: a cut delays, never loses), which the test may also deliver twice (a replay)
and interleave with every other link in any order. Whatever happens, once the links drain: every
member folds the same membership, members that were in the channel all along show the same
messages in the same causal order, and a removed member's view stops at its removal.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hotline.core.errors import DeskError
from hotline.crypto.identity import Identity
from hotline.desk import acts
from hotline.desk.channels import (
    ChannelMessage,
    admission_problem,
    causal_order,
    channel_view,
    check_causal,
    fanout,
)
from hotline.desk.records import DeskRecord, RecordType, decode_record, open_record
from hotline.desk.register import Register

NAMES = ["ankara", "kyiv", "moscow", "paris", "washington"]
T0 = 1_700_000_000_000_000_000


class Net:
    """Members with registers, and a FIFO link per ordered pair."""

    def __init__(self, n: int) -> None:
        self.names = NAMES[:n]
        self.ids = {name: Identity.generate(name) for name in self.names}
        self.keys = {name: i.public_key for name, i in self.ids.items()}
        self.registers = {name: Register(name) for name in self.names}
        self.links: dict[tuple[str, str], list[bytes]] = {p: [] for p in itertools.permutations(self.names, 2)}
        self.delivered: dict[tuple[str, str], list[bytes]] = {p: [] for p in self.links}
        self.cut: set[frozenset[str]] = set()
        self.now = T0
        self.counter = itertools.count()
        self.sent_after_removal: dict[str, set[str]] = {}  # member -> message ids its authors knew were after

    def rand(self, n: int) -> bytes:
        return next(self.counter).to_bytes(n, "big")

    def act(self, who: str, request: dict[str, Any]) -> DeskRecord | None:
        self.now += 1_000_000
        register = self.registers[who]
        try:
            record = acts.make_record(register, self.ids[who], request, self.now, self.rand,
                                      [n for n in self.names if n != who])  # fmt: skip
        except DeskError:
            return None
        register.add(record)
        for member, records in fanout(register.thread(record.thread), record, who):
            self.links[(who, member)] += [r.signed for r in records]
        if record.type is RecordType.CHANNEL_MESSAGE:
            channel = register.channel(record.thread)
            for gone in channel.gone:
                self.sent_after_removal.setdefault(gone, set()).add(record.id)
        return record

    def receive(self, sender: str, member: str, signed: bytes) -> None:
        claimed = decode_record(signed)
        record = open_record(signed, self.keys[claimed.author])
        assert record.author == sender or record.type.is_membership  # only membership is forwarded
        register = self.registers[member]
        if record.id in register:
            return  # a replay, or history already held
        if not admission_problem(register.thread(record.thread), record, member):
            register.add(record)

    def step(self, src: str, dst: str, replay: bool = False) -> None:
        pair = (src, dst)
        if frozenset(pair) in self.cut:
            return
        if replay and self.delivered[pair]:
            self.receive(src, dst, self.delivered[pair][-1])
            return
        if self.links[pair]:
            signed = self.links[pair].pop(0)
            self.delivered[pair].append(signed)
            self.receive(src, dst, signed)

    def drain(self) -> None:
        self.cut.clear()
        while any(self.links.values()):
            for pair in self.links:
                self.step(*pair)

    def channel_id(self) -> str:
        return self.registers[self.names[0]].find_channel("ceasefire")


def _views(net: Net, channel_id: str) -> dict[str, dict[str, Any]]:
    return {n: channel_view(net.registers[n].channel(channel_id), n) for n in net.names
            if channel_id in net.registers[n]}  # fmt: skip


ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 4), st.integers(0, 4)),
        st.tuples(st.just("deliver"), st.integers(0, 4), st.integers(0, 4)),
        st.tuples(st.just("replay"), st.integers(0, 4), st.integers(0, 4)),
        st.tuples(st.just("cut"), st.integers(0, 4), st.integers(0, 4)),
        st.tuples(st.just("remove"), st.integers(0, 4), st.integers(0, 4)),
        st.tuples(st.just("leave"), st.integers(0, 4), st.integers(0, 4)),
        st.tuples(st.just("add"), st.integers(0, 4), st.integers(0, 4)),
        st.tuples(st.just("join"), st.integers(0, 4), st.integers(0, 4)),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(st.integers(3, 5), ops)
@example(3, [("remove", 0, 1), ("remove", 1, 0), ("leave", 1, 0)])  # removals that cross
def test_every_member_converges_on_one_membership_and_one_causal_order(
    n: int, script: list[tuple[str, int, int]]
) -> None:
    net = Net(n)
    creator = net.names[0]
    net.act(creator, {"act": "channel.create", "name": "ceasefire", "members": net.names[1:]})
    net.drain()
    cid = net.channel_id()
    for name in net.names[1:]:
        assert net.act(name, {"act": "channel.join", "channel": "ceasefire"}) is not None
    net.drain()
    ever_removed: set[str] = set()
    for kind, i, j in script:
        who, other = net.names[i % n], net.names[j % n]
        if kind == "send":
            net.act(who, {"act": "channel.message", "channel": cid, "text": f"{who} says {len(script)}"})
        elif kind == "deliver" and who != other:
            net.step(who, other)
        elif kind == "replay" and who != other:
            net.step(who, other, replay=True)
        elif kind == "cut" and who != other:
            net.cut ^= {frozenset((who, other))}
        elif kind == "remove" and who != other and net.act(who, {"act": "channel.remove", "channel": cid,
                                                                  "member": other}):  # fmt: skip
            ever_removed.add(other)
        elif kind == "leave" and net.act(who, {"act": "channel.leave", "channel": cid}):
            ever_removed.add(who)
        elif kind == "add" and who != other:
            net.act(who, {"act": "channel.add", "channel": cid, "member": other})
        elif kind == "join":
            net.act(who, {"act": "channel.join", "channel": cid})
    net.drain()
    views = _views(net, cid)
    # One membership, one history of it, at every terminal that holds the channel (gone ones too:
    # membership records go to everyone the channel has named).
    memberships = {n: (str(v["members"]), str(v["history"])) for n, v in views.items()}
    assert len(set(memberships.values())) == 1, memberships
    # Members in the channel all along hold the same messages in the same order.
    steady = [n for n in net.names if n not in ever_removed]
    orders = {n: [m["id"] for m in views[n]["messages"]] for n in steady}
    assert len({tuple(o) for o in orders.values()}) <= 1, orders
    for name, view in views.items():
        channel = net.registers[name].channel(cid)
        shown = channel.visible_to(name)
        assert check_causal(shown)
        for message in shown:
            assert message.author == name or name in message.recipients
        if name in channel.cut:  # its view stops at its removal
            assert all(m.record.order < channel.cut[name] for m in shown if m.author != name)
        assert [m["id"] for m in view["messages"]] == [m.record.id for m in shown]
    # Nothing an author sent knowing a member was gone ever reached that member.
    for name, after in net.sent_after_removal.items():
        holds = {r.id for r in net.registers[name].thread(cid) if r.type is RecordType.CHANNEL_MESSAGE}
        assert not holds & after, (name, holds & after)


def _message(author: str, seq: int, seen: dict[str, int]) -> ChannelMessage:
    fields = {"text": "", "subject": "", "precedence": "routine", "lang": "en", "seq": seq, "seen": seen,
              "to": ["x"]}  # fmt: skip
    record = DeskRecord(f"{author}-{seq}", RecordType.CHANNEL_MESSAGE, "t", author, "", 1, 0, fields)
    return ChannelMessage(record, frozenset())


@st.composite
def histories(draw: st.DrawFn) -> list[ChannelMessage]:
    """Messages of 3-5 authors, each written after some prefix of what the others had written."""
    authors = NAMES[: draw(st.integers(3, 5))]
    written: dict[str, int] = dict.fromkeys(authors, 0)
    known: dict[str, dict[str, int]] = {a: {} for a in authors}
    out = []
    for _ in range(draw(st.integers(0, 30))):
        author = draw(st.sampled_from(authors))
        for other in authors:  # it may have heard of more of the others' messages
            if other != author and written[other]:
                seen_upto = draw(st.integers(known[author].get(other, 0), written[other]))
                if seen_upto:
                    known[author][other] = seen_upto
        written[author] += 1
        out.append(_message(author, written[author], dict(known[author])))
    return out


@given(histories(), st.randoms())
def test_the_causal_order_is_one_order_whatever_the_arrival_order(messages: list[ChannelMessage], rnd: Any) -> None:
    ordered = causal_order(messages)
    assert check_causal(ordered)
    assert sorted(m.key for m in ordered) == sorted(m.key for m in messages)
    shuffled = list(messages) + list(messages[: len(messages) // 2])  # duplicates too
    rnd.shuffle(shuffled)
    assert [m.key for m in causal_order(shuffled)] == [m.key for m in ordered]


def test_contradicting_vectors_do_not_stall_the_order() -> None:
    a, b = _message("a", 1, {"b": 1}), _message("b", 1, {"a": 1})
    assert [m.key for m in causal_order([b, a])] == [("a", 1), ("b", 1)]


def test_channel_acts_are_refused_with_reasons() -> None:
    net = Net(3)
    me = net.names[0]

    def refused(who: str, request: dict[str, Any]) -> str:
        with pytest.raises(DeskError) as e:
            acts.make_record(
                net.registers[who], net.ids[who], request, T0, net.rand, [n for n in net.names if n != who]
            )
        return str(e.value)

    assert "not a paired peer" in refused(me, {"act": "channel.create", "name": "x", "members": ["tokyo"]})
    assert "at least one member" in refused(me, {"act": "channel.create", "name": "x", "members": [me]})
    assert "channel name" in refused(me, {"act": "channel.create", "name": "Bad Name", "members": ["kyiv"]})
    net.act(me, {"act": "channel.create", "name": "x", "members": ["kyiv"]})
    assert "already in a channel named #x" in refused(me, {"act": "channel.create", "name": "x", "members": ["kyiv"]})
    assert "no other member" in refused(me, {"act": "channel.message", "channel": "x", "text": "hi"})
    net.drain()
    assert "no channel named" in refused("moscow", {"act": "channel.join", "channel": "x"})
    assert "join it first" in refused("kyiv", {"act": "channel.message", "channel": "x", "text": "hi"})
    net.act("kyiv", {"act": "channel.join", "channel": "x"})
    assert "already joined" in refused("kyiv", {"act": "channel.join", "channel": "x"})
    assert "leaves rather than removes" in refused("kyiv", {"act": "channel.remove", "channel": "x", "member": "kyiv"})
    assert "already a member" in refused(me, {"act": "channel.add", "channel": "x", "member": "kyiv"})
