"""Turning what a person asked for ("accept call 0193…", "add a readout") into a signed desk record.

Pure: the time and the randomness are passed in. The same function serves the
running terminal (control socket, API, console) and the CLI with the terminal
stopped, so an act is refused with the same words either way, before anything
is journaled.

An act is ``{"act": NAME, ...arguments}``; ``ACTS`` names them. Each argument
is checked by ``records.check_fields`` once the record is built, and the act as
a whole by the register's state machine (``Register.check``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from hotline.core.errors import DeskError
from hotline.core.model import Attachment, MessageContent, MessageKind, Precedence, uuid7, validate_name
from hotline.crypto.identity import Identity
from hotline.desk.channels import fold_channel
from hotline.desk.forms import FormRegistry
from hotline.desk.records import (
    MAX_CHANNEL_MEMBERS,
    DeskRecord,
    Disclosure,
    RecordType,
    check_fields,
    sign_record,
)
from hotline.desk.register import Register

# act name -> (record type, whether it names an existing thread)
ACTS: dict[str, tuple[RecordType, bool]] = {
    "call.propose": (RecordType.CALL_PROPOSE, False),
    "call.accept": (RecordType.CALL_ACCEPT, True),
    "call.decline": (RecordType.CALL_DECLINE, True),
    "call.counter": (RecordType.CALL_COUNTER, True),
    "call.withdraw": (RecordType.CALL_WITHDRAW, True),
    "call.start": (RecordType.CALL_START, True),
    "call.end": (RecordType.CALL_END, True),
    "call.note": (RecordType.CALL_NOTE, True),
    "readout.add": (RecordType.READOUT, True),
    "commitment.propose": (RecordType.COMMITMENT_PROPOSE, False),
    "commitment.agree": (RecordType.COMMITMENT_AGREE, True),
    "commitment.decline": (RecordType.COMMITMENT_DECLINE, True),
    "commitment.status": (RecordType.COMMITMENT_STATUS, True),
    "commitment.round": (RecordType.COMMITMENT_ROUND, True),
    "notify": (RecordType.NOTIFICATION, False),
    "notification.ack": (RecordType.NOTIFICATION_ACK, True),
}

# Channel acts name their channel (``channel``: a name or an id) rather than a thread id.
CHANNEL_ACTS: dict[str, RecordType] = {
    "channel.create": RecordType.CHANNEL_CREATE,
    "channel.join": RecordType.CHANNEL_JOIN,
    "channel.add": RecordType.CHANNEL_ADD,
    "channel.remove": RecordType.CHANNEL_REMOVE,
    "channel.leave": RecordType.CHANNEL_LEAVE,
    "channel.message": RecordType.CHANNEL_MESSAGE,
}

# What an act may leave out, and what it then means.
_DEFAULTS: dict[RecordType, dict[str, Any]] = {
    RecordType.CALL_PROPOSE: {"agenda": "", "at": 0, "duration_s": 0, "answer_by": 0, "precedence": "routine",
                              "disclosure": "confidential", "every": ""},
    RecordType.CALL_ACCEPT: {"at": 0},
    RecordType.CALL_COUNTER: {"reason": ""},
    RecordType.CALL_WITHDRAW: {"reason": ""},
    RecordType.READOUT: {"disclosure": "confidential", "shared": False},
    RecordType.COMMITMENT_PROPOSE: {"call": "", "detail": "", "owner": "both", "due": 0, "kind": "other",
                                    "disclosure": "confidential", "starts": 0, "ends": 0, "rounds": 0},
    RecordType.COMMITMENT_ROUND: {"done_at": 0, "note": ""},
    RecordType.NOTIFICATION: {"answers": ""},
    RecordType.NOTIFICATION_ACK: {"by": "operator"},
}  # fmt: skip


def _act_fields(act: dict[str, Any]) -> tuple[str, RecordType, dict[str, Any]]:
    """The act's name, record type and fields with defaults filled in (not yet checked)."""
    name = act.get("act")
    if not isinstance(name, str) or name not in ACTS:
        raise DeskError(f"unknown desk act {name!r}; one of {', '.join([*ACTS, *CHANNEL_ACTS])}")
    rtype = ACTS[name][0]
    fields = {k: v for k, v in act.items() if k not in ("act", "to", "id", "ui_lang")}
    if "disclosure" in fields and isinstance(fields["disclosure"], str):
        fields["disclosure"] = Disclosure.parse(fields["disclosure"]).value
    if "precedence" in fields and isinstance(fields["precedence"], str):
        fields["precedence"] = Precedence.parse(fields["precedence"]).label
    return name, rtype, {**_DEFAULTS.get(rtype, {}), **fields}


