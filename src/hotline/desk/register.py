"""The desk's register: calls and commitments as both sides hold them, folded from signed records.

Pure: records in, views out; the time is passed in. Both terminals hold the same
shared records (each journals what it sent and what it received), and each
thread is folded in the order of ``DeskRecord.order`` — Lamport number, then
author, then id — which is the same on both sides whatever order the records
arrived in. A record that the state machine does not allow at its place in that
order (a second accept, an accept that crossed a withdrawal) is kept on record
but *void*, with the reason; so when both sides act at once, both come to the
same answer, and neither journal is rewritten.

Calls (one thread per request)::

    proposed ──accept──▶ accepted ──start──▶ live ──end──▶ ended
       │  ▲                  │
       │  └─counter (turns)  └──withdraw (either side)──▶ withdrawn
       ├──decline──▶ declined
       └──withdraw (the side whose offer stands)──▶ withdrawn

    Only the side whose turn it is answers (the responder, or after a counter the
    proposer). "unanswered" is how a proposal looks once its answer-by time has
    passed with no answer; an answer after that is kept and marked late.

Commitments (one thread each; two-party: agreed only when the other side countersigns
the exact text it was offered)::

    proposed ──agree (other side, over the proposal's hash)──▶ agreed ──▶ fulfilled | lapsed | withdrawn
       ├──decline (other side)──▶ declined
       └──withdrawn (proposer)──▶ withdrawn
    agreed ──round N done──▶ agreed (rounds counted); "overdue" once its due time passes.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from dateutil.rrule import rrulestr

from hotline.core.errors import DeskError
from hotline.core.times import rfc3339
from hotline.desk.channels import Channel, fold_channel
from hotline.desk.notices import Notice, apply_notice, fold_notice
from hotline.desk.records import CommitmentStatus, DeskRecord, RecordType

REMIND_BEFORE_NS = 24 * 3600 * 1_000_000_000  # a commitment due within a day raises a reminder

OPEN_CALL_STATES = ("proposed", "countered", "accepted", "live")


@dataclass
class Step:
    """One record of a thread, in the agreed order, and what it did."""

    record: DeskRecord
    void: str = ""  # why the state machine did not apply it ("" = applied)


@dataclass
class Call:
    id: str
    proposer: str
    responder: str
    subject: str
    agenda: str
    proposed_at_ns: int  # when the request was made
    at_ns: int  # the time on the table (0: as soon as both are ready)
    duration_s: int
    answer_by_ns: int
    precedence: str
    disclosure: str
    every: str
    state: str = "proposed"
    turn: str = ""  # who must answer now
    answered_at_ns: int = 0
    answered_late: bool = False
    decline_reason: str = ""
    withdraw_reason: str = ""
    started_at_ns: int = 0
    ended_at_ns: int = 0
    started_by: str = ""
    ended_by: str = ""
    steps: list[Step] = field(default_factory=list)
    notes: list[DeskRecord] = field(default_factory=list)
    readouts: list[DeskRecord] = field(default_factory=list)

    def shown_state(self, now_ns: int) -> str:
        """The state a person is shown: a proposal whose answer-by time passed is "unanswered"."""
        if self.state == "proposed" and self.answer_by_ns and now_ns > self.answer_by_ns:
            return "unanswered"
        return self.state

    def next_occurrence_ns(self, now_ns: int) -> int:
        """For a recurring call (RFC 5545 RRULE in ``every``): its next time after ``now_ns``."""
        if not self.every or not self.at_ns:
            return 0
        start = dt.datetime.fromtimestamp(self.at_ns // 1_000_000_000, tz=dt.UTC)
        after = dt.datetime.fromtimestamp(now_ns // 1_000_000_000, tz=dt.UTC)
        found = rrulestr(self.every, dtstart=start).after(after)
        return 0 if found is None else int(found.timestamp()) * 1_000_000_000

    @property
    def duration_ns(self) -> int:
        return self.ended_at_ns - self.started_at_ns if self.ended_at_ns and self.started_at_ns else 0


@dataclass
class Commitment:
    id: str
    proposer: str
    other: str
    call: str
    title: str
    detail: str
    owner: str
    due_ns: int
    kind: str
    disclosure: str
    starts_ns: int
    ends_ns: int
    rounds: int
    proposed_at_ns: int
    digest: bytes
    state: str = "proposed"
    agreed_at_ns: int = 0
    agreed_by: str = ""
    closed_at_ns: int = 0
    reason: str = ""
    rounds_done: list[tuple[int, int, str]] = field(default_factory=list)  # (round, done_at_ns, note)
    steps: list[Step] = field(default_factory=list)

    def shown_state(self, now_ns: int) -> str:
        if self.state == "agreed" and self.due_ns and now_ns > self.due_ns:
            return "overdue"
        return self.state


def _parse_rrule(every: str, at_ns: int) -> None:
    """Refuse a recurrence dateutil cannot read, or one without a first time to count from."""
    if not every:
        return
    if not at_ns:
        raise DeskError("a recurring call (--every) needs its first time (--at)")
    freq = re.search(r"FREQ=([A-Z]+)", every.upper())
    if freq is not None and freq.group(1) in ("SECONDLY", "MINUTELY", "HOURLY"):
        # Finding the next time counts occurrences from the first: one a second since 1970 would hang
        # every listing, and no call between capitals recurs more often than daily.
        raise DeskError(f"a call recurs at most daily, not {freq.group(1)}")
    try:
        rrulestr(every, dtstart=dt.datetime.fromtimestamp(at_ns // 1_000_000_000, tz=dt.UTC))
    except (ValueError, TypeError) as e:
        raise DeskError(f"invalid recurrence {every!r}: {e} (expected an RFC 5545 RRULE such as "
                        "FREQ=WEEKLY;BYDAY=TH)") from None  # fmt: skip


# -- folding one thread ------------------------------------------------------------------------


def _fold_call(records: list[DeskRecord]) -> Call:
    first = records[0]
    f = first.fields
    call = Call(
        id=first.id, proposer=first.author, responder=first.peer, subject=f["subject"], agenda=f["agenda"],
        proposed_at_ns=first.at_ns, at_ns=f["at"], duration_s=f["duration_s"], answer_by_ns=f["answer_by"],
        precedence=f["precedence"], disclosure=f["disclosure"], every=f["every"], turn=first.peer,
    )  # fmt: skip
    call.steps.append(Step(first))
    for record in records[1:]:
        why = _apply_call(call, record)
        call.steps.append(Step(record, why))
    return call


def _apply_call(call: Call, record: DeskRecord) -> str:
    """Apply one record to a call; return why it is void, or "" if it applied."""
    who, rtype = record.author, record.type
    if who not in (call.proposer, call.responder):
        return f"{who} is not a party to this call"
    if rtype is RecordType.CALL_NOTE:
        call.notes.append(record)
        return ""
    if rtype is RecordType.READOUT:
        call.readouts.append(record)
        return ""
    if rtype is RecordType.CALL_PROPOSE:
        return "a call is proposed once"
    answering = rtype in (RecordType.CALL_ACCEPT, RecordType.CALL_DECLINE, RecordType.CALL_COUNTER)
    if answering:
        if call.state not in ("proposed", "countered"):
            return f"the call is already {call.state}; it cannot be answered now"
        if who != call.turn:
            return f"it is {call.turn}'s turn to answer, not {who}'s"
        if call.state == "proposed":
            call.answered_at_ns = record.at_ns
            call.answered_late = bool(call.answer_by_ns and record.at_ns > call.answer_by_ns)
        if rtype is RecordType.CALL_ACCEPT:
            call.state = "accepted"
            call.at_ns = record.fields["at"] or call.at_ns
        elif rtype is RecordType.CALL_DECLINE:
            call.state = "declined"
            call.decline_reason = record.fields["reason"]
        else:
            call.state = "countered"
            call.at_ns = record.fields["at"]
            call.turn = call.proposer if who == call.responder else call.responder
        return ""
    if rtype is RecordType.CALL_WITHDRAW:
        if call.state in ("proposed", "countered"):
            if who == call.turn:
                return f"{who} is asked to answer; it declines rather than withdraws"
        elif call.state != "accepted":
            return f"the call is already {call.state}; it cannot be withdrawn"
        call.state = "withdrawn"
        call.withdraw_reason = record.fields["reason"]
        return ""
    if rtype is RecordType.CALL_START:
        if call.state != "accepted":
            return f"the call is {call.state}; only an accepted call starts"
        call.state, call.started_at_ns, call.started_by = "live", record.at_ns, who
        return ""
    if rtype is RecordType.CALL_END:
        if call.state != "live":
            return f"the call is {call.state}; only a call in progress ends"
        call.state, call.ended_at_ns, call.ended_by = "ended", record.at_ns, who
        return ""
    return f"a {rtype} record does not belong to a call"


def _fold_commitment(records: list[DeskRecord]) -> Commitment:
    first = records[0]
    f = first.fields
    item = Commitment(
        id=first.id, proposer=first.author, other=first.peer, call=f["call"], title=f["title"], detail=f["detail"],
        owner=f["owner"], due_ns=f["due"], kind=f["kind"], disclosure=f["disclosure"], starts_ns=f["starts"],
        ends_ns=f["ends"], rounds=f["rounds"], proposed_at_ns=first.at_ns, digest=first.digest,
    )  # fmt: skip
    item.steps.append(Step(first))
    for record in records[1:]:
        item.steps.append(Step(record, _apply_commitment(item, record)))
    return item


def _apply_commitment(item: Commitment, record: DeskRecord) -> str:
    who, rtype, f = record.author, record.type, record.fields
    if who not in (item.proposer, item.other):
        return f"{who} is not a party to this commitment"
    if rtype is RecordType.COMMITMENT_AGREE:
        if item.state != "proposed":
            return f"the commitment is already {item.state}"
        if who == item.proposer:
            return "the side that proposed a commitment cannot countersign it"
        if f["text_hash"] != item.digest:
            return "the countersignature covers a different text than the one proposed"
        item.state, item.agreed_at_ns, item.agreed_by = "agreed", record.at_ns, who
        return ""
    if rtype is RecordType.COMMITMENT_DECLINE:
        if item.state != "proposed":
            return f"the commitment is already {item.state}"
        if who == item.proposer:
            return "the side that proposed a commitment withdraws it rather than declines"
        item.state, item.closed_at_ns, item.reason = "declined", record.at_ns, f["reason"]
        return ""
    if rtype is RecordType.COMMITMENT_STATUS:
        status = CommitmentStatus(f["status"])
        if item.state == "proposed":
            if status is not CommitmentStatus.WITHDRAWN or who != item.proposer:
                return "a commitment not yet agreed can only be withdrawn, by the side that proposed it"
        elif item.state != "agreed":
            return f"the commitment is already {item.state}"
        item.state, item.closed_at_ns, item.reason = status.value, record.at_ns, f["reason"]
        return ""
    if rtype is RecordType.COMMITMENT_ROUND:
        if item.state != "agreed":
            return f"the commitment is {item.state}; rounds are counted on an agreed one"
        number = f["round"]
        if number < 1 or (item.rounds and number > item.rounds):
            return f"round {number} is outside 1..{item.rounds or 'n'}"
        if any(done == number for done, _, _ in item.rounds_done):
            return f"round {number} is already recorded as done"
        item.rounds_done.append((number, f["done_at"] or record.at_ns, f["note"]))
        return ""
    return f"a {rtype} record does not belong to a commitment"


# -- the register --------------------------------------------------------------------------------


class Register:
    """Every desk record this terminal holds, and the calls and commitments they make."""

    def __init__(self, me: str, records: Iterable[DeskRecord] = ()) -> None:
        self.me = me
        self._threads: dict[str, list[DeskRecord]] = {}  # each kept in the agreed order as records come
        self._ids: set[str] = set()
        # Each thread's fold, until a record joins it: the engine asks for every call, commitment and
        # notification once a second (their deadlines), and a thread that did not change folds the same.
        self._folds: dict[str, Any] = {}
        for record in records:
            self.add(record)

    def __contains__(self, record_id: str) -> bool:
        return record_id in self._ids

    def add(self, record: DeskRecord) -> None:
        """Take a record in (journaled already, or about to be in the same transaction)."""
        if record.id in self._ids:
            return
        self._ids.add(record.id)
        bisect.insort(self._threads.setdefault(record.thread, []), record, key=lambda r: r.order)
        self._folds.pop(record.thread, None)

    def admissible(self, record: DeskRecord) -> str:
        """Why a record received from a peer cannot enter the register at all ("" if it can):
        a replayed id, or a thread this terminal never heard of (its proposal must come first)."""
        if record.id in self._ids:
            return f"desk record {record.id} was already received (a replay)"
        if not record.type.starts_thread and record.thread not in self._threads:
            return f"desk record {record.id} refers to {record.thread}, which this terminal does not hold"
        if record.type.starts_thread and record.thread in self._threads:
            return f"desk record {record.id} starts a thread that already exists"
        # Both checks below hold for every record this side's own make_record builds; a peer's
        # that fails one would break the fold for everyone: a record ordered before its thread's
        # proposal makes the thread neither a call nor a commitment (the first record names the
        # kind), and a recurrence dateutil cannot read makes every listing of calls raise.
        if not record.type.starts_thread and record.lamport <= self.first(record.thread).lamport:
            return f"desk record {record.id} is ordered before the proposal of {record.thread} (Lamport number)"
        if record.type is RecordType.CALL_PROPOSE:
            try:
                _parse_rrule(record.fields["every"], record.fields["at"])
            except DeskError as e:
                return f"desk record {record.id}: {e}"
        return ""

    def next_lamport(self, thread: str) -> int:
        return 1 + max((r.lamport for r in self._threads.get(thread, [])), default=0)

    def first(self, thread: str) -> DeskRecord:
        """The record that opened a thread (the proposal)."""
        records = self._threads.get(thread)
        if not records:
            raise DeskError(f"no call or commitment with id {thread}")
        return records[0]

    def thread_kind(self, thread: str) -> RecordType | None:
        records = self._threads.get(thread)
        return None if not records else records[0].type

    def _sorted(self, thread: str) -> list[DeskRecord]:
        return list(self._threads[thread])  # a copy: a fold or a caller may not disturb the order kept

    def _folded(self, thread: str, fold: Callable[[list[DeskRecord]], Any]) -> Any:
        if thread not in self._folds:
            self._folds[thread] = fold(self._sorted(thread))
        return self._folds[thread]

    def check(self, record: DeskRecord) -> None:
        """Refuse (``DeskError``) an act of this terminal's that the state machine would void."""
        why = self.admissible(record)
        if why:
            raise DeskError(why)
        if record.type is RecordType.CALL_PROPOSE:
            _parse_rrule(record.fields["every"], record.fields["at"])
        if record.type.starts_thread:
            return
        kind = self.thread_kind(record.thread)
        trial = [*self._sorted(record.thread), record]
        if kind is RecordType.NOTIFICATION:
            notice = fold_notice(self._sorted(record.thread))
            why = "no such notification" if notice is None else apply_notice(notice, record)
            if why:
                raise DeskError(why)
            return
        if kind is RecordType.CHANNEL_CREATE:
            why = next((s.void for s in fold_channel(sorted(trial, key=lambda r: r.order)).steps
                        if s.record.id == record.id), "")  # fmt: skip
            if why:
                raise DeskError(why)
            return
        if kind is RecordType.CALL_PROPOSE:
            steps = _fold_call(trial).steps
        elif kind is RecordType.COMMITMENT_PROPOSE:
            steps = _fold_commitment(trial).steps
        else:
            raise DeskError(f"{record.thread} is not a call or a commitment")
        why = next((s.void for s in steps if s.record.id == record.id), "")
        if why:
            raise DeskError(why)

    def threads(self, kind: RecordType) -> list[list[DeskRecord]]:
        """The threads a record of ``kind`` opened, each in the agreed order (oldest thread first)."""
        return [self._sorted(t) for t in self._thread_ids(kind)]

    def _thread_ids(self, kind: RecordType) -> list[str]:
        """The threads a record of ``kind`` opened, oldest first."""
        found = [records[0] for records in self._threads.values() if records[0].type is kind]
        return [r.thread for r in sorted(found, key=lambda r: (r.at_ns, r.id))]

    def find(self, prefix: str) -> str:
        """The thread an id (or an unambiguous start of one, as people type them) names."""
        if prefix in self._threads:
            return prefix
        found = [t for t in self._threads if t.startswith(prefix.lower())] if len(prefix) >= 4 else []
        if len(found) == 1:
            return found[0]
        if not found:
            raise DeskError(f"no call or commitment with id {prefix!r}; see `hotline calls` or `hotline commitments`")
        raise DeskError(f"{prefix!r} names {len(found)} calls or commitments; give more of the id")

    def call(self, call_id: str) -> Call:
        if self.thread_kind(call_id) is not RecordType.CALL_PROPOSE:
            raise DeskError(f"no call with id {call_id}; see `hotline calls`")
        return cast(Call, self._folded(call_id, _fold_call))

    def commitment(self, commitment_id: str) -> Commitment:
        if self.thread_kind(commitment_id) is not RecordType.COMMITMENT_PROPOSE:
            raise DeskError(f"no commitment with id {commitment_id}; see `hotline commitments`")
        return cast(Commitment, self._folded(commitment_id, _fold_commitment))

    def thread(self, thread: str) -> list[DeskRecord]:
        """A thread's records in the agreed order."""
        return self._sorted(thread) if thread in self._threads else []

    def channel(self, channel_id: str) -> Channel:
        if self.thread_kind(channel_id) is not RecordType.CHANNEL_CREATE:
            raise DeskError(f"no channel with id {channel_id}; see `hotline channels`")
        return cast(Channel, self._folded(channel_id, fold_channel))

    def channels(self) -> list[Channel]:
        """Every channel this terminal holds, oldest first."""
        return [self.channel(t) for t in self._thread_ids(RecordType.CHANNEL_CREATE)]

    def find_channel(self, name: str) -> str:
        """The channel a name (or an id, or the start of one) names."""
        wanted = name.strip().lstrip("#").lower()
        found = [c.id for c in self.channels() if c.name == wanted]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise DeskError(f"{len(found)} channels are named #{wanted} here; name one by its id")
        try:
            thread = self.find(wanted)
        except DeskError:
            thread = ""
        if self.thread_kind(thread) is not RecordType.CHANNEL_CREATE:
            raise DeskError(f"no channel named #{wanted}; see `hotline channels`")
        return thread

    def calls(self) -> list[Call]:
        """Every call, oldest request first."""
        found = [self.call(t) for t in self._thread_ids(RecordType.CALL_PROPOSE)]
        return sorted(found, key=lambda c: (c.proposed_at_ns, c.id))

    def commitments(self) -> list[Commitment]:
        found = [self.commitment(t) for t in self._thread_ids(RecordType.COMMITMENT_PROPOSE)]
        return sorted(found, key=lambda c: (c.proposed_at_ns, c.id))

    def notices(self) -> list[Notice]:
        """Every formatted notification held (sent or received and taken in), oldest first."""
        folds = (self._folded(t, fold_notice) for t in self._thread_ids(RecordType.NOTIFICATION))
        return [n for n in folds if n is not None]

    def answered_by(self) -> dict[str, list[str]]:
        """For each notification, the notifications that answer it."""
        found: dict[str, list[str]] = {}
        for notice in self.notices():
            if notice.answers:
                found.setdefault(notice.answers, []).append(notice.id)
        return found

    def alarms(self, now_ns: int) -> dict[tuple[str, str, str], str]:
        """The desk alarms that should be open now, keyed (kind, peer, subject), with their text.

        Both sides compute the same conditions from the same signed records, so each raises
        its own alarm once, and clears it when the condition ends."""
        due: dict[tuple[str, str, str], str] = {}
        for call in self.calls():
            if call.shown_state(now_ns) == "unanswered":
                other = call.responder if call.proposer == self.me else call.proposer
                if call.proposer == self.me:
                    text = f"no answer from {call.responder} to call request '{call.subject}' ({call.id})"
                else:
                    text = f"call request '{call.subject}' from {call.proposer} ({call.id}) was not answered here"
                due[("call-unanswered", other, call.id)] = text
        for item in self.commitments():
            other = item.other if item.proposer == self.me else item.proposer
            shown = item.shown_state(now_ns)
            if shown == "overdue":
                due[("commitment-overdue", other, item.id)] = f"commitment '{item.title}' ({item.id}) is overdue"
            elif shown == "agreed" and item.due_ns and item.due_ns - now_ns <= REMIND_BEFORE_NS:
                due[("commitment-due-soon", other, item.id)] = f"commitment '{item.title}' ({item.id}) is due soon"
        return due


