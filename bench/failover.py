"""Failover benchmark: cut the active path 20 times during a steady stream.

Two terminal processes on loopback, each with a primary and a backup path, every
path through a fault-injecting proxy (``hotline.faultproxy``). A steady stream
of messages flows from washington to moscow. Twenty times, the active path is
cut (cycling close / reset / silent blackhole), and we measure the time from the
cut to the first message *delivered* (signed receipt journaled) that was sent
after the cut — i.e. carried by the backup. Between cuts the path is restored
and traffic fails back after the hold-down.

Targets (issue 3, default settings): p50 <= 700 ms, max <= 1 s.
Prints figures, and with --json one JSON document. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from hotline.control import ControlClient
from hotline.errors import ControlError
from hotline.faultproxy import Proxy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hotline(home: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "hotline", "--home", str(home), *args],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout


def wait(predicate: Any, deadline_s: float, what: str) -> Any:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            value = predicate()
        except ControlError:
            value = None
        if value:
            return value
        time.sleep(0.01)
    raise SystemExit(f"timed out waiting for {what}")


def active_path(home: Path) -> str | None:
    with ControlClient(home, timeout=5) as c:
        return c.request("status")["peers"][0]["active_path"]  # type: ignore[no-any-return]


def first_delivery_after(db_path: Path, cut_ns: int) -> int | None:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT min(delivered_at_ns) FROM messages WHERE direction = 'out' AND queued_at_ns > ? "
            "AND delivered_at_ns IS NOT NULL",
            (cut_ns,),
        ).fetchone()
        return row[0] if row and row[0] else None
    finally:
        db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuts", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hotline-bench-failover-"))
    homes = {"washington": root / "washington", "moscow": root / "moscow"}
    proxies: dict[str, list[Proxy]] = {"primary": [], "backup": []}
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    sent = [0]
    try:
        for name, home in homes.items():
            cmd = ["init", "--name", name, "--no-passphrase"]
            for path in ("primary", "backup"):
                port = free_port()
                proxy = Proxy(port)
                proxies[path].append(proxy)
                cmd += ["--listen", f"{path}=127.0.0.1:{port}", "--advertise", f"{path}=127.0.0.1:{proxy.port}"]
            hotline(home, *cmd)
            (root / f"{name}.card").write_text(hotline(home, "card"))
        hotline(homes["washington"], "pair", str(root / "moscow.card"))
        hotline(homes["moscow"], "pair", str(root / "washington.card"))
        for name, home in homes.items():
            with (root / f"{name}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen([sys.executable, "-m", "hotline", "--home", str(home), "run"], stderr=log)
                )
        wash = homes["washington"]
        wait(lambda: active_path(wash) == "primary", 30, "the primary path")

        def stream() -> None:
            with ControlClient(wash, timeout=30) as c:
                while not stop.is_set():
                    c.request("send", to="moscow", id=str(uuid.uuid4()), body=f"steady {sent[0]}")
                    sent[0] += 1
                    time.sleep(0.005)

        threading.Thread(target=stream, daemon=True).start()
        modes = ["close", "reset", "blackhole"]
        results = []
        for i in range(args.cuts):
            wait(lambda: active_path(wash) == "primary", 30, "failback to primary")
            time.sleep(0.5)
            mode = modes[i % len(modes)]
            cut_ns = time.time_ns()
            for proxy in proxies["primary"]:
                proxy.set_mode(mode)  # type: ignore[arg-type]
            delivered = wait(lambda c=cut_ns: first_delivery_after(wash / "journal.sqlite", c), 10, "delivery")
            ms = (delivered - cut_ns) / 1e6
            results.append({"cut": i + 1, "mode": mode, "ms": round(ms, 1)})
            if not args.json:
                print(f"cut {i + 1:2d} ({mode:<9}): first delivery over the backup after {ms:7.1f} ms")
            for proxy in proxies["primary"]:
                proxy.set_mode("pass")
        stop.set()
        times = [r["ms"] for r in results]
        p50 = statistics.median(times)
        summary = {
            "cuts": len(times), "p50_ms": round(p50, 1), "max_ms": max(times), "messages_sent": sent[0],
            "target_p50_ms": 700, "target_max_ms": 1000,
            "pass": p50 <= 700 and max(times) <= 1000, "results": results,
            "by_mode_p50_ms": {m: statistics.median([r["ms"] for r in results if r["mode"] == m]) for m in modes
                               if any(r["mode"] == m for r in results)},
        }  # fmt: skip
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            verdict = "PASS" if summary["pass"] else "MISS"
            print(f"p50 {p50:.1f} ms (target <= 700), max {max(times):.1f} ms (target <= 1000): {verdict}")
            print(f"per mode p50: {summary['by_mode_p50_ms']}; {sent[0]} messages streamed")
        return 0
    finally:
        stop.set()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for plist in proxies.values():
            for proxy in plist:
                proxy.stop()
        if os.environ.get("HOTLINE_BENCH_KEEP") is None:
            subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    sys.exit(main())
