"""The terminal keeps checking its own journal (issue 14): at start, in the background, while it runs.

* **At start**, before anything is appended: the chain from the signed checkpoint
  to the head (``storage.integrity.check_at_start``; the whole chain for a small
  journal). Found damage puts the engine in doubt at once: it appends nothing,
  raises ``journal-altered`` and tells every peer.
* **In the background**, once: the full verify (``audit.verify``: chain, every
  signature, both streams) on a read-only connection in a thread.
* **While it runs**, every ``[journal] check_interval_s``: the entries appended
  since the last check, in a thread; a sound result moves the checkpoint on.
* **At a clean stop**: one last check and checkpoint, so a tail cut off while the
  terminal is stopped is found at the next start.

A supervisor who has looked at the damage accepts it (``accept``): the damaged
entries are read as found, the engine signs and journals the acceptance, and the
whole chain is checked again (in a thread: links keep their heartbeats) before
the checkpoint moves past it. Each acceptance starts a new *generation*: a check
started before it (the full verify, a periodic check) lands on a journal since
accepted, so its result is dropped — the full verify runs again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from hotline.core.errors import HotlineError
from hotline.crypto.identity import Identity
from hotline.engine.engine import Engine
from hotline.storage import audit
from hotline.storage.base import Record
from hotline.storage.integrity import (
    WHOLE_CHAIN_AT_START,
    ChainCheck,
    Checkpoint,
    Damage,
    accepted_damage,
    check_at_start,
    check_chain,
    entries_as_found,
    mark_damaged,
    marked_damage,
    write_checkpoint,
)

log = logging.getLogger("hotline.journal")


class JournalWatch:
    def __init__(
        self,
        record: Record,
        identity: Identity,
        engine: Engine,
        interval_s: float,
        wall_ns: Callable[[], int],
        whole_chain_upto: int = WHOLE_CHAIN_AT_START,
    ) -> None:
        self.record = record
        self.whole_chain_upto = whole_chain_upto
        self.identity = identity
        self.engine = engine
        self.interval_s = interval_s
        self.wall_ns = wall_ns
        self.checkpoint: Checkpoint | None = None
        self.damage: list[Damage] = []
        self.last_check: ChainCheck | None = None
        self.last_check_ns: int | None = None
        self.full: dict[str, Any] | None = None  # the background verify's result, once it has run
        # Bumped by each acceptance: a check started under an older generation read a journal
        # not yet accepted, and its result is dropped (else it would put the terminal back in doubt).
        self.generation = 0
        self._accepting = False

    # -- the checks -------------------------------------------------------------------------

    def check_at_start(self) -> None:
        known = marked_damage(self.record)  # found before the last stop, not accepted since
        if known:
            log.critical("the journal was found damaged before this start and the damage is not accepted yet")
            self._found(known)
        result = check_at_start(self.record, self.identity.public_key, self.record.entry_count(), self.whole_chain_upto)
        self._checked(result, self.generation)
        if result.ok:
            log.info("journal chain intact up to entry %d (%d entries read)", result.head_seq, result.read)

    def _current(self, generation: int, what: str) -> bool:
        """A result counts only if no acceptance began since its check started, nor is under way."""
        if generation == self.generation and not self._accepting:
            return True
        log.info("%s overtaken by an acceptance of the damage: its result is dropped", what)
        return False

    def _checked(self, result: ChainCheck, generation: int) -> None:
        """Take a chain check's result: move the checkpoint on, or put the engine in doubt."""
        if not self._current(generation, "a journal check"):
            return
        self.last_check, self.last_check_ns = result, self.wall_ns()
        if result.ok and not self.damage:
            if result.head_seq > 0 and (self.checkpoint is None or result.head_seq != self.checkpoint.seq):
                self.checkpoint = write_checkpoint(
                    self.record, self.identity, result.head_seq, result.head_hash, self.last_check_ns
                )
            return
        self._found(list(result.damage))

    def _found(self, damage: list[Damage]) -> None:
        known = {d.seq for d in self.damage}
        new = [d for d in damage if d.seq not in known]
        if new:
            self.damage += new
            mark_damaged(self.record, self.damage)
        if self.damage:
            first = self.damage[0]
            more = f" (and {len(self.damage) - 1} more damaged entries)" if len(self.damage) > 1 else ""
            self.engine.journal_damaged(f"{first}{more}", first.seq)

    async def run(self) -> None:
        """The background verify (again, if an acceptance overtook it), then a check of what was
        appended every interval, until cancelled."""
        while not await self._full_verify():
            pass
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check_new()

    async def check_new(self) -> None:
        if self._accepting:
            return  # the acceptance checks the whole chain itself
        generation = self.generation
        if self.checkpoint is None or self.damage:
            result = await asyncio.to_thread(self._on_reader, lambda r: check_chain(r, None, self.identity.public_key))
        else:
            checkpoint = self.checkpoint
            result = await asyncio.to_thread(
                self._on_reader, lambda r: check_chain(r, checkpoint, self.identity.public_key, start=checkpoint.seq)
            )
        self._checked(result, generation)

    async def _full_verify(self) -> bool:
        """The full verify; False if an acceptance overtook it (its result is dropped)."""
        public_key = self.identity.public_key

        def verify(reader: Record) -> tuple[audit.VerifyReport, set[int], list[Damage]]:
            report = audit.verify(reader)
            honoured, forged = accepted_damage(reader, public_key)
            return report, honoured, forged

        generation, started = self.generation, self.wall_ns()
        report, accepted, forged = await asyncio.to_thread(self._on_reader, verify)
        if not self._current(generation, "the full journal verify"):
            return False
        damaged = [seq for seq in report.damaged if seq not in accepted]
        self.full = {"ok": not damaged and not forged, "at_ns": self.wall_ns(), "entries": report.entries,
                     "signatures": report.signatures, "accepted": sorted(accepted & set(report.damaged)),
                     "seconds": round((self.wall_ns() - started) / 1e9, 3)}  # fmt: skip
        found = [Damage(seq, *report.first.get(seq, ("", "failed the full verify"))) for seq in damaged]
        if found or forged:
            self._found(found + forged)
        else:
            log.info("full journal verify: %d entries, %d signatures, intact", report.entries, report.signatures)
        return True

    def _on_reader(self, work: Callable[[Record], Any]) -> Any:
        with self.record.reader() as reader:
            return work(reader)

    def at_stop(self) -> None:
        """A last check and checkpoint before the terminal closes its journal."""
        if self.damage or self._accepting:
            return
        try:
            start = self.checkpoint.seq if self.checkpoint is not None else 1
            self._checked(check_chain(self.record, self.checkpoint, self.identity.public_key, start=start),
                          self.generation)  # fmt: skip
        except HotlineError as e:
            log.error("journal check at stop failed: %s", e)

    # -- a supervisor accepts the damage ----------------------------------------------------

    async def accept(self, reason: str, by: str) -> dict[str, Any]:
        """Journal a supervisor's acceptance of the damage found, then check the whole chain again.

        The reads run in a thread (on a journal of a million entries the check takes seconds, and
        the links' heartbeats must go on meanwhile); the acceptance is signed and journaled by
        the engine on the event loop, in one short transaction."""
        if self._accepting:
            raise HotlineError("an acceptance of the damage is already being journaled")
        if not self.damage:
            raise HotlineError("nothing to accept: the journal passed its last check")
        self._accepting = True
        try:
            self.generation += 1  # what is in flight read the journal before this acceptance
            damage = list(self.damage)
            found = await asyncio.to_thread(self._on_reader, lambda r: entries_as_found(r, [d.seq for d in damage]))
            self.generation += 1  # nor may a check started while the entries were read count
            self.engine.damage_accepted(found, reason, by)  # raises if the commit fails: still in doubt
            self.damage = []
            self.checkpoint = None  # the check below starts from the first entry, reading the acceptance
            generation, public_key = self.generation, self.identity.public_key
            result = await asyncio.to_thread(self._on_reader, lambda r: check_chain(r, None, public_key))
        finally:
            self._accepting = False
        self._checked(result, generation)
        return {"accepted": sorted(found), "journal": self.status()}

    def status(self) -> dict[str, Any]:
        return {
            "state": "altered" if self.damage else "intact",
            "damage": [str(d) for d in self.damage],
            "checked_upto": self.last_check.head_seq if self.last_check else None,
            "checked_at_ns": self.last_check_ns,
            "full_verify": self.full,
        }
