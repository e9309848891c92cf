"""Restoring a terminal from a backup never reuses ratchet keys (issue 13), in memory.

The ``World`` of ``test_engine`` with one side's journal replaced by an older copy
(``Record.snapshot`` taken while it ran), as ``hotline restore`` leaves it, then
restarted: it re-keys before any envelope, and every message either side ever
journaled ends up exactly once at the other.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from hotline.core.errors import SignatureError
from hotline.core.model import EMPTY_STREAM_HASH, Precedence
from hotline.core.protocol import Connection, RekeyReceived
from hotline.core.rekey import plan_restart
from hotline.crypto import envelope as env
from hotline.crypto import rekey
from hotline.crypto.identity import Identity
from hotline.storage.audit import verify
from hotline.storage.sqlite.journal import Journal
from hotline.storage.sqlite.store import Store
from test_engine import Side, World


def _sealed_headers(side: Side) -> list[tuple[int, bytes, int, int]]:
    """(entry seq, header dh, pn, n) of every envelope this side sealed, in journal order."""
    out = []
    for entry in side.journal.entries():
        if entry.kind == "message.sealed":
            h = env.open_envelope(entry.decoded()["envelope"], side.identity.public_key).header
            out.append((entry.seq, h.dh, h.pn, h.n))
    return out


def _restore(side: Side, backup: Path, backup_ns: int, now_ns: int) -> None:
    """What `hotline restore` does to the journal: the older copy in place, every peer marked."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{side.path}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, side.path)
    journal = Journal(side.path, synchronous="NORMAL")
    with journal.transaction():
        assert Store(journal).mark_restored(backup_ns, str(backup), "test", now_ns) == ["moscow"]
    journal.close()


def _ids(side: Side, direction: str) -> list[str]:
    rows = side.journal.execute(
        "SELECT id FROM messages WHERE direction = ? AND kind = 'message'", (direction,)
    ).fetchall()
    return [r[0] for r in rows]


def test_restore_rekeys_before_any_envelope_and_loses_nothing(tmp_path: Path) -> None:
    w = World(tmp_path)
    a, b = w.a, w.b  # washington is restored; moscow is not
    w.connect()
    a.send("moscow", 5, Precedence.ROUTINE)
    b.send("washington", 5, Precedence.ROUTINE)
    w.settle()
    w.deliver_all()
    backup = tmp_path / "backup.sqlite"
    a.journal.reader().snapshot(backup)  # hot, while the engine runs
    backup_ns = w.clock.wall_ns()
    # After the backup: washington sends 4 (all reach moscow: lost to washington's journal only),
    # moscow sends 3 (washington loses them with the restore; moscow must send them again),
    # then moscow queues 2 while the line is down.
    a.send("moscow", 4, Precedence.ROUTINE)
    b.send("washington", 3, Precedence.FLASH)
    w.settle()
    w.deliver_all()
    w.disconnect()
    b.send("washington", 2, Precedence.ROUTINE)
    w.settle()
    a_ever, b_ever = set(_ids(a, "out")), set(_ids(b, "out"))
    assert len(a_ever) == 9 and len(b_ever) == 10
    old_keys = {dh for _, dh, _, _ in _sealed_headers(a)}

    a.crash()
    _restore(a, backup, backup_ns, w.clock.wall_ns())
    a.start()
    assert a.engine is not None and a.engine.peers["moscow"].restored_at == backup_ns
    a.send("moscow", 2, Precedence.IMMEDIATE)  # accepted while restored: held until the re-key
    w.settle()
    assert len(_sealed_headers(a)) == 5, "nothing sealed with the restored ratchet"
    w.connect()
    w.deliver_all()
    w.tick(3)
    w.deliver_all()

    entries = list(a.journal.entries())
    rekeyed = [e.seq for e in entries if e.kind == "peer.rekeyed"]
    assert len(rekeyed) == 1
    after = [h for h in _sealed_headers(a) if h[0] > backup_entries(backup)]
    assert after and all(seq > rekeyed[0] for seq, _, _, _ in after), "the re-key comes before any envelope"
    _, dh, pn, n = after[0]
    assert (pn, n) == (0, 0) and dh not in old_keys, "the first envelope after the restore uses a fresh chain"
    assert all(h[1] not in old_keys for h in after)

    a_ever |= set(_ids(a, "out"))
    b_ever |= set(_ids(b, "out"))
    assert len(a_ever) == 11
    assert sorted(_ids(b, "in")) == sorted(a_ever), "moscow holds every message washington ever journaled, once"
    assert sorted(_ids(a, "in")) == sorted(b_ever), "washington holds every message moscow ever journaled, once"
    for side in (a, b):
        states = side.journal.execute("SELECT DISTINCT state FROM messages WHERE direction = 'out'").fetchall()
        assert states == [("delivered",)], side.name
        report = verify(side.journal)
        assert report.ok, (side.name, report.problems)
    lost = [e.decoded() for e in entries if e.kind == "operator.action" and e.decoded()["action"] == "restore-lost"]
    assert len(lost) == 1 and "messages 6..9 that washington sent after it are held by moscow only" in lost[0]["text"]
    assert "restored-messages-lost" in [x["kind"] for x in a.engine.alarms()]
    assert b.engine is not None and "restored-messages-lost" not in [x["kind"] for x in b.engine.alarms()]
    assert not any(e.kind == "message.duplicate" for e in b.journal.entries())
    for side in (a, b):  # `send --wait` on any of them returns at once: each is delivered
        assert side.engine is not None
        woken: list[str] = []
        for message_id in _ids(side, "out"):
            side.engine.on_delivered(message_id, functools.partial(woken.append, message_id))
        assert sorted(woken) == sorted(_ids(side, "out")), side.name