# -- views for people and programs -----------------------------------------------------------------


def call_view(call: Call, now_ns: int) -> dict[str, Any]:
    """A call as the CLI's --json and the API show it (times in ns; the caller adds text times)."""
    return {
        "id": call.id, "subject": call.subject, "proposer": call.proposer, "responder": call.responder,
        "state": call.shown_state(now_ns), "turn": call.turn if call.state in ("proposed", "countered") else "",
        "proposed_at_ns": call.proposed_at_ns, "at_ns": call.at_ns, "duration_s": call.duration_s,
        "answer_by_ns": call.answer_by_ns, "answered_at_ns": call.answered_at_ns, "answered_late": call.answered_late,
        "precedence": call.precedence, "disclosure": call.disclosure, "every": call.every,
        "next_occurrence_ns": call.next_occurrence_ns(now_ns), "agenda": call.agenda,
        "decline_reason": call.decline_reason, "withdraw_reason": call.withdraw_reason,
        "started_at_ns": call.started_at_ns, "ended_at_ns": call.ended_at_ns,
        "started_by": call.started_by, "ended_by": call.ended_by,
        "actual_duration_s": call.duration_ns // 1_000_000_000,
        "history": [step_view(s) for s in call.steps],
        "notes": [{"id": n.id, "at_ns": n.at_ns, "text": n.fields["text"]} for n in call.notes],
        "readouts": [readout_view(r) for r in call.readouts],
    }  # fmt: skip


