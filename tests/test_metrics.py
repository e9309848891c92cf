"""Monitoring (issue 13): /metrics for a monitor token, JSON logs, and the contrib files.

The end-to-end test runs washington and moscow on two paths, each through a fault proxy,
washington with its API and JSON logs; it scrapes washington as Prometheus would while it
sends, loses a path to a silent blackhole, and loses its peer.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from conftest import Terminal, free_port, wait_for
from hotline.cli.logs import JsonFormatter
from hotline.core.access import GRANTS, Permission, Role
from hotline.core.errors import AccessError
from hotline.testing.faultproxy import Proxy

ROOT = Path(__file__).resolve().parent.parent
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Series:
    found: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(series: Series, name: str, **labels: str) -> float | None:
    return series.get((name, frozenset(labels.items())))


# -- roles, the log format, the contrib files (no process) -------------------------------------


def test_the_monitor_role_may_read_metrics_and_nothing_else() -> None:
    assert GRANTS[Role.MONITOR] == {Permission.METRICS}
    assert Role.parse("Monitor") is Role.MONITOR
    assert Permission.METRICS in GRANTS[Role.SUPERVISOR]
    assert all(Permission.METRICS not in GRANTS[r] for r in (Role.OPERATOR, Role.AUDITOR))
    with pytest.raises(AccessError, match="for a program's token"):
        Role.parse_user("monitor")
    assert Role.parse_user("auditor") is Role.AUDITOR


def test_a_json_log_line_carries_what_it_concerns() -> None:
    logger = logging.getLogger("hotline.test")
    record = logger.makeRecord(
        "hotline.engine", logging.WARNING, __file__, 1, "path %s to %s down: %s", ("primary", "moscow", "reset"),
        None, extra={"peer": "moscow", "path": "primary"},
    )  # fmt: skip
    line = json.loads(JsonFormatter().format(record))
    assert line.pop("ts").endswith("Z")
    assert line == {"level": "WARNING", "logger": "hotline.engine", "msg": "path primary to moscow down: reset",
                    "peer": "moscow", "path": "primary"}  # fmt: skip
    try:
        raise ValueError("two\nlines")
    except ValueError:
        record = logger.makeRecord("hotline", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = JsonFormatter().format(record)
    assert "\n" not in text and "ValueError: two\nlines" in json.loads(text)["exc"]


def test_the_alert_rules_parse_and_name_only_metrics_the_terminal_serves() -> None:
    doc = yaml.safe_load((ROOT / "contrib" / "hotline-alerts.yml").read_text())
    rules = {r["alert"]: r for group in doc["groups"] for r in group["rules"]}
    assert {"HotlinePathDown", "HotlineAllPathsDown", "HotlineTestFailed", "HotlineFlashUnacknowledged",
            "HotlineJournalCheckFailed"} <= set(rules)  # fmt: skip
    assert rules["HotlinePathDown"]["for"] == "1m"
    assert "for" not in rules["HotlineAllPathsDown"], "all paths down pages at once"
    assert 'precedence="flash"' in rules["HotlineFlashUnacknowledged"]["expr"]
    assert "> 600" in rules["HotlineFlashUnacknowledged"]["expr"]
    served = set(re.findall(r'"(hotline_[a-z0-9_]+)"', (ROOT / "src/hotline/web/metrics.py").read_text()))
    for name, rule in rules.items():
        assert rule["annotations"]["summary"], name
        for metric in re.findall(r"\bhotline_[a-z0-9_]+", rule["expr"]):
            assert metric in served, f"{name} uses {metric}, which /metrics does not serve"


def test_the_systemd_unit_runs_as_its_own_user_with_the_passphrase_as_a_credential() -> None:
    unit = (ROOT / "contrib" / "hotline.service").read_text()
    lines = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in unit.splitlines() if re.match(r"^\w+=", line)}
    assert lines["User"] == "hotline" and lines["Environment"] == "HOTLINE_HOME=/var/lib/hotline"
    assert lines["LoadCredential"].startswith("passphrase:")
    assert "HOTLINE_PASSPHRASE" in lines["ExecStart"] and "%d/passphrase" in lines["ExecStart"]
    assert lines["Restart"] == "on-failure"
    assert lines["ProtectSystem"] == "strict" and lines["ReadWritePaths"] == "/var/lib/hotline"
    assert lines["NoNewPrivileges"] == "yes"


# -- a real pair -------------------------------------------------------------------------------


class Pair:
    """washington (API, JSON logs) and moscow, each on primary and backup, every path via a proxy."""

    def __init__(self, make_terminal: Callable[..., Terminal]) -> None:
        self.w, self.m = make_terminal("washington"), make_terminal("moscow")
        self.proxies: dict[str, list[Proxy]] = {"primary": [], "backup": []}
        for t in (self.w, self.m):
            listen, advertise = [], []
            for path in ("primary", "backup"):
                port = free_port()
                proxy = Proxy(port)
                self.proxies[path].append(proxy)
                listen += ["--listen", f"{path}=127.0.0.1:{port}"]
                advertise += ["--advertise", f"{path}=127.0.0.1:{proxy.port}"]
            api = ["--api", f"127.0.0.1:{free_port()}"] if t is self.w else []
            t.init(*listen, *advertise, *api)
            t.configure("link", hold_down_s=0.5)  # back on the primary soon if the backup came up first
        self.w.pair_with(self.m)
        self.m.pair_with(self.w)

    def cut(self, path: str) -> None:
        for proxy in self.proxies[path]:
            proxy.set_mode("blackhole")

    def stop(self) -> None:
        for proxies in self.proxies.values():
            for proxy in proxies:
                proxy.stop()


@pytest.fixture
def pair(make_terminal: Callable[..., Terminal]) -> Iterator[Pair]:
    world = Pair(make_terminal)
    yield world
    world.stop()


def scrape(url: str, token: str) -> Series:
    r = httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


def send(t: Terminal, precedence: str, *, wait: bool) -> str:
    args = ["send", "--to", "moscow", "--precedence", precedence, "--subject", "metrics", "--json"]
    out = t.cli(*args, *(["--wait", "--timeout", "20"] if wait else []), "a message to count")
    return str(json.loads(out.stdout)["id"])


@pytest.mark.e2e
def test_metrics_follow_the_line_and_json_logs_name_what_they_concern(pair: Pair) -> None:
    w, m = pair.w, pair.m
    w.start("--log-format", "json")
    m.start()

    def settled() -> bool:
        peer = w.status()["peers"][0]
        return peer["active_path"] == "primary" and all(p["state"] == "up" for p in peer["paths"])

    wait_for(settled, 20, "both paths up, traffic on the primary")
    url = w.console_url()
    monitor, operator = w.create_token("monitor"), w.create_token("operator")

    anonymous = httpx.get(f"{url}/metrics", timeout=10)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    refused = httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {operator}"}, timeout=10)
    assert refused.status_code == 403 and "operator" in refused.json()["error"]
    for path in ("/api/status", "/api/messages", "/api/journal/verify"):
        r = httpx.get(url + path, headers={"authorization": f"Bearer {monitor}"}, timeout=10)
        assert r.status_code == 403, f"a monitor token reads only /metrics, not {path}"

    series = scrape(url, monitor)
    for path in ("primary", "backup"):
        assert value(series, "hotline_path_up", peer="moscow", path=path) == 1
        assert value(series, "hotline_heartbeat_misses_total", peer="moscow", path=path) == 0
    assert value(series, "hotline_path_active", peer="moscow", path="primary") == 1
    assert value(series, "hotline_peer_up", peer="moscow") == 1
    assert value(series, "hotline_failovers_total", peer="moscow") == 0
    assert value(series, "hotline_messages_sent_total", peer="moscow", precedence="flash") == 0
    assert value(series, "hotline_alarms_open", kind="path-down") == 0
    assert value(series, "hotline_journal_check_ok") == 1
    assert (value(series, "hotline_journal_entries") or 0) > 0 and (value(series, "hotline_journal_bytes") or 0) > 0
    assert (value(series, "hotline_journal_check_timestamp_seconds") or 0) > 1.7e9
    assert (value(series, "hotline_process_resident_memory_bytes") or 0) > 0
    rtt = wait_for(
        lambda: value(scrape(url, monitor), "hotline_path_rtt_seconds", peer="moscow", path="primary"), 10, "an RTT"
    )
    assert 0 < rtt < 1

    flash = send(w, "flash", wait=True)
    series = scrape(url, monitor)
    assert value(series, "hotline_messages_sent_total", peer="moscow", precedence="flash") == 1
    assert value(series, "hotline_messages_delivered_total", peer="moscow", precedence="flash") == 1
    assert value(series, "hotline_messages_acknowledged_total", peer="moscow", precedence="flash") == 0
    assert value(series, "hotline_queue_depth", peer="moscow", precedence="flash") == 0
    assert (value(series, "hotline_oldest_unacknowledged_seconds", peer="moscow", precedence="flash") or 0) > 0
    assert value(series, "hotline_oldest_unacknowledged_seconds", peer="moscow", precedence="routine") == 0
    m.cli("ack", flash)

    def acknowledged() -> bool:
        s = scrape(url, monitor)
        return value(s, "hotline_messages_acknowledged_total", peer="moscow", precedence="flash") == 1 and (
            value(s, "hotline_oldest_unacknowledged_seconds", peer="moscow", precedence="flash") == 0
        )

    wait_for(acknowledged, 20, "the acknowledgement counted")

    # A silent blackhole on the primary: found by missed heartbeats, traffic fails over.
    pair.cut("primary")

    def failed_over() -> Series | None:
        s = scrape(url, monitor)
        done = (
            value(s, "hotline_path_up", peer="moscow", path="primary") == 0
            and value(s, "hotline_path_active", peer="moscow", path="backup") == 1
            and (value(s, "hotline_failovers_total", peer="moscow") or 0) >= 1
            and (value(s, "hotline_heartbeat_misses_total", peer="moscow", path="primary") or 0) >= 1
        )
        return s if done else None

    series = wait_for(failed_over, 20, "the primary down and traffic on the backup")
    assert (value(series, "hotline_path_downs_total", peer="moscow", path="primary") or 0) >= 1
    assert value(series, "hotline_path_up", peer="moscow", path="backup") == 1
    assert value(series, "hotline_peer_up", peer="moscow") == 1
    wait_for(lambda: value(scrape(url, monitor), "hotline_alarms_open", kind="path-down") == 1, 10, "path-down")

    # The peer stops: every path down, and what is sent now waits in the queue.
    m.stop()
    wait_for(lambda: value(scrape(url, monitor), "hotline_peer_up", peer="moscow") == 0, 20, "the peer down")
    send(w, "routine", wait=False)
    series = scrape(url, monitor)
    assert value(series, "hotline_queue_depth", peer="moscow", precedence="routine") == 1
    assert value(series, "hotline_path_up", peer="moscow", path="backup") == 0
    assert value(series, "hotline_alarms_open", kind="all-paths-down") == 1
    w.stop()

    lines = [json.loads(line) for line in w.log().splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    about_flash = [line for line in lines if flash in line["msg"]]
    assert len(about_flash) >= 2, about_flash  # accepted, delivered, acknowledged
    assert all(line.get("message_id") == flash and line.get("peer") == "moscow" for line in about_flash)
    downs = [line for line in lines if line["msg"].startswith("path primary to moscow down")]
    assert downs and all(line.get("path") == "primary" and line.get("peer") == "moscow" for line in downs)


@pytest.mark.e2e
def test_the_log_format_is_set_in_the_config_and_checked(paired: tuple[Terminal, Terminal]) -> None:
    w, _ = paired
    w.configure("log", format="yaml")
    bad = subprocess.run(
        [sys.executable, "-m", "hotline", "--home", str(w.home), "run"], capture_output=True, text=True,
        env=w.env(), timeout=30, check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "[log] format must be one of text, json" in bad.stderr
    w.configure("log", format="json")
    w.start()
    wait_for(lambda: w.log().strip(), 10, "a first log line")
    w.stop()
    parsed: list[dict[str, Any]] = [json.loads(line) for line in w.log().splitlines() if line.strip()]
    assert any(line["msg"].startswith("terminal washington") for line in parsed)
