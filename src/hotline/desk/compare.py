"""What a reader must notice when the two sides' readouts of one call are set side by side.

Pure: a call's readouts and the commitments agreed from it in, a list of differences
out. Each side publishes its own readout, in its own language, and the readouts
differ (desk brief): one side names a commitment the other leaves out, one side
publishes and the other does not, one announces what the other keeps confidential.
``differences`` lists those plainly; it does not judge the prose.

Each side is represented by its latest readout (a later one replaces an earlier).
A commitment counts as *named* in a readout when every significant word of its
title appears there, case-insensitively, as a word beginning with that word's stem
(the word less up to two letters, keeping at least four): "Advisers meet" is named
by "the advisers will meet", "adviser meetings" too. Words are compared as written,
so a title in one language is not found in a readout in another; the console says so.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hotline.desk.records import DeskRecord, RecordType
from hotline.desk.register import Commitment

_WORD = re.compile(r"\w+")
# Words too common to tell a commitment apart (English and Russian), and numbers shorter than 2.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "on",
        "in",
        "at",
        "to",
        "for",
        "by",
        "with",
        "from",
        "into",
        "next",
        "this",
        "that",
        "be",
        "will",
        "is",
        "are",
        "or",
        "its",
        "и",
        "в",
        "во",
        "на",
        "с",
        "со",
        "по",
        "к",
        "о",
        "об",
        "от",
        "для",
        "до",
        "из",
        "за",
        "что",
        "это",
        "как",
    ]
)


class DifferenceKind(enum.StrEnum):
    READOUT_MISSING = "readout-missing"  # one side has published no readout
    DISCLOSURE_DIFFERS = "disclosure-differs"  # the two readouts have different disclosure levels
    COMMITMENT_ONE_SIDE = "commitment-one-side"  # a commitment named in one readout, not the other
    COMMITMENT_UNNAMED = "commitment-unnamed"  # a commitment named in no readout


@dataclass(frozen=True, slots=True)
class Difference:
    """One difference; ``side`` is the side it concerns (whose readout names it, or lacks one)."""

    kind: DifferenceKind
    side: str
    other: str
    commitment: str = ""  # the commitment's title
    commitment_id: str = ""
    side_level: str = ""  # disclosure levels, for DISCLOSURE_DIFFERS
    other_level: str = ""

    @property
    def text(self) -> str:
        """The difference in English (the console translates from the fields)."""
        if self.kind is DifferenceKind.READOUT_MISSING:
            return f"{self.side} has published no readout of this call; only {self.other}'s is here"
        if self.kind is DifferenceKind.DISCLOSURE_DIFFERS:
            return f"{self.side}'s readout is {self.side_level}, {self.other}'s is {self.other_level}"
        if self.kind is DifferenceKind.COMMITMENT_ONE_SIDE:
            return f"commitment '{self.commitment}' is named in {self.side}'s readout but not in {self.other}'s"
        return f"commitment '{self.commitment}' is named in no readout"


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def _stem(word: str) -> str:
    return word[: max(4, len(word) - 2)]


def names(readout_text: str, title: str) -> bool:
    """Whether a readout names a commitment by its title (see the module's docstring)."""
    wanted = [w for w in _words(title) if w not in _STOPWORDS and (len(w) > 1 or not w.isdigit())]
    if not wanted:
        return False
    present = _words(readout_text)
    return all(any(p.startswith(_stem(w)) for p in present) for w in wanted)


def latest_readouts(readouts: Iterable[DeskRecord]) -> dict[str, DeskRecord]:
    """Each author's latest readout."""
    latest: dict[str, DeskRecord] = {}
    for r in sorted((r for r in readouts if r.type is RecordType.READOUT), key=lambda r: (r.at_ns, r.order)):
        latest[r.author] = r
    return latest


def differences(
    sides: tuple[str, str], readouts: Sequence[DeskRecord], agreed: Sequence[Commitment]
) -> list[Difference]:
    """The differences between the two sides' readouts of one call.

    ``sides`` are the call's two parties (proposer, responder); ``readouts`` the call's
    readout records held here; ``agreed`` the commitments agreed from the call (others are
    ignored: only a commitment both sides signed is something both readouts might name)."""
    latest = latest_readouts(readouts)
    found: list[Difference] = []
    a, b = sides
    if not latest:
        return found
    for side, other in ((a, b), (b, a)):
        if side not in latest and other in latest:
            found.append(Difference(DifferenceKind.READOUT_MISSING, side, other))
    if a in latest and b in latest:
        la, lb = latest[a].fields["disclosure"], latest[b].fields["disclosure"]
        if la != lb:
            found.append(Difference(DifferenceKind.DISCLOSURE_DIFFERS, a, b, side_level=la, other_level=lb))
    for item in agreed:
        if not item.agreed_at_ns:
            continue
        named = {s: names(r.fields["text"], item.title) for s, r in latest.items() if s in sides}
        if named and not any(named.values()):
            found.append(Difference(DifferenceKind.COMMITMENT_UNNAMED, a, b, item.title, item.id))
            continue
        for side, other in ((a, b), (b, a)):
            if named.get(side) and other in named and not named[other]:
                found.append(Difference(DifferenceKind.COMMITMENT_ONE_SIDE, side, other, item.title, item.id))
    return found