def check_act(act: dict[str, Any]) -> None:
    """Refuse (``DeskError``) an act that is malformed in itself — an unknown act, a missing,
    unknown or ill-typed field — whatever the register holds. The HTTP API tells this caller's
    mistake (400) from an act the state of the call or commitment refuses (409)."""
    if act.get("act") in CHANNEL_ACTS:
        rtype, fields = _channel_fields(act)
        if rtype is RecordType.CHANNEL_CREATE:
            given = fields["members"]
            if not isinstance(given, list) or not given or not all(isinstance(m, str) for m in given):
                raise DeskError("channel.create needs its members (--member PEER, one or more)")
            for member in given:
                validate_name(member.strip().lower(), "member")
            fields["members"] = ["a", "b"]  # the real list (with the creator) is checked by ``make_record``
        if rtype is RecordType.CHANNEL_MESSAGE:
            fields.update(seq=1, seen={}, to=["x"])  # filled in from the register by ``make_record``
        check_fields(rtype, fields)
        return
    _name, rtype, fields = _act_fields(act)
    if rtype is RecordType.COMMITMENT_AGREE:
        fields["text_hash"] = bytes(32)  # filled in from the proposal by ``make_record``
    if rtype is RecordType.NOTIFICATION:
        fields["form_hash"] = bytes(32)  # filled in from the form type by ``make_record``
    check_fields(rtype, fields)


