"""Channels: several terminals on one thread, each record signed once and sent to every member.

A channel is a desk thread opened by a ``channel.create`` record (its name, its
members — at most 16, the creator among them —, its disclosure and whether it allows relay). Every
later record of the thread is one act of one member, signed once by it:

    channel.join     an invited member accepts; only then does it receive messages
    channel.add      a joined member invites another paired terminal
    channel.remove   a joined member removes another
    channel.leave    a member leaves
    channel.message  a message: text, subject, precedence, language, the author's
                     per-channel sequence number and what it had already seen (a
                     per-author sequence vector)

The same signed bytes go to each member over that member's own pairwise link, in
the ordinary exactly-once stream (``fanout``): no group key, no server. A channel created with
``relay`` lets a member carry two others' whole pairwise link, as ciphertext, while theirs is cut
(``relay_vias``; ``core.relay``, ``engine.relaying``).

Membership takes effect at one point. Every member folds the thread in the order
all desk threads use, ``(lamport, author, id)`` (``desk.register``), so a removal
lands at the same place in every member's record; a message ordered after it is
not for the removed member — the author never sends it there, and its view stops
at its removal. A message by a terminal that is not a joined member at its place
stays on record, void, with the reason, as any desk record the state machine does
not allow.

States of one member, as the fold sees it::

    invited ──join──▶ joined ──leave | remove──▶ gone ──add──▶ invited

Messages are shown in one causal order at every member (``causal_order``): a
topological order of the "had seen" relation the vectors give, ties broken by
(author, seq); the same set of messages gives the same list anywhere.

Pure: records in, views out; no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hotline.core.errors import DeskError
from hotline.desk.records import MAX_CHANNEL_MEMBERS, DeskRecord, RecordType


@dataclass(frozen=True, slots=True)
class ChannelMessage:
    """One message of a channel, with the members it is for (the joined ones at its place)."""

    record: DeskRecord
    recipients: frozenset[str]  # those it was sent to that are joined members at its place

    @property
    def author(self) -> str:
        return self.record.author

    @property
    def seq(self) -> int:
        return int(self.record.fields["seq"])

    @property
    def seen(self) -> dict[str, int]:
        return dict(self.record.fields["seen"])

    @property
    def key(self) -> tuple[str, int]:
        return (self.record.author, self.seq)


@dataclass
class ChannelStep:
    record: DeskRecord
    void: str = ""


@dataclass
class Channel:
    id: str
    name: str
    creator: str
    disclosure: str
    created_at_ns: int
    relay: bool = False  # members may carry two others' traffic, as ciphertext, when their link is cut
    invited: set[str] = field(default_factory=set)
    joined: set[str] = field(default_factory=set)
    gone: dict[str, str] = field(default_factory=dict)  # member -> "left" or "removed by X"
    cut: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # member -> order of its removal
    steps: list[ChannelStep] = field(default_factory=list)
    messages: list[ChannelMessage] = field(default_factory=list)  # applied messages, in fold order

    @property
    def members(self) -> set[str]:
        return self.invited | self.joined

    def member_state(self, name: str) -> str:
        if name in self.joined:
            return "joined"
        if name in self.invited:
            return "invited"
        return "left" if self.gone.get(name) == "left" else "removed" if name in self.gone else ""

    def visible_to(self, viewer: str) -> list[ChannelMessage]:
        """The messages ``viewer`` is party to, in the causal order: its own and those sent to it. A
        removed member's view stops at its removal, a member's starts at its joining."""
        return causal_order([m for m in self.messages if m.author == viewer or viewer in m.recipients])

    def last_seq(self, author: str) -> int:
        return max((m.seq for m in self.messages if m.author == author), default=0)

    def seen_vector(self, viewer: str) -> dict[str, int]:
        """What ``viewer`` has seen of the channel: for each other author, the highest sequence number
        such that every message of that author up to it that was sent to ``viewer`` is held."""
        held: dict[str, int] = {}
        for message in self.visible_to(viewer):
            if message.author != viewer:
                held[message.author] = max(held.get(message.author, 0), message.seq)
        return dict(sorted(held.items()))


def fold_channel(records: Sequence[DeskRecord]) -> Channel:
    """Fold a channel's records, already sorted by ``DeskRecord.order``, into its state."""
    first = records[0]
    if first.type is not RecordType.CHANNEL_CREATE:
        raise DeskError(f"{first.thread} is not a channel")
    f = first.fields
    channel = Channel(first.id, f["name"], first.author, f["disclosure"], first.at_ns, bool(f.get("relay")),
                      invited=set(f["members"]) - {first.author}, joined={first.author})  # fmt: skip
    channel.steps.append(ChannelStep(first, "" if first.author in f["members"] else "the creator is not a member"))
    for record in records[1:]:
        channel.steps.append(ChannelStep(record, _apply(channel, record)))
    return channel


