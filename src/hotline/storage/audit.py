"""Verifying and exporting the record.

``verify`` walks the journal from its first entry and checks, for every entry,
that it links to the one before (hash chain), and for every envelope and
receipt, its Ed25519 signature against the key in force when it was written:
our own key (from ``terminal.created``, or the latest ``terminal.rotated`` or
``terminal.revoked``) for what we sent and signed, the peer's pinned key (from
the latest ``peer.paired`` or ``peer.succeeded``) for what it sent and signed,
and a key the peer retired by succession for the envelopes it sealed before.
It also replays each direction's running stream hash, so a receipt is checked
to cover exactly the envelopes journaled.

It reports the first bad entry by number and kind; a person then knows where to
look.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hotline.core.errors import HotlineError, RemoteProtocolError
from hotline.core.model import EMPTY_STREAM_HASH, next_stream_hash
from hotline.core.times import rfc3339
from hotline.crypto import envelope as env
from hotline.desk.records import decode_record, open_record
from hotline.storage.base import Record
from hotline.storage.integrity import OWN_KEY_KINDS
from hotline.storage.records import GENESIS_HASH, entry_hash


@dataclass
class VerifyReport:
    entries: int = 0
    signatures: int = 0
    problems: list[str] = field(default_factory=list)  # the first ``max_problems``, as text
    damaged: list[int] = field(default_factory=list)  # every entry with a problem, by number
    first: dict[int, tuple[str, str]] = field(default_factory=dict)  # entry -> (kind, its first problem)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "signatures": self.signatures,
            "problems": self.problems,
        }


@dataclass
class _Stream:
    out_hash: bytes = EMPTY_STREAM_HASH
    out_hashes: dict[int, bytes] = field(default_factory=dict)
    in_hash: bytes = EMPTY_STREAM_HASH
    in_upto: int = 0


def verify(journal: Record, max_problems: int = 20) -> VerifyReport:
    report = VerifyReport()
    prev = GENESIS_HASH
    expected_seq = 1
    own_key: bytes | None = None
    peer_keys: dict[str, bytes] = {}
    # A peer's keys before its succession(s), oldest first, each with the last of its envelopes it
    # sealed (``peer.succeeded``): those verify against it, everything later against the successor.
    retired: dict[str, list[tuple[bytes, int]]] = {}
    streams: dict[str, _Stream] = {}

    def problem(seq: int, kind: str, text: str) -> None:
        if not report.damaged or report.damaged[-1] != seq:
            report.damaged.append(seq)
            report.first[seq] = (kind, text)
        if len(report.problems) < max_problems:
            report.problems.append(f"entry {seq} ({kind}): {text}")

    for entry in journal.entries():
        report.entries += 1
        if entry.seq != expected_seq:
            problem(entry.seq, entry.kind, f"sequence gap: expected entry {expected_seq}")
        expected_seq = entry.seq + 1
        if entry.prev != prev:
            problem(entry.seq, entry.kind, "does not link to the entry before it (prev hash differs)")
        if entry_hash(entry.prev, entry.seq, entry.at_ns, entry.kind, entry.peer, entry.body) != entry.hash:
            problem(entry.seq, entry.kind, "hash does not match its contents: the entry was altered")
        prev = entry.hash
        try:
            body = entry.decoded()
            if entry.kind in OWN_KEY_KINDS:
                own_key = body["identity_key"]  # what we sign from here on
            elif entry.kind == "peer.paired":
                if peer_keys.get(entry.peer) != body["identity_key"] or body.get("fresh"):
                    streams[entry.peer] = _Stream()
                    retired[entry.peer] = []
                peer_keys[entry.peer] = body["identity_key"]
            elif entry.kind == "peer.succeeded":
                retired.setdefault(entry.peer, []).append((body["old_key"], body["upto"]))
                peer_keys[entry.peer] = body["identity_key"]  # the same stream goes on
            elif entry.kind == "peer.rekeyed":
                streams[entry.peer] = _Stream()  # a fresh stream both ways, as a new pairing starts
                retired[entry.peer] = []
            elif entry.kind in {"message.sealed", "receipt.sent"}:
                if own_key is None:
                    raise HotlineError("signed by us before the terminal.created entry")
                stream = streams.setdefault(entry.peer, _Stream())
                if entry.kind == "message.sealed":
                    sealed = env.open_envelope(body["envelope"], own_key)
                    stream.out_hash = next_stream_hash(stream.out_hash, body["envelope"])
                    stream.out_hashes[sealed.seq] = stream.out_hash
                    if body["sh"] != stream.out_hash or sealed.seq != body["seq"]:
                        stream.out_hash = stream.out_hashes[sealed.seq] = body["sh"]  # resync (see below)
                        raise HotlineError("sealed envelope does not continue the outgoing stream")
                else:
                    receipt = env.open_receipt(body["receipt"], own_key)
                    if receipt.upto != stream.in_upto or receipt.stream_hash != stream.in_hash:
                        # Our own signed receipt says where the stream stood: go on from there.
                        stream.in_upto, stream.in_hash = receipt.upto, receipt.stream_hash
                        raise HotlineError("our receipt does not match the messages journaled before it")
                report.signatures += 1
            elif entry.kind in {"message.received", "message.duplicate", "receipt.received"}:
                key = peer_keys.get(entry.peer)
                if key is None:
                    raise HotlineError(f"signed by {entry.peer!r}, which is not paired at this point")
                stream = streams.setdefault(entry.peer, _Stream())
                if entry.kind != "receipt.received":
                    # A mismatch is one problem, at this entry: the stream goes on from what the entry
                    # itself says (its sequence number and stream hash), so a received entry deleted
                    # (and the damage accepted) does not make every later one a new problem.
                    after, hash_before = stream.in_upto, stream.in_hash
                    stream.in_upto, stream.in_hash = body["seq"], body["sh"]
                    signer = next((k for k, upto in retired.get(entry.peer, []) if body["seq"] <= upto), key)
                    received = env.open_envelope(body["envelope"], signer)
                    if received.seq != after + 1 or received.seq != body["seq"]:
                        raise HotlineError(f"received sequence {received.seq} after {after}")
                    if body["sh"] != next_stream_hash(hash_before, body["envelope"]):
                        raise HotlineError("stream hash does not match the envelopes received")
                else:
                    receipt = env.open_receipt(body["receipt"], key)
                    sent = stream.out_hashes.get(receipt.upto)
                    if sent is not None and sent != receipt.stream_hash:
                        raise HotlineError("peer's receipt covers envelopes other than those we sealed")
                report.signatures += 1
            report.signatures += _own_desk_record(entry.kind, body, own_key, peer_keys)
        except HotlineError as e:
            problem(entry.seq, entry.kind, str(e))
        except (KeyError, TypeError, AttributeError) as e:
            problem(entry.seq, entry.kind, f"malformed body ({type(e).__name__}: {e})")
    return report


def _own_desk_record(kind: str, body: dict[str, Any], own_key: bytes | None, peer_keys: dict[str, bytes]) -> int:
    """A desk record this terminal signed (sent, or kept here) must verify against its own key:
    1 signature checked, or 0 if the entry holds none. (A received record refused on arrival is
    journaled with the envelope that carried it, so received ones are not held to this.) A channel's
    membership record this terminal forwards to a member (``desk.channels.fanout``) verifies against
    its author's paired key instead."""
    if kind == "desk.record":
        signed = body["record"]
    elif kind == "message.accepted" and body.get("kind") == "record":
        signed = body["rcpt"]
    else:
        return 0
    if own_key is None:
        raise HotlineError("a desk record signed by us before the terminal.created entry")
    try:
        record = decode_record(signed)
        if record.type.is_membership and record.author in peer_keys:
            open_record(signed, peer_keys[record.author])
        else:
            open_record(signed, own_key)
    except RemoteProtocolError as e:
        raise HotlineError(f"desk record: {e}") from None
    return 1


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def export_lines(journal: Record, start: int = 1) -> Iterator[str]:
    """The record as JSON lines; bytes as base64, hashes as hex."""
    for entry in journal.entries(start):
        try:
            body: Any = _jsonable(entry.decoded())
        except HotlineError:
            body = {"undecodable": base64.b64encode(entry.body).decode()}
        yield json.dumps(
            {
                "seq": entry.seq,
                "at": rfc3339(entry.at_ns),
                "at_ns": entry.at_ns,
                "kind": entry.kind,
                "peer": entry.peer,
                "body": body,
                "prev": entry.prev.hex(),
                "hash": entry.hash.hex(),
            },
            ensure_ascii=False,
            sort_keys=True,
        )
