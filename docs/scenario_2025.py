"""The 2025 record, played on a running pair of terminals through the `hotline` command line
(its entry point, called in this process).

    python docs/scenario_2025.py --washington HOME --moscow HOME [--json]

Both terminals must be initialised, paired with each other (as ``washington`` and ``moscow``) and
running: ``hotline demo`` prints two such homes. Six months are compressed into a minute. A record
carries the wall-clock time it was made (nobody can back-date a signed act), so the dates of 2025
are in the acts themselves: each call's ``--at``, each commitment's ``--due``/``--starts``, each
exchange round's ``--done-at``. What is played:

- the energy-site moratorium agreed on the call of 18 March (30 days from 2025-03-18), later lapsed;
- a prisoner exchange of three rounds: two done by June, the date of the third agreed;
- calls over six months, six announced (public) and three held in secret;
- the call Moscow proposed for 16 October 2025 (2h30 planned): accepted, held, ended; two readouts
  that differ (Moscow's in Russian, Washington's in English naming the advisers' meeting, both
  shared and public); the advisers' meeting "next week" and the Budapest summit as commitments
  from that call, each agreed by the other side;
- one request left unanswered (``--answer-by 2s``): both terminals raise ``call-unanswered``.

It prints what it made (with ``--json``, one JSON document: call and commitment ids by name).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

from hotline.cli.main import main as hotline_main


class Side:
    """One terminal, driven through `hotline --home HOME ...` as an operator would."""

    def __init__(self, name: str, home: Path) -> None:
        self.name, self.home = name, home

    def run(self, *args: str) -> str:
        # The `hotline` command's own entry point, called in this process: the same parsing, checks
        # and output as the command, without starting Python for each of the ~100 acts and looks.
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = hotline_main(["--home", str(self.home), *args])
        if code != 0:
            raise SystemExit(f"{self.name}: `hotline {' '.join(args)}` failed: {err.getvalue().strip()}")
        return out.getvalue().strip()

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json"))

    def sees(self, kind: str, thread: str, check: str = "", deadline_s: float = 30) -> dict[str, Any]:
        """Wait until this side holds the call or commitment (and, if ``check`` names a state,
        shows it in that state or a later record of it): the other side's act has arrived."""
        end = time.monotonic() + deadline_s
        while True:
            listing = self.json("calls" if kind == "call" else "commitments")
            found = [x for x in listing["calls" if kind == "call" else "commitments"] if x["id"] == thread]
            # An agreed commitment whose due date of 2025 has passed shows as overdue.
            if found and (
                not check or found[0]["state"] == check or (check, found[0]["state"]) == ("agreed", "overdue")
            ):
                return dict(found[0])
            if time.monotonic() > end:
                raise SystemExit(f"{self.name} did not receive {kind} {thread} ({check or 'any state'}) in time")
            time.sleep(0.05)


def held_call(
    proposer: Side, responder: Side, subject: str, at: str, disclosure: str, duration: str = "1h", **extra: str
) -> str:
    """A call proposed, accepted, started and ended (the session's times are the real ones)."""
    options = [f"--{k.replace('_', '-')}={v}" for k, v in extra.items()]
    call = proposer.run(
        "call",
        "propose",
        "--to",
        responder.name,
        "--subject",
        subject,
        "--at",
        at,
        "--duration",
        duration,
        "--disclosure",
        disclosure,
        *options,
    )
    responder.sees("call", call)
    responder.run("call", "accept", call)
    proposer.sees("call", call, "accepted")
    proposer.run("call", "start", call)
    responder.sees("call", call, "live")
    responder.run("call", "end", call)
    return call


def agreed(proposer: Side, other: Side, title: str, *options: str) -> str:
    """A commitment proposed by one side and countersigned by the other."""
    item = proposer.run("commitment", "add", "--to", other.name, "--title", title, *options)
    other.sees("commitment", item)
    other.run("commitment", "agree", item)
    return item