def commitment_view(item: Commitment, now_ns: int) -> dict[str, Any]:
    return {
        "id": item.id, "title": item.title, "detail": item.detail, "proposer": item.proposer, "other": item.other,
        "call": item.call, "owner": item.owner, "kind": item.kind, "disclosure": item.disclosure,
        "state": item.shown_state(now_ns), "due_ns": item.due_ns, "starts_ns": item.starts_ns, "ends_ns": item.ends_ns,
        "rounds": item.rounds, "rounds_done": [{"round": n, "done_at_ns": at, "note": note}
                                               for n, at, note in sorted(item.rounds_done)],
        "proposed_at_ns": item.proposed_at_ns, "agreed_at_ns": item.agreed_at_ns, "agreed_by": item.agreed_by,
        "closed_at_ns": item.closed_at_ns, "reason": item.reason, "text_sha256": item.digest.hex(),
        "history": [step_view(s) for s in item.steps],
    }  # fmt: skip


def readout_view(record: DeskRecord) -> dict[str, Any]:
    f = record.fields
    return {"id": record.id, "author": record.author, "lang": f["lang"], "disclosure": f["disclosure"],
            "shared": f["shared"], "published_at_ns": record.at_ns, "text": f["text"]}  # fmt: skip


def step_view(step: Step) -> dict[str, Any]:
    r = step.record
    detail = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in r.fields.items() if k not in ("text", "agenda")}
    return {"id": r.id, "type": r.type.value, "author": r.author, "at_ns": r.at_ns, "lamport": r.lamport,
            "void": step.void, "fields": detail}  # fmt: skip


def with_times(view: dict[str, Any]) -> dict[str, Any]:
    """A view with an RFC 3339 text beside every *_ns time (0 = none: null), as the CLI's --json
    and the HTTP API show them."""
    out: dict[str, Any] = {}
    for key, raw in view.items():
        if isinstance(raw, list):
            value: Any = [with_times(v) if isinstance(v, dict) else v for v in raw]
        elif isinstance(raw, dict):
            value = with_times(raw)
        else:
            value = raw
        out[key] = value
        if key.endswith("_ns") and isinstance(value, int) and not isinstance(value, bool):
            out[key[:-3]] = rfc3339(value) if value else None
    return out
