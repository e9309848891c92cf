"""`hotline send`, `inbox`, `outbox`, `attachment` and `ack`: the traffic itself.

With the terminal running, ``send`` and ``ack`` go through its control socket;
with it stopped they are written to the journal, and the next ``hotline run``
sends them. The listings always read the journal.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from hotline.cli.common import Add, load_identity, now_ns, open_home, open_journal, open_journal_to_record, out_json
from hotline.core import times
from hotline.core.compose import build_content
from hotline.core.errors import ConfigError, ControlError, ControlTimeout, DeliveryError
from hotline.core.model import canonical_message_id, safe_file_name, uuid7, validate_label
from hotline.home.config import Config
from hotline.terminal.control import ControlClient

SEND_EPILOG = """\
examples:
  hotline send --to moscow "Line check. Please confirm."
  hotline send --to moscow --precedence flash --classification SECRET --subject "Launch detected" --wait \\
      "Acknowledge at once."
  hotline send --to moscow --lang ru --file note.txt --attach readout.pdf
The id is printed at once; the message is in the journal and goes out as soon as the line allows
(with the terminal stopped, at the next `hotline run`). --wait returns once the receipt is in.
"""


# -- send --------------------------------------------------------------------------------


def _read_attachment(path: str) -> list[Any]:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > 16 * 1024 * 1024:
            raise ConfigError(f"attachment {path} is {size} bytes; the limit is 16 MiB")
        return [p.name, p.read_bytes()]
    except OSError as e:
        raise ConfigError(f"cannot read attachment {path}: {e.strerror or e}") from None


def cmd_send(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    if (args.text is None) == (args.file is None):
        raise ConfigError("give the message text, or --file F, but not both")
    if args.file is not None:
        try:
            body = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read {args.file}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{args.file} is not UTF-8 text; send a binary file with --attach") from None
    else:
        body = args.text
    if args.channel is not None:
        return _send_to_channel(args, body)
    request = {
        "to": args.to, "precedence": args.precedence, "lang": args.lang, "subject": args.subject or "",
        "body": body, "attachments": [_read_attachment(a) for a in args.attach or []],
        "classification": args.classification or "",
    }  # fmt: skip
    # The id is chosen here, so that it can be named even if the wait below is cut short.
    request["id"] = canonical_message_id(args.id) if args.id else uuid7(now_ns() // 1_000_000, os.urandom(10))
    # Checked here first, whichever way it goes: the same clear refusal from a running terminal or
    # not, and nothing too large for the control socket is ever put on it.
    content = build_content(config.name, request, now_ns(), config.markings, os.urandom)
    try:
        client = ControlClient(home, timeout=60)
    except ControlError:
        client = None
    if client is not None:
        with client:
            if args.wait:
                request["wait"] = "delivered"
            req_id = client.submit("send", **request)
            try:
                result = client.result(req_id, deadline=time.monotonic() + args.timeout if args.wait else None)
            except (ControlTimeout, KeyboardInterrupt) as e:  # a refusal (ControlError) is said as such
                return _wait_cut_short(home, str(request["id"]), e, args.timeout)
        via = "running terminal"
    else:
        if args.wait:
            raise ControlError("--wait needs the terminal running (`hotline run`)")
        with open_journal_to_record(home) as storage, storage.record.transaction():
            created = storage.store.accept(content, now_ns())
        result = {"id": content.id, "created": created}
        via = "journal (terminal not running; the next `hotline run` sends it)"
    if args.json:
        out_json({**result, "queued_via": via})
    else:
        print(result["id"])
    return 0


def _send_to_channel(args: argparse.Namespace, body: str) -> int:
    """`send --channel`: one desk record, signed once, fanned out to the members (``desk.channels``)."""
    from hotline.cli.desk import do_act  # here, so `send --to` loads nothing of the desk

    for option, given in (("--id", args.id), ("--classification", args.classification)):
        if given:
            raise ConfigError(f"{option} is not supported with --channel yet")
    act = {"act": "channel.message", "channel": args.channel, "text": body, "subject": args.subject or "",
           "precedence": args.precedence, "lang": args.lang}  # fmt: skip
    if args.attach:
        act["attachments"] = [_read_attachment(a) for a in args.attach]
    return do_act(args, act, wait_s=args.timeout if args.wait else None)


def _wait_cut_short(home: Path, message_id: str, cause: BaseException, timeout: float) -> int:
    """`send --wait` stopped waiting (Ctrl-C, or no receipt in time): say plainly where the message
    stands, from the journal, and name it, so nobody sends it twice to be sure."""
    with open_journal(home, readonly=True) as storage:
        row = storage.store.message(message_id)
    print(message_id)  # the request was made: whatever happened, this is the message's name
    why = "interrupted" if isinstance(cause, KeyboardInterrupt) else f"no delivery receipt within {timeout:g} s"
    if row is None:
        where = "is not in the journal yet; the terminal may still take it (`hotline outbox` tells)"
    else:
        where = f"is in the journal ({row['state']}) and goes out as the line allows; `hotline outbox` follows it"
    print(f"hotline: {why}; message {message_id} {where}", file=sys.stderr)
    return 130 if isinstance(cause, KeyboardInterrupt) else 3


# -- inbox, outbox, attachment ---------------------------------------------------------------


def _listing(args: argparse.Namespace, direction: str) -> int:
    home, _ = open_home(args)
    with open_journal(home, readonly=True) as storage:
        store = storage.store
        if args.peer is not None and store.peer(args.peer) is None:
            raise ConfigError(f"no peer named {args.peer!r}; see `hotline peers`")
        rows = store.messages(direction, peer=args.peer, limit=args.limit)
        total = store.message_count(direction, peer=args.peer)
    for row in rows:
        for key in [k for k in row if k.endswith("_at_ns")]:  # every time also in RFC 3339
            row[key.removesuffix("_ns")] = times.rfc3339(row[key]) if row[key] else None
    channel_rows = _channel_messages(args, home, args.peer, args.limit) if direction == "out" else []
    if args.json:
        listing: dict[str, Any] = {"messages": rows, "total": total}
        if direction == "out":
            listing["channel_messages"] = channel_rows  # one each, with every member's receipts
        out_json(listing)
        return 0
    if not rows and not channel_rows:
        print("no messages")
    for r in rows:
        when = r["received_at"] if direction == "in" else (r["delivered_at"] or r["sent_at"] or r["queued_at"])
        who = ("from " if direction == "in" else "to ") + r["peer"]
        marking = f"({r['classification']}) " if r["classification"] else ""
        print(
            f"{when}  {r['precedence'].upper():<9} {r['state']:<9} #{r['seq'] or '-':<6} {who:<16} "
            f"[{r['lang']}] {marking}{r['subject']}"
        )
        if r["acknowledged_at_ns"]:
            who_acked = f" by {r['acknowledged_by']}" if r["acknowledged_by"] else ""
            print(f"    acknowledged {times.rfc3339(r['acknowledged_at_ns'])}{who_acked}")
        body = r["body"].replace("\n", " ")
        print(f"    {body[:110]}{'…' if len(body) > 110 else ''}  ({r['id']})")
        if r["attachments"]:
            print(f"    {r['attachments']} attachment(s): `hotline attachment {r['id']}`")
    if total > len(rows):
        print(f"showing the latest {len(rows)} of {total}; --limit to see more")
    if channel_rows:
        from hotline.cli.channels import receipt_mark

        print("to channels (each member's receipt):")
    for c in channel_rows:
        marks = " ".join(f"{n}:{receipt_mark(d)}" for n, d in c["delivery"].items())
        print(f"{c['at']}  {c['precedence'].upper():<9} #{c['channel']} {c['author']}#{c['seq']:<4} "
              f"[{c['lang']}] {c['subject'] or c['text'][:80]}\n    [{marks}]  ({c['id']})")  # fmt: skip
    return 0


def _channel_messages(args: argparse.Namespace, home: Path, peer: str | None, limit: int) -> list[dict[str, Any]]:
    """This terminal's messages to channels (``peer``: those that went to it), the latest ``limit``,
    oldest first, each with every member's receipts."""
    from hotline.cli.desk import load_register
    from hotline.desk.channels import channel_document
    from hotline.desk.register import with_times

    _, config = open_home(args)
    register = load_register(home, config.name)
    with open_journal(home, readonly=True) as storage:
        sent = storage.store.record_carriers("out")
    found = [{"channel": channel.name, **m} for channel in register.channels()
             for m in channel_document(channel, config.name, sent, [], {})["messages"]
             if "delivery" in m and (peer is None or peer in m["delivery"])]  # fmt: skip
    found.sort(key=lambda m: (m["at_ns"], m["id"]))
    return [with_times(m) for m in found[-limit:]]


