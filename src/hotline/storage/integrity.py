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
names each damaged entry, with the reason and who accepted it, and from then on
that damage alone no longer stops the terminal. ``journal verify`` still
reports it.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def check_chain(record: Record, checkpoint: Checkpoint | None, *, start: int = 1) -> ChainCheck:
    """Check the hash chain from entry ``start`` (1, or the checkpoint's entry) to the head.

    Damage that a supervisor accepted in the entries read is left out of ``damage``.
    """
    if checkpoint is not None and start > checkpoint.seq:
        raise ValueError("a check starts at or before the checkpoint's entry")
    found: list[Damage] = []
    accepted_seqs: set[int] = set()
    prev: bytes | None = GENESIS_HASH if start == 1 else None  # unknown before a later start
    expected = start
    head_seq, head_hash, read = start - 1, GENESIS_HASH, 0
    checkpoint_seen = False
    for entry in record.entries(start):
        read += 1
        if entry.seq != expected:
            missing = f"entry {expected}" if entry.seq == expected + 1 else f"entries {expected}..{entry.seq - 1}"
            found.append(Damage(entry.seq, entry.kind, f"{missing} before it is missing (deleted)"))
        elif prev is not None and entry.prev != prev:
            found.append(Damage(entry.seq, entry.kind, "does not link to the entry before it (moved or replaced)"))
        intact = entry_hash(entry.prev, entry.seq, entry.at_ns, entry.kind, entry.peer, entry.body) == entry.hash
        if not intact:
            found.append(Damage(entry.seq, entry.kind, "its hash does not match its contents: it was altered"))
        if checkpoint is not None and entry.seq == checkpoint.seq:
            checkpoint_seen = True
            if entry.hash != checkpoint.hash:
                found.append(Damage(entry.seq, entry.kind, "differs from the entry this terminal verified and "
                                                           "signed: the record up to it was rewritten"))  # fmt: skip
        if entry.kind == "operator.action" and intact:  # an acceptance counts only if it is itself intact
            accepted_seqs.update(_accepted_in(entry))
        prev, expected = entry.hash, entry.seq + 1
        head_seq, head_hash = entry.seq, entry.hash
    if checkpoint is not None and not checkpoint_seen:
        gone = (
            f"entry {checkpoint.seq}" if head_seq + 1 == checkpoint.seq else f"entries {head_seq + 1}..{checkpoint.seq}"
        )
        found.append(Damage(head_seq + 1, "", f"the journal ends at entry {head_seq}, but this terminal verified it "
                                              f"up to entry {checkpoint.seq}: {gone} were cut off"))  # fmt: skip
    damage = tuple(d for d in found if d.seq not in accepted_seqs)
    accepted_found = tuple(sorted({d.seq for d in found if d.seq in accepted_seqs}))
    return ChainCheck(head_seq, head_hash, read, damage, accepted_found)


def _accepted_in(entry: Entry) -> list[int]:
    """The damaged entries an ``accept-damage`` operator action names; nothing for any other entry."""
    try:
        body = entry.decoded()
    except HotlineError:
        return []
    if body.get("action") != ACCEPT_ACTION:
        return []
    seqs = body.get("entries")
    return [s for s in seqs if isinstance(s, int)] if isinstance(seqs, list) else []


def accepted_damage(record: Record) -> set[int]:
    """Every damaged entry a supervisor has accepted, from the whole journal (intact acceptances only)."""
    return {
        seq
        for entry in record.entries()
        if entry.kind == "operator.action"
        and entry_hash(entry.prev, entry.seq, entry.at_ns, entry.kind, entry.peer, entry.body) == entry.hash
        for seq in _accepted_in(entry)
    }


def check_at_start(record: Record, public_key: bytes, entry_count: int) -> ChainCheck:
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
        result = check_chain(record, None)
        return ChainCheck(result.head_seq, result.head_hash, result.read, (bad, *result.damage), result.accepted)
    # A check from the checkpoint needs no acceptance from before it: a supervisor's acceptance is
    # always followed by a new checkpoint, after it.
    start = 1 if checkpoint is None or entry_count <= WHOLE_CHAIN_AT_START else checkpoint.seq
    return check_chain(record, checkpoint, start=start)
