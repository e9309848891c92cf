"""Two engines back to back in memory, with a fake clock and real journals.

This is the whole terminal minus asyncio and sockets: the ratchet, signatures,
delivery, the group commit and SQLite. Hypothesis drives sends, partial
deliveries, dropped connections and crashes (an engine thrown away and rebuilt
from its journal, which is exactly what a SIGKILL leaves behind, because the
engine never sends anything it has not committed). Whatever happens, once the
faults stop every accepted message arrives exactly once, in order, and both
journals verify.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.core.model import Address, MessageContent, Precedence
from hotline.crypto.identity import Identity, make_card
from hotline.engine.engine import Engine
from hotline.engine.pairing import pair
from hotline.engine.peer import Link
from hotline.home.config import Config
from hotline.storage.audit import verify
from hotline.storage.sqlite.journal import Journal
from hotline.storage.sqlite.store import Store


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def wall_ns(self) -> int:
        return int(self.now * 1e9) + 1_700_000_000_000_000_000


@dataclass
class Pipe:
    """One direction of an in-memory connection: what one side wrote, not yet read."""

    chunks: list[bytes] = field(default_factory=list)
    closed: bool = False

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.chunks.append(data)

    def close(self) -> None:
        self.closed = True


class Side:
    def __init__(self, name: str, port: int, root: Path, clock: FakeClock) -> None:
        self.name = name
        self.path = root / f"{name}.sqlite"
        self.identity = Identity.generate(name)
        self.clock = clock
        self.config = Config(name=name, listen=(Address("primary", "127.0.0.1", port),), synchronous="NORMAL",
                             window=8, test_interval_s=10_000.0)  # fmt: skip
        self.card = make_card(self.identity, self.config.listen, "2026-11-24T00:00:00Z")
        journal = Journal(self.path, synchronous="NORMAL")
        with journal.transaction():
            Store(journal).record_created(name, self.identity.public_key, self.identity.dh_public,
                                          self.identity.cert_der, clock.wall_ns())  # fmt: skip
        journal.close()
        self.engine: Engine | None = None
        self.dirty = False
        self.accepted: list[str] = []
        self.counter = 0

    def start(self) -> Engine:
        self.journal = Journal(self.path, synchronous="NORMAL")
        self.engine = Engine(identity=self.identity, config=self.config, journal=self.journal,
                             store=Store(self.journal), clock=self.clock, request_flush=self._dirty)  # fmt: skip
        self.engine.flush()
        return self.engine

    def _dirty(self) -> None:
        self.dirty = True

    def crash(self) -> None:
        """Lose everything not committed: throw the engine away, keep the journal file."""
        self.engine = None
        self.journal.close()

    def send(self, to: str, n: int, precedence: Precedence) -> None:
        assert self.engine is not None
        clock_ns = self.clock.wall_ns()
        for _ in range(n):
            self.counter += 1
            mid = f"0190f2a0-0000-7000-8000-{self.counter + 100000 * (self.name == 'moscow'):012d}"
            content = MessageContent(id=mid, sender=self.name, recipient=to, precedence=precedence, lang="en",
                                     subject="", body=f"{self.name} {mid}", created_at_ns=clock_ns)  # fmt: skip
            self.engine.submit(content, functools.partial(self._accepted, mid))

    def _accepted(self, mid: str, _error: Exception | None, created: bool) -> None:
        if created:
            self.accepted.append(mid)

    def settle(self) -> None:
        while self.dirty and self.engine is not None:
            self.dirty = False
            self.engine.flush()

    def inbox(self) -> list[str]:
        rows = self.journal.execute(
            "SELECT id FROM messages WHERE direction = 'in' AND kind = 'message' ORDER BY seq"
        ).fetchall()
        return [r[0] for r in rows]

    def sealed_order(self) -> list[str]:
        rows = self.journal.execute(
            "SELECT id FROM messages WHERE direction = 'out' AND kind = 'message' ORDER BY seq"
        ).fetchall()
        return [r[0] for r in rows]


def move_chunks(
    src: Pipe, dst: Side, dst_link: Link, max_chunks: int, open_: Callable[[], bool] = lambda: True
) -> bool:
    """Hand up to ``max_chunks`` writes of ``src`` to ``dst``'s end of the link, while ``dst`` runs and
    the link is ``open_``; whether anything moved."""
    moved = False
    for _ in range(max_chunks):
        if not src.chunks or dst.engine is None or not open_():
            break
        dst.engine.data_received(dst_link, src.chunks.pop(0))
        moved = True
    return moved


class World:
    def __init__(self, root: Path) -> None:
        self.clock = FakeClock()
        self.a = Side("washington", 7401, root, self.clock)
        self.b = Side("moscow", 7402, root, self.clock)
        for me, other in ((self.a, self.b), (self.b, self.a)):
            journal = Journal(me.path, synchronous="NORMAL")
            pair(Store(journal), me.identity, other.card, self.clock.wall_ns())
            journal.close()
        self.a.start()
        self.b.start()
        self.links: tuple[Link, Pipe, Link, Pipe] | None = None

    def connect(self) -> None:
        self.disconnect()
        assert self.a.engine is not None and self.b.engine is not None
        pa, pb = Pipe(), Pipe()
        la = self.a.engine.link_established("moscow", pa, dialed=True, address="mem", path="primary")
        lb = self.b.engine.link_established("washington", pb, dialed=False, address="mem", path="primary")
        assert la is not None and lb is not None
        self.links = (la, pa, lb, pb)

    def disconnect(self) -> None:
        if self.links is None:
            return
        la, pa, lb, pb = self.links
        pa.closed = pb.closed = True
        if self.a.engine is not None:
            self.a.engine.connection_lost(la, "test: connection dropped")
        if self.b.engine is not None:
            self.b.engine.connection_lost(lb, "test: connection dropped")
        self.links = None
        self.settle()

    def handover(self) -> None:
        """Both sides dialled at once: a newer connection replaces the current one on the same
        path, and the shell reports the old one lost afterwards."""
        assert self.links is not None and self.a.engine is not None and self.b.engine is not None
        old_a, _, old_b, _ = self.links
        pa, pb = Pipe(), Pipe()
        la = self.a.engine.link_established("moscow", pa, dialed=True, address="mem2", path="primary")
        lb = self.b.engine.link_established("washington", pb, dialed=False, address="mem2", path="primary")
        assert la is not None and lb is not None
        self.links = (la, pa, lb, pb)
        self.a.engine.connection_lost(old_a, "transport closed")
        self.b.engine.connection_lost(old_b, "transport closed")

    def deliver(self, max_chunks: int) -> bool:
        """Move up to ``max_chunks`` writes each way; False if nothing was in flight."""
        if self.links is None:
            return False
        la, pa, lb, pb = self.links
        moved = move_chunks(pa, self.b, lb, max_chunks) | move_chunks(pb, self.a, la, max_chunks)
        self.settle()
        return moved

    def deliver_all(self) -> None:
        """Move everything in flight, both ways, until nothing is left."""
        while self.deliver(100):
            pass

    def play(self, kind: str, who: str, n: int) -> bool:
        """One step of a property test's script, by side ``who`` ("a" or "b"); False if ``kind`` is
        not one of the steps every such test shares (the test plays its own)."""
        side = self.a if who == "a" else self.b
        if kind in ("send", "flash"):
            other = "moscow" if who == "a" else "washington"
            side.send(other, n, Precedence.FLASH if kind == "flash" else Precedence.ROUTINE)
            self.settle()
        elif kind == "deliver":
            self.deliver(n)
        elif kind == "connect":
            self.connect()
        elif kind == "drop":
            self.disconnect()
        elif kind == "crash":
            self.crash(side)
        elif kind == "tick":
            self.tick(n / 10)
        else:
            return False
        return True

    def drain(self) -> None:
        """Reconnect and move everything, with time passing for probes and heartbeats, until
        nothing is left in flight."""
        self.connect()
        for _ in range(10_000):
            if not self.deliver(100):
                self.tick(2.5)
                if not self.deliver(100):
                    break

    def assert_line_never_went_down(self) -> None:
        """No open alarm, and neither journal holds a link.down or a raised alarm."""
        for side in (self.a, self.b):
            assert side.engine is not None
            assert side.engine.supervisor.board.listing() == []
            kinds = [e.kind for e in side.journal.entries()]
            assert "link.down" not in kinds and "alarm.raised" not in kinds, (side.name, kinds)

    def settle(self) -> None:
        for _ in range(3):
            self.a.settle()
            self.b.settle()

    def crash(self, side: Side) -> None:
        self.disconnect()
        side.crash()
        side.start()

    def tick(self, seconds: float) -> None:
        """Let ``seconds`` pass as the terminal's own ticker does, 50 ms at a time (a longer step
        would look like a terminal held up, whose peers' silence is excused)."""
        end = self.clock.now + seconds
        while self.clock.now < end - 1e-9:
            self.clock.now = min(end, self.clock.now + 0.05)
            for side in (self.a, self.b):
                if side.engine is not None:
                    side.engine.tick()
        self.settle()