def cmd_inbox(args: argparse.Namespace) -> int:
    return _listing(args, "in")


def cmd_outbox(args: argparse.Namespace) -> int:
    return _listing(args, "out")


def cmd_attachment(args: argparse.Namespace) -> int:
    home, _ = open_home(args)
    with open_journal(home, readonly=True) as storage:
        store = storage.store
        args.id = canonical_message_id(args.id)
        args.id = store.carrier_of(args.id) or args.id  # a channel message's files ride its carrier
        found = store.message(args.id)
        if found is None:
            raise DeliveryError(f"no message with id {args.id}; see `hotline inbox` or `hotline outbox`")
        listing = found["attachments"]
        if args.index is None:
            if args.json:
                out_json({"id": args.id, "attachments": listing})
                return 0
            if not listing:
                print("no attachments")
            for a in listing:
                shown = safe_file_name(a["name"])  # never a peer's control characters on our terminal
                print(f"{a['index']:>2}  {a['size']:>10,} bytes  {shown}  sha256 {a['sha256'][:16]}")
            return 0
        got = store.attachment(args.id, args.index) if 0 <= args.index < len(listing) else None
        if got is None:
            raise DeliveryError(f"message {args.id} has {len(listing)} attachment(s); there is no number {args.index}")
    name, data = got
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    target = Path(args.output) if args.output else Path(safe_file_name(name))
    try:
        with target.open("wb" if args.force else "xb") as f:
            f.write(data)
    except FileExistsError:
        raise ConfigError(f"{target} already exists; choose another with -o, or --force to replace it") from None
    except OSError as e:
        raise ConfigError(f"cannot write {target}: {e.strerror or e}") from None
    if args.json:
        out_json({"id": args.id, "index": args.index, "name": name, "size": len(data), "saved_to": str(target)})
    else:
        print(f"saved {name} ({len(data):,} bytes) to {target}")
    return 0


