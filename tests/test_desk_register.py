"""The desk's register (issue 9, "Contract and limits"): both sides act on a call or a commitment,
at once or in turn, and their records reach the other side in any order.

Two registers, washington's and moscow's, each act from its own view (``make_record``, with its
own check) before seeing what the other did; the records then cross in whatever order hypothesis
picks. Once both hold the same records:

1. *convergence* — both show the same call or commitment, field by field;
2. *legality* — every record that applied is a move the diagram in ``desk.register`` allows, and
   every void one is not (checked against a transition table written out here independently);
3. an act this side's check refuses is exactly one that would be void if applied;
4. a peer's replay, a record of an unknown thread, or one ordered before its thread's proposal,
   never enters the register.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.core.errors import DeskError
from hotline.crypto.identity import Identity
from hotline.desk.acts import make_record
from hotline.desk.records import DeskRecord, RecordType, sign_record
from hotline.desk.register import Register, call_view, commitment_view
from hotline.testing.waiting import seeded

T0 = 1_742_256_000_000_000_000  # 2025-03-18T00:00:00Z: the fake clock starts here
SECOND = 1_000_000_000


# Keys are made once for the module.
IDENTITIES = {name: Identity.generate(name, randbytes=seeded(name.encode())) for name in ("washington", "moscow")}
OTHER = {"washington": "moscow", "moscow": "washington"}


class _Unchecked(Register):
    """A register that lets any act through: to build the record a refused act would have made."""

    def check(self, record: DeskRecord) -> None:
        pass


@dataclass
class Side:
    """One terminal's desk: the records it holds, and what is on its way to it from the peer."""

    name: str
    held: list[DeskRecord] = field(default_factory=list)
    inbox: list[DeskRecord] = field(default_factory=list)
    randbytes: Callable[[int], bytes] = field(default=lambda n: b"\x00" * n)

    def register(self) -> Register:
        return Register(self.name, self.held)


@dataclass
class World:
    sides: dict[str, Side]
    clock: int = T0
    refused: int = 0
    applied_own: int = 0

    def tick(self) -> int:
        self.clock += SECOND
        return self.clock

    def act(self, who: str, act: dict[str, Any]) -> DeskRecord | None:
        """``who`` acts from its own view; property 3 is checked on every act, taken or refused."""
        side = self.sides[who]
        now = self.tick()
        identity = IDENTITIES[who]
        try:
            record = make_record(side.register(), identity, act, now, side.randbytes, [OTHER[who]])
        except DeskError:
            record = None
        # What the act would have been without the check, and whether it would be void if applied.
        trial = make_record(_Unchecked(who, side.held), identity, act, now, side.randbytes, [OTHER[who]])
        void = void_of(Register(who, [*side.held, trial]), trial)
        assert (record is None) == bool(void), f"check and fold disagree on {act}: {void!r}"
        if record is None:
            self.refused += 1
            return None
        side.held.append(record)
        if record.shared:
            self.sides[OTHER[who]].inbox.append(record)
        return record

    def deliver(self, to: str, index: int) -> None:
        """Hand one record in flight to ``to``, as the engine does: admissible, then added."""
        side = self.sides[to]
        register = side.register()
        # Any order, except that a thread's proposal comes before its answers (they travel in one
        # stream at one precedence, so they cannot overtake it).
        ready = [r for r in side.inbox if r.type.starts_thread or r.thread in {h.thread for h in side.held}]
        record = ready[index % len(ready)]
        side.inbox.remove(record)
        assert register.admissible(record) == ""
        side.held.append(record)
        assert "replay" in side.register().admissible(record)

    def deliver_all(self, choose: Callable[[int], int]) -> None:
        for to in ("washington", "moscow"):
            while self.sides[to].inbox:
                self.deliver(to, choose(len(self.sides[to].inbox)))


def void_of(register: Register, record: DeskRecord) -> str:
    thread = record.thread
    kind = register.thread_kind(thread)
    steps = register.call(thread).steps if kind is RecordType.CALL_PROPOSE else register.commitment(thread).steps
    return next(s.void for s in steps if s.record.id == record.id)


def new_world() -> World:
    return World({n: Side(n, randbytes=seeded(b"ids-" + n.encode())) for n in ("washington", "moscow")})