def make_record(
    register: Register,
    identity: Identity,
    act: dict[str, Any],
    now_ns: int,
    randbytes: Callable[[int], bytes],
    peers: list[str],
    forms: FormRegistry | None = None,
    lang: str = "en",
) -> DeskRecord:
    """Build, check and sign the record for ``act``; ``DeskError`` says why it is refused (a form's
    failing fields named in ``lang``)."""
    if act.get("act") in CHANNEL_ACTS:
        return _make_channel_record(register, identity, act, now_ns, randbytes, peers)
    name, rtype, fields = _act_fields(act)
    names_thread = ACTS[name][1]
    record_id = uuid7(now_ns // 1_000_000, randbytes(10))
    if names_thread:
        given = act.get("id")
        if not isinstance(given, str) or not given:
            raise DeskError(f"{name} needs the id of the call or commitment it concerns")
        thread = register.find(given)
        first = register.first(thread)
        peer = first.peer if first.author == identity.name else first.author
        if rtype is RecordType.COMMITMENT_AGREE:
            fields["text_hash"] = first.digest  # the countersignature covers exactly the text offered
    else:
        to = act.get("to")
        if not isinstance(to, str) or not to:
            raise DeskError(f"{name} needs the peer it is addressed to (--to)")
        peer = to.strip().lower()
        validate_name(peer, "peer")
        if peer not in peers:
            raise DeskError(f"no peer named {peer!r}; see `hotline peers`")
        thread = record_id
        if rtype is RecordType.COMMITMENT_PROPOSE and fields.get("call"):
            fields["call"] = register.find(str(fields["call"]))
            register.call(fields["call"])  # a commitment names a call that exists
        if rtype is RecordType.COMMITMENT_PROPOSE and fields["owner"] not in ("both", identity.name, peer):
            raise DeskError(f"owner must be {identity.name}, {peer} or both")
    if rtype is RecordType.READOUT:
        register.call(thread)  # a readout is of a call
    if rtype is RecordType.NOTIFICATION:
        fields = _notification_fields(register, forms, fields, lang)
    record = DeskRecord(
        id=record_id, type=rtype, thread=thread, author=identity.name, peer=peer,
        lamport=register.next_lamport(thread), at_ns=now_ns, fields=check_fields(rtype, fields),
    )  # fmt: skip
    register.check(record)
    return sign_record(identity, record)


def _notification_fields(
    register: Register, forms: FormRegistry | None, fields: dict[str, Any], lang: str
) -> dict[str, Any]:
    """A notification's fields: its form checked against the form type, which it names by hash."""
    if forms is None:
        raise DeskError("this terminal has no form types loaded")
    form = forms.get(str(fields.get("form", "")))
    errors = form.validate(fields.get("data"), lang, forms.areas)
    if errors:
        raise DeskError(f"the {form.id} form is refused:\n  " + "\n  ".join(e.text for e in errors))
    answers = str(fields.get("answers") or "")
    if form.answers and not answers:
        raise DeskError(f"a {form.id} answers a {form.answers}: name it (--answers ID)")
    if answers:
        if not form.answers:
            raise DeskError(f"a {form.id} answers nothing; send it without --answers")
        answers = register.find(answers)
        answered = next((n for n in register.notices() if n.id == answers), None)
        if answered is None or answered.form != form.answers:
            raise DeskError(f"{answers} is not a {form.answers} this terminal holds")
    return {**fields, "form": form.id, "form_hash": form.digest, "answers": answers}


_CHANNEL_DEFAULTS: dict[RecordType, dict[str, Any]] = {
    RecordType.CHANNEL_CREATE: {"disclosure": "confidential", "members": []},
    RecordType.CHANNEL_REMOVE: {"reason": ""},
    RecordType.CHANNEL_LEAVE: {"reason": ""},
    RecordType.CHANNEL_MESSAGE: {"subject": "", "precedence": "routine", "lang": "en"},
}


def act_attachments(act: dict[str, Any]) -> tuple[Attachment, ...]:
    """The files a channel message's act brings (``attachments``: [name, bytes] each), checked as a
    message's are; they ride each member's carrier, the record commits to their digests."""
    given = act.get("attachments") or []
    if not isinstance(given, list) or not all(
        isinstance(a, list | tuple) and len(a) == 2 and isinstance(a[0], str) and isinstance(a[1], bytes) for a in given
    ):  # fmt: skip
        raise DeskError("'attachments' must list files as [name, bytes]")
    return tuple(Attachment(name=a[0], data=a[1]) for a in given)


def _channel_fields(act: dict[str, Any]) -> tuple[RecordType, dict[str, Any]]:
    rtype = CHANNEL_ACTS[str(act["act"])]
    fields = {k: v for k, v in act.items() if k not in ("act", "channel", "ui_lang", "attachments")}
    files = act_attachments(act)
    if files:  # left out when there are none: such a record is as it was before files could come along
        fields["attachments"] = [[a.name, hashlib.sha256(a.data).digest(), len(a.data)] for a in files]
    if "disclosure" in fields and isinstance(fields["disclosure"], str):
        fields["disclosure"] = Disclosure.parse(fields["disclosure"]).value
    if "precedence" in fields and isinstance(fields["precedence"], str):
        fields["precedence"] = Precedence.parse(fields["precedence"]).label
    for key in ("member", "name"):
        if isinstance(fields.get(key), str):
            fields[key] = fields[key].strip().lstrip("#").lower()
    if fields.get("relay") is False:
        del fields["relay"]  # a channel without relay says nothing of it (``records.OPTIONAL_FIELDS``)
    return rtype, {**_CHANNEL_DEFAULTS.get(rtype, {}), **fields}


def _make_channel_record(
    register: Register,
    identity: Identity,
    act: dict[str, Any],
    now_ns: int,
    randbytes: Callable[[int], bytes],
    peers: list[str],
) -> DeskRecord:
    """Build, check and sign a channel act's record (``desk.channels``)."""
    rtype, fields = _channel_fields(act)
    me = identity.name
    record_id = uuid7(now_ns // 1_000_000, randbytes(10))
    if rtype is RecordType.CHANNEL_CREATE:
        given = fields.get("members")
        if not isinstance(given, list) or not all(isinstance(m, str) for m in given):
            raise DeskError("channel.create needs its members (--member PEER, one or more)")
        members = sorted({m.strip().lower() for m in given} | {me})
        unknown = [m for m in members if m != me and m not in peers]
        if unknown:
            raise DeskError(f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a paired peer; "
                            "only paired, verified peers may be members (see `hotline peers`)")  # fmt: skip
        if len(members) < 2:
            raise DeskError("a channel needs at least one member besides this terminal (--member PEER)")
        if len(members) > MAX_CHANNEL_MEMBERS:
            raise DeskError(f"a channel has at most {MAX_CHANNEL_MEMBERS} members, this terminal among them")
        fields["members"] = members
        name = str(fields.get("name", ""))
        if any(c.name == name and c.member_state(me) in ("joined", "invited") for c in register.channels()):
            raise DeskError(f"this terminal is already in a channel named #{name}; choose another name")
        thread = record_id
    else:
        given_channel = act.get("channel")
        if not isinstance(given_channel, str) or not given_channel:
            raise DeskError(f"{act['act']} needs the channel it concerns (its name)")
        thread = register.find_channel(given_channel)
        channel = fold_channel(register.thread(thread))
        if rtype is RecordType.CHANNEL_ADD and fields.get("member") not in peers:
            raise DeskError(f"no paired peer named {fields.get('member')!r}; only paired peers may be members")
        if rtype is RecordType.CHANNEL_MESSAGE:
            if channel.member_state(me) != "joined":
                raise DeskError(
                    f"this terminal is not a joined member of #{channel.name}"
                    + ("; join it first (`hotline channel join`)" if me in channel.invited else "")
                )
            if not channel.joined - {me}:
                raise DeskError(f"no other member of #{channel.name} has joined yet; nothing would be sent")
            fields["seq"] = channel.last_seq(me) + 1
            fields["seen"] = channel.seen_vector(me)
            fields["to"] = sorted(channel.joined - {me})
    record = DeskRecord(
        id=record_id, type=rtype, thread=thread, author=me, peer="", lamport=register.next_lamport(thread),
        at_ns=now_ns, fields=check_fields(rtype, fields),
    )  # fmt: skip
    register.check(record)
    return sign_record(identity, record)


def channel_carrier(record: DeskRecord, member: str, channel: str, randbytes: Callable[[int], bytes],
                    me: str, attachments: tuple[Attachment, ...] = ()) -> MessageContent:  # fmt: skip
    """The message that takes one channel record to one member over its link, with the message's files
    (the record commits to their digests). A message keeps its precedence; a membership record goes as
    FLASH, so that no message on the same link overtakes the change it depends on (the queue orders by
    precedence, then first come)."""
    if record.type is RecordType.CHANNEL_MESSAGE:
        precedence = Precedence.parse(record.fields["precedence"])
        title = record.fields["subject"]
    else:
        precedence, title = Precedence.FLASH, str(record.fields.get("member", ""))
    return MessageContent(
        id=uuid7(record.at_ns // 1_000_000, randbytes(10)), sender=me, recipient=member,
        precedence=precedence, lang="zxx", subject=f"{record.type} #{channel}: {title}"[:500], body="",
        created_at_ns=record.at_ns, kind=MessageKind.RECORD, receipt=record.signed, attachments=attachments,
    )  # fmt: skip


def carrier(
    record: DeskRecord, register: Register, randbytes: Callable[[int], bytes], forms: FormRegistry | None = None
) -> MessageContent:
    """The message that takes a shared record to the peer, in the stream, at the thread's precedence."""
    precedence = Precedence.ROUTINE
    first = register.first(record.thread) if record.thread in register else record
    if first.type is RecordType.CALL_PROPOSE:
        precedence = Precedence.parse(first.fields["precedence"])
    if first.type is RecordType.NOTIFICATION and forms is not None and first.fields["form"] in forms.types:
        precedence = forms.types[first.fields["form"]].precedence
    title = first.fields.get("subject") or first.fields.get("title") or first.fields.get("form") or ""
    return MessageContent(
        id=uuid7(record.at_ns // 1_000_000, randbytes(10)), sender=record.author, recipient=record.peer,
        precedence=precedence, lang="zxx", subject=f"{record.type}: {title}"[:500], body="",
        created_at_ns=record.at_ns, kind=MessageKind.RECORD, receipt=record.signed,
    )  # fmt: skip
