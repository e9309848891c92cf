"""The console in a real headless Chromium (Debian's package), driven by Playwright.

Two real terminals, two browser contexts: what a watch officer at each end sees.
The browser is Debian's ``chromium`` (``.ci/run`` installs it); Playwright's own
browser download does not work on these machines.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from conftest import PASSWORD, Terminal

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a container Chromium needs --no-sandbox; the rest keep it off the
# network (this machine refuses anything but loopback) and let the alert sound.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed; `.ci/run` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def log_in(page: Page, terminal: Terminal, user: str, button: str = "Log in") -> None:
    page.goto(terminal.console_url() + "/login")
    page.fill("#name", user)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name=button).click()
    page.wait_for_url(terminal.console_url() + "/")


def test_a_flash_takes_over_the_other_console_and_its_acknowledgement_comes_back(
    consoles: tuple[Terminal, Terminal], browser: Browser
) -> None:
    washington, moscow = consoles
    sender = browser.new_context().new_page()
    receiver = browser.new_context().new_page()
    log_in(sender, washington, "alice")
    log_in(receiver, moscow, "alice")
    expect(receiver.locator("#flash")).to_be_hidden()
    expect(receiver.locator("body")).to_have_attribute("data-live", "connected", timeout=5000)
    # A marker that a reload would wipe: everything below must happen live.
    receiver.evaluate("window.notReloaded = true")

    sender.click("#nav-compose")
    sender.select_option("#to", "moscow")
    sender.select_option("#precedence", "flash")
    sender.fill("#subject", "Unidentified launch detected")
    sender.fill("#body", "Call the President now. This is not a test.")
    sender.click("#send")
    sender.wait_for_url("**/messages/*")
    sent_at = time.monotonic()
    sender.evaluate("window.notReloaded = true")

    alert = receiver.locator("#flash .flash-alert")
    expect(alert).to_be_visible(timeout=1000)
    shown_after = time.monotonic() - sent_at
    print(f"flash shown after {shown_after:.3f} s")
    assert shown_after < 1.0, f"the flash took {shown_after:.2f} s to show"
    expect(alert).to_contain_text("Unidentified launch detected")
    expect(alert).to_contain_text("washington")
    expect(receiver.locator("body")).to_have_attribute("data-flash-alarm", "sounding")
    # Modal: the focus is on the acknowledgement, and nothing behind takes a key or a click.
    assert receiver.evaluate("document.activeElement.classList.contains('flash-ack')")
    assert receiver.evaluate("document.querySelector('main').inert") is True
    expect(receiver.locator("#inbox")).to_contain_text("Unidentified launch detected")
    assert receiver.evaluate("window.notReloaded") is True, "the receiving page was reloaded"

    # Opening the message is "read": the sender's open page shows the signed read receipt, live.
    href = receiver.locator("#inbox a", has_text="Unidentified launch detected").get_attribute("href")
    receiver.goto(moscow.console_url() + str(href))
    expect(sender.locator("#timeline")).to_contain_text("read", timeout=5000)
    expect(sender.locator("#timeline")).not_to_contain_text("acknowledged")

    expect(receiver.locator("#flash .flash-alert")).to_be_visible()  # still there until acknowledged
    receiver.evaluate("window.notReloaded = true")
    receiver.locator("#flash").get_by_role("button", name="Received and understood").click()
    expect(receiver.locator("#flash")).to_be_hidden()
    assert receiver.evaluate("window.notReloaded") is True, "acknowledging reloaded the page behind"
    assert receiver.evaluate("document.querySelector('main').inert") is False
    expect(receiver.locator("body")).to_have_attribute("data-flash-alarm", "quiet")

    # The sender's open message page shows the signed acknowledgement, live.
    expect(sender.locator("#timeline")).to_contain_text("acknowledged", timeout=5000)
    expect(sender.locator("#timeline")).to_contain_text("alice")
    assert sender.evaluate("window.notReloaded") is True, "the sending page was reloaded"
    outbox = washington.cli_json("outbox")["messages"]
    assert outbox[-1]["acknowledged_at"] is not None, outbox[-1]


def test_login_compose_with_an_attachment_and_logout_in_russian(
    consoles: tuple[Terminal, Terminal], browser: Browser, tmp_path: Path
) -> None:
    washington, moscow = consoles
    page = browser.new_context(locale="ru-RU").new_page()
    page.goto(moscow.console_url() + "/")
    page.wait_for_url("**/login**")  # not logged in: sent to the login page, in Russian
    expect(page.get_by_role("button", name="Войти")).to_be_visible()
    expect(page.locator("label", has_text="Пароль")).to_be_visible()

    log_in(page, moscow, "boris", button="Войти")
    expect(page.locator("nav")).to_contain_text("Написать")
    expect(page.locator("#status")).to_contain_text("линия работает")

    readout = tmp_path / "readout.txt"
    readout.write_text("Стороны договорились о встрече советников на следующей неделе.\n")
    page.click("#nav-compose")
    expect(page.locator("h1")).to_have_text("Написать")
    page.select_option("#to", "washington")
    page.select_option("#precedence", "immediate")
    expect(page.locator("#classification")).to_have_value("UNCLASSIFIED")  # the deployment's first marking
    page.select_option("#classification", "CONFIDENTIAL")
    page.fill("#lang", "ru")
    page.fill("#subject", "Итоги разговора")
    page.fill("#body", "Краткое изложение прилагается.")
    page.set_input_files("#attachment", str(readout))
    page.get_by_role("button", name="Отправить").click()
    page.wait_for_url("**/messages/*")
    expect(page.locator("article")).to_contain_text("Вложения")
    expect(page.locator(".attachments")).to_contain_text("readout.txt")
    expect(page.locator(".banner")).to_have_text("СРОЧНО")
    for banner in ("#marking-top", "#marking-bottom"):  # the marking above and below the message
        expect(page.locator(banner)).to_have_text("CONFIDENTIAL")

    # It really went: washington journaled it, attachment intact.
    message_id = page.url.rsplit("/", 1)[1]
    token = washington.create_token("operator")
    import httpx

    def arrived() -> bytes | None:
        r = httpx.get(f"{washington.console_url()}/api/messages/{message_id}/attachments/0",
                      headers={"authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
        return r.content if r.status_code == 200 else None

    from conftest import wait_for

    assert wait_for(arrived, 10, "the readout at washington") == readout.read_bytes()

    page.get_by_role("button", name="Выйти").click()
    page.wait_for_url("**/login")
    expect(page.get_by_role("button", name="Войти")).to_be_visible()
    page.goto(moscow.console_url() + "/compose")
    page.wait_for_url("**/login**")  # the session is gone


def test_the_status_bar_and_alarms_page_follow_the_line_live(
    consoles: tuple[Terminal, Terminal], browser: Browser
) -> None:
    washington, moscow = consoles
    page = browser.new_context().new_page()
    log_in(page, washington, "audrey")  # an auditor watches too, and may not compose
    expect(page.locator("#nav-compose")).to_have_count(0)
    page.click("a[href='/alarms']")
    expect(page.locator("#alarm-list")).to_contain_text("No open alarms")
    expect(page.locator("#status .path")).to_contain_text("primary: up")
    expect(page.locator("body")).to_have_attribute("data-live", "connected", timeout=5000)
    page.evaluate("window.notReloaded = true")

    moscow.stop()  # the far end goes away: the line is down
    expect(page.locator("#alarm-list")).to_contain_text("all-paths-down", timeout=5000)
    expect(page.locator("#status")).to_contain_text("line down", timeout=5000)
    expect(page.locator("#status .alarms")).to_contain_text("Open alarms: 2")

    moscow.start()  # and comes back: the alarms clear by themselves
    expect(page.locator("#alarm-list")).to_contain_text("No open alarms", timeout=15000)
    expect(page.locator("#status")).to_contain_text("line up", timeout=5000)
    assert page.evaluate("window.notReloaded") is True, "the page was reloaded"

    washington.cli("user", "remove", "audrey")  # a supervisor removes her: her open page must not stay live
    page.wait_for_url("**/login?next=/alarms", timeout=5000)


def test_a_chinese_user_reads_the_console_and_the_servers_refusals_in_chinese(
    consoles: tuple[Terminal, Terminal], browser: Browser
) -> None:
    import httpx

    _, moscow = consoles
    moscow.add_user("mei", "operator", PASSWORD, lang="zh-Hans")  # `hotline user add mei ... --lang zh-Hans`
    page = browser.new_context(locale="zh-CN").new_page()
    page.goto(moscow.console_url() + "/")
    page.wait_for_url("**/login**")  # the login page follows the browser's language
    expect(page.get_by_role("button", name="登录")).to_be_visible()
    log_in(page, moscow, "mei", button="登录")
    expect(page.locator("nav")).to_contain_text("撰写")
    expect(page.locator("nav")).to_contain_text("告警")
    expect(page.locator("#status")).to_contain_text("线路正常")
    expect(page.locator("select[name=lang] option[value=zh-Hans]")).to_have_text("中文 (简体)")
    missing = "01900000-0000-7000-8000-000000000000"
    page.goto(f"{moscow.console_url()}/messages/{missing}")
    expect(page.locator("h1")).to_have_text("未找到")
    expect(page.locator(".error")).to_have_text(f"没有 ID 为 {missing} 的消息")

    # The API answers each user in their own language, with the English beside it.
    for user, said in (("mei", f"没有 ID 为 {missing} 的消息"), ("boris", f"нет сообщения с номером {missing}")):
        with httpx.Client(base_url=moscow.console_url(), timeout=30) as api:
            assert api.post("/api/session", json={"name": user, "password": PASSWORD}).status_code == 200
            r = api.get(f"/api/messages/{missing}")
            assert r.status_code == 404
            assert r.json() == {"error": said, "error_en": f"no message with id {missing}"}, r.text
