"""The frame codec: round trips whole and byte by byte, strict refusal of anything odd."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.core.errors import RemoteProtocolError
from hotline.core.wire import MAX_FRAME_BYTES, FrameDecoder, encode_frame, pack, unpack

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=50) | st.binary(max_size=100),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
frames = st.dictionaries(st.text(max_size=10), values, max_size=6).map(lambda d: {**d, "t": "x"})


def decode_all(data: bytes, chunk: int | None = None) -> list[dict[str, object]]:
    decoder = FrameDecoder()
    out = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        decoder.receive_data(piece)
        while (frame := decoder.next_frame()) is not None:
            out.append(frame)
    return out


@given(st.lists(frames, max_size=5))
def test_frames_round_trip_whole_and_byte_by_byte(items: list[dict[str, object]]) -> None:
    data = b"".join(encode_frame(f) for f in items)
    assert decode_all(data) == items
    assert decode_all(data, chunk=1) == items


@given(values)
def test_pack_is_deterministic_and_round_trips(value: object) -> None:
    assert pack(value) == pack(value)
    assert unpack(pack(value)) == value


def test_map_key_order_does_not_change_bytes() -> None:
    assert pack({"a": 1, "b": 2}) == pack({"b": 2, "a": 1})


def test_trailing_garbage_in_a_value_is_refused() -> None:
    with pytest.raises(RemoteProtocolError, match="malformed"):
        unpack(pack({"t": "x"}) + b"\x00")


def test_duplicate_keys_are_refused() -> None:
    # msgpack can encode a map with a repeated key; a signed map must have one meaning.
    raw = b"\x82\xa1a\x01\xa1a\x02"
    with pytest.raises(RemoteProtocolError, match="duplicate"):
        unpack(raw)


def test_extension_types_are_refused() -> None:
    raw = msgpack.packb(msgpack.ExtType(5, b"abc"))
    with pytest.raises(RemoteProtocolError):
        unpack(raw)


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(RemoteProtocolError):
        unpack(msgpack.packb({1: 2}))


def test_oversize_length_is_refused_before_buffering() -> None:
    decoder = FrameDecoder()
    decoder.receive_data((MAX_FRAME_BYTES + 1).to_bytes(4, "big"))
    with pytest.raises(RemoteProtocolError, match="exceeds the cap"):
        decoder.next_frame()


def test_unknown_version_is_refused() -> None:
    frame = bytearray(encode_frame({"t": "ping", "n": 1}))
    frame[4] = 9
    decoder = FrameDecoder()
    decoder.receive_data(bytes(frame))
    with pytest.raises(RemoteProtocolError, match="unknown wire version 9"):
        decoder.next_frame()


def test_truncated_frame_waits_for_more() -> None:
    frame = encode_frame({"t": "ping", "n": 1})
    decoder = FrameDecoder()
    decoder.receive_data(frame[:-1])
    assert decoder.next_frame() is None
    decoder.receive_data(frame[-1:])
    assert decoder.next_frame() == {"t": "ping", "n": 1}


@pytest.mark.parametrize(
    "body, reason",
    [
        (msgpack.packb([1, 2]), "not a map"),
        (msgpack.packb({"n": 1}), "no type field"),
        (b"\xc1", "malformed"),  # 0xc1 is never used in msgpack
        (b"\x92\x01", "malformed"),  # an array that promises 2 items and has 1
    ],
)
def test_bad_bodies_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    decoder = FrameDecoder()
    decoder.receive_data((len(body) + 1).to_bytes(4, "big") + b"\x01" + body)
    with pytest.raises(RemoteProtocolError, match=reason):
        decoder.next_frame()


@given(st.binary(max_size=300))
def test_garbage_never_raises_anything_but_a_protocol_error(data: bytes) -> None:
    decoder = FrameDecoder(max_frame_bytes=1024)
    decoder.receive_data(data)
    try:
        while decoder.next_frame() is not None:
            pass
    except RemoteProtocolError:
        pass