def backup_entries(backup: Path) -> int:
    with Journal(backup, readonly=True) as j:
        return j.entry_count()


def test_a_restore_that_is_not_answered_sends_nothing_and_offers_again(tmp_path: Path) -> None:
    w = World(tmp_path)
    a = w.a
    w.connect()
    a.send("moscow", 2, Precedence.ROUTINE)
    w.settle()
    w.deliver_all()
    backup = tmp_path / "backup.sqlite"
    a.journal.reader().snapshot(backup)
    a.crash()
    _restore(a, backup, w.clock.wall_ns(), w.clock.wall_ns())
    a.start()
    w.connect()
    assert w.links is not None and a.engine is not None
    la, pa, _, pb = w.links
    for chunk in pb.chunks:  # moscow's hello reaches washington, which offers a re-key...
        a.engine.data_received(la, chunk)
    pb.chunks.clear()
    assert b"rekey" in b"".join(pa.chunks)
    pa.chunks.clear()  # ...and the offer is lost on the way
    a.send("moscow", 1, Precedence.FLASH)
    w.settle()
    w.tick(3)
    assert len(_sealed_headers(a)) == 2, "still nothing sealed: no answer yet"
    w.connect()  # the same offer again on the next connection; now it gets through
    w.deliver_all()
    w.tick(3)
    w.deliver_all()
    assert len(_ids(w.b, "in")) == 3
    for side in (w.a, w.b):
        assert verify(side.journal).ok


def test_a_forged_rekey_offer_is_refused() -> None:
    me, peer, stranger = Identity.generate("washington"), Identity.generate("moscow"), Identity.generate("x")
    forged = rekey.make_offer(stranger, sender="moscow", recipient="washington", nonce=bytes(16),
                              dh_public=bytes(range(32)), in_upto=0, in_sh=EMPTY_STREAM_HASH, out_upto=0,
                              restored_at=1)  # fmt: skip
    with pytest.raises(SignatureError):
        rekey.open_offer(forged, peer.public_key)
    good = rekey.make_offer(peer, sender="moscow", recipient="washington", nonce=bytes(16),
                            dh_public=bytes(range(32)), in_upto=3, in_sh=EMPTY_STREAM_HASH, out_upto=7,
                            restored_at=1)  # fmt: skip
    assert rekey.open_offer(good, peer.public_key).out_upto == 7
    assert me.public_key != peer.public_key


