"""desk.compare: the differences a reader must notice between the two sides' readouts."""

from __future__ import annotations

import uuid

from hotline.desk.compare import Difference, DifferenceKind, differences, latest_readouts, names
from hotline.desk.records import DeskRecord, RecordType
from hotline.desk.register import Commitment

CALL = str(uuid.uuid4())
SIDES = ("washington", "moscow")


def readout(author: str, text: str, disclosure: str = "public", at_ns: int = 1, lang: str = "en") -> DeskRecord:
    peer = "moscow" if author == "washington" else "washington"
    fields = {"lang": lang, "disclosure": disclosure, "text": text, "shared": True}
    return DeskRecord(str(uuid.uuid4()), RecordType.READOUT, CALL, author, peer, 2, at_ns, fields)


def commitment(title: str, agreed: bool = True) -> Commitment:
    return Commitment(
        id=str(uuid.uuid4()), proposer="washington", other="moscow", call=CALL, title=title, detail="",
        owner="both", due_ns=0, kind="meeting", disclosure="public", starts_ns=0, ends_ns=0, rounds=0,
        proposed_at_ns=1, digest=bytes(32), state="agreed" if agreed else "proposed",
        agreed_at_ns=5 if agreed else 0, agreed_by="moscow" if agreed else "",
    )  # fmt: skip


def test_a_commitment_named_in_one_readout_only_is_flagged() -> None:
    advisers = commitment("Advisers meet")
    found = differences(
        SIDES,
        [readout("washington", "The presidents agreed that their ADVISERS will MEET next week."),
         readout("moscow", "Стороны обсудили ситуацию.", lang="ru")],
        [advisers],
    )  # fmt: skip
    assert found == [Difference(DifferenceKind.COMMITMENT_ONE_SIDE, "washington", "moscow", "Advisers meet",
                                advisers.id)]  # fmt: skip
    assert found[0].text == "commitment 'Advisers meet' is named in washington's readout but not in moscow's"


def test_matching_is_by_title_words_case_insensitively_with_a_short_stem() -> None:
    assert names("the advisers will meet", "Advisers meet")
    assert names("adviser meetings are planned", "Advisers meet")
    assert names("Встреча советников", "встреча советников")
    assert not names("the advisers spoke", "Advisers meet")  # every significant word must be there
    assert not names("anything at all", "the of and")  # a title of only common words names nothing
    assert names("a summit in Geneva", "Summits")


def test_named_in_both_or_neither() -> None:
    summit = commitment("Summit in Geneva")
    both = [readout("washington", "A summit in Geneva was agreed."), readout("moscow", "Agreed a Geneva summit.")]
    assert differences(SIDES, both, [summit]) == []
    neither = [readout("washington", "We talked."), readout("moscow", "We talked too.")]
    assert [d.kind for d in differences(SIDES, neither, [summit])] == [DifferenceKind.COMMITMENT_UNNAMED]


def test_a_readout_on_one_side_only_and_differing_disclosure() -> None:
    only = differences(SIDES, [readout("moscow", "Разговор состоялся.", lang="ru")], [])
    assert only == [Difference(DifferenceKind.READOUT_MISSING, "washington", "moscow")]
    assert "washington has published no readout" in only[0].text
    levels = differences(
        SIDES, [readout("washington", "x", "public"), readout("moscow", "y", "confidential")], []
    )  # fmt: skip
    assert levels == [Difference(DifferenceKind.DISCLOSURE_DIFFERS, "washington", "moscow",
                                 side_level="public", other_level="confidential")]  # fmt: skip
    assert levels[0].text == "washington's readout is public, moscow's is confidential"


def test_no_readouts_no_differences_and_unagreed_commitments_are_ignored() -> None:
    assert differences(SIDES, [], [commitment("Advisers meet")]) == []
    rs = [readout("washington", "advisers meet"), readout("moscow", "nothing")]
    assert differences(SIDES, rs, [commitment("Advisers meet", agreed=False)]) == []


def test_the_latest_readout_of_each_side_stands() -> None:
    old = readout("washington", "first draft", "confidential", at_ns=1)
    new = readout("washington", "advisers meet", "public", at_ns=9)
    assert latest_readouts([new, old])["washington"] is new
    rs = [old, new, readout("moscow", "advisers will meet", "public")]
    assert differences(SIDES, rs, [commitment("Advisers meet")]) == []
