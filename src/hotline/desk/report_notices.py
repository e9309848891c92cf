"""The notifications of a period, for the desk report's internal edition.

Formatted notifications carry no disclosure mark (a form is what both sides agreed to
exchange, not a statement either side publishes), so the public edition leaves them
out entirely — it is never given them — and the internal edition counts them: per form
type and month, those sent late, those refused or not acknowledged, and the violation
reports by what became of them (answered, disputed, still open).

Pure: the register, the form types, the period and the time in; rows and counts out,
in English (the report's language), for ``desk.report`` to lay out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hotline.desk.forms import FormRegistry
from hotline.desk.notices import notice_view
from hotline.desk.register import Register, with_times

REPORT_STATUSES = ("answered", "disputed", "open")
NOTICE_COLUMNS = ("sent", "form", "from", "to", "state", "id")


@dataclass
class NoticeSection:
    views: list[dict[str, Any]] = field(default_factory=list)  # sent in the period, oldest first
    reports: Counter[str] = field(default_factory=Counter)  # violation reports by status

    def __bool__(self) -> bool:
        return bool(self.views)

    @property
    def late(self) -> list[dict[str, Any]]:
        return [v for v in self.views if v["late"]]

    def per_type_and_month(self) -> list[tuple[str, str, int]]:
        counts = Counter((v["title"], v["sent_at"][:7]) for v in self.views)
        return sorted(((form, month, n) for (form, month), n in counts.items()), key=lambda r: (r[1], r[0]))

    def summary(self) -> str:
        states = Counter(v["status"] for v in self.views)
        overdue = sum(1 for v in self.views if v["overdue"])
        line = (f"Notifications in the period: {len(self.views)} ({states['acknowledged']} acknowledged, "
                f"{states['open']} open, {states['refused']} refused; {len(self.late)} late, {overdue} not "
                f"acknowledged within their handling time).")  # fmt: skip
        if sum(self.reports.values()):
            line += " Violation reports: " + ", ".join(f"{self.reports[s]} {s}" for s in REPORT_STATUSES) + "."
        return line

    def row(self, v: dict[str, Any]) -> list[str]:
        state = v["status"] + (", late" if v["late"] else "") + (", overdue" if v["overdue"] else "")
        return [v["sent_at"][:16].replace("T", " ") + " UTC", v["title"], v["author"], v["peer"], state, v["id"]]


def select_notices(register: Register, forms: FormRegistry, start_ns: int, end_ns: int, now_ns: int) -> NoticeSection:
    """The notifications sent in ``[start_ns, end_ns)`` (0: open), as of ``now_ns``. A violation report's
    status counts its responses whenever they were sent."""
    answered = register.answered_by()
    views = {
        n.id: with_times(notice_view(n, forms, "en", now_ns, answered.get(n.id))) for n in register.notices()
    }  # fmt: skip
    inside = [v for v in views.values() if v["sent_at_ns"] >= start_ns and (not end_ns or v["sent_at_ns"] < end_ns)]
    section = NoticeSection(views=inside)
    for v in inside:
        if v["form"] != "violation-report":
            continue
        answers = [views[a] for a in v["answered_by"] if a in views]
        if any(a["data"].get("status") == "DISPUTED" for a in answers):
            section.reports["disputed"] += 1
        else:
            section.reports["answered" if answers else "open"] += 1
    return section
