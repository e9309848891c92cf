"""Bad input at every door of a real terminal: the listening port, the TLS handshake,
the link protocol of an authenticated peer, the journal on disk, contact cards and
the key passphrase.

Every case checks the same three things: the refusal is explained (in the log or on
stderr), the terminal keeps serving (answers ``status`` and delivers a normal message
afterwards), and nothing of the bad input reaches the journal.

Most link cases share one *arena* (module scope, to keep the file fast): washington
running, moscow initialised and paired but stopped, one message already exchanged
each way. A test plays the hostile side by hand with the ``ssl`` module, then starts
the real moscow to prove the line still carries traffic, and stops it again.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import sqlite3
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import Terminal, free_port, wait_for
from hotline.core.model import Address, MessageContent, Precedence, ReceiptKind
from hotline.core.wire import MAX_FRAME_BYTES, FrameDecoder, encode_frame, pack, unpack
from hotline.crypto import envelope as env
from hotline.crypto.identity import ContactCard, Identity, make_card
from hotline.crypto.ratchet import Ratchet
from hotline.engine.peer import open_state
from hotline.home.keyfile import load_keys
from hotline.storage.records import entry_hash
from hotline.terminal.tls import client_context

pytestmark = pytest.mark.e2e


# -- reading a terminal's state from outside ------------------------------------------------


def _query(t: Terminal, sql: str, params: tuple[Any, ...] = ()) -> Any:
    db = sqlite3.connect(f"file:{t.home / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute(sql, params).fetchone()
    finally:
        db.close()


def journal_counts(t: Terminal) -> tuple[int, int]:
    """(messages in the inbox, message.received entries in the record)."""
    inbox = _query(t, "SELECT count(*) FROM messages WHERE direction = 'in'")[0]
    entries = _query(t, "SELECT count(*) FROM entries WHERE kind = 'message.received'")[0]
    return int(inbox), int(entries)


def entry_count(t: Terminal) -> int:
    return int(_query(t, "SELECT count(*) FROM entries")[0])


def entries_since(t: Terminal, count: int) -> list[dict[str, Any]]:
    return [json.loads(line) for line in t.cli("journal", "export").stdout.splitlines()[count:]]


def line_event(entry: dict[str, Any]) -> bool:
    """The line's own life, which goes on while a test runs: the real moscow reconnects when a
    test's raw connection displaces it, and the hourly test is first sent a few seconds after
    start (and goes unanswered if its connection is displaced). So: link events (up, down,
    switch, test) and the alarms they raise or clear (path down, all paths down, test failed)."""
    if entry["kind"].startswith("link."):
        return True
    return entry["kind"] in {"alarm.raised", "alarm.cleared"} and entry["body"]["kind"] in {
        "path-down", "all-paths-down", "test-failed",
    }  # fmt: skip


def peer_status(t: Terminal, peer: str) -> dict[str, Any]:
    status = t.cli_json("status")
    assert status["running"] is True
    return next(p for p in status["peers"] if p["name"] == peer)


def wait_log(t: Terminal, mark: int, *fragments: str, deadline_s: float = 10) -> str:
    """Wait until everything in ``fragments`` appears in ``t``'s log after offset ``mark``."""
    wait_for(lambda: all(f in t.log()[mark:] for f in fragments), deadline_s, f"{t.name}'s log to say {fragments}")
    return t.log()[mark:]


def assert_journal_verifies(t: Terminal) -> None:
    result = t.cli("journal", "verify", check=False)
    assert result.returncode == 0, result.stderr
    assert "journal OK" in result.stdout


# -- the arena ------------------------------------------------------------------------------


@dataclass
class Arena:
    washington: Terminal
    moscow: Terminal
    moscow_identity: Identity
    washington_key: bytes
    root: Path

    def deliver_from_moscow(self, body: str) -> str:
        """Start the real moscow, send one message to washington, wait for its receipt, stop moscow.

        This is the proof that washington still does its job after whatever a test threw at it.
        """
        w, m = self.washington, self.moscow
        assert w.proc is not None and w.proc.poll() is None, f"washington died:\n{w.log()}"
        assert w.status()["running"] is True
        before = journal_counts(w)
        m.start()
        try:
            with m.client() as c:
                mid = str(c.request("send", to="washington", body=body, wait="delivered")["id"])
            inbox = w.cli_json("inbox")["messages"]
            assert any(msg["id"] == mid and msg["body"] == body for msg in inbox)
            assert journal_counts(w) == (before[0] + 1, before[1] + 1)  # exactly once
            assert peer_status(w, "moscow")["link"] == "up"
        finally:
            m.stop()
        return mid


