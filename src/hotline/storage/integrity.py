"""Is the record still what was written? The chain check a terminal runs at start and while it runs.

``audit.verify`` proves a whole journal (chain and every signature) and takes a
while on a big one. A running terminal needs an answer at once, before it
appends anything, so it keeps a *checkpoint*: the sequence number and hash of
the last entry it has verified, signed with its own identity key and kept in
the journal's metadata. At start it checks the chain from that entry to the
head: the checkpoint's entry still has the hash that was signed (else the
record before it was rewritten), every entry after it follows on (no gap, each
links to the one before, each hash matches its contents), and the journal
still reaches the checkpoint (else its tail was cut off). A journal small
enough is checked from its first entry instead; the full verify runs in the
background either way. A checkpoint is written after every clean check, so the
next start only reads what was appended since.

An entry found damaged stays damaged: the hash chain cannot be mended without
rewriting history. A supervisor who has looked at it may *accept* it
(``hotline journal accept-damage --reason``): an ``operator.action`` entry
names each damaged entry and its digest *as found* (every column of the row),
with the reason and who accepted it, signed with the terminal's identity key;
from then on that damage alone no longer stops the terminal, for as long as the
entry is still exactly as it was accepted. An acceptance is only as good as its
signature: anyone who can write the file can append an ``operator.action``, so
one not signed by this terminal is damage itself, and an accepted entry changed
again is damaged again. ``journal verify`` still reports it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hotline.core.errors import HotlineError, JournalCorrupt, SignatureError
from hotline.core.wire import pack, unpack
from hotline.crypto.identity import Identity, verify
from hotline.storage.base import Record
from hotline.storage.records import GENESIS_HASH, Entry, entry_hash

CHECKPOINT_KEY = "verified_head"
# Set when a check finds damage, cleared by the acceptance: so the damage stays known across a
# restart, and a command that writes to the journal while the terminal is stopped refuses too.
DAMAGE_KEY = "journal_damage"
CHECKPOINT_CONTEXT = b"hotline-journal-checkpoint-v1\x00"
ACCEPT_ACTION = "accept-damage"
ACCEPT_CONTEXT = b"hotline-journal-acceptance-v1\x00"
# Up to this many entries, the start-up check reads the whole chain (well under a second
# here); past it, it starts from the checkpoint and leaves the rest to the background verify.
WHOLE_CHAIN_AT_START = 50_000


@dataclass(frozen=True, slots=True)
class Damage:
    """One entry found not as it was written: ``seq`` names it, ``text`` says how."""

    seq: int
    kind: str
    text: str

    def __str__(self) -> str:
        return f"entry {self.seq}{f' ({self.kind})' if self.kind else ''}: {self.text}"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The last entry this terminal verified, signed by it."""

    seq: int
    hash: bytes
    at_ns: int
    signature: bytes

    @staticmethod
    def signed_bytes(seq: int, digest: bytes, at_ns: int) -> bytes:
        return pack([seq, digest, at_ns])


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """What one check found: how far the chain goes, and the damage not yet accepted."""

    head_seq: int
    head_hash: bytes
    read: int  # entries read
    damage: tuple[Damage, ...] = ()
    accepted: tuple[int, ...] = ()  # damaged entries a supervisor has accepted (seen in this check)

    @property
    def ok(self) -> bool:
        return not self.damage

    def summary(self) -> str:
        if self.ok:
            return f"the journal's chain is intact up to entry {self.head_seq}"
        first = self.damage[0]
        more = f" (and {len(self.damage) - 1} more)" if len(self.damage) > 1 else ""
        return f"the journal was altered: {first}{more}"


