"""Formatted notifications between two real terminal processes, from the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Terminal, wait_for

pytestmark = pytest.mark.e2e


def iso(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds_from_now))


FORMS: dict[str, dict[str, Any]] = {
    "missile-launch": {"missile": "ICBM", "count": 1, "window_opens": iso(3 * 86400),
                       "window_closes": iso(3 * 86400 + 14400), "launch_area": {"lat": 62.93, "lon": 40.57},
                       "impact_area": {"lat": 62.0, "lon": 165.0}},
    "incident": {"incident": "UNEXPLAINED", "occurred_at": iso(-600), "location": {"lat": 55.75, "lon": 37.61},
                 "risk": "NO_DETONATION_RISK", "measures": ["INVESTIGATION_OPENED"]},
    "exercise": {"exercise": "NAVAL", "starts": iso(5 * 86400), "ends": iso(8 * 86400),
                 "area": {"lat": 69.0, "lon": 33.0}, "forces": {"personnel": 4000, "ships": 12}},
    "violation-report": {"arrangement": "ENERGY_SITE_MORATORIUM", "alleged_at": iso(-7200),
                         "location": {"lat": 47.51, "lon": 34.62}, "target": "SUBSTATION", "means": "DRONE",
                         "evidence": ["photo 1", "radar track 7"]},
    "prisoner-exchange": {"round": 3, "date": iso(86400 * 10), "place": {"lat": 52.1, "lon": 23.7},
                          "released_by_sender": 84, "released_by_receiver": 84},
}  # fmt: skip


def notices(t: Terminal, *args: str) -> dict[str, Any]:
    return t.cli_json("notifications", "--json", *args)  # type: ignore[no-any-return]


def test_every_shipped_form_crosses_is_read_in_russian_and_a_response_links_back(
    paired: tuple[Terminal, Terminal], tmp_path: Path
) -> None:
    a, b = paired
    a.start()
    b.start()
    a.wait_link("moscow")
    sent = {}
    for form, data in FORMS.items():
        path = tmp_path / f"{form}.json"
        path.write_text(json.dumps(data))
        sent[form] = a.cli("notify", form, "--to", "moscow", "--file", str(path)).stdout.strip()
    wait_for(lambda: notices(b)["total"] == len(FORMS), 30, "every form at moscow")
    # Russian labels and codes at the receiver, from a form sent by an English-speaking side.
    shown = b.cli("notification", "show", sent["missile-launch"], "--lang", "ru").stdout
    assert "Уведомление о пуске баллистической ракеты" in shown
    assert "Район пуска" in shown and "МБР" in shown
    as_json = b.cli_json("notification", "show", sent["incident"], "--json", "--lang", "ru")
    assert {"label": "Характер инцидента", "value": "Необъяснённый"} in as_json["fields"]
    english = a.cli_json("notification", "show", sent["incident"], "--json", "--lang", "en")
    assert english["data"] == as_json["data"] == FORMS["incident"]  # the same values, shown in two languages
    assert [f["value"] for f in english["fields"]][1:3] == [f["value"] for f in as_json["fields"]][1:3]  # time, place
    assert english["fields"][0] == {"label": "Kind of incident", "value": "Unexplained"}
    # The response to the violation report, disputed, links up on both sides.
    report = sent["violation-report"]
    answer = b.cli("notify", "violation-response", "--to", "washington", "--answers", report[:13],
                   "--field", "status=DISPUTED", "--field", "remarks=No strike took place").stdout.strip()  # fmt: skip
    wait_for(lambda: any(n["answered_by"] == [answer] for n in notices(a)["notifications"]), 30, "the answer")
    for t in (a, b):
        listing = notices(t)
        by_id = {n["id"]: n for n in listing["notifications"]}
        assert by_id[report]["answered_by"] == [answer]
        assert by_id[answer]["answers"] == report
        assert listing["tallies"]["violation_reports"] == {"answered": 0, "disputed": 1, "open": 0}
    # Acknowledged by a person at the receiver: both sides see it.
    b.cli("notification", "ack", sent["incident"], "--by", "boris")
    wait_for(lambda: {n["id"]: n for n in notices(a)["notifications"]}[sent["incident"]]["status"] == "acknowledged",
             30, "the acknowledgement at washington")  # fmt: skip
    for t in (a, b):
        assert t.cli("journal", "verify").returncode == 0


def test_invalid_forms_are_refused_before_anything_is_journaled_naming_every_field(
    paired: tuple[Terminal, Terminal],
) -> None:
    a, _ = paired
    refused = a.cli("notify", "missile-launch", "--to", "moscow", "--lang", "ru", "--field", "missile=ICBM",
                    "--field", "count=0", "--field", "window_opens=tomorrow", check=False)  # fmt: skip
    assert refused.returncode == 1
    for words in ("Количество ракет", "Начало окна пуска", "Конец окна пуска: обязательное поле", "Район пуска",
                  "Район падения"):  # fmt: skip
        assert words in refused.stderr, refused.stderr
    assert notices(a)["total"] == 0
    template = a.cli_json("notify", "exercise", "--template")
    assert set(template) == {"exercise", "starts", "ends", "area", "forces", "remarks"}


def test_a_late_launch_notification_is_flagged_on_both_sides(paired: tuple[Terminal, Terminal]) -> None:
    a, b = paired
    a.start()
    b.start()
    a.wait_link("moscow")
    nid = a.cli("notify", "missile-launch", "--to", "moscow", "--field", "missile=SLBM", "--field", "count=1",
                "--field", f"window_opens={iso(3600)}", "--field", f"window_closes={iso(7200)}",
                "--field", "launch_area.lat=69.3", "--field", "launch_area.lon=33.4",
                "--field", "impact_area.lat=64.0", "--field", "impact_area.lon=170.0").stdout.strip()  # fmt: skip

    def late_alarms(t: Terminal) -> list[str]:
        return [x["subject"] for x in t.cli_json("alarms", "--json")["alarms"] if x["kind"] == "notification-late"]

    wait_for(lambda: late_alarms(a) == [nid] and late_alarms(b) == [nid], 30, "notification-late on both sides")
    for t in (a, b):
        assert notices(t, "--status", "late")["total"] == 1
    b.cli("notification", "ack", nid)
    wait_for(lambda: not late_alarms(a) and not late_alarms(b), 30, "the late alarm cleared by the acknowledgement")


CUSTOM = {
    "id": "grid-alert", "precedence": "immediate", "handling": 600,
    "schema": {"type": "object", "additionalProperties": False, "required": ["level"],
               "properties": {"level": {"enum": ["GREEN", "AMBER", "RED"]},
                              "region": {"type": "string", "maxLength": 64}}},
}  # fmt: skip


def test_a_custom_form_in_the_home_folder_works_and_a_version_mismatch_is_refused_on_both_sides(
    paired: tuple[Terminal, Terminal],
) -> None:
    a, b = paired
    for t in (a, b):
        folder = t.home / "forms"
        folder.mkdir()
        (folder / "grid-alert.json").write_text(json.dumps(CUSTOM))
        (folder / "grid.ru.po").write_text('msgid "grid-alert.level"\nmsgstr "Уровень"\n\n'
                                           'msgid "code.RED"\nmsgstr "Красный"\n')  # fmt: skip
    # washington's second type differs from moscow's: same id, another version.
    changed = {**CUSTOM, "id": "grid-alert-v2"}
    (a.home / "forms" / "grid-alert-v2.json").write_text(json.dumps(changed))
    (b.home / "forms" / "grid-alert-v2.json").write_text(json.dumps({**changed, "handling": 1200}))
    a.start()
    b.start()
    a.wait_link("moscow")
    ok = a.cli("notify", "grid-alert", "--to", "moscow", "--field", "level=RED").stdout.strip()
    wait_for(lambda: notices(b)["total"] == 1, 30, "the custom form at moscow")
    shown = b.cli_json("notification", "show", ok, "--json", "--lang", "ru")
    assert {"label": "Уровень", "value": "Красный"} in shown["fields"]
    bad = a.cli("notify", "grid-alert-v2", "--to", "moscow", "--field", "level=AMBER").stdout.strip()
    wait_for(lambda: {n["id"]: n for n in notices(a)["notifications"]}[bad]["status"] == "refused", 30,
             "the refusal back at washington")  # fmt: skip
    reason = {n["id"]: n for n in notices(a)["notifications"]}[bad]["refused"]
    assert "different version of form type 'grid-alert-v2'" in reason
    here = notices(b)
    assert [r["id"] for r in here["refused_here"]] == [bad]
    assert "different version" in here["refused_here"][0]["refused"]
    assert bad not in {n["id"] for n in here["notifications"]}
    assert "different version of form type" in b.log()


def test_a_broken_form_in_the_home_folder_stops_the_start_naming_the_file(paired: tuple[Terminal, Terminal]) -> None:
    a, _ = paired
    folder = a.home / "forms"
    folder.mkdir()
    (folder / "broken.json").write_text(json.dumps({"id": "broken", "schema": {
        "type": "object", "additionalProperties": False, "properties": {"x": {"type": "string"}}}}))  # fmt: skip
    for command in (("notify", "--list-types"), ("run",)):
        result = a.cli(*command, check=False)
        assert result.returncode == 1, command
        assert "broken.json: a string field without maxLength" in result.stderr, result.stderr