@pytest.fixture(scope="module")
def arena_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    root = tmp_path_factory.mktemp("arena")
    w, m = Terminal(root, "washington"), Terminal(root, "moscow")
    try:
        w.init()
        m.init()
        w.pair_with(m)
        m.pair_with(w)
        w.start()
        m.start()
        with m.client() as c:
            c.request("send", to="washington", body="Setup: moscow to washington", wait="delivered")
        with w.client() as c:
            c.request("send", to="moscow", body="Setup: washington to moscow", wait="delivered")
        m.stop()
        yield Arena(
            washington=w,
            moscow=m,
            moscow_identity=load_keys(m.home / "keys.json", None),
            washington_key=load_keys(w.home / "keys.json", None).public_key,
            root=root,
        )
    finally:
        for t in (w, m):
            if t.proc is not None and t.proc.poll() is None:
                t.proc.kill()
                t.proc.wait()


@pytest.fixture
def arena(arena_setup: Arena) -> Arena:
    """The shared arena, in its resting state: washington running, moscow stopped."""
    a = arena_setup
    if a.moscow.proc is not None:  # an earlier test failed with moscow still up
        if a.moscow.proc.poll() is None:
            a.moscow.kill()
        a.moscow.proc = None
    if a.washington.proc is None or a.washington.proc.poll() is not None:
        a.washington.proc = None  # an earlier test killed it (and failed for it); start afresh
        a.washington.start()
    return a


# -- a hand-driven TLS client -----------------------------------------------------------------


class RawLink:
    """A blocking TLS 1.3 client that speaks the link protocol frame by frame."""

    def __init__(self, port: int, identity: Identity, scratch: Path) -> None:
        ctx = client_context(identity, scratch)
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock = ctx.wrap_socket(raw)
        self.decoder = FrameDecoder()

    def send(self, frame: dict[str, Any]) -> None:
        self.sock.sendall(encode_frame(frame))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The next frame that is not a ping (pings are answered), or None at end of stream."""
        end = time.monotonic() + timeout
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                if frame["t"] == "ping":
                    with contextlib.suppress(OSError):
                        self.send({"t": "pong", "n": frame["n"]})
                    continue
                return frame
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise AssertionError("timed out waiting for a frame from the terminal")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except (ssl.SSLError, ConnectionError):
                return None
            if not data:
                return None
            self.decoder.receive_data(data)

    def read_until(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            frame = self.read_frame(max(0.01, end - time.monotonic()))
            assert frame is not None, f"the terminal closed the connection before sending {kind!r}"
            if frame["t"] == kind:
                return frame

    def expect_bye(self, timeout: float = 5.0) -> str:
        """The terminal says bye (with its reason) and then closes the connection."""
        bye = self.read_until("bye", timeout)
        end = time.monotonic() + timeout
        while (frame := self.read_frame(max(0.01, end - time.monotonic()))) is not None:
            assert frame["t"] in {"pong", "rcpt", "env", "test"}, f"unexpected frame after bye: {frame}"
        return str(bye["reason"])

    def close(self) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            self.sock.close()


def connect_as_moscow(arena: Arena) -> RawLink:
    """Authenticate to washington with moscow's own keys and exchange hellos."""
    link = RawLink(arena.washington.port, arena.moscow_identity, arena.root)
    cursor = _query(arena.moscow, "SELECT in_upto FROM cursors WHERE peer = 'washington'")[0]
    link.send({"t": "hello", "pv": 1, "name": "moscow", "cursor": cursor, "receipt": None})
    hello = link.read_until("hello")
    assert hello["name"] == "washington"
    return link


def moscow_sent_envelope(arena: Arena, seq: int) -> bytes:
    """An envelope the real moscow sealed (and washington already received), from moscow's journal."""
    row = _query(arena.moscow, "SELECT envelope FROM messages WHERE direction = 'out' AND seq = ?", (seq,))
    assert row is not None and row[0]
    return bytes(row[0])


