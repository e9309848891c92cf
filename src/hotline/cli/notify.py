"""`hotline notify`, `notifications`, `notification`: formatted notifications in the agreed forms.

A form is filled from a JSON file or field by field, checked against its type's
schema before anything is journaled (every failing field named in the
operator's language: ``--lang``, else $HOTLINE_LANG, else $LANG), then signed
and sent like every desk record. The receiving side checks it again and shows
it in each reader's language from the codes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from hotline.cli.common import Add, home_option, now_ns, open_home, out_json
from hotline.cli.desk import do_act, load_register
from hotline.core.errors import ConfigError, DeskError
from hotline.core.times import parse_time, rfc3339
from hotline.desk.notices import notice_view, refusals_sent, tallies
from hotline.desk.records import RecordType
from hotline.desk.register import with_times
from hotline.home.forms import load_forms

NOTIFY_EPILOG = """\
examples:
  hotline notify --list-types
  hotline notify missile-launch --template > launch.json      # fill it in, then:
  hotline notify missile-launch --to moscow --file launch.json
  hotline notify violation-report --to moscow --field arrangement=ENERGY_SITE_MORATORIUM \\
      --field alleged_at=2025-03-20T03:10:00Z --field location.lat=47.51 --field location.lon=34.62 \\
      --field target=SUBSTATION --field means=DRONE
  hotline notify violation-response --to washington --answers 0194c2 --field status=DISPUTED
