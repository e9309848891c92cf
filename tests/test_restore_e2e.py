"""Backup and restore with real terminals (issue 13): a hot backup mid-stream, a SIGKILL, a restore in
place of the killed terminal, and every message delivered exactly once after the re-key."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Terminal, wait_for

pytestmark = pytest.mark.e2e


def test_backup_mid_stream_then_restore_in_place_delivers_everything_once(
    paired: tuple[Terminal, Terminal], make_terminal: Callable[..., Terminal], tmp_path: Path
) -> None:
    a, b = paired
    a.start()
    b.start()
    a.wait_link("moscow")
    b.wait_link("washington")
    a_bodies = [f"washington message {n}" for n in range(15)]
    b_bodies = [f"moscow message {n}" for n in range(18)]
    a.send_many("moscow", a_bodies[:10])
    b.send_many("washington", b_bodies[:10])
    wait_for(
        lambda: sum(b.inbox_bodies().values()) == 10 and sum(a.inbox_bodies().values()) == 10, 30, "the first exchange"
    )

    backup = tmp_path / "washington.backup"
    said = a.cli("backup", "-o", str(backup)).stdout
    assert "journal entries" in said and "head hash" in said and "no passphrase" in said, said
    info = json.loads(a.cli("backup", "-o", str(tmp_path / "second.backup"), "--json").stdout)
    assert info["entries"] > 0 and len(info["head_hash"]) == 64

    a.send_many("moscow", a_bodies[10:])  # after the backup: in moscow's journal, lost to washington's
    b.send_many("washington", b_bodies[10:15])
    wait_for(
        lambda: sum(b.inbox_bodies().values()) == 15 and sum(a.inbox_bodies().values()) == 15, 30, "the second exchange"
    )
    a.kill()
    b.send_many("washington", b_bodies[15:])  # while washington is dead

    restored = make_terminal("washington-restored", port=a.port)
    restored.name = "washington"  # the same terminal, in a fresh home
    refused = restored.cli("restore", str(backup), "--home", str(b.home), check=False)
    assert refused.returncode == 1 and "not empty" in refused.stderr
    out = restored.cli("restore", str(backup)).stdout
    assert "moscow" in out and "re-key" in out
    assert "journal OK" in restored.cli("journal", "verify").stdout
    restored.start()
    restored.wait_link("moscow")
    wait_for(lambda: sum(b.inbox_bodies().values()) >= 15 and sum(restored.inbox_bodies().values()) >= 18, 60,
             "everything after the re-key")  # fmt: skip
    wait_for(
        lambda: all(m["state"] == "delivered" for t in (restored, b)
                    for m in t.cli_json("outbox", "--limit", "5000")["messages"]),
        30, "every receipt",
    )  # fmt: skip
    assert b.inbox_bodies() == collections.Counter(a_bodies), "moscow holds each of washington's messages once"
    assert restored.inbox_bodies() == collections.Counter(b_bodies), "washington holds each of moscow's messages once"
    log = restored.log()
    assert "messages 11..15 that washington sent after it are held by moscow only" in log, log[-3000:]
    assert "Traceback" not in log and "Traceback" not in b.log()
    for t in (restored, b):
        t.stop()
        assert "journal OK" in t.cli("journal", "verify").stdout
