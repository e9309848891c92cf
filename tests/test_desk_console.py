"""The desk in two real consoles (Debian's Chromium, Playwright): a call proposed at one end
appears live at the other, in Russian, is accepted there, and each call page shows both
sides' readouts side by side."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from conftest import Terminal
from test_console import browser, log_in

pytestmark = pytest.mark.e2e

__all__ = ["browser"]  # the module-scoped browser fixture, shared with test_console


def test_a_call_proposed_at_one_console_is_accepted_live_at_the_other_and_read_out_side_by_side(
    consoles: tuple[Terminal, Terminal], browser: Browser
) -> None:
    washington, moscow = consoles
    proposer = browser.new_context().new_page()
    answerer = browser.new_context(locale="ru-RU").new_page()
    log_in(proposer, washington, "alice")
    log_in(answerer, moscow, "boris", button="Войти")

    answerer.click("#nav-calls")
    expect(answerer.locator("h1")).to_have_text("Разговоры")
    expect(answerer.locator("#waiting")).to_contain_text("Ни один запрос не ждёт ответа")
    expect(answerer.locator("body")).to_have_attribute("data-live", "connected", timeout=5000)
    answerer.evaluate("window.notReloaded = true")

    proposer.click("#nav-calls")
    proposer.select_option("#call-to", "moscow")
    proposer.select_option("#call-precedence", "immediate")
    proposer.fill("#call-subject", "Energy-site strikes")
    proposer.fill("#call-answer-within", "30m")
    proposer.click("#propose")
    proposer.wait_for_url("**/calls")
    expect(proposer.locator("#waiting")).to_contain_text("Energy-site strikes")
    expect(proposer.locator("#waiting")).to_contain_text("moscow to answer")
    proposer.evaluate("window.notReloaded = true")

    # moscow sees the request without reloading, its answer-by time counting down, and accepts.
    row = answerer.locator("#waiting tr.ours", has_text="Energy-site strikes")
    expect(row).to_be_visible(timeout=5000)
    assert answerer.evaluate("window.notReloaded") is True, "the page was reloaded"
    expect(row.locator(".countdown")).to_have_text(re.compile(r"^(29|30):\d\d$"), timeout=3000)
    expect(row).to_contain_text("срочно")
    row.get_by_role("button", name="Принять").click()
    answerer.wait_for_url("**/calls")
    expect(answerer.locator("#all-calls")).to_contain_text("принят")
    expect(answerer.locator("#waiting tr.ours")).to_have_count(0)

    # washington's open page follows, live.
    expect(proposer.locator("#all-calls")).to_contain_text("accepted", timeout=5000)
    expect(proposer.locator("#waiting")).to_contain_text("No request is waiting for an answer")
    assert proposer.evaluate("window.notReloaded") is True, "the page was reloaded"

    # Each side publishes its readout (through the CLI, for speed); both call pages show both.
    call_id = washington.cli_json("calls")["calls"][0]["id"]
    washington.cli("readout", "add", call_id, "--lang", "en", "--disclosure", "public", "--share",
                   "--text", "The presidents agreed that their advisers will meet next week.")  # fmt: skip
    moscow.cli("readout", "add", call_id, "--lang", "ru", "--disclosure", "confidential", "--share",
               "--text", "Стороны обсудили удары по энергетическим объектам.")  # fmt: skip
    for page, terminal, first, labels in (
        (proposer, washington, "washington", ("published", "Differences to notice")),
        (answerer, moscow, "moscow", ("опубликовано", "Расхождения")),
    ):
        page.goto(f"{terminal.console_url()}/calls/{call_id}")
        readouts = page.locator("#readouts .readout")
        expect(readouts).to_have_count(2)
        expect(readouts.nth(0)).to_have_attribute("data-side", first)
        expect(page.locator("#readouts pre[lang=en]")).to_contain_text("advisers will meet")
        expect(page.locator("#readouts pre[lang=ru]")).to_contain_text("энергетическим объектам")
        expect(page.locator("#readouts")).to_contain_text(labels[0])
        left, right = (readouts.nth(i).bounding_box() for i in (0, 1))
        assert left and right and left["x"] < right["x"] and abs(left["y"] - right["y"]) < 2, (left, right)
        expect(page.locator("#differences")).to_contain_text(labels[1])
    expect(answerer.locator("#differences")).to_contain_text("Изложение washington — публично")
