"""What `tools/fuzz.py` fuzzes: one harness per decoder, and the seed corpus each starts from.

A harness takes one input (bytes) and runs it through a decoder the way a peer's bytes reach it.
It may raise a ``HotlineError`` — that is the decoder refusing bad input, as documented; anything
else it lets out is a *crash*: an exception the terminal was never meant to see, or (``Mismatch``)
two ways of decoding the same bytes that disagree.

The first byte of an input picks a *mode* in most harnesses, so one coverage-guided fuzzer can
explore both the raw bytes (signature and framing checks) and what lies behind them: the signed
targets re-sign the fuzzed body with the real key, because random bytes never carry a valid
Ed25519 signature and the parser after the check would otherwise never run. Structured modes read
the rest of the input as msgpack and may nest a value deep inside it (``deepen``), because a
byte-level mutator rarely builds five hundred levels of nesting by itself.

Imported by the fuzzing worker after coverage instrumentation is switched on, so it imports the
code under test at the top.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import msgpack

from hotline.core.errors import HotlineError
from hotline.core.model import Address, MessageContent, MessageKind, Precedence, ReceiptKind
from hotline.core.protocol import Connection, ConnectionClosed
from hotline.core.wire import FrameDecoder, encode_frame, pack, unpack
from hotline.crypto import envelope as env
from hotline.crypto import succession as succ
from hotline.crypto.identity import Identity, make_card
from hotline.crypto.ratchet import Ratchet, initial_secret, is_initiator
from hotline.desk import records
from hotline.desk.forms import FormRegistry, FormType
from hotline.desk.records import DeskRecord, RecordType, open_record, sign_record
from hotline.home.forms import load_forms
from hotline.testing.waiting import seeded

Harness = Callable[[bytes], None]
T0 = 1_800_000_000_000_000_000
MAX_DEPTH = 1020  # deeper than msgpack's own decoder allows (1024), so its limit is met too
DEEP = [0, 1, 0, 0, 0, 0, 0, 0]  # choices for ``deepen``: wrap the whole value in four lists


class Mismatch(AssertionError):
    """Two decodings of the same input disagree: a crash, though nothing raised by itself."""


class Input:
    """Reads an input as a stream of choices; past its end every choice is 0."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def rest(self) -> bytes:
        return self.take(len(self.data))


@cache
def identities() -> tuple[Identity, Identity]:
    """washington and moscow, with fixed keys: the seed corpus is signed with them."""
    return (
        Identity.generate("washington", randbytes=seeded(b"fuzz washington")),
        Identity.generate("moscow", randbytes=seeded(b"fuzz moscow")),
    )


@cache
def forms() -> FormRegistry:
    return load_forms(None)