def _apply(channel: Channel, record: DeskRecord) -> str:
    """Apply one record at its place; return why it is void, or "" if it applied."""
    who, rtype, f = record.author, record.type, record.fields
    if rtype is RecordType.CHANNEL_CREATE:
        return "a channel is created once"
    if rtype is RecordType.CHANNEL_JOIN:
        if who in channel.joined:
            return f"{who} has already joined"
        if who not in channel.invited:
            return f"{who} is not invited to #{channel.name}"
        channel.invited.discard(who)
        channel.joined.add(who)
        return ""
    if rtype is RecordType.CHANNEL_LEAVE:
        if who not in channel.members:
            return f"{who} is not a member of #{channel.name}"
        _drop(channel, who, "left", record)
        return ""
    if rtype is RecordType.CHANNEL_MESSAGE:
        if who not in channel.joined:
            return f"{who} is not a joined member of #{channel.name} at this point"
        if f["seq"] <= channel.last_seq(who):
            return f"{who}'s sequence number {f['seq']} is not above its last one"
        # For the members its author sent it to (``to``) that are still joined at its place: one removed
        # by a record ordered before it is not among them, whatever its author knew when it wrote it.
        channel.messages.append(ChannelMessage(record, frozenset(f["to"]) & frozenset(channel.joined - {who})))
        return ""
    if who not in channel.joined:
        return f"only a joined member changes who is in #{channel.name}; {who} is not one at this point"
    member = str(f["member"])
    if rtype is RecordType.CHANNEL_ADD:
        if member in channel.members:
            return f"{member} is already a member"
        if len(channel.members) >= MAX_CHANNEL_MEMBERS:
            return f"#{channel.name} already has {MAX_CHANNEL_MEMBERS} members"
        channel.invited.add(member)
        channel.gone.pop(member, None)
        channel.cut.pop(member, None)
        return ""
    if rtype is RecordType.CHANNEL_REMOVE:
        if member == who:
            return "a member leaves rather than removes itself"
        if member not in channel.members:
            return f"{member} is not a member of #{channel.name}"
        _drop(channel, member, f"removed by {who}", record)
        return ""
    return f"a {rtype} record does not belong to a channel"


def _drop(channel: Channel, member: str, why: str, record: DeskRecord) -> None:
    channel.invited.discard(member)
    channel.joined.discard(member)
    channel.gone[member] = why
    channel.cut[member] = record.order


def relay_vias(channels: Iterable[Channel], a: str, c: str) -> set[str]:
    """The members that may carry the stream between ``a`` and ``c`` (``core.relay``): those that have
    joined, with both, a channel that allows relay. Everyone's own record of the channels decides
    for itself — the sender whom it asks, the relay whether it passes frames on."""
    vias: set[str] = set()
    for channel in channels:
        if channel.relay and {a, c} <= channel.joined:
            vias |= channel.joined - {a, c}
    return vias