A value is read as JSON when it parses (numbers, lists), else as text. Codes are the same in every language;
`--template` and `--list-types --json` show them.
"""


def operator_lang(args: argparse.Namespace) -> str:
    """The language a person at this terminal reads: --lang, $HOTLINE_LANG, or $LANG (ru_RU.UTF-8 -> ru)."""
    chosen = getattr(args, "lang", None) or os.environ.get("HOTLINE_LANG") or os.environ.get("LANG", "")
    tag = chosen.split(".", 1)[0].replace("_", "-")
    if tag.lower().startswith("zh"):
        return "zh-Hans"
    return tag.split("-", 1)[0].lower() if tag and tag not in ("C", "POSIX") else "en"


def _set(data: dict[str, Any], path: str, raw: str) -> None:
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--field {path}: {part} is not a group of fields")
        node = child
    node[parts[-1]] = value


def _form_data(args: argparse.Namespace) -> dict[str, Any]:
    if args.file and args.field:
        raise ConfigError("give the form as --file or as --field key=value, not both")
    if args.file:
        try:
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
            data = json.loads(text)
        except OSError as e:
            raise ConfigError(f"cannot read {args.file}: {e.strerror or e}") from None
        except ValueError as e:
            raise ConfigError(f"{args.file} is not JSON: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{args.file}: a form is a JSON object of its fields")
        return dict(data)
    fields: dict[str, Any] = {}
    for item in args.field or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--field {item!r}: expected key=value (a dotted key for a nested field)")
        _set(fields, key, raw)
    return fields


def cmd_notify(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    forms = load_forms(home, config)
    lang = operator_lang(args)
    if args.list_types:
        listing: list[dict[str, Any]] = [
            {"id": t.id, "title": t.title(lang), "precedence": t.precedence.label, "handling_s": t.handling_s,
             "lead_s": t.lead_s, "lead_field": t.lead_field, "answers": t.answers, "sha256": t.digest.hex(),
             "fields": t.fields(lang), "source": t.source}
            for t in sorted(forms.types.values(), key=lambda t: t.id)
        ]  # fmt: skip
        if args.json:
            out_json({"types": listing, "areas": sorted(forms.areas)})
        else:
            for t in listing:
                extra = f", answers {t['answers']}" if t["answers"] else ""
                print(f"{t['id']:<20} {t['precedence']:<9} {t['sha256'][:12]}  {t['title']}{extra}")
        return 0
    if not args.type:
        raise ConfigError("name the form type (see `hotline notify --list-types`)")
    form = forms.get(args.type)
    if args.template:
        out_json(form.template())
        return 0
    if not args.to:
        raise ConfigError("--to PEER: who the notification is for")
    act = {"act": "notify", "to": args.to, "form": form.id, "data": _form_data(args), "answers": args.answers or "",
           "ui_lang": lang}  # fmt: skip
    return do_act(args, act)


def _views(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    home, config = open_home(args)
    forms = load_forms(home, config)
    register = load_register(home, config.name)
    lang, now = operator_lang(args), now_ns()
    answered = register.answered_by()
    views = [with_times(notice_view(n, forms, lang, now, answered.get(n.id))) for n in register.notices()]
    refused_here = [
        {"id": r.thread, "form": r.fields["form"], "refused": r.fields["reason"], "refused_at": rfc3339(r.at_ns),
         "author": r.peer}
        for r in refusals_sent(register.threads(RecordType.NOTIFICATION_REFUSED), config.name)
    ]  # fmt: skip
    return views, refused_here


def cmd_notifications(args: argparse.Namespace) -> int:
    views, refused_here = _views(args)
    if args.type:
        views = [v for v in views if v["form"] == args.type]
    if args.since:
        start = parse_time(args.since, "--from")
        views = [v for v in views if v["sent_at_ns"] >= start]
    if args.until:
        end = parse_time(args.until, "--to")
        views = [v for v in views if v["sent_at_ns"] < end]
    if args.status:
        views = [v for v in views if v["status"] == args.status or (args.status == "late" and v["late"])]
    if args.json:
        out_json({"notifications": views, "refused_here": refused_here, "tallies": tallies(views),
                  "total": len(views)})  # fmt: skip
        return 0
    if not views and not refused_here:
        print("no notifications on record")
    for v in views:
        flags = "".join(f" [{f}]" for f in ("late", "overdue") if v[f])
        print(f"{v['id']}  {v['sent_at'][:16]}  {v['author']:>10} -> {v['peer']:<10} {v['status']:<12} "
              f"{v['title']}{flags}")  # fmt: skip
    for r in refused_here:
        print(f"{r['id']}  refused here: {r['form']} from {r['author']}: {r['refused']}")
    if views:
        t = tallies(views)
        print(f"violation reports: {t['violation_reports']['open']} open, {t['violation_reports']['answered']} "
              f"answered, {t['violation_reports']['disputed']} disputed; late: {sum(t['late'].values())}")  # fmt: skip
    return 0


def cmd_notification(args: argparse.Namespace) -> int:
    if args.notification_cmd == "ack":
        return do_act(
            args,
            {"act": "notification.ack", "id": args.id, "by": args.by or f"cli:{os.environ.get('USER', 'operator')}"},
        )
    views, _ = _views(args)
    matches = [v for v in views if v["id"].startswith(args.id.lower())] if len(args.id) >= 4 else []
    if len(matches) != 1:
        raise DeskError(f"no single notification with id {args.id!r}; see `hotline notifications`")
    v = matches[0]
    if args.json:
        out_json(v)
        return 0
    print(f"{v['title']}  ({v['form']}, {v['id']})")
    print(f"  from {v['author']} to {v['peer']} at {v['sent_at']}; {v['status']}"
          + (f" by {v['acknowledged_by']} at {v['acknowledged_at']}" if v["acknowledged_at_ns"] else ""))  # fmt: skip
    if v["refused"]:
        print(f"  refused: {v['refused']}")
    if v["late"]:
        print("  LATE: sent later than its form's lead time allows")
    if not v["form_known"]:
        print(f"  this terminal does not hold this version of {v['form']} (sha256 {v['form_sha256'][:12]})")
    width = max((len(f["label"]) for f in v["fields"]), default=0)
    for f in v["fields"]:
        print(f"  {f['label']:<{width}}  {f['value']}")
    if v["answers"]:
        print(f"  answers {v['answers']}")
    for other in v["answered_by"]:
        print(f"  answered by {other}")
    return 0


def register(add: Add) -> None:
    p = add("notify", cmd_notify, "send a formatted notification (a form both sides agreed)")
    p.epilog = NOTIFY_EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("type", nargs="?", help="the form type, e.g. missile-launch (see --list-types)")
    p.add_argument("--to", help="the peer it is for")
    p.add_argument("--file", help="the form's fields as a JSON object (- for stdin)")
    p.add_argument("--field", action="append", metavar="KEY=VALUE", help="one field (dotted keys for nested ones)")
    p.add_argument("--answers", help="the notification this one answers (for a response form)")
    p.add_argument("--list-types", action="store_true", help="list the form types this terminal holds")
    p.add_argument("--template", action="store_true", help="print an empty form of TYPE to fill in")
    p.add_argument("--lang", help="the language to read labels and errors in (default $HOTLINE_LANG or $LANG)")
    p.add_argument("--json", action="store_true", help="print one JSON document")

    p = add("notifications", cmd_notifications, "list formatted notifications, with tallies", listing=True)
    p.add_argument("--type", help="only this form type")
    p.add_argument("--from", dest="since", help="sent at or after (RFC 3339 or a date)")
    p.add_argument("--to", dest="until", help="sent before (RFC 3339 or a date)")
    p.add_argument("--status", choices=("open", "acknowledged", "refused", "late"))
    p.add_argument("--lang", help="the language to show forms in")

    n = add("notification", cmd_notification, "show or acknowledge one formatted notification")
    nsub = n.add_subparsers(dest="notification_cmd", required=True, metavar="show|ack")
    s = nsub.add_parser("show", help="the notification in this reader's language, from its codes")
    home_option(s)
    s.add_argument("id")
    s.add_argument("--lang")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    a = nsub.add_parser("ack", help='"received and understood": a signed acknowledgement goes back')
    home_option(a)
    a.add_argument("id")
    a.add_argument("--by", help="who acknowledges (default cli:$USER)")
    a.add_argument("--json", action="store_true", help="print one JSON document")