def read_checkpoint(record: Record, public_key: bytes) -> Checkpoint | None:
    """The stored checkpoint, its signature checked against ``public_key``; None if there is none.

    Raises ``SignatureError`` if one is there but was not signed by this terminal.
    """
    raw = record.get_meta(CHECKPOINT_KEY)
    if raw is None:
        return None
    try:
        seq, digest, at_ns, signature = unpack(raw)
        checkpoint = Checkpoint(int(seq), bytes(digest), int(at_ns), bytes(signature))
    except (HotlineError, TypeError, ValueError) as e:
        raise SignatureError(f"the journal's checkpoint is malformed ({e})") from None
    verify(public_key, CHECKPOINT_CONTEXT, Checkpoint.signed_bytes(seq, digest, at_ns), checkpoint.signature)
    return checkpoint


def checkpoint_unverified(record: Record) -> tuple[int, int] | None:
    """(entry, time) of the stored checkpoint, its signature not checked: for a stopped terminal's status."""
    raw = record.get_meta(CHECKPOINT_KEY)
    if raw is None:
        return None
    try:
        seq, _, at_ns, _ = unpack(raw)
        return int(seq), int(at_ns)
    except (HotlineError, TypeError, ValueError):
        return None


def mark_damaged(record: Record, damage: list[Damage]) -> None:
    """Remember the damage found (opens its own transaction)."""
    with record.transaction():
        record.set_meta(DAMAGE_KEY, pack([[d.seq, d.kind, d.text] for d in damage]))


def marked_damage(record: Record) -> list[Damage]:
    """The damage a check found and no supervisor has accepted yet."""
    raw = record.get_meta(DAMAGE_KEY)
    if not raw:
        return []
    try:
        return [Damage(int(seq), str(kind), str(text)) for seq, kind, text in unpack(raw)]
    except (HotlineError, TypeError, ValueError):
        return [Damage(0, "", "the journal was found damaged (the record of how is itself unreadable)")]


def clear_damage(record: Record) -> None:
    """Inside the acceptance's transaction: the damage is accepted."""
    record.set_meta(DAMAGE_KEY, b"")


def refuse_if_damaged(record: Record) -> None:
    """For commands that write while the terminal is stopped: refuse as the terminal does."""
    damage = marked_damage(record)
    if damage:
        raise JournalCorrupt(
            f"this terminal's journal failed its integrity check ({damage[0]}); nothing is appended until a "
            "supervisor accepts the damage with `hotline journal accept-damage --reason ...` or restores a backup"
        )


def write_checkpoint(record: Record, identity: Identity, seq: int, digest: bytes, at_ns: int) -> Checkpoint:
    """Sign and store a checkpoint at entry ``seq`` (opens its own transaction)."""
    signature = identity.sign(CHECKPOINT_CONTEXT, Checkpoint.signed_bytes(seq, digest, at_ns))
    with record.transaction():
        record.set_meta(CHECKPOINT_KEY, pack([seq, digest, at_ns, signature]))
    return Checkpoint(seq, digest, at_ns, signature)


def as_found(entry: Entry) -> bytes:
    """The digest of an entry exactly as stored, every column (its stored hash and link too):
    what an acceptance signs, so that an accepted entry changed in any way is damaged again."""
    return hashlib.sha256(
        pack([entry.seq, entry.at_ns, entry.kind, entry.peer, entry.body, entry.prev, entry.hash])
    ).digest()


def entries_as_found(record: Record, seqs: Iterable[int]) -> dict[int, bytes]:
    """``as_found`` of each entry in ``seqs`` that the record holds; a number past its head (a cut
    tail) or otherwise missing (entry 0, the checkpoint) is left out: there is nothing to accept."""
    found: dict[int, bytes] = {}
    for seq in sorted(set(seqs)):
        if seq < 1:
            continue
        entry = next(iter(record.entries(seq)), None)
        if entry is not None and entry.seq == seq:
            found[seq] = as_found(entry)
    return found


def _acceptance_bytes(seqs: list[int], digests: list[bytes], damage: str, reason: str, by: str) -> bytes:
    return pack([seqs, digests, damage, reason, by])


def acceptance(identity: Identity, found: dict[int, bytes], damage: str, reason: str, by: str) -> dict[str, Any]:
    """The body of an ``accept-damage`` operator action, signed with the terminal's identity key."""
    seqs = sorted(found)
    digests = [found[s] for s in seqs]
    signature = identity.sign(ACCEPT_CONTEXT, _acceptance_bytes(seqs, digests, damage, reason, by))
    return {"entries": seqs, "found": digests, "damage": damage, "reason": reason, "by": by, "signature": signature}


