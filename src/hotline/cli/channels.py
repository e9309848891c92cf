"""`hotline channel` and `channels`: several terminals on one channel, over their pairwise links.

Every act (create, join, add, remove, leave, a message) is one desk record signed
by this terminal and sent to each member over that member's own link
(``desk.channels``); it goes through the running terminal's control socket, or
into the journal when it is stopped (``cli.desk.do_act``). ``channel show`` reads
the journal: the members, and each message in the causal order with, for this
terminal's own messages, which members have it delivered.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from hotline.cli.common import Add, home_option, open_home, open_journal, out_json
from hotline.cli.desk import do_act, load_register
from hotline.core.errors import ControlError
from hotline.desk.channels import Channel, channel_view
from hotline.desk.register import with_times
from hotline.terminal.control import ControlClient

CHANNEL_EPILOG = """\
examples:
  hotline channel create ceasefire --member moscow --member kyiv --disclosure secret --relay
  hotline channel join ceasefire                # at each member invited: only then does it receive traffic
  hotline send --channel ceasefire --precedence immediate "Monitors report shelling near Zaporizhzhia."
  hotline channel add ceasefire --member ankara ; hotline channel remove ceasefire --member ankara
  hotline channel show ceasefire --json         # members, their links, each message with its deliveries
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


def _deliveries(home: Path) -> dict[bytes, dict[str, tuple[str, int | None]]]:
    """For each record this terminal sent: member -> (state of its carrier, delivered at)."""
    with open_journal(home, readonly=True) as storage:
        rows = storage.store.record_carriers()
    found: dict[bytes, dict[str, tuple[str, int | None]]] = {}
    for signed, peer, state, delivered_at in rows:
        found.setdefault(hashlib.sha256(signed).digest(), {})[peer] = (state, delivered_at)
    return found


def show(home: Path, me: str, channel: Channel) -> dict[str, Any]:
    """``channel show``'s document: the channel as this terminal holds it, with link and delivery states."""
    view = channel_view(channel, me)
    links = _links(home)
    deliveries = _deliveries(home)
    by_id = {m.record.id: m for m in channel.messages}
    behind: dict[str, int] = {}
    for message in view["messages"]:
        if message["author"] != me:
            continue
        sent = deliveries.get(by_id[message["id"]].record.digest, {})
        message["delivery"] = {name: {"state": state, "delivered_at_ns": at or 0} for name, (state, at) in
                               sorted(sent.items())}  # fmt: skip
        for name, (state, _) in sent.items():
            if state != "delivered":
                behind[name] = behind.get(name, 0) + 1
    # What each member had seen when it last wrote: how far behind the channel it was then.
    held = {m["author"]: m["seq"] for m in view["messages"]}
    for member in view["members"]:
        name = member["name"]
        member["link"] = "this terminal" if name == me else links.get(name, "unknown (terminal stopped)")
        member["undelivered"] = behind.get(name, 0)
        last = max((m for m in channel.messages if m.author == name), key=lambda m: m.seq, default=None)
        member["had_seen"] = last.seen if last is not None else {}
        member["last_seq"] = last.seq if last is not None else 0
        member["missing_when_it_last_wrote"] = sum(
            max(0, upto - (last.seen.get(a, 0) if last is not None else 0))
            for a, upto in held.items() if a != name
        ) if last is not None else None  # fmt: skip
    return with_times(view)


def cmd_channel(args: argparse.Namespace) -> int:
    sub = args.channel_cmd
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
        marks = ""
        if "delivery" in msg:
            marks = "  [" + " ".join(f"{n}:{d['state']}" for n, d in msg["delivery"].items()) + "]"
        subject = f"{msg['subject']}: " if msg["subject"] else ""
        print(f"    {msg['at']}  {msg['author']}#{msg['seq']:<4} {msg['precedence']:<9} {subject}{msg['text']}{marks}")


def cmd_channels(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    register = load_register(home, config.name)
    views = []
    for channel in register.channels():
        view = channel_view(channel, config.name)
        views.append({"id": view["id"], "name": view["name"], "creator": view["creator"], "state": view["state"],
                      "disclosure": view["disclosure"], "members": view["members"],
                      "messages": len(view["messages"]), "created_at_ns": view["created_at_ns"]})  # fmt: skip
    if args.json:
        out_json({"channels": [with_times(v) for v in views], "total": len(views)})
        return 0
    if not views:
        print("no channels")
    for v in views:
        members = ", ".join(f"{m['name']}({m['state']})" for m in v["members"])
        print(f"#{v['name']:<20} {v['state']:<8} {v['messages']:>5} messages  {members}")
    return 0


def register(add: Add) -> None:
    c = add("channel", cmd_channel, "create, join and manage a channel of several terminals")
    c.epilog = CHANNEL_EPILOG
    c.formatter_class = argparse.RawDescriptionHelpFormatter
    csub = c.add_subparsers(dest="channel_cmd", required=True, metavar="create|join|add|remove|leave|show")

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
    sub("show", "members with their links; messages in causal order with per-member delivery")
    add("channels", cmd_channels, "list the channels this terminal holds", listing=True)
