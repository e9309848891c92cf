"""Opening the storage: the one place that knows which backend keeps a terminal's record.

Callers above the storage layer ask for a ``Storage`` and use its ``record``,
``store`` and ``access`` through the Protocols of ``hotline.storage.base``; only
this module names a backend. SQLite is the only one today; a PostgreSQL backend
would be chosen here (from the configuration), and its callers would not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hotline.storage.base import AccessStore, Record, TerminalStore
from hotline.storage.sqlite.access import Access
from hotline.storage.sqlite.journal import Journal
from hotline.storage.sqlite.store import Store


@dataclass(frozen=True, slots=True)
class Storage:
    """One terminal's record and the stores over it, sharing its connection and transactions."""

    record: Record
    store: TerminalStore
    access: AccessStore

    def close(self) -> None:
        self.record.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_storage(path: Path, *, synchronous: str = "FULL", readonly: bool = False) -> Storage:
    """The terminal's storage at ``path`` (its journal file), created if absent unless ``readonly``."""
    journal = Journal(path, synchronous=synchronous, readonly=readonly)
    return Storage(record=journal, store=Store(journal), access=Access(journal))