def forge_next_envelope(arena: Arena) -> tuple[int, bytes]:
    """A genuine next envelope from moscow (its keys, its ratchet, its next seq), not journaled
    anywhere and never sent as is: tests break it before it leaves."""
    m = arena.moscow
    blob = _query(m, "SELECT state FROM sessions WHERE peer = 'washington'")[0]
    ratchet = Ratchet.from_bytes(open_state(arena.moscow_identity.state_key, "washington", bytes(blob)))
    seq = int(_query(m, "SELECT out_next_seq FROM cursors WHERE peer = 'washington'")[0])
    content = MessageContent(
        id=str(uuid.uuid4()), sender="moscow", recipient="washington", precedence=Precedence.FLASH,
        lang="en", subject="Forged", body="Stand down all forces.", created_at_ns=time.time_ns(),
    )  # fmt: skip
    return seq, env.seal(arena.moscow_identity, ratchet, content, seq)


def _flip_signature(envelope: bytes) -> bytes:
    outer = unpack(envelope)
    sig = bytearray(outer["s"])
    sig[17] ^= 0x01
    return pack({"b": outer["b"], "s": bytes(sig)})


def _flip_body(envelope: bytes) -> bytes:
    outer = unpack(envelope)
    body = bytearray(outer["b"])
    body[-5] ^= 0x01  # inside the ciphertext's authentication tag
    return pack({"b": bytes(body), "s": outer["s"]})


def _in_upto(t: Terminal, peer: str) -> int:
    return int(_query(t, "SELECT in_upto FROM cursors WHERE peer = ?", (peer,))[0])


# -- 1. not TLS at all ------------------------------------------------------------------------

GARBAGE = {
    "binary noise": bytes(range(256)) * 8,
    "plain HTTP": b"GET / HTTP/1.1\r\nHost: washington\r\n\r\n",
    "nothing, then close": b"",
    "a TLS record header claiming SSL 2": b"\x80\x2e\x01\x00\x02" + b"\x00" * 64,
}


def test_garbage_on_the_listening_port_is_refused(arena: Arena) -> None:
    w, m = arena.washington, arena.moscow
    m.start()  # a live link to moscow must ride out the noise
    try:
        w.wait_link("moscow")
        before = journal_counts(w)
        for what, payload in GARBAGE.items():
            mark = len(w.log())
            with socket.create_connection(("127.0.0.1", w.port), timeout=5) as s:
                local_port = s.getsockname()[1]
                if payload:
                    s.sendall(payload)
                else:
                    s.shutdown(socket.SHUT_WR)
                s.settimeout(5)
                with contextlib.suppress(ConnectionError):
                    while s.recv(65536):  # whatever TLS alert comes back, then the close
                        pass
            refused = f"refused an incoming connection from 127.0.0.1:{local_port}: "
            text = wait_log(w, mark, refused)
            print(f"{what}: {text.strip()}")
            if payload:  # OpenSSL's own words for what it found instead of a ClientHello
                assert text[text.index(refused) + len(refused) :].startswith("[SSL: "), text
        assert w.link_up("moscow"), "the garbage disturbed the live link"
        assert journal_counts(w) == before
    finally:
        m.stop()
    arena.deliver_from_moscow("after garbage on the port")
    assert_journal_verifies(w)


# -- 2. a stranger with a certificate -----------------------------------------------------------


def test_unpaired_certificate_is_refused(arena: Arena, tmp_path: Path) -> None:
    w = arena.washington
    before = journal_counts(w)
    mark = len(w.log())
    intruder = Identity.generate("intruder")
    ctx = client_context(intruder, tmp_path)
    raw = socket.create_connection(("127.0.0.1", w.port), timeout=5)
    local_port = raw.getsockname()[1]
    got = b""
    try:
        # TLS 1.3: the client may finish its side before the server has checked its
        # certificate; the refusal then arrives as an alert on the first read.
        with ctx.wrap_socket(raw) as s:
            s.settimeout(5)
            s.sendall(encode_frame({"t": "hello", "pv": 1, "name": "moscow", "cursor": 0, "receipt": None}))
            while chunk := s.recv(65536):
                got += chunk
    except (ssl.SSLError, ConnectionError) as e:
        print(f"intruder's side: {e!r}")
    assert got == b"", "washington spoke to an unpaired certificate"
    text = wait_log(w, mark, f"refused an incoming connection from 127.0.0.1:{local_port}")
    assert "certificate verify failed" in text
    assert journal_counts(w) == before
    assert peer_status(w, "moscow")["link"] != "up"  # the intruder brought no link up under moscow's name
    arena.deliver_from_moscow("after the intruder")
    assert_journal_verifies(w)


