"""FLASH behind 10,000 queued ROUTINE: how long from enqueue to delivered (issue 11).

Two terminal processes on loopback, fsync on. Each round queues 10,000 ROUTINE messages at
washington as fast as its control socket takes them (not waiting for their delivery), then sends
one FLASH and waits for moscow's signed receipt of it. FLASH is sealed before lower precedences
(docs/design.md, decision 3), so it should not wait behind the queue. The raw loopback TCP round
trip, measured in the same run, is printed as the floor.

Target: <= 10 ms. Prints figures, and with --json one JSON document. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections import deque

from _common import loopback_round_trip_ms, machine_reference, two_terminals
from hotline.terminal.control import ControlClient

TARGET_MS = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    floor = loopback_round_trip_ms()
    # The FLASH's path holds three fsync'd commits (sent, received, receipt): the disk's floor, same run.
    commit_ms = 1000 / machine_reference(0.5)["fsync_commits_per_s"]
    times: list[float] = []
    with two_terminals("flash") as pair, ControlClient(pair.washington, timeout=120) as client:
        for n in range(args.rounds):
            outstanding: deque[int] = deque()
            for i in range(args.queued):  # each journaled (queued); none waited for until delivered
                if len(outstanding) >= 500:  # the control socket's buffers are not endless
                    client.result(outstanding.popleft())
                outstanding.append(client.submit("send", to="moscow", id=str(uuid.uuid4()), body=f"routine {n}.{i}"))
            while outstanding:
                client.result(outstanding.popleft())
            start = time.perf_counter()
            client.request("send", to="moscow", precedence="flash", body=f"flash {n}", wait="delivered")
            times.append((time.perf_counter() - start) * 1000)
            if not args.json:
                print(f"  round {n + 1}: flash delivered {times[-1]:.2f} ms after it was queued", file=sys.stderr)
            depth = 1
            while depth:  # let the routine traffic drain before the next round
                queue = client.request("status")["peers"][0]["queue"]
                depth = queue["queued"] + queue["unacknowledged"]
                time.sleep(0.2)
    summary = {
        "queued": args.queued, "rounds": args.rounds, "p50_ms": round(statistics.median(times), 2),
        "max_ms": round(max(times), 2), "loopback_rtt_ms": round(floor, 3), "target_ms": TARGET_MS,
        "fsync_commit_ms": round(commit_ms, 3), "times_ms": [round(t, 2) for t in times],
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"FLASH behind {args.queued:,} queued ROUTINE, enqueue -> delivered: p50 {summary['p50_ms']} ms, "
              f"max {summary['max_ms']} ms (target <= {TARGET_MS:g} ms)")  # fmt: skip
        print(f"floor: raw loopback TCP round trip p50 {floor * 1000:.0f} µs; one fsync'd single-row commit "
              f"{commit_ms:.2f} ms (the FLASH's path holds three)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
