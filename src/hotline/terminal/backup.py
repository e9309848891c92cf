"""Backups of a terminal's home, taken hot, and restoring one without ever reusing ratchet keys.

A backup is one tar file holding exactly what a home keeps at rest:

    backup.json     what this is: the terminal, when, the journal's entries and head hash
    config.toml     as it is
    keys.json       as it is: encrypted under the passphrase (a demo home without one says so)
    journal.sqlite  a consistent copy taken with SQLite's online backup API while the terminal runs

Restoring writes them into an empty (or absent) folder, checks the journal verifies,
and marks every peer "restored: re-key before sending" (journaled as an operator
action): the restored ratchet states are older than the ones last used, so the
terminal re-keys with each peer before it sends anything (``engine.rekeying``).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from hotline.core.errors import ConfigError, HotlineError
from hotline.core.times import rfc3339
from hotline.home.config import CONFIG_FILE, JOURNAL_FILE, KEYS_FILE, Config
from hotline.storage import audit
from hotline.storage.backend import open_storage
from hotline.storage.base import Record

MANIFEST = "backup.json"
FORMAT = "hotline-backup"
MEMBERS = (MANIFEST, CONFIG_FILE, KEYS_FILE, JOURNAL_FILE)


def write_backup(home: Path, config: Config, record: Record, dest: Path, at_ns: int) -> dict[str, Any]:
    """Blocking (run it off the event loop): snapshot ``record`` (a reader of its own is opened and
    closed here) and write the tar to ``dest`` atomically. Returns what was written."""
    dest = dest.resolve()
    if dest.exists():
        raise ConfigError(f"{dest} already exists; choose another file for the backup")
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".hotline-backup-") as tmp:
        copy = Path(tmp) / JOURNAL_FILE
        reader = record.reader()
        try:
            reader.snapshot(copy)
        finally:
            reader.close()
        with open_storage(copy, readonly=True) as snap:
            last = snap.record.last()
            entries = snap.record.entry_count()
        manifest = {
            "format": FORMAT, "version": 1, "terminal": config.name, "taken_at_ns": at_ns,
            "taken_at": rfc3339(at_ns), "entries": entries, "head_hash": last.hash.hex() if last else "",
            "keys_encrypted": config.passphrase,
        }  # fmt: skip
        part = Path(tmp) / "backup.tar"
        with tarfile.open(part, "w") as tar:
            data = (json.dumps(manifest, indent=2) + "\n").encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(data), 0o600, at_ns // 1_000_000_000
            tar.addfile(info, io.BytesIO(data))
            for name, path in ((CONFIG_FILE, home / CONFIG_FILE), (KEYS_FILE, home / KEYS_FILE), (JOURNAL_FILE, copy)):
                tar.add(path, arcname=name, recursive=False)
        os.chmod(part, 0o600)
        os.replace(part, dest)
    return {**manifest, "file": str(dest), "size": dest.stat().st_size}


def read_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    names = tar.getnames()
    if sorted(names) != sorted(MEMBERS):
        raise ConfigError(f"not a Hotline backup: it holds {', '.join(names) or 'nothing'}, not {', '.join(MEMBERS)}")
    member = tar.extractfile(MANIFEST)
    manifest = json.loads(member.read()) if member is not None else None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != 1:
        raise ConfigError("not a Hotline backup (its backup.json is not one of ours)")
    if not isinstance(manifest.get("taken_at_ns"), int):
        raise ConfigError("the backup's backup.json has no time it was taken")
    return manifest


def restore_backup(source: Path, home: Path, at_ns: int, by: str) -> dict[str, Any]:
    """Bring a backup back into ``home`` (absent or empty, else refused), verify its journal, and mark
    every peer for a re-key before anything is sent."""
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise ConfigError(f"{home} is not empty; restore into an empty or new folder")
    try:
        tar = tarfile.open(source, "r")  # noqa: SIM115 (closed by the ``with`` below)
    except (OSError, tarfile.TarError) as e:
        raise ConfigError(f"cannot read the backup {source}: {e}") from None
    with tar:
        manifest = read_manifest(tar)
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in MEMBERS[1:]:
            member = tar.extractfile(name)
            if member is None:
                raise ConfigError(f"the backup's {name} is not a regular file")
            fd = os.open(home / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(member.read())
                out.flush()
                os.fsync(out.fileno())
    with open_storage(home / JOURNAL_FILE) as storage:
        report = audit.verify(storage.record)
        if not report.ok:
            raise HotlineError(f"the restored journal fails verification: {'; '.join(report.problems[:3])}")
        with storage.record.transaction():
            peers = storage.store.mark_restored(manifest["taken_at_ns"], str(source), by, at_ns)
        report = audit.verify(storage.record)
    return {**manifest, "home": str(home), "peers_to_rekey": peers, "verified_entries": report.entries,
            "journal_ok": report.ok}  # fmt: skip