def test_authenticated_peer_that_hangs_up_before_its_hello_is_logged(arena: Arena) -> None:
    w = arena.washington
    entries_before = entry_count(w)
    mark = len(w.log())
    link = RawLink(w.port, arena.moscow_identity, arena.root)
    try:
        assert link.read_until("hello")["name"] == "washington"  # washington took the connection
        local_port = link.sock.getsockname()[1]
    finally:
        link.close()  # no hello, no bye: the TCP connection just ends
    text = wait_log(w, mark, f"to moscow at 127.0.0.1:{local_port} closed before its hello")
    assert "Traceback" not in text
    assert peer_status(w, "moscow")["link"] != "up"
    written = [e["kind"] for e in entries_since(w, entries_before) if not line_event(e)]
    assert written == [], "a connection that never came up journals nothing"
    assert not any(e["kind"] == "link.down" for e in entries_since(w, entries_before))
    arena.deliver_from_moscow("after the silent hang-up")
    assert_journal_verifies(w)


# -- 3. the authenticated peer misbehaving -----------------------------------------------------


def _truncated(link: RawLink, arena: Arena) -> None:
    frame = encode_frame({"t": "env", "seq": 99, "e": b"x" * 1000})
    link.send_raw(frame[:600])
    link.close()  # mid-frame


def _oversize(link: RawLink, arena: Arena) -> None:
    link.send_raw((MAX_FRAME_BYTES + 1).to_bytes(4, "big") + b"\x01")


def _max_length(link: RawLink, arena: Arena) -> None:
    link.send_raw(b"\xff\xff\xff\xff\x01")


def _wire_version(link: RawLink, arena: Arena) -> None:
    body = pack({"t": "ping", "n": 1})
    link.send_raw((len(body) + 1).to_bytes(4, "big") + b"\x07" + body)


def _garbage_msgpack(link: RawLink, arena: Arena) -> None:
    body = b"\xc1\xc1 definitely not msgpack \xff\xff"
    link.send_raw((len(body) + 1).to_bytes(4, "big") + b"\x01" + body)


def _trailing_bytes(link: RawLink, arena: Arena) -> None:
    body = pack({"t": "ping", "n": 1}) + b"\x00"
    link.send_raw((len(body) + 1).to_bytes(4, "big") + b"\x01" + body)


def _broken_signature(link: RawLink, arena: Arena) -> None:
    seq, sealed = forge_next_envelope(arena)
    link.send({"t": "env", "seq": seq, "e": _flip_signature(sealed)})


def _altered_ciphertext(link: RawLink, arena: Arena) -> None:
    seq, sealed = forge_next_envelope(arena)
    link.send({"t": "env", "seq": seq, "e": _flip_body(sealed)})


def _replay_under_new_seq(link: RawLink, arena: Arena) -> None:
    link.send({"t": "env", "seq": _in_upto(arena.washington, "moscow") + 1, "e": moscow_sent_envelope(arena, 1)})


def _send(frame: dict[str, Any]) -> Callable[[RawLink, Arena], None]:
    return lambda link, arena: link.send(frame)


BAD_LINK_INPUT: dict[str, tuple[Callable[[RawLink, Arena], None], str | None]] = {
    # case: (what moscow's keys send after a proper hello, what washington must say)
    "truncated frame, then close": (_truncated, None),
    "length prefix over the cap": (_oversize, f"frame length {MAX_FRAME_BYTES + 1} exceeds the cap"),
    "length prefix of 4 GiB": (_max_length, "frame length 4294967295 exceeds the cap"),
    "unknown wire version": (_wire_version, "unknown wire version 7; this terminal speaks 1"),
    "garbage msgpack": (_garbage_msgpack, "malformed msgpack"),
    "msgpack with trailing bytes": (_trailing_bytes, "malformed msgpack"),
    "frame without a type": (_send({"seq": 1}), "frame has no type field 't'"),
    "unknown frame type": (_send({"t": "launch"}), "unexpected 'launch' frame in state open"),
    "a second hello": (
        _send({"t": "hello", "pv": 1, "name": "moscow", "cursor": 0, "receipt": None}),
        "unexpected 'hello' frame in state open",
    ),
    "envelope that is not bytes": (_send({"t": "env", "seq": 1, "e": "text"}), "field 'e' must be bytes"),
    "envelope with a broken signature": (_broken_signature, "signature does not verify"),
    "envelope with an altered ciphertext": (_altered_ciphertext, "signature does not verify"),
    "old envelope replayed under the next seq": (_replay_under_new_seq, "expected moscow->washington seq"),
}


