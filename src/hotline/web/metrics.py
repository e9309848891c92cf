"""``GET /metrics``: the line's health and counts for Prometheus, for a ``monitor`` token.

Everything is read from the terminal at scrape time, through its port: what the engine holds
(``status()``, ``alarms()``) on the event loop, at once; what must be counted in the journal
(messages by state, the oldest unacknowledged, its size) in a worker thread on a read-only
connection of its own, since counting a large journal takes longer than the heartbeats may
wait. A collector formats that snapshot into a registry made for the one scrape (never the
library's global registry), so nothing is shared between scrapes, servers or tests. Counters
the engine keeps in memory (path downs, heartbeat misses, failovers) start again from zero
when the terminal restarts, which Prometheus' ``rate()`` and ``increase()`` expect; message
counters come from the journal and never do.

No message content, subject or user name is in any series: labels are ``peer``, ``path``,
``precedence`` and ``kind`` (an alarm's) only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from hotline.core.access import Permission
from hotline.core.alarms import KINDS
from hotline.core.model import Precedence
from hotline.storage.backend import open_storage
from hotline.web.auth import authenticate
from hotline.web.context import context

PRECEDENCES = tuple(p.label for p in sorted(Precedence, reverse=True))  # flash first
PATH = ("peer", "path")
BY_PRECEDENCE = ("peer", "precedence")


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


@dataclass(frozen=True)
class Snapshot:
    """One scrape's reading of the terminal: its live state, then its journal's counts."""

    status: dict[str, Any]  # TerminalPort.status(): peers, paths, the journal's last check
    alarms: list[dict[str, Any]]
    now_ns: int
    tallies: list[dict[str, Any]]  # MessageStore.tallies()
    unacknowledged: list[tuple[str, str, str, int]]  # MessageStore.unacknowledged()
    journal_bytes: int
    journal_entries: int


def read_journal(path: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str, str, int]], int, int]:
    """The journal's counts, on a read-only connection of its own (run in a worker thread)."""
    with open_storage(path, readonly=True) as storage:
        head = storage.record.last()
        return (storage.store.tallies(), storage.store.unacknowledged(), storage.record.size_bytes(),
                head.seq if head is not None else 0)  # fmt: skip