def play(w: Side, m: Side) -> dict[str, Any]:
    calls: dict[str, str] = {}
    commitments: dict[str, str] = {}
    # February to September: six announced calls (the last one is 16 October's) and three secret ones.
    calls["2025-02-12 announced"] = held_call(w, m, "Opening contact", "2025-02-12T15:00:00Z", "public", "1h30m")
    calls["2025-03-18 announced"] = held_call(
        w, m, "Energy sites and a ceasefire", "2025-03-18T14:00:00Z", "public", "2h30m", precedence="immediate"
    )
    commitments["moratorium"] = agreed(
        w,
        m,
        "Moratorium on strikes against energy sites",
        "--call",
        calls["2025-03-18 announced"],
        "--kind",
        "moratorium",
        "--starts",
        "2025-03-18",
        "--ends",
        "2025-04-17",
        "--due",
        "2025-04-17",
        "--disclosure",
        "public",
        "--detail",
        "Neither side strikes the other's energy infrastructure for 30 days.",
    )
    commitments["exchange"] = agreed(
        w,
        m,
        "Prisoner exchange in three rounds",
        "--call",
        calls["2025-03-18 announced"],
        "--kind",
        "exchange",
        "--rounds",
        "3",
        "--disclosure",
        "public",
    )
    calls["2025-04-09 secret"] = held_call(m, w, "Channel for the exchange lists", "2025-04-09T09:00:00Z", "secret")
    m.sees("commitment", commitments["moratorium"], "agreed")
    m.run("commitment", "lapse", commitments["moratorium"], "--reason", "the 30 days ended on 2025-04-17; not renewed")
    w.sees("commitment", commitments["exchange"], "agreed")
    w.run(
        "commitment",
        "round",
        commitments["exchange"],
        "1",
        "--done-at",
        "2025-04-19T12:00:00Z",
        "--note",
        "246 for 246",
    )
    calls["2025-05-19 announced"] = held_call(
        w, m, "Memorandum on a settlement", "2025-05-19T14:00:00Z", "public", "2h"
    )
    m.run(
        "commitment",
        "round",
        commitments["exchange"],
        "2",
        "--done-at",
        "2025-05-25T12:00:00Z",
        "--note",
        "1000 for 1000, over three days",
    )
    calls["2025-06-04 announced"] = held_call(m, w, "Airfields and the exchange", "2025-06-04T16:00:00Z", "public")
    calls["2025-06-14 announced"] = held_call(m, w, "The Middle East", "2025-06-14T13:00:00Z", "public", "50m")
    commitments["exchange round 3"] = agreed(
        m,
        w,
        "Prisoner exchange: the third round's date",
        "--call",
        calls["2025-06-14 announced"],
        "--kind",
        "exchange",
        "--due",
        "2025-10-02",
        "--disclosure",
        "public",
    )
    calls["2025-07-03 secret"] = held_call(w, m, "Deliveries and the front", "2025-07-03T15:00:00Z", "secret")
    # One request nobody answers: a short answer-by, so both sides raise call-unanswered.
    calls["unanswered"] = w.run(
        "call",
        "propose",
        "--to",
        "moscow",
        "--subject",
        "Strikes of 9 July",
        "--at",
        "2025-07-10T12:00:00Z",
        "--answer-by",
        "2s",
        "--precedence",
        "flash",
        "--disclosure",
        "secret",
    )
    calls["2025-08-08 secret"] = held_call(m, w, "Preparing a meeting", "2025-08-08T10:00:00Z", "secret", "45m")
    # 16 October 2025: proposed by Moscow, 2h30 planned.
    october = m.run(
        "call",
        "propose",
        "--to",
        "washington",
        "--subject",
        "The war, a summit, the economy",
        "--at",
        "2025-10-16T14:00:00Z",
        "--duration",
        "2h30m",
        "--precedence",
        "immediate",
        "--disclosure",
        "public",
        "--agenda",
        "1. Ukraine\n2. A meeting of the presidents\n3. Trade",
    )
    calls["2025-10-16 announced"] = october
    w.sees("call", october)
    w.run("call", "accept", october)
    m.sees("call", october, "accepted")
    m.run("call", "start", october)
    w.sees("call", october, "live")
    w.run("call", "note", october, "Tomahawks raised by the Russian side; no answer given")
    w.run("call", "end", october)
    m.sees("call", october, "ended")
    m.run(
        "readout",
        "add",
        october,
        "--lang",
        "ru",
        "--disclosure",
        "public",
        "--share",
        "--text",
        "Состоялся весьма содержательный и откровенный разговор. Договорились о встрече в Будапеште.",
    )
    w.run(
        "readout",
        "add",
        october,
        "--lang",
        "en",
        "--disclosure",
        "public",
        "--share",
        "--text",
        "A very productive call. Our high-level advisers will meet next week; the presidents will then "
        "meet in Budapest.",
    )
    commitments["advisers"] = agreed(
        w,
        m,
        "Advisers' meeting",
        "--call",
        october,
        "--kind",
        "meeting",
        "--due",
        "2025-10-23",
        "--disclosure",
        "public",
        "--detail",
        "High-level advisers of both sides meet next week.",
    )
    commitments["budapest"] = agreed(
        m,
        w,
        "Summit in Budapest",
        "--call",
        october,
        "--kind",
        "summit",
        "--disclosure",
        "public",
        "--detail",
        "The two presidents meet in Budapest.",
    )
    # Both sides hold everything before we say so.
    w.sees("call", october, "ended")
    for item in commitments.values():
        for side in (w, m):
            side.sees("commitment", item, "")
    for key in ("advisers", "budapest", "exchange round 3"):
        for side in (w, m):
            _agreed(side, commitments[key])
    for side in (w, m):
        _rounds(side, commitments["exchange"], 2)
        _readouts(side, october, 2)
    return {"calls": calls, "commitments": commitments}


def _poll(what: str, check: Any, deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def _agreed(side: Side, item: str) -> None:
    _poll(f"{item} agreed at {side.name}", lambda: side.json("commitment", "show", item)["agreed_by"])


def _rounds(side: Side, item: str, n: int) -> None:
    _poll(f"{n} rounds at {side.name}", lambda: len(side.json("commitment", "show", item)["rounds_done"]) == n)


def _readouts(side: Side, call: str, n: int) -> None:
    _poll(f"{n} readouts at {side.name}", lambda: len(side.json("call", "show", call)["readouts"]) == n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--washington", required=True, type=Path, help="washington's home (running)")
    parser.add_argument("--moscow", required=True, type=Path, help="moscow's home (running)")
    parser.add_argument("--json", action="store_true", help="print the ids made as one JSON document")
    args = parser.parse_args()
    started = time.monotonic()
    made = play(Side("washington", args.washington), Side("moscow", args.moscow))
    if args.json:
        print(json.dumps(made, indent=2))
    else:
        for kind in ("calls", "commitments"):
            for name, thread in made[kind].items():
                print(f"{kind[:-1]:<10} {thread}  {name}")
        print(
            f"played in {time.monotonic() - started:.0f}s; see `hotline calls`, `hotline commitments`, "
            "`hotline alarms` on either side"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