# -- ack ---------------------------------------------------------------------------------


def cmd_ack(args: argparse.Namespace) -> int:
    home, _ = open_home(args)
    args.id = canonical_message_id(args.id)
    with open_journal(home, readonly=True) as storage:
        found = storage.store.message(args.id)
    if found is not None and found["direction"] == "out":
        raise DeliveryError(f"message {args.id} is one this terminal sent; only its recipient acknowledges it")
    if found is not None and found["acknowledged_at_ns"]:
        print(f"{args.id}: already acknowledged {times.rfc3339(found['acknowledged_at_ns'])} by "
              f"{found['acknowledged_by'] or '?'}; nothing more to send")  # fmt: skip
        return 0
    return ack_message(args, args.id, args.id)


def ack_message(args: argparse.Namespace, message_id: str, shown: str) -> int:
    """Acknowledge a received message — a pairwise one, or a channel's by its record's id or its
    carrier's — through the running terminal, or against the journal when it is stopped."""
    home, config = open_home(args)
    by = args.by or os.environ.get("USER") or "operator"
    validate_label(by, "--by")
    when = "now"
    try:
        with ControlClient(home, timeout=30) as client:
            client.request("ack", id=message_id, by=by)
    except ControlError as e:
        if "no running terminal" not in str(e):
            raise
        _ack_offline(home, config, message_id, by)
        when = "at the next `hotline run`"
    print(f"{shown}: acknowledged (received and understood) by {by}; the signed receipt goes back to the "
          f"sender {when}")  # fmt: skip
    return 0


