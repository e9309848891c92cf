"""The terminal daemon: the thin asyncio shell around the engine.

It listens and dials (TLS 1.3, pinned Ed25519 certificates: ``tls``), feeds bytes
to the engine, drives its timers with a 50 ms tick, runs the group commit when
asked, serves the local control socket (``control``) and runs the services it was
given beside it (the HTTP API and console), to which it is a ``port.TerminalPort``.
Every decision lives in ``engine`` and the layers below it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import logging
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from hotline.core.errors import ConfigError, DeskError, HotlineError
from hotline.core.model import Address, MessageContent
from hotline.crypto.identity import ContactCard, Identity, fingerprint
from hotline.desk.forms import FormRegistry
from hotline.desk.records import DeskRecord
from hotline.desk.register import Register
from hotline.engine import pairing
from hotline.engine.engine import Engine, Listener
from hotline.engine.links import about
from hotline.home.config import CONTROL_SOCKET, JOURNAL_FILE, LOCK_FILE, Config
from hotline.home.forms import load_forms
from hotline.storage.backend import open_storage
from hotline.storage.base import TerminalStore
from hotline.terminal import backup, control
from hotline.terminal.port import Service
from hotline.terminal.tls import HANDSHAKE_TIMEOUT, LinkProtocol, client_context, server_context
from hotline.terminal.watch import JournalWatch

log = logging.getLogger("hotline.terminal")

T = TypeVar("T")

TICK_SECONDS = 0.05
DIAL_BACKOFF_MIN = 0.1
DIAL_BACKOFF_MAX = 2.0


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall_ns(self) -> int:
        return time.time_ns()


def _settle(future: asyncio.Future[T], error: Exception | None, value: T) -> None:
    """The bridge from an engine callback to a waiting caller. Engine callbacks run inside its
    commit: the caller resumes on the next turn of the loop, never inside the commit."""

    def finish() -> None:
        if future.done():  # the caller stopped waiting (cancelled)
            return
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    future.get_loop().call_soon(finish)


class Terminal:
    """The running terminal: the engine in its event loop, the links, the control socket, and
    the services beside it (``services``: the HTTP API and console, when configured). It is
    the ``TerminalPort`` those services and the control socket use."""

    def __init__(self, home: Path, config: Config, identity: Identity, services: Sequence[Service] = ()) -> None:
        self.home = home
        self.config = config
        self.identity = identity
        self.services = tuple(services)
        self.storage = open_storage(home / JOURNAL_FILE, synchronous=config.synchronous)
        self.journal = self.storage.record
        self.access = self.storage.access
        self.clock = SystemClock()
        self._flush_scheduled = False
        self._commit_waiters: list[asyncio.Future[None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping: asyncio.Event | None = None
        self._fatal: BaseException | None = None
        self._closed = False  # the journal is closed: the terminal has stopped
        self.engine = Engine(
            identity=identity,
            config=config,
            journal=self.journal,
            store=self.storage.store,
            clock=self.clock,
            request_flush=self.request_flush,
            forms=load_forms(home, config),  # a broken form type in the home folder stops the start, named
        )
        self.watch = JournalWatch(
            self.journal, identity, self.engine, config.journal_check_s, self.clock.wall_ns, config.journal_whole_chain
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
        waiters, self._commit_waiters = self._commit_waiters, []
        if self._fatal is not None or self._closed:
            failed: Exception | None = HotlineError("the terminal stopped before the journal commit")
        else:
            try:
                self.engine.flush()
                failed = None
            except BaseException as e:  # a journal failure: stop, restart from the journal
                self._die(e)
                failed = HotlineError(f"the journal commit failed, and the terminal is stopping: {e}")
        for waiter in waiters:
            _settle(waiter, failed, None)

    async def _next_commit(self) -> None:
        """Wait until the next group commit has run: what the engine was handed before is journaled."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._commit_waiters.append(waiter)
        self.request_flush()
        await waiter

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
        self.watch.check_at_start()  # before anything is appended
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
        self.subscribe(self._on_event)
        self.engine.wake()
        self.request_flush()
        ticker = loop.create_task(self._ticker())
        self.spawn(self.watch.run())
        services = [self._start_service(service) for service in self.services]
        try:
            await self._stopping.wait()
        finally:
            ticker.cancel()
            for task in services:
                task.cancel()  # the API closes live pages, then waits briefly for requests in flight
            if services:
                await asyncio.wait(services, timeout=4)
            log.info("terminal %s shutting down", self.identity.name)
            self.engine.close_all_links("terminal shutting down")  # journaled by the flush below
            for server in servers:
                server.close()
            control_server.close()
            if self._fatal is None:
                with contextlib.suppress(HotlineError):
                    self.engine.flush()
                self.watch.at_stop()
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
        elif event.get("event") == "peer-key-rotated":
            # Its new certificate is trusted for the connections it dials from now on. The old one
            # stays loaded (contexts only add), so a handshake with it completes and is then refused
            # by name as a stale key (``tls``), rather than failing as an unknown CA.
            self.server_ctx.load_verify_locations(cadata=self.engine.peers[event["peer"]].card.cert_der)

    def _adopt(self, identity: Identity) -> None:
        """Our own key changed (``rotate_key``, ``revoke``): new connections present the new certificate."""
        self.identity = identity
        self.watch.identity = identity
        self.server_ctx = server_context(identity, self.home, self._peer_certs())
        self.client_ctx = client_context(identity, self.home)

    async def rotate_key(self, new: Identity, statement: bytes) -> dict[str, Any]:
        result = self.engine.rotate(new, statement)
        self._adopt(new)
        return result

    async def distrust(self, peer: str, reason: str, by: str) -> dict[str, Any]:
        return self.engine.distrust(peer, reason, by)

    async def revoke(self, new: Identity, statement: bytes) -> dict[str, Any]:
        result = self.engine.revoke(new, statement)
        self._adopt(new)
        self.reload()
        return result

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

    def _start_service(self, service: Service) -> asyncio.Task[None]:
        """Run a service beside the terminal until shutdown cancels it; if it fails, the terminal stops."""
        task = asyncio.get_running_loop().create_task(service(self))
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

    # -- the port: what the control socket and the services use (terminal.port.TerminalPort) --

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def markings(self) -> tuple[str, ...]:
        return self.config.markings

    @property
    def store(self) -> TerminalStore:
        return self.engine.store

    @property
    def journal_path(self) -> Path:
        return self.journal.path

    def now_ns(self) -> int:
        return self.clock.wall_ns()

    def status(self) -> dict[str, Any]:
        return {**self.engine.status(), "journal": self.watch.status()}

    async def accept_damage(self, reason: str, by: str) -> dict[str, Any]:
        return await self.watch.accept(reason, by)

    def alarms(self) -> list[dict[str, Any]]:
        return self.engine.alarms()

    def peer_names(self) -> list[str]:
        return sorted(self.engine.peers)

    def reload(self) -> list[str]:
        changed = self.engine.reload_peers()
        for name in changed:
            self.server_ctx.load_verify_locations(cadata=self.engine.peers[name].card.cert_der)
            for address in self.engine.peers[name].card.addresses:
                self._next_dial[(name, address.path)] = 0.0
        return changed

    def pair(self, card: ContactCard, by: str) -> pairing.PairResult:
        result = pairing.pair(self.store, self.identity, card, self.now_ns(), by=by)
        self.reload()
        return result

    def confirm_safety_number(self, peer: str, heard: str, by: str) -> None:
        pairing.confirm_safety_number(self.store, peer, heard, self.now_ns(), by=by)
        self.reload()  # an alarm about its key may have done its work

    def subscribe(self, listener: Listener) -> None:
        self.engine.listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self.engine.listeners.remove(listener)

    async def send(self, content: MessageContent, by: str = "", wait_delivered: bool = False) -> bool:
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[bool] = loop.create_future()
        self.engine.submit(content, lambda error, created: _settle(committed, error, created), by=by)
        created = await committed
        if wait_delivered:
            delivered: asyncio.Future[None] = loop.create_future()
            self.engine.on_delivered(content.id, lambda: _settle(delivered, None, None))
            await delivered
        return created

    async def acknowledge(self, message_id: str, by: str) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.engine.acknowledge(message_id, by, lambda error: _settle(done, error, None))
        await done

    async def mark_read(self, message_id: str, by: str) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.engine.mark_read(message_id, by, lambda error: _settle(done, error, None))
        await done

    async def desk(self, act: dict[str, Any], by: str = "", wait_delivered: bool = False) -> DeskRecord:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[DeskRecord | None] = loop.create_future()
        self.engine.submit_desk(act, lambda error, record: _settle(done, error, record), by)
        record = await done
        if record is None:
            raise DeskError("the desk act was not recorded")
        if wait_delivered:  # every message that carries it (one per member, for a channel's)
            for row in self.store.record_carriers("out", record.signed):
                delivered: asyncio.Future[None] = loop.create_future()
                self.engine.on_delivered(row["id"], functools.partial(_settle, delivered, None, None))
                await delivered
        return record

    def register(self) -> Register:
        return self.engine.desk

    def forms(self) -> FormRegistry:
        return self.engine.forms

    async def backup(self, dest: Path) -> dict[str, Any]:
        # The snapshot reads on a connection of its own in a worker thread: the loop, its heartbeats
        # and its commits go on (WAL readers never block the writer).
        return await asyncio.to_thread(backup.write_backup, self.home, self.config, self.journal, dest, self.now_ns())

    async def raise_alarm(self, kind: str, peer: str, subject: str, detail: str) -> None:
        self.engine.raise_alarm(kind, peer, subject, detail)
        await self._next_commit()  # the engine journals alarm changes in its next commit

    async def clear_alarm(self, kind: str, peer: str, subject: str, reason: str) -> None:
        self.engine.clear_alarm(kind, peer, subject, reason)
        await self._next_commit()

    # -- dialling ---------------------------------------------------------------------------

    def _dial_due(self) -> None:
        """Every path to every peer gets its own connection; dial the ones that have none."""
        now = time.monotonic()
        for name, peer in self.engine.peers.items():
            if peer.revoked:
                continue  # nothing until it is paired afresh
            for address in peer.card.addresses:
                key = (name, address.path)
                link = peer.links.get(address.path)
                if link is not None and link.hello_cursor is not None:
                    self._backoff[key] = DIAL_BACKOFF_MIN  # up, hello and all: the next outage dials at once
                if link is not None or key in self._dialing or now < self._next_dial.get(key, 0.0):
                    continue
                self._dialing.add(key)
                self.spawn(self._dial(name, address))

    async def _dial(self, name: str, address: Address) -> None:
        loop = asyncio.get_running_loop()
        key = (name, address.path)
        proto: LinkProtocol | None = None
        try:
            factory = functools.partial(
                LinkProtocol, self, dialed=True, expected_peer=name, address=str(address), path=address.path
            )
            try:
                _, connected = await asyncio.wait_for(
                    loop.create_connection(factory, address.host, address.port), timeout=HANDSHAKE_TIMEOUT
                )
                proto = connected
                await asyncio.wait_for(connected.established, timeout=HANDSHAKE_TIMEOUT * 2)
            except (OSError, TimeoutError) as e:
                log.debug("dial %s path %s at %s failed: %s", name, address.path, address, e,
                          extra=about(name, address.path))  # fmt: skip
                if proto is not None:
                    proto.close()
            # Backing off even when TLS completed: only a hello proves the link (above). The peer may
            # refuse our certificate after the client's side of a TLS 1.3 handshake is done (one that
            # has not yet accepted our key's succession), and this must not redial every tick.
            backoff = self._backoff.get(key, DIAL_BACKOFF_MIN)
            self._next_dial[key] = time.monotonic() + backoff
            self._backoff[key] = min(backoff * 2, DIAL_BACKOFF_MAX)
        finally:
            self._dialing.discard(key)


def run_terminal(home: Path, config: Config, identity: Identity, services: Sequence[Service] = ()) -> None:
    terminal = Terminal(home, config, identity, services)
    asyncio.run(terminal.run())
