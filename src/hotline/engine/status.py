"""The running terminal's status: peers, paths, queues and alarms, as `hotline status` shows them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hotline.crypto.identity import fingerprint
from hotline.engine.peer import PeerState
from hotline.storage.base import Record, TerminalStore
from hotline.storage.integrity import checkpoint_unverified


def peer_status(peer: PeerState, now: float) -> dict[str, Any]:
    """One peer: its link, each path's health and the state of both streams."""
    active = peer.active.path if peer.active is not None else None
    paths = []
    for health in sorted(peer.selector.paths.values(), key=lambda p: p.rank):
        link = peer.links.get(health.name)
        rtt, p50 = health.rtt_last(), health.rtt_p50(now)
        paths.append(
            {
                "name": health.name,
                "state": "up" if health.up else "down",
                "active": health.name == active,
                "address": link.address if link is not None else None,
                "rtt_ms": round(rtt * 1000, 3) if rtt is not None else None,
                "rtt_p50_ms": round(p50 * 1000, 3) if p50 is not None else None,
                "last_heartbeat_ms_ago": (
                    round((now - health.last_heartbeat) * 1000) if health.last_heartbeat is not None else None
                ),
                "last_test": health.last_test,
                "downs": health.downs,
                "heartbeat_misses": health.heartbeat_misses,
            }
        )
    link_state = "up" if active else ("refused" if peer.refused else "down")
    active_info = next((p for p in paths if p["active"]), None)
    return {
        **_peer(peer.name, peer.identity_key, link_state),
        "active_path": active,
        "address": active_info["address"] if active_info else None,
        "rtt_ms": active_info["rtt_ms"] if active_info else None,
        "paths": paths,
        "since_ns": peer.link_since_ns,
        **_streams(
            peer.last_contact_ns, queued=len(peer.queue), unacknowledged=peer.outbound.unacked_count,
            next_seq=peer.outbound.next_seq, delivered_upto=peer.outbound.acked, received_upto=peer.committed_in_upto,
        ),
        "refused": peer.refused,
        "last_error": peer.last_error,
        "failovers": peer.failovers,
    }  # fmt: skip


def terminal_status(name: str, peers: Iterable[PeerState], alarms: list[dict[str, Any]], now: float) -> dict[str, Any]:
    return {"name": name, "running": True, "peers": [peer_status(p, now) for p in peers], "alarms": alarms}


def stopped_status(name: str, store: TerminalStore, record: Record) -> dict[str, Any]:
    """The same view read from the journal while the terminal is stopped: every link is down,
    the queues are what the journal holds, the alarms are those it last raised."""
    checked = checkpoint_unverified(record)
    journal: dict[str, Any] = {"state": "not checked: the terminal is not running", "damage": [],
               "checked_upto": checked[0] if checked else None, "checked_at_ns": checked[1] if checked else None,
               "full_verify": None}  # fmt: skip
    peers = []
    for row in store.peers():
        cursors = store.cursors(row.name)
        depth = store.queue_depth(row.name)
        peers.append({
            **_peer(row.name, row.identity_key, "down (terminal not running)"),
            **_streams(
                cursors.last_contact_ns, queued=depth["queued"], unacknowledged=depth["sent"],
                next_seq=cursors.out_next_seq, delivered_upto=cursors.out_acked, received_upto=cursors.in_upto,
            ),
            "refused": None,
            "last_error": None,
        })  # fmt: skip
    return {"name": name, "running": False, "peers": peers, "alarms": store.active_alarms(), "journal": journal}


def _peer(name: str, identity_key: bytes, link: str) -> dict[str, Any]:
    return {"name": name, "fingerprint": fingerprint(identity_key), "link": link}


def _streams(
    last_contact_ns: int | None,
    *,
    queued: int,
    unacknowledged: int,
    next_seq: int,
    delivered_upto: int,
    received_upto: int,
) -> dict[str, Any]:
    """Where both streams with a peer stand: what waits here, what waits for a receipt, how far each went."""
    return {
        "last_contact_ns": last_contact_ns,
        "queue": {"queued": queued, "unacknowledged": unacknowledged, "next_seq": next_seq,
                  "delivered_upto": delivered_upto, "received_upto": received_upto},
    }  # fmt: skip
