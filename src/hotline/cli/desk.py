"""`hotline call`, `calls`, `readout`, `commitment`, `commitments`: the desk around the link.

Every act (propose, accept, start, agree...) is signed by this terminal and
journaled; the shared ones travel to the peer in the message stream, exactly
once. With the terminal running an act goes through its control socket; with
it stopped it is written to the journal and the next ``hotline run`` sends it —
the same checks refuse the same acts either way. The listings read the journal.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from hotline.cli.common import (
    Add,
    home_option,
    load_identity,
    now_ns,
    open_home,
    open_journal,
    open_journal_to_record,
    out_json,
    ts,
)
from hotline.core.errors import ConfigError, ControlError, ControlTimeout
from hotline.core.times import format_duration, parse_duration, parse_time
from hotline.desk.acts import act_attachments, make_record
from hotline.desk.records import decode_record
from hotline.desk.register import Register, call_view, commitment_view, with_times
from hotline.engine.desking import file_record
from hotline.home.forms import load_forms
from hotline.terminal.control import ControlClient

PRECEDENCES = ("flash", "immediate", "priority", "routine")
DISCLOSURES = ("public", "confidential", "secret")


# -- doing an act ---------------------------------------------------------------------------------


def load_register(home: Path, me: str) -> Register:
    with open_journal(home, readonly=True) as storage:
        return Register(me, (decode_record(signed) for signed in storage.store.desk_records()))


def do_act(args: argparse.Namespace, act: dict[str, Any], wait_s: float | None = None) -> int:
    """Take the act through the running terminal, or into the journal if it is stopped; print its id.
    With ``wait_s``, return once every peer it went to has its delivery signed (exit 3 if not in time)."""
    home, config = open_home(args)
    try:
        client = ControlClient(home, timeout=30)
    except ControlError:
        client = None
    if client is None and wait_s is not None:
        raise ControlError("--wait needs the terminal running (`hotline run`)")
    if client is not None:
        with client:
            if wait_s is None:
                result = client.request("desk", act=act, by=_by())
            else:
                try:
                    req = client.submit("desk", act=act, by=_by(), wait="delivered")
                    result = client.result(req, deadline=time.monotonic() + wait_s)
                except ControlTimeout:
                    print(f"hotline: not delivered everywhere within {wait_s:g} s; it is journaled and goes out as "
                          "the links allow (`hotline outbox` follows it)", file=sys.stderr)  # fmt: skip
                    return 3
        via = "running terminal"
    else:
        identity = load_identity(home, config)
        with open_journal_to_record(home) as storage:
            register = Register(config.name, (decode_record(s) for s in storage.store.desk_records()))
            peers = [p.name for p in storage.store.peers()]
            forms = load_forms(home, config)
            record = make_record(
                register, identity, act, now_ns(), os.urandom, peers, forms, str(act.get("ui_lang", "en"))
            )
            with storage.record.transaction():
                file_record(storage.store, register, record, now_ns(), os.urandom, _by(), forms, act_attachments(act))
        result = {"id": record.id, "thread": record.thread, "type": str(record.type), "shared": record.shared}
        via = "journal (terminal not running; the next `hotline run` sends it)" if record.shared else "journal"
    if getattr(args, "json", False):
        out_json({**result, "via": via})
    else:
        print(result["id"])
    return 0


def _by() -> str:
    return f"cli:{os.environ.get('USER', 'operator')}"


def _text_or_file(text: str | None, path: str | None, what: str) -> str:
    if text is not None and path is not None:
        raise ConfigError(f"give the {what} as text or as a file, not both")
    if path is None:
        return text or ""
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None


# -- calls ------------------------------------------------------------------------------------------


def cmd_call(args: argparse.Namespace) -> int:
    sub = args.call_cmd
    if sub == "show":
        return _show_call(args)
    act: dict[str, Any] = {"act": f"call.{sub}"}
    if sub == "propose":
        now = now_ns()
        act.update(
            to=args.to, subject=args.subject, agenda=_text_or_file(args.agenda, args.agenda_file, "agenda"),
            at=parse_time(args.at, "--at") if args.at else 0,
            duration_s=parse_duration(args.duration, "--duration") if args.duration else 0,
            answer_by=now + parse_duration(args.answer_by, "--answer-by") * 1_000_000_000 if args.answer_by else 0,
            precedence=args.precedence, disclosure=args.disclosure, every=args.every or "",
        )  # fmt: skip
    else:
        act["id"] = args.id
        if sub in ("accept", "counter") and args.at:
            act["at"] = parse_time(args.at, "--at")
        elif sub == "counter":
            raise ConfigError("counter needs the time it proposes instead (--at)")
        if sub in ("decline", "counter", "withdraw") and args.reason is not None:
            act["reason"] = args.reason
        if sub == "note":
            act["text"] = args.text
    return do_act(args, act)


def cmd_calls(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    now = now_ns()
    views = [call_view(c, now) for c in load_register(home, config.name).calls()]
    if args.state:
        wanted = {"proposed", "countered", "accepted", "live"} if args.state == "open" else {args.state}
        views = [v for v in views if v["state"] in wanted]
    if args.json:
        out_json({"calls": [with_times(v) for v in views], "total": len(views)})
        return 0
    if not views:
        print("no calls on record" + (f" in state {args.state}" if args.state else ""))
        return 0
    for v in views:
        other = v["responder"] if v["proposer"] == config.name else v["proposer"]
        when = ts(v["at_ns"]) if v["at_ns"] else "time open"
        turn = f", {v['turn']} to answer" if v["turn"] else ""
        print(f"{v['id']}  {v['state']:<10} {v['disclosure']:<12} with {other:<12} {when}  {v['subject']}{turn}")
    return 0


def _show_call(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    register = load_register(home, config.name)
    now = now_ns()
    view = call_view(register.call(register.find(args.id)), now)
    view["commitments"] = [commitment_view(c, now) for c in register.commitments() if c.call == view["id"]]
    if args.json:
        out_json(with_times(view))
        return 0
    v = view
    print(f"call {v['id']}: {v['subject']}")
    print(f"  proposed by {v['proposer']} to {v['responder']} at {ts(v['proposed_at_ns'])}, {v['precedence']}, "
          f"{v['disclosure']}")  # fmt: skip
    print(f"  state: {v['state']}" + (f" ({v['turn']} to answer)" if v["turn"] else ""))
    if v["at_ns"]:
        print(f"  time: {ts(v['at_ns'])}" + (f" for {format_duration(v['duration_s'])}" if v["duration_s"] else ""))
    if v["answer_by_ns"]:
        print(f"  answer by: {ts(v['answer_by_ns'])}" + (" (answered late)" if v["answered_late"] else ""))
    if v["every"]:
        print(f"  every: {v['every']} (next {ts(v['next_occurrence_ns'])})")
    if v["started_at_ns"]:
        print(f"  started {ts(v['started_at_ns'])} by {v['started_by']}")
    if v["ended_at_ns"]:
        print(f"  ended {ts(v['ended_at_ns'])} by {v['ended_by']}, lasted {format_duration(v['actual_duration_s'])}")
    for reason_key in ("decline_reason", "withdraw_reason"):
        if v[reason_key]:
            print(f"  {reason_key.replace('_', ' ')}: {v[reason_key]}")
    if v["agenda"]:
        print("  agenda:\n    " + v["agenda"].replace("\n", "\n    "))
    print("  history:")
    for step in v["history"]:
        void = f"  [void: {step['void']}]" if step["void"] else ""
        print(f"    {ts(step['at_ns'])}  {step['author']:<12} {step['type']}{void}")
    for note in v["notes"]:
        print(f"  note {ts(note['at_ns'])}: {note['text']}")
    for r in v["readouts"]:
        shared = "shared" if r["shared"] else "kept here"
        print(f"  readout by {r['author']} ({r['lang']}, {r['disclosure']}, {shared}, {ts(r['published_at_ns'])}):")
        print("    " + r["text"].strip().replace("\n", "\n    "))
    for c in v["commitments"]:
        print(f"  commitment {c['id']}: {c['title']} ({c['state']})")
    return 0


# -- readouts -----------------------------------------------------------------------------------------


def cmd_readout(args: argparse.Namespace) -> int:
    text = _text_or_file(args.text, args.file, "readout")
    if not text.strip():
        raise ConfigError("the readout is empty: give its text or --file")
    act = {"act": "readout.add", "id": args.call, "lang": args.lang, "disclosure": args.disclosure, "text": text,
           "shared": bool(args.share)}  # fmt: skip
    return do_act(args, act)


# -- commitments ----------------------------------------------------------------------------------------


def cmd_commitment(args: argparse.Namespace) -> int:
    sub = args.commitment_cmd
    if sub == "show":
        home, config = open_home(args)
        register = load_register(home, config.name)
        view = commitment_view(register.commitment(register.find(args.id)), now_ns())
        if args.json:
            out_json(with_times(view))
        else:
            _print_commitment(view)
        return 0
    if sub == "add":
        act: dict[str, Any] = {
            "act": "commitment.propose", "to": args.to, "call": args.call or "", "title": args.title,
            "detail": args.detail or "", "owner": args.owner, "due": parse_time(args.due, "--due") if args.due else 0,
            "kind": args.kind, "disclosure": args.disclosure,
            "starts": parse_time(args.starts, "--starts") if args.starts else 0,
            "ends": parse_time(args.ends, "--ends") if args.ends else 0, "rounds": args.rounds,
        }  # fmt: skip
        if not args.to and args.call:
            home, config = open_home(args)
            known = load_register(home, config.name)
            call = known.call(known.find(args.call))
            act["to"] = call.responder if call.proposer == config.name else call.proposer
        return do_act(args, act)
    if sub in ("fulfil", "lapse", "withdraw"):
        status = {"fulfil": "fulfilled", "lapse": "lapsed", "withdraw": "withdrawn"}[sub]
        return do_act(args, {"act": "commitment.status", "id": args.id, "status": status, "reason": args.reason})
    if sub == "round":
        act = {"act": "commitment.round", "id": args.id, "round": args.round, "note": args.note or ""}
        if args.done_at:
            act["done_at"] = parse_time(args.done_at, "--done-at")
        return do_act(args, act)
    act = {"act": f"commitment.{sub}", "id": args.id}
    if sub == "decline":
        act["reason"] = args.reason
    return do_act(args, act)


def _print_commitment(c: dict[str, Any]) -> None:
    print(f"commitment {c['id']}: {c['title']}")
    print(f"  {c['kind']}, owner {c['owner']}, {c['disclosure']}; proposed by {c['proposer']} at "
          f"{ts(c['proposed_at_ns'])}")  # fmt: skip
    print(f"  state: {c['state']}" + (f" (agreed by {c['agreed_by']} at {ts(c['agreed_at_ns'])})"
                                      if c["agreed_at_ns"] else ""))  # fmt: skip
    if c["due_ns"]:
        print(f"  due: {ts(c['due_ns'])}")
    if c["starts_ns"] or c["ends_ns"]:
        print(f"  in force: {ts(c['starts_ns'])} to {ts(c['ends_ns'])}")
    if c["rounds"]:
        done = ", ".join(f"{r['round']} ({ts(r['done_at_ns'])[:10]})" for r in c["rounds_done"]) or "none"
        print(f"  rounds: {len(c['rounds_done'])} of {c['rounds']} done: {done}")
    if c["reason"]:
        print(f"  reason: {c['reason']}")
    if c["call"]:
        print(f"  from call {c['call']}")
    print(f"  text sha256: {c['text_sha256']}")
    for step in c["history"]:
        void = f"  [void: {step['void']}]" if step["void"] else ""
        print(f"    {ts(step['at_ns'])}  {step['author']:<12} {step['type']}{void}")


COMMITMENT_FILTERS = ("open", "proposed", "agreed", "overdue", "fulfilled", "lapsed", "withdrawn", "declined")


def cmd_commitments(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    now = now_ns()
    views = [commitment_view(c, now) for c in load_register(home, config.name).commitments()]
    if args.status:
        wanted = {"proposed", "agreed", "overdue"} if args.status == "open" else {args.status}
        views = [v for v in views if v["state"] in wanted]
    # Overdue first, then what falls due soonest.
    views.sort(key=lambda v: (v["state"] != "overdue", v["due_ns"] or 2**63, v["proposed_at_ns"]))
    if args.json:
        out_json({"commitments": [with_times(v) for v in views], "total": len(views)})
        return 0
    if not views:
        print("no commitments on record" + (f" with status {args.status}" if args.status else ""))
    for v in views:
        due = ts(v["due_ns"])[:10] if v["due_ns"] else "no date"
        rounds = f" rounds {len(v['rounds_done'])}/{v['rounds']}" if v["rounds"] else ""
        print(f"{v['id']}  {v['state']:<9} due {due:<10} {v['kind']:<10} owner {v['owner']:<10} {v['title']}{rounds}")
    return 0


# -- the parser ------------------------------------------------------------------------------------------

CALL_EPILOG = """\
examples:
  hotline call propose --to moscow --subject "Energy-site strikes" --at 2025-10-16T14:00:00Z --duration 2h30m \\
      --answer-by 30m --precedence immediate --disclosure public
  hotline call accept 0193f2...           # an id, or its first 8 characters
  hotline call counter 0193f2 --at 2025-10-16T16:00:00Z --reason "the president is travelling"
  hotline call start 0193f2 ; hotline call note 0193f2 "agreed to meet advisers next week" ; hotline call end 0193f2
  hotline call show 0193f2 --json
  hotline call propose --to moscow --subject "Weekly line review" --at 2025-11-06T09:00:00Z \\
      --every "FREQ=WEEKLY;BYDAY=TH"