def causal_order(messages: Iterable[ChannelMessage]) -> list[ChannelMessage]:
    """Every member's order of a set of messages: each after the ones its author had seen (its seen
    vector) and its author's earlier ones; among those ready at once, the least (author, seq) first.

    Deterministic in the set alone. Vectors that contradict each other (only a faulty author writes
    them) cannot stall it: with nothing ready, the least (author, seq) still waiting goes next."""
    by_author: dict[str, list[ChannelMessage]] = {}
    for message in {m.key: m for m in messages}.values():
        by_author.setdefault(message.author, []).append(message)
    for queue in by_author.values():
        queue.sort(key=lambda m: m.seq)
    position = dict.fromkeys(by_author, 0)  # how many of each author's are placed

    def ready(message: ChannelMessage) -> bool:
        for author, upto in message.record.fields["seen"].items():
            queue = by_author.get(author)
            waiting = queue[position[author]] if queue and position[author] < len(queue) else None
            if author != message.author and waiting is not None and waiting.seq <= upto:
                return False  # it had seen one that is not placed yet
        return True

    ordered: list[ChannelMessage] = []
    total = sum(len(q) for q in by_author.values())
    while len(ordered) < total:
        heads = [q[position[a]] for a, q in by_author.items() if position[a] < len(q)]
        candidates = [m for m in heads if ready(m)] or heads
        chosen = min(candidates, key=lambda m: m.key)
        ordered.append(chosen)
        position[chosen.author] += 1
    return ordered


def check_causal(messages: Sequence[ChannelMessage]) -> bool:
    """Whether a list respects every seen vector and each author's own order (for tests and audits)."""
    keys = {m.key for m in messages}
    placed: set[tuple[str, int]] = set()
    for message in messages:
        needed = {(a, s) for (a, s) in keys if (a == message.author and s < message.seq)
                  or (a != message.author and s <= message.seen.get(a, 0))}  # fmt: skip
        if not needed <= placed:
            return False
        placed.add(message.key)
    return True


# -- fan-out: who gets what ----------------------------------------------------------------------


def fanout(records: Sequence[DeskRecord], record: DeskRecord, me: str) -> list[tuple[str, list[DeskRecord]]]:
    """For one of this terminal's channel records, already at its place in ``records`` (the thread,
    sorted), each member it goes to and what goes there, in order: the record itself, preceded by the
    channel's membership history where the member may lack it.

    - a message goes to the members it names (``to``: those joined when it was written);
    - a membership record goes to every terminal the channel has named, members and gone ones (so
      a removed member learns of its removal, an added one of its invitation, and one an author
      wrongly holds as removed still folds what everyone else folds); a gone member learns who is
      in the channel, never what is said in it;
    - an added member first gets the channel's membership history (the create and every change),
      each record signed by its own author, so its own fold starts where everyone else's is;
    - a joining member sends that history too, ahead of its join, so a member that has not yet
      heard of the invitation (it travels on another link) still holds it when the join arrives.
    """
    records = sorted(records, key=lambda r: r.order)
    earlier = [r for r in records if r.order < record.order]
    before = fold_channel(earlier) if earlier else None
    after = fold_channel([r for r in records if r.order <= record.order])
    if record.type is RecordType.CHANNEL_MESSAGE:
        to = set(record.fields["to"])
    else:
        # Everyone the channel has named, gone members too: an author may hold a member as removed by
        # a removal that the agreed order voids (its remover had been removed first, concurrently),
        # and that member must still hold every change of membership to fold what the others fold.
        to = after.members | set(after.gone) | set(after.cut)
        if before is not None:
            to |= before.members | set(before.gone)
        if record.type is RecordType.CHANNEL_REMOVE:
            to.add(str(record.fields["member"]))
    to.discard(me)
    history = [r for r in records if r.type.is_membership and r.order < record.order]
    plan: list[tuple[str, list[DeskRecord]]] = []
    for member in sorted(to):
        ahead: list[DeskRecord] = []
        if record.type is RecordType.CHANNEL_JOIN or (
            record.type is RecordType.CHANNEL_ADD and member == record.fields["member"]
        ):
            ahead = history
        plan.append((member, [*ahead, record]))
    return plan


