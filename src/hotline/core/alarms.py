"""Alarms: conditions a person must see, raised once and cleared once. Sans-IO.

An alarm is identified by its kind and subject (peer, path, message). Raising
one that is already active does nothing, so a path that stays down raises one
alarm, not one per heartbeat; clearing one that is not active does nothing.
The engine journals every transition and hands it to the operator's command.

Kinds:
    path-down          one path to a peer has no live, authenticated connection
    all-paths-down     no path to a peer is up: the line is dead
    test-failed        a test message on a path was not answered by its deadline
    peer-key-changed   a peer presented an identity key other than the pinned one
    ack-overdue        a message was not acknowledged by a person within its
                       precedence's handling time (flash 10 min, immediate 30 min,
                       priority 3 h, routine 6 h)
    journal-altered    this terminal's own journal failed its integrity check (the
                       subject names the entry); it appends nothing until a supervisor
                       accepts the damage (`hotline journal accept-damage`)
    peer-record-in-doubt  the peer says its journal failed its check: its record of
                       this link is in doubt until it says otherwise
    relay-refused      a member reports that a frame this terminal relayed to it (peer) for
                       another member (the subject) failed its signature check there: altered
                       here, or sent bad; cleared after ten minutes without another report
    login-flood        console logins for a user, from an address, or both, are being
                       throttled after repeated failures (peer is "", the subject
                       names them: alice@127.0.0.1, alice@*, *@127.0.0.1)
    call-unanswered    a call request's answer-by time passed with no answer (raised on
                       both sides; the subject is the call's id)
    commitment-due-soon  an agreed commitment falls due within a day
    commitment-overdue an agreed commitment's due time passed and it is not fulfilled,
                       lapsed or withdrawn (both sides)
    notification-unacknowledged  a formatted notification was not acknowledged within
                       its form type's handling time (both sides)
    notification-late  a notification was sent later than its form's lead time allows
                       (a launch notified less than 24 h ahead), until acknowledged
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = (
    "path-down",
    "all-paths-down",
    "test-failed",
    "peer-key-changed",
    "ack-overdue",
    "journal-altered",
    "peer-record-in-doubt",
    "login-flood",
    "restored-messages-lost",
    "relay-refused",
    "call-unanswered",
    "commitment-due-soon",
    "commitment-overdue",
    "notification-unacknowledged",
    "notification-late",
)
DESK_KINDS = frozenset(KINDS[KINDS.index("call-unanswered") :])


@dataclass(frozen=True, slots=True)
class Alarm:
    kind: str
    peer: str
    subject: str  # path name, message id, or "" for the peer as a whole
    detail: str
    raised_ns: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.peer, self.subject)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": "/".join(x for x in self.key if x),
            "kind": self.kind,
            "peer": self.peer,
            "subject": self.subject,
            "detail": self.detail,
            "raised_ns": self.raised_ns,
        }


@dataclass(frozen=True, slots=True)
class AlarmChange:
    alarm: Alarm
    raised: bool  # True: raised now; False: cleared now
    at_ns: int
    reason: str = ""


@dataclass
class AlarmBoard:
    active: dict[tuple[str, str, str], Alarm] = field(default_factory=dict)

    def raise_(self, kind: str, peer: str, subject: str, detail: str, now_ns: int) -> AlarmChange | None:
        if kind not in KINDS:
            raise ValueError(f"unknown alarm kind {kind!r}")
        key = (kind, peer, subject)
        if key in self.active:
            return None
        alarm = Alarm(kind, peer, subject, detail, now_ns)
        self.active[key] = alarm
        return AlarmChange(alarm, True, now_ns)

    def clear(self, kind: str, peer: str, subject: str, now_ns: int, reason: str = "") -> AlarmChange | None:
        alarm = self.active.pop((kind, peer, subject), None)
        return None if alarm is None else AlarmChange(alarm, False, now_ns, reason)

    def is_active(self, kind: str, peer: str, subject: str = "") -> bool:
        return (kind, peer, subject) in self.active

    def listing(self) -> list[dict[str, object]]:
        return [a.as_dict() for a in sorted(self.active.values(), key=lambda a: a.raised_ns)]
