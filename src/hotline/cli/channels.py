"""`hotline channel` and `channels`: several terminals on one channel, over their pairwise links.

Every act (create, join, add, remove, leave, a message) is one desk record signed
by this terminal and sent to each member over that member's own link
(``desk.channels``); it goes through the running terminal's control socket, or
into the journal when it is stopped (``cli.desk.do_act``). ``channel show`` reads
the journal: the members, and each message in the causal order with, for this
terminal's own messages, which members have it delivered, read and acknowledged
(each member's receipts come back over its own link), and for the others' whether
a person here has read and acknowledged it. ``channel ack`` acknowledges one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hotline.cli.common import Add, home_option, open_home, open_journal, out_json
from hotline.cli.desk import do_act, load_register
from hotline.cli.messages import ack_message
from hotline.core.errors import ControlError, DeskError
from hotline.desk.channels import Channel, channel_document, channel_summary, find_message
from hotline.desk.register import with_times
from hotline.terminal.control import ControlClient

CHANNEL_EPILOG = """\
examples:
  hotline channel create ceasefire --member moscow --member kyiv --disclosure secret --relay
  hotline channel join ceasefire                # at each member invited: only then does it receive traffic
  hotline send --channel ceasefire --precedence immediate "Monitors report shelling near Zaporizhzhia."
  hotline channel add ceasefire --member ankara ; hotline channel remove ceasefire --member ankara
  hotline channel show ceasefire --json         # members, their links, each message with its receipts
  hotline channel ack ceasefire washington#3    # received and understood: the signed receipt goes to its author
  hotline channel leave ceasefire
"""


def _links(home: Path) -> dict[str, str]:
    """Each peer's link as the running terminal sees it ("up"/"down"), or "terminal stopped"."""
    try:
        with ControlClient(home, timeout=5) as client:
            status = client.request("status")
    except ControlError:
        return {}
    return {str(p["name"]): str(p.get("link", "down")) for p in status.get("peers", [])}


def show(home: Path, me: str, channel: Channel) -> dict[str, Any]:
    """``channel show``'s document: the channel as this terminal holds it, with links and receipts."""
    links = _links(home)
    with open_journal(home, readonly=True) as storage:
        sent, received = storage.store.record_carriers("out"), storage.store.record_carriers("in")
    return with_times(channel_document(channel, me, sent, received, links))


def cmd_channel(args: argparse.Namespace) -> int:
    sub = args.channel_cmd
    if sub == "ack":
        home, config = open_home(args)
        register = load_register(home, config.name)
        message = find_message(register.channel(register.find_channel(args.name)), args.message)
        if message.author == config.name:
            raise DeskError(f"{message.author}#{message.seq} is this terminal's own; its members acknowledge it")
        return ack_message(args, message.record.id, f"{message.author}#{message.seq} on #{args.name}")
    if sub == "show":
        home, config = open_home(args)
        register = load_register(home, config.name)
        view = show(home, config.name, register.channel(register.find_channel(args.name)))
        if args.json:
            out_json(view)
        else:
            _print(view)
        return 0
    act: dict[str, Any] = {"act": f"channel.{sub}"}
    if sub == "create":
        act.update(name=args.name, members=args.member, disclosure=args.disclosure)
        if args.relay:
            act["relay"] = True
    else:
        act["channel"] = args.name
    if sub in ("add", "remove"):
        if len(args.member) != 1:
            raise ControlError(f"channel {sub} takes one --member")
        act["member"] = args.member[0]
    if sub in ("remove", "leave") and args.reason:
        act["reason"] = args.reason
    return do_act(args, act)


