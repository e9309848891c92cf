"""The desk's report: the calls, readouts and commitments of a period, as a document to hand on.

Pure: a register, a period, an audience and the time in; the text of a Markdown or
a self-contained HTML document out (the PDF is the HTML printed by the shell). Two
editions:

- **public**: only what is marked ``public`` — each call, readout and commitment
  by its own disclosure, and a readout only if its call is public too (a public
  readout of a secret call would announce the call). Everything else is left out
  *before* anything is counted or drawn, so nothing of it — no count, no id, no
  bar in a chart — can reach the document.
- **internal**: everything, each item marked with its disclosure, and how many
  contacts were kept off the public record ("6 announced, 11 held"); and the
  formatted notifications of the period, which carry no disclosure mark and so
  appear here only (``desk.report_notices``).

A contact belongs to the period by the time it took place, or, if it never did,
by the time it was requested. A readout belongs by the time it was written; a
commitment if it was open at some time in the period. Where each stands is as of
``now_ns``. The charts are matplotlib figures drawn as SVG (glyphs as paths, fixed
ids, no date), so the same input gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import enum
import html
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from hotline.core.times import format_duration
from hotline.desk.forms import FormRegistry
from hotline.desk.records import DeskRecord, Disclosure, RecordType
from hotline.desk.register import Call, Commitment, Register
from hotline.desk.report_notices import NOTICE_COLUMNS, REPORT_STATUSES, NoticeSection, select_notices

NS = 1_000_000_000
MAX_MONTH_BINS = 36  # beyond three years the charts count by year


class Audience(enum.StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"


class Format(enum.StrEnum):
    HTML = "html"
    MD = "md"


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open span of time, ``start_ns <= t < end_ns``; 0 leaves that end open."""

    start_ns: int = 0
    end_ns: int = 0

    def __contains__(self, ns: object) -> bool:
        if not isinstance(ns, int):
            return False
        return ns >= self.start_ns and (not self.end_ns or ns < self.end_ns)

    def label(self) -> str:
        if not self.start_ns and not self.end_ns:
            return "the whole record"
        start = _day_or_time(self.start_ns) if self.start_ns else "the beginning of the record"
        if not self.end_ns:
            return f"{start} onwards"
        end = self.end_ns - 24 * 3600 * NS if _is_midnight(self.end_ns) else self.end_ns
        return f"{start} to {_day_or_time(end)}"


# -- what goes in ---------------------------------------------------------------------------------


@dataclass
class Selection:
    """What one edition may show; for the public edition nothing else was ever looked at."""

    me: str
    period: Period
    audience: Audience
    now_ns: int
    calls: list[Call]
    readouts: list[tuple[DeskRecord, Call]]
    commitments: list[Commitment]
    call_subjects: dict[str, str]  # call id -> subject, for the calls this edition may name
    held: Counter[str] = field(default_factory=Counter)  # internal only: contacts by disclosure
    unreleased_readouts: set[str] = field(default_factory=set)  # internal: public readouts of non-public calls
    notices: NoticeSection = field(default_factory=NoticeSection)  # internal only: they have no disclosure mark


def contact_time(call: Call) -> int:
    """When a contact happened: when it took place, or, if it never did, when it was requested."""
    return call.started_at_ns or call.proposed_at_ns


def request_outcome(call: Call, now_ns: int) -> str:
    """How a request was met: answered (on time or late), unanswered, awaiting an answer, or withdrawn."""
    if call.answered_at_ns:
        return "answered late" if call.answered_late else "answered"
    if call.state == "withdrawn":
        withdrawals = [s.record.at_ns for s in call.steps if s.record.type is RecordType.CALL_WITHDRAW and not s.void]
        withdrawn_at = max(withdrawals, default=0)
        if not call.answer_by_ns or withdrawn_at <= call.answer_by_ns:
            return "withdrawn unanswered"
    if call.answer_by_ns and now_ns > call.answer_by_ns:
        return "unanswered"
    return "awaiting answer"


def commitment_state_at(item: Commitment, t_ns: int) -> str:
    """The state a commitment was in at a time ("" before it was proposed)."""
    if t_ns < item.proposed_at_ns:
        return ""
    if item.closed_at_ns and t_ns >= item.closed_at_ns:
        return item.state
    if item.agreed_at_ns and t_ns >= item.agreed_at_ns:
        return "overdue" if item.due_ns and t_ns > item.due_ns else "agreed"
    return "proposed"


