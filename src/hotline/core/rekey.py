"""What a re-key means for one direction of the stream, decided without I/O.

When two terminals re-key (``crypto.rekey``: one of them was restored from a
backup), both start a fresh stream: sequence numbers from 1, cursors reset, as
re-pairing does. Before that, each side must decide which of its own sealed
messages the other side holds (those are done) and which it must send again as
fresh envelopes in the new stream. The other side's offer says how far it holds
our stream (``in_upto``) and the stream hash there (``in_sh``):

* the hash matches ours at that sequence: the same stream; the peer holds our
  1..in_upto and nothing after;
* ``in_upto`` is past the last we sealed, *we* were restored, and the peer's
  answer confirms its stream hash at our last envelope equals ours: the peer
  holds envelopes we sealed after our backup and lost; it holds all we still
  know, and ``lost`` names the rest (they are in the peer's journal only);
* anything else (a backup older than the stream now running): we cannot tell,
  so the peer is taken to hold nothing of the stream and gets all of it again;
  it drops by message id whatever it already has.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline.core.model import EMPTY_STREAM_HASH


@dataclass(frozen=True, slots=True)
class StreamRestart:
    """``held``: our sequences 1..held are in the peer's journal (mark them delivered); every later
    one of the stream goes back to the queue. ``lost``: (first, last) sequences the peer holds that
    our journal lost with the restore, else None. ``same_stream``: whether the peer's cursor was
    recognised."""

    held: int
    lost: tuple[int, int] | None
    same_stream: bool


def plan_restart(
    *, our_out_upto: int, our_hash_at_peer_cursor: bytes | None, peer_in_upto: int, peer_in_sh: bytes,
    we_were_restored: bool, our_out_sh: bytes = EMPTY_STREAM_HASH, peer_hash_at_our_out: bytes | None = None,
) -> StreamRestart:  # fmt: skip
    """Decide from the peer's cursor into our stream. ``our_hash_at_peer_cursor`` is our running
    stream hash at ``peer_in_upto`` (None if we hold no envelope of that number); ``our_out_sh`` our
    hash at our last envelope and ``peer_hash_at_our_out`` the peer's hash of what it received at
    that same number (None if it did not say)."""
    if peer_in_upto == 0:
        return StreamRestart(0, None, peer_in_sh == EMPTY_STREAM_HASH)
    if peer_in_upto <= our_out_upto:
        if our_hash_at_peer_cursor is not None and our_hash_at_peer_cursor == peer_in_sh:
            return StreamRestart(peer_in_upto, None, True)
        return StreamRestart(0, None, False)
    if we_were_restored and peer_hash_at_our_out is not None and peer_hash_at_our_out == our_out_sh:
        return StreamRestart(our_out_upto, (our_out_upto + 1, peer_in_upto), True)
    return StreamRestart(0, None, False)