def _print(v: dict[str, Any]) -> None:
    print(f"#{v['name']} ({v['id']}), created by {v['creator']} at {v['created_at']}, {v['disclosure']}; "
          f"this terminal: {v['state']}")  # fmt: skip
    print("  members:")
    for m in v["members"]:
        why = f" ({m['why']})" if m["why"] else ""
        behind = f", {m['undelivered']} of this terminal's messages not yet delivered" if m["undelivered"] else ""
        print(f"    {m['name']:<14} {m['state']:<8}{why}  link {m['link']}{behind}")
    print(f"  messages ({len(v['messages'])}, in causal order):")
    for msg in v["messages"]:
        if "delivery" in msg:
            marks = "  [" + " ".join(f"{n}:{receipt_mark(d)}" for n, d in msg["delivery"].items()) + "]"
        else:
            marks = f"  [here: {receipt_mark(msg['mine'])}]" if msg["mine"] else ""
        subject = f"{msg['subject']}: " if msg["subject"] else ""
        print(f"    {msg['at']}  {msg['author']}#{msg['seq']:<4} {msg['precedence']:<9} {subject}{msg['text']}{marks}")
        if msg["attachments"]:
            names = ", ".join(f"{a['name']} ({a['size']:,} bytes)" for a in msg["attachments"])
            print(f"        files: {names} — `hotline attachment {msg['id']} N`")


def receipt_mark(r: dict[str, Any]) -> str:
    """The furthest a message got at one member: acknowledged (by whom), read, or its carrier's state."""
    if r.get("acknowledged_at_ns"):
        return f"acknowledged({r['acknowledged_by'] or '?'})"
    return "read" if r.get("read_at_ns") else str(r.get("state", "?"))


def cmd_channels(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    register = load_register(home, config.name)
    with open_journal(home, readonly=True) as storage:
        sent, received = storage.store.record_carriers("out"), storage.store.record_carriers("in")
    links = _links(home)
    views = [channel_summary(channel_document(c, config.name, sent, received, links)) for c in register.channels()]
    if args.json:
        out_json({"channels": [with_times(v) for v in views], "total": len(views)})
        return 0
    if not views:
        print("no channels")
    for v in views:
        members = ", ".join(f"{m['name']}({m['state']})" for m in v["members"])
        waiting = ""
        if v["awaiting_our_ack"] or v["awaiting_their_ack"]:
            waiting = (
                f"  to acknowledge here: {v['awaiting_our_ack']}, ours awaiting members: {v['awaiting_their_ack']}"
            )
        print(f"#{v['name']:<20} {v['state']:<8} {v['messages']:>5} messages  {members}{waiting}")
    return 0


def register(add: Add) -> None:
    c = add("channel", cmd_channel, "create, join and manage a channel of several terminals")
    c.epilog = CHANNEL_EPILOG
    c.formatter_class = argparse.RawDescriptionHelpFormatter
    csub = c.add_subparsers(dest="channel_cmd", required=True, metavar="create|join|add|remove|leave|show|ack")

    def sub(name: str, help_text: str) -> argparse.ArgumentParser:
        p = csub.add_parser(name, help=help_text, description=help_text, epilog=CHANNEL_EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        home_option(p)
        p.add_argument("--json", action="store_true", help="print one JSON document")
        p.add_argument("name", help="the channel's name (or its id)")
        return p

    p = sub("create", "create a channel of this terminal and paired peers; each must join")
    p.add_argument("--member", action="append", required=True, metavar="PEER", help="a paired peer (repeat)")
    p.add_argument("--disclosure", choices=("public", "confidential", "secret"), default="confidential")
    p.add_argument("--relay", action="store_true",
                   help="a member may carry two others' traffic, as ciphertext, while their link is cut")  # fmt: skip
    sub("join", "accept an invitation to a channel: from now on its messages come here")
    for name, what in (("add", "invite a paired peer into the channel"), ("remove", "remove a member")):
        p = sub(name, what)
        p.add_argument("--member", action="append", required=True, metavar="PEER")
        if name == "remove":
            p.add_argument("--reason")
    p = sub("leave", "leave the channel: nothing sent after it comes here")
    p.add_argument("--reason")
    sub("show", "members with their links; messages in causal order with each member's receipts")
    p = sub("ack", "acknowledge a member's message: 'received and understood', signed, sent to its author")
    p.add_argument("message", help="the message: its id (or the start of it) or AUTHOR#SEQ as `channel show` lists it")
    p.add_argument("--by", help="who acknowledges (default: $USER)")
    add("channels", cmd_channels, "list the channels this terminal holds", listing=True)
