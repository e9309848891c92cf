"""The desk in the engine: signed records of calls, readouts and commitments, in and out.

``DeskHandling`` is the engine's half that deals with desk records (the engine
inherits it). An act of this side (``submit_desk``) is built, checked against
the register and signed (``desk.acts``); a shared record then leaves as a
message of kind ``record`` through the ordinary group commit — journaled before
it is sealed, sealed before it is sent, delivered exactly once — and a kept one
(a note, an unshared readout) is journaled here only.

A record that arrives inside an authentic envelope is checked before it enters
the register: its own signature against the peer's pinned key, its author and
addressee, its id not seen before, its thread known. One that fails is refused
with a reason in the log and never enters the desk; the envelope that carried it
stays in the stream's record (the receipts the two sides exchange commit to
every envelope, so the stream is journaled whole).

Desk alarms (a request nobody answered, a commitment due or overdue) follow from
the register and the time: ``_desk_alarms`` raises and clears them on the tick.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hotline.core.alarms import DESK_KINDS
from hotline.core.errors import HotlineError, RemoteProtocolError
from hotline.core.model import Attachment, MessageContent, uuid7
from hotline.core.supervision import Supervisor
from hotline.crypto.identity import Identity
from hotline.desk import acts
from hotline.desk.channels import admission_problem, fanout, not_acknowledged, receipts_by_record
from hotline.desk.forms import FormRegistry
from hotline.desk.notices import notice_alarms
from hotline.desk.records import DeskRecord, RecordType, decode_record, open_record, sign_record
from hotline.desk.register import Register
from hotline.engine.links import about
from hotline.engine.peer import Clock, PeerState
from hotline.engine.trust import open_with
from hotline.storage.base import TerminalStore

log = logging.getLogger("hotline.engine")

DESK_ALARM_EVERY_NS = 1_000_000_000  # the desk's deadlines are checked once a second at most


@dataclass
class _DeskAct:
    record: DeskRecord
    done: Callable[[Exception | None, DeskRecord | None], None]
    by: str = ""
    files: tuple[Attachment, ...] = ()  # a channel message's, to ride each member's carrier


class DeskHandling:
    """Desk records; the engine supplies the stream and the commit."""

    name: str
    identity: Identity
    clock: Clock
    store: TerminalStore
    peers: dict[str, PeerState]
    supervisor: Supervisor
    damage: str
    _request_flush: Callable[[], None]
    _randbytes: Callable[[int], bytes]
    _refusal: Callable[[], HotlineError]  # why nothing is journaled now (the engine's)
    forms: FormRegistry

    def _init_desk(self) -> None:
        self.desk = Register(self.name, (decode_record(signed) for signed in self.store.desk_records()))
        self._desk_acts: list[_DeskAct] = []
        self._desk_in: dict[str, DeskRecord] = {}  # carrier message id -> record, until journaled
        self._desk_checked_ns = 0
        self._track_channel_acks()

    def _reload_register(self) -> None:
        """The register as journaled (records received but not yet journaled stay in ``_desk_in``)."""
        self.desk = Register(self.name, (decode_record(signed) for signed in self.store.desk_records()))

    def reload_desk(self) -> None:
        """Another process journaled desk records while this terminal ran (rare): read them in."""
        for signed in self.store.desk_records():
            self.desk.add(decode_record(signed))

    def _refuse_notification(self, record: DeskRecord, why: str) -> None:
        """Tell the sender, signed, why its notification was not taken in (both sides then see why)."""
        refusal = sign_record(self.identity, DeskRecord(
            id=uuid7(self.clock.wall_ns() // 1_000_000, self._randbytes(10)), type=RecordType.NOTIFICATION_REFUSED,
            thread=record.id, author=self.name, peer=record.author, lamport=record.lamport + 1,
            at_ns=self.clock.wall_ns(),
            fields={"reason": why[:500], "form": record.fields["form"], "form_hash": record.fields["form_hash"]},
        ))  # fmt: skip
        self.desk.add(refusal)
        self._desk_acts.append(_DeskAct(refusal, lambda error, record: None))
        self._request_flush()

    def _notification_problem(self, record: DeskRecord) -> str:
        """Why a peer's notification cannot be taken in here ("" if it can): a peer's form is untrusted."""
        f = record.fields
        form = self.forms.types.get(f["form"])
        if form is None:
            return f"form type {f['form']!r} is not known at {self.name}"
        if form.digest != f["form_hash"]:
            here, sent = form.digest.hex()[:12], f["form_hash"].hex()[:12]
            return (f"{self.name} holds a different version of form type {form.id!r} (here {here}, sent {sent}): "
                    "both sides need the same one")  # fmt: skip
        errors = form.validate(f["data"], "en", self.forms.areas)
        if errors:
            return "its fields fail the form here: " + "; ".join(e.text for e in errors)
        if f["answers"] and not any(n.id == f["answers"] and n.form == form.answers for n in self.desk.notices()):
            return f"it answers {f['answers']}, which is not a {form.answers or 'notification'} held here"
        return ""

    def submit_desk(
        self, act: dict[str, Any], done: Callable[[Exception | None, DeskRecord | None], None], by: str = ""
    ) -> None:
        """Build, check and sign the record of an act; ``done(error, record)`` runs after the commit."""
        if self.damage:
            done(self._refusal(), None)
            return
        try:
            record = acts.make_record(
                self.desk,
                self.identity,
                act,
                self.clock.wall_ns(),
                self._randbytes,
                sorted(self.peers),
                self.forms,
                str(act.get("ui_lang") or "en"),
            )
        except HotlineError as e:
            done(e, None)
            return
        self.desk.add(record)  # the next act is checked against this one, even before the commit
        self._desk_acts.append(_DeskAct(record, done, by, acts.act_attachments(act)))
        self._request_flush()

    def _write_desk_acts(self, now_ns: int) -> list[tuple[_DeskAct, list[MessageContent]]]:
        """Inside the commit: journal this side's records; a shared one is queued to its peer, a
        channel's to each member it goes to (one carrier per member, the same signed record)."""
        written: list[tuple[_DeskAct, list[MessageContent]]] = []
        for item in self._desk_acts:
            messages = file_record(self.store, self.desk, item.record, now_ns, self._randbytes, item.by, self.forms,
                                   item.files)  # fmt: skip
            for message in messages:
                self.peers[message.recipient].queue.push(message.id, message.precedence)
            if item.record.type is RecordType.CHANNEL_MESSAGE and messages:
                self.supervisor.track_ack(item.record.id, _ack_subject(self.desk, item.record),
                                          item.record.fields["precedence"], now_ns)  # fmt: skip
            written.append((item, messages))
        self._desk_acts.clear()
        return written

    def _check_record_item(self, peer: PeerState, content: MessageContent, keys: list[bytes]) -> None:
        """A desk record arrived in an authentic envelope; it is signed by one of ``keys`` (the peer's
        key when it was made, ``trust.item_keys``): take it into the desk, or refuse it."""
        try:
            if _is_channel_record(content.receipt):
                self._check_channel_item(peer, content)
                return
            record = open_with(keys, lambda k: open_record(content.receipt, k))
            if record.author != peer.name or record.peer != self.name:
                raise RemoteProtocolError(
                    f"it is by {record.author} for {record.peer}, but came from {peer.name} to {self.name}"
                )
            if not record.shared:
                raise RemoteProtocolError(f"a {record.type} record is kept by its author, never sent")
            pending = any(r.id == record.id for r in self._desk_in.values())
            why = "a replay of a record already received" if pending else self.desk.admissible(record)
            if why:
                raise RemoteProtocolError(why)
        except RemoteProtocolError as e:
            log.error("desk record in message %s from %s refused: %s", content.id, peer.name, e,
                      extra=about(peer.name, message_id=content.id))  # fmt: skip
            return
        if record.type is RecordType.NOTIFICATION:
            problem = self._notification_problem(record)
            if problem:
                log.error("%s notification %s from %s refused: %s", record.fields["form"], record.id, peer.name,
                          problem, extra=about(peer.name, message_id=content.id))  # fmt: skip
                self._refuse_notification(record, problem)
                return
        self._desk_in[content.id] = record

    def _check_channel_item(self, peer: PeerState, content: MessageContent) -> None:
        """A channel's record arrived from ``peer``: its author's own signature, a member's, or it is
        refused (``RemoteProtocolError``). A message comes from its author; the channel's membership
        history may come from any member, each record signed by its own author (``channels.fanout``)."""
        author_name = _claimed_author(content.receipt)
        if author_name == self.name:  # this terminal's own, in the history another member forwards
            if decode_record(content.receipt).signed in {
                r.signed for r in self.desk.thread(decode_record(content.receipt).thread)
            }:
                return
            raise RemoteProtocolError(f"it is signed in this terminal's name ({self.name}) but was never written here")
        author = peer if author_name == peer.name else self.peers.get(author_name)
        if author is None:
            raise RemoteProtocolError(f"it is signed in the name of {author_name!r}, which is not paired here")
        record = open_record(content.receipt, author.identity_key)
        if not record.type.is_channel or record.author != author.name:
            raise RemoteProtocolError(f"it claims to be by {author_name} but is by {record.author}")
        forwarded = record.author != peer.name
        if forwarded and not record.type.is_membership:
            raise RemoteProtocolError(f"a channel message by {record.author} came from {peer.name}, not its author")
        pending = [r for r in self._desk_in.values() if r.thread == record.thread]  # this batch, not yet journaled
        if forwarded and (record.id in self.desk or any(r.id == record.id for r in pending)):
            log.debug("channel record %s, forwarded by %s, is already held", record.id, peer.name)
            return
        why = admission_problem([*self.desk.thread(record.thread), *pending], record, self.name)
        committed = record.fields.get("attachments", [])
        if [[a.name, hashlib.sha256(a.data).digest(), len(a.data)] for a in content.attachments] != committed:
            why = why or f"its files are not those its signed record commits to ({len(committed)} named)"
        if why:
            raise RemoteProtocolError(why)
        self._desk_in[content.id] = record

    def _write_desk_in(self, content: MessageContent, now_ns: int) -> DeskRecord | None:
        """Inside the commit, after its carrier is journaled: file a received record."""
        record = self._desk_in.pop(content.id, None)
        if record is None:
            return None
        self.store.record_desk(record.id, record.signed, "in", content.id, now_ns)
        self.desk.add(record)
        if record.type is RecordType.CHANNEL_MESSAGE:  # a person here acknowledges it, as any message
            self.supervisor.track_ack(content.id, content.sender, content.precedence.label, now_ns)
        return record

    # -- acknowledgements of channel messages ------------------------------------------------------

    def _track_channel_acks(self) -> None:
        """At start: the channel messages still waiting for a person's acknowledgement, both ways — ours
        (``#channel``: until every member it went to has acknowledged) and those received here."""
        sent = receipts_by_record(self.store.record_carriers("out"))
        for row in self.store.record_carriers("in"):
            record = decode_record(row["signed"])
            if record.type is RecordType.CHANNEL_MESSAGE and not row["acknowledged_at_ns"]:
                self.supervisor.track_ack(row["id"], row["peer"], record.fields["precedence"], row["received_at_ns"])
        for channel in self.desk.channels():
            for message in channel.messages:
                receipts = sent.get(message.record.signed, {})
                if message.author == self.name and not_acknowledged(receipts):
                    self.supervisor.track_ack(message.record.id, f"#{channel.name}",
                                              message.record.fields["precedence"], message.record.at_ns)  # fmt: skip

    def _carried_message(self, carrier_id: str) -> DeskRecord | None:
        """The channel message a carrier (either way) brought, or None."""
        found = self.store.carried_record(carrier_id)
        if found is None:
            return None
        record = decode_record(found[0])
        return record if record.type is RecordType.CHANNEL_MESSAGE else None

    def _waiting_for(self, record: DeskRecord) -> list[str]:
        """The members one of this terminal's channel messages went to that have not acknowledged it."""
        rows = self.store.record_carriers("out", record.signed)
        return not_acknowledged(receipts_by_record(rows).get(record.signed, {}))

    def _channel_ack_due(self, record_id: str, where: str, now_ns: int) -> None:
        """One of our messages to channel ``where`` (``#name``) reached its handling time: overdue while
        any member it went to has not acknowledged it; the alarm names them."""
        for channel in self.desk.channels():
            for message in channel.messages if f"#{channel.name}" == where else ():
                waiting = self._waiting_for(message.record) if message.record.id == record_id else []
                if waiting:
                    self.supervisor.raise_alarm("ack-overdue", where, record_id,
                                                _overdue_detail(message.record, waiting), now_ns)  # fmt: skip

    def _channel_acknowledged(self, carrier_id: str, member: str, by: str, now_ns: int) -> None:
        """A member's acknowledgement of one of our channel messages came back: the message's alarm, if
        it is overdue, clears once every member has acknowledged; until then it names those still to."""
        found = self.store.carried_record(carrier_id)
        if found is None or found[1] != "out":
            return
        record = decode_record(found[0])
        if record.type is not RecordType.CHANNEL_MESSAGE:
            return
        where = _ack_subject(self.desk, record)
        if not self.supervisor.board.is_active("ack-overdue", where, record.id):
            return
        waiting = self._waiting_for(record)
        self.supervisor.clear_alarm("ack-overdue", where, record.id, f"acknowledged by {member} ({by or '?'})"
                                    + (f"; still waiting for {', '.join(waiting)}" if waiting else
                                       "; every member has acknowledged it"), now_ns)  # fmt: skip
        if waiting:
            self.supervisor.raise_alarm("ack-overdue", where, record.id, _overdue_detail(record, waiting), now_ns)

    def _desk_alarms(self, now_ns: int, force: bool = False) -> None:
        """Raise the desk alarms whose condition holds, and clear those whose condition ended."""
        if not force and now_ns - self._desk_checked_ns < DESK_ALARM_EVERY_NS:
            return
        self._desk_checked_ns = now_ns
        due = {**self.desk.alarms(now_ns), **notice_alarms(self.desk.notices(), self.forms, self.name, now_ns)}
        for key, detail in due.items():
            self.supervisor.raise_alarm(*key, detail, now_ns)
        for alarm in self.supervisor.board.listing():
            key = (str(alarm["kind"]), str(alarm["peer"]), str(alarm["subject"]))
            if key[0] in DESK_KINDS and key not in due:
                self.supervisor.clear_alarm(*key, "answered, fulfilled or closed", now_ns)


