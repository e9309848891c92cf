"""Tests for hotline.crypto.identity (safety numbers by Signal's vectors, cards, TLS)
and hotline.home.keyfile (key files at rest)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import ssl
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.core.errors import CardError, ConfigError, IdentityError, PassphraseError, SignatureError
from hotline.core.model import Address
from hotline.crypto.identity import (
    CARD_CONTEXT,
    MAX_CARD_BYTES,
    ContactCard,
    Identity,
    _side_fingerprint,
    cert_public_key,
    fingerprint,
    make_card,
    safety_number,
    verify,
)
from hotline.home.keyfile import load_keys, save_keys
from hotline.testing.waiting import seeded

VECTORS = json.loads((Path(__file__).parent / "vectors" / "signal_fingerprint.json").read_text())
SAFETY_RE = re.compile(r"^\d{5}( \d{5}){11}$")
CREATED = "2026-11-24T18:00:00Z"


@pytest.fixture(scope="module")
def moscow() -> Identity:
    return Identity.generate("moscow", randbytes=seeded(b"moscow"))


@pytest.fixture(scope="module")
def washington() -> Identity:
    return Identity.generate("washington", randbytes=seeded(b"washington"))


@pytest.fixture(scope="module")
def card(moscow: Identity) -> ContactCard:
    addresses = [
        Address("primary", "198.51.100.7", 7400),
        Address("satellite", "2001:db8::7", 7401),
    ]
    return make_card(moscow, addresses, CREATED)


# -- safety numbers --------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_safety_number_matches_signal(vector: dict[str, Any]) -> None:
    alice, bob = bytes.fromhex(vector["alice_identity"]), bytes.fromhex(vector["bob_identity"])
    alice_id, bob_id = vector["alice_stable_id"].encode(), vector["bob_stable_id"].encode()
    n = vector["iterations"]
    assert _side_fingerprint(alice, alice_id, n)[:32].hex() == vector["alice_fingerprint"]
    assert _side_fingerprint(bob, bob_id, n)[:32].hex() == vector["bob_fingerprint"]
    expected = vector["displayable"]
    assert safety_number(alice, alice_id, bob, bob_id, n).replace(" ", "") == expected
    assert safety_number(bob, bob_id, alice, alice_id, n).replace(" ", "") == expected


def test_safety_number_same_on_both_sides(moscow: Identity, washington: Identity) -> None:
    ours = safety_number(moscow.public_key, b"moscow", washington.public_key, b"washington")
    theirs = safety_number(washington.public_key, b"washington", moscow.public_key, b"moscow")
    assert ours == theirs
    assert SAFETY_RE.match(ours)


def test_safety_number_changes_with_key_or_name(moscow: Identity, washington: Identity) -> None:
    base = safety_number(moscow.public_key, b"moscow", washington.public_key, b"washington")
    mitm = Identity.generate("washington", randbytes=seeded(b"mitm"))
    assert safety_number(moscow.public_key, b"moscow", mitm.public_key, b"washington") != base
    assert safety_number(moscow.public_key, b"moskva", washington.public_key, b"washington") != base


@pytest.mark.parametrize("iterations", [0, 1, 1_000_001])
def test_safety_number_rejects_bad_iterations(iterations: int) -> None:
    with pytest.raises(IdentityError):
        safety_number(b"a" * 32, b"a", b"b" * 32, b"b", iterations)


# -- keys, signatures, fingerprints ----------------------------------------------------------


def test_generate_is_deterministic_with_injected_randomness() -> None:
    a = Identity.generate("kyiv", randbytes=seeded(b"k"))
    b = Identity.generate("kyiv", randbytes=seeded(b"k"))
    assert (a.public_key, a.dh_public, a.state_key, a.cert_der) == (
        b.public_key,
        b.dh_public,
        b.state_key,
        b.cert_der,
    )
    c = Identity.generate("kyiv")
    assert c.public_key != a.public_key and len(c.public_key) == len(c.dh_public) == 32
    assert len(c.state_key) == 32


def test_repr_hides_secrets(moscow: Identity) -> None:
    text = repr(moscow)
    assert "moscow" in text
    assert moscow.state_key.hex() not in text and "signing_key" not in text


def test_generate_rejects_bad_name() -> None:
    with pytest.raises(IdentityError, match="invalid terminal name"):
        Identity.generate("Moscow Kremlin")


def test_sign_and_verify(moscow: Identity, washington: Identity) -> None:
    sig = moscow.sign(b"ctx-a\x00", b"payload")
    verify(moscow.public_key, b"ctx-a\x00", b"payload", sig)
    with pytest.raises(SignatureError):
        verify(moscow.public_key, b"ctx-b\x00", b"payload", sig)  # other context
    with pytest.raises(SignatureError):
        verify(moscow.public_key, b"ctx-a\x00", b"payloaD", sig)
    with pytest.raises(SignatureError):
        verify(washington.public_key, b"ctx-a\x00", b"payload", sig)
    with pytest.raises(SignatureError):
        verify(moscow.public_key, b"ctx-a\x00", b"payload", sig[:-1])
    with pytest.raises(SignatureError):
        verify(moscow.public_key[:31], b"ctx-a\x00", b"payload", sig)


def test_fingerprint_format() -> None:
    key = bytes(range(32))
    fp = fingerprint(key)
    assert re.fullmatch(r"[0-9a-f]{4}( [0-9a-f]{4}){3}", fp)
    assert fp.replace(" ", "") == hashlib.sha256(key).hexdigest()[:16]


# -- the TLS certificate ---------------------------------------------------------------------


def test_certificate_contents(moscow: Identity) -> None:
    cert = x509.load_der_x509_certificate(moscow.cert_der)
    assert cert_public_key(moscow.cert_der) == moscow.public_key
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "moscow" and cert.issuer == cert.subject
    assert cert.not_valid_before_utc == dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    assert cert.not_valid_after_utc.year == 9999
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    assert cert.serial_number > 0
    cert.verify_directly_issued_by(cert)  # self-signed with the Ed25519 key
    assert x509.load_pem_x509_certificate(moscow.cert_pem()) == cert


def test_cert_public_key_rejects_garbage_and_other_algorithms() -> None:
    with pytest.raises(IdentityError, match="malformed certificate"):
        cert_public_key(b"\x30\x03garbage")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ec")])
    ec_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(IdentityError, match="not Ed25519"):
        cert_public_key(ec_cert.public_bytes(serialization.Encoding.DER))


def _context(identity: Identity, peer: Identity, tmp: Path, *, server: bool) -> ssl.SSLContext:
    """Build a context exactly as the terminal does: own key from files, the peer pinned."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = False
    password = os.urandom(16).hex().encode()
    key_path, cert_path = tmp / f"{identity.name}.key", tmp / f"{identity.name}.crt"
    key_path.write_bytes(identity.tls_key_pem(password))
    cert_path.write_bytes(identity.cert_pem())
    ctx.load_cert_chain(str(cert_path), str(key_path), password=password)
    ctx.load_verify_locations(cadata=peer.cert_pem().decode())
    return ctx


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> tuple[bytes, bytes]:
    """A TLS 1.3 handshake in memory; returns the certificate each side saw."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_side=False)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, obj in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            # The client's certificate reaches the server after the client finishes.
            s.write(b"x")
            c_in.write(s_out.read())
            assert c.read(1) == b"x"
            break
    c_seen, s_seen = c.getpeercert(binary_form=True), s.getpeercert(binary_form=True)
    assert c_seen and s_seen
    assert c.version() == "TLSv1.3"
    return c_seen, s_seen


def test_tls_contract_mutual_pinning(moscow: Identity, washington: Identity, tmp_path: Path) -> None:
    client = _context(moscow, washington, tmp_path, server=False)
    server = _context(washington, moscow, tmp_path, server=True)
    client_saw, server_saw = _handshake(client, server)
    assert cert_public_key(client_saw) == washington.public_key
    assert cert_public_key(server_saw) == moscow.public_key


@pytest.mark.parametrize("impostor_side", ["server", "client"])
def test_tls_refuses_unpinned_certificate(
    moscow: Identity, washington: Identity, tmp_path: Path, impostor_side: str
) -> None:
    stranger = Identity.generate("washington", randbytes=seeded(b"stranger"))
    if impostor_side == "server":
        client = _context(moscow, washington, tmp_path, server=False)
        server = _context(stranger, moscow, tmp_path, server=True)
    else:
        client = _context(stranger, moscow, tmp_path, server=False)
        server = _context(moscow, washington, tmp_path, server=True)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(client, server)


def test_tls_key_pem_needs_password(moscow: Identity) -> None:
    assert b"ENCRYPTED PRIVATE KEY" in moscow.tls_key_pem(b"pw")
    with pytest.raises(IdentityError):
        moscow.tls_key_pem(b"")


# -- contact cards ---------------------------------------------------------------------------


def test_card_round_trip(card: ContactCard, moscow: Identity) -> None:
    text = card.to_json()
    again = ContactCard.from_json(text)
    assert again == card
    assert ContactCard.from_json(text.encode()) == card
    assert again.to_json() == text  # stable text: the CLI compares cards by it
    assert json.loads(text)["hotline_card"] == 1
    assert card.identity_key == moscow.public_key and card.dh_key == moscow.dh_public
    assert [a.path for a in card.addresses] == ["primary", "satellite"]
    assert card.fingerprint == fingerprint(moscow.public_key)
    verify(card.identity_key, CARD_CONTEXT, card.signed_bytes(), card.signature)


def test_signed_bytes_are_canonical_and_exclude_signature(card: ContactCard) -> None:
    body = json.loads(card.signed_bytes())
    assert "signature" not in body and body["hotline_card"] == 1
    assert card.signed_bytes() == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def test_card_rejects_every_truncation_and_trailing_garbage(card: ContactCard) -> None:
    text = card.to_json().rstrip()
    for end in range(len(text)):
        with pytest.raises(CardError):
            ContactCard.from_json(text[:end])
    with pytest.raises(CardError, match="not valid JSON"):
        ContactCard.from_json(text + "}")


def _edit(card: ContactCard, change: Callable[[dict[str, Any]], object]) -> str:
    obj = json.loads(card.to_json())
    change(obj)
    return json.dumps(obj)


def _flip_signature(obj: dict[str, Any]) -> None:
    sig = bytearray(base64.b64decode(obj["signature"]))
    sig[10] ^= 0x01
    obj["signature"] = base64.b64encode(bytes(sig)).decode()


def _other_cert(obj: dict[str, Any]) -> None:
    other = Identity.generate("moscow", randbytes=seeded(b"other"))
    obj["cert_der"] = base64.b64encode(other.cert_der).decode()


def _impostor(obj: dict[str, Any]) -> None:
    """Swap in another key and certificate, keeping the old signature."""
    other = Identity.generate("moscow", randbytes=seeded(b"impostor"))
    obj["identity_key"] = base64.b64encode(other.public_key).decode()
    obj["cert_der"] = base64.b64encode(other.cert_der).decode()


NOT_SIGNED = "card signature does not verify: the file was altered or is not a Hotline card"

CORRUPTIONS: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    ("flipped signature byte", _flip_signature, NOT_SIGNED),
    ("changed name", lambda o: o.update(name="moskva"), NOT_SIGNED),
    ("changed port", lambda o: o["addresses"][0].update(port=7500), NOT_SIGNED),
    ("changed host", lambda o: o["addresses"][1].update(host="203.0.113.9"), NOT_SIGNED),
    ("reordered addresses", lambda o: o["addresses"].reverse(), NOT_SIGNED),
    ("changed created_at", lambda o: o.update(created_at="2026-11-24T18:00:01Z"), NOT_SIGNED),
    (
        "changed dh_key",
        lambda o: o.update(dh_key=base64.b64encode(b"\x01" * 32).decode()),
        NOT_SIGNED,
    ),
    ("impostor key", _impostor, NOT_SIGNED),
    (
        "cert of another key",
        _other_cert,
        "card certificate carries a different key than identity_key",
    ),
    ("cert garbage", lambda o: o.update(cert_der="AAAA"), "card certificate is unusable"),
    ("missing identity_key", lambda o: o.pop("identity_key"), "missing field 'identity_key'"),
    ("missing marker", lambda o: o.pop("hotline_card"), "missing field 'hotline_card'"),
    ("version 2", lambda o: o.update(hotline_card=2), "unsupported card version 2"),
    ("version as string", lambda o: o.update(hotline_card="1"), "unsupported card version '1'"),
    ("version as bool", lambda o: o.update(hotline_card=True), "unsupported card version True"),
    ("unknown field", lambda o: o.update(extra=1), "unknown field 'extra'"),
    ("name not string", lambda o: o.update(name=7), "card field 'name' must be a string, got int"),
    ("bad name", lambda o: o.update(name="Moscow!"), "invalid terminal name"),
    (
        "key not base64",
        lambda o: o.update(identity_key="not base64!"),
        "'identity_key' is not valid base64",
    ),
    ("short key", lambda o: o.update(identity_key="AAAA"), "'identity_key' must be 32 bytes"),
    ("short signature", lambda o: o.update(signature="AAAA"), "signature must be 64 bytes"),
    ("addresses not list", lambda o: o.update(addresses="x"), "'addresses' must be a list"),
    ("no addresses", lambda o: o.update(addresses=[]), "1 to 16 addresses, not 0"),
    ("port as string", lambda o: o["addresses"][0].update(port="7400"), "port an integer"),
    (
        "port out of range",
        lambda o: o["addresses"][0].update(port=70000),
        "card address 1: invalid port",
    ),
    ("address extra key", lambda o: o["addresses"][0].update(x=1), "exactly path, host and port"),
    ("duplicate path", lambda o: o["addresses"][1].update(path="primary"), "path name twice"),
    ("bad created_at", lambda o: o.update(created_at="yesterday"), "invalid created_at"),
    (
        "local created_at",
        lambda o: o.update(created_at="2026-11-24T18:00:00+03:00"),
        "invalid created_at",
    ),
    (
        "impossible date",
        lambda o: o.update(created_at="2026-02-30T18:00:00Z"),
        "invalid created_at",
    ),
]


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in CORRUPTIONS], ids=[c[0] for c in CORRUPTIONS])
def test_corrupt_card(card: ContactCard, change: Callable[[dict[str, Any]], object], message: str) -> None:
    with pytest.raises(CardError, match=re.escape(message)):
        ContactCard.from_json(_edit(card, change))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not valid JSON"),
        (b"hello, moscow", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"card"', "not a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"hotline_card": 1, "hotline_card": 1}', "repeats a field name"),
        (b'{"hotline_card": NaN}', "non-JSON value NaN"),
        (b" " * (MAX_CARD_BYTES + 1), "card is larger than 64 KiB"),
    ],
)
def test_card_rejects_non_cards(data: bytes, message: str) -> None:
    with pytest.raises(CardError, match=re.escape(message)):
        ContactCard.from_json(data)


def test_oversize_card_with_valid_content(card: ContactCard) -> None:
    padded = card.to_json() + " " * MAX_CARD_BYTES
    with pytest.raises(CardError, match="larger than 64 KiB"):
        ContactCard.from_json(padded)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mutated_card_is_rejected_or_unchanged(card: ContactCard, data: st.DataObject) -> None:
    """Any single-byte change either fails with CardError or leaves the same card (whitespace)."""
    raw = bytearray(card.to_json().encode())
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]))
    try:
        parsed = ContactCard.from_json(bytes(raw))
    except CardError:
        return
    assert parsed == card


def test_make_card_validates(moscow: Identity) -> None:
    with pytest.raises(CardError, match="invalid created_at"):
        make_card(moscow, [Address("primary", "127.0.0.1", 1)], "2026-11-24 18:00")
    with pytest.raises(CardError, match="path name twice"):
        make_card(moscow, [Address("primary", "a", 1), Address("primary", "b", 2)], CREATED)
    fractional = make_card(moscow, [Address("primary", "a", 1)], "2026-11-24T18:00:00.123Z")
    assert ContactCard.from_json(fractional.to_json()) == fractional


# -- key files -------------------------------------------------------------------------------


def _same(a: Identity, b: Identity) -> None:
    assert (a.name, a.public_key, a.dh_public, a.state_key, a.cert_der) == (
        b.name,
        b.public_key,
        b.dh_public,
        b.state_key,
        b.cert_der,
    )
    verify(a.public_key, b"t\x00", b"x", b.sign(b"t\x00", b"x"))


@pytest.fixture(scope="module")
def sealed(moscow: Identity, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One passphrase-protected keys file (scrypt at production cost) shared by tests."""
    path = tmp_path_factory.mktemp("sealed") / "keys.json"
    save_keys(path, moscow, "Kreml-1963 ☎")
    return path


