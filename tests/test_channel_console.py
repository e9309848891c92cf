"""A channel in real consoles (Debian's Chromium, Playwright) of three real terminals: a message
written at washington's console appears live at moscow's, is acknowledged there, and washington's
open page marks it acknowledged by moscow and only delivered at kyiv — then kyiv's acknowledgement
(through the API) marks it too. Operators write and acknowledge; auditors only read."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, expect

from conftest import PASSWORD, Terminal, free_port, mesh, open_channel
from test_console import browser, log_in

pytestmark = pytest.mark.e2e

__all__ = ["browser"]  # the module-scoped browser fixture, shared with test_console


def api(t: Terminal, role: str) -> httpx.Client:
    return httpx.Client(base_url=t.console_url(), headers={"authorization": f"Bearer {t.create_token(role)}"},
                        timeout=30)  # fmt: skip


def test_a_channel_message_written_in_one_console_is_acknowledged_in_another_and_marked_at_its_author(
    make_terminal: Callable[..., Terminal], browser: Browser
) -> None:
    w, m, k = everyone = tuple(make_terminal(name) for name in ("washington", "moscow", "kyiv"))
    for t in everyone:
        t.init("--api", f"127.0.0.1:{free_port()}")
        t.add_user("alice", "operator", PASSWORD)
        t.add_user("audrey", "auditor", PASSWORD)
    mesh(everyone)
    open_channel(w, (m, k))

    author, member = browser.new_context().new_page(), browser.new_context().new_page()
    log_in(author, w, "alice")
    log_in(member, m, "alice")
    member.click("#nav-channels")
    member.click("#channel-list a:has-text('#ceasefire')")
    expect(member.locator("#channel-members tr[data-member=washington] .link")).to_have_text("up")
    expect(member.locator("body")).to_have_attribute("data-live", "connected", timeout=5000)
    member.evaluate("window.notReloaded = true")

    author.goto(f"{w.console_url()}/channels/ceasefire")
    author.select_option("#channel-precedence", "immediate")
    author.fill("#channel-subject", "Monitors")
    author.fill("#channel-text", "Shelling reported near the plant.")
    author.click("#channel-send")
    author.wait_for_url("**/channels/ceasefire")
    expect(author.locator("body")).to_have_attribute("data-live", "connected", timeout=5000)
    author.evaluate("window.notReloaded = true")
    sent = author.locator(".channel-message[data-author=washington]")
    expect(sent.locator(".receipt[data-member=moscow]")).to_have_attribute("data-delivered", "1", timeout=5000)
    expect(sent.locator(".receipt[data-member=kyiv]")).to_have_attribute("data-delivered", "1", timeout=5000)

    # moscow's open page shows it without a reload — read there, and washington's page says so.
    arrived = member.locator(".channel-message[data-author=washington]")
    expect(arrived).to_contain_text("Shelling reported near the plant.", timeout=5000)
    assert member.evaluate("window.notReloaded") is True, "the page was reloaded"
    expect(sent.locator(".receipt[data-member=moscow]")).to_have_attribute("data-read", "1", timeout=5000)
    arrived.get_by_role("button", name="Acknowledge").click()
    member.wait_for_url("**/channels/ceasefire")
    expect(member.locator(".channel-message[data-author=washington] .here")).to_contain_text(
        "Acknowledged here by alice"
    )

    moscow_mark = sent.locator(".receipt[data-member=moscow]")
    expect(moscow_mark).to_have_attribute("data-acknowledged", "1", timeout=5000)
    expect(moscow_mark).to_contain_text("(alice)")
    expect(sent.locator(".receipt[data-member=kyiv]")).to_have_attribute("data-acknowledged", "0")
    assert author.evaluate("window.notReloaded") is True, "the page was reloaded"

    # The API: an auditor reads but neither writes nor acknowledges; an operator does both.
    message_id = w.cli_json("channel", "show", "ceasefire")["messages"][0]["id"]
    with api(k, "auditor") as auditor, api(k, "operator") as operator:
        detail = auditor.get("/api/channels/ceasefire").json()
        assert [x["id"] for x in detail["messages"]] == [message_id]
        assert auditor.post(f"/api/channels/ceasefire/messages/{message_id}/ack", json={}).status_code == 403
        assert auditor.post("/api/channels/ceasefire/messages", json={"text": "no"}).status_code == 403
        acked = operator.post("/api/channels/ceasefire/messages/washington%231/ack", json={})
        assert acked.status_code == 200, acked.text
        assert acked.json()["message"]["mine"]["acknowledged_at_ns"]
        wrote = operator.post("/api/channels/ceasefire/messages", json={"text": "Confirmed from Kyiv."})
        assert wrote.status_code == 201, wrote.text
    expect(sent.locator(".receipt[data-member=kyiv]")).to_have_attribute("data-acknowledged", "1", timeout=5000)
    expect(author.locator(".channel-message[data-author=kyiv]")).to_contain_text("Confirmed from Kyiv.", timeout=5000)
    assert author.evaluate("window.notReloaded") is True, "the page was reloaded"

    # A FLASH to the channel takes over moscow's screen until a person there acknowledges it.
    flash = w.cli("send", "--channel", "ceasefire", "--precedence", "flash", "--subject", "Launch detected",
                  "Acknowledge at once.").stdout.strip()  # fmt: skip
    alert = member.locator(f"#flash .flash-alert[data-id='{flash}']")
    expect(alert).to_be_visible(timeout=5000)
    expect(alert).to_contain_text("washington · #ceasefire")
    expect(alert).to_contain_text("Launch detected")
    alert.get_by_role("button", name="Received and understood").click()
    expect(member.locator("#flash")).to_be_hidden(timeout=5000)
    flash_sent = author.locator(f".channel-message[data-id='{flash}']")
    expect(flash_sent.locator(".receipt[data-member=moscow]")).to_have_attribute("data-acknowledged", "1", timeout=5000)
    expect(flash_sent.locator(".receipt[data-member=kyiv]")).to_have_attribute("data-acknowledged", "0")