A request not answered by its --answer-by time raises call-unanswered on both sides and stays on record.
"""

COMMITMENT_EPILOG = """\
examples:
  hotline commitment add --call 0193f2 --title "Advisers meet" --owner both --due 2025-10-23 --kind meeting \\
      --disclosure public
  hotline commitment agree 0194a1         # the other side countersigns the exact text: now it is agreed
  hotline commitment add --to moscow --title "Energy-site non-strike, 30 days" --kind moratorium \\
      --starts 2025-03-18T00:00:00Z --ends 2025-04-17T00:00:00Z --due 2025-04-17T00:00:00Z
  hotline commitment round 0194b7 2 --done-at 2025-06-10T12:00:00Z --note "84 for 84"
  hotline commitment fulfil 0194a1 --reason "met in Riyadh"
A commitment is agreed only when the other side countersigns it; an agreed one not fulfilled by its due
date raises commitment-overdue on both sides.
"""


def register(add: Add) -> None:
    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print one JSON document")

    call = add("call", cmd_call, "propose, answer, hold and show calls between the two sides")
    call.epilog = CALL_EPILOG
    call.formatter_class = argparse.RawDescriptionHelpFormatter
    csub = call.add_subparsers(dest="call_cmd", required=True,
                               metavar="propose|accept|decline|counter|withdraw|start|note|end|show")  # fmt: skip

    def call_cmd(name: str, help_text: str, takes_id: bool = True) -> argparse.ArgumentParser:
        p = csub.add_parser(name, help=help_text, description=help_text, epilog=CALL_EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        home_option(p)
        json_flag(p)
        if takes_id:
            p.add_argument("id", help="the call's id (or its first 8 or more characters)")
        return p

    p = call_cmd("propose", "propose a call to a peer; prints the call's id", takes_id=False)
    p.add_argument("--to", required=True, help="the peer asked")
    p.add_argument("--subject", required=True, help="what the call is about (one line)")
    p.add_argument("--agenda", help="the agenda, as text")
    p.add_argument("--agenda-file", help="the agenda, from a UTF-8 file (- for stdin)")
    p.add_argument("--at", help="when, RFC 3339 (e.g. 2025-10-16T14:00:00Z); default: as soon as both are ready")
    p.add_argument("--duration", help="how long, e.g. 2h30m")
    p.add_argument("--answer-by", help="how long the peer has to answer, e.g. 30m; then call-unanswered is raised")
    p.add_argument("--precedence", choices=PRECEDENCES, default="routine", help="(default routine)")
    p.add_argument("--disclosure", choices=DISCLOSURES, default="confidential", help="(default confidential)")
    p.add_argument("--every", help='recurrence, an RFC 5545 RRULE such as "FREQ=WEEKLY;BYDAY=TH" (needs --at)')
    p = call_cmd("accept", "accept a call request (the side whose turn it is)")
    p.add_argument("--at", help="the time accepted, if not the one proposed")
    p = call_cmd("decline", "decline a call request, saying why")
    p.add_argument("--reason", required=True)
    p = call_cmd("counter", "propose another time for a requested call")
    p.add_argument("--at", required=True, help="the time proposed instead, RFC 3339")
    p.add_argument("--reason")
    p = call_cmd("withdraw", "withdraw this side's request, or call off an accepted call")
    p.add_argument("--reason")
    call_cmd("start", "the call has begun (both sides record the same start)")
    p = call_cmd("note", "a time-stamped note kept by this side during the call (never sent)")
    p.add_argument("text")
    call_cmd("end", "the call has ended (both sides record the same end and duration)")
    call_cmd("show", "the whole session: request, answers, times, notes, readouts, commitments")

    p = add("calls", cmd_calls, "list calls: requests, answers and sessions", listing=True)
    p.add_argument("--state", choices=("open", "proposed", "unanswered", "countered", "accepted", "live", "ended",
                                       "declined", "withdrawn"), help="only calls in this state")  # fmt: skip

    r = add("readout", cmd_readout, "add this side's readout of a call")
    rsub = r.add_subparsers(dest="readout_cmd", required=True, metavar="add")
    p = rsub.add_parser(
        "add", help="write this side's readout of a call, in its own language",
        description="Each side writes its own readout of a call, in its own language, with a disclosure level. "
        "--share sends it, signed, to the peer, whose console shows both readouts side by side.",
        epilog="example: hotline readout add 0193f2 --lang ru --disclosure public --file readout.md --share",
    )  # fmt: skip
    home_option(p)
    json_flag(p)
    p.add_argument("call", help="the call's id")
    p.add_argument("--lang", required=True, help="BCP 47 tag of the readout's language (en, ru, zh-Hans...)")
    p.add_argument("--disclosure", choices=DISCLOSURES, default="confidential")
    p.add_argument("--file", help="the readout, a UTF-8 file (- for stdin)")
    p.add_argument("--text", help="the readout, as text")
    p.add_argument("--share", action="store_true", help="send it, signed, to the peer")

    c = add("commitment", cmd_commitment, "propose, agree and track commitments (two-party)")
    c.epilog = COMMITMENT_EPILOG
    c.formatter_class = argparse.RawDescriptionHelpFormatter
    ksub = c.add_subparsers(dest="commitment_cmd", required=True,
                            metavar="add|agree|decline|fulfil|lapse|withdraw|round|show")  # fmt: skip

    def commitment_cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        p = ksub.add_parser(name, help=help_text, description=help_text, epilog=COMMITMENT_EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        home_option(p)
        json_flag(p)
        if name != "add":
            p.add_argument("id", help="the commitment's id (or its first 8 or more characters)")
        return p

    p = commitment_cmd("add", "propose a commitment; agreed once the other side countersigns")
    p.add_argument("--call", help="the call it came out of")
    p.add_argument("--to", help="the other side (default: the other side of --call)")
    p.add_argument("--title", required=True)
    p.add_argument("--detail", help="the full text")
    p.add_argument("--owner", default="both", help="who must act: a terminal's name, or both (default)")
    p.add_argument("--due", help="when it falls due (RFC 3339 or a date)")
    p.add_argument("--kind", choices=("meeting", "summit", "exchange", "moratorium", "other"), default="other")
    p.add_argument("--disclosure", choices=DISCLOSURES, default="confidential")
    p.add_argument("--starts", help="a moratorium's start")
    p.add_argument("--ends", help="a moratorium's end")
    p.add_argument("--rounds", type=int, default=0, help="an exchange's number of rounds")
    commitment_cmd("agree", "countersign a commitment the other side proposed: it becomes agreed")
    p = commitment_cmd("decline", "refuse a commitment the other side proposed")
    p.add_argument("--reason", required=True)
    for name, what in (("fulfil", "fulfilled"), ("lapse", "lapsed"), ("withdraw", "withdrawn")):
        p = commitment_cmd(name, f"mark a commitment {what}, saying why")
        p.add_argument("--reason", required=True)
    p = commitment_cmd("round", "record one round of an exchange as done")
    p.add_argument("round", type=int, help="the round's number, from 1")
    p.add_argument("--done-at", help="when it was done (default now)")
    p.add_argument("--note")
    commitment_cmd("show", "a commitment, its text's hash, its rounds and every change, signed by whom")

    p = add("commitments", cmd_commitments, "list commitments, overdue and due soonest first", listing=True)
    p.add_argument("--status", choices=COMMITMENT_FILTERS, help="only these (open = proposed, agreed or overdue)")
