"""Relay through three engines in memory (fake clock, real journals): washington's link to kyiv is
cut, both reach moscow, and a channel of the three allows relay. washington's whole stream to kyiv
rides moscow as ciphertext it cannot read; a frame altered on the way is refused by kyiv and
reported to moscow; nothing is relayed where no channel allows it; and drops, duplicates and
reorders of relayed frames change nothing about exactly once, in order."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.core.errors import DeskError
from hotline.core.model import Precedence
from hotline.core.protocol import (
    Connection,
    ConnectionClosed,
    HelloReceived,
    RelayedReceived,
    RelayRefused,
    RelayRequested,
)
from hotline.core.relay import choose_via, forward_problem, opens_relay, split_frames, take_relayed
from hotline.core.wire import FrameDecoder, encode_frame, pack, unpack
from hotline.desk.records import RecordType, check_fields
from hotline.engine import relaying
from hotline.storage.audit import verify
from test_channels_engine import Mesh, view
from test_desk_engine import act
from test_engine import Side

A, B, C = "washington", "moscow", "kyiv"
Forward = Callable[[str, str, int, bytes], None]


def cut_mesh(root: Path, *, relay: bool = True) -> Mesh:
    """The three in one channel (relay allowed or not), all joined; then washington-kyiv cut."""
    mesh = Mesh(root)
    s = mesh.sides
    mesh.connect_all()
    act(s[A], {"act": "channel.create", "name": "ceasefire", "members": [B, C], "relay": relay})
    mesh.deliver_all()
    for name in (B, C):
        act(s[name], {"act": "channel.join", "channel": "ceasefire"})
    mesh.deliver_all()
    mesh.disconnect(A, C)
    return mesh


def run(mesh: Mesh, seconds: float) -> None:
    """Let time pass as the terminals' tickers do, 50 ms at a time, moving what is written."""
    end = mesh.clock.now + seconds
    while mesh.clock.now < end - 1e-9:
        mesh.clock.now = min(end, mesh.clock.now + 0.05)
        for side in mesh.sides.values():
            if side.engine is not None:
                side.engine.tick()
        mesh.deliver(100)


def intercept(side: Side, wrap: Callable[[Forward, str, str, int, bytes], None]) -> None:
    """Put ``wrap`` between the relay's decision to pass frames on and their leaving."""
    assert side.engine is not None
    forward = side.engine._forward
    side.engine._forward = lambda sender, to, session, data: wrap(forward, sender, to, session, data)  # type: ignore[method-assign]


def undelivered(side: Side) -> int:
    row = side.journal.execute("SELECT count(*) FROM messages WHERE direction = 'out' AND state != 'delivered'")
    return int(row.fetchone()[0])


def active_path(side: Side, peer: str) -> Any:
    assert side.engine is not None
    return next(p["active_path"] for p in side.engine.status()["peers"] if p["name"] == peer)


def test_a_cut_pair_talks_through_a_third_member_exactly_once_and_it_reads_nothing(tmp_path: Path) -> None:
    mesh = cut_mesh(tmp_path)
    s = mesh.sides
    carried: list[bytes] = []

    def record(forward: Forward, sender: str, to: str, session: int, data: bytes) -> None:
        carried.append(data)
        forward(sender, to, session, data)

    intercept(s[B], record)
    run(mesh, 2.0)  # past the delay before relaying
    assert active_path(s[A], C) == "relay:moscow" and active_path(s[C], A) == "relay:moscow"
    s[A].send(C, 5, Precedence.ROUTINE)
    s[A].settle()
    note = act(s[A], {"act": "channel.message", "channel": "ceasefire", "text": "Convoy at checkpoint 4 at 06:00"})
    run(mesh, 1.0)
    assert s[C].inbox() == s[A].sealed_order() == s[A].accepted  # once each, in order
    assert note.id in [m["id"] for m in view(s[C])["messages"]]
    assert undelivered(s[A]) == 0  # kyiv's receipts came back the same way
    relay = s[B].engine
    assert relay is not None and relay.relayed[(A, C)] > 0 and relay.relayed[(C, A)] > 0
    everything = b"".join(carried)
    assert b"Convoy at checkpoint" not in everything
    for mid in s[A].accepted:
        assert f"{A} {mid}".encode() not in everything  # the bodies Side.send writes
    held_at_b = {r[0] for r in s[B].journal.execute("SELECT id FROM messages")}
    assert not held_at_b & set(s[A].accepted)  # moscow journals none of it as a message
    for side in s.values():
        assert verify(side.journal).ok


def test_nothing_is_relayed_unless_a_channel_allows_it(tmp_path: Path) -> None:
    mesh = cut_mesh(tmp_path, relay=False)
    s = mesh.sides
    run(mesh, 3.0)
    s[A].send(C, 2, Precedence.FLASH)
    s[A].settle()
    run(mesh, 1.0)
    relay = s[B].engine
    assert relay is not None and relay.relayed == {}
    assert active_path(s[A], C) is None and s[C].inbox() == []
    mesh.connect(A, C)  # the direct link back: it all goes then
    mesh.deliver_all()
    assert s[C].inbox() == s[A].accepted