def _ack_offline(home: Path, config: Config, message_id: str, by: str) -> None:
    """The terminal is stopped: run the engine's own acknowledgement once, against the journal."""
    from hotline.engine.engine import Engine
    from hotline.terminal.daemon import SystemClock

    identity = load_identity(home, config)
    errors: list[Exception] = []
    with open_journal_to_record(home) as storage:
        engine = Engine(
            identity=identity,
            config=config,
            journal=storage.record,
            store=storage.store,
            clock=SystemClock(),
            request_flush=lambda: None,
        )
        engine.acknowledge(message_id, by, lambda e: errors.append(e) if e else None)
        engine.flush()
    if errors:
        raise errors[0]


# -- the parser --------------------------------------------------------------------------


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def register(add: Add) -> None:
    p = add("send", cmd_send, "journal a message for a peer and print its id", listing=True)
    p.epilog = SEND_EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    to = p.add_mutually_exclusive_group(required=True)
    to.add_argument("--to", help="peer name (see `hotline peers`)")
    to.add_argument("--channel", metavar="NAME", help="a channel: signed once, sent to each member over its link")
    p.add_argument(
        "--precedence",
        default="routine",
        type=str.lower,
        choices=["flash", "immediate", "priority", "routine"],
        help="flash overtakes all queued traffic and takes over the other end's console; "
        "acknowledgement due within 10 min, 30 min, 3 h, 6 h (default routine)",
    )
    p.add_argument("--lang", default="en", help="BCP 47 language tag of the text (default en)")
    p.add_argument("--subject", default="", help="a short subject line (up to 500 characters)")
    p.add_argument(
        "--classification",
        metavar="MARKING",
        help="classification marking, shown as a banner at both ends; one of [messages] markings in "
        "config.toml (default: the first, UNCLASSIFIED unless configured)",
    )
    p.add_argument("--file", help="read the body (UTF-8 text) from a file, - for stdin; instead of TEXT")
    p.add_argument("--attach", action="append", metavar="F",
                   help="attach a file (up to 16 MiB each, 32 MiB in all with the body; repeatable)")  # fmt: skip
    p.add_argument("--id", help="message id (UUID) to make a retried send idempotent")
    p.add_argument(
        "--wait",
        action="store_true",
        help="return only once the signed delivery receipt is journaled (exit 3 if none within --timeout); "
        "with --channel, once every member's is",
    )
    p.add_argument("--timeout", type=_seconds, default=60.0, metavar="S",
                   help="with --wait: seconds to wait for the receipt (default 60)")  # fmt: skip
    p.add_argument("text", nargs="?", help="the message text (or --file)")

    for name, func, direction in (("inbox", cmd_inbox, "received"), ("outbox", cmd_outbox, "sent")):
        p = add(name, func, f"list {direction} messages with their state and times", listing=True)
        p.add_argument("--peer", help="only this peer")
        p.add_argument("--limit", type=_positive, default=100, help="most recent N (default 100)")
    p = add("attachment", cmd_attachment, "list a message's attachments, or save one to a file", listing=True)
    p.add_argument("id", help="the message id (see `hotline inbox` or `outbox`; a channel message's own id)")
    p.add_argument("index", nargs="?", type=int, help="the attachment to save (0, 1, ...); without it, list them")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to save it (default: its own name in this folder; - for stdout)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace a file that already exists")
    p = add("ack", cmd_ack, "acknowledge a received message: 'received and understood', signed, sent back")
    p.add_argument("id", help="the message id (see `hotline inbox`; a channel message's own id or its carrier's)")
    p.add_argument("--by", help="who acknowledges (default: $USER)")