class TerminalCollector(Collector):
    """The terminal's metrics, from one scrape's snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        status = self.snapshot.status
        peers = [str(p["name"]) for p in status["peers"]]
        yield from self._links(status["peers"])
        yield from self._messages(peers)
        yield from self._alarms()
        yield from self._journal(status.get("journal") or {})

    # -- links and paths ----------------------------------------------------------------------

    def _links(self, peers: list[dict[str, Any]]) -> Iterator[Metric]:
        peer_up = GaugeMetricFamily("hotline_peer_up", "1 if some path to the peer is up (the link), else 0",
                                    labels=["peer"])  # fmt: skip
        failovers = CounterMetricFamily(
            "hotline_failovers",
            "Times traffic to the peer moved off a failed path to another, since the start",
            labels=["peer"],
        )
        up = GaugeMetricFamily("hotline_path_up", "1 if the path has a live, authenticated connection, else 0",
                               labels=PATH)  # fmt: skip
        active = GaugeMetricFamily("hotline_path_active", "1 for the path that carries traffic to the peer",
                                   labels=PATH)  # fmt: skip
        rtt = GaugeMetricFamily("hotline_path_rtt_seconds", "The path's last heartbeat round trip", labels=PATH)
        rtt_p50 = GaugeMetricFamily(
            "hotline_path_rtt_p50_seconds", "The path's median heartbeat round trip over the last minute", labels=PATH
        )
        heard = GaugeMetricFamily(
            "hotline_path_last_heartbeat_age_seconds", "Seconds since anything last arrived on the path", labels=PATH
        )
        downs = CounterMetricFamily("hotline_path_downs", "Times the path went down, since the start", labels=PATH)
        misses = CounterMetricFamily(
            "hotline_heartbeat_misses",
            "Times the path was declared dead because its heartbeats stopped arriving (missed_heartbeats "
            "intervals of silence), since the start",
            labels=PATH,
        )
        test_ok = GaugeMetricFamily(
            "hotline_path_test_ok", "1 if the path's last test message was answered in time, else 0", labels=PATH
        )
        test_at = GaugeMetricFamily(
            "hotline_path_test_timestamp_seconds",
            "When the path's last test message was settled (Unix time)",
            labels=PATH,
        )
        for peer in peers:
            name = str(peer["name"])
            peer_up.add_metric([name], 1.0 if peer.get("link") == "up" else 0.0)
            failovers.add_metric([name], float(peer.get("failovers", 0)))
            for path in peer.get("paths", []):
                labels = [name, str(path["name"])]
                up.add_metric(labels, 1.0 if path["state"] == "up" else 0.0)
                active.add_metric(labels, 1.0 if path["active"] else 0.0)
                for family, value in (
                    (rtt, _seconds(path["rtt_ms"])),
                    (rtt_p50, _seconds(path["rtt_p50_ms"])),
                    (heard, _seconds(path["last_heartbeat_ms_ago"])),
                ):
                    if value is not None:
                        family.add_metric(labels, value)
                downs.add_metric(labels, float(path.get("downs", 0)))
                misses.add_metric(labels, float(path.get("heartbeat_misses", 0)))
                test = path.get("last_test")
                if test:
                    test_ok.add_metric(labels, 1.0 if test.get("ok") else 0.0)
                    test_at.add_metric(labels, int(test["at_ns"]) / 1e9)
        yield from (peer_up, failovers, up, active, rtt, rtt_p50, heard, downs, misses, test_ok, test_at)

    # -- messages -----------------------------------------------------------------------------

    def _messages(self, peers: list[str]) -> Iterator[Metric]:
        counts = {
            "sent": CounterMetricFamily(
                "hotline_messages_sent",
                "Messages sealed and sent to the peer (a person's; not receipts)",
                labels=BY_PRECEDENCE,
            ),
            "delivered": CounterMetricFamily(
                "hotline_messages_delivered",
                "Messages sent whose signed delivery receipt is journaled",
                labels=BY_PRECEDENCE,
            ),
            "acknowledged": CounterMetricFamily(
                "hotline_messages_acknowledged",
                "Messages sent that a person at the peer acknowledged",
                labels=BY_PRECEDENCE,
            ),
            "received": CounterMetricFamily(
                "hotline_messages_received", "Messages received from the peer", labels=BY_PRECEDENCE
            ),
            "acknowledged_here": CounterMetricFamily(
                "hotline_messages_acknowledged_here",
                "Messages received that a person here acknowledged",
                labels=BY_PRECEDENCE,
            ),
        }
        tallies: dict[tuple[str, str], dict[str, int]] = {
            (p, prec): dict.fromkeys(counts, 0) | {"depth": 0} for p in peers for prec in PRECEDENCES
        }
        for row in self.snapshot.tallies:
            group = tallies.setdefault((row["peer"], row["precedence"]), dict.fromkeys(counts, 0) | {"depth": 0})
            if row["direction"] == "out":
                group["sent"] += row["sent"] + row["delivered"]
                group["delivered"] += row["delivered"]
                group["acknowledged"] += row["acknowledged"]
                group["depth"] += row["queued"] + row["sent"]
            else:
                group["received"] += row["received"]
                group["acknowledged_here"] += row["acknowledged"]
        depth = GaugeMetricFamily(
            "hotline_queue_depth",
            "Messages to the peer not yet delivered: queued here or sent and awaiting its signed receipt",
            labels=BY_PRECEDENCE,
        )
        now_ns = self.snapshot.now_ns
        oldest: dict[tuple[str, str], int] = {}
        for _, peer, precedence, since_ns in self.snapshot.unacknowledged:
            key = (peer, precedence)
            oldest[key] = min(since_ns, oldest.get(key, since_ns))
        unacked = GaugeMetricFamily(
            "hotline_oldest_unacknowledged_seconds",
            "Age of the oldest message, either way, that no person has acknowledged yet (0 when none waits)",
            labels=BY_PRECEDENCE,
        )
        for key in sorted(set(tallies) | set(oldest)):
            group = tallies.get(key) or dict.fromkeys(counts, 0) | {"depth": 0}
            for name, family in counts.items():
                family.add_metric(list(key), float(group[name]))
            depth.add_metric(list(key), float(group["depth"]))
            since = oldest.get(key)
            unacked.add_metric(list(key), max(0.0, (now_ns - since) / 1e9) if since is not None else 0.0)
        yield from (*counts.values(), depth, unacked)

    # -- alarms and the journal ---------------------------------------------------------------

    def _alarms(self) -> Iterator[Metric]:
        open_by_kind = dict.fromkeys(KINDS, 0)
        for alarm in self.snapshot.alarms:
            open_by_kind[str(alarm["kind"])] = open_by_kind.get(str(alarm["kind"]), 0) + 1
        family = GaugeMetricFamily("hotline_alarms_open", "Alarms open now, by kind", labels=["kind"])
        for kind, count in open_by_kind.items():
            family.add_metric([kind], float(count))
        yield family

    def _journal(self, check: dict[str, Any]) -> Iterator[Metric]:
        yield GaugeMetricFamily("hotline_journal_bytes", "What the journal takes on disk",
                                value=self.snapshot.journal_bytes)  # fmt: skip
        yield GaugeMetricFamily("hotline_journal_entries", "Entries in the journal's hash chain (its head)",
                                value=self.snapshot.journal_entries)  # fmt: skip
        yield GaugeMetricFamily(
            "hotline_journal_check_ok",
            "1 if the journal's last integrity check found it intact, else 0",
            value=1.0 if check.get("state") == "intact" else 0.0,
        )
        if check.get("checked_at_ns") is not None:
            yield GaugeMetricFamily("hotline_journal_check_timestamp_seconds",
                                    "When the journal's last integrity check ran (Unix time)",
                                    value=int(check["checked_at_ns"]) / 1e9)  # fmt: skip
        full = check.get("full_verify")
        if full:
            yield GaugeMetricFamily(
                "hotline_journal_full_verify_ok",
                "1 if the full verify (every signature) since the start found nothing wrong, else 0",
                value=1.0 if full.get("ok") else 0.0,
            )
            yield GaugeMetricFamily("hotline_journal_full_verify_timestamp_seconds",
                                    "When the full verify since the start finished (Unix time)",
                                    value=int(full["at_ns"]) / 1e9)  # fmt: skip


def exposition(snapshot: Snapshot) -> bytes:
    """The snapshot in Prometheus' text format, with this process's own metrics (memory, CPU, files)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TerminalCollector(snapshot))
    ProcessCollector(namespace="hotline", registry=registry)
    return generate_latest(registry)


async def get_metrics(request: Request) -> Response:
    """Prometheus' text format; a ``monitor`` token (or a supervisor) may read it."""
    await authenticate(request, Permission.METRICS)
    terminal = context(request).terminal
    status, alarms, now_ns = terminal.status(), terminal.alarms(), terminal.now_ns()  # on the loop, at once

    def read() -> bytes:
        tallies, unacknowledged, size, entries = read_journal(terminal.journal_path)
        return exposition(Snapshot(status, alarms, now_ns, tallies, unacknowledged, size, entries))

    body = await asyncio.to_thread(read)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"cache-control": "no-store"})