def test_rekey_frame_round_trips_through_the_connection() -> None:
    one = Connection(local_name="washington", peer_name="moscow", now=0.0)
    two = Connection(local_name="moscow", peer_name="washington", now=0.0)
    one.send_hello(0, None)
    two.send_hello(0, None)
    one.receive_data(two.data_to_send(), 0.0)
    two.receive_data(one.data_to_send(), 0.0)
    one.next_event(), two.next_event()
    one.send_rekey(b"offer")
    two.receive_data(one.data_to_send(), 0.0)
    assert two.next_event() == RekeyReceived(b"offer")


def test_plan_restart() -> None:
    h = bytes([7]) * 32
    assert plan_restart(our_out_upto=9, our_hash_at_peer_cursor=h, peer_in_upto=5, peer_in_sh=h,
                        we_were_restored=False) == (plan := plan_restart(our_out_upto=9, our_hash_at_peer_cursor=h,
                        peer_in_upto=5, peer_in_sh=h, we_were_restored=True))  # fmt: skip
    assert (plan.held, plan.lost, plan.same_stream) == (5, None, True)
    other = plan_restart(our_out_upto=9, our_hash_at_peer_cursor=h, peer_in_upto=5, peer_in_sh=bytes(32),
                         we_were_restored=False)  # fmt: skip
    assert (other.held, other.same_stream) == (0, False), "another stream: send all of it again"
    ahead = plan_restart(our_out_upto=5, our_hash_at_peer_cursor=None, peer_in_upto=9, peer_in_sh=h,
                         we_were_restored=True, our_out_sh=h, peer_hash_at_our_out=h)  # fmt: skip
    assert (ahead.held, ahead.lost) == (5, (6, 9))
    unconfirmed = plan_restart(our_out_upto=5, our_hash_at_peer_cursor=None, peer_in_upto=9, peer_in_sh=h,
                               we_were_restored=True, our_out_sh=h, peer_hash_at_our_out=None)  # fmt: skip
    assert (unconfirmed.held, unconfirmed.same_stream) == (0, False)


def test_a_message_the_restored_peer_held_unreceipted_wakes_its_waiter_at_the_re_key(tmp_path: Path) -> None:
    """moscow's two messages reached washington and were journaled there, but the receipt was lost
    and washington was then restored from a backup holding them: the re-key counts them delivered
    (the restored journal has them), and moscow's `--wait` on each returns then, as a receipt's would."""
    w = World(tmp_path)
    a, b = w.a, w.b
    w.connect()
    w.deliver_all()
    assert w.links is not None and a.engine is not None and b.engine is not None
    la, pa, _, pb = w.links
    b.send("washington", 2, Precedence.ROUTINE)
    b.settle()
    while pb.chunks:  # moscow -> washington only
        a.engine.data_received(la, pb.chunks.pop(0))
    a.settle()
    assert len(_ids(a, "in")) == 2
    pa.chunks.clear()  # washington's receipt is lost on the way
    woken: list[str] = []
    for message_id in _ids(b, "out"):
        b.engine.on_delivered(message_id, functools.partial(woken.append, message_id))
    assert woken == []
    backup = tmp_path / "backup.sqlite"
    a.journal.reader().snapshot(backup)
    backup_ns = w.clock.wall_ns()

    w.disconnect()
    a.crash()
    _restore(a, backup, backup_ns, w.clock.wall_ns())
    a.start()
    w.connect()
    w.deliver_all()
    w.tick(3)
    w.deliver_all()
    assert any(e.kind == "peer.rekeyed" for e in b.journal.entries())
    assert sorted(woken) == sorted(_ids(b, "out")), "each waiter answered at the re-key"
    assert sorted(_ids(a, "in")) == sorted(_ids(b, "out")), "washington holds each once"
