"""The journal: one SQLite file per terminal, append-only and hash-chained.

``entries`` is the record: every message, receipt, link event and operator
action, each carrying the SHA-256 of the entry before it. Triggers refuse any
UPDATE or DELETE on it. The other tables (peers, messages, cursors, sessions,
attachments) are the working state derived from the record, always changed in
the same transaction as the entry that explains the change.

The ratchet state lives in ``sessions``, encrypted under the terminal's state
key, and never in ``entries``: the record is for export, secrets are not.

SQLite runs in WAL mode with ``synchronous=FULL`` by default (DESIGN: measured
~4,500 single-row commits/s here); the terminal batches work into one
transaction per event-loop turn (group commit). Readers (``hotline inbox`` while
the terminal runs) do not block the writer in WAL mode. Every write transaction
is ``BEGIN IMMEDIATE`` and reads the chain head inside it, so a second process
(``hotline send`` while the terminal is stopped, or racing its start) can never
fork the chain.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hotline.core.errors import JournalError
from hotline.core.wire import pack
from hotline.storage.records import GENESIS_HASH, Entry, entry_hash

SCHEMA_VERSION = 1

# Columns added after a table was first released: (table, column, declaration).
_ADDED_COLUMNS = (("messages", "classification", "TEXT NOT NULL DEFAULT ''"),)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS entries(
    seq INTEGER PRIMARY KEY,
    at_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    peer TEXT NOT NULL DEFAULT '',
    body BLOB NOT NULL,
    prev BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TABLE IF NOT EXISTS peers(
    name TEXT PRIMARY KEY,
    card TEXT NOT NULL,
    identity_key BLOB NOT NULL,
    safety_number TEXT NOT NULL,
    paired_at_ns INTEGER NOT NULL,
    verified_at_ns INTEGER,
    entry INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions(peer TEXT PRIMARY KEY, state BLOB NOT NULL);
-- Keys a peer held before its current one (key rotation, ``crypto.succession``): 'retired' ones stay
-- valid for what they signed before their successor (envelopes up to ``upto`` of the stream running
-- then); 'revoked' ones are refused for everything, and so is any card carrying them.
CREATE TABLE IF NOT EXISTS peer_keys(
    peer TEXT NOT NULL,
    key BLOB NOT NULL,
    state TEXT NOT NULL,
    successor BLOB,
    upto INTEGER NOT NULL DEFAULT 0,
    at_ns INTEGER NOT NULL,
    entry INTEGER NOT NULL,
    PRIMARY KEY(peer, key)
);
-- This terminal's own successions and revocations, each as signed, re-sent on every new link.
-- ``peers``: the peers paired when it was made, each to the last envelope the old key sealed for it.
CREATE TABLE IF NOT EXISTS own_statements(
    entry INTEGER PRIMARY KEY, kind TEXT NOT NULL, statement BLOB NOT NULL, peers BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors(
    peer TEXT PRIMARY KEY,
    out_next_seq INTEGER NOT NULL DEFAULT 1,
    out_acked INTEGER NOT NULL DEFAULT 0,
    out_stream_hash BLOB NOT NULL DEFAULT (zeroblob(32)),
    in_upto INTEGER NOT NULL DEFAULT 0,
    in_stream_hash BLOB NOT NULL DEFAULT (zeroblob(32)),
    last_receipt_out BLOB,
    last_receipt_in BLOB,
    last_contact_ns INTEGER
);
CREATE TABLE IF NOT EXISTS messages(
    id TEXT PRIMARY KEY,
    direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
    peer TEXT NOT NULL,
    seq INTEGER,
    precedence INTEGER NOT NULL,
    lang TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at_ns INTEGER NOT NULL,
    state TEXT NOT NULL,
    queued_at_ns INTEGER,
    sent_at_ns INTEGER,
    delivered_at_ns INTEGER,
    received_at_ns INTEGER,
    envelope BLOB,
    stream_hash BLOB,
    order_key INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT 'message',
    read_at_ns INTEGER,
    acknowledged_at_ns INTEGER,
    acknowledged_by TEXT,
    classification TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_stream ON messages(direction, peer, seq);
CREATE INDEX IF NOT EXISTS messages_state ON messages(direction, peer, state);
CREATE TABLE IF NOT EXISTS alarms(
    kind TEXT NOT NULL,
    peer TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    raised_ns INTEGER NOT NULL,
    PRIMARY KEY (kind, peer, subject)
);
CREATE TABLE IF NOT EXISTS receipt_items(id TEXT PRIMARY KEY, receipt BLOB NOT NULL);
-- desk records (calls, readouts, commitments): sent and received ones ride a message ("out"/"in",
-- journaled in its entry), kept ones ("local") have a desk.record entry of their own
CREATE TABLE IF NOT EXISTS desk_records(
    id TEXT PRIMARY KEY,
    direction TEXT NOT NULL CHECK (direction IN ('out', 'in', 'local')),
    message_id TEXT,
    signed BLOB NOT NULL,
    at_ns INTEGER NOT NULL,
    entry INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS attachments(
    message_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    sha256 BLOB NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (message_id, idx)
);
-- who may use the API and console (hotline.users); changes are journaled as operator actions
CREATE TABLE IF NOT EXISTS users(
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password TEXT NOT NULL,
    lang TEXT NOT NULL,
    created_at_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens(
    id TEXT PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    role TEXT NOT NULL,
    label TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ns INTEGER NOT NULL,
    revoked_at_ns INTEGER
);
CREATE TABLE IF NOT EXISTS console_sessions(
    digest BLOB PRIMARY KEY,
    user TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires_at_ns INTEGER NOT NULL
);
"""