actions = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from("ab"), st.integers(1, 5)),
        st.tuples(st.just("flash"), st.sampled_from("ab"), st.just(1)),
        st.tuples(st.just("deliver"), st.just("a"), st.integers(1, 4)),
        st.tuples(st.just("connect"), st.just("a"), st.just(0)),
        st.tuples(st.just("drop"), st.just("a"), st.just(0)),
        st.tuples(st.just("crash"), st.sampled_from("ab"), st.just(0)),
        st.tuples(st.just("tick"), st.just("a"), st.integers(1, 5)),
    ),
    max_size=30,
)


@settings(max_examples=120, deadline=None)
@given(actions)
def test_engines_deliver_exactly_once_in_order_through_crashes(script: list[tuple[str, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        w.connect()
        for kind, who, n in script:
            assert w.play(kind, who, n), kind
        w.drain()
        for sender, receiver in ((w.a, w.b), (w.b, w.a)):
            assert receiver.inbox() == sender.sealed_order()  # exactly once, in the order sealed
            assert set(sender.sealed_order()) == set(sender.accepted)  # nothing accepted was lost
            state = sender.journal.execute(
                "SELECT count(*) FROM messages WHERE direction = 'out' AND state != 'delivered'"
            ).fetchone()[0]
            assert state == 0  # every receipt came back
        for side in (w.a, w.b):
            report = verify(side.journal)
            assert report.ok, report.problems
            side.journal.close()


def test_flash_is_sealed_before_queued_routine() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        w.a.send("moscow", 20, Precedence.ROUTINE)  # window 8: twelve stay queued
        w.settle()
        w.a.send("moscow", 1, Precedence.FLASH)
        w.settle()
        w.connect()
        w.deliver_all()
        order = w.b.inbox()
        flash_id = w.a.accepted[-1]
        assert order.index(flash_id) == 8  # right after the eight already in flight
        assert len(order) == 21


def test_read_then_acknowledged_receipts_reach_the_sender_once_each() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        w.connect()
        w.a.send("moscow", 1, Precedence.FLASH)
        w.deliver_all()
        (mid,) = w.b.inbox()
        assert w.b.engine is not None
        errors: list[Exception | None] = []
        w.b.engine.mark_read(mid, "alice", errors.append)
        w.b.engine.mark_read(mid, "alice", errors.append)  # opening it twice says nothing more
        w.b.settle()
        w.deliver_all()

        def sender_row() -> tuple[int | None, int | None, str | None]:
            row = w.a.journal.execute(
                "SELECT read_at_ns, acknowledged_at_ns, acknowledged_by FROM messages WHERE id = ?", (mid,)
            ).fetchone()
            return row[0], row[1], row[2]

        read_at, acked_at, _ = sender_row()
        assert read_at is not None and acked_at is None
        w.b.engine.acknowledge(mid, "alice", errors.append)
        w.b.settle()
        w.deliver_all()
        assert errors == [None, None, None]
        _, acked_at, acked_by = sender_row()
        assert acked_at is not None and acked_by == "alice"
        kinds = [
            e.decoded()["kind"] for e in w.a.journal.entries() if e.kind == "receipt.received" and e.peer == "moscow"
        ]
        assert kinds.count("read") == 1 and kinds.count("acknowledged") == 1, kinds


def test_a_newer_connection_on_the_same_path_is_a_handover_not_an_outage() -> None:
    """Both sides dial at once at every start: the connection that loses must not page anyone."""
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        w.connect()
        w.deliver_all()
        assert w.a.engine is not None and w.b.engine is not None
        w.a.send("moscow", 3, Precedence.ROUTINE)
        w.a.settle()  # sealed and written on the old connection, never delivered
        w.handover()
        w.deliver_all()
        w.a.send("moscow", 2, Precedence.ROUTINE)
        w.a.settle()
        w.deliver_all()
        assert len(w.b.inbox()) == 5, "messages in flight on the old connection are resent on the new one"
        w.assert_line_never_went_down()


def _moved_ahead_of_us(w: World) -> tuple[Link, Pipe, Link]:
    """washington takes a newer connection on the path and says bye (handover) on the old one;
    moscow reads that bye, and the old transport closing, before its own end of the newer
    connection is through its handshake: the order a real start-up race often gives."""
    assert w.links is not None and w.a.engine is not None and w.b.engine is not None
    _, old_pa, old_b, _ = w.links
    pa = Pipe()
    la = w.a.engine.link_established("moscow", pa, dialed=True, address="mem2", path="primary")
    assert la is not None
    for chunk in old_pa.chunks:
        w.b.engine.data_received(old_b, chunk)
    old_pa.chunks.clear()
    w.b.engine.connection_lost(old_b, "transport closed")
    w.settle()
    return la, pa, old_b


def test_a_peer_that_moves_to_a_newer_connection_first_raises_no_alarm() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        w.connect()
        w.deliver_all()
        la, pa, _ = _moved_ahead_of_us(w)
        w.tick(0.2)  # moscow's end of the newer connection is still in its handshake
        assert w.b.engine is not None
        assert w.b.engine.status()["peers"][0]["paths"][0]["state"] == "up"
        pb = Pipe()
        lb = w.b.engine.link_established("washington", pb, dialed=False, address="mem2", path="primary")
        assert lb is not None
        w.links = (la, pa, lb, pb)
        w.a.send("moscow", 2, Precedence.ROUTINE)
        w.b.send("washington", 2, Precedence.ROUTINE)
        w.settle()
        w.deliver_all()
        assert len(w.b.inbox()) == 2 and len(w.a.inbox()) == 2
        w.assert_line_never_went_down()


def test_a_handover_whose_newer_connection_never_comes_is_an_outage_after_all() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        w.connect()
        w.deliver_all()
        _moved_ahead_of_us(w)
        w.links = None  # the newer connection never reaches moscow
        w.tick(0.3)
        assert w.b.engine is not None and w.b.engine.supervisor.board.listing() == []
        w.tick(0.4)  # past three heartbeat intervals
        alarms = {(a["kind"], a["subject"]) for a in w.b.engine.supervisor.board.listing()}
        assert ("path-down", "primary") in alarms and ("all-paths-down", "") in alarms
        downs = [e.decoded() for e in w.b.journal.entries() if e.kind == "link.down"]
        assert [d["reason"] for d in downs] == ["the peer moved this path to a newer connection, which never came up"]


def test_a_terminal_held_up_itself_does_not_blame_its_peer_for_the_silence() -> None:
    """A second spent journaling a large message is a second nobody read the sockets: the peer's
    pings are waiting there, unread. Its silence counts only from when we listen again."""
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        w.connect()
        w.deliver_all()
        assert w.a.engine is not None
        w.a.engine.tick()
        w.clock.now += 1.0  # washington's loop was stuck for a second
        w.a.engine.tick()
        assert w.a.engine.status()["peers"][0]["paths"][0]["state"] == "up"
        for _ in range(13):  # but a peer that stays silent once we listen is dead 0.6 s later
            w.clock.now += 0.05
            w.a.engine.tick()
        assert w.a.engine.status()["peers"][0]["paths"][0]["state"] == "down"


def test_a_test_message_in_flight_at_a_handover_raises_no_alarm() -> None:
    """The first test goes out on the connection a simultaneous dial then replaces; its answer
    cannot come back on a closed connection. The path is tested afresh on the new one, and
    nothing pages anyone 30 s later (the alarm would stay open until the next hourly test)."""
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        w.connect()
        w.deliver_all()
        assert w.a.engine is not None and w.b.engine is not None
        w.tick(0.05)  # a path is tested as soon as it is up: the test leaves on this connection
        assert w.a.engine.supervisor._pending_tests, "the first test is in flight when the handover comes"
        w.handover()
        for _ in range(400):  # 40 s of heartbeats, well past the 30 s test timeout
            w.tick(0.1)
            w.deliver_all()
        for side in (w.a, w.b):
            assert side.engine is not None
            assert side.engine.supervisor.board.listing() == []
            tests = [e.decoded() for e in side.journal.entries() if e.kind == "link.test"]
            assert tests and all(t["ok"] for t in tests), tests
