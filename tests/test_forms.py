"""Form types (issue 10): definitions checked on load, forms checked against their schemas, rendered in
each reader's language from the codes. Valid and invalid forms are generated from each shipped schema
(our own strategies: hypothesis-jsonschema does not run with this hypothesis)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.core.errors import ConfigError, DeskError
from hotline.crypto.identity import Identity
from hotline.desk import acts
from hotline.desk.forms import FormType
from hotline.desk.forms import _place as place
from hotline.desk.records import open_record
from hotline.desk.register import Register
from hotline.home.forms import load_forms

FORMS = load_forms(None)
T0 = 1_760_000_000 * 1_000_000_000


def values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Valid values for the subset of JSON Schema the shipped forms use."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema["properties"]
        if set(props) >= {"lat", "lon"}:
            return st.one_of(
                st.fixed_dictionaries({"lat": st.floats(-90, 90), "lon": st.floats(-180, 180)}),
                st.fixed_dictionaries({"area": st.from_regex(r"\A[A-Z0-9][A-Z0-9_-]{0,31}\Z")}),
            )
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: values(v) for k, v in props.items() if k in required},
            optional={k: values(v) for k, v in props.items() if k not in required},
        )
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if kind == "number":
        return st.floats(schema.get("minimum", -1e9), schema.get("maximum", 1e9), allow_nan=False)
    if kind == "array":
        return st.lists(values(schema["items"]), max_size=schema["maxItems"])
    if schema.get("format") == "date-time":
        return st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2090, 1, 1)).map(
            lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
    return st.text(max_size=schema["maxLength"])


@pytest.fixture(scope="module")
def sides() -> tuple[Identity, Identity]:
    return Identity.generate("washington"), Identity.generate("moscow")


@settings(max_examples=30, deadline=None)
@pytest.mark.parametrize("form_id", sorted(t for t in FORMS.types if not FORMS.types[t].answers))
@given(data=st.data())
def test_a_valid_form_goes_through_signed_and_checked_again_at_the_receiver_in_either_language(
    form_id: str, data: st.DataObject, sides: tuple[Identity, Identity]
) -> None:
    form = FORMS.get(form_id)
    filled = data.draw(values(form.schema))
    assert form.validate(filled) == []
    washington, _ = sides
    record = acts.make_record(Register("washington"), washington, {"act": "notify", "to": "moscow", "form": form_id,
                              "data": filled}, T0, lambda n: b"\x01" * n, ["moscow"], FORMS)  # fmt: skip
    received = open_record(record.signed, washington.public_key)  # the receiver: signature, then fields
    assert received.fields["data"] == filled and received.fields["form_hash"] == form.digest
    assert FORMS.get(received.fields["form"]).validate(received.fields["data"], "ru") == []
    english, russian = form.render(filled, "en"), form.render(filled, "ru")
    assert len(english) == len(russian)
    for (_, en_value), (_, ru_value), path_value in zip(english, russian, _leaves(form, filled), strict=True):
        if path_value is None:  # a code: named in each language, never the same words unless they coincide
            continue
        assert en_value == ru_value == path_value


def _leaves(form: FormType, data: dict[str, Any]) -> list[str | None]:
    """What each rendered line must show whatever the language: None for a code (translated)."""
    shown: list[str | None] = []

    def walk(schema: dict[str, Any], value: Any) -> None:
        props = schema.get("properties", {})
        if isinstance(value, dict) and set(props) >= {"lat", "lon"}:
            shown.append(place(value))
        elif isinstance(value, dict):
            for k, sub in props.items():
                if k in value:
                    walk(sub, value[k])
        elif isinstance(value, list):
            shown.append(None if "enum" in schema.get("items", {}) else ", ".join(map(str, value)))
        else:
            shown.append(None if "enum" in schema else str(value))

    walk(form.schema, data)
    return shown


mutations = st.sampled_from(["drop-required", "unknown-field", "wrong-type", "bad-code", "too-long"])


@settings(max_examples=60, deadline=None)
@given(form_id=st.sampled_from(sorted(FORMS.types)), mutation=mutations, data=st.data())
def test_an_invalid_form_is_refused_naming_its_field_in_the_readers_language(
    form_id: str, mutation: str, data: st.DataObject
) -> None:
    form = FORMS.get(form_id)
    filled = data.draw(values(form.schema))
    props = form.schema["properties"]
    if mutation == "drop-required":
        field = data.draw(st.sampled_from(form.schema["required"]))
        del filled[field]
    elif mutation == "unknown-field":
        field = "not_a_field"
        filled[field] = 1
    elif mutation == "wrong-type":
        field = data.draw(st.sampled_from(sorted(filled)))
        filled[field] = [[]] if not isinstance(filled[field], list) else {"x": 1}
    elif mutation == "bad-code":
        codes = [k for k, v in props.items() if "enum" in v]
        if not codes:
            return
        field = data.draw(st.sampled_from(codes))
        filled[field] = "NOT_A_CODE"
    else:
        texts = [k for k, v in props.items() if v.get("type") == "string" and "format" not in v]
        if not texts:
            return
        field = data.draw(st.sampled_from(texts))
        filled[field] = "x" * (props[field]["maxLength"] + 1)
    for lang in ("en", "ru"):
        errors = form.validate(filled, lang)
        assert errors, (mutation, filled)
        assert any(e.path.split(".")[0] == field for e in errors), (field, errors)
        label = form.label(field, lang)
        assert any(label in e.text for e in errors), (label, errors)
    with pytest.raises(DeskError, match="form is refused"):
        acts.make_record(Register("washington"), Identity.generate("washington"),
                         {"act": "notify", "to": "moscow", "form": form_id, "data": filled}, T0,
                         lambda n: b"\x02" * n, ["moscow"], FORMS)  # fmt: skip


def test_every_shipped_form_has_english_and_russian_labels_and_chinese_titles() -> None:
    for form in FORMS.types.values():
        for lang in ("en", "ru"):
            for field in form.fields(lang):
                assert field["label"] != field["path"], (form.id, lang, field["path"])
        assert form.title("zh-Hans") != form.title("en")
        for code in (c for v in form.schema["properties"].values() for c in v.get("enum", [])):
            assert form.code(code, "ru") != code, code


@pytest.mark.parametrize(
    ("definition", "words"),
    [
        ({"id": "Bad Id", "schema": {"type": "object", "additionalProperties": False}}, "'id' must be"),
        ({"id": "x", "schema": {"type": "object", "additionalProperties": False, "properties": {"a": {"type": 5}}}},
         "not valid JSON Schema 2020-12"),
        ({"id": "x", "schema": {"type": "object", "additionalProperties": False,
                                "properties": {"a": {"type": "array", "items": {"enum": ["A"]}}}}}, "maxItems"),
        ({"id": "x", "schema": {"type": "object"}}, "additionalProperties"),
        ({"id": "x", "lead": {"field": "nope", "seconds": 5},
          "schema": {"type": "object", "additionalProperties": False}}, "not a field"),
        ({"id": "x", "surprise": 1, "schema": {}}, "a form type is a map"),
    ],
)  # fmt: skip
def test_a_broken_definition_is_refused_naming_its_file(definition: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        FormType.from_definition(definition, {}, "forms/x.json")
    assert "forms/x.json" in str(caught.value)


def test_the_version_is_the_definition_not_its_labels() -> None:
    base = json.loads(Path(FORMS.get("incident").source).read_text())
    same = FormType.from_definition(base, {"ru": {"incident": "другое название"}}, "a")
    changed = FormType.from_definition({**base, "handling": 1}, {}, "b")
    assert same.digest == FORMS.get("incident").digest != changed.digest


def test_a_late_launch_is_one_sent_less_than_its_lead_time_before_the_window() -> None:
    form = FORMS.get("missile-launch")
    opens = "2025-10-16T14:00:00Z"
    opens_ns = 1_760_623_200 * 1_000_000_000
    assert not form.late({"window_opens": opens}, opens_ns - 86_400 * 1_000_000_000)
    assert form.late({"window_opens": opens}, opens_ns - 86_399 * 1_000_000_000)