class Journal:
    """The ``Record`` of ``hotline.storage.base`` in SQLite. Methods that write must run inside ``transaction()``.

    ``execute`` and ``executemany`` are for the other classes of this package (the stores over the
    same database), never for callers outside it."""

    def __init__(self, path: Path, *, synchronous: str = "FULL", readonly: bool = False) -> None:
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise JournalError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.path = path
        try:
            if readonly:
                if not path.exists():
                    raise JournalError(f"no journal at {path}; run `hotline init` first")
                uri = f"file:{path}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
                self._db.execute("PRAGMA busy_timeout=10000")
                if missing := self._missing_columns():
                    self._db.close()
                    raise JournalError(
                        f"the journal {path} predates the column(s) "
                        f"{', '.join(f'{table}.{column}' for table, column, _ in missing)}; "
                        "any command that writes to it (`hotline run`, `hotline send`) upgrades it"
                    )
            else:
                self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
                self._db.execute("PRAGMA busy_timeout=10000")  # before anything that may meet a writer
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
                self._db.executescript(_SCHEMA)
                self._add_missing_columns()
        except sqlite3.Error as e:
            raise JournalError(f"cannot open journal {path}: {e}") from None
        self._in_tx = False
        self._head: tuple[int, bytes] | None = None  # (seq, hash) of the last entry, within a transaction

    def _missing_columns(self) -> list[tuple[str, str, str]]:
        """The entries of ``_ADDED_COLUMNS`` this journal's tables lack."""
        return [
            (table, column, declaration)
            for table, column, declaration in _ADDED_COLUMNS
            if column not in {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
        ]

    def _add_missing_columns(self) -> None:
        """A journal made before a column existed gets it (CREATE IF NOT EXISTS keeps old tables)."""
        for table, column, declaration in self._missing_columns():
            self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reader(self) -> Journal:
        """A read-only connection of its own to the same file (WAL: it never blocks the writer)."""
        return Journal(self.path, readonly=True)

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One durable write transaction. Nested use joins the outer one."""
        if self._in_tx:
            yield
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise JournalError(f"cannot start a journal transaction on {self.path}: {e}") from None
        self._in_tx = True
        self._head = None  # read afresh inside this transaction: another process may have appended
        try:
            yield
        except BaseException:
            self._in_tx = False
            self._head = None
            self._db.execute("ROLLBACK")
            raise
        self._in_tx = False
        self._head = None
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            self._db.execute("ROLLBACK")
            raise JournalError(f"journal commit failed on {self.path}: {e}") from None

    def _require_tx(self) -> None:
        if not self._in_tx:
            raise JournalError("journal write outside a transaction (a bug in Hotline)")

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        """Run one statement, converting SQLite errors into ``JournalError``."""
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as e:
            raise JournalError(f"journal error on {self.path}: {e}") from None

    def executemany(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        try:
            self._db.executemany(sql, rows)
        except sqlite3.Error as e:
            raise JournalError(f"journal error on {self.path}: {e}") from None

    # -- the record -------------------------------------------------------------------------

    def append(self, kind: str, body: dict[str, Any], at_ns: int, peer: str = "") -> int:
        """Append one entry to the chain; return its sequence number."""
        return self.append_batch(((kind, body, peer),), at_ns)[0]

    def append_batch(self, entries: Sequence[tuple[str, dict[str, Any], str]], at_ns: int) -> list[int]:
        """Append ``(kind, body, peer)`` entries in order, with one statement; return their numbers."""
        self._require_tx()
        if self._head is None:
            # BEGIN IMMEDIATE holds the write lock until the commit, so the head read once per
            # transaction stays the head: later appends in it follow on without asking again.
            row = self.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
            self._head = (int(row[0]), bytes(row[1])) if row else (0, GENESIS_HASH)
        seq, prev = self._head
        rows = []
        for kind, body, peer in entries:
            seq += 1
            data = pack(body)
            digest = entry_hash(prev, seq, at_ns, kind, peer, data)
            rows.append((seq, at_ns, kind, peer, data, prev, digest))
            prev = digest
        self.executemany("INSERT INTO entries(seq, at_ns, kind, peer, body, prev, hash) VALUES (?,?,?,?,?,?,?)", rows)
        self._head = (seq, prev)
        return [row[0] for row in rows]

    def entries(self, start: int = 1) -> Iterator[Entry]:
        cur = self.execute(
            "SELECT seq, at_ns, kind, peer, body, prev, hash FROM entries WHERE seq >= ? ORDER BY seq",
            (start,),
        )
        for row in cur:
            yield Entry(*row)

    def entry_count(self) -> int:
        return int(self.execute("SELECT count(*) FROM entries").fetchone()[0])

    def size_bytes(self) -> int:
        """The database file and its write-ahead log (which holds the newest commits until a checkpoint)."""
        total = 0
        for file in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                total += file.stat().st_size
            except FileNotFoundError:
                continue
        return total

    def last(self) -> Entry | None:
        row = self.execute(
            "SELECT seq, at_ns, kind, peer, body, prev, hash FROM entries ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else Entry(*row)

    def snapshot(self, dest: Path) -> None:
        """SQLite's online backup API: a consistent copy as of one read transaction, written to a
        new file, while the terminal goes on writing (WAL readers never block the writer)."""
        if dest.exists():
            raise JournalError(f"will not overwrite {dest} with a snapshot of the journal")
        try:
            target = sqlite3.connect(str(dest), isolation_level=None)
            try:
                self._db.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            finally:
                target.close()
        except sqlite3.Error as e:
            raise JournalError(f"cannot snapshot the journal {self.path} to {dest}: {e}") from None

    # -- small key/value metadata -----------------------------------------------------------

    def get_meta(self, key: str) -> bytes | None:
        row = self.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, key: str, value: bytes) -> None:
        self._require_tx()
        self.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))