def shared_view(view: dict[str, Any]) -> dict[str, Any]:
    """What both sides must hold alike: everything but the notes and the readouts kept by their author."""
    out = {k: v for k, v in view.items() if k != "notes"}
    kept = {r["id"] for r in view.get("readouts", []) if not r["shared"]}
    out["history"] = [s for s in view["history"] if s["type"] != "call.note" and s["id"] not in kept]
    if "readouts" in view:
        out["readouts"] = [r for r in view["readouts"] if r["shared"]]
    return out


# -- the diagram, written out again to check the fold against -------------------------------------

ANSWERS = (RecordType.CALL_ACCEPT, RecordType.CALL_DECLINE, RecordType.CALL_COUNTER)


def call_legal(steps: list[dict[str, Any]], proposer: str, responder: str) -> None:
    """Replay a call's history against the diagram: each applied step allowed, each void one not."""
    state, turn = "proposed", responder
    accepts = 0
    for step in steps[1:]:
        rtype, who, void = RecordType(step["type"]), step["author"], step["void"]
        new: str | None = None  # the state the diagram moves to; None: not allowed
        if rtype in (RecordType.CALL_NOTE, RecordType.READOUT):
            new = state
        elif rtype in ANSWERS and state in ("proposed", "countered") and who == turn:
            new = {RecordType.CALL_ACCEPT: "accepted", RecordType.CALL_DECLINE: "declined",
                   RecordType.CALL_COUNTER: "countered"}[rtype]  # fmt: skip
        elif rtype is RecordType.CALL_WITHDRAW and (
            (state in ("proposed", "countered") and who != turn) or state == "accepted"
        ):
            new = "withdrawn"
        elif rtype is RecordType.CALL_START and state == "accepted":
            new = "live"
        elif rtype is RecordType.CALL_END and state == "live":
            new = "ended"
        assert (new is not None) == (void == ""), f"{rtype} by {who} in {state}: void={void!r}"
        if new is None:
            continue
        if rtype is RecordType.CALL_COUNTER:
            turn = proposer if who == responder else responder
        if rtype is RecordType.CALL_ACCEPT:
            accepts += 1
        assert not (state in ("accepted", "live", "ended") and new in ("declined", "countered", "proposed"))
        state = new
    assert accepts <= 1


def commitment_legal(view: dict[str, Any], digest: str) -> None:
    state = "proposed"
    proposer, other = view["proposer"], view["other"]
    done: set[int] = set()
    agreed_by = ""
    for step in view["history"][1:]:
        rtype, who, void, f = RecordType(step["type"]), step["author"], step["void"], step["fields"]
        new: str | None = None
        if rtype is RecordType.COMMITMENT_AGREE and state == "proposed" and who == other and f["text_hash"] == digest:
            new, agreed_by = "agreed", who
        elif rtype is RecordType.COMMITMENT_DECLINE and state == "proposed" and who == other:
            new = "declined"
        elif rtype is RecordType.COMMITMENT_STATUS and (
            (state == "proposed" and who == proposer and f["status"] == "withdrawn") or state == "agreed"
        ):
            new = f["status"]
        elif (
            rtype is RecordType.COMMITMENT_ROUND and state == "agreed" and 1 <= f["round"] <= (view["rounds"] or 1000)
            and f["round"] not in done
        ):  # fmt: skip
            new = "agreed"
            done.add(f["round"])
        assert (new is not None) == (void == ""), f"{rtype} by {who} in {state}: void={void!r}"
        if new is not None:
            state = new
    assert view["state"] in (state, "overdue")
    # "agreed" only if the *other* side's agree over the right text applied.
    assert (view["agreed_by"] != "") == (agreed_by != "")
    if agreed_by:
        assert agreed_by == other and view["agreed_by"] == other
    assert {r["round"] for r in view["rounds_done"]} == done


# -- acts hypothesis draws -------------------------------------------------------------------------

