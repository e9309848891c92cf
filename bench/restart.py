"""Restart after SIGKILL: how long until the link is up and the queue moves again (issue 11).

Two terminal processes on loopback, fsync on. Each round: messages are queued at washington,
washington is killed with SIGKILL mid-stream, and started again; the time runs from the new
process's start to (1) the link to moscow up again (its status answers with an active path) and
(2) the first message sent after the restart delivered with moscow's receipt (the queue moving).
Nothing sent is lost (checked at the end). A process start of Python alone is printed as the floor.

Target: <= 1 s to the queue moving. Prints figures, and with --json one JSON document.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
import uuid

from _common import two_terminals, wait
from hotline.core.errors import ControlError
from hotline.terminal.control import ControlClient

TARGET_MS = 1000.0


def link_up(home: object) -> bool:
    try:
        with ControlClient(home, timeout=2) as c:  # type: ignore[arg-type]
            return bool(c.request("status")["peers"][0]["active_path"])
    except ControlError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--queued", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import hotline.cli.main"], check=True)
    python_start_ms = (time.perf_counter() - start) * 1000
    up_ms: list[float] = []
    moving_ms: list[float] = []
    sent = 0  # asked for; those the kill cut off before their commit were never journaled
    with two_terminals("restart") as pair:
        washington = pair.procs[0]
        for n in range(args.rounds):
            with ControlClient(pair.washington, timeout=60) as client:
                for i in range(args.queued):
                    client.submit("send", to="moscow", id=str(uuid.uuid4()), body=f"before kill {n}.{i}")
                time.sleep(0.05)  # some in flight, some queued
            washington.send_signal(signal.SIGKILL)
            washington.wait()
            sent += args.queued
            log = (pair.root / "washington.log").open("ab")
            t0 = time.perf_counter()
            washington = subprocess.Popen([sys.executable, "-m", "hotline", "--home", str(pair.washington), "run"],
                                          stderr=log)  # fmt: skip
            pair.procs[0] = washington
            wait(lambda: link_up(pair.washington), 30, "the link after the restart")
            up_ms.append((time.perf_counter() - t0) * 1000)
            with ControlClient(pair.washington, timeout=60) as client:
                client.request("send", to="moscow", body=f"after restart {n}", wait="delivered")
            sent += 1
            moving_ms.append((time.perf_counter() - t0) * 1000)
            if not args.json:
                print(f"  round {n + 1}: link up {up_ms[-1]:.0f} ms, queue moving {moving_ms[-1]:.0f} ms after start",
                      file=sys.stderr)  # fmt: skip

        def all_in() -> bool:
            # What washington journaled (a send the kill cut off before its commit never existed) is
            # all delivered: nothing queued or unacknowledged, and moscow holds every sequence number.
            with ControlClient(pair.washington, timeout=10) as w, ControlClient(pair.moscow, timeout=10) as m:
                out = w.request("status")["peers"][0]["queue"]
                got = m.request("status")["peers"][0]["queue"]["received_upto"]
            return bool(out["queued"] == 0 and out["unacknowledged"] == 0 and got == out["next_seq"] - 1)

        wait(all_in, 120, "every journaled message at moscow")
    summary = {
        "rounds": args.rounds, "link_up_p50_ms": round(statistics.median(up_ms)),
        "moving_p50_ms": round(statistics.median(moving_ms)), "moving_max_ms": round(max(moving_ms)),
        "python_start_ms": round(python_start_ms), "target_ms": TARGET_MS, "messages": sent,
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"restart after SIGKILL: link up p50 {summary['link_up_p50_ms']} ms, queue moving p50 "
              f"{summary['moving_p50_ms']} ms, max {summary['moving_max_ms']} ms (target <= {TARGET_MS:g} ms); "
              f"{sent} messages asked for, every journaled one delivered")  # fmt: skip
        print(f"floor: starting Python and importing hotline takes {python_start_ms:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
