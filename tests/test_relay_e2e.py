"""Issue 12's done-when test: four real terminals (washington, moscow, kyiv, ankara), each pair paired,
in one channel that allows relay. 200 messages from three authors; washington-kyiv is cut with the
fault proxy mid-stream, so their traffic rides another member; kyiv is SIGKILLed and restarted
mid-stream. At the end every member holds every message once, in one causal order, every journal
verifies and every delivery receipt is back at its author. Then ankara is removed, and holds
nothing sent after its removal."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator

import pytest

from conftest import Terminal, mesh, open_channel, wait_for
from conftest import show_channel as show
from hotline.core.model import Address
from hotline.crypto.identity import make_card
from hotline.home.config import KEYS_FILE
from hotline.home.keyfile import load_keys
from hotline.testing.faultproxy import Proxy

pytestmark = pytest.mark.e2e

NAMES = ("washington", "moscow", "kyiv", "ankara")
TOTAL = 200


def desk_ids(t: Terminal) -> list[str]:
    with sqlite3.connect(f"file:{t.home / 'journal.sqlite'}?mode=ro", uri=True) as db:
        return [r[0] for r in db.execute("SELECT id FROM desk_records")]


def say(t: Terminal, text: str) -> str:
    """A channel message through the running terminal's control socket (as `send --channel` does)."""
    with t.client() as client:
        act = {"act": "channel.message", "channel": "ceasefire", "text": text, "subject": "",
               "precedence": "routine", "lang": "en"}  # fmt: skip
        return str(client.request("desk", act=act, by="")["id"])


def pair_through(t: Terminal, other: Terminal, proxy: Proxy) -> None:
    """``t`` pins ``other``'s key with ``other`` reached through ``proxy`` (a card of ``other``'s, signed
    by its own key, naming the proxy as its address)."""
    identity = load_keys(other.home / KEYS_FILE, None)
    card = make_card(identity, [Address("primary", "127.0.0.1", proxy.port)], "2026-12-04T00:00:00Z")
    path = t.home.parent / f"{other.name}-via-proxy.card"
    path.write_text(card.to_json())
    t.cli("pair", str(path))


@pytest.fixture
def proxies() -> Iterator[list[Proxy]]:
    made: list[Proxy] = []
    yield made
    for proxy in made:
        proxy.stop()


def active_path(t: Terminal, peer: str) -> str:
    return str(next(p["active_path"] for p in t.status()["peers"] if p["name"] == peer) or "")


def test_four_terminals_one_channel_relay_over_a_cut_link_through_a_sigkill(
    make_terminal: Callable[..., Terminal], proxies: list[Proxy]
) -> None:
    w, m, k, a = everyone = [make_terminal(name) for name in NAMES]
    for t in everyone:
        t.init()
    # washington and kyiv reach each other only through the fault proxy, one each way.
    proxies += [Proxy(k.port), Proxy(w.port)]
    pair_through(w, k, proxies[0])
    pair_through(k, w, proxies[1])
    mesh(everyone, already=frozenset({frozenset({"washington", "kyiv"})}))
    open_channel(w, (m, k, a), "--disclosure", "secret", "--relay")

    assert show(k)["relay"] is True
    sent: list[str] = []
    authors = (w, m, k)
    for i in range(TOTAL):
        if i == 40:
            for proxy in proxies:
                proxy.set_mode("reset")  # the washington-kyiv link is cut, and stays cut
            wait_for(lambda: active_path(w, "kyiv").startswith("relay:"), 20, "washington relaying to kyiv")
        if i == 100:
            k.kill()  # SIGKILL: whatever kyiv had not committed is gone; the streams bring it again
        if i == 140:
            k.start()
        author = authors[i % 3]
        if author is k and k.proc is None:
            author = authors[(i + 1) % 3]
        if i % 50 == 0:  # now and then through the command line, as an operator sends
            sent.append(author.cli("send", "--channel", "ceasefire", f"message {i} from {author.name}").stdout.strip())
        else:
            sent.append(say(author, f"message {i} from {author.name}"))
    assert len(set(sent)) == TOTAL

    for t in everyone:
        wait_for(functools.partial(lambda x: len(show(x)["messages"]) == TOTAL, t), 60, f"all messages at {t.name}")
    orders = {t.name: [x["id"] for x in show(t)["messages"]] for t in everyone}
    assert sorted(orders["kyiv"]) == sorted(sent)
    assert orders["washington"] == orders["moscow"] == orders["kyiv"] == orders["ankara"]
    for t in everyone:
        held = desk_ids(t)
        assert len(held) == len(set(held)), f"a record held twice at {t.name}"

    def receipts_back(t: Terminal) -> bool:
        others = {x.name for x in everyone} - {t.name}
        return all(x["delivery"].keys() == others and all(d["state"] == "delivered" for d in x["delivery"].values())
                   for x in show(t)["messages"] if x["author"] == t.name)  # fmt: skip

    for t in authors:
        wait_for(functools.partial(receipts_back, t), 30, f"every receipt back at {t.name}")
    assert active_path(w, "kyiv").startswith("relay:") and active_path(k, "washington").startswith("relay:")
    carriers = [x for x in (m, a) if "relaying washington's link to kyiv" in x.log()]
    assert carriers, "neither moscow nor ankara carried washington's link to kyiv"

    # Removed mid-stream: ankara holds nothing sent after its removal.
    w.cli("channel", "remove", "ceasefire", "--member", "ankara")
    wait_for(lambda: show(a)["state"] == "removed", 20, "ankara's removal at ankara")
    for t in (m, k):
        wait_for(functools.partial(lambda x: {y["name"]: y["state"] for y in show(x)["members"]}["ankara"]
                                   == "removed", t), 20, f"ankara's removal at {t.name}")  # fmt: skip
    after = [say(w, "after the removal"), say(k, "kyiv, after the removal")]
    for t in (w, m, k):
        wait_for(functools.partial(lambda x: len(show(x)["messages"]) == TOTAL + 2, t), 30,
                 f"the messages after the removal at {t.name}")  # fmt: skip
    assert not set(desk_ids(a)) & set(after)
    assert len(show(a)["messages"]) == TOTAL
    for t in everyone:
        result = t.cli("journal", "verify", check=False)
        assert result.returncode == 0, (t.name, result.stdout, result.stderr)