# The entries that set this terminal's own key (``engine.trust``): every later signature of its own is by that key.
OWN_KEY_KINDS = frozenset({"terminal.created", "terminal.rotated", "terminal.revoked"})


@dataclass
class Acceptances:
    """The acceptances read so far, each checked against the terminal's key as it is read: the key in
    force at that point of the journal (``follow``; a key rotated or revoked since signed the earlier
    ones), starting from ``public_key`` (the current key, right for a check from the latest checkpoint,
    which a supervisor's acceptance always precedes)."""

    public_key: bytes
    accepted: dict[int, set[bytes]] = field(default_factory=dict)  # entry -> its digests as accepted

    def follow(self, entry: Entry) -> None:
        """An entry that sets the terminal's own key (created, rotated, revoked) makes it the key in force."""
        if entry.kind not in OWN_KEY_KINDS:
            return
        try:
            key = entry.decoded()["identity_key"]
        except (HotlineError, KeyError):
            return  # an unreadable entry: its hash check says if it was altered
        if isinstance(key, bytes):
            self.public_key = key

    def note(self, entry: Entry) -> Damage | None:
        """Read an ``operator.action``: an acceptance adds what it accepts; a forged one is damage."""
        try:
            body = entry.decoded()
        except HotlineError:
            return None  # not an acceptance anyone could read; its hash check says if it was altered
        if body.get("action") != ACCEPT_ACTION:
            return None
        try:
            seqs, digests = body["entries"], body["found"]
            damage, reason, by, signature = body["damage"], body["reason"], body["by"], body["signature"]
            if not (
                isinstance(seqs, list) and isinstance(digests, list) and len(seqs) == len(digests)
                and all(isinstance(s, int) for s in seqs) and all(isinstance(d, bytes) for d in digests)
                and isinstance(signature, bytes)
            ):  # fmt: skip
                raise TypeError("entries, found or signature malformed")
            verify(self.public_key, ACCEPT_CONTEXT, _acceptance_bytes(seqs, digests, damage, reason, by), signature)
        except (KeyError, TypeError, HotlineError):
            return Damage(entry.seq, entry.kind, "accepts damage but was not signed by this terminal: the "
                                                 "acceptance was forged or altered")  # fmt: skip
        for seq, digest in zip(seqs, digests, strict=True):
            self.accepted.setdefault(seq, set()).add(digest)
        return None

    def honours(self, entry: Entry) -> bool:
        """Damage at ``entry`` was accepted, and the entry is still exactly as it was then."""
        digests = self.accepted.get(entry.seq)
        return digests is not None and as_found(entry) in digests