def test_keys_round_trip_with_passphrase(sealed: Path, moscow: Identity) -> None:
    doc = json.loads(sealed.read_text())
    assert doc["protection"] == "scrypt+aes-256-gcm"
    assert doc["kdf"]["n"] == 2**15 and doc["kdf"]["r"] == 8 and doc["kdf"]["p"] == 1
    assert moscow.state_key.hex() not in sealed.read_text()
    assert base64.b64encode(moscow.state_key).decode() not in sealed.read_text()
    _same(load_keys(sealed, "Kreml-1963 ☎"), moscow)


def test_passphrase_is_normalised(sealed: Path, moscow: Identity, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    save_keys(path, moscow, "caf\u00e9")  # composed é
    _same(load_keys(path, "cafe\u0301"), moscow)  # decomposed é


def test_wrong_passphrase(sealed: Path) -> None:
    with pytest.raises(PassphraseError, match=f"wrong passphrase for keys file {re.escape(str(sealed))}"):
        load_keys(sealed, "Kreml-1964 ☎")


def test_missing_passphrase_for_protected_file(sealed: Path) -> None:
    with pytest.raises(PassphraseError, match="HOTLINE_PASSPHRASE"):
        load_keys(sealed, None)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(ciphertext=d["ciphertext"][:-4] + ("AAAA" if d["ciphertext"][-4:] != "AAAA" else "BBBB")),
        lambda d: d.update(nonce=base64.b64encode(b"\x00" * 12).decode()),
        lambda d: d["kdf"].update(n=2**14),
        lambda d: d["kdf"].update(salt=base64.b64encode(b"\x00" * 16).decode()),
    ],
    ids=["ciphertext", "nonce", "kdf-n", "salt"],
)
def test_tampered_sealed_file(sealed: Path, tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    doc = json.loads(sealed.read_text())
    change(doc)
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(PassphraseError, match="wrong passphrase"):
        load_keys(path, "Kreml-1963 ☎")


@pytest.mark.parametrize("kdf", [{"n": 2**30}, {"n": 1000}, {"r": 0}, {"p": 100}, {"n": "32768"}], ids=str)
def test_doctored_kdf_parameters_are_refused_before_deriving(sealed: Path, tmp_path: Path, kdf: dict[str, Any]) -> None:
    doc = json.loads(sealed.read_text())
    doc["kdf"].update(kdf)
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="scrypt parameters out of range"):
        load_keys(path, "Kreml-1963 ☎")


