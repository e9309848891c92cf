"""Path selection and alarms, deterministic, with a fake clock."""

from __future__ import annotations

from hotline.core.alarms import AlarmBoard
from hotline.core.paths import PathSelector, Switch


def test_first_path_up_is_used_at_once_and_failover_is_immediate() -> None:
    sel = PathSelector(["primary", "backup"], hold_down=5.0)
    assert sel.mark_up("backup", now=0.0) == Switch(None, "backup", "first")
    assert sel.mark_up("primary", now=0.1) is None  # no failback before the hold-down
    assert sel.evaluate(now=5.0) is None
    assert sel.evaluate(now=5.1) == Switch("backup", "primary", "failback")
    assert sel.mark_down("primary", now=6.0) == Switch("primary", "backup", "failover")
    assert sel.mark_down("backup", now=6.5) == Switch("backup", None, "lost")
    assert sel.mark_up("backup", now=7.0) == Switch(None, "backup", "first")


def test_a_flapping_preferred_path_does_not_pull_traffic_back() -> None:
    sel = PathSelector(["primary", "backup"], hold_down=5.0)
    sel.mark_up("primary", 0.0)
    sel.mark_up("backup", 0.0)
    assert sel.active == "primary"
    sel.mark_down("primary", 1.0)
    assert sel.active == "backup"
    for t in range(2, 20, 2):  # up for 1 s, down for 1 s, over and over
        sel.mark_up("primary", float(t))
        assert sel.evaluate(t + 0.9) is None
        sel.mark_down("primary", t + 1.0)
    assert sel.active == "backup"
    sel.mark_up("primary", 30.0)
    assert sel.next_deadline(31.0) == 35.0
    assert sel.evaluate(35.0) == Switch("backup", "primary", "failback")


def test_a_less_preferred_path_never_takes_over_a_healthy_one() -> None:
    sel = PathSelector(["primary", "backup", "satellite"], hold_down=0.0)
    sel.mark_up("primary", 0.0)
    for name in ("backup", "satellite"):
        assert sel.mark_up(name, 1.0) is None
    assert sel.mark_down("primary", 2.0) == Switch("primary", "backup", "failover")


def test_unknown_paths_are_ranked_after_known_ones() -> None:
    sel = PathSelector(["primary"], hold_down=0.0)
    assert sel.mark_up("extra", 0.0) == Switch(None, "extra", "first")
    assert sel.mark_up("primary", 0.0) == Switch("extra", "primary", "failback")


def test_rtt_median_over_the_last_minute() -> None:
    sel = PathSelector(["primary"], hold_down=0.0)
    health = sel.paths["primary"]
    health.add_rtt(0.0, 0.050)
    for i in range(5):
        health.add_rtt(100.0 + i, 0.001 * (i + 1))
    assert health.rtt_last() == 0.005
    assert health.rtt_p50(110.0) == 0.003  # the old 50 ms sample has aged out


def test_an_alarm_is_raised_once_and_cleared_once() -> None:
    board = AlarmBoard()
    first = board.raise_("path-down", "moscow", "backup", "cut", 1)
    assert first is not None and first.raised
    assert board.raise_("path-down", "moscow", "backup", "still cut", 2) is None
    assert [a["id"] for a in board.listing()] == ["path-down/moscow/backup"]
    cleared = board.clear("path-down", "moscow", "backup", 3, "up again")
    assert cleared is not None and not cleared.raised
    assert board.clear("path-down", "moscow", "backup", 4) is None
    assert board.listing() == []
