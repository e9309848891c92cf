"""The terminal daemon: the thin asyncio shell around the engine.

It listens and dials (TLS 1.3, pinned Ed25519 certificates), feeds bytes to the
engine, drives its timers with a 50 ms tick, runs the group commit when asked,
and serves the local control socket. Every decision lives in ``engine`` and the
layers below it.

TLS is started by hand (``loop.start_tls``) on a plain TCP connection so that a
failed handshake is an exception we catch, log with a reason and journal, not a
traceback from asyncio's default handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import importlib
import json
import logging
import os
import secrets
import signal
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from hotline.core.errors import ConfigError, HotlineError, IdentityError
from hotline.core.model import Address
from hotline.crypto.identity import Identity, cert_public_key, fingerprint
from hotline.engine.engine import Engine
from hotline.engine.peer import Link
from hotline.home.config import CONTROL_SOCKET, JOURNAL_FILE, LOCK_FILE, Config, parse_api_listen
from hotline.storage.sqlite.journal import Journal
from hotline.terminal import control

log = logging.getLogger("hotline.terminal")

TICK_SECONDS = 0.05
HANDSHAKE_TIMEOUT = 5.0
DIAL_BACKOFF_MIN = 0.1
DIAL_BACKOFF_MAX = 2.0


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall_ns(self) -> int:
        return time.time_ns()


def _load_tls_key(ctx: ssl.SSLContext, identity: Identity, home: Path) -> None:
    """``ssl`` loads keys only from files: write the key encrypted under a one-time
    password to a private temp file, load it, and remove it at once."""
    password = secrets.token_bytes(32).hex().encode()
    with tempfile.TemporaryDirectory(dir=home, prefix=".tls-") as tmp:
        key_path, cert_path = Path(tmp) / "key.pem", Path(tmp) / "cert.pem"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(identity.tls_key_pem(password))
        cert_path.write_bytes(identity.cert_pem())
        ctx.load_cert_chain(str(cert_path), str(key_path), password=password)


def server_context(identity: Identity, home: Path, peer_certs: list[bytes]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED  # the client must present a paired certificate
    ctx.num_tickets = 0  # no resumption: every connection proves its key afresh
    _load_tls_key(ctx, identity, home)
    for der in peer_certs:
        ctx.load_verify_locations(cadata=der)
    return ctx


def client_context(identity: Identity, home: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    # The server's certificate is checked against the pinned key after the
    # handshake, by us: that lets us name the peer and the key it presented when
    # they differ, instead of a bare "unknown CA". TLS 1.3 still verifies the
    # server's CertificateVerify signature with the key in that certificate.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _load_tls_key(ctx, identity, home)
    return ctx


class LinkProtocol(asyncio.Protocol):
    """One TCP connection: TLS upgrade, then bytes to and from the engine."""

    def __init__(self, terminal: Terminal, *, dialed: bool, expected_peer: str | None, address: str, path: str) -> None:
        self.terminal = terminal
        self.path = path  # the dialled card address's path name, or the listening address's
        self.dialed = dialed
        self.expected_peer = expected_peer
        self.address = address
        self.transport: asyncio.BaseTransport | None = None
        self.link: Link | None = None
        self._early: list[bytes] = []
        self.established: asyncio.Future[Link | None] = asyncio.get_running_loop().create_future()

    # LinkIO
    def write(self, data: bytes) -> None:
        if isinstance(self.transport, asyncio.WriteTransport) and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:
            self.transport = transport
            if not self.dialed:
                peername = transport.get_extra_info("peername")
                if peername:
                    self.address = f"{peername[0]}:{peername[1]}"
            self.terminal.spawn(self._upgrade(transport))

    async def _upgrade(self, raw: asyncio.BaseTransport) -> None:
        t = self.terminal
        loop = asyncio.get_running_loop()
        who = self.expected_peer or "an incoming connection"
        try:
            ctx = t.client_ctx if self.dialed else t.server_ctx
            tls = await loop.start_tls(
                cast(asyncio.WriteTransport, raw),
                self,
                ctx,
                server_side=not self.dialed,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            )
            if tls is None:
                raise ConnectionError("connection closed during the TLS handshake")
            self.transport = tls
            ssl_object = tls.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
            if not der:
                raise ssl.SSLError("the peer presented no certificate")
            key = cert_public_key(der)
        except (OSError, ssl.SSLError, ConnectionError, TimeoutError, IdentityError) as e:
            # Some of these carry no message (a bare ConnectionResetError()); name the type then.
            why = str(e) or type(e).__name__
            reason = f"TLS handshake with {who} at {self.address} failed: {why}"
            if self.dialed and self.expected_peer:
                t.engine.refuse(self.expected_peer, reason, {"address": self.address})
            else:
                log.warning("refused %s from %s: %s", who, self.address, why)
            raw.close()
            self._settle(None)
            return
        peer = t.engine.peer_by_key(key)
        if self.dialed and (peer is None or peer.name != self.expected_peer):
            expected = t.engine.peers.get(self.expected_peer or "")
            paired_on = (
                time.strftime("%Y-%m-%d", time.gmtime(t.engine.store.peer(expected.name).paired_at_ns / 1e9))  # type: ignore[union-attr]
                if expected
                else "?"
            )
            reason = (
                f"peer {self.expected_peer!r} at {self.address} presented identity key {fingerprint(key)}, "
                f"not the key {fingerprint(expected.identity_key) if expected else '?'} paired on {paired_on}; "
                "verify the safety number with its operator, then re-pair with `hotline pair`"
            )
            t.engine.refuse(self.expected_peer or "?", reason, {"address": self.address, "presented": key})
            tls.close()
            self._settle(None)
            return
        if peer is None:
            log.warning("refused connection from %s: key %s is not paired", self.address, fingerprint(key))
            tls.close()
            self._settle(None)
            return
        self.link = t.engine.link_established(peer.name, self, dialed=self.dialed, address=self.address, path=self.path)
        if self.link is not None:
            for chunk in self._early:
                t.engine.data_received(self.link, chunk)
        self._early.clear()
        self._settle(self.link)

    def _settle(self, link: Link | None) -> None:
        if not self.established.done():
            self.established.set_result(link)

    def data_received(self, data: bytes) -> None:
        if self.link is None:
            self._early.append(data)
            return
        self.terminal.engine.data_received(self.link, data)

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.link is not None:
            reason = f"connection lost: {exc}" if exc else "connection closed by the peer"
            self.terminal.engine.connection_lost(self.link, reason)
        self._settle(None)


class Terminal:
    def __init__(self, home: Path, config: Config, identity: Identity) -> None:
        self.home = home
        self.config = config
        self.identity = identity
        self.journal = Journal(home / JOURNAL_FILE, synchronous=config.synchronous)
        self.clock = SystemClock()
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping: asyncio.Event | None = None
        self._fatal: BaseException | None = None
        self._closed = False  # the journal is closed: the terminal has stopped
        self.engine = Engine(
            identity=identity,
            config=config,
            journal=self.journal,
            clock=self.clock,
            request_flush=self.request_flush,
        )
        self._dialing: set[tuple[str, str]] = set()
        self._next_dial: dict[tuple[str, str], float] = {}
        self._backoff: dict[tuple[str, str], float] = {}
        self._lock_fd: int | None = None
        self.server_ctx = server_context(identity, home, self._peer_certs())
        self.client_ctx = client_context(identity, home)

    def _peer_certs(self) -> list[bytes]:
        return [p.card.cert_der for p in self.engine.peers.values()]

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._die(task.exception())

    def _die(self, exc: BaseException | None) -> None:
        if self._fatal is None:
            self._fatal = exc
            log.critical("terminal stopping on an unexpected error: %r", exc, exc_info=exc)
        if self._stopping is not None:
            self._stopping.set()

    # -- group commit -----------------------------------------------------------------------

    def request_flush(self) -> None:
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not running yet: run() flushes once it starts
        self._flush_scheduled = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._fatal is not None or self._closed:
            return
        try:
            self.engine.flush()
        except BaseException as e:  # a journal failure: stop, restart from the journal
            self._die(e)

    # -- lifecycle --------------------------------------------------------------------------

    def _acquire_lock(self) -> None:
        fd = os.open(self.home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = (self.home / LOCK_FILE).read_text().strip() or "?"
            raise ConfigError(f"a terminal is already running on {self.home} (pid {pid})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    async def run(self) -> None:
        self._acquire_lock()
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        servers = []
        for address in self.config.listen:
            try:
                servers.append(
                    await loop.create_server(
                        functools.partial(
                            LinkProtocol,
                            self,
                            dialed=False,
                            expected_peer=None,
                            address=str(address),
                            path=address.path,
                        ),
                        address.host,
                        address.port,
                        reuse_address=True,
                    )
                )
            except OSError as e:
                raise ConfigError(f"cannot listen on {address}: {e.strerror or e}") from None
        # Incoming connections get a useful address in logs once accepted; the
        # listening address stands in until then.
        sock_path = self.home / CONTROL_SOCKET
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        control_server = await asyncio.start_unix_server(
            lambda r, w: control.serve_client(self, r, w), path=str(sock_path)
        )
        os.chmod(sock_path, 0o600)
        log.info(
            "terminal %s (%s) listening on %s; %d peer(s)",
            self.identity.name,
            fingerprint(self.identity.public_key),
            ", ".join(str(a) for a in self.config.listen),
            len(self.engine.peers),
        )
        self.engine.listeners.append(self._on_event)
        self.engine.wake()
        self.request_flush()
        ticker = loop.create_task(self._ticker())
        api_task = self._start_api()
        try:
            await self._stopping.wait()
        finally:
            ticker.cancel()
            if api_task is not None:
                api_task.cancel()  # closes live pages, then waits briefly for requests in flight
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(api_task, 4)
            log.info("terminal %s shutting down", self.identity.name)
            self.engine.close_all_links("terminal shutting down")  # journaled by the flush below
            for server in servers:
                server.close()
            control_server.close()
            if self._fatal is None:
                with contextlib.suppress(HotlineError):
                    self.engine.flush()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(FileNotFoundError):
                sock_path.unlink()
            self._closed = True  # transports still report their closing after this: nothing to write
            self.journal.close()
        if self._fatal is not None:
            raise self._fatal

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "alarm" and self.config.alarm_command:
            self.spawn(self._run_alarm_command(event))

    async def _run_alarm_command(self, event: dict[str, Any]) -> None:
        """Hand an alarm to the site's command (JSON on its stdin), so it can page someone."""
        try:
            proc = await asyncio.create_subprocess_shell(
                self.config.alarm_command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.home,
            )
            _, err = await asyncio.wait_for(
                proc.communicate(json.dumps({**event, "terminal": self.identity.name}).encode() + b"\n"), timeout=30
            )
            if proc.returncode != 0:
                log.error("alarm command exited %s: %s", proc.returncode, err.decode(errors="replace")[:500])
        except (OSError, TimeoutError) as e:
            log.error("alarm command failed: %s", e)

    def _start_api(self) -> asyncio.Task[None] | None:
        """The HTTP API and console (issue 4), if the config has an [api] section.

        ``hotline.api.serve_api(terminal, host, port)`` runs until cancelled; it
        writes the console's URL to HOME/console.url once bound (port 0 = any free).
        """
        section = self.config.extra.get("api")
        if not isinstance(section, dict) or not section.get("listen"):
            return None
        api = importlib.import_module("hotline.web.api")  # imported only when configured: it pulls in starlette
        host, port = parse_api_listen(str(section["listen"]))
        task = asyncio.get_running_loop().create_task(api.serve_api(self, host, port))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                self.engine.tick()
                self._dial_due()
            except Exception as e:
                self._die(e)
                return

    def reload(self) -> list[str]:
        changed = self.engine.reload_peers()
        for name in changed:
            self.server_ctx.load_verify_locations(cadata=self.engine.peers[name].card.cert_der)
            for address in self.engine.peers[name].card.addresses:
                self._next_dial[(name, address.path)] = 0.0
        return changed

    # -- dialling ---------------------------------------------------------------------------

    def _dial_due(self) -> None:
        """Every path to every peer gets its own connection; dial the ones that have none."""
        now = time.monotonic()
        for name, peer in self.engine.peers.items():
            for address in peer.card.addresses:
                key = (name, address.path)
                if address.path in peer.links or key in self._dialing or now < self._next_dial.get(key, 0.0):
                    continue
                self._dialing.add(key)
                self.spawn(self._dial(name, address))

    async def _dial(self, name: str, address: Address) -> None:
        loop = asyncio.get_running_loop()
        key = (name, address.path)
        proto: LinkProtocol | None = None
        link: Link | None = None
        try:
            factory = functools.partial(
                LinkProtocol, self, dialed=True, expected_peer=name, address=str(address), path=address.path
            )
            try:
                _, connected = await asyncio.wait_for(
                    loop.create_connection(factory, address.host, address.port), timeout=HANDSHAKE_TIMEOUT
                )
                proto = connected
                link = await asyncio.wait_for(connected.established, timeout=HANDSHAKE_TIMEOUT * 2)
            except (OSError, TimeoutError) as e:
                log.debug("dial %s path %s at %s failed: %s", name, address.path, address, e)
                if proto is not None:
                    proto.close()
            if link is not None:
                self._backoff[key] = DIAL_BACKOFF_MIN
                return
            backoff = self._backoff.get(key, DIAL_BACKOFF_MIN)
            self._next_dial[key] = time.monotonic() + backoff
            self._backoff[key] = min(backoff * 2, DIAL_BACKOFF_MAX)
        finally:
            self._dialing.discard(key)


def run_terminal(home: Path, config: Config, identity: Identity) -> None:
    terminal = Terminal(home, config, identity)
    asyncio.run(terminal.run())
