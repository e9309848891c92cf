"""Hotline beside a Matrix homeserver, measured side by side in one run (``make bench-peers``).

Starts Synapse (from PyPI, in its own virtualenv, ``.venv-peers`` by default: ``make
bench-peers`` installs it) on 127.0.0.1 with SQLite, federation off (no federation
listener, an empty federation allow-list, no trusted key servers, no stats), its rate
limits raised out of the way, registers two users, puts them in one room, and measures:

* latency: one message at a time, alice's send request → the message in bob's long-poll
  ``/sync`` (Hotline's figure is stricter: send → the peer's signed delivery receipt
  journaled back at the sender, fsync'd at both ends);
* throughput: N messages from alice, sent by 16 concurrent requests (Synapse takes no
  pipelining on one connection), until bob's ``/sync`` has them all (Hotline's: N
  messages, each delivered, journaled and receipted).

Then the same two figures of Hotline (``bench/latency.py`` and ``bench/throughput.py``) in
the same run, and each as a ratio. Only loopback is ever contacted. Not part of the test
suite. ``--write`` puts the table between ``<!-- peers:start -->`` and ``<!-- peers:end -->``
in README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import free_port, loopback_round_trip_ms, percentile, run_bench, write_readme_block

BENCH = Path(__file__).resolve().parent
SERVER = "bench.localhost"
SENDERS = 16
_VERSION = "from importlib.metadata import version; print(version('matrix-synapse'))"

# Run under the Synapse virtualenv's Python: the generated config, edited to keep Synapse on
# loopback and out of the way of the measurement.
_CONFIGURE = """
import sys, yaml
path, port = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    cfg = yaml.safe_load(f)
cfg["listeners"] = [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                     "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}]
cfg["federation_domain_whitelist"] = []
cfg["trusted_key_servers"] = []
cfg["suppress_key_server_warning"] = True
cfg["report_stats"] = False
cfg["enable_metrics"] = False
cfg["url_preview_enabled"] = False
cfg["presence"] = {"enabled": False}
many = {"per_second": 1000000, "burst_count": 1000000}
cfg["rc_message"] = cfg["rc_registration"] = many
cfg["rc_joins"] = {"local": many, "remote": many}
cfg["rc_invites"] = {"per_room": many, "per_user": many, "per_issuer": many}
cfg["rc_login"] = {"address": many, "account": many, "failed_attempts": many}
cfg["log_config"] = None
with open(path, "w") as f:
    yaml.safe_dump(cfg, f)
"""


class Client:
    """One Matrix user's HTTP connection (keep-alive) to the homeserver on loopback."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"synapse answered {response.status} to {method} {path}: {data[:300]!r}")
        return json.loads(data)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.conn.close()


@contextmanager
def synapse(python: str) -> Iterator[int]:
    """A Synapse homeserver on a free loopback port, in a temporary folder; yields the port."""
    folder = Path(tempfile.mkdtemp(prefix="hotline-bench-synapse-"))
    port = free_port()
    config = folder / "homeserver.yaml"
    app = [python, "-m", "synapse.app.homeserver", "--config-path", str(config)]
    subprocess.run([*app, "--server-name", SERVER, "--generate-config", "--report-stats=no",
                    "--data-directory", str(folder)], check=True, capture_output=True)  # fmt: skip
    subprocess.run([python, "-c", _CONFIGURE, str(config), str(port)], check=True)
    log = (folder / "synapse.log").open("wb")
    proc = subprocess.Popen(app, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                Client(port).call("GET", "/_matrix/client/versions")
                break
            except (OSError, http.client.HTTPException):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"synapse did not start; see {folder / 'synapse.log'}") from None
                time.sleep(0.2)
        register = Path(python).parent / "register_new_matrix_user"
        for user in ("alice", "bob"):
            subprocess.run([str(register), "-u", user, "-p", f"{user}-bench-pw", "--no-admin", "-c", str(config),
                            f"http://127.0.0.1:{port}"], check=True, capture_output=True)  # fmt: skip
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        if os.environ.get("HOTLINE_BENCH_KEEP") != "1":
            shutil.rmtree(folder, ignore_errors=True)


def login(port: int, user: str) -> Client:
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
            "password": f"{user}-bench-pw"}  # fmt: skip
    token = Client(port).call("POST", "/_matrix/client/v3/login", body)["access_token"]
    return Client(port, token)


class Inbox:
    """Bob's long-poll /sync in a thread: the time each message body was first seen."""

    def __init__(self, client: Client, room: str) -> None:
        self.client, self.room = client, room
        self.seen: dict[str, float] = {}
        self.changed = threading.Condition()
        self.stopping = False
        filt = {"room": {"timeline": {"limit": 10000}, "state": {"lazy_load_members": True}},
                "presence": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]}}  # fmt: skip
        self.filter = urllib.parse.quote(json.dumps(filt))
        self.since = client.call("GET", f"/_matrix/client/v3/sync?filter={self.filter}")["next_batch"]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping:
            reply = self.client.call(
                "GET", f"/_matrix/client/v3/sync?since={self.since}&timeout=1000&filter={self.filter}"
            )
            now = time.perf_counter()
            self.since = reply["next_batch"]
            room = reply.get("rooms", {}).get("join", {}).get(self.room, {})
            with self.changed:
                for event in room.get("timeline", {}).get("events", []):
                    if event.get("type") == "m.room.message":
                        self.seen.setdefault(event["content"]["body"], now)
                self.changed.notify_all()

    def wait_for(self, count: int, deadline_s: float) -> float:
        """Wait until ``count`` messages are seen; the time the last arrived."""
        end = time.monotonic() + deadline_s
        with self.changed:
            while len(self.seen) < count:
                if not self.changed.wait(timeout=max(0.0, end - time.monotonic())):
                    raise SystemExit(f"bob saw {len(self.seen)} of {count} messages in {deadline_s} s")
            return max(self.seen.values())

    def stop(self) -> None:
        self.stopping = True
        self.thread.join(timeout=5)


