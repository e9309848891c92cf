"""Relay decisions, sans-IO: when a terminal sends its stream to a peer through a third terminal,
and whether a terminal passes on what another asks it to.

Where member A of a channel that allows relay cannot reach member C on any path of its own, but
both reach member B, A's link to C runs *through* B: every frame A's connection to C would write
(hello, envelopes signed by A and encrypted to C under the A-C ratchet, receipts, pings) goes to B
inside a ``relay`` frame, and B passes it to C inside a ``relayed`` frame (``protocol``). To the
A-C pair this is one more path, named ``relay:B``, after every direct one (``paths``).

The decisions here are the whole policy; the engine (``engine.relaying``) gathers the facts:

* ``choose_via``: A relays to C only while no direct path to C is up, through a member it has a
  live link to and that a shared channel allows, the first such by name (the same choice each
  time, so both ends tend to pick the same B), and not again through one that just failed.
* ``forward_problem``: B passes a frame on only from a peer it is linked to, to a peer it is
  linked to, when a channel all three have joined allows relay.
* ``opens_relay`` and ``take_relayed``: of a pair, one end opens relayed sessions (the smaller name),
  numbering each with a fresh random session id that every relayed frame of it carries, both ways; the
  other end answers a hello of a new session by replacing what it held, and drops frames of any other
  session. Were both ends to open, each hello could be taken for a new session by the other and
  answered with a hello of its own, for ever (the end-to-end test found that loop); with one opener a
  lost or stale session ends in silence, and the opener starts a new one.

``split_frames`` cuts what a connection wrote into pieces of whole frames, each small enough for
one relay frame, so a lost piece never leaves half a frame in the far end's decoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from hotline.core.errors import RemoteProtocolError
from hotline.core.wire import FrameDecoder

RELAY_PREFIX = "relay:"
RETRY_AFTER_S = 2.0  # a relay that failed to come up is not tried again through the same member sooner


def relay_path(via: str) -> str:
    """The name of the path through ``via``, the same at both ends."""
    return RELAY_PREFIX + via


def is_relay_path(path: str) -> bool:
    return path.startswith(RELAY_PREFIX)


def choose_via(
    *, direct_up: bool, live: Iterable[str], allowed: Iterable[str], peer: str, retry_at: dict[str, float], now: float
) -> str | None:
    """Which member to relay the stream to ``peer`` through now, or None.

    ``live``: the peers this terminal has a live (hello received) direct link to; ``allowed``: the
    members a channel shared with ``peer`` lets carry it; ``retry_at``: per member, when it may be
    tried again after a relay through it failed to come up or went down."""
    if direct_up:
        return None
    candidates = (set(live) & set(allowed)) - {peer}
    ready = sorted(v for v in candidates if retry_at.get(v, 0.0) <= now)
    return ready[0] if ready else None


def opens_relay(me: str, peer: str) -> bool:
    """Whether this end of the pair opens relayed sessions (the other only answers)."""
    return me < peer


def take_relayed(*, held: int | None, session: int, opener: bool, hello: bool) -> str:
    """What to do with relayed frames of ``session`` given the session of the relayed link held for
    that path (``held``, None if none): "feed" them to it, "replace" it by a new link of ``session``
    (the opener began a new session: they start with its hello), or "drop" them (of a session
    that is over, or that this end never opened)."""
    if held == session:
        return "feed"
    if not opener and hello:
        return "replace"
    return "drop"


def forward_problem(*, sender: str, to: str, me: str, linked: Iterable[str], allowed: Iterable[str]) -> str:
    """Why this terminal (``me``) will not pass ``sender``'s frames on to ``to`` ("" if it will).
    ``linked``: peers with a live link here now; ``allowed``: the members a channel lets carry the
    sender-recipient stream (as this terminal's own record of the channels has it)."""
    if to in (me, sender):
        return f"{sender} asked {me} to relay to {to}, which is not a third terminal"
    if to not in set(linked):
        return f"{me} has no live link to {to}"
    if me not in set(allowed):
        return f"no channel that {sender}, {me} and {to} have joined allows relay"
    return ""


def split_frames(data: bytes, cap: int) -> Iterator[bytes]:
    """Cut ``data`` (whole length-prefixed frames, ``wire``) into runs of whole frames of at most
    ``cap`` bytes each; a single frame larger than ``cap`` comes alone (no frame of ours is that large: the
    caller drops it rather than have the relay refuse it)."""
    start = end = 0
    while end < len(data):
        size = 4 + int.from_bytes(data[end : end + 4], "big")
        if end > start and end + size - start > cap:
            yield data[start:end]
            start = end
        end += size
    if end > start:
        yield data[start:end]


def starts_afresh(data: bytes) -> bool:
    """Whether relayed ``data`` opens with a hello: the far end started a new connection (it
    restarted, or gave up on the old one first), which replaces whatever we hold of the old."""
    decoder = FrameDecoder()
    decoder.receive_data(data)
    try:
        frame = decoder.next_frame()
    except RemoteProtocolError:
        return False  # the relayed link's own decoder refuses it, with the reason
    return frame is not None and frame["t"] == "hello"
