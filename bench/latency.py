"""Latency benchmark: send one message at a time and wait for its delivery receipt.

Two terminal processes on loopback, fsync on (the default). For each of 1,000
messages, washington's control socket is asked to send and to answer only once
moscow's signed delivery receipt is journaled at washington; the time is taken
around that request, so it includes the control round trip, both journals'
fsyncs, TLS, the ratchet and both signatures. The raw loopback TCP round trip,
measured in the same run, is printed as the floor.

Targets (issue 11, 2-core machine): p50 <= 2 ms, p99 <= 8 ms.
Prints figures, and with --json one JSON document. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid

from _common import loopback_round_trip_ms, percentile, two_terminals
from hotline.terminal.control import ControlClient

TARGET_P50_MS, TARGET_P99_MS = 2.0, 8.0  # issue 11


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50, help="messages sent first and not counted")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    floor = loopback_round_trip_ms()
    with two_terminals("latency") as pair, ControlClient(pair.washington, timeout=30) as client:
        times = []
        for i in range(args.warmup + args.messages):
            start = time.perf_counter()
            client.request("send", to="moscow", id=str(uuid.uuid4()), body=f"latency {i}", wait="delivered")
            if i >= args.warmup:
                times.append((time.perf_counter() - start) * 1000)
    p50, p99 = statistics.median(times), percentile(times, 99)
    summary = {
        "messages": len(times), "p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "max_ms": round(max(times), 2),
        "loopback_rtt_ms": round(floor, 3), "target_p50_ms": TARGET_P50_MS, "target_p99_ms": TARGET_P99_MS,
        "pass": p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS,
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        verdict = "PASS" if summary["pass"] else "MISS"
        print(f"{len(times)} messages one at a time, send -> signed delivery receipt journaled (fsync on)")
        print(f"p50 {p50:.2f} ms (target <= {TARGET_P50_MS}), p99 {p99:.2f} ms (target <= {TARGET_P99_MS}), "
              f"max {max(times):.2f} ms: {verdict}")  # fmt: skip
        print(f"floor: raw loopback TCP round trip p50 {floor * 1000:.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
