"""The standing crash soak: two real terminals, killed and cut again and again, lose nothing.

    python tools/soak.py --cycles N --messages M [--cut-every K] [--port-base P]

washington and moscow are initialised and paired in a temporary folder, each listening on a
loopback port behind a fault proxy (``hotline.testing.faultproxy``). Every cycle both send M
messages over their control sockets (client-chosen ids, so a resubmission is idempotent; the
body carries the sender's own running number), and one terminal — washington, then moscow, in
turn — is SIGKILLed mid-stream, restarted, and sends what it had not had confirmed again. Every
K cycles the link is cut at both proxies (a silent blackhole, then a reset, in turn) for a second
and restored while traffic flows. At the end the tool waits for every message to be delivered
(in the receiver's journal and its signed receipt in the sender's), stops both terminals, runs
``hotline journal verify`` on each, and prints: sent, delivered, lost, duplicated (a message
journaled as received more than once), out of order (by the sender's running number), the verify
results and the time taken. The exit status is 1 on any loss, duplicate, disorder or failed verify.

Listening ports are the first free ones (bind-checked) from ``--port-base``
(``HOTLINE_SOAK_PORT_BASE``, else 30000), so runs beside other suites on one machine do not
collide; the proxies take ports the kernel gives them. Keep the folder with ``--keep``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotline.core.errors import ControlError
from hotline.core.wire import unpack
from hotline.terminal.control import ControlClient
from hotline.testing.faultproxy import Proxy
from hotline.testing.waiting import wait_until

NAMES = ("washington", "moscow")


class Ports:
    """Listening ports from a base upward, each checked free by binding it."""

    def __init__(self, base: int) -> None:
        self.next = base

    def take(self) -> int:
        while self.next < 65536:
            port = self.next
            self.next += 1
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise SystemExit("no free port left above the base")


@dataclass
class Side:
    name: str
    peer: str
    home: Path
    log: Path
    proxy: Proxy
    proc: subprocess.Popen[bytes] | None = None
    outbox: list[tuple[str, int]] = field(default_factory=list)  # (id, running number), in sending order
    kills: int = 0

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "HOTLINE_HOME"}
        result = subprocess.run([sys.executable, "-m", "hotline", "--home", str(self.home), *args],
                                capture_output=True, text=True, env=env, timeout=600, check=False)  # fmt: skip
        if check and result.returncode != 0:
            raise SystemExit(f"hotline {' '.join(args)} at {self.name} failed: {result.stderr}")
        return result

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "hotline", "--home", str(self.home), "run"],
                                         stderr=log)  # fmt: skip
        wait(self._answers, 60, f"{self.name} to answer on its control socket")

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise SystemExit(f"{self.name} exited with {self.proc.returncode}; see {self.log}")
        try:
            with ControlClient(self.home, timeout=2) as c:
                c.request("ping")
        except ControlError:
            return False
        return True

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    def journal(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.home / 'journal.sqlite'}?mode=ro", uri=True, timeout=30)


def wait(predicate: Callable[[], Any], deadline_s: float, what: str) -> Any:
    return wait_until(predicate, deadline_s, what, interval=0.05, failure=SystemExit)


class Sender(threading.Thread):
    """Pipelines a run of sends over one control connection; ``confirmed`` counts the answers."""

    def __init__(self, side: Side, items: list[tuple[str, int]]) -> None:
        super().__init__(daemon=True)
        self.side, self.items = side, items
        self.confirmed = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with ControlClient(self.side.home, timeout=120) as c:
                pending = [c.submit("send", to=self.side.peer, id=i, body=f"soak {self.side.name} {n}")
                           for i, n in self.items]  # fmt: skip
                for request in pending:
                    c.result(request)
                    self.confirmed += 1
        except (ControlError, OSError) as e:  # the kill cuts it short: that is the point
            self.error = e


def setup(root: Path, ports: Ports) -> dict[str, Side]:
    sides: dict[str, Side] = {}
    for name, peer in (NAMES, tuple(reversed(NAMES))):
        port = ports.take()
        proxy = Proxy(port)
        side = Side(name, peer, root / name, root / f"{name}.log", proxy)
        side.cli("init", "--name", name, "--no-passphrase", "--listen", f"primary=127.0.0.1:{port}",
                 "--advertise", f"primary=127.0.0.1:{proxy.port}")  # fmt: skip
        (root / f"{name}.card").write_text(side.cli("card").stdout)
        sides[name] = side
    for side in sides.values():
        side.cli("pair", str(root / f"{side.peer}.card"))
    return sides


def cut(sides: dict[str, Side], mode: str, seconds: float) -> None:
    for side in sides.values():
        side.proxy.set_mode(mode)  # type: ignore[arg-type]
    time.sleep(seconds)
    for side in sides.values():
        side.proxy.set_mode("pass")


def cycle(sides: dict[str, Side], index: int, messages: int, cut_mode: str | None, counters: dict[str, int]) -> None:
    """Both send ``messages``; the victim is killed once it is half way, restarted, and resends."""
    victim = sides[NAMES[index % 2]]
    batches: dict[str, list[tuple[str, int]]] = {}
    for side in sides.values():
        start = counters[side.name]
        batches[side.name] = [(str(uuid.uuid4()), start + n) for n in range(1, messages + 1)]
        counters[side.name] += messages
        side.outbox += batches[side.name]
    senders = {name: Sender(sides[name], items) for name, items in batches.items()}
    for s in senders.values():
        s.start()
    killer = senders[victim.name]
    wait(lambda: killer.confirmed >= messages // 2 or not killer.is_alive(), 120, f"{victim.name} to be mid-stream")
    victim.stop(signal.SIGKILL)
    victim.kills += 1
    killer.join(60)
    victim.start()
    again = Sender(victim, batches[victim.name][killer.confirmed :])  # the same ids: idempotent
    again.start()
    if cut_mode is not None:
        cut(sides, cut_mode, 1.0)
    again.join(300)
    for s in senders.values():
        if s is not killer:
            s.join(300)
            if s.error is not None:
                raise SystemExit(f"{s.side.name} could not send: {s.error}")
    if again.error is not None or again.confirmed != len(again.items):
        raise SystemExit(f"{victim.name} could not resend after its restart: {again.error}")


def received(side: Side) -> list[tuple[int, str, str]]:
    """(stream sequence, id, body) of every message this side received, in stream order."""
    with side.journal() as db:
        rows = db.execute("SELECT seq, id, body FROM messages WHERE direction = 'in' AND kind = 'message' "
                          "ORDER BY seq").fetchall()  # fmt: skip
    return [(int(a), str(b), str(c)) for a, b, c in rows]


def undelivered(side: Side) -> int:
    with side.journal() as db:
        row = db.execute("SELECT count(*) FROM messages WHERE direction = 'out' AND kind = 'message' "
                         "AND delivered_at_ns IS NULL").fetchone()  # fmt: skip
    return int(row[0])


def received_entries(side: Side) -> Counter[str]:
    """How many times the journal records each message id as received (more than once: a duplicate)."""
    counts: Counter[str] = Counter()
    with side.journal() as db:
        for (body,) in db.execute("SELECT body FROM entries WHERE kind = 'message.received'"):
            fields = unpack(body)
            counts[str(fields.get("id", ""))] += 1
    return counts


def settled(sides: dict[str, Side]) -> bool:
    return all(not undelivered(side) and len(received(side)) >= len(sides[side.peer].outbox) for side in sides.values())


def tally(sides: dict[str, Side]) -> dict[str, Any]:
    result: dict[str, Any] = {"sent": 0, "delivered": 0, "lost": 0, "duplicated": 0, "out_of_order": 0}
    for side in sides.values():
        sender = sides[side.peer]
        got = received(side)
        entries = received_entries(side)
        ids = Counter(i for _, i, _ in got)
        sent_ids = {i for i, _ in sender.outbox}
        numbers = [int(body.rsplit(" ", 1)[1]) for _, _, body in got if body.startswith(f"soak {sender.name} ")]
        result["sent"] += len(sender.outbox)
        result["delivered"] += len(sent_ids & set(ids))
        result["lost"] += len(sent_ids - set(ids))
        result["duplicated"] += sum(n - 1 for n in ids.values() if n > 1) + sum(
            n - 1 for n in entries.values() if n > 1
        )
        result["duplicated"] += len(numbers) - len(set(numbers))
        disorder = [(a, b) for a, b in itertools.pairwise(numbers) if b <= a]
        result["out_of_order"] += len(disorder)
        result[f"{side.name}_out_of_order_examples"] = disorder[:10]  # (number, the number after it)
        stream = [seq for seq, _, _ in got]
        result[f"{side.name}_stream_gapless"] = (
            stream == list(range(stream[0], stream[0] + len(stream))) if stream else True
        )
        result[f"{sender.name}_undelivered"] = undelivered(sender)
        result[f"{sender.name}_killed"] = sender.kills
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--messages", type=int, default=200, help="messages each side sends per cycle")
    parser.add_argument("--cut-every", type=int, default=5, help="cut the link every K cycles (0: never)")
    parser.add_argument("--port-base", type=int, default=int(os.environ.get("HOTLINE_SOAK_PORT_BASE", "30000")))
    parser.add_argument("--settle-timeout", type=float, default=600, help="seconds to wait for delivery at the end")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT):  # stopped early: still kill the terminals and clean up
        signal.signal(sig, lambda number, frame: sys.exit(128 + number))
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="hotline-soak-"))
    sides: dict[str, Side] = {}
    try:
        sides = setup(root, Ports(args.port_base))
        for side in sides.values():
            side.start()
        counters = dict.fromkeys(NAMES, 0)
        cuts = 0
        for i in range(args.cycles):
            mode = None
            if args.cut_every and (i + 1) % args.cut_every == 0:
                mode = ("blackhole", "reset")[cuts % 2]
                cuts += 1
            cycle(sides, i, args.messages, mode, counters)
            print(f"cycle {i + 1}/{args.cycles}: killed {NAMES[i % 2]}" + (f", cut ({mode})" if mode else "")
                  + f", {time.monotonic() - started:.0f} s", flush=True)  # fmt: skip
        wait(lambda: settled(sides), args.settle_timeout, "every message to be delivered")
        for side in sides.values():
            side.stop()
        result = tally(sides)
        result.update(cycles=args.cycles, messages_per_cycle=args.messages, cuts=cuts)
        for side in sides.values():
            verify = side.cli("journal", "verify", check=False)
            result[f"{side.name}_verify"] = "OK" if verify.returncode == 0 else (verify.stdout + verify.stderr)[-500:]
        result["seconds"] = round(time.monotonic() - started, 1)
    finally:
        for side in sides.values():
            if side.proc is not None:
                side.stop(signal.SIGKILL)
            side.proxy.stop()
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    ok = (result["lost"] == result["duplicated"] == result["out_of_order"] == 0
          and all(result[f"{n}_verify"] == "OK" and result[f"{n}_stream_gapless"] for n in NAMES))  # fmt: skip
    print(f"sent {result['sent']:,}, delivered {result['delivered']:,}, lost {result['lost']}, "
          f"duplicated {result['duplicated']}, out of order {result['out_of_order']}; "
          f"{result['cycles']} cycles x {result['messages_per_cycle']} messages each way, "
          f"{sum(result[f'{n}_killed'] for n in NAMES)} SIGKILLs, {result['cuts']} cuts; "
          f"journal verify: washington {result['washington_verify']}, moscow {result['moscow_verify']}; "
          f"{result['seconds']} s: {'PASS' if ok else 'FAIL'}")  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
