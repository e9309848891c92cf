"""The link protocol state machine, two instances back to back with a fake clock."""

from __future__ import annotations

import pytest

from hotline.core.protocol import (
    Connection,
    ConnectionClosed,
    EnvelopeReceived,
    Event,
    HelloReceived,
    LargeFrameReceived,
    ReceiptReceived,
    RecordInDoubt,
    ResumeRequested,
    State,
    grace_for,
)
from hotline.core.wire import encode_frame


def pair(now: float = 0.0) -> tuple[Connection, Connection]:
    a = Connection(local_name="washington", peer_name="moscow", now=now)
    b = Connection(local_name="moscow", peer_name="washington", now=now)
    return a, b


def shuttle(src: Connection, dst: Connection, now: float = 0.0) -> list[Event]:
    dst.receive_data(src.data_to_send(), now)
    events = []
    while (e := dst.next_event()) is not None:
        events.append(e)
    return events


def open_pair() -> tuple[Connection, Connection]:
    a, b = pair()
    a.send_hello(0, None)
    b.send_hello(3, b"receipt")
    assert shuttle(a, b) == [HelloReceived("washington", 0, None)]
    assert shuttle(b, a) == [HelloReceived("moscow", 3, b"receipt")]
    return a, b


def test_hello_then_frames_round_trip() -> None:
    a, b = open_pair()
    a.send_envelope(1, b"env-1")
    a.send_receipt(b"rcpt")
    a.send_resume(7)
    assert shuttle(a, b) == [
        EnvelopeReceived(1, b"env-1"),
        ReceiptReceived(b"rcpt"),
        ResumeRequested(7),
    ]
    assert a.state is State.OPEN and b.state is State.OPEN


def test_frames_split_byte_by_byte_arrive_whole() -> None:
    a, b = open_pair()
    a.send_envelope(1, b"x" * 100)
    data = a.data_to_send()
    for i in range(len(data)):
        b.receive_data(data[i : i + 1], 0.0)
    assert b.next_event() == EnvelopeReceived(1, b"x" * 100)


def test_cannot_send_envelope_before_hello() -> None:
    a, _ = pair()
    with pytest.raises(Exception, match="before the peer's hello"):
        a.send_envelope(1, b"x")


@pytest.mark.parametrize(
    "frame, reason",
    [
        ({"t": "env", "seq": 1, "e": b"x"}, "unexpected 'env' frame in state await-hello"),
        (
            {"t": "hello", "pv": 99, "name": "washington", "cursor": 0, "receipt": None},
            "protocol version 99",
        ),
        (
            {"t": "hello", "pv": 1, "name": "beijing", "cursor": 0, "receipt": None},
            "introduced itself as 'beijing'",
        ),
        (
            {"t": "hello", "pv": 1, "name": "washington", "cursor": -1, "receipt": None},
            "non-negative integer",
        ),
        ({"t": "hello", "pv": 1, "name": "washington", "cursor": 0, "receipt": 5}, "bytes or nil"),
        ({"t": "nonsense"}, "unexpected 'nonsense'"),
    ],
)
def test_bad_frames_close_with_a_reason(frame: dict[str, object], reason: str) -> None:
    _, b = pair()
    b.receive_data(encode_frame(frame), 0.0)
    event = b.next_event()
    assert isinstance(event, ConnectionClosed) and event.by_peer
    assert reason in event.reason
    assert b.state is State.CLOSED
    assert b"protocol error" in b.data_to_send()  # the peer is told why


def test_garbage_closes_the_connection_without_raising() -> None:
    _, b = pair()
    b.receive_data(b"\xff\xff\xff\xffgarbage", 0.0)
    event = b.next_event()
    assert isinstance(event, ConnectionClosed) and "exceeds the cap" in event.reason


def test_a_second_hello_is_refused() -> None:
    a, b = open_pair()
    a._emit({"t": "hello", "pv": 1, "name": "washington", "cursor": 0, "receipt": None})
    events = shuttle(a, b)
    assert isinstance(events[-1], ConnectionClosed) and "unexpected 'hello'" in events[-1].reason


def test_nothing_is_processed_after_close() -> None:
    a, b = open_pair()
    a.send_envelope(1, b"x")
    data = a.data_to_send() + b"\x00\x00\x00\x02\x09\x00" + encode_frame({"t": "env", "seq": 2, "e": b"y"})
    b.receive_data(data, 0.0)
    events = [b.next_event(), b.next_event(), b.next_event()]
    assert events[0] == EnvelopeReceived(1, b"x")
    assert isinstance(events[1], ConnectionClosed)
    assert events[2] is None


