"""Channels between three real terminals (washington, moscow, kyiv, each pair paired): 30 messages
from three authors with one member SIGKILLed and restarted mid-stream, then a removal."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable

import pytest

from conftest import Terminal, mesh, open_channel, wait_for
from conftest import show_channel as show

pytestmark = pytest.mark.e2e


def held_records(t: Terminal) -> set[str]:
    with sqlite3.connect(f"file:{t.home / 'journal.sqlite'}?mode=ro", uri=True) as db:
        return {r[0] for r in db.execute("SELECT id FROM desk_records")}


def test_three_terminals_hold_every_channel_message_once_in_one_causal_order(
    make_terminal: Callable[..., Terminal],
) -> None:
    w, m, k = (make_terminal(name) for name in ("washington", "moscow", "kyiv"))
    everyone = (w, m, k)
    for t in everyone:
        t.init()
    mesh(everyone)
    open_channel(w, (m, k), "--disclosure", "secret")
    wait_for(lambda: all(x["state"] == "joined" for x in show(k)["members"]), 20, "everyone joined at kyiv")
    sent: list[str] = []
    authors = (w, m, k)
    for i in range(30):
        if i == 10:
            k.kill()  # SIGKILL: whatever it had not committed is gone; the stream brings it again
        if i == 20:
            k.start()
        author = authors[i % 3]
        if author is k and k.proc is None:
            author = authors[(i + 1) % 3]
        sent.append(author.cli("send", "--channel", "ceasefire", f"message {i} from {author.name}").stdout.strip())
    for t in everyone:
        wait_for(functools.partial(lambda x: len(show(x)["messages"]) == 30, t), 60, f"all 30 messages at {t.name}")
    orders = {t.name: [x["id"] for x in show(t)["messages"]] for t in everyone}
    assert sorted(orders["kyiv"]) == sorted(sent)
    assert orders["washington"] == orders["moscow"] == orders["kyiv"]
    # Each of washington's own messages was delivered to both other members.
    wait_for(lambda: all(x.get("delivery", {}).keys() == {"moscow", "kyiv"}
                         and all(d["state"] == "delivered" for d in x["delivery"].values())
                         for x in show(w)["messages"] if x["author"] == "washington"), 30,
             "washington's messages delivered to both")  # fmt: skip
    # Removed mid-stream: moscow holds nothing sent after its removal.
    w.cli("channel", "remove", "ceasefire", "--member", "moscow")
    wait_for(lambda: show(m)["state"] == "removed", 20, "moscow's removal at moscow")
    wait_for(lambda: {x["name"]: x["state"] for x in show(k)["members"]}["moscow"] == "removed", 20,
             "moscow's removal at kyiv")  # fmt: skip
    after = [w.cli("send", "--channel", "ceasefire", "after the removal").stdout.strip(),
             k.cli("send", "--channel", "ceasefire", "kyiv, after the removal").stdout.strip()]  # fmt: skip
    for t in (w, k):
        wait_for(
            functools.partial(lambda x: len(show(x)["messages"]) == 32, t),
            30,
            f"the messages after the removal at {t.name}",
        )
    assert [x["id"] for x in show(w)["messages"]] == [x["id"] for x in show(k)["messages"]]
    refused = m.cli("send", "--channel", "ceasefire", "still here?", check=False)
    assert refused.returncode == 1 and "not a joined member" in refused.stderr
    assert not held_records(m) & set(after)
    assert len(show(m)["messages"]) == 30
    for t in everyone:
        assert t.cli("journal", "verify").returncode == 0, t.cli("journal", "verify", check=False).stdout
