"""The journal file itself: a journal made by an earlier version still opens, and is upgraded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hotline.core.errors import JournalError
from hotline.storage.sqlite.journal import Journal


def test_a_journal_from_before_the_classification_column_is_upgraded_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    with journal.transaction():
        journal.append("terminal.created", {"name": "washington"}, 1)
    journal.close()
    old = sqlite3.connect(path)  # as the previous release left it
    old.execute("ALTER TABLE messages DROP COLUMN classification")
    old.close()

    with pytest.raises(JournalError, match=r"predates the column\(s\) messages.classification.*upgrades it"):
        Journal(path, readonly=True)  # a reader cannot upgrade it, and says what will
    Journal(path).close()  # a writer does
    reader = Journal(path, readonly=True)
    assert reader.execute("SELECT count(*) FROM messages WHERE classification = ''").fetchone() == (0,)
    assert reader.execute("SELECT count(*) FROM entries").fetchone() == (1,), "nothing recorded was lost"
    reader.close()