def _assert_cut_off(arena: Arena, link: RawLink, mark: int, expected: str | None) -> None:
    """The connection is closed with ``expected`` as its reason, on the wire and in the log;
    the peer's link is down; the terminal is otherwise unmoved."""
    w = arena.washington
    try:
        if expected is not None:
            reason = link.expect_bye()
            assert expected in reason, f"washington's bye said {reason!r}"
    finally:
        link.close()
    down = "path primary to moscow down: "
    text = wait_log(w, mark, down, *([expected] if expected else []))
    print(text)
    line = text[text.index(down) :].splitlines()[0]
    if expected is None:  # the peer hung up mid-frame: the reason is the hang-up itself
        assert "closed by the peer" in line or "connection lost" in line, line
    else:
        assert expected in line, line
    assert "Traceback" not in text
    # "down", or "refused" should a dial of the (stopped) real moscow have failed mid-handshake
    wait_for(lambda: peer_status(w, "moscow")["link"] != "up", 5, "washington to drop the link")


@pytest.mark.parametrize("case", list(BAD_LINK_INPUT))
def test_authenticated_peer_sending_bad_frames_is_cut_off(arena: Arena, case: str) -> None:
    w = arena.washington
    attack, expected = BAD_LINK_INPUT[case]
    before = journal_counts(w)
    link = connect_as_moscow(arena)
    mark = len(w.log())
    try:
        attack(link, arena)
    except BaseException:
        link.close()
        raise
    _assert_cut_off(arena, link, mark, expected)
    assert journal_counts(w) == before  # nothing of it was journaled
    arena.deliver_from_moscow(f"after: {case}")
    assert_journal_verifies(w)


def _hello(**changes: Any) -> dict[str, Any]:
    return {"t": "hello", "pv": 1, "name": "moscow", "cursor": 0, "receipt": None, **changes}


def _foreign_receipt() -> bytes:
    """A well-formed delivery receipt from washington's peer 'moscow', signed by someone else."""
    return env.make_receipt(
        Identity.generate("moscow"), kind=ReceiptKind.DELIVERED, sender="moscow", recipient="washington",
        upto=1, stream_hash=bytes(32), at_ns=time.time_ns(),
    )  # fmt: skip


BAD_HELLOS: dict[str, tuple[dict[str, Any], str]] = {
    # case: (moscow's first frame, what washington must say)
    "hello under another name": (
        _hello(name="beijing"),
        "introduced itself as 'beijing', but its key is paired as 'moscow'",
    ),
    "hello of protocol version 2": (_hello(pv=2), "peer speaks protocol version 2; this terminal speaks 1"),
    "hello with a negative cursor": (_hello(cursor=-1), "field 'cursor' must be a non-negative integer"),
    "hello claiming more than was ever sent": (
        _hello(cursor=1_000_000),
        "peer claims to have sequence 1000000 but only",
    ),
    "hello with a receipt that is not bytes": (_hello(receipt="ok"), "field 'receipt' must be bytes or nil"),
    "hello with a receipt that is not signed": (
        _hello(receipt=pack({"b": b"x", "s": b"y"})),
        "receipt has a malformed body or signature",
    ),
    "hello with a receipt signed by another key": (
        _hello(receipt=_foreign_receipt()),
        "receipt signature does not verify against the paired key",
    ),
    "envelope before hello": ({"t": "env", "seq": 1, "e": b"x"}, "unexpected 'env' frame in state await-hello"),
}


@pytest.mark.parametrize("case", list(BAD_HELLOS))
def test_authenticated_peer_with_a_bad_hello_is_cut_off(arena: Arena, case: str) -> None:
    w = arena.washington
    first, expected = BAD_HELLOS[case]
    before = journal_counts(w)
    mark = len(w.log())
    link = RawLink(w.port, arena.moscow_identity, arena.root)
    try:
        link.send(first)
        reason = link.expect_bye()
    finally:
        link.close()
    assert expected in reason, f"washington's bye said {reason!r}"
    text = wait_log(w, mark, expected)
    print(text)
    assert "Traceback" not in text
    wait_for(lambda: peer_status(w, "moscow")["link"] != "up", 5, "washington to drop the link")
    assert journal_counts(w) == before
    arena.deliver_from_moscow(f"after: {case}")
    assert_journal_verifies(w)


