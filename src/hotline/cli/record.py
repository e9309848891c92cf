"""`hotline record report`: the desk's calls, readouts and commitments of a period, as a document.

The document itself is ``desk.report``'s (pure); this reads the journal, writes the
file, and for a PDF prints the HTML with Debian's Chromium, headless (see
docs/design.md, "Desk report").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hotline.cli.common import Add, home_option, now_ns, open_home
from hotline.cli.desk import load_register
from hotline.core.errors import ConfigError
from hotline.core.times import parse_time
from hotline.home.forms import load_forms
from hotline.home.keyfile import write_atomic

FORMATS = ("html", "pdf", "md")
CHROMIUM_TIMEOUT_S = 120
DAY_NS = 24 * 3600 * 1_000_000_000

REPORT_EPILOG = """\
examples:
  hotline record report --from 2025-10-01 --to 2025-12-31 -o q4-public.html
  hotline record report --from 2025-10-01 --to 2025-12-31 --audience internal --format pdf -o q4-internal.pdf
  hotline record report --audience public --format md -o -          # the whole record, Markdown on stdout
A date given to --to counts in full (--to 2025-12-31 ends at midnight after it). The public edition holds only
what is marked public and says nothing of the rest; the internal one holds everything, marked. A PDF is the HTML
printed by Debian's Chromium (apt-get install chromium; HOTLINE_CHROMIUM names another binary).
"""


def _period_end(text: str) -> int:
    value = parse_time(text, "--to")
    return value + DAY_NS if re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", text) else value


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = Path(args.output).suffix.lower().lstrip(".")
    return {"pdf": "pdf", "md": "md", "markdown": "md"}.get(suffix, "html")


def cmd_record(args: argparse.Namespace) -> int:
    from hotline.desk.report import Audience, Format, Period, render  # matplotlib: only when a report is asked for

    home, config = open_home(args)
    start = parse_time(args.start, "--from") if args.start else 0
    end = _period_end(args.end) if args.end else 0
    if end and end <= start:
        raise ConfigError(f"--to ({args.end}) must come after --from ({args.start})")
    fmt = _format(args)
    if fmt == "pdf" and args.output == "-":
        raise ConfigError("a PDF needs a file to go to (-o FILE), not stdout")
    register = load_register(home, config.name)
    period = Period(start, end)
    audience = Audience(args.audience)
    forms = (
        load_forms(home, config) if audience is Audience.INTERNAL else None
    )  # the public edition has no word of them
    text = render(register, period, audience, Format.MD if fmt == "md" else Format.HTML, now_ns(), forms)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    target = Path(args.output)
    if fmt == "pdf":
        print_pdf(text, target)
    else:
        _write(target, text.encode("utf-8"))
    print(f"wrote {target} ({args.audience} edition, {fmt}, {period.label()})", file=sys.stderr)
    return 0


def _write(target: Path, data: bytes) -> None:
    """Whole or not at all: a reader never finds half a report under the name."""
    write_atomic(target, data, mode=0o644)


def find_chromium() -> str:
    named = os.environ.get("HOTLINE_CHROMIUM")
    found = named or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).exists():
        where = f"HOTLINE_CHROMIUM={named!r} does not exist" if named else "chromium is not installed"
        raise ConfigError(f"a PDF is printed by Chromium, and {where}: install Debian's (apt-get install chromium), "
                          "or write --format html and print that")  # fmt: skip
    return found


def print_pdf(html_text: str, target: Path) -> None:
    """Print the HTML to ``target`` as a PDF with headless Chromium, in a profile of its own, offline."""
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="hotline-report-") as tmp:
        page, pdf = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        page.write_text(html_text, encoding="utf-8")
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={Path(tmp) / 'profile'}", "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
            page.as_uri(),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise ConfigError(f"Chromium did not print the report within {CHROMIUM_TIMEOUT_S}s") from None
        except OSError as e:
            raise ConfigError(f"cannot run {chromium}: {e.strerror or e}") from None
        if done.returncode != 0 or not pdf.exists() or not pdf.read_bytes().startswith(b"%PDF"):
            tail = "\n".join(done.stderr.strip().splitlines()[-3:])
            raise ConfigError(f"Chromium ({chromium}) did not print the report (exit {done.returncode}): {tail}")
        _write(target, pdf.read_bytes())


def register(add: Add) -> None:
    p = add("record", cmd_record, "reports on the record of the desk")
    sub = p.add_subparsers(dest="record_cmd", required=True, metavar="report")
    r = sub.add_parser(
        "report",
        help="write a report of the desk in a period: contacts, readouts, commitments, charts",
        description="A report of the desk in a period: the contacts (calls) with their dates, durations and who "
        "proposed them, answered and unanswered requests, the readouts published, the commitments and where each "
        "stands, and charts of the same. The public edition holds only what is marked public; the internal "
        "edition holds everything, each item marked, and says how many contacts were kept off the public record.",
        epilog=REPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    home_option(r)
    r.add_argument("--from", dest="start", metavar="DATE", help="start, a date or RFC 3339 time (default: the first)")
    r.add_argument("--to", dest="end", metavar="DATE", help="end, a date (counted in full) or an RFC 3339 time "
                   "(default: the latest)")  # fmt: skip
    r.add_argument("--audience", choices=("public", "internal"), default="public", help="(default public)")
    r.add_argument("--format", choices=FORMATS, help="(default: from the file's suffix, else html)")
    r.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write (- for stdout)")
