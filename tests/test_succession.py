"""The signed key succession and revocation (``crypto.succession``): form, signature, and what a peer
makes of one given the key it pinned and the keys it knew before."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.core.errors import (
    CardError,
    CryptoError,
    KeyConflict,
    ProtocolError,
    RemoteProtocolError,
    SignatureError,
)
from hotline.core.model import Address
from hotline.core.wire import pack, unpack
from hotline.crypto.identity import ContactCard, Identity, make_card
from hotline.crypto.signed import signed_map
from hotline.crypto.succession import (
    REVOCATION_CONTEXT,
    SUCCESSION_CONTEXT,
    judge_succession,
    make_revocation,
    make_succession,
    open_revocation,
    open_succession,
    signer_of,
)
from hotline.testing.waiting import seeded

CREATED = "2026-12-04T18:00:00Z"
AT = 1_796_000_000_000_000_000


def _identity(seed: bytes, name: str = "moscow") -> Identity:
    return Identity.generate(name, randbytes=seeded(seed))


def _card(identity: Identity) -> ContactCard:
    return make_card(identity, [Address("primary", "127.0.0.1", 7400)], CREATED)


K0, K1, K2 = _identity(b"k0"), _identity(b"k1"), _identity(b"k2")
S01 = make_succession(K0, _card(K1), n=1, at_ns=AT)
S12 = make_succession(K1, _card(K2), n=2, at_ns=AT + 1)


def test_round_trip() -> None:
    s = open_succession(S01, K0.public_key)
    assert (s.name, s.old_key, s.new_key, s.n, s.at_ns, s.raw) == ("moscow", K0.public_key, K1.public_key, 1, AT, S01)
    assert s.card == _card(K1) and signer_of(S01) == K0.public_key
    r = open_revocation(make_revocation(K0, at_ns=AT, reason="laptop stolen"), K0.public_key)
    assert (r.name, r.key, r.at_ns, r.reason) == ("moscow", K0.public_key, AT, "laptop stolen")


def test_wrong_key_refused() -> None:
    with pytest.raises(SignatureError, match="not signed by the pinned key"):
        open_succession(S01, K1.public_key)
    with pytest.raises(SignatureError):
        open_revocation(make_revocation(K0, at_ns=AT, reason=""), K1.public_key)


def test_contexts_keep_kinds_apart() -> None:
    """A revocation's signature never passes for a succession's, nor the other way round."""
    revocation = make_revocation(K0, at_ns=AT, reason="")
    with pytest.raises(RemoteProtocolError):
        open_succession(revocation, K0.public_key)
    with pytest.raises(RemoteProtocolError):
        open_revocation(S01, K0.public_key)
    # The same body signed under the other context does not verify.
    body = unpack(S01)["b"]
    with pytest.raises(SignatureError):
        open_succession(signed_map(K0, REVOCATION_CONTEXT, body), K0.public_key)
    assert SUCCESSION_CONTEXT != REVOCATION_CONTEXT


def test_a_statement_signed_by_the_old_key_for_a_card_it_did_not_make() -> None:
    """The old key cannot name a key whose holder did not sign the card (the card is checked)."""
    forged = replace(_card(K1), identity_key=K2.public_key, dh_key=K2.dh_public, cert_der=K2.cert_der)
    body = pack({"v": 1, "name": "moscow", "old": K0.public_key, "n": 1, "at": AT, "card": forged.to_json()})
    with pytest.raises(RemoteProtocolError, match="bad card"):
        open_succession(signed_map(K0, SUCCESSION_CONTEXT, body), K0.public_key)
    other = _identity(b"w", "washington")
    with pytest.raises(CardError):
        make_succession(K0, _card(other), n=1, at_ns=AT)
    body = pack({"v": 1, "name": "moscow", "old": K0.public_key, "n": 1, "at": AT, "card": _card(other).to_json()})
    with pytest.raises(RemoteProtocolError, match="carries the card of 'washington'"):
        open_succession(signed_map(K0, SUCCESSION_CONTEXT, body), K0.public_key)


def test_every_truncation_and_trailing_garbage_refused() -> None:
    for n in range(len(S01)):
        with pytest.raises((ProtocolError, CryptoError)):
            open_succession(S01[:n], K0.public_key)
    with pytest.raises((ProtocolError, CryptoError)):
        open_succession(S01 + b"\x00", K0.public_key)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_mutation_is_refused(data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(S01) - 1))
    flip = data.draw(st.integers(1, 255))
    mutated = S01[:i] + bytes([S01[i] ^ flip]) + S01[i + 1 :]
    with pytest.raises((ProtocolError, CryptoError)):
        open_succession(mutated, K0.public_key)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_is_a_clean_refusal(garbage: bytes) -> None:
    for opener in (open_succession, open_revocation):
        with pytest.raises((ProtocolError, CryptoError)):
            opener(garbage, K0.public_key)


def test_judge_applies_a_succession_from_the_pinned_key() -> None:
    s = judge_succession(S01, pinned=K0.public_key, retired={}, revoked=set())
    assert s is not None and s.new_key == K1.public_key
    # The chain, one step at a time.
    s2 = judge_succession(S12, pinned=K1.public_key, retired={K0.public_key: K1.public_key}, revoked=set())
    assert s2 is not None and s2.new_key == K2.public_key


def test_judge_ignores_the_replay_of_an_older_succession() -> None:
    """A peer re-sends its chain on every link: what was applied is recognised, not applied again."""
    retired = {K0.public_key: K1.public_key, K1.public_key: K2.public_key}
    assert judge_succession(S01, pinned=K2.public_key, retired=retired, revoked=set()) is None
    assert judge_succession(S12, pinned=K2.public_key, retired=retired, revoked=set()) is None


def test_judge_refuses_a_fork_a_downgrade_a_stranger_and_a_revoked_key() -> None:
    other = _identity(b"other")
    fork = make_succession(K0, _card(other), n=1, at_ns=AT + 5)  # the retired key names another successor
    with pytest.raises(KeyConflict, match="conflicts"):
        judge_succession(fork, pinned=K1.public_key, retired={K0.public_key: K1.public_key}, revoked=set())
    back = make_succession(K1, _card(K0), n=2, at_ns=AT + 6)  # hands the name back to a retired key
    with pytest.raises(RemoteProtocolError, match="earlier key"):
        judge_succession(back, pinned=K1.public_key, retired={K0.public_key: K1.public_key}, revoked=set())
    with pytest.raises(SignatureError, match="not the pinned key"):
        judge_succession(S12, pinned=K0.public_key, retired={}, revoked=set())  # skips a step we never saw
    with pytest.raises(SignatureError, match="revoked"):
        judge_succession(S01, pinned=K0.public_key, retired={}, revoked={K0.public_key})
    with pytest.raises(RemoteProtocolError, match="earlier key"):
        judge_succession(S01, pinned=K0.public_key, retired={}, revoked={K1.public_key})
