"""`hotline journal verify`, `export` and `accept-damage`: the record, for auditors and supervisors."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from hotline.cli.common import (
    Add,
    home_option,
    load_identity,
    now_ns,
    open_home,
    open_journal,
    out_json,
)
from hotline.core.errors import ControlError, HotlineError
from hotline.home.config import Config
from hotline.storage import audit, integrity
from hotline.terminal.control import ControlClient


def cmd_journal(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    if args.journal_cmd == "accept-damage":
        return _accept_damage(args, home, config)
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


def _accept_damage(args: argparse.Namespace, home: Path, config: Config) -> int:
    """A supervisor accepts the damage the journal check found; the running terminal resumes."""
    reason = args.reason.strip()
    if not reason:
        raise HotlineError("--reason must say why the damage is accepted (it is journaled)")
    by = args.by or f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"
    try:
        with ControlClient(home, timeout=60) as client:
            result = client.request("accept-damage", reason=reason, by=by)
    except ControlError as e:
        if "no running terminal" not in str(e):
            raise
        result = _accept_offline(home, config, reason, by)
    if args.json:
        out_json(result)
    else:
        entries = ", ".join(str(s) for s in result["accepted"])
        what = f"damage to entr{'y' if len(result['accepted']) == 1 else 'ies'} {entries}" if entries else (
            "the damage (a cut tail or the checkpoint: no entry to name)")  # fmt: skip
        print(f"{what} accepted, signed and journaled; the terminal appends again")
    return 0


def _accept_offline(home: Path, config: Config, reason: str, by: str) -> dict[str, Any]:
    """The terminal is stopped: find the damage as it would at start (and in full), accept it here."""
    identity = load_identity(home, config)  # the new checkpoint is signed with the terminal's key
    with open_journal(home) as storage:
        record = storage.record
        found = integrity.check_at_start(record, identity.public_key, record.entry_count(), config.journal_whole_chain)
        report = audit.verify(record)
        accepted, forged = integrity.accepted_damage(record, identity.public_key)
        marked = integrity.marked_damage(record)
        damaged = [*found.damage, *marked, *forged]
        seqs = ({d.seq for d in damaged} | set(report.damaged)) - accepted
        if not seqs:
            raise HotlineError("nothing to accept: the journal passes its check")
        damage = "; ".join(str(d) for d in damaged) or "; ".join(report.problems)
        as_found = integrity.entries_as_found(record, seqs)  # a cut tail or entry 0 has nothing to accept
        at = now_ns()
        with record.transaction():
            storage.store.record_operator(
                integrity.ACCEPT_ACTION, integrity.acceptance(identity, as_found, damage, reason, by), at
            )
            integrity.clear_damage(record)
        after = integrity.check_chain(record, None, identity.public_key)
        if not after.ok:
            raise HotlineError(f"the journal still fails its check after the acceptance: {after.summary()}")
        integrity.write_checkpoint(record, identity, after.head_seq, after.head_hash, at)
    return {"accepted": sorted(as_found), "journal": {"state": "intact", "checked_upto": after.head_seq}}


def register(add: Add) -> None:
    p = add("journal", cmd_journal, "verify or export the hash-chained journal")
    jsub = p.add_subparsers(dest="journal_cmd", required=True, metavar="verify|export|accept-damage")
    v = jsub.add_parser("verify", help="check the hash chain and every signature; exit 1 on any fault")
    home_option(v)
    v.add_argument("--json", action="store_true", help="print the report as one JSON document")
    e = jsub.add_parser("export", help="write the journal as JSON lines")
    home_option(e)
    e.add_argument("--output", "-o", help="file to write (default stdout)")
    a = jsub.add_parser(
        "accept-damage",
        help="accept damage the journal check found, so the terminal appends again (journaled)",
        description="A terminal whose journal fails its check (an entry altered, deleted, moved, or its tail cut "
        "off) raises journal-altered and appends nothing. After looking at the damage (`hotline journal verify`), "
        "a supervisor accepts it: the acceptance is journaled with the damaged entries, the reason and who "
        "accepted it, and the terminal carries on. `journal verify` still reports the damage. The alternative "
        "is to restore a backup.",
        epilog="example: hotline journal accept-damage --reason 'entry 42 altered by a disk fault; checked with "
        "moscow, both records agree on the message' --by duty-supervisor",
    )
    home_option(a)
    a.add_argument("--reason", required=True, help="why the damage is accepted (journaled)")
    a.add_argument("--by", help="who accepts it (default: cli:$USER)")
    a.add_argument("--json", action="store_true", help="print the result as JSON")