def test_keys_round_trip_without_passphrase(moscow: Identity, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    save_keys(path, moscow, None)
    assert json.loads(path.read_text())["protection"] == "none"
    _same(load_keys(path, None), moscow)
    _same(load_keys(path, "ignored for an unprotected file"), moscow)


def test_keys_file_is_private_and_written_atomically(moscow: Identity, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    old = os.umask(0)
    try:
        save_keys(path, moscow, None)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = Identity.generate("moscow", randbytes=seeded(b"replacement"))
    save_keys(path, other, None)  # replaces the file in one rename
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keys(path, None).public_key == other.public_key
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temp file left behind


def test_save_keys_rejects_empty_passphrase(moscow: Identity, tmp_path: Path) -> None:
    with pytest.raises(PassphraseError):
        save_keys(tmp_path / "keys.json", moscow, "")
    assert not (tmp_path / "keys.json").exists()


def test_save_keys_reports_unwritable_place(moscow: Identity, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write"):
        save_keys(tmp_path / "no" / "such" / "keys.json", moscow, None)


def _plain(moscow: Identity, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "plain.json"
    save_keys(path, moscow, None)
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(version=2), "has version 2"),
        (lambda d: d.update(format="other"), "not a Hotline keys file"),
        (lambda d: d.update(protection="rot13"), "unknown protection 'rot13'"),
        (lambda d: d.pop("keys"), "missing field 'keys'"),
        (lambda d: d["keys"].update(state_key="AAAA"), "state key must be 32 bytes"),
        (lambda d: d["keys"].update(ed25519="!!"), "damaged"),
        (lambda d: d["keys"].update(name=5), "wrong type"),
        (lambda d: d["keys"].pop("x25519"), "expected fields"),
        (
            lambda d: d["keys"].update(ed25519=base64.b64encode(b"\x07" * 32).decode()),
            "does not carry this terminal's identity key",
        ),
    ],
)
def test_damaged_plain_keys_file(
    moscow: Identity, tmp_path: Path, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    doc = _plain(moscow, tmp_path)
    change(doc)
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load_keys(path, None)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\xff", b"[]", b"x" * (1024 * 1024 + 1)],
    ids=["empty", "truncated", "binary", "list", "oversize"],
)
def test_malformed_keys_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "keys.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_keys(path, None)


def test_truncated_sealed_file(sealed: Path, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_bytes(sealed.read_bytes()[:-40])
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_keys(path, "Kreml-1963 ☎")


def test_missing_keys_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="hotline init"):
        load_keys(tmp_path / "nope.json", None)