def test_replayed_envelope_is_dropped_and_answered_with_a_receipt(arena: Arena) -> None:
    w = arena.washington
    before = journal_counts(w)
    entries_before = entry_count(w)
    upto = _in_upto(w, "moscow")
    replay = moscow_sent_envelope(arena, 1)
    link = connect_as_moscow(arena)
    try:
        link.send({"t": "env", "seq": 1, "e": replay})
        receipt = env.open_receipt(link.read_until("rcpt")["r"], arena.washington_key)
        assert receipt.kind is ReceiptKind.DELIVERED
        assert (receipt.sender, receipt.recipient, receipt.upto) == ("washington", "moscow", upto)
        link.send({"t": "ping", "n": 4242})  # the link is still open: the replay was just dropped
        assert link.read_until("pong") == {"t": "pong", "n": 4242}
        # Asked over the control socket from this process: a `hotline status` subprocess takes
        # ~0.4 s, and this raw link answers no heartbeat meanwhile (washington drops it at 0.6 s).
        assert w.link_up("moscow")
    finally:
        link.close()
    assert journal_counts(w) == before  # no second inbox row, no second message.received entry
    written = [(e["kind"], e["body"]) for e in entries_since(w, entries_before) if not line_event(e)]
    assert written == [], "a replay must add no message or receipt entry"
    assert _in_upto(w, "moscow") == upto
    arena.deliver_from_moscow("after the replay")
    assert_journal_verifies(w)


def test_envelope_from_the_future_is_dropped_and_answered_with_a_resume(arena: Arena) -> None:
    w = arena.washington
    before = journal_counts(w)
    upto = _in_upto(w, "moscow")
    link = connect_as_moscow(arena)
    try:
        link.send({"t": "env", "seq": upto + 5, "e": moscow_sent_envelope(arena, 1)})
        assert link.read_until("resume") == {"t": "resume", "cursor": upto}  # "send from upto + 1"
        link.send({"t": "ping", "n": 7})
        assert link.read_until("pong") == {"t": "pong", "n": 7}
    finally:
        link.close()
    assert journal_counts(w) == before
    arena.deliver_from_moscow("after an envelope from the future")
    assert_journal_verifies(w)


# -- reasons that say nothing ----------------------------------------------------------------


def test_malformed_msgpack_reason_is_not_empty() -> None:
    from hotline.core.errors import RemoteProtocolError

    with pytest.raises(RemoteProtocolError) as caught:
        unpack(b"\xc1")  # 0xc1 is never used in msgpack
    assert str(caught.value).removeprefix("malformed msgpack:").strip()


def test_connection_closed_during_the_handshake_is_logged_with_a_reason(arena: Arena) -> None:
    w = arena.washington
    mark = len(w.log())
    with socket.create_connection(("127.0.0.1", w.port), timeout=5) as s:
        prefix = f"refused an incoming connection from 127.0.0.1:{s.getsockname()[1]}:"
    text = wait_log(w, mark, prefix)
    assert w.status()["running"] is True
    reason = text[text.index(prefix) + len(prefix) :].splitlines()[0].strip()
    assert reason, "the log line gives no reason"


def test_hello_refused_for_its_cursor_is_not_recorded_as_link_up(arena: Arena) -> None:
    w = arena.washington
    n = entry_count(w)
    link = RawLink(w.port, arena.moscow_identity, arena.root)
    try:
        link.send(_hello(cursor=1_000_000))
        assert "peer claims to have sequence 1000000" in link.expect_bye()
    finally:
        link.close()

    wait_for(lambda: any(e["kind"] == "link.refused" for e in entries_since(w, n)), 5, "the refusal to be journaled")
    assert [e for e in entries_since(w, n) if e["kind"] == "link.up"] == []
    assert [e for e in entries_since(w, n) if e["kind"] == "alarm.cleared"] == []


# -- 4. the right name and address, the wrong key ---------------------------------------------