def loose_unpack(data: bytes) -> Any:
    """Any msgpack value, leniently (the fuzzer builds frames from it; the strict decoder judges them)."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, max_ext_len=0)
    except Exception:
        return None


def deepen(value: Any, inp: Input) -> Any:
    """``value`` with one of its parts (chosen by the input) nested inside many lists or maps."""
    if isinstance(value, dict) and value and inp.byte() % 4:
        keys = sorted(value, key=str)
        key = keys[inp.byte() % len(keys)]
        return {**value, key: deepen(value[key], inp)}
    depth = min(MAX_DEPTH, inp.byte() * 4 + inp.byte() % 4)
    as_map = inp.byte() % 2 == 1
    for _ in range(depth):
        value = {"x": value} if as_map else [value]
    return value


def structured(inp: Input) -> Any:
    """The rest of the input as a msgpack value, perhaps nested deep (a mode's second byte says)."""
    deep = inp.byte() % 3 == 0
    value = loose_unpack(inp.rest()) if not deep else None
    if deep:
        # the deepening choices come first, the value after them
        choices = Input(inp.take(8))
        value = deepen(loose_unpack(inp.rest()), choices)
    return value


def raw_pack(value: Any) -> bytes:
    """msgpack of a value as it is (keys unsorted, any types): what a hostile peer may send."""
    try:
        return bytes(msgpack.packb(value, use_bin_type=True))
    except Exception:
        return b""


# -- wire: the frame decoder ---------------------------------------------------------------------


def _decode(chunks: Iterator[bytes]) -> tuple[list[bytes], str]:
    """Every frame decoded from the chunks fed in turn (as canonical bytes), and the error that
    stopped the decoder ("" if none)."""
    decoder = FrameDecoder()
    frames: list[bytes] = []
    try:
        for chunk in chunks:
            decoder.receive_data(chunk)
            while (frame := decoder.next_frame()) is not None:
                frames.append(pack(frame))
    except HotlineError as e:
        return frames, str(e)
    return frames, ""


def wire(data: bytes) -> None:
    """Whole, byte by byte and with trailing garbage: the same frames, the same verdict; and every
    frame decoded encodes and decodes back to itself."""
    whole, error = _decode(iter([data]))
    if len(data) <= 4096:
        bytewise, byte_error = _decode(data[i : i + 1] for i in range(len(data)))
        if (bytewise, byte_error) != (whole, error):
            raise Mismatch(f"byte by byte gave {len(bytewise)} frames ({byte_error!r}), whole {len(whole)} ({error!r})")
    garbage = data + bytes(reversed(data[-16:])) + b"\xc1\x00\x00\x00"
    with_garbage, _ = _decode(iter([garbage]))
    if with_garbage[: len(whole)] != whole:
        raise Mismatch("trailing garbage changed the frames before it")
    for body in whole:
        frame = unpack(body)
        again, again_error = _decode(iter([encode_frame(frame)]))
        if again != [body] or again_error:
            raise Mismatch(f"a decoded frame does not survive encoding: {again_error}")
    with contextlib.suppress(HotlineError):
        unpack(data)


def wire_seeds() -> list[bytes]:
    frames: list[dict[str, Any]] = [
        {"t": "hello", "pv": 1, "name": "washington", "cursor": 0, "receipt": None},
        {"t": "hello", "pv": 1, "name": "moscow", "cursor": 7, "receipt": b"\x00" * 80, "doubt": "entry 3"},
        {"t": "env", "seq": 1, "e": b"\x01" * 40},
        {"t": "rcpt", "r": b"\x02" * 40},
        {"t": "resume", "cursor": 12},
        {"t": "ping", "n": 3},
        {"t": "ping", "n": 4, "grace": 1500},
        {"t": "pong", "n": 3},
        {"t": "test", "id": "t-1", "text": "quick brown fox"},
        {"t": "test-ok", "id": "t-1", "text": "quick brown fox"},
        {"t": "doubt", "text": ""},
        {"t": "bye", "reason": "terminal shutting down"},
        {"t": "bye", "reason": "newer connection", "handover": True},
        {"t": "x", "f": 1.5, "l": [1, -2, True, None], "m": {"k": "v"}},
    ]
    seeds = [encode_frame(f) for f in frames]
    seeds.append(b"".join(seeds[:4]))  # several frames in one read
    seeds.append(seeds[2][:7])  # a frame cut short
    seeds.append(encode_frame({"t": "env", "seq": 2, "e": envelope_seeds()[0][1:]}))
    return seeds


# -- protocol: the per-connection state machine, after a real hello ------------------------------

_KINDS = [
    "hello",
    "env",
    "rcpt",
    "resume",
    "ping",
    "pong",
    "test",
    "test-ok",
    "doubt",
    "bye",
    "zzz",
    "rekey",
    "relay",
    "relayed",
    "relay-bad",
    "succ",
    "revoke",
]


def protocol(data: bytes) -> None:
    """A connection that has exchanged hellos, fed frames built from the input, time passing,
    and our own side sending between them."""
    now = 1000.0
    conn = Connection(local_name="washington", peer_name="moscow", now=now)
    conn.send_hello(0, None)
    conn.receive_data(encode_frame({"t": "hello", "pv": 1, "name": "moscow", "cursor": 0, "receipt": None}), now)
    inp = Input(data)
    while inp.pos < len(data) and not conn.closed:
        op = inp.byte() % 5
        if op == 0:  # raw bytes
            conn.receive_data(inp.take(inp.byte() + 1), now)
        elif op == 1:  # a frame of a known kind with fields from the input, framed correctly
            kind = _KINDS[inp.byte() % len(_KINDS)]
            fields = loose_unpack(inp.take(inp.byte() + 1))
            body = {**fields, "t": kind} if isinstance(fields, dict) else {"t": kind, "n": fields}
            payload = raw_pack(body)
            conn.receive_data((len(payload) + 1).to_bytes(4, "big") + b"\x01" + payload, now)
        elif op == 2:  # time passes
            now += inp.byte() / 100
            conn.handle_timer(now)
        elif op == 3:  # our side speaks
            _local(conn, inp.byte(), now)
        else:  # a whole frame split across reads
            frame = inp.take(inp.byte() + 1)
            cut = inp.byte() % (len(frame) + 1)
            conn.receive_data(frame[:cut], now)
            conn.receive_data(frame[cut:], now)
        out = conn.data_to_send()
        if out:
            _, error = _decode(iter([out]))  # whatever we send must be well-formed frames
            if error:
                raise Mismatch(f"the connection sent a malformed frame: {error}")
        while (event := conn.next_event()) is not None:
            if isinstance(event, ConnectionClosed) and not conn.closed:
                raise Mismatch("a closed event from a connection still open")
    timer = conn.get_timer()
    if timer is not None:
        conn.handle_timer(timer)


def _local(conn: Connection, choice: int, now: float) -> None:
    try:
        match choice % 8:
            case 0:
                conn.send_envelope(choice, b"e" * choice)
            case 1:
                conn.send_receipt(b"r" * choice)
            case 2:
                conn.send_resume(choice)
            case 3:
                conn.send_test(f"t{choice}", "x" * choice * 10)
            case 4:
                conn.send_doubt("d" * choice * 5)
            case 5:
                conn.announce_busy(choice / 10)
            case 6:
                conn.excuse_silence(now)
            case _:
                conn.close("done", handover=choice % 2 == 1)
    except HotlineError:
        pass


def protocol_seeds() -> list[bytes]:
    seeds = []
    for frame in wire_seeds()[:14]:
        seeds.append(bytes([0, min(255, len(frame) - 1)]) + frame[:256])
        seeds.append(bytes([4, min(255, len(frame) - 1), len(frame) // 2]) + frame[:256])
    for kind in range(len(_KINDS)):
        fields = raw_pack(
            {
                "seq": 1,
                "e": b"x",
                "cursor": 3,
                "n": 2,
                "id": "a",
                "text": "b",
                "reason": "c",
                "to": "kyiv",
                "from": "kyiv",
                "s": 1,
                "f": b"y",
                "r": b"z",
                "upto": 4,
            }
        )
        seeds.append(bytes([1, kind, len(fields) - 1]) + fields)
    seeds.append(bytes([2, 50, 2, 50, 2, 50, 2, 50]))  # silence: the heartbeat deadline
    seeds.append(bytes([3, 0, 3, 3, 3, 5, 2, 80, 3, 7]))
    return seeds


# -- envelope, receipt and desk record: signed objects opened with the real key ------------------


def _signed(data: bytes, context: bytes, signer: Identity) -> bytes:
    """Mode 0: the input as it is. Mode 1: the input is the body, signed here. Mode 2: the input
    is a msgpack value (maybe nested deep), packed as the body and signed here."""
    inp = Input(data)
    mode = inp.byte() % 3
    if mode == 0:
        return inp.rest()
    body = inp.rest() if mode == 1 else raw_pack(structured(inp))
    return pack({"b": body, "s": signer.sign(context, body)})


def envelope(data: bytes) -> None:
    """``open_envelope`` with moscow's real key; or (first byte 3) ``decode_content`` of what a
    ratchet would hand back after decrypting."""
    _, moscow = identities()
    if data[:1] == b"\x03":
        inp = Input(data[1:])
        content = raw_pack(structured(inp)) if inp.byte() % 2 else inp.rest()
        decoded = env.decode_content(content, "moscow", "washington")
        env.encode_content(decoded)
        return
    sealed = env.open_envelope(_signed(data, env.ENVELOPE_CONTEXT, moscow), moscow.public_key)
    _ = (sealed.associated_data, sealed.header.to_bytes())


def _ratchet(own: Identity, peer: Identity) -> Ratchet:
    secret = initial_secret(own.public_key, own.dh_key, peer.public_key, peer.dh_public)
    start = Ratchet.initiator if is_initiator(own.public_key, peer.public_key) else Ratchet.responder
    return start(secret, own.dh_key, peer.dh_public)


def _contents() -> list[MessageContent]:
    _, b = identities()
    receipt = env.make_receipt(b, kind=ReceiptKind.ACKNOWLEDGED, sender="moscow", recipient="washington",
                               upto=0, stream_hash=bytes(32), at_ns=T0, message_id=str(uuid.UUID(int=1)),
                               by="duty")  # fmt: skip
    record = desk_seed_records()[0].signed
    common = {"sender": "moscow", "recipient": "washington", "created_at_ns": T0}
    return [
        MessageContent(id=str(uuid.UUID(int=10)), precedence=Precedence.FLASH, lang="en", subject="Launch",
                       body="Please confirm your test.", classification="SECRET", **common),  # type: ignore[arg-type]
        MessageContent(id=str(uuid.UUID(int=11)), precedence=Precedence.ROUTINE, lang="ru", subject="Ответ",
                       body="Согласны.", **common),  # type: ignore[arg-type]
        MessageContent(id=str(uuid.UUID(int=12)), precedence=Precedence.PRIORITY, lang="zh-Hans", subject="",
                       body="x", attachments=(), kind=MessageKind.RECEIPT, receipt=receipt, **common),  # type: ignore[arg-type]
        MessageContent(id=str(uuid.UUID(int=13)), precedence=Precedence.IMMEDIATE, lang="en", subject="desk",
                       body="", kind=MessageKind.RECORD, receipt=record, **common),  # type: ignore[arg-type]
    ]  # fmt: skip


def envelope_seeds() -> list[bytes]:
    a, b = identities()
    ratchet = _ratchet(b, a)
    seeds = [env.seal(b, ratchet, content, seq) for seq, content in enumerate(_contents(), start=1)]
    bodies = [unpack(s)["b"] for s in seeds]
    seeds += [b"\x01" + body for body in bodies]
    seeds += [b"\x02\x01" + bytes(body) for body in bodies[:2]]
    seeds += [b"\x03\x00" + env.encode_content(c) for c in _contents()]
    seeds += [b"\x03\x01\x00" + bytes(DEEP) + env.encode_content(c) for c in _contents()[:2]]
    return seeds


def receipt(data: bytes) -> None:
    """``open_receipt`` with moscow's real key."""
    _, moscow = identities()
    env.open_receipt(_signed(data, env.RECEIPT_CONTEXT, moscow), moscow.public_key)


def receipt_seeds() -> list[bytes]:
    _, b = identities()
    seeds = []
    for kind in ReceiptKind:
        signed = env.make_receipt(b, kind=kind, sender="moscow", recipient="washington", upto=41,
                                  stream_hash=hashlib.sha256(kind.encode()).digest(), at_ns=T0,
                                  message_id=str(uuid.UUID(int=7)) if kind != ReceiptKind.DELIVERED else "",
                                  by="duty-officer" if kind == ReceiptKind.ACKNOWLEDGED else "")  # fmt: skip
        seeds += [signed, b"\x01" + unpack(signed)["b"], b"\x02\x01" + unpack(signed)["b"]]
    seeds.append(b"\x02\x00" + bytes(DEEP) + unpack(signed)["b"])
    return seeds


def desk_record(data: bytes) -> None:
    """``open_record`` with moscow's real key; a notification is then checked against its form,
    as the receiving engine does."""
    _, moscow = identities()
    record = open_record(_signed(data, records.DESK_CONTEXT, moscow), moscow.public_key)
    _ = (record.order, record.shared, record.digest)
    if record.type is RecordType.NOTIFICATION:
        form = forms().types.get(record.fields["form"])
        if form is not None:
            _check_form(form, record.fields["data"], "en")


def desk_seed_records() -> list[DeskRecord]:
    _, b = identities()
    ids = iter(str(uuid.UUID(int=0x0190F2A0_0000_7000_8000_000000000000 + i)) for i in range(100))
    call = next(ids)
    commitment = next(ids)
    form = forms().types["exercise"]
    made: list[tuple[RecordType, str, dict[str, Any]]] = [
        (RecordType.CALL_PROPOSE, call, {"subject": "Energy sites", "agenda": "1. halt\n2. verify", "at": T0,
                                         "duration_s": 9000, "answer_by": T0 - 10**12, "precedence": "immediate",
                                         "disclosure": "confidential", "every": ""}),
        (RecordType.CALL_ACCEPT, call, {"at": T0}),
        (RecordType.CALL_DECLINE, call, {"reason": "not this week"}),
        (RecordType.CALL_COUNTER, call, {"at": T0 + 3600 * 10**9, "reason": "an hour later"}),
        (RecordType.CALL_WITHDRAW, call, {"reason": ""}),
        (RecordType.CALL_START, call, {}),
        (RecordType.CALL_END, call, {}),
        (RecordType.READOUT, call, {"lang": "ru", "disclosure": "public", "text": "Стороны договорились.",
                                    "shared": True}),
        (RecordType.COMMITMENT_PROPOSE, commitment, {"call": call, "title": "Advisers meet", "detail": "Geneva",
                                                     "owner": "both", "due": T0, "kind": "meeting",
                                                     "disclosure": "secret", "starts": 0, "ends": 0, "rounds": 3}),
        (RecordType.COMMITMENT_AGREE, commitment, {"text_hash": bytes(range(32))}),
        (RecordType.COMMITMENT_DECLINE, commitment, {"reason": "no"}),
        (RecordType.COMMITMENT_STATUS, commitment, {"status": "fulfilled", "reason": "met on the 3rd"}),
        (RecordType.COMMITMENT_ROUND, commitment, {"round": 1, "done_at": T0, "note": "first round"}),
        (RecordType.NOTIFICATION_ACK, commitment, {"by": "duty"}),
        (RecordType.NOTIFICATION_REFUSED, commitment, {"reason": "unknown form", "form": "x", "form_hash": bytes(32)}),
    ]  # fmt: skip
    notice = next(ids)
    made.append((RecordType.NOTIFICATION, notice, {
        "form": "exercise", "form_hash": form.digest, "answers": "",
        "data": {"exercise": "NAVAL", "starts": "2027-01-05T06:00:00Z", "ends": "2027-01-09T18:00:00Z",
                 "area": {"lat": 43.1, "lon": 131.9}},
    }))  # fmt: skip
    out = []
    for lamport, (rtype, thread, fields) in enumerate(made, start=1):
        rid = thread if rtype.starts_thread else next(ids)
        record = DeskRecord(rid, rtype, thread, "moscow", "washington", lamport, T0 + lamport, fields)
        out.append(sign_record(b, record))
    return out


def desk_record_seeds() -> list[bytes]:
    signed = [r.signed for r in desk_seed_records()]
    seeds = signed + [b"\x01" + unpack(s)["b"] for s in signed] + [b"\x02\x01" + unpack(s)["b"] for s in signed[-3:]]
    # structured, a few levels deep at the record's top, in its fields, in a notification's form data
    seeds += [b"\x02\x00" + bytes(DEEP) + unpack(s)["b"] for s in signed[:2]]
    seeds += [b"\x02\x00" + bytes([1, 2, 0, 1, 0, 0, 0, 0]) + unpack(s)["b"] for s in signed[:2]]
    seeds.append(b"\x02\x00" + bytes([1, 2, 1, 1, 0, 1, 0, 1]) + unpack(signed[-1])["b"])
    seeds.append(b"\x02\x00" + bytes([1, 2, 1, 1, 0, 100, 0, 0]) + unpack(signed[-1])["b"])  # 400 deep
    return seeds


# -- form: FormType.validate on arbitrary JSON ---------------------------------------------------


def _check_form(form: FormType, value: Any, lang: str) -> None:
    errors = form.validate(value, lang, frozenset({"SEA-OF-JAPAN", "BALTIC"}))
    if not errors and isinstance(value, dict):  # a valid form is shown and timed
        form.render(value, lang)
        form.late(value, T0)


_LANGS = ["en", "ru", "zh-Hans", "fr"]


def form(data: bytes) -> None:
    """One of the shipped form types (first byte) validates the rest: JSON text, or (second byte
    odd) a msgpack value as a peer's record carries it, maybe nested deep."""
    inp = Input(data)
    registry = forms()
    types = sorted(registry.types)
    chosen = registry.types[types[inp.byte() % len(types)]]
    how = inp.byte()
    lang = _LANGS[(how >> 2) % len(_LANGS)]
    if how % 2:
        value = structured(inp)
    else:
        try:
            value = json.loads(inp.rest())
        except (ValueError, RecursionError):
            return  # not JSON: nothing to validate (the JSON parser is not under test)
    _check_form(chosen, value, lang)


def _valid(schema: dict[str, Any], rng: random.Random) -> Any:
    """A valid value for the subset of JSON Schema the shipped forms use."""
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema["properties"]
        if set(props) >= {"lat", "lon"}:
            return {"lat": round(rng.uniform(-90, 90), 4), "lon": round(rng.uniform(-180, 180), 4)}
        return {k: _valid(v, rng) for k, v in props.items() if k in schema.get("required", []) or rng.random() < 0.5}
    if kind == "integer":
        return rng.randint(schema.get("minimum", 0), schema.get("maximum", 1000))
    if kind == "number":
        return round(rng.uniform(schema.get("minimum", -1e3), schema.get("maximum", 1e3)), 3)
    if kind == "array":
        return [_valid(schema["items"], rng) for _ in range(rng.randint(0, min(3, schema["maxItems"])))]
    if schema.get("format") == "date-time":
        return f"20{rng.randint(27, 40)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T0{rng.randint(0, 9)}:30:00Z"
    return "".join(rng.choice("ABCDEF-0123") for _ in range(rng.randint(1, min(12, schema.get("maxLength", 12)))))


def form_seeds() -> list[bytes]:
    registry = forms()
    types = sorted(registry.types)
    rng = random.Random(1963)
    seeds = []
    for index, type_id in enumerate(types):
        form = registry.types[type_id]
        for n in range(3):
            value = _valid(form.schema, rng)
            seeds.append(bytes([index, 4 * n]) + json.dumps(value, ensure_ascii=False).encode())
        seeds.append(bytes([index, 1, 1]) + raw_pack(form.template()))
        seeds.append(bytes([index, 1, 0]) + bytes(DEEP) + raw_pack(form.template()))
    return seeds


# -- key statements: a succession or a revocation opened with the real key ------------------------


def key_statement(data: bytes) -> None:
    """The first byte picks a succession or a revocation; the rest as ``_signed`` makes it, signed by
    washington's real key under that statement's context; ``signer_of``, then the opener."""
    washington, _ = identities()
    inp = Input(data)
    revocation = inp.byte() % 2 == 1
    signed = _signed(inp.rest(), succ.REVOCATION_CONTEXT if revocation else succ.SUCCESSION_CONTEXT, washington)
    with contextlib.suppress(HotlineError):
        succ.signer_of(signed)
    if revocation:
        succ.open_revocation(signed, washington.public_key)
    else:
        succ.open_succession(signed, washington.public_key)


def key_statement_seeds() -> list[bytes]:
    washington, _ = identities()
    successor = Identity.generate("washington", randbytes=seeded(b"fuzz washington, rotated"))
    card = make_card(successor, [Address("primary", "127.0.0.1", 7401)], "2026-12-04T00:00:00Z")
    seeds = []
    for kind, signed in ((0, succ.make_succession(washington, card, n=1, at_ns=T0)),
                         (1, succ.make_revocation(washington, at_ns=T0, reason="key believed stolen"))):  # fmt: skip
        body = unpack(signed)["b"]
        seeds += [bytes([kind, 0]) + signed, bytes([kind, 1]) + body, bytes([kind, 2, 1]) + body]
    return seeds


TARGETS: dict[str, tuple[Harness, Callable[[], list[bytes]]]] = {
    "wire": (wire, wire_seeds),
    "protocol": (protocol, protocol_seeds),
    "envelope": (envelope, envelope_seeds),
    "receipt": (receipt, receipt_seeds),
    "desk-record": (desk_record, desk_record_seeds),
    "form": (form, form_seeds),
    "key-statement": (key_statement, key_statement_seeds),
}
