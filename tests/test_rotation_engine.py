"""Key rotation between two engines in memory (``engine.trust``): every message delivered once across
the rotation, and an envelope or receipt signed by the stale key after it refused, never journaled."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.core.errors import SignatureError
from hotline.core.model import MessageContent, Precedence, ReceiptKind
from hotline.core.wire import encode_frame
from hotline.crypto import envelope as env
from hotline.crypto.identity import Identity, make_card
from hotline.crypto.ratchet import Ratchet
from hotline.crypto.succession import make_succession
from hotline.storage.audit import verify
from test_engine import Side, World


def _rotate(world: World, side: Side | None = None, n: int = 1) -> Identity:
    """A side (washington unless named) rotates its key, as `hotline rotate-key` does on a running terminal."""
    side = side or world.a
    assert side.engine is not None
    old = side.engine.identity
    new = replace(Identity.generate(old.name), state_key=old.state_key)
    card = make_card(new, side.config.listen, "2026-12-04T00:00:00Z")
    side.engine.rotate(new, make_succession(old, card, n=n, at_ns=world.clock.wall_ns()))
    side.identity = new
    return old


def _signed_by(envelope: bytes, key: bytes) -> bool:
    try:
        env.open_envelope(envelope, key)
    except SignatureError:
        return False
    return True


def _kinds(world: World) -> list[str]:
    return [e.kind for e in world.b.journal.entries()]


def test_rotation_mid_stream_delivers_everything_once_and_verifies(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.connect()
    w.deliver_all()
    w.a.send("moscow", 30, Precedence.ROUTINE)
    w.b.send("washington", 10, Precedence.ROUTINE)
    w.settle()
    w.disconnect()  # sealed and signed by the old key, and lost with the link
    old = _rotate(w)
    w.a.send("moscow", 30, Precedence.ROUTINE)
    w.settle()
    w.connect()  # the succession first, then the old key's envelopes again, then the new key's
    w.deliver_all()
    w.disconnect()
    w.connect()  # a new link: the succession is sent again, and recognised
    w.deliver_all()
    assert w.b.inbox() == w.a.sealed_order() and len(set(w.b.inbox())) == 60
    assert len(set(w.a.inbox())) == 10
    assert w.b.engine is not None and w.b.engine.peers["washington"].identity_key != old.public_key
    alarms = [a for a in w.b.engine.alarms() if a["kind"] == "peer-key-rotated"]
    assert len(alarms) == 1
    assert _kinds(w).count("peer.succeeded") == 1
    entries = list(w.b.journal.entries())
    succeeded = next(i for i, e in enumerate(entries) if e.kind == "peer.succeeded")
    late = [e.decoded() for e in entries[succeeded:] if e.kind == "message.received"]
    old_after = [b for b in late if _signed_by(b["envelope"], old.public_key)]
    assert old_after and len(old_after) < len(late), "the old key's envelopes, sent again after it, still open"

    for side in (w.a, w.b):
        report = verify(side.journal)
        assert report.ok, report.problems


def test_stale_key_receipt_and_envelope_refused_and_not_journaled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = World(tmp_path)
    w.connect()
    w.a.send("moscow", 3, Precedence.ROUTINE)
    w.settle()
    w.deliver_all()
    old = _rotate(w)
    w.deliver_all()
    assert w.b.engine is not None and w.links is not None
    _, _, lb, _ = w.links
    before = _kinds(w)
    peer = w.b.engine.peers["washington"]

    # A receipt signed by the old key after the succession: refused by name, dropped, link kept.
    stale_receipt = env.make_receipt(old, kind=ReceiptKind.DELIVERED, sender="washington", recipient="moscow",
                                     upto=3, stream_hash=peer.inbound.stream_hash, at_ns=w.clock.wall_ns())  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="hotline.engine"):
        w.b.engine.data_received(lb, encode_frame({"t": "rcpt", "r": stale_receipt}))
        w.settle()
    assert "refused a receipt from washington" in caplog.text and "is stale" in caplog.text
    assert _kinds(w) == before, "nothing of it is journaled"

    # An envelope past the old key's last, signed by the old key: refused, the connection closed.
    content = MessageContent(id="0190f2a0-0000-7000-8000-999999999999", sender="washington", recipient="moscow",
                             precedence=Precedence.FLASH, lang="en", subject="", body="forged",
                             created_at_ns=1)  # fmt: skip
    throwaway = Ratchet.initiator(bytes(32), old.dh_key, w.b.identity.dh_public)
    seq = peer.inbound.upto + 1
    [sealed] = env.seal_batch(old, "washington", "moscow", [env.encrypt_body(throwaway, content, seq)])
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="hotline.engine"):
        w.b.engine.data_received(lb, encode_frame({"t": "env", "seq": seq, "e": sealed}))
        w.settle()
    assert f"envelope {seq} is signed by a stale key of washington" in caplog.text, caplog.text
    assert "message.received" not in _kinds(w)[len(before) :]
    assert content.id not in w.b.inbox()


def test_a_second_succession_from_the_old_key_is_refused_as_a_stolen_key(tmp_path: Path) -> None:
    """The old key hands the name to another key after the real rotation: someone else holds it."""
    w = World(tmp_path)
    w.connect()
    old = _rotate(w)
    w.deliver_all()
    assert w.b.engine is not None and w.links is not None
    pinned = w.b.engine.peers["washington"].identity_key
    thief = Identity.generate("washington")
    forged = make_succession(old, make_card(thief, w.a.config.listen, "2026-12-04T00:00:00Z"), n=1, at_ns=1)
    _, _, lb, _ = w.links
    w.b.engine.data_received(lb, encode_frame({"t": "succ", "s": forged, "upto": 0}))
    w.settle()
    assert w.b.engine.peers["washington"].identity_key == pinned, "the key accepted first stays pinned"
    changed = [a for a in w.b.engine.alarms() if a["kind"] == "peer-key-changed"]
    assert changed and "held by someone else" in str(changed[0]["detail"])
    assert "peer.succeeded" not in _kinds(w)[_kinds(w).index("peer.succeeded") + 1 :]


actions = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from("ab"), st.integers(1, 5)),
        st.tuples(st.just("deliver"), st.just("a"), st.integers(1, 4)),
        st.tuples(st.just("connect"), st.just("a"), st.just(0)),
        st.tuples(st.just("drop"), st.just("a"), st.just(0)),
        st.tuples(st.just("crash"), st.sampled_from("ab"), st.just(0)),
        st.tuples(st.just("rotate"), st.sampled_from("ab"), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(actions)
def test_rotations_at_any_point_lose_nothing_and_verify(script: list[tuple[str, str, int]]) -> None:
    """Rotations on either side, at any point among sends, cuts, reconnects and crashes: every message
    arrives exactly once, in order, each side ends up pinning the other's latest key, and both
    journals verify under the key history."""
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        w.connect()
        rotations = {"a": 0, "b": 0}
        for kind, who, n in script:
            if kind == "rotate":
                rotations[who] += 1
                _rotate(w, w.a if who == "a" else w.b, rotations[who])
                w.settle()
            else:
                assert w.play(kind, who, n), kind
        w.drain()
        for sender, receiver in ((w.a, w.b), (w.b, w.a)):
            assert receiver.inbox() == sender.sealed_order()
            assert set(sender.sealed_order()) == set(sender.accepted)
            assert receiver.engine is not None
            assert receiver.engine.peers[sender.name].identity_key == sender.identity.public_key
        for side in (w.a, w.b):
            report = verify(side.journal)
            assert report.ok, report.problems
            side.journal.close()
