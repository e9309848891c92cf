"""`hotline journal verify` and `hotline journal export`: the record, for auditors."""

from __future__ import annotations

import argparse
import sys

from hotline.cli.common import Add, home_option, open_home, open_journal, out_json
from hotline.storage import audit


def cmd_journal(args: argparse.Namespace) -> int:
    home, _ = open_home(args)
    with open_journal(home, readonly=True) as storage:
        if args.journal_cmd == "verify":
            report = audit.verify(storage.record)
            if args.json:
                out_json(report.as_dict())
            elif report.ok:
                print(
                    f"journal OK: {report.entries} entries, hash chain intact, {report.signatures} signatures verified"
                )
            else:
                print(f"journal FAILED verification ({report.entries} entries read):", file=sys.stderr)
                for text in report.problems:
                    print(f"  {text}", file=sys.stderr)
            return 0 if report.ok else 1
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
        try:
            for line in audit.export_lines(storage.record):
                out.write(line + "\n")
        finally:
            if out is not sys.stdout:
                out.close()
        return 0


def register(add: Add) -> None:
    p = add("journal", cmd_journal, "verify or export the hash-chained journal")
    jsub = p.add_subparsers(dest="journal_cmd", required=True, metavar="verify|export")
    v = jsub.add_parser("verify", help="check the hash chain and every signature; exit 1 on any fault")
    home_option(v)
    v.add_argument("--json", action="store_true", help="print the report as one JSON document")
    e = jsub.add_parser("export", help="write the journal as JSON lines")
    home_option(e)
    e.add_argument("--output", "-o", help="file to write (default stdout)")
