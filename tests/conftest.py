"""Helpers for end-to-end tests: real `hotline` processes in temporary homes on loopback."""

from __future__ import annotations

import collections
import functools
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from hotline.core.errors import ControlError
from hotline.terminal.control import ControlClient
from hotline.testing.waiting import wait_until

# Examples are judged by what they find, not by how fast they run: one stall on a loaded two-core
# machine must not fail a property test for "unreliable timing".
settings.register_profile("hotline", deadline=None)
settings.load_profile("hotline")


def _listen_ports() -> Iterator[int]:
    """Ports for terminals to listen on, below the kernel's ephemeral range and a block per test
    worker. A port the kernel hands out (bind to 0) may be handed out again, as the local end of
    some outgoing connection, before the terminal that was given it binds it ("address already in
    use"); a port outside that range is never handed out, and the workers never share one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    # Two suites on one machine at once (several checkouts) each set their own base.
    base = int(os.environ.get("HOTLINE_TEST_PORT_BASE", "20000"))
    block = (ephemeral_low - base) // max(workers, 1)
    yield from range(base + block * index, base + block * (index + 1))


_PORTS = _listen_ports()


def free_port() -> int:
    for port in _PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken by something else on this machine: the next one
            return port
    raise RuntimeError("ran out of listening ports for the tests")


def wait_for(predicate: Callable[[], Any], deadline_s: float, what: str) -> Any:
    """Poll a condition until it holds or the deadline passes (then fail, naming it)."""
    return wait_until(predicate, deadline_s, what)


class Terminal:
    """One terminal: a home folder and, while running, a `hotline run` process."""

    def __init__(self, root: Path, name: str, port: int | None = None, passphrase: str | None = None) -> None:
        self.name = name
        self.home = root / name
        self.port = port or free_port()
        self.passphrase = passphrase
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / f"{name}.log"
        self._log_offset = 0

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("HOTLINE_HOME", None)
        if self.passphrase:
            env["HOTLINE_PASSPHRASE"] = self.passphrase
        return env

    def cli(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "hotline", "--home", str(self.home), *args],
            capture_output=True, text=True, env=self.env(), input=input, timeout=60, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"hotline {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def init(self, *args: str) -> None:
        extra = [] if self.passphrase else ["--no-passphrase"]
        listen = [] if "--listen" in args else ["--listen", f"127.0.0.1:{self.port}"]
        self.cli("init", "--name", self.name, *listen, *extra, *args)

    def configure(self, section: str, **values: object) -> None:
        """Change settings in config.toml (as an operator would, before `run`)."""
        import tomllib

        import tomli_w

        path = self.home / "config.toml"
        doc = tomllib.loads(path.read_text())
        doc.setdefault(section, {}).update(values)
        path.write_text(tomli_w.dumps(doc))

    def card(self) -> str:
        return self.cli("card").stdout

    def pair_with(self, other: Terminal) -> str:
        card = self.home.parent / f"{other.name}.card"
        card.write_text(other.card())
        return self.cli("pair", str(card)).stdout

    def start(self, *run_args: str) -> None:
        """`hotline run` with ``run_args`` (e.g. ``--log-format json``), its stderr appended to ``log_path``."""
        assert self.proc is None or self.proc.poll() is not None
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hotline", "--home", str(self.home), "run", *run_args],
            stderr=log,
            env=self.env(),
        )
        log.close()
        wait_for(self._answers, 20, f"{self.name} to answer on its control socket")

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with ControlClient(self.home, timeout=2) as c:
                c.request("ping")
            return True
        except ControlError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def client(self, timeout: float = 30) -> ControlClient:
        return ControlClient(self.home, timeout=timeout)

    def send_many(self, to: str, bodies: list[str]) -> None:
        """Submit every body at once over the control socket, then wait for each to be journaled."""
        with self.client(timeout=60) as c:
            for p in [c.submit("send", to=to, body=body) for body in bodies]:
                c.result(p)

    def inbox_bodies(self) -> collections.Counter[str]:
        """How many times each body is in the inbox (up to 5,000 messages)."""
        return collections.Counter(m["body"] for m in self.cli_json("inbox", "--limit", "5000")["messages"])

    def status(self) -> dict[str, Any]:
        with self.client() as c:
            return dict(c.request("status"))

    def link_up(self, peer: str) -> bool:
        return any(p["name"] == peer and p["link"] == "up" for p in self.status()["peers"])

    def wait_link(self, peer: str, deadline_s: float = 20) -> None:
        wait_for(lambda: self.link_up(peer), deadline_s, f"{self.name}'s link to {peer}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- the console and API (issue 4) ---------------------------------------------------------

    def add_user(self, name: str, role: str, password: str, lang: str = "en") -> None:
        self.cli("user", "add", name, "--role", role, "--lang", lang, input=password + "\n")

    def create_token(self, role: str) -> str:
        return str(self.cli_json("token", "create", "--role", role, "--label", f"test {role}")["token"])

    def console_url(self, deadline_s: float = 20) -> str:
        """The console's base URL (no trailing slash), once the running terminal has bound it."""
        path = self.home / "console.url"
        wait_for(lambda: path.exists() and path.read_text().strip(), deadline_s, f"{self.name}'s console")
        return path.read_text().strip().rstrip("/")


