"""Formatted notifications over the HTTP API, between two real running terminals.

The form types in the caller's language, a form refused field by field in Russian for a
Russian user (nothing journaled), the roles, 404, and a notification sent at washington,
acknowledged at moscow and answered there, with the tallies on both sides.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from conftest import PASSWORD, Terminal
from test_api_desk import api, seen

pytestmark = pytest.mark.e2e


def iso(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds_from_now))


INCIDENT = {"incident": "UNEXPLAINED", "occurred_at": iso(-600), "location": {"lat": 55.75, "lon": 37.61},
            "risk": "NO_DETONATION_RISK", "measures": ["INVESTIGATION_OPENED"]}  # fmt: skip


def session(t: Terminal, user: str) -> httpx.Client:
    """A console user's session over the API (cookie and CSRF token): it reads in the user's language."""
    r = httpx.post(f"{t.console_url()}/api/session", json={"name": user, "password": PASSWORD}, timeout=30)
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=t.console_url(), cookies=r.cookies, headers={"x-csrf-token": r.json()["csrf"]},
                        timeout=30)  # fmt: skip


def test_notifications_are_sent_refused_field_by_field_acknowledged_and_answered_across_the_api(
    consoles: tuple[Terminal, Terminal],
) -> None:
    washington, moscow = consoles
    with (
        api(washington, "operator") as w,
        api(washington, "auditor") as auditor,
        api(moscow, "supervisor") as m,
        session(moscow, "boris") as boris,
    ):
        # The form types, with their fields, in the caller's language.
        types = {t["id"]: t for t in boris.get("/api/forms").json()["types"]}
        assert types["incident"]["title"].startswith("Уведомление об инциденте")
        kind = next(f for f in types["incident"]["fields"] if f["path"] == "incident")
        assert kind["kind"] == "enum" and ["UNEXPLAINED", "Необъяснённый"] in kind["choices"] and kind["required"]
        place = next(f for f in types["incident"]["fields"] if f["path"] == "location")
        assert place == {"path": "location", "kind": "place", "label": "Место", "help": "", "required": True}
        english = {t["id"]: t for t in auditor.get("/api/forms").json()["types"]}
        assert english["incident"]["sha256"] == types["incident"]["sha256"]
        assert english["violation-response"]["answers"] == "violation-report"
        assert auditor.get("/api/forms", params={"lang": "ru"}).json()["lang"] == "ru"

        # A form its type refuses: 400, each failing field named in the caller's language; nothing journaled.
        bad = {**INCIDENT, "location": {"lat": 95, "lon": 37.61}, "risk": "MAYBE"}
        del bad["occurred_at"]
        r = boris.post("/api/notifications", json={"form": "incident", "to": "washington", "data": bad})
        assert r.status_code == 400, r.text
        errors = {e["path"]: e["text"] for e in r.json()["errors"]}
        assert errors == {"location.lat": "Место, широта: вне допустимого диапазона",
                          "occurred_at": "Время: обязательное поле",
                          "risk": "Опасность ядерного взрыва: недопустимый код"}  # fmt: skip
        r = w.post("/api/notifications", json={"form": "incident", "to": "moscow", "data": bad})
        assert {e["path"]: e["text"] for e in r.json()["errors"]}["occurred_at"] == "Occurred at: required"
        assert boris.get("/api/notifications").json()["total"] == 0
        for body, words in (
            ({"form": "incident", "to": "moscow", "data": INCIDENT, "colour": "red"}, "not colour"),
            ({"form": "launch", "to": "moscow", "data": INCIDENT}, "no form type 'launch'"),
            ({"form": "incident", "to": "beijing", "data": INCIDENT}, "no peer named 'beijing'"),
            ({"form": "incident", "to": "moscow", "data": [1]}, "'data' must be"),
            ({"form": "violation-response", "to": "moscow", "data": {"status": "DISPUTED"}}, "name it in 'answers'"),
        ):
            r = w.post("/api/notifications", json=body)
            assert r.status_code == 400 and words in r.json()["error"], (body, r.text)
        assert auditor.post("/api/notifications", json={"form": "incident", "to": "moscow", "data": INCIDENT}
                            ).status_code == 403  # fmt: skip

        # Sent by washington's operator; moscow holds it and reads it in Russian.
        r = w.post("/api/notifications", json={"form": "incident", "to": "moscow", "data": INCIDENT})
        assert r.status_code == 201, r.text
        sent = r.json()
        nid = sent["id"]
        assert sent["status"] == "open" and sent["ours_to_ack"] is False and sent["record"]["type"] == "notification"
        assert {"label": "Kind of incident", "value": "Unexplained"} in sent["fields"]
        there = seen(boris, f"/api/notifications/{nid}")
        assert {"label": "Характер инцидента", "value": "Необъяснённый"} in there["fields"]
        assert there["ours_to_ack"] is True and there["data"] == INCIDENT and there["sent_at"].endswith("Z")

        nobody = str(uuid.uuid4())
        assert w.get(f"/api/notifications/{nobody}").status_code == 404
        assert w.post(f"/api/notifications/{nobody}/ack").status_code == 404
        own = w.post(f"/api/notifications/{nid}/ack")
        assert own.status_code == 409, own.text  # only the receiving side acknowledges
        assert auditor.post(f"/api/notifications/{nid}/ack").status_code == 403

        # moscow's user acknowledges (the start of an id will do); washington sees who, and when.
        acked = boris.post(f"/api/notifications/{nid[:13]}/ack")
        assert acked.status_code == 200 and acked.json()["status"] == "acknowledged", acked.text
        assert boris.post(f"/api/notifications/{nid}/ack").status_code == 409
        back = seen(w, f"/api/notifications/{nid}", lambda v: v["status"] == "acknowledged")
        assert back["acknowledged_by"] == "boris" and back["acknowledged_at"].endswith("Z")

        # A violation report, answered from moscow: linked both ways, counted as disputed.
        report = w.post("/api/notifications", json={"form": "violation-report", "to": "moscow", "data": {
            "arrangement": "ENERGY_SITE_MORATORIUM", "alleged_at": iso(-7200), "location": {"lat": 47.51, "lon": 34.62},
            "target": "SUBSTATION", "means": "DRONE"}}).json()["id"]  # fmt: skip
        seen(m, f"/api/notifications/{report}")
        page = boris.get(f"/notifications/{report}")  # the console offers the response form that answers it
        assert page.status_code == 200 and 'id="respond-violation-response"' in page.text
        form = boris.get(
            "/notifications/new", params={"form": "violation-response", "answers": report, "to": "washington"}
        )
        assert f'name="answers" value="{report}"' in form.text and "Оспаривается" in form.text
        answer = m.post("/api/notifications", json={"form": "violation-response", "to": "washington",
                                                    "answers": report[:13],
                                                    "data": {"status": "DISPUTED"}})  # fmt: skip
        assert answer.status_code == 201, answer.text
        assert answer.json()["answers"] == report
        linked = seen(w, f"/api/notifications/{report}", lambda v: v["answered_by"] == [answer.json()["id"]])
        assert linked["answered_by_view"][0]["form"] == "violation-response"
        assert f'href="/notifications/{answer.json()["id"]}"' in boris.get(f"/notifications/{report}").text
        assert [r["id"] for r in m.get(f"/api/notifications/{report}").json()["responses"]] == ["violation-response"]
        listing = seen(auditor, "/api/notifications", lambda v: v["total"] == 3)
        assert [n["form"] for n in listing["notifications"]] == ["violation-response", "violation-report", "incident"]
        assert listing["tallies"]["violation_reports"] == {"answered": 0, "disputed": 1, "open": 0}
        month = listing["notifications"][0]["sent_at"][:7]
        assert listing["tallies"]["per_type_and_month"]["incident"] == {month: 1}
        only = auditor.get("/api/notifications", params={"type": "incident"}).json()
        assert [n["id"] for n in only["notifications"]] == [nid]
        assert auditor.get("/api/notifications", params={"from": "2099-01-01"}).json()["total"] == 0
        assert auditor.get("/api/notifications", params={"to": "2000-01-01"}).json()["total"] == 0
        assert auditor.get("/api/notifications", params={"from": "yesterday"}).status_code == 400
