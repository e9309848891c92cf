"""The desk's report (`desk.report`, `hotline record report`): what each edition may say, and the charts."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from conftest import Terminal
from hotline.core.times import parse_time
from hotline.crypto.identity import Identity
from hotline.desk.acts import make_record
from hotline.desk.register import Register
from hotline.desk.report import Audience, Format, Period, render
from hotline.home.forms import load_forms
from hotline.testing.waiting import seeded

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
CHART_IDS = ("chart-calls", "chart-requests", "chart-commitments")
PERIOD = Period(parse_time("2025-08-01"), parse_time("2025-12-01"))
NOW = parse_time("2025-12-01T09:00:00Z")


class Desk:
    """Both sides' acts folded into washington's register, as its journal would hold them."""

    def __init__(self) -> None:
        rand = seeded(b"report")
        self.sides = {n: Identity.generate(n, randbytes=seeded(n.encode())) for n in ("washington", "moscow")}
        self.register = Register("washington")
        self.rand = rand

    def act(self, who: str, when: str | int, act: str, **fields: Any) -> str:
        other = "moscow" if who == "washington" else "washington"
        at = parse_time(when) if isinstance(when, str) else when
        record = make_record(self.register, self.sides[who], {"act": act, **fields}, at, self.rand, [other])
        self.register.add(record)
        return record.id

    def held_call(self, who: str, day: str, subject: str, disclosure: str, minutes: int = 90) -> str:
        other = "moscow" if who == "washington" else "washington"
        cid = self.act(who, f"{day}T08:00:00Z", "call.propose", to=other, subject=subject, disclosure=disclosure,
                       answer_by=parse_time(f"{day}T09:00:00Z"))  # fmt: skip
        self.act(other, f"{day}T08:20:00Z", "call.accept", id=cid)
        self.act(who, f"{day}T14:00:00Z", "call.start", id=cid)
        self.act(other, parse_time(f"{day}T14:00:00Z") + minutes * 60 * 10**9, "call.end", id=cid)
        return cid


@pytest.fixture(scope="module")
def desk() -> Desk:
    return season()


def season() -> Desk:
    """A season of the desk: public, confidential and secret calls, readouts and commitments, some unanswered.

    ``desk.hidden`` lists every subject, title, readout text and id the public edition must not show."""
    d = Desk()
    hidden: list[str] = []
    shown: list[str] = []
    # Public: held (2h30m), with both sides' public readouts and a confidential one kept by washington.
    p1 = d.held_call("washington", "2025-08-06", "Energy-site strikes", "public", minutes=150)
    shown += ["Energy-site strikes"]
    ids = [p1]
    d.act("moscow", "2025-08-06T18:00:00Z", "readout.add", id=p1, lang="ru", disclosure="public", shared=True,
          text="Состоялся содержательный разговор.")  # fmt: skip
    d.act("washington", "2025-08-06T18:30:00Z", "readout.add", id=p1, lang="en", disclosure="public", shared=True,
          text="A very productive call; advisers meet next week.")  # fmt: skip
    shown += ["Состоялся содержательный разговор.", "A very productive call; advisers meet next week."]
    hidden.append(d.act("washington", "2025-08-06T19:00:00Z", "readout.add", id=p1, lang="en",
                        disclosure="confidential", text="Zelkova: they hinted at a pause in the north."))  # fmt: skip
    hidden.append("Zelkova: they hinted at a pause in the north.")
    # Confidential: proposed by moscow, countered, accepted, held; washington's secret readout kept here.
    c1 = d.act("moscow", "2025-09-02T07:00:00Z", "call.propose", to="washington", subject="Quillwort prisoner list",
               disclosure="confidential")  # fmt: skip
    d.act("washington", "2025-09-02T07:30:00Z", "call.counter", id=c1, at=parse_time("2025-09-03T10:00:00Z"))
    d.act("moscow", "2025-09-02T08:00:00Z", "call.accept", id=c1)
    d.act("washington", "2025-09-03T10:00:00Z", "call.start", id=c1)
    d.act("washington", "2025-09-03T10:45:00Z", "call.end", id=c1)
    r_secret = d.act("washington", "2025-09-03T12:00:00Z", "readout.add", id=c1, lang="en", disclosure="secret",
                     text="Marjoram: the list has 84 names.")  # fmt: skip
    hidden += [c1, "Quillwort prisoner list", r_secret, "Marjoram: the list has 84 names."]
    # Secret, never answered.
    s1 = d.act("washington", "2025-09-10T09:00:00Z", "call.propose", to="moscow", subject="Hornbeam back channel",
               disclosure="secret", answer_by=parse_time("2025-09-10T10:00:00Z"))  # fmt: skip
    hidden += [s1, "Hornbeam back channel"]
    # Public, never answered (as on the China-US defence line in 2023).
    p2 = d.act("washington", "2025-10-01T09:00:00Z", "call.propose", to="moscow", subject="Defence line test",
               disclosure="public", answer_by=parse_time("2025-10-01T09:30:00Z"))  # fmt: skip
    shown.append("Defence line test")
    ids.append(p2)
    # Confidential, declined.
    c2 = d.act("moscow", "2025-10-07T09:00:00Z", "call.propose", to="washington", subject="Sorrel line review",
               disclosure="confidential", answer_by=parse_time("2025-10-07T12:00:00Z"))  # fmt: skip
    d.act("washington", "2025-10-07T10:00:00Z", "call.decline", id=c2, reason="Tansy reasons of our own")
    hidden += [c2, "Sorrel line review", "Tansy reasons of our own"]
    # Secret, held, with a readout marked public: its call is secret, so it stays out of the public edition.
    s2 = d.held_call("washington", "2025-10-20", "Larkspur grid incident", "secret", minutes=40)
    r_leak = d.act("washington", "2025-10-20T16:00:00Z", "readout.add", id=s2, lang="en", disclosure="public",
                   shared=True, text="Bryony: both grids are stable again.")  # fmt: skip
    hidden += [s2, "Larkspur grid incident", r_leak, "Bryony: both grids are stable again."]
    # Public, proposed by moscow, answered late, held.
    p3 = d.act("moscow", "2025-11-03T08:00:00Z", "call.propose", to="washington", subject="Summit planning",
               disclosure="public", answer_by=parse_time("2025-11-03T09:00:00Z"))  # fmt: skip
    d.act("washington", "2025-11-03T11:00:00Z", "call.accept", id=p3)
    d.act("moscow", "2025-11-04T10:00:00Z", "call.start", id=p3)
    d.act("moscow", "2025-11-04T11:00:00Z", "call.end", id=p3)
    shown.append("Summit planning")
    ids.append(p3)

    # Commitments: public (fulfilled), public from a confidential call (rounds), confidential moratorium, secret.
    k1 = d.act("washington", "2025-08-06T17:00:00Z", "commitment.propose", to="moscow", call=p1, title="Advisers meet",
               kind="meeting", disclosure="public", due=parse_time("2025-08-20"))  # fmt: skip
    d.act("moscow", "2025-08-07T09:00:00Z", "commitment.agree", id=k1)
    d.act("washington", "2025-08-19T15:00:00Z", "commitment.status", id=k1, status="fulfilled", reason="met")
    k2 = d.act("moscow", "2025-09-03T11:00:00Z", "commitment.propose", to="washington", call=c1,
               title="Prisoner exchange", kind="exchange", rounds=3, disclosure="public")  # fmt: skip
    d.act("washington", "2025-09-04T09:00:00Z", "commitment.agree", id=k2)
    d.act("washington", "2025-10-10T09:00:00Z", "commitment.round", id=k2, round=1)
    k3 = d.act("washington", "2025-09-05T09:00:00Z", "commitment.propose", to="moscow", title="Juniper moratorium",
               kind="moratorium", disclosure="confidential", starts=parse_time("2025-09-10"),
               ends=parse_time("2025-10-10"), due=parse_time("2025-10-10"))  # fmt: skip
    d.act("moscow", "2025-09-06T09:00:00Z", "commitment.agree", id=k3)
    k4 = d.act("washington", "2025-10-21T09:00:00Z", "commitment.propose", to="moscow", title="Wormwood liaisons",
               kind="other", disclosure="secret")  # fmt: skip
    d.act("moscow", "2025-10-22T09:00:00Z", "commitment.decline", id=k4, reason="Yarrow not yet")
    hidden += [k3, "Juniper moratorium", k4, "Wormwood liaisons", "Yarrow not yet"]
    shown += ["Advisers meet", "Prisoner exchange"]
    ids += [k1, k2]
    d.hidden, d.shown, d.public_ids = hidden, shown, ids  # type: ignore[attr-defined]
    return d


def report(d: Desk, audience: str, fmt: str, period: Period = PERIOD) -> str:
    return render(d.register, period, Audience(audience), Format(fmt), NOW)


@pytest.fixture(scope="module")
def editions(desk: Desk) -> dict[tuple[str, str], str]:
    return {(a, f): report(desk, a, f) for a in ("public", "internal") for f in ("md", "html")}


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_the_public_edition_says_nothing_of_what_was_not_announced(
    desk: Desk, editions: dict[tuple[str, str], str], fmt: str
) -> None:
    text = editions[("public", fmt)]
    for secret in desk.hidden:  # type: ignore[attr-defined]
        assert secret not in text, secret
    for item in desk.shown:  # type: ignore[attr-defined]
        assert item in text, item
    # No count of what was kept back, in any wording.
    assert not re.search(r"\d+\s+held|announced|confidential|secret", text, re.IGNORECASE)
    assert "Contacts in the period: 3, of which 2 took place." in text


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_the_internal_edition_shows_everything_marked_and_counts_what_was_held(
    desk: Desk, editions: dict[tuple[str, str], str], fmt: str
) -> None:
    text = editions[("internal", fmt)]
    for item in [*desk.hidden, *desk.shown, *desk.public_ids]:  # type: ignore[attr-defined]
        if item in ("Tansy reasons of our own", "Yarrow not yet"):
            continue  # reasons are in `call show`, not in the report
        assert item in text, item
    assert "Contacts: 3 announced, 4 held (kept off the public record: 2 confidential, 2 secret)." in text
    assert "left out of the public edition: its call is not public" in text
    assert "Internal edition" in text and "Not for release" in text


def test_the_tables_say_when_how_long_who_asked_and_how_it_was_answered(editions: dict[tuple[str, str], str]) -> None:
    md = editions[("internal", "md")]
    rows = {line.split(" | ")[1]: line for line in md.splitlines() if line.startswith("| 2025-")}
    assert "| 2025-08-06 14:00 UTC | Energy-site strikes | moscow | washington | 2h30m | answered | ended |" in md
    assert "| moscow | moscow | 45m | answered | ended | confidential |" in rows["Quillwort prisoner list"]
    assert "| moscow | washington | - | unanswered | unanswered | secret |" in rows["Hornbeam back channel"]
    assert "| 1h | answered late | ended | public |" in rows["Summit planning"]
    assert "| moscow | moscow | - | answered | declined |" in rows["Sorrel line review"]
    assert "| Prisoner exchange | exchange | both | agreed | - | 1 of 3 | - | Quillwort prisoner list |" in md
    assert "| Juniper moratorium | moratorium | both | overdue | 2025-10-10 | - | 2025-09-10 to 2025-10-10 |" in md
    assert "| Advisers meet | meeting | both | fulfilled | 2025-08-20 |" in md
    # The public edition names no call it may not: the exchange came from a confidential call.
    assert "| Prisoner exchange | exchange | both | agreed | - | 1 of 3 | - | - |" in editions[("public", "md")]
    # The charts' numbers as a table in Markdown: contacts per month (public: August, October, November).
    public = editions[("public", "md")]
    assert "| took place | 1 | 0 | 0 | 1 |" in public
    assert "| requested only | 0 | 0 | 1 | 0 |" in public
    assert "| 2025-08 | 2025-09 | 2025-10 | 2025-11 |" in public


def test_html_is_self_contained_escaped_deterministic_and_has_three_charts(desk: Desk) -> None:
    page = report(desk, "internal", "html")
    assert page == report(desk, "internal", "html")  # the same bytes for the same record and time
    for chart in CHART_IDS:
        assert page.count(f'<svg id="{chart}"') == 1
    assert "<?xml" not in page and "<script" not in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "<dc:date>" not in page
    # User text is escaped: a subject carrying markup arrives as text.
    d = Desk()
    d.act("washington", "2025-10-01T09:00:00Z", "call.propose", to="moscow", subject="<img src=x onerror=alert(1)>",
          disclosure="public")  # fmt: skip
    hostile = report(d, "public", "html")
    assert "<img" not in hostile and "&lt;img src=x onerror=alert(1)&gt;" in hostile
    assert "\\<img src=x onerror=alert(1)\\>" in report(d, "public", "md")


def test_an_empty_period_still_has_its_three_charts_and_says_so(desk: Desk) -> None:
    empty = Period(parse_time("2024-01-01"), parse_time("2024-02-01"))
    page = report(desk, "internal", "html", empty)
    assert all(f'<svg id="{c}"' in page for c in CHART_IDS)
    assert "No contacts in this period." in page and "0 announced, 0 held" in page
    assert "Period: 2024-01-01 to 2024-01-31." in page


def with_notices() -> tuple[Desk, list[str]]:
    """The season, and four notifications in it: an incident acknowledged, a launch notified late, a
    violation report from moscow and washington's response disputing it."""
    d = season()
    forms = load_forms(None)

    def act(who: str, when: str, act: dict[str, Any]) -> str:
        other = "moscow" if who == "washington" else "washington"
        record = make_record(d.register, d.sides[who], {"to": other, **act}, parse_time(when), d.rand, [other], forms)
        d.register.add(record)
        return record.id

    incident = act("washington", "2025-09-05T10:00:00Z", {"act": "notify", "form": "incident", "data": {
        "incident": "UNEXPLAINED", "occurred_at": "2025-09-05T09:50:00Z", "location": {"lat": 55.75, "lon": 37.61},
        "risk": "NO_DETONATION_RISK"}})  # fmt: skip
    act("moscow", "2025-09-05T10:04:00Z", {"act": "notification.ack", "id": incident, "by": "boris"})
    launch = act("moscow", "2025-10-01T12:00:00Z", {"act": "notify", "form": "missile-launch", "data": {
        "missile": "ICBM", "count": 1, "window_opens": "2025-10-02T06:00:00Z", "window_closes": "2025-10-02T10:00:00Z",
        "launch_area": {"lat": 62.93, "lon": 40.57}, "impact_area": {"lat": 62.0, "lon": 165.0}}})  # fmt: skip
    report = act("moscow", "2025-10-20T08:00:00Z", {"act": "notify", "form": "violation-report", "data": {
        "arrangement": "ENERGY_SITE_MORATORIUM", "alleged_at": "2025-10-19T03:10:00Z",
        "location": {"lat": 47.51, "lon": 34.62}, "target": "SUBSTATION", "means": "DRONE"}})  # fmt: skip
    response = {"act": "notify", "form": "violation-response", "answers": report, "data": {"status": "DISPUTED"}}
    answer = act("washington", "2025-10-20T12:00:00Z", response)
    return d, [incident, launch, report, answer]


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_notifications_are_in_the_internal_edition_only(desk: Desk, fmt: str) -> None:
    d, ids = with_notices()
    forms = load_forms(None)
    public = render(d.register, PERIOD, Audience.PUBLIC, Format(fmt), NOW, forms)
    # The public edition says nothing of them: it is the same document as without them, to the byte.
    assert public == report(desk, "public", fmt)
    assert not re.search("notif|incident|launch|violation", public, re.IGNORECASE)
    assert not any(i in public for i in ids)
    internal = render(d.register, PERIOD, Audience.INTERNAL, Format(fmt), NOW, forms)
    assert all(i in internal for i in ids)
    assert ("Notifications in the period: 4 (1 acknowledged, 3 open, 0 refused; 1 late, 3 not acknowledged within "
            "their handling time). Violation reports: 0 answered, 1 disputed, 0 open.") in internal  # fmt: skip
    assert "they appear in this internal edition only" in internal
    assert "Incident notification (1971 Agreement)" in internal
    if fmt == "md":
        assert "| Incident notification (1971 Agreement) | 2025-09 | 1 |" in internal
        assert "| 0 | 1 | 0 |" in internal  # violation reports: answered, disputed, open
        late = internal.split("### Sent late")[1].split("###")[0]
        assert ids[1] in late and ids[0] not in late and "open, late, overdue" in late
        assert "| notifications | 0 | 0 | 0 | 0 |" not in internal
        assert "| incident | 0 | 1 | 0 | 0 |" in internal  # the chart's numbers: August to November
    else:
        assert internal.count('<svg id="chart-notifications"') == 1
        assert '<section id="notifications">' in internal
    # Without the form types (as before), the internal edition is as it was.
    assert render(d.register, PERIOD, Audience.INTERNAL, Format(fmt), NOW) == report(desk, "internal", fmt)


