"""`hotline status` and `hotline alarms`: the line's health, from the running terminal or the journal.

With the terminal stopped, both read the journal: every link is then down, and the
alarms are those it last raised.
"""

from __future__ import annotations

import argparse
from typing import Any

from hotline.cli.common import Add, ask_running, open_home, open_journal, out_json, ts
from hotline.core import times
from hotline.engine.status import stopped_status


def cmd_status(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    status = ask_running(home, "status")
    if status is None:
        with open_journal(home, readonly=True) as storage:
            status = stopped_status(config.name, storage.store, storage.record)
    for peer in status["peers"]:
        ns = peer.get("last_contact_ns")
        peer["last_contact"] = times.rfc3339(ns) if ns else None  # JSON says null; the text says "-"
    console = home / "console.url"  # written by the running terminal once its console is bound
    status["console"] = console.read_text().strip() if status["running"] and console.exists() else None
    if args.json:
        out_json(status)
        return 0
    print(f"terminal {status['name']}: {'running' if status['running'] else 'NOT RUNNING'}")
    if status["console"]:
        print(f"console and API at {status['console']}")
    for p in status["peers"]:
        rtt = f" rtt {p['rtt_ms']:.2f} ms" if p.get("rtt_ms") else ""
        via = f" via {p['address']}" if p.get("address") else ""
        print(f"  {p['name']:<14} link {p['link'].upper()}{via}{rtt}; last contact {p['last_contact'] or '-'}")
        q = p["queue"]
        print(
            f"    queued {q['queued']}, awaiting receipt {q['unacknowledged']}, "
            f"delivered up to #{q['delivered_upto']}, received up to #{q['received_upto']}"
        )
        for path in p.get("paths", []):
            marker = "*" if path["active"] else " "
            rtt = f"rtt {path['rtt_ms']:.2f} ms (p50 {path['rtt_p50_ms']:.2f})" if path.get("rtt_ms") else "rtt -"
            beat = path.get("last_heartbeat_ms_ago")
            test = path.get("last_test") or {}
            test_text = ("ok" if test.get("ok") else "FAILED") + f" {ts(test.get('at_ns'))}" if test else "none yet"
            print(
                f"   {marker}{path['name']:<10} {path['state'].upper():<5} {rtt}; "
                f"last heartbeat {beat if beat is not None else '-'} ms ago; last test {test_text}"
            )
        if p.get("refused"):
            print(f"    REFUSED: {p['refused']}")
        elif p.get("last_error"):
            print(f"    last error: {p['last_error']}")
    _print_journal(status["journal"])
    _print_alarms(status.get("alarms", []))
    return 0


def _print_journal(journal: dict[str, Any]) -> None:
    checked = (
        f"checked up to entry {journal['checked_upto']} at {ts(journal['checked_at_ns'])}"
        if journal.get("checked_upto") is not None
        else "not checked yet"
    )
    if journal["state"] == "altered":
        print(f"JOURNAL ALTERED ({checked}): appending stopped until `hotline journal accept-damage`")
        for text in journal["damage"]:
            print(f"  ! {text}")
        return
    full = journal.get("full_verify")
    full_text = (
        "; full verify " + ("ok" if full["ok"] else "FAILED") + f" at {ts(full['at_ns'])} ({full['entries']} entries)"
        if full
        else ""
    )
    print(f"journal {journal['state']}, {checked}{full_text}")


def _print_alarms(alarms: list[dict[str, Any]]) -> None:
    if not alarms:
        print("no alarms")
        return
    print(f"{len(alarms)} ALARM(S):")
    for a in alarms:
        print(f"  ! {a['kind']:<16} {a['peer']:<12} since {ts(a['raised_ns'])}  {a['detail']}")


def cmd_alarms(args: argparse.Namespace) -> int:
    home, _ = open_home(args)
    running = ask_running(home, "alarms")
    if running is not None:
        alarms = running["alarms"]
    else:
        with open_journal(home, readonly=True) as storage:
            alarms = storage.store.active_alarms()
    for a in alarms:
        a["raised"] = ts(a["raised_ns"])
    if args.json:
        out_json({"alarms": alarms})
    else:
        _print_alarms(alarms)
    return 0


def register(add: Add) -> None:
    add("alarms", cmd_alarms, "active alarms: path down, all paths down, test failed, key changed, ack overdue",
        listing=True)  # fmt: skip
    add("status", cmd_status, "peers, link state, queue depth, last contact", listing=True)
