"""Frame codec: length prefix, version byte, strict msgpack body.

A frame on the link (and on the local control socket) is::

    +-----------------+---------+------------------------------+
    | length: u32 BE  | version | body: one msgpack map        |
    +-----------------+---------+------------------------------+
      covers version+body  = 1

The decoder is sans-IO: feed it bytes as they arrive, pull whole frames out. Every
limit is checked before memory is spent on it: a length prefix over the cap is a
protocol error as soon as its four bytes are in, not after 4 GiB are buffered.

msgpack is decoded strictly (DESIGN: "duplicate keys and extension types
rejected"): map keys must be strings, no ext types, no trailing bytes, and
containers are capped so a hostile frame cannot make us allocate much — nor nest
so deep that code reading the value (``repr`` in an error message, ``pack``,
``json.dumps``) runs out of Python's recursion limit (found by ``tools/fuzz.py``).
"""

from __future__ import annotations

import operator
from typing import Any

import msgpack

from hotline.core.errors import RemoteProtocolError
from hotline.core.model import MAX_MESSAGE_BYTES

WIRE_VERSION = 1
HEADER_BYTES = 5
# A message may carry 32 MiB of content; sealing adds a little. Nothing else is big.
MAX_FRAME_BYTES = MAX_MESSAGE_BYTES + 1024 * 1024
MAX_CONTAINER_ITEMS = 4096
# No frame, envelope, record or form of ours nests more than a handful of levels; msgpack's own
# decoder stops at 1024, past the depth where recursive Python code (repr, pack) already fails.
MAX_NESTING = 32


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed")


def _unique_map(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if not isinstance(key, str):
            raise ValueError("map keys must be strings")
        if key in result:
            raise ValueError(f"duplicate map key {key!r}")
        result[key] = value
    return result


def pack(obj: Any) -> bytes:
    """Encode deterministically: the same value always gives the same bytes.

    Signatures and the journal's hash chain are computed over these bytes, so map
    keys are sorted and bytes stay bytes (``use_bin_type``).
    """
    return bytes(msgpack.packb(_canonical(obj), use_bin_type=True))


# Values msgpack encodes as they are. Checked by exact type, before any call, because a
# journal entry is mostly such leaves and pack() runs about ten times for every message.
_LEAF_TYPES = frozenset({str, bytes, int, float, bool, type(None)})
_key = operator.itemgetter(0)


def _canonical(obj: Any) -> Any:
    if type(obj) in _LEAF_TYPES:
        return obj
    if isinstance(obj, dict):
        return {k: v if type(v) in _LEAF_TYPES else _canonical(v) for k, v in sorted(obj.items(), key=_key)}
    if isinstance(obj, list | tuple):
        return [v if type(v) in _LEAF_TYPES else _canonical(v) for v in obj]
    return obj


_NESTED = frozenset({dict, list, tuple})


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and maps nest more than ``limit`` levels in ``value`` (checked level by level,
    without recursion, so any depth can be asked about)."""
    level = [value]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for item in level:
            for child in item.values() if isinstance(item, dict) else item:
                if type(child) in _NESTED:
                    below.append(child)
        level = below
    return False


def unpack(data: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """Decode one msgpack value strictly; raise ``RemoteProtocolError`` on anything odd."""
    if len(data) > max_bytes:
        raise RemoteProtocolError(f"msgpack value of {len(data)} bytes exceeds the cap of {max_bytes}")
    value = _unpack(data, max_bytes)
    if type(value) in (dict, list) and nested_deeper_than(value, MAX_NESTING):
        raise RemoteProtocolError(f"malformed msgpack: containers nested more than {MAX_NESTING} levels deep")
    return value


def _unpack(data: bytes, max_bytes: int) -> Any:
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_reject_ext,
            object_pairs_hook=_unique_map,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=MAX_CONTAINER_ITEMS,
            max_map_len=MAX_CONTAINER_ITEMS,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise RemoteProtocolError(f"malformed msgpack: {_describe(e)}") from None
    except Exception as e:  # msgpack raises a few undocumented types on truncation
        raise RemoteProtocolError(f"malformed msgpack: {_describe(e)}") from None


def _describe(e: Exception) -> str:
    """msgpack raises some errors with no message (``FormatError()``); name the type then."""
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def encode_frame(body: dict[str, Any]) -> bytes:
    payload = pack(body)
    length = len(payload) + 1
    if length > MAX_FRAME_BYTES:
        # Our own bug or misuse: the model caps keep real messages under this.
        raise ValueError(f"frame of {length} bytes exceeds the cap of {MAX_FRAME_BYTES}")
    return length.to_bytes(4, "big") + bytes([WIRE_VERSION]) + payload


class FrameDecoder:
    """Accumulates bytes and yields whole frames (as dicts with a string ``t``)."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_frame_bytes

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def announced(self) -> int:
        """The length the frame now arriving announced (0 before its 4-byte prefix is in)."""
        return int.from_bytes(self._buffer[0:4], "big") if len(self._buffer) >= 4 else 0

    def next_frame(self) -> dict[str, Any] | None:
        """Return the next whole frame, or ``None`` if more bytes are needed."""
        buf = self._buffer
        if len(buf) < 4:
            return None
        length = int.from_bytes(buf[0:4], "big")
        if length > self._max:
            raise RemoteProtocolError(f"frame length {length} exceeds the cap of {self._max} bytes")
        if length < 2:
            raise RemoteProtocolError(f"frame length {length} is too short for a version and a body")
        if len(buf) < 4 + length:
            return None
        version = buf[4]
        if version != WIRE_VERSION:
            raise RemoteProtocolError(f"unknown wire version {version}; this terminal speaks {WIRE_VERSION}")
        body = unpack(bytes(buf[5 : 4 + length]), max_bytes=self._max)
        del buf[: 4 + length]
        if not isinstance(body, dict):
            raise RemoteProtocolError("frame body is not a map")
        kind = body.get("t")
        if not isinstance(kind, str):
            raise RemoteProtocolError("frame has no type field 't'")
        return body