def test_impostor_with_the_peers_name_and_address_is_refused(paired: tuple[Terminal, Terminal], tmp_path: Path) -> None:
    w, m = paired
    impostor = Terminal(tmp_path / "impostor", "moscow", port=m.port)
    try:
        impostor.init()
        impostor.pair_with(w)  # it knows washington's card, so it dials washington too
        real_fp = ContactCard.from_json(m.card()).fingerprint
        fake_fp = ContactCard.from_json(impostor.card()).fingerprint
        assert real_fp != fake_fp
        w.start()
        mark = len(w.log())
        impostor.start()
        status = wait_for(
            lambda: (p := peer_status(w, "moscow"))["link"] == "refused" and p, 15, "washington to refuse the impostor"
        )
        reason = status["refused"]
        for fragment in (f"presented identity key {fake_fp}", f"not the key {real_fp}", "re-pair with `hotline pair`"):
            assert fragment in reason, reason
        wait_log(w, mark, f"refused link to moscow: peer 'moscow' at 127.0.0.1:{m.port} presented identity key")
        # ...and the impostor's own dial to washington fails its TLS handshake.
        wait_log(w, mark, "refused an incoming connection from", "certificate verify failed")
        assert any(a["kind"] == "peer-key-changed" for a in w.cli_json("status")["alarms"])
        refused = [
            json.loads(line)
            for line in w.cli("journal", "export").stdout.splitlines()
            if json.loads(line)["kind"] == "link.refused"
        ]
        assert refused and refused[0]["peer"] == "moscow" and fake_fp in refused[0]["body"]["reason"]
        assert len(refused) == 1  # journaled once, not once per redial
        assert journal_counts(w) == (0, 0)
        assert impostor.stop() == 0
    finally:
        if impostor.proc is not None and impostor.proc.poll() is None:
            impostor.proc.kill()
            impostor.proc.wait()
    m.start()
    w.wait_link("moscow")
    with m.client() as c:
        c.request("send", to="washington", body="It is really me", wait="delivered")
    with w.client() as c:
        c.request("send", to="moscow", body="Welcome back", wait="delivered")
    moscow_status = peer_status(w, "moscow")
    assert moscow_status["link"] == "up" and moscow_status["refused"] is None
    assert not any(a["kind"] == "peer-key-changed" for a in w.cli_json("status")["alarms"])
    assert [msg["body"] for msg in w.cli_json("inbox")["messages"]] == ["It is really me"]
    for t in (w, m):
        assert t.stop() == 0
        assert_journal_verifies(t)


# -- 5. a journal altered on disk ----------------------------------------------------------------


def _copy_home(t: Terminal, root: Path) -> Terminal:
    """A stopped terminal's home, copied, so a test can damage it freely."""
    assert t.proc is None
    shutil.copytree(t.home, root / t.name)
    return Terminal(root, t.name)