CALL_ACTS: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
    [
        {"act": "call.accept"},
        {"act": "call.accept", "at": T0 + 3600 * SECOND},
        {"act": "call.decline", "reason": "not now"},
        {"act": "call.counter", "at": T0 + 7200 * SECOND, "reason": "later"},
        {"act": "call.withdraw", "reason": "overtaken"},
        {"act": "call.start"},
        {"act": "call.end"},
        {"act": "call.note", "text": "a note kept here"},
        {"act": "readout.add", "lang": "en", "text": "readout", "shared": True, "disclosure": "public"},
        {"act": "readout.add", "lang": "ru", "text": "для себя", "shared": False},
    ]
)
COMMITMENT_ACTS: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
    [
        {"act": "commitment.agree"},
        {"act": "commitment.decline", "reason": "no"},
        {"act": "commitment.status", "status": "withdrawn", "reason": "overtaken"},
        {"act": "commitment.status", "status": "fulfilled", "reason": "done"},
        {"act": "commitment.status", "status": "lapsed", "reason": "missed"},
        {"act": "commitment.round", "round": 1},
        {"act": "commitment.round", "round": 2},
        {"act": "commitment.round", "round": 3},
        {"act": "commitment.round", "round": 4},
    ]
)
SIDES = st.sampled_from(["washington", "moscow"])