def test_heartbeats_measure_rtt_and_silence_closes() -> None:
    a, b = open_pair()
    assert a.get_timer() == pytest.approx(0.2)
    a.handle_timer(0.2)  # ping
    shuttle(a, b, now=0.25)  # b answers pong
    shuttle(b, a, now=0.26)
    assert a.last_rtt == pytest.approx(0.06)
    # b goes silent: a declares the link dead after 3 intervals without anything received.
    a.handle_timer(0.4)
    a.handle_timer(0.6)
    assert a.state is State.OPEN
    a.handle_timer(0.87)
    event = a.next_event()
    assert isinstance(event, ConnectionClosed) and "no heartbeat from moscow" in event.reason
    assert a.get_timer() is None


def test_orderly_bye() -> None:
    a, b = open_pair()
    a.close("terminal shutting down")
    assert isinstance(a.next_event(), ConnectionClosed)
    events = shuttle(a, b)
    assert isinstance(events[0], ConnectionClosed) and "terminal shutting down" in events[0].reason


def test_a_peer_that_announces_a_grace_is_not_declared_dead_within_it() -> None:
    """A terminal about to seal or open a 16 MiB message says so first; the line stays up."""
    a, b = open_pair()
    b.announce_busy(2.0)
    shuttle(b, a, now=0.1)
    for t in (0.5, 1.0, 1.5, 2.0, 2.6):  # b silent far past three 200 ms intervals
        a.handle_timer(t)
        assert a.state is State.OPEN, t
    assert a.get_timer() == pytest.approx(2.7)  # the grace ends at 2.1; then three intervals
    a.handle_timer(2.75)
    event = a.next_event()
    assert isinstance(event, ConnectionClosed) and "no heartbeat from moscow" in event.reason


@pytest.mark.parametrize(("grace", "reason"), [(5001, "exceeds 5000 ms"), ("long", "'grace'"), (-1, "'grace'")])
def test_a_grace_past_the_cap_or_not_a_number_is_refused(grace: object, reason: str) -> None:
    a, _ = open_pair()
    a.receive_data(encode_frame({"t": "ping", "n": 1, "grace": grace}), 0.1)
    event = a.next_event()
    assert isinstance(event, ConnectionClosed) and reason in event.reason, event


def test_a_large_frame_is_flagged_before_it_is_handled_and_its_grace_pong_is_not_timed() -> None:
    a, b = open_pair()
    a.send_envelope(1, b"x" * (8 * 1024 * 1024))
    a.send_envelope(2, b"small")
    data = a.data_to_send()
    for i in range(0, len(data), 65536):
        b.receive_data(data[i : i + 65536], 0.1)
    events = []
    while (e := b.next_event()) is not None:
        events.append(e)
    assert [type(e).__name__ for e in events] == ["LargeFrameReceived", "EnvelopeReceived", "EnvelopeReceived"]
    assert isinstance(events[0], LargeFrameReceived) and events[0].size > 8 * 1024 * 1024
    # The engine then warns the peer (announce_busy on every link); the pong that answers is not
    # taken as a round trip: it would measure the stall, not the path.
    b.announce_busy(grace_for(events[0].size))
    shuttle(b, a, now=0.1)
    shuttle(a, b, now=1.2)
    assert b.last_rtt is None
    for t in (0.6, 1.0, 1.9):  # a waits 0.5 s + 0.1 s a MiB, then three beats
        a.handle_timer(t)
        assert a.state is State.OPEN, t
    a.handle_timer(2.05)
    assert a.state is State.CLOSED


def test_a_terminal_whose_journal_failed_its_check_says_so_right_after_its_hello() -> None:
    a, b = pair()
    a.send_hello(0, None)
    a.send_doubt("entry 42 (message.received): hash does not match its contents")
    b.send_hello(0, None)
    assert shuttle(a, b) == [
        HelloReceived("washington", 0, None),
        RecordInDoubt("entry 42 (message.received): hash does not match its contents"),
    ]
    assert b.state is State.OPEN


def test_a_doubt_before_the_hello_or_without_text_is_a_protocol_error() -> None:
    _, b = pair()
    b.receive_data(encode_frame({"t": "doubt", "text": "x"}), 0.0)
    closed = b.next_event()
    assert isinstance(closed, ConnectionClosed) and "unexpected 'doubt' frame" in closed.reason
    _, b = open_pair()
    b.receive_data(encode_frame({"t": "doubt", "text": 7}), 0.0)
    closed = b.next_event()
    assert isinstance(closed, ConnectionClosed) and "'text' must be text" in closed.reason