def test_a_relayed_frame_altered_on_the_way_is_refused_and_reported_to_the_relay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relaying, "RELAY_ALARM_HOLD_S", 6.0)  # ten minutes in a real terminal
    mesh = cut_mesh(tmp_path)
    s = mesh.sides
    altered: list[int] = []

    def tamper(forward: Forward, sender: str, to: str, session: int, data: bytes) -> None:
        if not altered and sender == A:
            decoder = FrameDecoder()
            decoder.receive_data(data)
            frames = []
            while (frame := decoder.next_frame()) is not None:
                if frame["t"] == "env" and not altered:
                    envelope = unpack(frame["e"])
                    envelope["s"] = bytes([envelope["s"][0] ^ 1]) + envelope["s"][1:]  # a signature bit flipped
                    frame["e"] = pack(envelope)
                    altered.append(frame["seq"])
                frames.append(encode_frame(frame))
            data = b"".join(frames)
        forward(sender, to, session, data)

    run(mesh, 2.0)
    intercept(s[B], tamper)
    with caplog.at_level(logging.ERROR, logger="hotline.engine"):
        s[A].send(C, 3, Precedence.IMMEDIATE)
        s[A].settle()
        run(mesh, 4.0)  # refused, the relayed link closed, opened again after its retry delay
    assert len(altered) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("a frame of washington relayed by moscow was refused" in m for m in messages), messages
    assert any("RELAY REFUSED" in m for m in messages), messages
    relay = s[B].engine
    assert relay is not None
    alarms = {(a["kind"], a["peer"], a["subject"]) for a in relay.alarms()}
    assert ("relay-refused", C, A) in alarms
    assert s[C].inbox() == s[A].accepted  # sent again untouched, received once
    assert undelivered(s[A]) == 0
    run(mesh, 3.0)  # no further report: the alarm clears, and stays in the record
    assert "relay-refused" not in {a["kind"] for a in relay.alarms()}
    kinds = [e.decoded()["kind"] for e in s[B].journal.entries() if e.kind.startswith("alarm.")]
    assert kinds.count("relay-refused") == 2  # raised once, cleared once
    for side in s.values():
        assert verify(side.journal).ok


faults = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(1, 4)),
        st.tuples(st.just("run"), st.integers(1, 10)),
        st.tuples(st.sampled_from(["drop", "dup", "hold", "release"]), st.integers(1, 3)),
        st.tuples(st.just("crash-kyiv"), st.just(0)),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(faults)
