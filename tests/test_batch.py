"""Signed batches (issue 11): one signature per flush over a Merkle root, every envelope still provable alone."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hotline.core.errors import RemoteProtocolError, SignatureError
from hotline.core.model import MessageContent, Precedence
from hotline.crypto import envelope as env
from hotline.crypto import identity as identity_module
from hotline.crypto import merkle
from hotline.crypto.identity import Identity
from hotline.crypto.ratchet import Ratchet
from hotline.storage.audit import export_lines, verify
from test_engine import World

VECTORS = json.loads((Path(__file__).parent / "vectors" / "rfc6962_merkle.json").read_text())


def test_the_merkle_tree_matches_the_rfc_6962_reference_tree() -> None:
    leaves = [merkle.leaf_hash(bytes.fromhex(x)) for x in VECTORS["leaves"]]
    for n, expected in enumerate(VECTORS["roots"], start=1):
        assert merkle.root(leaves[:n]).hex() == expected
    for case in VECTORS["inclusion"]:
        size, index = case["size"], case["index"]
        assert [h.hex() for h in merkle.path(leaves[:size], index)] == case["path"]
        proof = [bytes.fromhex(h) for h in case["path"]]
        assert merkle.root_from_path(leaves[index], index, size, proof) == merkle.root(leaves[:size])
        assert merkle.root_from_path(leaves[index], index ^ 1, size, proof) != merkle.root(leaves[:size])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 100])
def test_every_path_of_every_batch_size_proves_its_leaf_and_no_other(size: int) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    root, paths = merkle.paths(leaves)
    assert root == merkle.root(leaves)
    for i, proof in enumerate(paths):
        assert proof == merkle.path(leaves, i)
        assert merkle.root_from_path(leaves[i], i, size, proof) == root
        if size > 1:
            assert merkle.root_from_path(leaves[(i + 1) % size], i, size, proof) != root
    assert merkle.root_from_path(leaves[0], size, size, paths[0]) is None  # outside the tree


@pytest.fixture(scope="module")
def keys() -> tuple[Identity, Identity]:
    return Identity.generate("washington"), Identity.generate("moscow")


def _batch(sender: Identity, n: int) -> list[bytes]:
    peer = X25519PrivateKey.generate().public_key().public_bytes_raw()
    ratchet = Ratchet.initiator(b"\x07" * 32, X25519PrivateKey.generate(), peer)  # any session will do
    bodies = []
    for seq in range(1, n + 1):
        content = MessageContent(id=f"0190f2a0-0000-7000-8000-{seq:012d}", sender="washington", recipient="moscow",
                                 precedence=Precedence.ROUTINE, lang="en", subject="", body=f"m{seq}",
                                 created_at_ns=1)  # fmt: skip
        bodies.append(env.encrypt_body(ratchet, content, seq))
    return env.seal_batch(sender, "washington", "moscow", bodies)


def test_a_batch_is_verified_once_and_each_envelope_against_its_root(
    keys: tuple[Identity, Identity], monkeypatch: pytest.MonkeyPatch
) -> None:
    washington, _ = keys
    batch = _batch(washington, 20)
    calls: list[bytes] = []
    real = identity_module.verify

    def counting(key: bytes, context: bytes, data: bytes, signature: bytes) -> None:
        calls.append(context)
        real(key, context, data, signature)

    monkeypatch.setattr(env, "verify", counting)
    seals = env.SealCache()
    opened = [env.open_envelope(e, washington.public_key, seals) for e in batch]
    assert [o.seq for o in opened] == list(range(1, 21))
    assert len(calls) == 1  # one signature for the whole batch
    assert env.open_envelope(batch[7], washington.public_key).seq == 8  # and alone, with no cache at all


def _alter(envelope: bytes) -> bytes:
    outer = msgpack.unpackb(envelope)
    body = bytearray(outer["b"])
    body[-1] ^= 1
    outer["b"] = bytes(body)
    return msgpack.packb(outer)  # type: ignore[no-any-return]


def test_a_batch_with_one_tampered_envelope_is_refused_from_it_on(keys: tuple[Identity, Identity]) -> None:
    washington, _ = keys
    batch = _batch(washington, 6)
    seals = env.SealCache()
    env.open_envelope(batch[0], washington.public_key, seals)
    with pytest.raises(RemoteProtocolError, match="not what its seal signs"):
        env.open_envelope(_alter(batch[1]), washington.public_key, seals)
    for later in batch[2:]:  # the rest of that batch is refused with it
        with pytest.raises(RemoteProtocolError, match="batch already refused"):
            env.open_envelope(later, washington.public_key, seals)


def test_a_seal_signed_by_another_key_is_refused(keys: tuple[Identity, Identity]) -> None:
    washington, moscow = keys
    forged = _batch(moscow, 3)  # signed by moscow's key, presented as washington's
    with pytest.raises(SignatureError, match="batch seal signature does not verify"):
        env.open_envelope(forged[0], washington.public_key, env.SealCache())


def test_a_seal_moved_onto_another_batch_or_position_is_refused(keys: tuple[Identity, Identity]) -> None:
    washington, _ = keys
    first, second = _batch(washington, 4), _batch(washington, 4)
    a, b = msgpack.unpackb(first[0]), msgpack.unpackb(second[1])
    swapped = msgpack.packb({**a, "seal": b["seal"], "s": b["s"]})
    with pytest.raises(RemoteProtocolError, match="not what its seal signs"):
        env.open_envelope(swapped, washington.public_key)
    moved = msgpack.packb({**a, "i": 1})
    with pytest.raises(RemoteProtocolError, match="not what its seal signs"):
        env.open_envelope(moved, washington.public_key)


def _offline_verify(envelope_b64: str, public_key: bytes) -> dict[str, Any]:
    """Prove one message from an export alone, with nothing of Hotline: the seal's Ed25519 signature,
    then the envelope's RFC 9162 inclusion path to the signed root. Returns the envelope body."""
    outer = msgpack.unpackb(base64.b64decode(envelope_b64))
    Ed25519PublicKey.from_public_bytes(public_key).verify(outer["s"], b"hotline-batch-seal-v1\x00" + outer["seal"])
    seal = msgpack.unpackb(outer["seal"])
    node = hashlib.sha256(b"\x00" + outer["b"]).digest()
    index, last = outer["i"], seal["n"] - 1
    for sibling in outer["p"]:
        if index % 2 == 1 or index == last:
            node = hashlib.sha256(b"\x01" + sibling + node).digest()
            while index % 2 == 0 and index != 0:
                index //= 2
                last //= 2
        else:
            node = hashlib.sha256(b"\x01" + node + sibling).digest()
        index //= 2
        last //= 2
    assert node == seal["root"], "the envelope is not in the batch its seal signs"
    return msgpack.unpackb(outer["b"])  # type: ignore[no-any-return]


