"""Formatted notifications in two real consoles (Debian's Chromium, Playwright): washington's operator
fills a form generated from the incident type's schema, makes a mistake that comes back beside its
field, corrects it and sends; moscow's Russian operator sees it arrive live, reads it with Russian
labels and code names, and acknowledges it; washington's page follows."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Browser, expect

from conftest import Terminal
from test_console import browser, log_in

pytestmark = pytest.mark.e2e

__all__ = ["browser"]  # the module-scoped browser fixture, shared with test_console


def test_a_notification_filled_in_a_generated_form_is_read_in_russian_and_acknowledged_live(
    consoles: tuple[Terminal, Terminal], browser: Browser
) -> None:
    washington, moscow = consoles
    sender = browser.new_context().new_page()
    receiver = browser.new_context(locale="ru-RU").new_page()
    log_in(sender, washington, "alice")
    log_in(receiver, moscow, "boris", button="Войти")

    receiver.click("#nav-notifications")
    expect(receiver.locator("h1")).to_have_text("Уведомления")
    expect(receiver.locator("#notification-list")).to_contain_text("Уведомлений нет")
    expect(receiver.locator("body")).to_have_attribute("data-live", "connected", timeout=5000)
    receiver.evaluate("window.notReloaded = true")

    # The form, generated from the schema: required fields marked, codes named in English, times in UTC.
    sender.click("#nav-notifications")
    sender.click("#new-notification")
    sender.click("#form-types a[data-form=incident]")
    expect(sender.locator("h1")).to_contain_text("Incident notification")
    kind = sender.locator("#field-incident")
    expect(kind.locator(".field-label")).to_have_text("Kind of incident *")
    expect(sender.locator("#field-remarks .required-mark")).to_have_count(0)
    kind.locator("select").select_option(label="Unexplained")
    occurred = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 600))
    sender.fill("#field-occurred_at-input", occurred)
    sender.fill("#field-location-lat", "95")  # a mistake: no latitude is past the pole
    sender.fill("#field-location-lon", "37.61")
    sender.select_option("#field-risk-input", label="No risk of detonation")
    sender.select_option("#field-measures-input", label="Investigation opened")
    sender.fill("#field-remarks-input", "Object seen over the northern range")
    sender.click("#send-notification")

    # Refused: the error beside its field, everything typed kept; nothing was sent.
    place = sender.locator("#field-location")
    expect(place.locator(".field-error")).to_have_text("Location, latitude: out of range")
    expect(sender.locator(".field-error")).to_have_count(1)
    expect(sender.locator("#field-location-lat")).to_have_value("95")
    expect(sender.locator("#field-occurred_at-input")).to_have_value(occurred)
    expect(sender.locator("#field-incident select")).to_have_value("UNEXPLAINED")
    expect(sender.locator("#field-measures-input")).to_have_values(["INVESTIGATION_OPENED"])
    expect(sender.locator("#field-remarks-input")).to_have_value("Object seen over the northern range")
    sender.fill("#field-location-lat", "55.75")
    sender.click("#send-notification")
    sender.wait_for_url("**/notifications/0*")
    expect(sender.locator("#notification-status")).to_have_text("open")
    expect(sender.locator("#form-fields")).to_contain_text("Unexplained")
    expect(sender.locator("#ack-notification")).to_have_count(0)  # the receiving side acknowledges
    sender.evaluate("window.notReloaded = true")

    # moscow sees it arrive without reloading, and reads it in Russian from the same codes.
    row = receiver.locator("#notification-list tr.ours", has_text="Уведомление об инциденте")
    expect(row).to_be_visible(timeout=5000)
    assert receiver.evaluate("window.notReloaded") is True, "the page was reloaded"
    expect(row).to_contain_text("открыто")
    row.locator("a").click()
    fields = receiver.locator("#form-fields")
    expect(fields).to_contain_text("Характер инцидента")
    expect(fields).to_contain_text("Необъяснённый")
    expect(fields).to_contain_text("Опасность ядерного взрыва")
    expect(fields).to_contain_text("Опасности взрыва нет")
    expect(fields).to_contain_text("Начато расследование")
    expect(fields).to_contain_text("55.7500° N, 37.6100° E")
    receiver.get_by_role("button", name="Получено и понято").click()
    expect(receiver.locator("#notification-status")).to_have_text("подтверждено")
    expect(receiver.locator("#acknowledged")).to_contain_text("boris")

    # washington's open page follows, live.
    expect(sender.locator("#notification-status")).to_have_text("acknowledged", timeout=5000)
    expect(sender.locator("#acknowledged")).to_contain_text("boris")
    assert sender.evaluate("window.notReloaded") is True, "the page was reloaded"
