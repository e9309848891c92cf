"""Message content: what a person wrote, validated by the model, through the content codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.core.errors import DeliveryError, RemoteProtocolError
from hotline.core.model import (
    MAX_MARKING_CHARS,
    Attachment,
    MessageContent,
    Precedence,
    safe_file_name,
    validate_attachment_name,
    validate_marking,
)
from hotline.core.wire import pack, unpack
from hotline.crypto.envelope import decode_content, encode_content

MID = "0190f2a0-0000-7000-8000-000000000001"

# Letters, marks, digits, punctuation and symbols of any script, with spaces only inside.
markings = st.text(
    st.characters(whitelist_categories=("L", "M", "N", "P", "S")) | st.just(" "), min_size=1, max_size=MAX_MARKING_CHARS
).filter(lambda m: m == m.strip())


def content(**fields: object) -> MessageContent:
    values: dict[str, object] = {
        "id": MID, "sender": "moscow", "recipient": "washington", "precedence": Precedence.IMMEDIATE,
        "lang": "ru", "subject": "Ответ", "body": "Согласны.", "created_at_ns": 1_764_000_000_000_000_000,
    }  # fmt: skip
    values.update(fields)
    return MessageContent(**values)  # type: ignore[arg-type]


@given(
    subject=st.text(max_size=100),
    body=st.text(max_size=500),
    classification=st.just("") | markings,
    attachments=st.lists(st.tuples(st.sampled_from(["a.txt", "readout.pdf"]), st.binary(max_size=64)), max_size=3),
)
def test_content_round_trips_with_every_field(
    subject: str, body: str, classification: str, attachments: list[tuple[str, bytes]]
) -> None:
    original = content(
        subject=subject,
        body=body,
        classification=classification,
        attachments=tuple(Attachment(name, data) for name, data in attachments),
    )
    assert decode_content(encode_content(original), "moscow", "washington") == original


def test_content_without_a_marking_decodes_as_unmarked() -> None:
    fields = unpack(encode_content(content(classification="SECRET")))
    del fields["cls"]
    assert decode_content(pack(fields), "moscow", "washington").classification == ""


@pytest.mark.parametrize(
    ("marking", "ok"),
    [
        ("SECRET", True),
        ("SECRET//NOFORN", True),
        ("СОВЕРШЕННО СЕКРЕТНО", True),
        ("", False),
        (" SECRET", False),
        ("SECRET\n", False),
        ("SEC\x00RET", False),
        ("S" * (MAX_MARKING_CHARS + 1), False),
    ],
)
def test_markings_are_printable_short_and_trimmed(marking: str, ok: bool) -> None:
    if ok:
        assert validate_marking(marking) == marking
        assert content(classification=marking).classification == marking
    else:
        with pytest.raises(DeliveryError, match="invalid classification marking"):
            validate_marking(marking)
        if marking:  # "" is how automatic items (receipts, tests) go: unmarked
            with pytest.raises(DeliveryError, match="invalid classification marking"):
                content(classification=marking)


def test_a_peer_sending_a_bad_marking_is_a_protocol_error() -> None:
    fields = unpack(encode_content(content()))
    fields["cls"] = "SECRET\x1b[2J"  # a terminal escape sequence posing as a marking
    with pytest.raises(RemoteProtocolError, match="invalid message content"):
        decode_content(pack(fields), "moscow", "washington")
    fields["cls"] = 3
    with pytest.raises(RemoteProtocolError, match="'cls'"):
        decode_content(pack(fields), "moscow", "washington")


@pytest.mark.parametrize(
    "name", ["..", ".", "a\\b.txt", "a\r\nX-Evil: 1.txt", "tab\there", "readout\u202efdp.exe", "c:report", "x" * 256]
)
def test_what_we_send_is_held_to_safe_attachment_names(name: str) -> None:
    with pytest.raises(DeliveryError, match="attachment name"):
        validate_attachment_name(name)


def test_a_peer_s_odd_attachment_name_is_taken_and_saved_under_a_safe_one() -> None:
    """Another implementation may allow what we do not send; an authentic message is not refused
    for its name (that would jam the stream), but the name is made safe before it is a file."""
    odd = ["a\\b.pdf", "..", "r\u202efdp.exe"]
    got = decode_content(encode_content(content(attachments=tuple(Attachment(n, b"x") for n in odd))), "m", "w")
    assert [a.name for a in got.attachments] == odd
    assert [safe_file_name(a.name) for a in got.attachments] == ["a_b.pdf", "attachment", "r_fdp.exe"]
    fields = unpack(encode_content(content()))
    fields["att"] = [["a/b", b"x"]]  # a path in it: not taken from anyone
    with pytest.raises(RemoteProtocolError, match="attachment name"):
        decode_content(pack(fields), "m", "w")


def test_device_names_are_made_safe_whatever_their_case_or_extension() -> None:
    assert [safe_file_name(n) for n in ("con", "NUL.txt", "com1.pdf", "Lpt9", "aux .log", "lpt¹")] == [
        "_con", "_NUL.txt", "_com1.pdf", "_Lpt9", "_aux .log", "_lpt¹",
    ]  # fmt: skip
    assert [safe_file_name(n) for n in ("console.txt", "com10", "nullify", "prn-2.pdf")] == [
        "console.txt", "com10", "nullify", "prn-2.pdf",
    ]  # fmt: skip