@pytest.fixture(scope="module")
def chromium_page() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed; `.ci/run` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page()
        browser.close()


def test_chromium_draws_the_three_charts(desk: Desk, chromium_page: Any, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(report(desk, "public", "html"), encoding="utf-8")
    failed: list[str] = []
    chromium_page.on("requestfailed", lambda r: failed.append(r.url))
    chromium_page.goto(path.as_uri())
    for chart in CHART_IDS:
        box = chromium_page.locator(f"svg#{chart}").bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50, (chart, box)
        # Drawn, not just sized: the bars and axes are there.
        assert chromium_page.locator(f"svg#{chart} path").count() > 10
    assert failed == []


@pytest.mark.e2e
def test_record_report_on_a_real_terminal_in_md_html_and_pdf(paired: tuple[Terminal, Terminal], tmp_path: Path) -> None:
    a, _ = paired
    shown = a.cli("call", "propose", "--to", "moscow", "--subject", "Announced energy call", "--disclosure",
                  "public").stdout.strip()  # fmt: skip
    held = a.cli("call", "propose", "--to", "moscow", "--subject", "Quiet back channel", "--disclosure",
                 "secret").stdout.strip()  # fmt: skip
    a.cli("readout", "add", shown, "--lang", "en", "--disclosure", "public", "--text", "We asked for a call.")
    a.cli("commitment", "add", "--to", "moscow", "--title", "Advisers meet", "--disclosure", "public")
    notice = a.cli("notify", "incident", "--to", "moscow", "--field", "incident=UNEXPLAINED", "--field",
                   "occurred_at=2025-03-20T03:10:00Z", "--field", "location.lat=55.75", "--field", "location.lon=37.61",
                   "--field", "risk=NO_DETONATION_RISK").stdout.strip()  # fmt: skip
    out = {f: tmp_path / f"report.{f}" for f in ("md", "html", "pdf")}
    for fmt, path in out.items():
        done = a.cli("record", "report", "--from", "2020-01-01", "--to", "2099-12-31", "--format", fmt, "-o",
                     str(path))  # fmt: skip
        assert f"wrote {path} (public edition, {fmt}" in done.stderr
    md, page = out["md"].read_text(), out["html"].read_text()
    for text in (md, page):
        assert "Announced energy call" in text and "We asked for a call." in text and "Advisers meet" in text
        assert "Quiet back channel" not in text and held not in text and "held" not in text
        assert notice not in text and "otification" not in text and "Incident" not in text
    assert all(f'<svg id="{c}"' in page for c in CHART_IDS)
    assert out["pdf"].read_bytes().startswith(b"%PDF")
    internal = a.cli("record", "report", "--audience", "internal", "--format", "md", "-o", "-").stdout
    assert "Quiet back channel" in internal and held in internal and "1 announced, 1 held" in internal
    assert notice in internal and "Notifications in the period: 1 (0 acknowledged, 1 open" in internal
    # Clear refusals: a period the wrong way round, and a PDF with no Chromium to print it.
    wrong = a.cli("record", "report", "--from", "2025-02-01", "--to", "2025-01-01", "-o", "x.md", check=False)
    assert wrong.returncode == 1 and "must come after --from" in wrong.stderr
    env_cli = a.env
    a.env = lambda: {**env_cli(), "HOTLINE_CHROMIUM": "/nonexistent/chromium"}  # type: ignore[method-assign]
    no_pdf = a.cli("record", "report", "-o", str(tmp_path / "none.pdf"), check=False)
    assert no_pdf.returncode == 1 and "apt-get install chromium" in no_pdf.stderr
    assert not (tmp_path / "none.pdf").exists()
