"""Throughput benchmark: 20,000 messages, durable on both sides, as fast as they go.

Two terminal processes on loopback, fsync on (the default). Washington's control
socket is kept fed with up to --window outstanding send requests, each answered
only once moscow's signed delivery receipt for it is journaled at washington.
The rate is messages over the time from the first request to the last answer.
The raw loopback TCP round trip, measured in the same run, is printed as the floor.

Target (issue 11, 2-core machine): >= 8,000 messages/s durable.
Prints figures, and with --json one JSON document. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections import deque

from _common import loopback_round_trip_ms, two_terminals
from hotline.terminal.control import ControlClient

TARGET_PER_S = 8000  # issue 11


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=1000, help="send requests outstanding at once")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    floor = loopback_round_trip_ms()
    with two_terminals("throughput") as pair, ControlClient(pair.washington, timeout=60) as client:
        outstanding: deque[int] = deque()
        progress_every = max(1, args.messages // 10)
        cpu_before = pair.cpu_seconds()
        start = time.perf_counter()
        for i in range(args.messages):
            if len(outstanding) >= args.window:
                client.result(outstanding.popleft())
            body = f"throughput {i}"
            outstanding.append(client.submit("send", to="moscow", id=str(uuid.uuid4()), body=body, wait="delivered"))
            if not args.json and i and i % progress_every == 0:
                print(f"  {i} submitted, {time.perf_counter() - start:.1f} s", file=sys.stderr)
        while outstanding:
            client.result(outstanding.popleft())
        elapsed = time.perf_counter() - start
        cpu = {name: spent - cpu_before.get(name, 0.0) for name, spent in pair.cpu_seconds().items()}
    rate = args.messages / elapsed
    summary = {
        "messages": args.messages, "seconds": round(elapsed, 2), "per_s": round(rate),
        "window": args.window, "loopback_rtt_ms": round(floor, 3), "target_per_s": TARGET_PER_S,
        "pass": rate >= TARGET_PER_S,
        # CPU each terminal spent per message (user + system), steadier than the rate on a busy machine
        "cpu_us_per_message": {name: round(spent / args.messages * 1e6) for name, spent in cpu.items()},
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        verdict = "PASS" if summary["pass"] else "MISS"
        print(f"{args.messages} messages, each delivered with a journaled receipt (fsync on), in {elapsed:.2f} s")
        print(f"{rate:,.0f} messages/s (target >= {TARGET_PER_S:,}): {verdict}")
        print("CPU per message: " + ", ".join(f"{n} {us} µs" for n, us in summary["cpu_us_per_message"].items()))
        print(f"floor: raw loopback TCP round trip p50 {floor * 1000:.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