def admission_problem(thread: Sequence[DeskRecord], record: DeskRecord, me: str) -> str:
    """Why a channel record that arrived (its signature checked) cannot enter this terminal's
    register ("" if it can). ``thread`` is what this terminal holds of the channel, received or not
    yet journaled. Nothing here depends on the order records arrive in, except that a channel's
    creation and a member's invitation come ahead of what depends on them (``fanout`` sends them so)."""
    if any(r.id == record.id for r in thread):
        return f"channel record {record.id} was already received (a replay)"
    if record.type is RecordType.CHANNEL_CREATE:
        return f"channel record {record.id} starts a thread that already exists" if thread else ""
    first = next((r for r in thread if r.type is RecordType.CHANNEL_CREATE), None)
    if first is None:
        return f"channel record {record.id} refers to {record.thread}, which this terminal does not hold"
    if record.lamport <= first.lamport:
        return f"channel record {record.id} is ordered before the channel's creation (Lamport number)"
    named: set[str] = set()
    for r in thread:
        if r.type is RecordType.CHANNEL_CREATE:
            named |= set(r.fields["members"])
        elif r.type is RecordType.CHANNEL_ADD:
            named.add(str(r.fields["member"]))
    if record.author not in named:
        return f"{record.author} is not a member of #{first.fields['name']}"
    if record.type is RecordType.CHANNEL_MESSAGE and me not in record.fields["to"]:
        return f"the message is addressed to {', '.join(record.fields['to'])}, not to {me}"
    return ""


# -- views -----------------------------------------------------------------------------------------


def message_view(message: ChannelMessage) -> dict[str, Any]:
    r, f = message.record, message.record.fields
    return {
        "id": r.id, "author": r.author, "seq": f["seq"], "seen": dict(f["seen"]), "at_ns": r.at_ns,
        "lamport": r.lamport, "precedence": f["precedence"], "lang": f["lang"], "subject": f["subject"],
        "text": f["text"], "recipients": sorted(message.recipients),
        "attachments": [{"index": i, "name": name, "size": size, "sha256": digest.hex()}
                        for i, (name, digest, size) in enumerate(f.get("attachments", []))],
    }  # fmt: skip


def channel_view(channel: Channel, viewer: str) -> dict[str, Any]:
    """A channel as ``viewer`` holds it: its members and its messages in the causal order."""
    everyone = sorted(channel.members | set(channel.gone))
    return {
        "id": channel.id, "name": channel.name, "creator": channel.creator, "disclosure": channel.disclosure,
        "created_at_ns": channel.created_at_ns, "state": channel.member_state(viewer), "relay": channel.relay,
        "members": [{"name": n, "state": channel.member_state(n), "why": channel.gone.get(n, "")} for n in everyone],
        "messages": [message_view(m) for m in channel.visible_to(viewer)],
        "history": [{"id": s.record.id, "type": s.record.type.value, "author": s.record.author,
                     "at_ns": s.record.at_ns, "lamport": s.record.lamport, "void": s.void,
                     "member": s.record.fields.get("member", "")}
                    for s in channel.steps if s.record.type.is_membership],
    }  # fmt: skip


# -- receipts: who has each message delivered, read, acknowledged ------------------------------------

RECEIPT_KEYS = ("state", "delivered_at_ns", "read_at_ns", "acknowledged_at_ns", "acknowledged_by")


def receipts_by_record(carriers: Iterable[dict[str, Any]]) -> dict[bytes, dict[str, dict[str, Any]]]:
    """The store's carrier rows (``record_carriers``) as: signed record -> member -> its receipts."""
    found: dict[bytes, dict[str, dict[str, Any]]] = {}
    for row in carriers:
        found.setdefault(row["signed"], {})[row["peer"]] = {"carrier": row["id"], **{k: row[k] for k in RECEIPT_KEYS}}
    return found


