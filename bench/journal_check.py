"""How long a terminal's own journal check takes (issue 14): the start-up check, whole and from
the checkpoint, beside the full verify. Not part of the tests.

    python bench/journal_check.py [ENTRIES]

Builds a journal of ENTRIES message-sized entries (default WHOLE_CHAIN_AT_START, 50,000) in a temporary folder,
then times: the whole chain checked (what a start does up to WHOLE_CHAIN_AT_START entries),
the check from a checkpoint 1,000 entries back (a start on a bigger journal, or one periodic
check while running), and the floor, reading the same rows without hashing them.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from hotline.crypto.identity import Identity
from hotline.storage.integrity import WHOLE_CHAIN_AT_START, check_chain, read_checkpoint, write_checkpoint
from hotline.storage.sqlite.journal import Journal
from hotline.storage.sqlite.store import Store


def main() -> None:
    entries = int(sys.argv[1]) if len(sys.argv) > 1 else WHOLE_CHAIN_AT_START
    identity = Identity.generate("washington")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.sqlite"
        with Journal(path, synchronous="NORMAL") as journal:
            store = Store(journal)
            body = {"id": "0" * 36, "envelope": os.urandom(300)}  # about a sealed message's size
            with journal.transaction():
                for i in range(entries):
                    store.record_operator("bench", {**body, "n": i}, i)
            size = path.stat().st_size
            started = time.perf_counter()
            read = sum(1 for _ in journal.entries())
            floor = time.perf_counter() - started
            started = time.perf_counter()
            whole = check_chain(journal, None, identity.public_key)
            whole_s = time.perf_counter() - started
            assert whole.ok and whole.head_seq == entries
            db_entries = list(journal.entries(entries - 1000))
            back = db_entries[0]
            write_checkpoint(journal, identity, back.seq, back.hash, 1)
            checkpoint = read_checkpoint(journal, identity.public_key)
            assert checkpoint is not None
            started = time.perf_counter()
            recent = check_chain(journal, checkpoint, identity.public_key, start=checkpoint.seq)
            recent_s = time.perf_counter() - started
            assert recent.ok and recent.read == 1001
    print(f"journal of {read:,} entries ({size / 2**20:.0f} MiB), this machine:")
    print(f"  whole chain checked (a start, up to {WHOLE_CHAIN_AT_START:,} entries): {whole_s * 1000:.0f} ms "
          f"({whole_s / entries * 1e6:.2f} µs an entry)")  # fmt: skip
    print(f"  from a checkpoint 1,000 entries back (a bigger journal's start; a periodic check): "
          f"{recent_s * 1000:.1f} ms")  # fmt: skip
    print(
        f"  floor, the same rows read without hashing: {floor * 1000:.0f} ms ({floor / entries * 1e6:.2f} µs an entry)"
    )


if __name__ == "__main__":
    main()