def _verify_fails(t: Terminal) -> str:
    result = t.cli("journal", "verify", check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "journal FAILED verification" in result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_tampered_journal_entry_is_named_by_verify(arena: Arena, tmp_path: Path) -> None:
    t = _copy_home(arena.moscow, tmp_path / "edit")
    assert_journal_verifies(t)
    db = sqlite3.connect(t.home / "journal.sqlite")
    seq, body = db.execute(
        "SELECT seq, body FROM entries WHERE kind = 'message.received' ORDER BY seq LIMIT 1"
    ).fetchone()
    fields = unpack(body)
    assert fields["body"] == "Setup: washington to moscow"
    fields["body"] = "Setup: washington to moscow. We accept your terms."
    db.execute("DROP TRIGGER entries_no_update")
    db.execute("UPDATE entries SET body = ? WHERE seq = ?", (pack(fields), seq))
    db.commit()
    db.close()
    stderr = _verify_fails(t)
    assert f"entry {seq} (message.received): hash does not match its contents: the entry was altered" in stderr


def test_tampered_entry_with_a_recomputed_hash_breaks_the_next_link(arena: Arena, tmp_path: Path) -> None:
    t = _copy_home(arena.moscow, tmp_path / "rehash")
    db = sqlite3.connect(t.home / "journal.sqlite")
    seq, at_ns, kind, peer, body, prev = db.execute(
        "SELECT seq, at_ns, kind, peer, body, prev FROM entries WHERE kind = 'message.received' ORDER BY seq LIMIT 1"
    ).fetchone()
    fields = unpack(body)
    fields["body"] = "Altered, and the entry's own hash recomputed to match."
    new_body = pack(fields)
    db.execute("DROP TRIGGER entries_no_update")
    db.execute(
        "UPDATE entries SET body = ?, hash = ? WHERE seq = ?",
        (new_body, entry_hash(prev, seq, at_ns, kind, peer, new_body), seq),
    )
    db.commit()
    db.close()
    stderr = _verify_fails(t)
    assert f"entry {seq + 1} (" in stderr and "does not link to the entry before it" in stderr


def test_deleted_middle_entry_is_named_by_verify(arena: Arena, tmp_path: Path) -> None:
    t = _copy_home(arena.moscow, tmp_path / "delete")
    db = sqlite3.connect(t.home / "journal.sqlite")
    (count,) = db.execute("SELECT count(*) FROM entries").fetchone()
    assert count >= 5
    victim = count // 2
    db.execute("DROP TRIGGER entries_no_delete")
    db.execute("DELETE FROM entries WHERE seq = ?", (victim,))
    db.commit()
    db.close()
    stderr = _verify_fails(t)
    assert f"entry {victim + 1} (" in stderr
    assert f"sequence gap: expected entry {victim}" in stderr
    assert "does not link to the entry before it" in stderr


# -- 6. corrupt contact cards --------------------------------------------------------------------


def _card_variants(good: str) -> dict[str, tuple[bytes, str]]:
    doc = json.loads(good)
    flipped = dict(doc)
    sig = bytearray(base64.b64decode(doc["signature"]))
    sig[31] ^= 0x01
    flipped["signature"] = base64.b64encode(bytes(sig)).decode()
    renamed = {**doc, "name": "moscow"}  # a stranger's card passed off as the paired peer's
    return {
        "one byte of the signature flipped": (json.dumps(flipped).encode(), "card signature does not verify"),
        "name changed": (json.dumps(renamed).encode(), "card signature does not verify"),
        "truncated": (good.encode()[: len(good) // 2], "card is not valid JSON"),
        "not JSON": (b"this is not a card, just some words\n", "card is not valid JSON"),
        "binary": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "card is not UTF-8 text"),
        "100 KiB": (good.encode() + b" " * (100 * 1024), "card is larger than 64 KiB"),
        "empty": (b"", "card is not valid JSON"),
    }


def test_corrupt_contact_cards_are_refused(arena: Arena, tmp_path: Path) -> None:
    w = arena.washington
    stranger = Identity.generate("beijing")
    good = make_card(stranger, [Address(path="primary", host="127.0.0.1", port=free_port())], "2026-11-24T18:00:00Z")
    assert ContactCard.from_json(good.to_json()) == good  # the pristine card is fine: the damage is what fails
    peers_before = w.cli_json("peers")
    entries_before = entry_count(w)
    variants = _card_variants(good.to_json())
    variants["washington's own card"] = (w.card().encode(), "that is this terminal's own card")
    for what, (data, expected) in variants.items():
        path = tmp_path / f"{what.replace(' ', '-')}.card"
        path.write_bytes(data)
        result = w.cli("pair", str(path), check=False)
        assert result.returncode == 1, f"{what}: {result.stdout}"
        assert result.stderr.startswith("hotline: error: "), f"{what}: {result.stderr}"
        assert expected in result.stderr, f"{what}: {result.stderr}"
        assert "Traceback" not in result.stderr
        assert "safety number" not in result.stdout
    assert w.cli_json("peers") == peers_before
    written = [(e["kind"], e["body"]) for e in entries_since(w, entries_before) if not line_event(e)]
    assert written == [], "a refused card must not touch the journal"
    arena.deliver_from_moscow("after the corrupt cards")
    assert_journal_verifies(w)


# -- 7. the wrong passphrase -----------------------------------------------------------------------


def test_wrong_or_missing_passphrase(
    make_terminal: Callable[..., Terminal], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOTLINE_PASSPHRASE", raising=False)
    t = make_terminal("ottawa", passphrase="correct horse battery staple")
    t.init()
    card = tmp_path / "beijing.card"
    stranger = Identity.generate("beijing")
    card.write_text(
        make_card(
            stranger, [Address(path="primary", host="127.0.0.1", port=free_port())], "2026-11-24T18:00:00Z"
        ).to_json()
    )
    entries_before = entry_count(t)

    def refused(expected: str) -> None:
        for args in (("run",), ("pair", str(card))):
            result = t.cli(*args, check=False, input="")  # stdin is a pipe, not a tty
            assert result.returncode == 1, f"{args}: {result.stdout}{result.stderr}"
            assert expected in result.stderr, result.stderr
            assert result.stderr.startswith("hotline: error: ")
            assert "Traceback" not in result.stderr

    t.passphrase = "correct horse battery stapler"
    refused("wrong passphrase for keys file")
    t.passphrase = None
    refused("passphrase-protected: set HOTLINE_PASSPHRASE")
    assert t.cli_json("peers") == {"peers": []}
    assert entry_count(t) == entries_before
    t.passphrase = "correct horse battery staple"
    t.start()  # the right passphrase still opens it
    assert t.status()["running"] is True
    assert t.stop() == 0
    assert_journal_verifies(t)
