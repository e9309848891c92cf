"""The link's TLS: contexts with the terminal's Ed25519 certificate, and ``LinkProtocol``, one
TCP connection that upgrades to TLS 1.3, checks the peer's key against the pinned one, then
carries bytes to and from the engine.

TLS is started by hand (``loop.start_tls``) on a plain TCP connection so that a
failed handshake is an exception we catch, log with a reason and journal, not a
traceback from asyncio's default handler.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import ssl
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, cast

from hotline.core.errors import IdentityError
from hotline.crypto.identity import Identity, cert_public_key, fingerprint
from hotline.engine.links import changed_key_reason
from hotline.engine.peer import Link

if TYPE_CHECKING:
    from hotline.terminal.daemon import Terminal

log = logging.getLogger("hotline.terminal")  # the daemon's: one name for the terminal's own log lines

HANDSHAKE_TIMEOUT = 5.0


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
        stale = t.engine.stale_key(key)
        if stale is not None:
            # A key a peer held before its succession (or revoked): refused by name, and nothing of
            # the connection reaches the journal.
            log.warning("refused the connection with %s at %s: %s; a stale key is never accepted again",
                        who, self.address, stale)  # fmt: skip
            tls.close()
            self._settle(None)
            return
        expected = t.engine.peers.get(self.expected_peer or "")
        presented: bytes | None = None
        if self.dialed and peer is None and expected is not None and not expected.revoked:
            # Perhaps it rotated its key while we were apart: a provisional link, which only a
            # succession signed by the pinned key makes a link (``engine.trust``).
            peer, presented = expected, key
        if self.dialed and (peer is None or peer.name != self.expected_peer):
            if expected is not None:
                reason = changed_key_reason(expected.name, self.address, key, expected.identity_key,
                                            expected.paired_at_ns)  # fmt: skip
            else:
                reason = f"{self.address} presented identity key {fingerprint(key)}, which is not paired"
            t.engine.refuse(self.expected_peer or "?", reason, {"address": self.address, "presented": key})
            tls.close()
            self._settle(None)
            return
        if peer is None:
            log.warning("refused connection from %s: key %s is not paired", self.address, fingerprint(key))
            tls.close()
            self._settle(None)
            return
        self.link = t.engine.link_established(
            peer.name, self, dialed=self.dialed, address=self.address, path=self.path, presented=presented
        )
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