def test_drops_duplicates_and_reorders_of_relayed_frames_change_nothing(script: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mesh = cut_mesh(Path(tmp))
        s = mesh.sides
        pending: list[str] = []  # what happens to the next relayed pieces
        held: list[tuple[str, str, int, bytes]] = []
        forward_now: list[Forward] = []

        def faulty(forward: Forward, sender: str, to: str, session: int, data: bytes) -> None:
            forward_now[:] = [forward]
            fault = pending.pop(0) if pending else "pass"
            if fault == "drop":
                return
            if fault == "hold":
                held.append((sender, to, session, data))
                return
            forward(sender, to, session, data)
            if fault == "dup":
                forward(sender, to, session, data)

        intercept(s[B], faulty)
        run(mesh, 2.0)
        for kind, n in script:
            if kind == "send":
                s[A].send(C, n, Precedence.ROUTINE)
                s[A].settle()
            elif kind == "run":
                run(mesh, n / 10)
            elif kind in ("drop", "dup", "hold"):
                pending += [kind] * n
            elif kind == "release" and held and forward_now:
                for sender, to, session, data in reversed(held):  # late, and in the reverse order
                    forward_now[0](sender, to, session, data)
                held.clear()
                mesh.deliver(100)
            elif kind == "crash-kyiv":
                mesh.crash(C)
                mesh.connect(B, C)
        pending.clear()
        for _ in range(60):
            run(mesh, 1.0)
            if len(s[C].inbox()) == len(s[A].accepted) and undelivered(s[A]) == 0:
                break
        assert s[C].inbox() == s[A].sealed_order() == s[A].accepted
        assert undelivered(s[A]) == 0
        for side in s.values():
            assert verify(side.journal).ok
            side.journal.close()


def test_the_relay_decisions() -> None:
    kw: dict[str, Any] = {"peer": C, "retry_at": {}, "now": 10.0}
    assert choose_via(direct_up=True, live=[B], allowed=[B], **kw) is None
    assert choose_via(direct_up=False, live=[B], allowed=[], **kw) is None
    assert choose_via(direct_up=False, live=["paris", B], allowed=[B, "paris"], **kw) == B  # by name
    assert choose_via(direct_up=False, live=[B], allowed=[B], peer=C, retry_at={B: 11.0}, now=10.0) is None
    assert forward_problem(sender=A, to=C, me=B, linked=[A, C], allowed=[B]) == ""
    assert "no live link" in forward_problem(sender=A, to=C, me=B, linked=[A], allowed=[B])
    assert "allows relay" in forward_problem(sender=A, to=C, me=B, linked=[A, C], allowed=["paris"])
    assert "third terminal" in forward_problem(sender=A, to=A, me=B, linked=[A], allowed=[B])
    assert opens_relay(C, A) and not opens_relay(A, C)  # kyiv < washington: kyiv opens, washington answers
    assert take_relayed(held=7, session=7, opener=False, hello=False) == "feed"
    assert take_relayed(held=7, session=8, opener=False, hello=True) == "replace"  # the opener began anew
    assert take_relayed(held=None, session=8, opener=False, hello=True) == "replace"
    assert take_relayed(held=7, session=8, opener=False, hello=False) == "drop"  # the tail of an old one
    assert take_relayed(held=None, session=8, opener=True, hello=True) == "drop"  # never opened here
    frames = [encode_frame({"t": "ping", "n": n, "pad": b"x" * 100}) for n in range(10)]
    pieces = list(split_frames(b"".join(frames), 350))
    assert b"".join(pieces) == b"".join(frames) and all(len(p) <= 350 for p in pieces) and len(pieces) > 1
    for piece in pieces:  # each piece holds whole frames
        decoder = FrameDecoder()
        decoder.receive_data(piece)
        while decoder.next_frame() is not None:
            pass
        assert decoder.buffered == 0


def test_relay_is_a_flag_of_the_channel_create_record_and_absent_unless_allowed(tmp_path: Path) -> None:
    fields = {"name": "ceasefire", "members": sorted([A, B]), "disclosure": "secret"}
    assert check_fields(RecordType.CHANNEL_CREATE, fields) == fields  # records written before relay still check
    assert check_fields(RecordType.CHANNEL_CREATE, {**fields, "relay": True})["relay"] is True
    with pytest.raises(DeskError, match="'relay' must be true or false"):
        check_fields(RecordType.CHANNEL_CREATE, {**fields, "relay": "yes"})
    mesh = Mesh(tmp_path)
    off = act(mesh.sides[A], {"act": "channel.create", "name": "quiet", "members": [B], "relay": False})
    on = act(mesh.sides[A], {"act": "channel.create", "name": "loud", "members": [B], "relay": True})
    assert "relay" not in off.fields and on.fields["relay"] is True


def test_traffic_moves_back_to_the_direct_link_after_the_hold_down_and_the_relay_is_closed(tmp_path: Path) -> None:
    mesh = cut_mesh(tmp_path)
    s = mesh.sides
    run(mesh, 2.0)
    s[A].send(C, 3, Precedence.ROUTINE)
    s[A].settle()
    run(mesh, 0.5)
    assert active_path(s[A], C) == "relay:moscow" and len(s[C].inbox()) == 3
    mesh.connect(A, C)  # the cable is mended
    run(mesh, 1.0)
    assert active_path(s[A], C) == "relay:moscow"  # a direct path must stay up for the hold-down first
    run(mesh, 5.0)
    for x, y in ((A, C), (C, A)):
        assert active_path(s[x], y) == "primary"
        engine = s[x].engine
        assert engine is not None and set(engine.peers[y].links) == {"primary"}
    s[A].send(C, 2, Precedence.ROUTINE)
    s[A].settle()
    run(mesh, 0.5)
    assert s[C].inbox() == s[A].accepted and undelivered(s[A]) == 0
    relay = s[B].engine
    assert relay is not None
    carried = dict(relay.relayed)
    run(mesh, 1.0)
    assert relay.relayed == carried  # nothing rides moscow any more, not even heartbeats


def test_relay_frames_are_parsed_strictly() -> None:
    conn = Connection(local_name=B, peer_name=A, now=0.0)
    conn.receive_data(encode_frame({"t": "hello", "pv": 1, "name": A, "cursor": 0, "receipt": None}), 0.0)
    assert isinstance(conn.next_event(), HelloReceived)
    conn.receive_data(encode_frame({"t": "relay", "to": C, "s": 5, "f": b"frames"}), 0.1)
    assert conn.next_event() == RelayRequested(to=C, session=5, data=b"frames")
    conn.receive_data(encode_frame({"t": "relayed", "from": C, "s": 6, "f": b"back"}), 0.1)
    assert conn.next_event() == RelayedReceived(sender=C, session=6, data=b"back")
    conn.receive_data(encode_frame({"t": "relay-bad", "from": C, "reason": "bad signature"}), 0.1)
    assert conn.next_event() == RelayRefused(sender=C, reason="bad signature")
    for bad in ({"t": "relay", "to": C, "s": 5, "f": b""}, {"t": "relayed", "from": C, "f": b"x"}):
        broken = Connection(local_name=B, peer_name=A, now=0.0)
        broken.receive_data(encode_frame({"t": "hello", "pv": 1, "name": A, "cursor": 0, "receipt": None}), 0.0)
        broken.next_event()
        broken.receive_data(encode_frame(bad), 0.1)
        closed = broken.next_event()
        assert isinstance(closed, ConnectionClosed) and "protocol error" in closed.reason
