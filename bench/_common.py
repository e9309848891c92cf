"""What the benchmarks share: two real terminal processes on loopback, and the floor.

Not part of the test suite. Every benchmark starts its own terminals in a fresh
temporary folder, talks to them over their control sockets, and removes the
folder afterwards (keep it with HOTLINE_BENCH_KEEP=1).

HOTLINE_BENCH_PROFILE=DIR runs each terminal under py-spy (``py-spy record -- python``: attaching
to a running process by pid is not permitted in every container) and writes DIR/NAME.txt, collapsed
stacks with one line per stack; ``bench/profile_top.py`` summarises them.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hotline.core.errors import ControlError
from hotline.terminal.control import ControlClient
from hotline.testing.waiting import wait_until

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hotline(home: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "hotline", "--home", str(home), *args],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout


def wait(predicate: Callable[[], T | None], deadline_s: float, what: str) -> T:
    return wait_until(predicate, deadline_s, what, interval=0.01, failure=SystemExit, not_yet=(ControlError,))


def active_path(home: Path) -> str | None:
    with ControlClient(home, timeout=5) as c:
        return c.request("status")["peers"][0]["active_path"]  # type: ignore[no-any-return]


def on_path(home: Path, path: str) -> bool:
    return active_path(home) == path


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Pair:
    """Two running terminals, washington and moscow, paired on loopback."""

    root: Path
    homes: dict[str, Path]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def washington(self) -> Path:
        return self.homes["washington"]

    @property
    def moscow(self) -> Path:
        return self.homes["moscow"]

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each terminal process has used so far: on a shared machine a
        steadier measure of the work per message than the wall clock (Linux /proc only)."""
        found = {}
        for name, proc in zip(self.homes, self.procs, strict=True):
            pids = _children(proc.pid) if os.environ.get("HOTLINE_BENCH_PROFILE") else [proc.pid]
            try:
                fields = Path(f"/proc/{pids[0]}/stat").read_text().rpartition(")")[2].split()
            except (OSError, IndexError):
                continue
            found[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        return found


@contextmanager
def two_terminals(
    prefix: str, listen: Callable[[str], list[str]] | None = None, path: str = "primary"
) -> Iterator[Pair]:
    """Init, pair and run washington and moscow; ``listen(name)`` gives extra init flags
    (several paths, proxies); by default each listens on one free loopback port."""
    root = Path(tempfile.mkdtemp(prefix=f"hotline-bench-{prefix}-"))
    pair = Pair(root, {"washington": root / "washington", "moscow": root / "moscow"})
    profile = os.environ.get("HOTLINE_BENCH_PROFILE")
    try:
        for name, home in pair.homes.items():
            flags = listen(name) if listen else ["--listen", f"127.0.0.1:{free_port()}"]
            hotline(home, "init", "--name", name, "--no-passphrase", *flags)
            window = os.environ.get("HOTLINE_BENCH_WINDOW")  # try another in-flight window
            if window:
                config = home / "config.toml"
                config.write_text(re.sub(r"(?m)^window = \d+$", f"window = {int(window)}", config.read_text()))
            (root / f"{name}.card").write_text(hotline(home, "card"))
        hotline(pair.washington, "pair", str(root / "moscow.card"))
        hotline(pair.moscow, "pair", str(root / "washington.card"))
        for name, home in pair.homes.items():
            with (root / f"{name}.log").open("wb") as log:
                cmd = [sys.executable, "-m", "hotline", "--home", str(home), "run"]
                if profile:
                    spy = Path(sys.executable).with_name("py-spy")
                    cmd = [str(spy), "record", "--format", "raw", "--rate", "250", "--nonblocking",
                           "-o", str(Path(profile) / f"{name}.txt"), "--", *cmd]  # fmt: skip
                pair.procs.append(subprocess.Popen(cmd, stderr=log))
        for home in pair.homes.values():
            wait(functools.partial(on_path, home, path), 30, f"the {path} path from {home.name}")
        yield pair
    finally:
        for proc in pair.procs:
            if profile:  # stop the terminal under py-spy, which writes its file once the terminal exits
                for pid in _children(proc.pid):
                    os.kill(pid, signal.SIGTERM)
            else:
                proc.send_signal(signal.SIGTERM)
        for proc in pair.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if os.environ.get("HOTLINE_BENCH_KEEP") is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", file=sys.stderr)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def loopback_round_trip_ms(rounds: int = 2000, size: int = 256) -> float:
    """The floor: p50 of a raw TCP round trip on 127.0.0.1 (no TLS, no disk), same run."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def echo() -> None:
            conn, _ = server.accept()
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                while data := conn.recv(65536):
                    conn.sendall(data)

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        payload = b"x" * size
        times = []
        with socket.create_connection(server.getsockname()) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(rounds):
                start = time.perf_counter()
                client.sendall(payload)
                got = 0
                while got < size:
                    got += len(client.recv(65536))
                times.append((time.perf_counter() - start) * 1000)
        thread.join(timeout=5)
    return statistics.median(times)


def machine_reference(seconds: float = 1.0) -> dict[str, float]:
    """The two ceilings the design brief names, measured here and now: Ed25519 verifications a
    second on one core (the brief's machines: ~8,000) and single-row SQLite commits a second with
    WAL and synchronous=FULL (~4,500). Figures from machines that differ here are not comparable."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public, message = key.public_key(), bytes(300)
    signature = key.sign(message)
    verified, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        public.verify(signature, message)
        verified += 1
    verifies_per_s = verified / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite3.connect(Path(folder) / "reference.sqlite", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t(x BLOB)")
        commits, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            db.execute("BEGIN")
            db.execute("INSERT INTO t VALUES (?)", (message,))
            db.execute("COMMIT")
            commits += 1
        commits_per_s = commits / (time.perf_counter() - start)
        db.close()
    return {"ed25519_verifies_per_s": round(verifies_per_s), "fsync_commits_per_s": round(commits_per_s)}


def run_bench(script: str, *args: str) -> dict[str, Any]:
    """Run another benchmark of this folder with --json in a fresh interpreter; its figures."""
    print(f"running bench/{script} ...", file=sys.stderr, flush=True)
    out = subprocess.run([sys.executable, str(Path(__file__).resolve().parent / script), "--json", *args],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def write_readme_block(name: str, block: str) -> None:
    """Replace what stands between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in README.md."""
    readme = Path(__file__).resolve().parent.parent / "README.md"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{readme} has no {start} ... {end} block to replace")
    head, rest = text.split(start, 1)
    readme.write_text(f"{head}{start}\n{block}\n{end}{rest.split(end, 1)[1]}")
    print(f"wrote the figures into {readme}", file=sys.stderr)