def not_acknowledged(receipts: dict[str, dict[str, Any]]) -> list[str]:
    """The members a message went to that have not acknowledged it, sorted."""
    return sorted(name for name, r in receipts.items() if not r["acknowledged_at_ns"])


def channel_document(
    channel: Channel, me: str, sent: Iterable[dict[str, Any]], received: Iterable[dict[str, Any]],
    links: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """A channel as this terminal shows it (``channel show``, the console): ``channel_view`` with, for
    each of its own messages, each member's receipts (``delivery``: the carrier's state, delivered,
    read and acknowledged at, by whom; and ``unacknowledged_by``), for each received one this
    terminal's own (``mine``); each member's link (``links``: peer -> "up"/"down"), how many of this
    terminal's messages it lacks, and what it had seen when it last wrote. ``sent`` and ``received``
    are the store's carrier rows both ways."""
    view = channel_view(channel, me)
    out, into = receipts_by_record(sent), receipts_by_record(received)
    by_id = {m.record.id: m for m in channel.messages}
    behind: dict[str, int] = {}
    for message in view["messages"]:
        signed = by_id[message["id"]].record.signed
        if message["author"] != me:
            mine = into.get(signed, {}).get(message["author"])
            message["mine"] = mine or {}
            continue
        receipts = dict(sorted(out.get(signed, {}).items()))
        message["delivery"] = receipts
        message["unacknowledged_by"] = not_acknowledged(receipts)
        for name, r in receipts.items():
            if r["state"] != "delivered":
                behind[name] = behind.get(name, 0) + 1
    # What each member had seen when it last wrote: how far behind the channel it was then.
    held = {m["author"]: m["seq"] for m in view["messages"]}
    for member in view["members"]:
        name = member["name"]
        member["link"] = "this terminal" if name == me else links.get(name, "unknown (terminal stopped)")
        member["undelivered"] = behind.get(name, 0)
        last = max((m for m in channel.messages if m.author == name), key=lambda m: m.seq, default=None)
        member["had_seen"] = last.seen if last is not None else {}
        member["last_seq"] = last.seq if last is not None else 0
        member["missing_when_it_last_wrote"] = sum(
            max(0, upto - last.seen.get(a, 0)) for a, upto in held.items() if a != name
        ) if last is not None else None  # fmt: skip
    return view


def channel_summary(document: dict[str, Any]) -> dict[str, Any]:
    """A channel's line in a listing, from its ``channel_document``: how many messages, and how many of
    this terminal's wait for a member's acknowledgement and of the members' for this terminal's."""
    summary = {k: v for k, v in document.items() if k not in ("messages", "history")}
    messages = document["messages"]
    summary["messages"] = len(messages)
    summary["awaiting_their_ack"] = sum(1 for m in messages if m.get("unacknowledged_by"))
    summary["awaiting_our_ack"] = sum(1 for m in messages if "mine" in m and not m["mine"].get("acknowledged_at_ns"))
    return summary


def find_message(channel: Channel, given: str) -> ChannelMessage:
    """A message of the channel by its id (or the start of it) or as ``author#seq``; ``DeskError`` if none
    or several match."""
    if "#" in given:
        author, _, seq = given.partition("#")
        found = [m for m in channel.messages if m.author == author and str(m.seq) == seq]
    else:
        found = [m for m in channel.messages if len(given) >= 8 and m.record.id.startswith(given.lower())]
    if len(found) != 1:
        why = "no message" if not found else "several messages"
        raise DeskError(f"{why} of #{channel.name} matches {given!r}; give its id or author#seq (`hotline channel "
                        f"show {channel.name}`)")  # fmt: skip
    return found[0]