def test_every_message_of_a_batched_stream_verifies_alone_from_the_export(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.connect()
    w.a.send("moscow", 40, Precedence.ROUTINE)  # several batches, of several sizes
    w.settle()
    w.deliver_all()
    assert len(w.b.inbox()) == 40
    for side, key in ((w.a, w.a.identity.public_key), (w.b, w.a.identity.public_key)):
        kinds = {"message.sealed"} if side is w.a else {"message.received"}
        lines = [json.loads(line) for line in export_lines(side.journal)]
        envelopes = [x["body"]["envelope"] for x in lines if x["kind"] in kinds]
        assert len(envelopes) == 40
        seqs = [_offline_verify(e, key)["seq"] for e in envelopes]
        assert sorted(seqs) == list(range(1, 41))
        assert verify(side.journal).ok
    seals = {msgpack.unpackb(base64.b64decode(e))["seal"] for e in envelopes}
    assert len(seals) < 40  # batched: fewer signatures than messages


def test_a_replayed_batch_is_dropped_before_any_key_is_touched(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.connect()
    assert w.links is not None
    _, to_moscow, link_b, _ = w.links
    w.a.send("moscow", 5, Precedence.ROUTINE)
    w.a.settle()
    frames = list(to_moscow.chunks)
    w.deliver_all()
    assert len(w.b.inbox()) == 5 and w.b.engine is not None
    state = w.b.engine.peers["washington"].ratchet.to_bytes()
    for frame in frames:  # the same bytes again: duplicates by sequence number, dropped
        w.b.engine.data_received(link_b, frame)
    w.settle()
    assert len(w.b.inbox()) == 5
    assert w.b.engine.peers["washington"].ratchet.to_bytes() == state


def _seal_size(envelope: bytes) -> int:
    seal = msgpack.unpackb(msgpack.unpackb(envelope)["seal"])
    return int(seal["n"])


def test_a_flash_is_sealed_alone_ahead_of_the_routine_queued_with_it(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.connect()
    w.a.send("moscow", 5, Precedence.ROUTINE)
    w.a.send("moscow", 1, Precedence.FLASH)  # accepted in the same flush as the five
    w.a.settle()
    sealed = [e.decoded() for e in w.a.journal.entries() if e.kind == "message.sealed"]
    flash_id = w.a.accepted[-1]
    assert [s["id"] for s in sealed] == [flash_id, *w.a.accepted[:5]], "the FLASH first"
    assert [_seal_size(s["envelope"]) for s in sealed] == [1, 5, 5, 5, 5, 5], (
        "a batch of its own: it is not encrypted, journaled and sent together with the routine behind it"
    )
    w.deliver_all()
    assert w.b.inbox() == [flash_id, *w.a.accepted[:5]]


def test_the_receiver_journals_and_receipts_a_flash_before_opening_what_follows_it(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.connect()
    w.deliver_all()  # the hellos: the link is up
    assert w.links is not None and w.b.engine is not None
    _, to_moscow, link_b, _ = w.links
    w.a.send("moscow", 1, Precedence.FLASH)
    w.a.settle()
    w.a.send("moscow", 5, Precedence.ROUTINE)
    w.a.settle()
    stream = b"".join(to_moscow.chunks)  # the FLASH and the routine behind it, read in one go
    to_moscow.chunks.clear()
    w.b.engine.data_received(link_b, stream)
    peer = w.b.engine.peers["washington"]
    assert [a.seq for a in peer.pending_in] == [1] and peer.hold_reading, "nothing opened past the FLASH yet"
    w.b.settle()
    assert not peer.hold_reading and peer.inbound.upto == 6
    journaled = [(e.kind, e.decoded().get("seq", e.decoded().get("upto"))) for e in w.b.journal.entries()]
    arrivals = journaled[[k for k, _ in journaled].index("message.received") :]
    assert arrivals == [("message.received", 1), ("receipt.sent", 1)] + [
        ("message.received", n) for n in range(2, 7)
    ] + [("receipt.sent", 6)], "the FLASH's receipt left before the routine behind it was opened"
    w.deliver_all()
    assert w.b.inbox() == w.a.accepted
    assert verify(w.b.journal).ok