def _open_during(item: Commitment, period: Period) -> bool:
    if period.end_ns and item.proposed_at_ns >= period.end_ns:
        return False
    return not (item.closed_at_ns and item.closed_at_ns < period.start_ns)


def select(
    register: Register, period: Period, audience: Audience, now_ns: int, forms: FormRegistry | None = None
) -> Selection:
    """The items of a period this edition may show (the public edition drops the rest first)."""
    public = Disclosure.PUBLIC.value
    internal = audience is Audience.INTERNAL
    all_calls = register.calls()
    shown_calls = [c for c in all_calls if internal or c.disclosure == public]
    calls = [c for c in shown_calls if contact_time(c) in period]
    readouts = [
        (r, c) for c in shown_calls for r in c.readouts
        if r.at_ns in period and (internal or r.fields["disclosure"] == public)
    ]  # fmt: skip
    readouts.sort(key=lambda rc: (rc[0].at_ns, rc[0].id))
    commitments = [
        c for c in register.commitments() if (internal or c.disclosure == public) and _open_during(c, period)
    ]
    selection = Selection(
        me=register.me, period=period, audience=audience, now_ns=now_ns, calls=calls, readouts=readouts,
        commitments=commitments, call_subjects={c.id: c.subject for c in shown_calls},
    )  # fmt: skip
    if internal:
        selection.held = Counter(c.disclosure for c in calls)
        selection.unreleased_readouts = {
            r.id for r, c in readouts if r.fields["disclosure"] == public and c.disclosure != public
        }
        if forms is not None:
            selection.notices = select_notices(register, forms, period.start_ns, period.end_ns, now_ns)
    return selection


# -- times -----------------------------------------------------------------------------------------


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns // NS, tz=dt.UTC)


def _is_midnight(ns: int) -> bool:
    return ns % (24 * 3600 * NS) == 0


def _day_or_time(ns: int) -> str:
    return _utc(ns).strftime("%Y-%m-%d") if _is_midnight(ns) else _minute(ns)


def _minute(ns: int) -> str:
    return _utc(ns).strftime("%Y-%m-%d %H:%M UTC") if ns else "-"


def _day(ns: int) -> str:
    return _utc(ns).strftime("%Y-%m-%d") if ns else "-"


