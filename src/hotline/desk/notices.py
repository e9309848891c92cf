"""Formatted notifications as both sides hold them: sent, acknowledged, refused, answered, late.

Pure, like ``desk.register``: one thread per notification, folded in the agreed
order. The receiver's person acknowledges it ("received and understood") once;
a receiver that cannot take it (a form type it does not hold, a different
version of it, fields its schema refuses) sends back a signed refusal with the
reason, so both sides see why. A response (a form type that ``answers``
another, such as a violation report's response) is a notification of its own
that names the one it answers.

Alarms, on both sides alike, from the same signed records and form types:
``notification-unacknowledged`` once a notification's handling time passed
without an acknowledgement, ``notification-late`` for one sent later than its
form's lead time allows (a launch notified less than 24 h before its window).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hotline.desk.forms import FormRegistry, FormType
from hotline.desk.records import DeskRecord, RecordType


@dataclass
class Notice:
    id: str
    form: str
    form_hash: bytes
    author: str
    peer: str
    sent_at_ns: int
    data: dict[str, Any]
    answers: str
    acknowledged_at_ns: int = 0
    acknowledged_by: str = ""
    refused: str = ""
    void: list[tuple[str, str]] = field(default_factory=list)  # (record id, why)


def fold_notice(records: list[DeskRecord]) -> Notice | None:
    """A notification's thread in the agreed order; None for a thread holding only a refusal that this
    side sent (it never took the notification in, so there is nothing else to show)."""
    first = records[0]
    if first.type is not RecordType.NOTIFICATION:
        return None
    f = first.fields
    notice = Notice(first.id, f["form"], f["form_hash"], first.author, first.peer, first.at_ns, f["data"],
                    f["answers"])  # fmt: skip
    for record in records[1:]:
        why = apply_notice(notice, record)
        if why:
            notice.void.append((record.id, why))
    return notice


def apply_notice(notice: Notice, record: DeskRecord) -> str:
    """Apply one record; return why it is void ("" if it applied)."""
    if record.author != notice.peer:
        return "only the side that received a notification acknowledges or refuses it"
    if record.type is RecordType.NOTIFICATION_ACK:
        if notice.acknowledged_at_ns or notice.refused:
            return "the notification is already acknowledged or refused"
        notice.acknowledged_at_ns, notice.acknowledged_by = record.at_ns, record.fields["by"]
        return ""
    if record.type is RecordType.NOTIFICATION_REFUSED:
        if notice.acknowledged_at_ns or notice.refused:
            return "the notification is already acknowledged or refused"
        notice.refused = record.fields["reason"]
        return ""
    return f"a {record.type} record does not belong to a notification"


def refusals_sent(threads: Iterable[list[DeskRecord]], me: str) -> list[DeskRecord]:
    """Refusals this side sent of notifications it could not take in (shown beside the others)."""
    return [records[0] for records in threads if records[0].author == me]


def notice_view(notice: Notice, forms: FormRegistry, lang: str, now_ns: int,
                answered_by: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """A notification for the CLI's --json, the API and the console, rendered in ``lang``."""
    form = forms.types.get(notice.form)
    same_version = form is not None and form.digest == notice.form_hash
    return {
        "id": notice.id, "form": notice.form, "title": form.title(lang) if form else notice.form,
        "form_sha256": notice.form_hash.hex(), "form_known": same_version, "author": notice.author,
        "peer": notice.peer, "sent_at_ns": notice.sent_at_ns, "data": notice.data, "answers": notice.answers,
        "answered_by": answered_by or [], "acknowledged_at_ns": notice.acknowledged_at_ns,
        "acknowledged_by": notice.acknowledged_by, "refused": notice.refused,
        "late": bool(form and same_version and form.late(notice.data, notice.sent_at_ns)),
        "overdue": _overdue(notice, form, now_ns),
        "fields": [{"label": label, "value": value} for label, value in form.render(notice.data, lang)]
        if form and same_version else [],
        "status": _status(notice),
    }  # fmt: skip


def _status(notice: Notice) -> str:
    if notice.refused:
        return "refused"
    return "acknowledged" if notice.acknowledged_at_ns else "open"


def _overdue(notice: Notice, form: FormType | None, now_ns: int) -> bool:
    if form is None or not form.handling_s or notice.acknowledged_at_ns or notice.refused:
        return False
    return now_ns > notice.sent_at_ns + form.handling_s * 1_000_000_000


def notice_alarms(notices: list[Notice], forms: FormRegistry, me: str, now_ns: int) -> dict[tuple[str, str, str], str]:
    """The notification alarms that should be open now, keyed (kind, peer, subject)."""
    due: dict[tuple[str, str, str], str] = {}
    for notice in notices:
        form = forms.types.get(notice.form)
        if form is None or form.digest != notice.form_hash or notice.refused:
            continue
        other = notice.peer if notice.author == me else notice.author
        title = form.title("en")
        if _overdue(notice, form, now_ns):
            due[("notification-unacknowledged", other, notice.id)] = (
                f"{title} {notice.id} from {notice.author} is not acknowledged within its handling time"
            )
        if form.late(notice.data, notice.sent_at_ns) and not notice.acknowledged_at_ns:
            due[("notification-late", other, notice.id)] = (
                f"{title} {notice.id} from {notice.author} was sent later than its {form.lead_s // 3600} h lead time"
            )
    return due


def tallies(views: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts a reader compares over time: per form type and month, late ones, and violation
    reports by what became of them (answered, disputed, open)."""
    per_month: dict[str, dict[str, int]] = {}
    late: dict[str, int] = {}
    for v in views:
        month = str(v.get("sent_at", ""))[:7]
        per_month.setdefault(v["form"], {}).setdefault(month, 0)
        per_month[v["form"]][month] += 1
        if v["late"]:
            late[v["form"]] = late.get(v["form"], 0) + 1
    by_id = {v["id"]: v for v in views}
    reports: dict[str, int] = {"answered": 0, "disputed": 0, "open": 0}
    for v in views:
        if v["form"] != "violation-report":
            continue
        answers = [by_id[a] for a in v["answered_by"] if a in by_id]
        if any(a["data"].get("status") == "DISPUTED" for a in answers):
            reports["disputed"] += 1
        elif answers:
            reports["answered"] += 1
        else:
            reports["open"] += 1
    return {"per_type_and_month": per_month, "late": late, "violation_reports": reports, "total": len(views)}
