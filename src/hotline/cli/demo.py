"""`hotline demo`: two terminals, washington and moscow, on loopback in temporary homes.

It uses only the public command line and the control socket, exactly as an
operator would: init, card, pair, run, send; then it prints both inboxes and
both statuses and keeps the terminals running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hotline.cli.common import Add
from hotline.core.errors import ControlError, HotlineError
from hotline.terminal.control import ControlClient

EXCHANGE = [
    (
        "washington",
        "moscow",
        "immediate",
        "en",
        "Proposal",
        "We propose a call at 14:00 UTC on the energy-site moratorium.",
    ),
    ("moscow", "washington", "immediate", "ru", "Ответ", "Согласны на звонок в 14:00 UTC."),
    (
        "washington",
        "moscow",
        "flash",
        "en",
        "Urgent",
        "Unexplained launch detected; please confirm it is your test.",
    ),
    (
        "moscow",
        "washington",
        "flash",
        "ru",
        "Срочно",
        "Подтверждаем: плановое испытание, уведомление направлено.",
    ),
    (
        "washington",
        "moscow",
        "routine",
        "en",
        "Readout",
        "Our readout will be published at 18:00 UTC.",
    ),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hotline(home: Path, *args: str, capture: bool = True) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "hotline", "--home", str(home), *args],
        capture_output=capture, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise HotlineError(f"`hotline {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def wait_link_up(home: Path, peer: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with ControlClient(home, timeout=2) as client:
                status = client.request("status")
            if any(p["name"] == peer and p["link"] == "up" for p in status["peers"]):
                return
        except ControlError:
            pass
        time.sleep(0.05)
    raise HotlineError(f"the link to {peer} did not come up within the deadline")


def run_demo(keep_running: bool = True) -> int:
    root = Path(tempfile.mkdtemp(prefix="hotline-demo-"))
    homes = {name: root / name for name in ("washington", "moscow")}
    procs: list[subprocess.Popen[bytes]] = []
    passwords: dict[str, str] = {}
    try:
        for name, home in homes.items():
            listen, console = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
            hotline(home, "init", "--name", name, "--listen", listen, "--no-passphrase", "--api", console)
            (root / f"{name}.card").write_text(hotline(home, "card"))
            lang = "ru" if name == "moscow" else "en"
            added = hotline(home, "user", "add", "officer", "--role", "operator", "--lang", lang, "--generate-password")
            passwords[name] = added.split("password: ", 1)[1].split()[0]
        print("== pairing (each side imports the other's card; both see the same safety number)")
        print(hotline(homes["washington"], "pair", str(root / "moscow.card")))
        hotline(homes["moscow"], "pair", str(root / "washington.card"))
        for name, home in homes.items():
            log = (root / f"{name}.log").open("wb")
            procs.append(subprocess.Popen([sys.executable, "-m", "hotline", "--home", str(home), "run"], stderr=log))
        deadline = time.monotonic() + 20
        wait_link_up(homes["washington"], "moscow", deadline)
        wait_link_up(homes["moscow"], "washington", deadline)
        print("== exchanging messages over the link (each send waits for the signed delivery receipt)")
        for sender, recipient, precedence, lang, subject, body in EXCHANGE:
            started = time.perf_counter()
            with ControlClient(homes[sender], timeout=20) as client:
                result = client.request(
                    "send",
                    to=recipient,
                    precedence=precedence,
                    lang=lang,
                    subject=subject,
                    body=body,
                    classification="CONFIDENTIAL" if precedence == "flash" else "",  # "" is the default marking
                    wait="delivered",
                )
            took = (time.perf_counter() - started) * 1000
            print(f"  {sender} -> {recipient} [{precedence}] {subject!r}: delivered in {took:.1f} ms ({result['id']})")
        for name, home in homes.items():
            print(f"\n== {name}: inbox")
            print(hotline(home, "inbox"), end="")
            print(f"== {name}: status")
            print(hotline(home, "status"), end="")
        exe = Path(sys.executable).parent / "hotline"
        cmd = str(exe) if exe.exists() else "hotline"
        print("\n== try it yourself:")
        for name, home in homes.items():
            other = "moscow" if name == "washington" else "washington"
            print(f"  HOTLINE_HOME={home} {cmd} send --to {other} --precedence flash 'Are you there?'")
            print(f"  HOTLINE_HOME={home} {cmd} inbox")
        print(f"  logs: {root}/*.log")
        print("\n== the operator consoles (open both, side by side; each flash waits for 'Received and understood'):")
        for name, home in homes.items():
            url = (home / "console.url").read_text().strip() if (home / "console.url").exists() else "(not bound)"
            print(f"  {name:<10} {url}  user officer  password {passwords[name]}")
        if keep_running:
            print("\nBoth terminals are running. Ctrl-C stops them.")
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            while True:
                time.sleep(3600)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        # The demo's homes hold keys stored without a passphrase: they do not outlive the demo.
        shutil.rmtree(root, ignore_errors=True)
        print(f"demo stopped; removed {root} (its keys were not protected by a passphrase)")


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(keep_running=not args.no_wait)


def register(add: Add) -> None:
    p = add("demo", cmd_demo, "two terminals, washington and moscow, on loopback, ready to try")
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="exit after the exchange instead of waiting for Ctrl-C",
    )