def step_strategy(acts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[tuple[str, str, Any]]:
    """An act by one side, or one record in flight handed to one side (any of those waiting)."""
    return st.one_of(
        st.tuples(st.just("act"), SIDES, acts),
        st.tuples(st.just("deliver"), SIDES, st.integers(0, 50)),
    )


def play(world: World, thread: str, steps: list[tuple[str, str, Any]], choose: Callable[[int], int]) -> None:
    for kind, who, arg in steps:
        if kind == "act":
            if any(r.thread == thread for r in world.sides[who].held):  # a side acts on what it has seen
                world.act(who, {**arg, "id": thread})
        elif world.sides[who].inbox:
            world.deliver(who, arg)
    world.deliver_all(choose)


def converged(world: World, view: Callable[[Register], dict[str, Any]]) -> dict[str, Any]:
    w, m = world.sides["washington"], world.sides["moscow"]
    assert {r.id for r in w.held if r.shared} == {r.id for r in m.held if r.shared}
    vw, vm = shared_view(view(w.register())), shared_view(view(m.register()))
    assert vw == vm
    return vw


@settings(max_examples=250)
@given(proposer=SIDES, steps=st.lists(step_strategy(CALL_ACTS), max_size=14), data=st.data())
def test_a_call_converges_and_moves_only_as_the_diagram_allows(
    proposer: str, steps: list[tuple[str, str, Any]], data: st.DataObject
) -> None:
    world = new_world()
    first = world.act(proposer, {"act": "call.propose", "to": OTHER[proposer], "subject": "Energy sites",
                                 "answer_by": T0 + 30 * SECOND})  # fmt: skip
    assert first is not None
    play(world, first.id, steps, lambda n: data.draw(st.integers(0, n - 1)))
    view = converged(world, lambda r: call_view(r.call(first.id), world.clock))
    call_legal(view["history"], proposer, OTHER[proposer])


@settings(max_examples=250)
@given(proposer=SIDES, rounds=st.integers(0, 3), steps=st.lists(step_strategy(COMMITMENT_ACTS), max_size=12),
       data=st.data())  # fmt: skip
def test_a_commitment_converges_and_is_agreed_only_by_the_other_sides_countersignature(
    proposer: str, rounds: int, steps: list[tuple[str, str, Any]], data: st.DataObject
) -> None:
    world = new_world()
    first = world.act(proposer, {"act": "commitment.propose", "to": OTHER[proposer], "title": "Prisoner exchange",
                                 "kind": "exchange", "rounds": rounds, "due": T0 + 90 * 86400 * SECOND})  # fmt: skip
    assert first is not None
    play(world, first.id, steps, lambda n: data.draw(st.integers(0, n - 1)))
    view = converged(world, lambda r: commitment_view(r.commitment(first.id), world.clock))
    commitment_legal(view, first.digest.hex())


# -- the named crossings --------------------------------------------------------------------------


def raw(world: World, who: str, rtype: RecordType, thread: str, fields: dict[str, Any]) -> DeskRecord:
    """A record sent without its author's check (a stale or faulty terminal): what the fold must withstand."""
    side = world.sides[who]
    register = side.register()
    tail = f"{len(side.held) + 1:06d}{'aa' if who == 'moscow' else 'bb'}{world.tick() % 10**4:04d}"
    record = DeskRecord(
        id=f"0195a9b0-0000-7000-8000-{tail}",
        type=rtype, thread=thread, author=who, peer=OTHER[who], lamport=register.next_lamport(thread),
        at_ns=world.clock, fields=fields,
    )  # fmt: skip
    record = sign_record(IDENTITIES[who], record)
    side.held.append(record)
    world.sides[OTHER[who]].inbox.append(record)
    return record


def cross(world: World, first_to_washington: bool) -> None:
    world.deliver_all(lambda n: 0 if first_to_washington else n - 1)


def propose_call(world: World, proposer: str = "washington") -> str:
    record = world.act(proposer, {"act": "call.propose", "to": OTHER[proposer], "subject": "Energy sites"})
    assert record is not None
    world.deliver_all(lambda n: 0)
    return record.id


@pytest.mark.parametrize("order", [True, False])
def test_both_accepting_at_once_one_accept_stands_on_both_sides(order: bool) -> None:
    world = new_world()
    call = propose_call(world)
    accepted = world.act("moscow", {"act": "call.accept", "id": call})
    # washington's own terminal refuses to accept its own request...
    with pytest.raises(DeskError, match="moscow's turn"):
        make_record(world.sides["washington"].register(), IDENTITIES["washington"],
                    {"act": "call.accept", "id": call}, world.tick(), seeded(b"x"), ["moscow"])  # fmt: skip
    # ...and if a faulty one sends it anyway, at the same Lamport number, it is void on both sides.
    stray = raw(world, "washington", RecordType.CALL_ACCEPT, call, {"at": 0})
    assert accepted is not None and accepted.lamport == stray.lamport
    cross(world, order)
    view = converged(world, lambda r: call_view(r.call(call), world.clock))
    assert view["state"] == "accepted"
    assert [(s["author"], s["void"] != "") for s in view["history"][1:]] == [("moscow", False), ("washington", True)]
    call_legal(view["history"], "washington", "moscow")


@pytest.mark.parametrize("proposer", ["washington", "moscow"])
def test_one_accepting_while_the_other_withdraws(proposer: str) -> None:
    world = new_world()
    call = propose_call(world, proposer)
    responder = OTHER[proposer]
    assert world.act(responder, {"act": "call.accept", "id": call}) is not None
    assert world.act(proposer, {"act": "call.withdraw", "id": call, "reason": "overtaken"}) is not None
    cross(world, True)
    view = converged(world, lambda r: call_view(r.call(call), world.clock))
    # Same Lamport number: the order is the authors' names. "moscow" < "washington".
    if responder == "moscow":  # the accept comes first, then the withdrawal of an accepted call
        assert view["state"] == "withdrawn" and [s["void"] for s in view["history"]] == ["", "", ""]
    else:  # the withdrawal comes first; the accept arrived too late and is void
        assert view["state"] == "withdrawn" and view["history"][2]["void"]
        assert view["history"][2]["type"] == "call.accept"
    call_legal(view["history"], proposer, responder)


def test_a_counter_crossing_an_accept_never_undoes_the_accept() -> None:
    world = new_world()
    call = propose_call(world)
    # moscow counters, then (its turn again after washington counters back) accepts; washington,
    # stale, counters again without having seen the accept (its own check would refuse that now).
    assert world.act("moscow", {"act": "call.counter", "id": call, "at": T0 + 7200 * SECOND}) is not None
    world.deliver_all(lambda n: 0)
    assert world.act("washington", {"act": "call.counter", "id": call, "at": T0 + 9000 * SECOND}) is not None
    world.deliver_all(lambda n: 0)
    accepted = world.act("moscow", {"act": "call.accept", "id": call})
    stale = raw(world, "washington", RecordType.CALL_COUNTER, call, {"at": T0 + 10800 * SECOND, "reason": "x"})
    assert accepted is not None and accepted.lamport == stale.lamport
    cross(world, False)
    view = converged(world, lambda r: call_view(r.call(call), world.clock))
    assert view["state"] == "accepted" and view["at_ns"] == T0 + 9000 * SECOND
    assert view["history"][-1]["type"] == "call.counter" and "already accepted" in view["history"][-1]["void"]
    call_legal(view["history"], "washington", "moscow")


@pytest.mark.parametrize("proposer", ["washington", "moscow"])
def test_an_agree_crossing_a_withdrawal(proposer: str) -> None:
    world = new_world()
    item = world.act(proposer, {"act": "commitment.propose", "to": OTHER[proposer], "title": "Budapest summit",
                                "kind": "summit"})  # fmt: skip
    assert item is not None
    world.deliver_all(lambda n: 0)
    assert world.act(OTHER[proposer], {"act": "commitment.agree", "id": item.id}) is not None
    assert world.act(proposer, {"act": "commitment.status", "id": item.id, "status": "withdrawn",
                                "reason": "overtaken"}) is not None  # fmt: skip
    cross(world, True)
    view = converged(world, lambda r: commitment_view(r.commitment(item.id), world.clock))
    assert view["state"] == "withdrawn"
    if OTHER[proposer] == "moscow":  # moscow's agree is first: agreed, then withdrawn
        assert view["agreed_by"] == "moscow"
    else:  # moscow's withdrawal is first: washington's agree is void
        assert view["agreed_by"] == "" and "already withdrawn" in view["history"][-1]["void"]
    commitment_legal(view, item.digest.hex())


def test_an_agree_over_another_text_is_void() -> None:
    world = new_world()
    item = world.act("washington", {"act": "commitment.propose", "to": "moscow", "title": "Moratorium"})
    assert item is not None
    world.deliver_all(lambda n: 0)
    raw(world, "moscow", RecordType.COMMITMENT_AGREE, item.id, {"text_hash": b"\x01" * 32})
    cross(world, True)
    view = converged(world, lambda r: commitment_view(r.commitment(item.id), world.clock))
    assert view["state"] == "proposed" and "different text" in view["history"][-1]["void"]
    commitment_legal(view, item.digest.hex())


# -- what never enters the register ---------------------------------------------------------------


def test_admissible_refuses_replays_unknown_threads_and_second_proposals() -> None:
    world = new_world()
    call = propose_call(world)
    accept = world.act("moscow", {"act": "call.accept", "id": call})
    assert accept is not None
    at_washington = world.sides["washington"].register()
    assert at_washington.admissible(accept) == ""
    at_washington.add(accept)
    assert "replay" in at_washington.admissible(accept)
    proposal = at_washington.first(call)
    assert "replay" in at_washington.admissible(proposal)
    # A record of a thread washington never heard of.
    elsewhere = Register("moscow")
    other = make_record(elsewhere, IDENTITIES["moscow"], {"act": "call.propose", "to": "washington", "subject": "x"},
                        world.tick(), seeded(b"o"), ["washington"])  # fmt: skip
    elsewhere.add(other)
    start = make_record(elsewhere, IDENTITIES["moscow"], {"act": "call.withdraw", "id": other.id}, world.tick(),
                        seeded(b"p"), ["washington"])  # fmt: skip
    assert "does not hold" in at_washington.admissible(start)
    # check() refuses the same for this side's own acts.
    with pytest.raises(DeskError, match="replay"):
        at_washington.check(accept)


def test_a_record_ordered_before_its_threads_proposal_is_refused() -> None:
    """A faulty peer's record with a Lamport number not above the proposal's would sort first and
    turn the thread into something that is neither a call nor a commitment: it never enters."""
    world = new_world()
    call = propose_call(world)
    early = DeskRecord(id="0195a9b0-0000-7000-8000-0000000000e1", type=RecordType.CALL_ACCEPT, thread=call,
                       author="moscow", peer="washington", lamport=1, at_ns=world.tick(), fields={"at": 0})  # fmt: skip
    early = sign_record(IDENTITIES["moscow"], early)
    register = world.sides["washington"].register()
    assert "before" in register.admissible(early)
    assert [c.id for c in register.calls()] == [call]


def test_a_peers_proposal_with_a_recurrence_that_does_not_parse_is_refused() -> None:
    """The peer's terminal checks its own ``--every``; a faulty one's must not break every listing here."""
    proposal = DeskRecord(
        id="0195a9b0-0000-7000-8000-0000000000f1", type=RecordType.CALL_PROPOSE,
        thread="0195a9b0-0000-7000-8000-0000000000f1", author="moscow", peer="washington", lamport=1, at_ns=T0,
        fields={"subject": "weekly", "agenda": "", "at": T0, "duration_s": 0, "answer_by": 0,
                "precedence": "routine", "disclosure": "secret", "every": "FREQ=SOMETIMES"},
    )  # fmt: skip
    proposal = sign_record(IDENTITIES["moscow"], proposal)
    register = Register("washington")
    assert "recurrence" in register.admissible(proposal)