def measure_synapse(python: str, latency_messages: int, throughput_messages: int) -> dict[str, Any]:
    with synapse(python) as port:
        alice, bob = login(port, "alice"), login(port, "bob")
        room = alice.call("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"})["room_id"]
        quoted = urllib.parse.quote(room)
        alice.call("POST", f"/_matrix/client/v3/rooms/{quoted}/invite", {"user_id": f"@bob:{SERVER}"})
        bob.call("POST", f"/_matrix/client/v3/rooms/{quoted}/join", {})
        inbox = Inbox(bob, room)
        sent = 0

        def send(client: Client, body: str) -> None:
            client.call("PUT", f"/_matrix/client/v3/rooms/{quoted}/send/m.room.message/{body}",
                        {"msgtype": "m.text", "body": body})  # fmt: skip

        times = []
        for i in range(20 + latency_messages):  # 20 not counted: warm-up
            start = time.perf_counter()
            send(alice, f"lat{i}")
            sent += 1
            arrived = inbox.wait_for(sent, 30)
            if i >= 20:
                times.append((arrived - start) * 1000)
        senders = [login(port, "alice") for _ in range(SENDERS)]
        local = threading.local()
        pool = iter(senders)
        lock = threading.Lock()

        def send_one(i: int) -> None:
            if not hasattr(local, "client"):
                with lock:
                    local.client = next(pool)
            send(local.client, f"thr{i}")

        start = time.perf_counter()
        with ThreadPoolExecutor(SENDERS) as executor:
            list(executor.map(send_one, range(throughput_messages)))
        last = inbox.wait_for(sent + throughput_messages, 600)
        inbox.stop()
        return {
            "version": subprocess.run([python, "-c", _VERSION],
                                      capture_output=True, text=True, check=True).stdout.strip(),
            "latency_messages": len(times), "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(percentile(times, 99), 2),
            "throughput_messages": throughput_messages, "per_s": round(throughput_messages / (last - start)),
        }  # fmt: skip


def measure_hotline(latency_messages: int, throughput_messages: int) -> dict[str, Any]:
    lat = run_bench("latency.py", "--messages", str(latency_messages))
    thr = run_bench("throughput.py", "--messages", str(throughput_messages))
    return {"p50_ms": lat["p50_ms"], "p99_ms": lat["p99_ms"], "per_s": thr["per_s"],
            "latency_messages": lat["messages"], "throughput_messages": thr["messages"]}  # fmt: skip


def render(hot: dict[str, Any], syn: dict[str, Any], floor_ms: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    return "\n".join([
        f"Measured {when}, one run, {os.cpu_count()} cores; Synapse {syn['version']} (SQLite, loopback, "
        "federation off, rate limits raised) and two Hotline terminals (fsync on).",
        "",
        "| What | Hotline | Synapse | Hotline is |",
        "|---|---|---|---|",
        f"| Latency p50, one at a time ({hot['latency_messages']} / {syn['latency_messages']} messages) "
        f"| {hot['p50_ms']:.2f} ms | {syn['p50_ms']:.2f} ms | {syn['p50_ms'] / hot['p50_ms']:.1f}× faster |",
        f"| Latency p99 | {hot['p99_ms']:.2f} ms | {syn['p99_ms']:.2f} ms "
        f"| {syn['p99_ms'] / hot['p99_ms']:.1f}× faster |",
        f"| Throughput ({hot['throughput_messages']:,} / {syn['throughput_messages']:,} messages) "
        f"| {hot['per_s']:,} msg/s | {syn['per_s']:,} msg/s | {hot['per_s'] / syn['per_s']:.1f}× more |",
        "",
        f"Floor, same run: a raw loopback TCP round trip takes {floor_ms * 1000:.0f} µs at p50. Hotline's latency "
        "is send → the peer's signed receipt journaled back at the sender (a round trip, three fsyncs); "
        "Synapse's is send → the message in the other user's long-poll /sync (one way, no receipt).",
    ])  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--synapse-python",
        default=str(BENCH.parent / ".venv-peers" / "bin" / "python"),
        help="the Python of a virtualenv with matrix-synapse installed (make bench-peers makes one)",
    )
    parser.add_argument("--latency-messages", type=int, default=300)
    parser.add_argument("--throughput-messages", type=int, default=2000)
    parser.add_argument("--write", action="store_true", help="put the table into README.md")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not Path(args.synapse_python).exists():
        raise SystemExit(f"{args.synapse_python} not found: run `make bench-peers` (it installs matrix-synapse)")
    python = os.path.abspath(args.synapse_python)  # not resolved: the virtualenv's python is a symlink
    floor = loopback_round_trip_ms()
    print("measuring Synapse ...", file=sys.stderr, flush=True)
    syn = measure_synapse(python, args.latency_messages, args.throughput_messages)
    print("measuring Hotline ...", file=sys.stderr, flush=True)
    hot = measure_hotline(args.latency_messages, args.throughput_messages)
    if args.json:
        print(json.dumps({"hotline": hot, "synapse": syn, "loopback_rtt_ms": round(floor, 3)}, indent=2))
        return 0
    block = render(hot, syn, floor)
    print(block)
    if args.write:
        write_readme_block("peers", block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