def check_chain(record: Record, checkpoint: Checkpoint | None, public_key: bytes, *, start: int = 1) -> ChainCheck:
    """Check the hash chain from entry ``start`` (1, or the checkpoint's entry) to the head.

    Damage that this terminal's signed acceptance covers, at an entry still as it was accepted,
    is left out of ``damage``; an acceptance not signed by it is damage.
    """
    if checkpoint is not None and start > checkpoint.seq:
        raise ValueError("a check starts at or before the checkpoint's entry")
    found: list[Damage] = []
    damaged: dict[int, Entry] = {}  # the entries with damage, as read: an acceptance is checked against them
    acceptances = Acceptances(public_key)
    prev: bytes | None = GENESIS_HASH if start == 1 else None  # unknown before a later start
    expected = start
    head_seq, head_hash, read = start - 1, GENESIS_HASH, 0
    checkpoint_seen = False

    def damage(entry: Entry, text: str) -> None:
        found.append(Damage(entry.seq, entry.kind, text))
        damaged[entry.seq] = entry

    for entry in record.entries(start):
        read += 1
        if entry.seq != expected:
            missing = f"entry {expected}" if entry.seq == expected + 1 else f"entries {expected}..{entry.seq - 1}"
            damage(entry, f"{missing} before it is missing (deleted)")
        elif prev is not None and entry.prev != prev:
            damage(entry, "does not link to the entry before it (moved or replaced)")
        intact = entry_hash(entry.prev, entry.seq, entry.at_ns, entry.kind, entry.peer, entry.body) == entry.hash
        if not intact:
            damage(entry, "its hash does not match its contents: it was altered")
        if checkpoint is not None and entry.seq == checkpoint.seq:
            checkpoint_seen = True
            if entry.hash != checkpoint.hash:
                damage(entry, "differs from the entry this terminal verified and signed: the record up to it "
                              "was rewritten")  # fmt: skip
        acceptances.follow(entry)
        if entry.kind == "operator.action":
            forged = acceptances.note(entry)
            if forged is not None:
                damage(entry, forged.text)
        prev, expected = entry.hash, entry.seq + 1
        head_seq, head_hash = entry.seq, entry.hash
    if read == 0 and start > 1:
        # Nothing from ``start`` on: the head is further back (a cut tail); name where it really is.
        last = record.last()
        head_seq, head_hash = (last.seq, last.hash) if last is not None else (0, GENESIS_HASH)
    if checkpoint is not None and not checkpoint_seen and head_seq < checkpoint.seq:
        gone = (
            f"entry {checkpoint.seq}" if head_seq + 1 == checkpoint.seq else f"entries {head_seq + 1}..{checkpoint.seq}"
        )
        found.append(Damage(head_seq + 1, "", f"the journal ends at entry {head_seq}, but this terminal verified it "
                                              f"up to entry {checkpoint.seq}: {gone} were cut off"))  # fmt: skip
    # (A checkpoint's entry deleted with entries after it still there is the gap found above.)
    honoured = {seq for seq, entry in damaged.items() if acceptances.honours(entry)}
    return ChainCheck(
        head_seq, head_hash, read,
        tuple(d for d in found if d.seq not in honoured),
        tuple(sorted({d.seq for d in found if d.seq in honoured})),
    )  # fmt: skip


def accepted_damage(record: Record, public_key: bytes) -> tuple[set[int], list[Damage]]:
    """From the whole journal: the entries whose damage this terminal's signed acceptance covers
    and which are still as accepted, and the acceptances not signed by it (damage themselves)."""
    acceptances = Acceptances(public_key)
    forged = []
    for read in record.entries():
        acceptances.follow(read)
        if read.kind == "operator.action" and (d := acceptances.note(read)) is not None:
            forged.append(d)
    honoured = set()
    for seq in acceptances.accepted:
        entry = next(iter(record.entries(seq)), None) if seq >= 1 else None
        if entry is not None and entry.seq == seq and acceptances.honours(entry):
            honoured.add(seq)
    return honoured, forged


def check_at_start(
    record: Record, public_key: bytes, entry_count: int, whole_chain_upto: int = WHOLE_CHAIN_AT_START
) -> ChainCheck:
    """The check a terminal runs before it appends anything.

    A checkpoint that is there but not signed by this terminal is damage in itself (entry 0):
    whoever can write the file could otherwise move it to hide a cut tail. One that is missing
    cannot be told from a journal never checked before; the peer still notices a cut tail (its
    hello claims envelopes this journal no longer holds, and the link is refused).
    """
    try:
        checkpoint = read_checkpoint(record, public_key)
    except SignatureError as e:
        bad = Damage(0, "checkpoint", f"the journal's checkpoint was not signed by this terminal ({e})")
        result = check_chain(record, None, public_key)
        return ChainCheck(result.head_seq, result.head_hash, result.read, (bad, *result.damage), result.accepted)
    # A check from the checkpoint needs no acceptance from before it: a supervisor's acceptance is
    # always followed by a new checkpoint, after it.
    start = 1 if checkpoint is None or entry_count <= whole_chain_upto else checkpoint.seq
    return check_chain(record, checkpoint, public_key, start=start)
