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

A supervisor who has looked at the damage accepts it (``accept``): journaled by
the engine, and the checkpoint moves past it.
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
    ChainCheck,
    Checkpoint,
    Damage,
    accepted_damage,
    check_at_start,
    check_chain,
    mark_damaged,
    marked_damage,
    write_checkpoint,
)

log = logging.getLogger("hotline.journal")


class JournalWatch:
    def __init__(
        self, record: Record, identity: Identity, engine: Engine, interval_s: float, wall_ns: Callable[[], int]
    ) -> None:
        self.record = record
        self.identity = identity
        self.engine = engine
        self.interval_s = interval_s
        self.wall_ns = wall_ns
        self.checkpoint: Checkpoint | None = None
        self.damage: list[Damage] = []
        self.last_check: ChainCheck | None = None
        self.last_check_ns: int | None = None
        self.full: dict[str, Any] | None = None  # the background verify's result, once it has run

    # -- the checks -------------------------------------------------------------------------

    def check_at_start(self) -> None:
        known = marked_damage(self.record)  # found before the last stop, not accepted since
        if known:
            log.critical("the journal was found damaged before this start and the damage is not accepted yet")
            self._found(known)
        result = check_at_start(self.record, self.identity.public_key, self.record.entry_count())
        self._checked(result)
        if result.ok:
            log.info("journal chain intact up to entry %d (%d entries read)", result.head_seq, result.read)

    def _checked(self, result: ChainCheck) -> None:
        """Take a chain check's result: move the checkpoint on, or put the engine in doubt."""
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
        """The background verify, then a check of what was appended every interval, until cancelled."""
        await self._full_verify()
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check_new()

    async def check_new(self) -> None:
        if self.checkpoint is None or self.damage:
            result = await asyncio.to_thread(self._on_reader, lambda r: check_chain(r, None))
        else:
            checkpoint = self.checkpoint
            result = await asyncio.to_thread(
                self._on_reader, lambda r: check_chain(r, checkpoint, start=checkpoint.seq)
            )
        self._checked(result)

    async def _full_verify(self) -> None:
        def verify(reader: Record) -> tuple[audit.VerifyReport, set[int]]:
            return audit.verify(reader), accepted_damage(reader)

        started = self.wall_ns()
        report, accepted = await asyncio.to_thread(self._on_reader, verify)
        damaged = [seq for seq in report.damaged if seq not in accepted]
        self.full = {"ok": not damaged, "at_ns": self.wall_ns(), "entries": report.entries,
                     "signatures": report.signatures, "accepted": sorted(accepted & set(report.damaged)),
                     "seconds": round((self.wall_ns() - started) / 1e9, 3)}  # fmt: skip
        if damaged:
            texts = {int(p.split(" ", 2)[1]): p for p in report.problems if p.startswith("entry ")}
            self._found([Damage(seq, "", texts.get(seq, f"entry {seq} failed the full verify")) for seq in damaged])
        else:
            log.info("full journal verify: %d entries, %d signatures, intact", report.entries, report.signatures)

    def _on_reader(self, work: Callable[[Record], Any]) -> Any:
        with self.record.reader() as reader:
            return work(reader)

    def at_stop(self) -> None:
        """A last check and checkpoint before the terminal closes its journal."""
        if self.damage:
            return
        try:
            start = self.checkpoint.seq if self.checkpoint is not None else 1
            self._checked(check_chain(self.record, self.checkpoint, start=start))
        except HotlineError as e:
            log.error("journal check at stop failed: %s", e)

    # -- a supervisor accepts the damage ----------------------------------------------------

    def accept(self, reason: str, by: str) -> dict[str, Any]:
        if not self.damage:
            raise HotlineError("nothing to accept: the journal passed its last check")
        entries = sorted(d.seq for d in self.damage)
        self.engine.damage_accepted(entries, reason, by)
        self.damage = []
        self.checkpoint = None  # the check below starts from the first entry, reading the acceptance
        self._checked(check_chain(self.record, None))
        return {"accepted": entries, "journal": self.status()}

    def status(self) -> dict[str, Any]:
        return {
            "state": "altered" if self.damage else "intact",
            "damage": [str(d) for d in self.damage],
            "checked_upto": self.last_check.head_seq if self.last_check else None,
            "checked_at_ns": self.last_check_ns,
            "full_verify": self.full,
        }
