"""Desk records' codec (issue 9, "Contract and limits"): a signed record round-trips, and anything
else a peer could send — a wrong key, a wrong or missing field, a wrong type, an oversize field,
trailing bytes, any truncation, random bytes — is refused with ``RemoteProtocolError``, never
another exception."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.core.errors import DeskError, RemoteProtocolError
from hotline.core.wire import pack, unpack
from hotline.crypto.identity import Identity
from hotline.desk.acts import make_record
from hotline.desk.records import (
    DESK_CONTEXT,
    MAX_LINE_CHARS,
    MAX_RECORD_BYTES,
    MAX_TEXT_CHARS,
    DeskRecord,
    RecordType,
    decode_record,
    open_record,
    sign_record,
)
from hotline.desk.register import Register
from hotline.testing.waiting import seeded

NOW = 1_760_623_200_000_000_000  # 2025-10-16T14:00:00Z, a fake clock
CALL_ID = "0199ed3a-0000-7000-8000-000000000001"


WASHINGTON = Identity.generate("washington", randbytes=seeded(b"washington"))
MOSCOW = Identity.generate("moscow", randbytes=seeded(b"moscow"))
MALLORY = Identity.generate("moscow", randbytes=seeded(b"mallory"))  # same name, another key


def proposal(**fields: Any) -> DeskRecord:
    base = {"subject": "Energy sites", "agenda": "1. Moratorium\n2. Exchange", "at": NOW, "duration_s": 9000,
            "answer_by": 0, "precedence": "immediate", "disclosure": "public", "every": ""}  # fmt: skip
    return DeskRecord(CALL_ID, RecordType.CALL_PROPOSE, CALL_ID, "moscow", "washington", 1, NOW, {**base, **fields})


SIGNED = sign_record(MOSCOW, proposal())


def body_of(signed: bytes) -> dict[str, Any]:
    outer = unpack(signed)
    body = unpack(outer["b"])
    assert isinstance(body, dict)
    return body


def resign(body: dict[str, Any], identity: Identity = MOSCOW) -> bytes:
    """A body signed properly: what a peer with the right key (but a faulty or hostile terminal) sends."""
    raw = pack(body)
    return pack({"b": raw, "s": identity.sign(DESK_CONTEXT, raw)})


def refused(signed: bytes, key: bytes = MOSCOW.public_key) -> str:
    with pytest.raises(RemoteProtocolError) as e:
        open_record(signed, key)
    return str(e.value)


# -- round trips -----------------------------------------------------------------------------------


def test_a_signed_record_round_trips() -> None:
    record = open_record(SIGNED.signed, MOSCOW.public_key)
    assert record == SIGNED
    assert record.signed == SIGNED.signed
    assert record.digest == hashlib.sha256(SIGNED.signed).digest()
    assert decode_record(SIGNED.signed) == SIGNED


@pytest.mark.parametrize(
    "act",
    [
        {"act": "call.propose", "to": "moscow", "subject": "Grid", "every": "FREQ=WEEKLY;BYDAY=TH", "at": NOW},
        {"act": "commitment.propose", "to": "moscow", "title": "Exchange", "kind": "exchange", "rounds": 3},
    ],
)
def test_every_record_make_record_builds_opens_at_the_peer(act: dict[str, Any]) -> None:
    register = Register("washington")
    record = make_record(register, WASHINGTON, act, NOW, os.urandom, ["moscow"])
    assert open_record(record.signed, WASHINGTON.public_key) == record


def test_signing_refuses_a_record_by_someone_else() -> None:
    with pytest.raises(DeskError):
        sign_record(WASHINGTON, proposal())


# -- refusals ----------------------------------------------------------------------------------


def test_a_record_signed_by_the_wrong_key_is_refused() -> None:
    assert "does not verify" in refused(SIGNED.signed, WASHINGTON.public_key)
    forged = sign_record(MALLORY, proposal())
    assert "does not verify" in refused(forged.signed)


def test_a_signature_over_another_context_is_refused() -> None:
    raw = unpack(SIGNED.signed)["b"]
    other = pack({"b": raw, "s": MOSCOW.sign(b"hotline-envelope-v1\x00", raw)})
    assert "does not verify" in refused(other)


def test_a_tampered_body_is_refused() -> None:
    outer = unpack(SIGNED.signed)
    body = body_of(SIGNED.signed)
    body["f"]["subject"] = "Something else"
    assert "does not verify" in refused(pack({"b": pack(body), "s": outer["s"]}))


BAD_BODIES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("unknown top field", lambda b: b.update(extra=1)),
    ("missing top field", lambda b: b.pop("lamport")),
    ("version 2", lambda b: b.update(v=2)),
    ("unknown record type", lambda b: b.update(type="call.sabotage")),
    ("id not a uuid", lambda b: b.update(id="not-a-uuid", thread="not-a-uuid")),
    ("id not text", lambda b: b.update(id=7)),
    ("thread not text", lambda b: b.update(thread=b"\x00" * 16)),
    ("proposal not its own thread", lambda b: b.update(thread="0199ed3a-0000-7000-8000-000000000002")),
    ("author not a name", lambda b: b.update(author="Moscow Kremlin")),
    ("author not text", lambda b: b.update(author=None)),
    ("peer not a name", lambda b: b.update(peer="")),
    ("lamport zero", lambda b: b.update(lamport=0)),
    ("lamport negative", lambda b: b.update(lamport=-1)),
    ("lamport a bool", lambda b: b.update(lamport=True)),
    ("lamport a float", lambda b: b.update(lamport=1.0)),
    ("lamport huge", lambda b: b.update(lamport=2**53)),
    ("time negative", lambda b: b.update(at=-5)),
    ("time text", lambda b: b.update(at="2025-10-16")),
    ("fields a list", lambda b: b.update(f=[])),
    ("unknown field", lambda b: b["f"].update(colour="red")),
    ("missing field", lambda b: b["f"].pop("agenda")),
    ("empty subject", lambda b: b["f"].update(subject="  ")),
    ("subject two lines", lambda b: b["f"].update(subject="a\nb")),
    ("subject oversize", lambda b: b["f"].update(subject="x" * (MAX_LINE_CHARS + 1))),
    ("agenda oversize", lambda b: b["f"].update(agenda="x" * (MAX_TEXT_CHARS + 1))),
    ("agenda bytes", lambda b: b["f"].update(agenda=b"x")),
    ("duration too long", lambda b: b["f"].update(duration_s=8 * 24 * 3600)),
    ("duration a bool", lambda b: b["f"].update(duration_s=False)),
    ("precedence unknown", lambda b: b["f"].update(precedence="urgent")),
    ("precedence a number", lambda b: b["f"].update(precedence=1)),
    ("disclosure unknown", lambda b: b["f"].update(disclosure="top secret")),
    ("every oversize", lambda b: b["f"].update(every="F" * (MAX_LINE_CHARS + 1))),
]


@pytest.mark.parametrize("mutate", [m for _, m in BAD_BODIES], ids=[n for n, _ in BAD_BODIES])
def test_a_properly_signed_but_malformed_body_is_refused(mutate: Callable[[dict[str, Any]], None]) -> None:
    body = body_of(SIGNED.signed)
    mutate(body)
    refused(resign(body))


FIELD_CASES: list[tuple[RecordType, dict[str, Any]]] = [
    (RecordType.CALL_ACCEPT, {"at": "soon"}),
    (RecordType.CALL_DECLINE, {"reason": ""}),
    (RecordType.CALL_COUNTER, {"at": NOW}),  # reason missing
    (RecordType.CALL_START, {"at": NOW}),  # takes no field
    (RecordType.READOUT, {"lang": "not a tag!", "disclosure": "public", "text": "", "shared": True}),
    (RecordType.READOUT, {"lang": "en", "disclosure": "public", "text": "", "shared": 1}),
    (RecordType.COMMITMENT_AGREE, {"text_hash": b"\x00" * 31}),
    (RecordType.COMMITMENT_AGREE, {"text_hash": "00" * 32}),
    (RecordType.COMMITMENT_STATUS, {"status": "forgotten", "reason": "x"}),
    (RecordType.COMMITMENT_ROUND, {"round": 1001, "done_at": 0, "note": ""}),
    (RecordType.COMMITMENT_ROUND, {"round": 1, "done_at": 2**63, "note": ""}),
    (RecordType.COMMITMENT_PROPOSE, {"call": "nope", "title": "t", "detail": "", "owner": "both", "due": 0,
                                     "kind": "other", "disclosure": "public", "starts": 0, "ends": 0, "rounds": 0}),
    (RecordType.COMMITMENT_PROPOSE, {"call": "", "title": "t", "detail": "", "owner": "Not A Name", "due": 0,
                                     "kind": "other", "disclosure": "public", "starts": 0, "ends": 0, "rounds": 0}),
    (RecordType.COMMITMENT_PROPOSE, {"call": "", "title": "t", "detail": "", "owner": "", "due": 0,
                                     "kind": "treaty", "disclosure": "public", "starts": 0, "ends": 0, "rounds": 0}),
]  # fmt: skip


@pytest.mark.parametrize("rtype, fields", FIELD_CASES, ids=[f"{t.value}-{i}" for i, (t, _) in enumerate(FIELD_CASES)])
def test_each_record_types_fields_are_checked(rtype: RecordType, fields: dict[str, Any]) -> None:
    body = body_of(SIGNED.signed)
    record_id = "0199ed3a-0000-7000-8000-00000000000a"
    body.update(type=rtype.value, id=record_id, thread=record_id if rtype.starts_thread else CALL_ID, lamport=2,
                f=fields)  # fmt: skip
    assert "malformed desk record" in refused(resign(body))


def test_trailing_garbage_is_refused() -> None:
    refused(SIGNED.signed + b"\x00")
    outer = unpack(SIGNED.signed)
    refused(pack({"b": outer["b"] + b"\xc0", "s": MOSCOW.sign(DESK_CONTEXT, outer["b"] + b"\xc0")}))


def test_every_truncation_is_refused() -> None:
    for n in range(len(SIGNED.signed)):
        refused(SIGNED.signed[:n])


def test_an_outer_map_of_the_wrong_shape_is_refused() -> None:
    raw = unpack(SIGNED.signed)["b"]
    sig = MOSCOW.sign(DESK_CONTEXT, raw)
    for outer in ({"b": raw}, {"b": raw, "s": sig, "x": 1}, {"b": raw.decode("latin-1"), "s": sig},
                  {"b": raw, "s": sig[:63]}, [raw, sig], raw):  # fmt: skip
        refused(pack(outer))


def test_an_oversize_record_is_refused_before_anything_is_decoded() -> None:
    assert "limit" in refused(b"\x92" + b"\x00" * MAX_RECORD_BYTES)


@given(st.binary(max_size=600))
def test_random_bytes_are_refused(data: bytes) -> None:
    refused(data)


@given(st.data())
def test_random_mutations_of_a_signed_record_are_refused_or_change_nothing(data: st.DataObject) -> None:
    raw = bytearray(SIGNED.signed)
    for _ in range(data.draw(st.integers(1, 4))):
        choice = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        at = data.draw(st.integers(0, len(raw) - 1))
        if choice == "flip":
            raw[at] ^= data.draw(st.integers(1, 255))
        elif choice == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif len(raw) > 1:
            del raw[at]
    try:
        record = open_record(bytes(raw), MOSCOW.public_key)
    except RemoteProtocolError:
        return
    # A mutation the codec accepts can only be one that leaves the signed content as it was
    # (msgpack has a few encodings of one value): the record is the same record.
    assert record == SIGNED


VALUES = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=40) | st.binary(max_size=40)
          | st.dictionaries(st.text(max_size=12), st.integers(-5, 5) | st.text(max_size=12), max_size=4))  # fmt: skip


@given(st.dictionaries(st.sampled_from([*body_of(SIGNED.signed), "z"]), VALUES, max_size=4),
       st.dictionaries(st.sampled_from([*SIGNED.fields, "z"]), VALUES, max_size=3), st.booleans())  # fmt: skip
def test_random_signed_bodies_are_refused_with_a_protocol_error_only(
    top: dict[str, Any], fields: dict[str, Any], drop: bool
) -> None:
    """A valid body with some values (top level and fields) replaced, and perhaps one key dropped."""
    body = body_of(SIGNED.signed)
    body["f"].update(fields)
    body.update(top)
    if drop and top:
        body.pop(next(iter(top)))
    try:
        record = open_record(resign(body), MOSCOW.public_key)
    except RemoteProtocolError:
        return
    assert isinstance(record, DeskRecord)  # whatever passes passed every check, and raised nothing else
