"""Tests of hotline.ratchet: Signal's known answers, round trips, limits, state files."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.core.errors import CryptoError, DecryptError
from hotline.crypto.ratchet import (
    MAX_SKIP,
    MAX_STORED_SKIPPED,
    Header,
    Ratchet,
    initial_secret,
    is_initiator,
    kdf_ck,
    kdf_rk,
    message_keys,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "signal_ratchet.json").read_text())
AD = b"hotline-test-ad"
Message = tuple[Header, bytes]


def x(hex_string: str) -> bytes:
    return bytes.fromhex(hex_string)


def signal_hkdf(salt: bytes | None, ikm: bytes, info: bytes, length: int, version: int) -> bytes:
    """An HKDF-SHA256 written independently of the module, after libsignal's HKDF.

    libsignal's HKDFv3 is RFC 5869; its legacy HKDFv2 differs only in starting the
    expand counter at 0 instead of 1. Checked against Signal's own vectors below.
    """
    prk = hmac.new(salt if salt else bytes(32), ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 0 if version == 2 else 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def signal_public(serialized: bytes) -> X25519PublicKey:
    """A libsignal public key: a 0x05 type byte, then the 32-byte X25519 key."""
    assert serialized[0] == 0x05 and len(serialized) == 33
    return X25519PublicKey.from_public_bytes(serialized[1:])


def pub(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def seeded_keygen(seed: int) -> Callable[[], X25519PrivateKey]:
    rng = random.Random(seed)
    return lambda: X25519PrivateKey.from_private_bytes(rng.randbytes(32))


def make_pair(seed: int = 0) -> tuple[Ratchet, Ratchet]:
    """Alice (the initiator) and Bob wired from seeded card keys, as pairing would."""
    alice, bob, _, _ = make_pair_with_keygens(seed)
    return alice, bob


Keygen = Callable[[], X25519PrivateKey]


def make_pair_with_keygens(seed: int) -> tuple[Ratchet, Ratchet, Keygen, Keygen]:
    rng = random.Random(seed)
    a_id, b_id = sorted(rng.randbytes(32) for _ in range(2))
    a_dh = X25519PrivateKey.from_private_bytes(rng.randbytes(32))
    b_dh = X25519PrivateKey.from_private_bytes(rng.randbytes(32))
    assert is_initiator(a_id, b_id) and not is_initiator(b_id, a_id)
    sk = initial_secret(a_id, a_dh, b_id, pub(b_dh))
    assert initial_secret(b_id, b_dh, a_id, pub(a_dh)) == sk
    a_keygen, b_keygen = seeded_keygen(2 * seed + 1), seeded_keygen(2 * seed + 2)
    alice = Ratchet.initiator(sk, a_dh, pub(b_dh), keygen=a_keygen)
    bob = Ratchet.responder(sk, b_dh, pub(a_dh), keygen=b_keygen)
    return alice, bob, a_keygen, b_keygen


def send_many(sender: Ratchet, count: int, tag: str = "m") -> list[Message]:
    return [sender.encrypt(f"{tag}{i}".encode(), AD) for i in range(count)]


def skipped_count(r: Ratchet) -> int:
    return len(msgpack.unpackb(r.to_bytes())["skipped"])


# -- Known answers from Signal ------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["hkdf"], ids=lambda v: v["name"])
def test_reference_hkdf_matches_signal(vector: dict[str, Any]) -> None:
    okm = x(vector["okm"])
    got = signal_hkdf(x(vector["salt"]), x(vector["ikm"]), x(vector["info"]), len(okm), vector["version"])
    assert got == okm


def test_root_key_signal_vector() -> None:
    v = VECTORS["root_key_v2"]
    alice = X25519PrivateKey.from_private_bytes(x(v["alice_private"]))
    dh_out = alice.exchange(signal_public(x(v["bob_public"])))
    # libsignal's RootKeyTest: same DH, salt = root key, info, root-then-chain split (HKDF v2).
    legacy = signal_hkdf(x(v["root_key"]), dh_out, b"WhisperRatchet", 64, version=2)
    assert (legacy[:32], legacy[32:]) == (x(v["next_root_key"]), x(v["next_chain_key"]))
    # Current libsignal (and we) run the same derivation through HKDF v3.
    current = signal_hkdf(x(v["root_key"]), dh_out, b"WhisperRatchet", 64, version=3)
    assert kdf_rk(x(v["root_key"]), dh_out) == (current[:32], current[32:])
    assert kdf_rk(x(v["root_key"]), dh_out)[0] != x(v["next_root_key"])


def test_chain_key_signal_vector() -> None:
    v = VECTORS["chain_key_v3"]
    next_ck, seed = kdf_ck(x(v["chain_key"]))
    assert next_ck == x(v["next_chain_key"])
    cipher_key, mac_key, iv = message_keys(seed)
    assert cipher_key == x(v["cipher_key"])
    assert mac_key == x(v["mac_key"])
    assert iv == signal_hkdf(None, seed, b"WhisperMessageKeys", 80, version=3)[64:]


# -- Header ------------------------------------------------------------------------


def test_header_layout_and_round_trip() -> None:
    header = Header(dh=bytes(range(32)), pn=7, n=0x01020304)
    data = header.to_bytes()
    assert data == bytes(range(32)) + b"\x00\x00\x00\x07\x01\x02\x03\x04"
    assert Header.from_bytes(data) == header


@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_header_round_trip_property(dh: bytes, pn: int, n: int) -> None:
    header = Header(dh, pn, n)
    assert Header.from_bytes(header.to_bytes()) == header


def test_header_strict_length() -> None:
    data = Header(dh=bytes(32), pn=1, n=2).to_bytes()
    for cut in range(len(data)):  # byte by byte: every prefix is refused
        with pytest.raises(DecryptError):
            Header.from_bytes(data[:cut])
    with pytest.raises(DecryptError):
        Header.from_bytes(data + b"\x00")  # trailing garbage


@pytest.mark.parametrize(("dh", "pn", "n"), [(bytes(31), 0, 0), (bytes(32), -1, 0), (bytes(32), 0, 2**32)])
def test_header_validates_fields(dh: bytes, pn: int, n: int) -> None:
    with pytest.raises(DecryptError):
        Header(dh, pn, n)


# -- Initial secret and roles ------------------------------------------------------


def test_initial_secret_is_symmetric_and_bound_to_identities() -> None:
    rng = random.Random(5)
    a_id, b_id, c_id = (rng.randbytes(32) for _ in range(3))
    a_dh, b_dh = (X25519PrivateKey.from_private_bytes(rng.randbytes(32)) for _ in range(2))
    sk = initial_secret(a_id, a_dh, b_id, pub(b_dh))
    assert len(sk) == 32
    assert sk == initial_secret(b_id, b_dh, a_id, pub(a_dh))
    assert sk != initial_secret(a_id, a_dh, c_id, pub(b_dh))


def test_initial_secret_rejects_bad_keys() -> None:
    own = X25519PrivateKey.from_private_bytes(bytes(range(32)))
    with pytest.raises(CryptoError):
        initial_secret(bytes(32), own, bytes([1]) * 32, bytes(32))  # low-order point
    with pytest.raises(CryptoError):
        initial_secret(bytes(32), own, bytes([1]) * 32, bytes(31))
    with pytest.raises(CryptoError):
        initial_secret(bytes(31), own, bytes([1]) * 32, pub(own))


def test_is_initiator() -> None:
    assert is_initiator(b"\x00" * 32, b"\x01" * 32)
    assert not is_initiator(b"\x01" * 32, b"\x00" * 32)
    with pytest.raises(CryptoError):
        is_initiator(b"\x01" * 32, b"\x01" * 32)


# -- Round trips -------------------------------------------------------------------


def test_initiator_sends_first() -> None:
    alice, bob = make_pair()
    header, ct = alice.encrypt(b"hello bob", AD)
    assert (header.pn, header.n) == (0, 0)
    assert bob.decrypt(header, ct, AD) == b"hello bob"
    reply = bob.encrypt(b"hello alice", AD)
    assert alice.decrypt(*reply, AD) == b"hello alice"


def test_responder_sends_first() -> None:
    alice, bob = make_pair()
    header, ct = bob.encrypt(b"bob first", AD)
    assert alice.decrypt(header, ct, AD) == b"bob first"
    assert bob.decrypt(*alice.encrypt(b"ack", AD), AD) == b"ack"


def test_both_send_before_either_receives() -> None:
    alice, bob = make_pair()
    from_alice, from_bob = alice.encrypt(b"a", AD), bob.encrypt(b"b", AD)
    assert bob.decrypt(*from_alice, AD) == b"a"
    assert alice.decrypt(*from_bob, AD) == b"b"
    assert bob.decrypt(*alice.encrypt(b"a2", AD), AD) == b"a2"
    assert alice.decrypt(*bob.encrypt(b"b2", AD), AD) == b"b2"


def test_alternating_turns_ratchet_every_time() -> None:
    alice, bob = make_pair()
    keys_seen: set[bytes] = set()
    for turn in range(20):
        sender, receiver = (alice, bob) if turn % 2 == 0 else (bob, alice)
        for i, (header, ct) in enumerate(send_many(sender, 3, f"t{turn}-")):
            assert receiver.decrypt(header, ct, AD) == f"t{turn}-{i}".encode()
        assert header.dh not in keys_seen  # a fresh ratchet key each turn (spec §3.4)
        keys_seen.add(header.dh)


@pytest.mark.parametrize("alice_sends", [True, False])
def test_long_one_direction_run(alice_sends: bool) -> None:
    alice, bob = make_pair()
    sender, receiver = (alice, bob) if alice_sends else (bob, alice)
    messages = send_many(sender, 500)
    assert {h.dh for h, _ in messages} == {messages[0][0].dh}
    assert [h.n for h, _ in messages] == list(range(500))
    for i, (header, ct) in enumerate(messages):
        assert receiver.decrypt(header, ct, AD) == f"m{i}".encode()


def test_out_of_order_within_a_chain() -> None:
    alice, bob = make_pair()
    messages = list(enumerate(send_many(alice, 60)))
    random.Random(1).shuffle(messages)
    for i, (header, ct) in messages:
        assert bob.decrypt(header, ct, AD) == f"m{i}".encode()
    assert skipped_count(bob) == 0


def test_out_of_order_across_ratchet_steps() -> None:
    alice, bob = make_pair()
    first = send_many(alice, 3, "a0-")
    assert bob.decrypt(*first[0], AD) == b"a0-0"
    assert alice.decrypt(*bob.encrypt(b"reply", AD), AD) == b"reply"
    second = send_many(alice, 3, "a1-")
    assert second[0][0].pn == 3
    for i in (2, 0, 1):  # the new chain first: Bob stores the rest of the old one (§3.5)
        assert bob.decrypt(*second[i], AD) == f"a1-{i}".encode()
    assert skipped_count(bob) == 2
    assert bob.decrypt(*first[2], AD) == b"a0-2"
    assert bob.decrypt(*first[1], AD) == b"a0-1"
    assert skipped_count(bob) == 0


def test_skipping_exactly_max_skip_is_allowed() -> None:
    alice, bob = make_pair()
    messages = send_many(alice, MAX_SKIP + 1)
    assert bob.decrypt(*messages[MAX_SKIP], AD) == f"m{MAX_SKIP}".encode()
    assert skipped_count(bob) == MAX_SKIP
    assert bob.decrypt(*messages[0], AD) == b"m0"


def test_skipping_more_than_max_skip_is_refused() -> None:
    alice, bob = make_pair()
    messages = send_many(alice, MAX_SKIP + 2)
    before = bob.to_bytes()
    with pytest.raises(DecryptError, match=f"would skip {MAX_SKIP + 1} keys, limit is {MAX_SKIP}"):
        bob.decrypt(*messages[MAX_SKIP + 1], AD)
    assert bob.to_bytes() == before
    assert bob.decrypt(*messages[0], AD) == b"m0"


def test_previous_chain_length_is_capped_too() -> None:
    alice, bob = make_pair()
    old_chain = send_many(alice, MAX_SKIP + 2)
    assert alice.decrypt(*bob.encrypt(b"bob", AD), AD) == b"bob"
    new_chain = alice.encrypt(b"new", AD)
    assert new_chain[0].pn == MAX_SKIP + 2
    with pytest.raises(DecryptError, match="would skip"):
        bob.decrypt(*new_chain, AD)  # would store the old chain's 1002 keys first
    assert bob.decrypt(*old_chain[1], AD) == b"m1"
    assert bob.decrypt(*new_chain, AD) == b"new"  # now only 1000 left to store


def test_stored_skipped_keys_are_capped_oldest_first() -> None:
    alice, bob = make_pair()
    chains = []
    for c in range(3):  # three chains, each leaving MAX_SKIP keys stored at Bob
        chain = send_many(alice, MAX_SKIP + 1, f"c{c}-")
        assert bob.decrypt(*chain[MAX_SKIP], AD) == f"c{c}-{MAX_SKIP}".encode()
        assert alice.decrypt(*bob.encrypt(b"turn", AD), AD) == b"turn"
        chains.append(chain)
    assert 3 * MAX_SKIP > MAX_STORED_SKIPPED
    assert skipped_count(bob) == MAX_STORED_SKIPPED
    with pytest.raises(DecryptError):
        bob.decrypt(*chains[0][0], AD)  # evicted: the oldest went first
    assert bob.decrypt(*chains[1][0], AD) == b"c1-0"
    assert bob.decrypt(*chains[2][MAX_SKIP - 1], AD) == f"c2-{MAX_SKIP - 1}".encode()


# -- Failures leave the state exactly as it was ----------------------------------------


def test_tampering_is_refused_and_changes_nothing() -> None:
    alice, bob = make_pair(3)
    twin_alice, twin_bob = make_pair(3)
    for sender, receiver in ((alice, bob), (twin_alice, twin_bob)):
        receiver.decrypt(*sender.encrypt(b"warm up", AD), AD)
        assert sender.decrypt(*receiver.encrypt(b"reply", AD), AD) == b"reply"
    header, ct = alice.encrypt(b"the real one", AD)
    twin_message = twin_alice.encrypt(b"the real one", AD)
    assert (header, ct) == twin_message
    other_key = pub(X25519PrivateKey.from_private_bytes(bytes([9]) * 32))
    forgeries = [
        (header, ct[:-1] + bytes([ct[-1] ^ 1]), AD),
        (header, bytes([ct[0] ^ 0x80]) + ct[1:], AD),
        (header, ct[:-16], AD),
        (header, b"", AD),
        (header, ct, AD + b"!"),
        (header, ct, b""),
        (Header(header.dh, header.pn + 1, header.n), ct, AD),
        (Header(header.dh, header.pn, header.n + 1), ct, AD),
        (Header(other_key, header.pn, header.n), ct, AD),  # takes the DH-ratchet path
        (Header(bytes(32), header.pn, header.n), ct, AD),  # low-order key
    ]
    before = bob.to_bytes()
    for forged_header, forged_ct, forged_ad in forgeries:
        with pytest.raises(DecryptError):
            bob.decrypt(forged_header, forged_ct, forged_ad)
        assert bob.to_bytes() == before
    assert bob.decrypt(header, ct, AD) == b"the real one"
    assert twin_bob.decrypt(*twin_message, AD) == b"the real one"
    # Failed attempts did not even advance the key generator: the twins stay in lockstep.
    assert bob.encrypt(b"next", AD) == twin_bob.encrypt(b"next", AD)
    assert bob.to_bytes() == twin_bob.to_bytes()


def test_authentication_failure_message() -> None:
    alice, bob = make_pair()
    header, ct = alice.encrypt(b"x", AD)
    with pytest.raises(DecryptError, match="authentication failed"):
        bob.decrypt(header, ct, b"other ad")


def test_replay_is_refused() -> None:
    alice, bob = make_pair()
    first, second = send_many(alice, 2)
    assert bob.decrypt(*second, AD) == b"m1"
    assert bob.decrypt(*first, AD) == b"m0"  # from the skipped store
    before = bob.to_bytes()
    for replayed in (first, second):
        with pytest.raises(DecryptError, match="message key not found"):
            bob.decrypt(*replayed, AD)
    assert bob.to_bytes() == before
    assert alice.decrypt(*bob.encrypt(b"reply", AD), AD) == b"reply"
    assert bob.decrypt(*alice.encrypt(b"new chain", AD), AD) == b"new chain"
    with pytest.raises(DecryptError):
        bob.decrypt(*second, AD)  # a replay from an older chain
    assert bob.decrypt(*alice.encrypt(b"still fine", AD), AD) == b"still fine"


def test_initiator_cannot_receive_on_the_card_key_chain() -> None:
    alice, bob = make_pair()
    header, ct = alice.encrypt(b"x", AD)
    bob_card_key = msgpack.unpackb(alice.to_bytes())["dhr"]  # Bob never sends with it
    with pytest.raises(DecryptError, match="no receiving chain"):
        alice.decrypt(Header(bob_card_key, 0, 0), ct, AD)
    assert bob.decrypt(header, ct, AD) == b"x"


# -- Determinism and serialization -------------------------------------------------------


def converse(alice: Ratchet, bob: Ratchet, rounds: int) -> list[Message]:
    """A fixed script with out-of-order delivery; returns everything sent."""
    transcript: list[Message] = []
    for r in range(rounds):
        for sender, receiver in ((alice, bob), (bob, alice)):
            batch = send_many(sender, 4, f"r{r}-")
            transcript += batch
            for i in (3, 1, 0, 2):
                assert receiver.decrypt(*batch[i], AD) == f"r{r}-{i}".encode()
    return transcript


def test_deterministic_with_injected_keygen() -> None:
    assert converse(*make_pair(7), 5) == converse(*make_pair(7), 5)
    assert converse(*make_pair(7), 1) != converse(*make_pair(8), 1)


def test_serialization_round_trip_mid_conversation() -> None:
    alice, bob, a_keygen, b_keygen = make_pair_with_keygens(11)
    twin_alice, twin_bob = make_pair(11)
    assert converse(alice, bob, 3) == converse(twin_alice, twin_bob, 3)
    pending = send_many(alice, 5)  # Bob holds skipped keys when saved
    assert send_many(twin_alice, 5) == pending
    for r in (bob, twin_bob):
        assert r.decrypt(*pending[4], AD) == b"m4"
    assert skipped_count(bob) == 4
    # Save and restore both sides (keeping their key generators) and carry on.
    alice = Ratchet.from_bytes(alice.to_bytes(), keygen=a_keygen)
    bob = Ratchet.from_bytes(bob.to_bytes(), keygen=b_keygen)
    assert alice.to_bytes() == twin_alice.to_bytes()
    assert bob.to_bytes() == twin_bob.to_bytes()
    assert Ratchet.from_bytes(bob.to_bytes()).to_bytes() == bob.to_bytes()
    for i in (2, 0, 3, 1):
        assert bob.decrypt(*pending[i], AD) == twin_bob.decrypt(*pending[i], AD)
    assert converse(alice, bob, 3) == converse(twin_alice, twin_bob, 3)


def test_default_keygen_works() -> None:
    rng = random.Random(2)
    a_dh, b_dh = (X25519PrivateKey.from_private_bytes(rng.randbytes(32)) for _ in range(2))
    sk = bytes(range(32))
    alice = Ratchet.initiator(sk, a_dh, pub(b_dh))
    bob = Ratchet.responder(sk, b_dh, pub(a_dh))
    assert converse(alice, bob, 2)
    restored = Ratchet.from_bytes(bob.to_bytes())
    assert alice.decrypt(*restored.encrypt(b"after restore", AD), AD) == b"after restore"


def test_constructors_validate_inputs() -> None:
    key = X25519PrivateKey.from_private_bytes(bytes(range(32)))
    with pytest.raises(CryptoError):
        Ratchet.initiator(bytes(31), key, pub(key))
    with pytest.raises(CryptoError):
        Ratchet.responder(bytes(32), key, bytes(33))
    with pytest.raises(CryptoError):
        Ratchet.initiator(bytes(32), key, bytes(32))  # low-order point


# -- The property: any schedule, any order per direction, nothing lost -----------------

STEP = st.sampled_from(["a_send", "b_send", "to_a", "to_b", "save_a", "save_b"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), steps=st.lists(STEP, max_size=80), data=st.data())
def test_any_schedule_with_reordering_decrypts(seed: int, steps: list[str], data: st.DataObject) -> None:
    parties = dict(zip("ab", make_pair(seed), strict=True))
    inflight: dict[str, list[tuple[Header, bytes, bytes]]] = {"a": [], "b": []}
    other = {"a": "b", "b": "a"}

    def deliver(to: str) -> None:
        i = data.draw(st.integers(0, len(inflight[to]) - 1), label=f"to_{to}")
        header, ct, plaintext = inflight[to].pop(i)
        assert parties[to].decrypt(header, ct, AD) == plaintext

    for number, step in enumerate(steps):
        side = step[-1] if not step.endswith("send") else step[0]
        if step.endswith("send"):
            plaintext = f"{side}{number}".encode()
            inflight[other[side]].append((*parties[side].encrypt(plaintext, AD), plaintext))
        elif step.startswith("to") and inflight[side]:
            deliver(side)
        elif step.startswith("save"):
            parties[side] = Ratchet.from_bytes(parties[side].to_bytes())
    for to in "ab":
        while inflight[to]:
            deliver(to)


# -- Parsing saved state: anything malformed is a CryptoError -------------------------------


def saved_state() -> bytes:
    alice, bob = make_pair()
    messages = send_many(alice, 4)
    bob.decrypt(*messages[3], AD)
    return bob.to_bytes()


@given(st.binary(max_size=300))
def test_from_bytes_on_garbage(data: bytes) -> None:
    with contextlib.suppress(CryptoError):  # anything else fails the test
        Ratchet.from_bytes(data)


def test_from_bytes_on_truncation_and_trailing_garbage() -> None:
    data = saved_state()
    for cut in range(len(data)):
        with pytest.raises(CryptoError):
            Ratchet.from_bytes(data[:cut])
    with pytest.raises(CryptoError):
        Ratchet.from_bytes(data + b"\x00")
    with pytest.raises(CryptoError):
        Ratchet.from_bytes(data.hex())  # type: ignore[arg-type]


@given(st.data())
def test_from_bytes_on_flipped_bytes(data: st.DataObject) -> None:
    blob = bytearray(saved_state())
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(CryptoError):  # a flip in a key's bytes still parses
        Ratchet.from_bytes(bytes(blob))


def _mutations() -> list[tuple[str, Callable[[dict[str, Any]], Any]]]:
    def setter(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
        return lambda m: {**m, key: value}

    def without(key: str) -> Callable[[dict[str, Any]], Any]:
        return lambda m: {k: v for k, v in m.items() if k != key}

    skip_entry = [bytes(32), 0, bytes(32)]
    cases: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("not a map", lambda m: list(m.items())),
        ("extra key", setter("extra", 1)),
        ("version 2", setter("v", 2)),
        ("version bool", setter("v", True)),
        ("ns negative", setter("ns", -1)),
        ("ns too big", setter("ns", 2**32)),
        ("nr too big", setter("nr", 2**32 + 1)),
        ("pn str", setter("pn", "1")),
        ("cks None", setter("cks", None)),
        ("ckr short", setter("ckr", bytes(31))),
        ("skipped not list", setter("skipped", {"a": 1})),
        ("skipped item short", setter("skipped", [[bytes(32), 0]])),
        ("skipped item dh", setter("skipped", [[bytes(31), 0, bytes(32)]])),
        ("skipped item n", setter("skipped", [[bytes(32), -1, bytes(32)]])),
        ("skipped item mk", setter("skipped", [[bytes(32), 0, "x" * 32]])),
        ("skipped duplicate", setter("skipped", [skip_entry, skip_entry])),
        (
            "skipped too many",
            setter("skipped", [[bytes(32), i, bytes(32)] for i in range(MAX_STORED_SKIPPED + 1)]),
        ),
        ("ext type", setter("rk", msgpack.ExtType(1, bytes(32)))),
    ]
    for key in ("v", "dhs", "dhr", "rk", "cks", "ckr", "ns", "nr", "pn", "skipped"):
        cases.append((f"missing {key}", without(key)))
    for key in ("dhs", "dhr", "rk", "cks"):
        cases.append((f"{key} long", setter(key, bytes(33))))
        cases.append((f"{key} int", setter(key, 5)))
    return cases


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[n for n, _ in _mutations()])
def test_from_bytes_rejects_malformed_fields(name: str, mutate: Callable[[dict[str, Any]], Any]) -> None:
    fields = msgpack.unpackb(saved_state())
    Ratchet.from_bytes(msgpack.packb(fields))  # the unmutated state is fine
    with pytest.raises(CryptoError):
        Ratchet.from_bytes(msgpack.packb(mutate(fields)))


def test_from_bytes_rejects_duplicate_map_keys() -> None:
    data = saved_state()
    # A second "ns" entry, added by hand: bump the map length and append the pair.
    assert data[0] == 0x8A  # fixmap of 10 entries
    forged = b"\x8b" + data[1:] + msgpack.packb("ns") + msgpack.packb(0)
    with pytest.raises(CryptoError):
        Ratchet.from_bytes(forged)