def _bins(first_ns: int, last_ns: int) -> list[tuple[str, int, int]]:
    """Calendar months (or years, past three years) from the one holding ``first_ns`` to ``last_ns``'s."""
    first, last = _utc(first_ns), _utc(max(first_ns, last_ns))
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    bins = []
    if months <= MAX_MONTH_BINS:
        year, month = first.year, first.month
        for _ in range(months):
            nxt = (year + month // 12, month % 12 + 1)
            start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
            end = dt.datetime(nxt[0], nxt[1], 1, tzinfo=dt.UTC)
            bins.append((f"{year}-{month:02d}", int(start.timestamp()) * NS, int(end.timestamp()) * NS))
            year, month = nxt
    else:
        for year in range(first.year, last.year + 1):
            start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
            end = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
            bins.append((str(year), int(start.timestamp()) * NS, int(end.timestamp()) * NS))
    return bins


# -- the figures' numbers ---------------------------------------------------------------------------


@dataclass
class Chart:
    """One chart and the table of the same numbers: a value per category (bar) per series."""

    key: str  # the HTML id: chart-<key>
    title: str
    categories: list[str]
    series: list[tuple[str, list[int]]]
    empty: str = "nothing in this period"

    @property
    def is_empty(self) -> bool:
        return not any(any(values) for _, values in self.series)


OUTCOMES = ("answered", "answered late", "unanswered", "awaiting answer", "withdrawn unanswered")
COMMITMENT_STATES = ("proposed", "agreed", "overdue", "fulfilled", "lapsed", "withdrawn", "declined")
COLOURS = {
    "took place": "#1f5f8b", "requested only": "#9bb8cc",
    "answered": "#2e7d32", "answered late": "#9ccc65", "unanswered": "#c62828", "awaiting answer": "#bdbdbd",
    "withdrawn unanswered": "#8d6e63",
    "proposed": "#bdbdbd", "agreed": "#1f5f8b", "overdue": "#c62828", "fulfilled": "#2e7d32", "lapsed": "#ef6c00",
    "withdrawn": "#8d6e63", "declined": "#6a1b9a",
    "missile-launch": "#c62828", "incident": "#ef6c00", "exercise": "#1f5f8b", "violation-report": "#6a1b9a",
    "violation-response": "#ab47bc", "prisoner-exchange": "#2e7d32",
}  # fmt: skip


def charts(s: Selection) -> list[Chart]:
    """Calls per month, answered and unanswered requests by who asked, commitments by state over time."""
    dates = [contact_time(c) for c in s.calls] + [c.proposed_at_ns for c in s.commitments]
    dates += [v["sent_at_ns"] for v in s.notices.views]
    first = s.period.start_ns or min(dates, default=s.now_ns)
    last = s.period.end_ns - 1 if s.period.end_ns else max([s.now_ns, *dates])
    bins = _bins(first, last)
    labels = [label for label, _, _ in bins]

    held = [sum(1 for c in s.calls if c.started_at_ns and start <= c.started_at_ns < end) for _, start, end in bins]
    asked = [sum(1 for c in s.calls if not c.started_at_ns and start <= c.proposed_at_ns < end)
             for _, start, end in bins]  # fmt: skip
    per_month = Chart("calls", "Contacts per " + ("month" if len(labels[0]) > 4 else "year"), labels,
                       [("took place", held), ("requested only", asked)])  # fmt: skip

    sides = sorted({c.proposer for c in s.calls}, key=lambda n: (n != s.me, n))
    outcomes = Counter((c.proposer, request_outcome(c, s.now_ns)) for c in s.calls)
    requests = Chart("requests", "Call requests, by the side that asked", [f"{side} asked" for side in sides],
                      [(o, [outcomes[(side, o)] for side in sides]) for o in OUTCOMES if
                       any(outcomes[(side, o)] for side in sides)])  # fmt: skip

    moments = [min(end - 1, s.now_ns) if start <= s.now_ns else -1 for _, start, end in bins]
    states = [Counter(commitment_state_at(c, t) for c in s.commitments) if t >= 0 else Counter() for t in moments]
    over_time = Chart("commitments", "Commitments by state, at the end of each " +
                       ("month" if len(labels[0]) > 4 else "year"), labels,
                       [(st, [count[st] for count in states]) for st in COMMITMENT_STATES
                        if any(count[st] for count in states)])  # fmt: skip
    out = [per_month, requests, over_time]
    if s.notices:
        kinds = sorted({v["form"] for v in s.notices.views})
        counted = Counter((v["form"], label) for v in s.notices.views for label, start, end in bins
                          if start <= v["sent_at_ns"] < end)  # fmt: skip
        unit = "month" if len(labels[0]) > 4 else "year"
        out.append(Chart("notifications", f"Notifications per {unit}, by form", labels,
                         [(k, [counted[(k, label)] for label in labels]) for k in kinds]))  # fmt: skip
    return out


def chart_svg(fig: Chart) -> str:
    """The figure as an inline ``<svg>`` element (stacked bars), the same bytes for the same numbers."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    # Fixed element ids (hashsalt) and glyphs as paths: the same bytes on every machine with this matplotlib,
    # and no font needed to show them.
    fixed = {"svg.hashsalt": "hotline-desk-report", "svg.fonttype": "path", "font.size": 9}
    with matplotlib.rc_context(fixed):  # type: ignore[arg-type]
        figure = Figure(figsize=(7.0, 2.6), layout="constrained")
        FigureCanvasSVG(figure)
        ax = figure.add_subplot()
        x = list(range(len(fig.categories)))
        bottom = [0] * len(x)
        for name, values in fig.series:
            ax.bar(x, values, bottom=bottom, label=name, color=COLOURS.get(name, "#607d8b"), width=0.7)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_xticks(x, fig.categories, rotation=45 if len(x) > 8 else 0, ha="right" if len(x) > 8 else "center")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, max([*bottom, 1]) * 1.15)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_title(fig.title, loc="left")
        if fig.is_empty:
            ax.text(0.5, 0.5, fig.empty, transform=ax.transAxes, ha="center", va="center", color="#757575")
        else:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    svg = out.getvalue()
    svg = svg[svg.index("<svg") :]  # the element only: no XML declaration or doctype inside HTML
    label = html.escape(fig.title)
    return svg.replace("<svg ", f'<svg id="chart-{fig.key}" class="chart" role="img" aria-label="{label}" ', 1)


# -- the document's parts, shared by both formats ---------------------------------------------------


def _other(s: Selection, call: Call) -> str:
    return call.responder if call.proposer == s.me else call.proposer


def _duration(call: Call) -> str:
    if call.ended_at_ns:
        return format_duration(call.duration_ns // NS)
    if call.state == "live":
        return "in progress"
    return f"planned {format_duration(call.duration_s)}" if call.duration_s else "-"


def _rounds(item: Commitment) -> str:
    if not item.rounds:
        return f"{len(item.rounds_done)} done" if item.rounds_done else "-"
    return f"{len(item.rounds_done)} of {item.rounds}"


def _in_force(item: Commitment) -> str:
    if not item.starts_ns and not item.ends_ns:
        return "-"
    return f"{_day(item.starts_ns)} to {_day(item.ends_ns)}"


def summary_lines(s: Selection) -> list[str]:
    took_place = sum(1 for c in s.calls if c.started_at_ns)
    outcomes = Counter(request_outcome(c, s.now_ns) for c in s.calls)
    states = Counter(c.shown_state(s.now_ns) for c in s.commitments)
    lines = []
    if s.audience is Audience.INTERNAL:
        announced = s.held[Disclosure.PUBLIC.value]
        kept = len(s.calls) - announced
        detail = ", ".join(f"{s.held[d.value]} {d.value}" for d in Disclosure if d is not Disclosure.PUBLIC)
        lines.append(f"Contacts: {announced} announced, {kept} held (kept off the public record: {detail}).")
    lines.append(f"Contacts in the period: {len(s.calls)}, of which {took_place} took place.")
    lines.append("Requests: " + (", ".join(f"{outcomes[o]} {o}" for o in OUTCOMES if outcomes[o]) or "none") + ".")
    lines.append(f"Readouts published: {len(s.readouts)}.")
    lines.append(f"Commitments open in the period: {len(s.commitments)}"
                 + (" (now " + ", ".join(f"{states[st]} {st}" for st in COMMITMENT_STATES if states[st]) + ")"
                    if s.commitments else "") + ".")  # fmt: skip
    if s.notices:
        lines.append(s.notices.summary())
    return lines


CALL_COLUMNS = ("date", "subject", "with", "proposed by", "duration", "request", "state")
COMMITMENT_COLUMNS = ("title", "kind", "owner", "state", "due", "rounds", "in force", "from call")


def call_row(s: Selection, call: Call) -> list[str]:
    return [_minute(contact_time(call)), call.subject, _other(s, call), call.proposer, _duration(call),
            request_outcome(call, s.now_ns), call.shown_state(s.now_ns)]  # fmt: skip


def commitment_row(s: Selection, item: Commitment) -> list[str]:
    return [item.title, item.kind, item.owner, item.shown_state(s.now_ns), _day(item.due_ns), _rounds(item),
            _in_force(item), s.call_subjects.get(item.call, "-")]  # fmt: skip


def _internal_columns(s: Selection, columns: Iterable[str]) -> list[str]:
    return [*columns, "disclosure", "id"] if s.audience is Audience.INTERNAL else list(columns)


NOTICES_NOTE = (
    "Notifications carry no disclosure mark, so they appear in this internal edition only; the public "
    "edition says nothing of them."
)


def _edition(s: Selection) -> str:
    if s.audience is Audience.INTERNAL:
        return "Internal edition: every item, marked with its disclosure. Not for release."
    return "Public edition."


# -- Markdown --------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!~])")


def _md(text: str) -> str:
    """User text made inert in Markdown: one line, every markup character escaped."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _md_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return out


def render_markdown(s: Selection) -> str:
    internal = s.audience is Audience.INTERNAL
    out = [f"# Desk report: {_md(s.me)}", "", f"{_edition(s)}  ", f"Period: {s.period.label()}.  ",
           f"Written {_minute(s.now_ns)}; states are as of then.", "", "## Summary", ""]  # fmt: skip
    out += [f"- {line}" for line in summary_lines(s)]
    out += ["", "## Figures", ""]
    for fig in charts(s):
        out += [f"### {fig.title}", ""]
        if fig.is_empty:
            out += [f"_{fig.empty}_", ""]
            continue
        out += _md_table(["", *fig.categories], [[name, *map(str, values)] for name, values in fig.series])
        out.append("")
    out += ["## Contacts", ""]
    if s.calls:
        rows = [call_row(s, c) + ([c.disclosure, c.id] if internal else []) for c in s.calls]
        out += _md_table(_internal_columns(s, CALL_COLUMNS), rows)
    else:
        out.append("_No contacts in this period._")
    out += ["", "## Readouts", ""]
    if not s.readouts:
        out.append("_No readouts in this period._")
    for record, call in s.readouts:
        f = record.fields
        mark = ""
        if internal:
            mark = f" [{f['disclosure']}, {'shared' if f['shared'] else 'kept by this side'}, {record.id}]"
            if record.id in s.unreleased_readouts:
                mark += " (left out of the public edition: its call is not public)"
        out += [f"### {_md(call.subject)}: {_md(record.author)}, {_md(f['lang'])}, {_minute(record.at_ns)}{mark}", ""]
        out += ["> " + (_md(line) if line.strip() else "") for line in f["text"].strip().splitlines()]
        out.append("")
    out += ["", "## Commitments", ""]
    if s.commitments:
        rows = [commitment_row(s, c) + ([c.disclosure, c.id] if internal else []) for c in s.commitments]
        out += _md_table(_internal_columns(s, COMMITMENT_COLUMNS), rows)
    else:
        out.append("_No commitments open in this period._")
    if s.notices:
        n = s.notices
        out += ["", "## Notifications", "", NOTICES_NOTE, "", "### Per form and month", ""]
        out += _md_table(["form", "month", "count"], [[f, m, str(c)] for f, m, c in n.per_type_and_month()])
        out += ["", "### Violation reports", ""]
        out += _md_table(list(REPORT_STATUSES), [[str(n.reports[st]) for st in REPORT_STATUSES]])
        out += ["", "### Sent late", ""]
        out += _md_table(list(NOTICE_COLUMNS), [n.row(v) for v in n.late]) if n.late else ["_None._"]
        out += ["", "### Every notification", ""]
        out += _md_table(list(NOTICE_COLUMNS), [n.row(v) for v in n.views])
    return "\n".join(out).rstrip() + "\n"


# -- HTML --------------------------------------------------------------------------------------------

CSS = """
body{font:11pt/1.45 "DejaVu Sans",system-ui,sans-serif;color:#1b1b1b;max-width:60rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.6rem;margin:0 0 .3rem}h2{border-bottom:2px solid #1f5f8b;padding-bottom:.2rem;margin-top:2rem}
.edition{font-weight:bold;padding:.3rem .6rem;display:inline-block;border-radius:3px}
.edition.public{background:#e3f2fd}.edition.internal{background:#c62828;color:#fff}
table{border-collapse:collapse;width:100%;font-size:9.5pt;margin:.5rem 0}
th,td{border-bottom:1px solid #ddd;padding:.25rem .4rem;text-align:left;vertical-align:top}
th{background:#f3f6f9}tr{break-inside:avoid}
.id{font-family:monospace;font-size:8pt;color:#555}td.when{white-space:nowrap}
figure{margin:1rem 0;break-inside:avoid}svg.chart{max-width:100%;height:auto;display:block}
blockquote{white-space:pre-wrap;margin:.3rem 0 1rem;padding:.4rem .8rem;border-left:4px solid #9bb8cc;
background:#f7f9fb}.readout h3{font-size:1rem;margin-bottom:.2rem}.note{color:#555;font-size:9pt}
@page{size:A4;margin:14mm}@media print{body{margin:0;max-width:none}}
"""
# Only the internal edition marks disclosures (the public one has no word for what it leaves out).
CSS_INTERNAL = """
.disclosure{font-size:8pt;font-weight:bold;text-transform:uppercase;padding:0 .3rem;border-radius:2px}
.disclosure.public{background:#e8f5e9}.disclosure.confidential{background:#fff3e0}
.disclosure.secret{background:#c62828;color:#fff}
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _badge(disclosure: str) -> str:
    return f'<span class="disclosure {_e(disclosure)}">{_e(disclosure)}</span>'


_WHEN = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2} UTC)?( to \d{4}-\d{2}-\d{2})?")


_Item = TypeVar("_Item", Call, Commitment)


def _items_html(s: Selection, items: Sequence[_Item], row: Callable[[Selection, _Item], list[str]],
                columns: tuple[str, ...], empty: str) -> str:  # fmt: skip
    """Calls or commitments as a table; the internal edition adds each one's disclosure and id."""
    if not items:
        return f"<p>{empty}</p>"
    rows = []
    for item in items:
        cells = [_e(cell) for cell in row(s, item)]
        if s.audience is Audience.INTERNAL:
            cells += [_badge(item.disclosure), f'<span class="id">{_e(item.id)}</span>']
        rows.append(cells)
    return _html_table(_internal_columns(s, columns), rows)


def _html_table(columns: list[str], rows: list[list[str]]) -> str:
    """A table whose cells are already HTML (each built with ``_e``); dates are kept on one line."""
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="when">{c}</td>' if _WHEN.fullmatch(c) else f"<td>{c}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(s: Selection) -> str:
    internal = s.audience is Audience.INTERNAL
    title = f"Desk report: {s.me}, {s.period.label()}" + (" (internal)" if internal else "")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        # Nothing outside this file may load, even if something slipped past the escaping.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{_e(title)}</title><style>{CSS}{CSS_INTERNAL if internal else ''}</style></head><body>",
        f"<header><h1>Desk report: {_e(s.me)}</h1>",
        f'<p><span class="edition {s.audience.value}">{_e(_edition(s))}</span></p>',
        f"<p>Period: {_e(s.period.label())}. Written {_e(_minute(s.now_ns))}; states are as of then.</p></header>",
        '<section id="summary"><h2>Summary</h2><ul>',
        *(f"<li>{_e(line)}</li>" for line in summary_lines(s)),
        '</ul></section><section id="figures"><h2>Figures</h2>',
    ]  # fmt: skip
    for fig in charts(s):
        numbers = _html_table(["", *fig.categories], [[_e(n), *map(str, v)] for n, v in fig.series])
        parts.append(f"<figure>{chart_svg(fig)}<details><summary>the numbers</summary>"
                     f"{numbers if not fig.is_empty else _e(fig.empty)}</details></figure>")  # fmt: skip
    parts.append('</section><section id="contacts"><h2>Contacts</h2>')
    parts.append(_items_html(s, s.calls, call_row, CALL_COLUMNS, "No contacts in this period."))
    parts.append('</section><section id="readouts"><h2>Readouts</h2>')
    if not s.readouts:
        parts.append("<p>No readouts in this period.</p>")
    for record, call in s.readouts:
        f = record.fields
        mark = ""
        if internal:
            kept = "shared" if f["shared"] else "kept by this side"
            mark = f' {_badge(f["disclosure"])} <span class="note">{kept}</span>'
            mark += f' <span class="id">{_e(record.id)}</span>'
            if record.id in s.unreleased_readouts:
                mark += ' <span class="note">left out of the public edition: its call is not public</span>'
        parts.append(
            f'<article class="readout"><h3>{_e(call.subject)}</h3><p>{_e(record.author)}, '
            f"{_e(f['lang'])}, {_e(_minute(record.at_ns))}{mark}</p>"
            f'<blockquote lang="{_e(f["lang"])}" dir="auto">{_e(f["text"].strip())}</blockquote></article>'
        )
    parts.append('</section><section id="commitments"><h2>Commitments</h2>')
    parts.append(_items_html(s, s.commitments, commitment_row, COMMITMENT_COLUMNS,
                             "No commitments open in this period."))  # fmt: skip
    parts.append("</section>")
    if s.notices:
        n = s.notices
        rows = [[_e(c) for c in n.row(v)[:-1]] + [f'<span class="id">{_e(v["id"])}</span>'] for v in n.views]
        late = [[_e(c) for c in n.row(v)[:-1]] + [f'<span class="id">{_e(v["id"])}</span>'] for v in n.late]
        parts += [
            f'<section id="notifications"><h2>Notifications</h2><p class="note">{_e(NOTICES_NOTE)}</p>',
            "<h3>Per form and month</h3>",
            _html_table(["form", "month", "count"], [[_e(f), _e(m), str(c)] for f, m, c in n.per_type_and_month()]),
            "<h3>Violation reports</h3>",
            _html_table(list(REPORT_STATUSES), [[str(n.reports[st]) for st in REPORT_STATUSES]]),
            "<h3>Sent late</h3>", _html_table(list(NOTICE_COLUMNS), late) if late else "<p>None.</p>",
            "<h3>Every notification</h3>", _html_table(list(NOTICE_COLUMNS), rows), "</section>",
        ]  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render(
    register: Register, period: Period, audience: Audience, fmt: Format, now_ns: int, forms: FormRegistry | None = None
) -> str:
    """The report's text: Markdown, or HTML with its charts inline (print it for a PDF). With ``forms``,
    the internal edition also counts the formatted notifications of the period."""
    selection = select(register, period, audience, now_ns, forms)
    return render_markdown(selection) if fmt is Format.MD else render_html(selection)