def _ack_subject(register: Register, record: DeskRecord) -> str:
    """Where an alarm about a channel message points instead of a peer: ``#`` and the channel's name."""
    return f"#{register.first(record.thread).fields['name']}"


def _overdue_detail(record: DeskRecord, waiting: list[str]) -> str:
    f = record.fields
    return (f"{f['precedence'].upper()} message {record.id} to the channel ({f['subject'] or f['text'][:60]!r}) was "
            f"not acknowledged within its handling time by {', '.join(waiting)}")  # fmt: skip


def _claimed_author(signed: bytes) -> str:
    """The author a signed record names, read before its signature is checked — only to pick the
    key to check it with; nothing else of it is trusted until then."""
    try:
        return decode_record(signed).author
    except RemoteProtocolError:
        raise
    except HotlineError as e:
        raise RemoteProtocolError(f"malformed desk record: {e}") from None


def _is_channel_record(signed: bytes) -> bool:
    try:
        return decode_record(signed).type.is_channel
    except HotlineError:
        return False  # refused with its reason by ``open_record`` below


def file_record(
    store: TerminalStore,
    register: Register,
    record: DeskRecord,
    now_ns: int,
    randbytes: Callable[[int], bytes],
    by: str = "",
    forms: FormRegistry | None = None,
    files: tuple[Attachment, ...] = (),
) -> list[MessageContent]:
    """Journal one of this side's records (inside the caller's transaction): a shared one with the
    message that carries it to the peer, which is returned to be queued; a channel's with one
    carrier per member it goes to (``channels.fanout``); a kept one on its own.
    The running terminal and ``hotline`` with the terminal stopped both file records here."""
    messages: list[MessageContent] = []
    if record.type.is_channel:
        thread = register.thread(record.thread) if record.id in register else [*register.thread(record.thread), record]
        name = str(thread[0].fields["name"])
        for member, records in fanout(thread, record, register.me):
            messages += [acts.channel_carrier(r, member, name, randbytes, register.me, files if r is record else ())
                         for r in records]  # fmt: skip
    elif record.shared:
        messages.append(acts.carrier(record, register, randbytes, forms))
    for message in messages:
        store.accept(message, now_ns)
    if messages:
        own = next((m for m in messages if m.receipt == record.signed), messages[0])
        store.record_desk(record.id, record.signed, "out", own.id, now_ns)
    else:
        store.record_desk(record.id, record.signed, "local", "", now_ns)
    if by:
        store.record_operator(str(record.type), {"id": record.id, "by": by}, now_ns)
    return messages


def desk_event(record: DeskRecord, direction: str) -> dict[str, Any]:
    """What listeners (the console, live) hear of a desk record once it is durable."""
    return {"event": "desk", "direction": direction, "id": record.id, "type": str(record.type),
            "thread": record.thread, "author": record.author, "peer": record.peer}  # fmt: skip
