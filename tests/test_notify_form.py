"""The console's generated form (``web.notifyconsole``): inputs to form data, and errors to their fields."""

from __future__ import annotations

from starlette.datastructures import FormData

from hotline.home.forms import load_forms
from hotline.web.notifyconsole import errors_by_field, form_data


def test_inputs_become_the_form_and_each_error_lands_beside_its_field() -> None:
    exercise = load_forms(None).get("exercise")
    fields = exercise.fields("ru")
    given = FormData([("f:exercise", "NAVAL"), ("f:starts", "2030-05-01T06:00"), ("f:ends", "soon"),
                      ("f:area.lat", "100"), ("f:area.lon", "33"), ("f:area.area", ""), ("f:remarks", "")])  # fmt: skip
    data, typed = form_data(fields, given)
    assert data == {"exercise": "NAVAL", "starts": "2030-05-01T06:00:00Z", "ends": "soon",
                    "area": {"lat": 100, "lon": 33}}  # fmt: skip
    assert typed["f:area.lat"] == "100" and typed["f:ends"] == "soon" and typed["f:remarks"] == ""
    beside, rest = errors_by_field(fields, exercise.validate(data, "ru"))
    assert rest == []
    assert beside["area"] == ["Район, широта: вне допустимого диапазона"]
    assert beside["ends"][0].startswith("Окончание: время по RFC 3339")
    # The group of forces was left out whole: its error stands beside its first field.
    assert list(beside) == ["area", "ends", "forces.personnel"]