@pytest.fixture
def make_terminal(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    made: list[Terminal] = []

    def make(name: str, **kwargs: Any) -> Terminal:
        t = Terminal(tmp_path, name, **kwargs)
        made.append(t)
        return t

    yield make
    for t in made:
        if t.proc is not None and t.proc.poll() is None:
            t.proc.kill()
            t.proc.wait()


PASSWORD = "a long test password"


@pytest.fixture
def consoles(make_terminal: Callable[..., Terminal]) -> Iterator[tuple[Terminal, Terminal]]:
    """washington and moscow with their consoles on free loopback ports, running and linked.

    Each has users alice (operator), sam (supervisor) and audrey (auditor), and
    moscow also boris (operator, Russian); every password is ``PASSWORD``.
    """
    a, b = make_terminal("washington"), make_terminal("moscow")
    for t in (a, b):
        t.init("--api", f"127.0.0.1:{free_port()}")
        for user, role in (("alice", "operator"), ("sam", "supervisor"), ("audrey", "auditor")):
            t.add_user(user, role, PASSWORD)
    b.add_user("boris", "operator", PASSWORD, lang="ru")
    a.pair_with(b)
    b.pair_with(a)
    a.start()
    b.start()
    a.wait_link("moscow")
    b.wait_link("washington")
    yield a, b


@pytest.fixture
def paired(make_terminal: Callable[..., Terminal]) -> tuple[Terminal, Terminal]:
    """washington and moscow, initialised and paired both ways, not yet running."""
    a, b = make_terminal("washington"), make_terminal("moscow")
    a.init()
    b.init()
    a.pair_with(b)
    b.pair_with(a)
    return a, b


def mesh(everyone: Sequence[Terminal], already: frozenset[frozenset[str]] = frozenset()) -> None:
    """Pair every terminal with every other (but the pairs in ``already``, paired by the caller),
    start them all, and wait until every link is up."""
    for t in everyone:
        for other in everyone:
            if other is not t and frozenset({t.name, other.name}) not in already:
                t.pair_with(other)
    for t in everyone:
        t.start()
    for t in everyone:
        for other in everyone:
            if other is not t:
                t.wait_link(other.name)


def show_channel(t: Terminal, name: str = "ceasefire") -> dict[str, Any]:
    return t.cli_json("channel", "show", name)  # type: ignore[no-any-return]


def open_channel(author: Terminal, members: Sequence[Terminal], *create: str, name: str = "ceasefire") -> None:
    """``author`` creates channel ``name`` with ``members`` (``create``: more options); each member
    joins once its invitation is there; returns once every one of them sees everyone joined."""
    author.cli("channel", "create", name, *(a for m in members for a in ("--member", m.name)), *create)

    def invited(t: Terminal) -> bool:
        return bool(t.cli_json("channels")["total"] >= 1)

    def all_joined(t: Terminal) -> bool:
        return all(m["state"] == "joined" for m in show_channel(t, name)["members"])

    for t in members:
        wait_for(functools.partial(invited, t), 20, f"the invitation at {t.name}")
        t.cli("channel", "join", name)
    for t in (author, *members):
        wait_for(functools.partial(all_joined, t), 20, f"everyone joined, at {t.name}")
