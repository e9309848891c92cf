"""Make docs/console.png: the moscow console with a flash alert over its inbox.

Starts `hotline demo` (two terminals on loopback, consoles on), logs in to the
moscow console in Debian's Chromium as the demo's officer, waits for the flash
takeover that the demo's unacknowledged flash causes, and saves a screenshot.
Run with `make screenshot`; not part of the tests.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent / "console.png"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


def main() -> int:
    demo = subprocess.Popen([sys.executable, "-m", "hotline", "demo"], stdout=subprocess.PIPE, text=True)
    consoles: dict[str, tuple[str, str]] = {}
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 60
        while len(consoles) < 2 and time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                raise SystemExit("the demo stopped before printing its consoles")
            found = re.match(r"\s+(\w+)\s+(http://\S+)\s+user officer\s+password (\S+)", line)
            if found:
                consoles[found[1]] = (found[2].rstrip("/"), found[3])
        url, password = consoles["moscow"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 760}, locale="ru-RU")
            page.goto(url + "/login")
            page.fill("#name", "officer")
            page.fill("#password", password)
            page.click("#login")
            page.wait_for_url(url + "/")
            page.wait_for_selector("#flash .flash-alert", state="visible", timeout=10_000)
            page.wait_for_timeout(600)  # let the pulse animation reach its glow
            page.screenshot(path=str(OUT))
            browser.close()
        print(f"wrote {OUT}")
        return 0
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
