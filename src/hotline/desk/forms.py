"""Formatted notifications: forms both sides agreed, which each side reads in its own language.

A *form type* is data: a JSON Schema (draft 2020-12, checked with the
``jsonschema`` library) for the fields, a precedence and a handling time, and
optionally a lead time (a missile launch is notified at least 24 h before its
window opens) and the type it answers (a violation report's response). Its
labels, help texts and the names of its codes live in gettext catalogues, one
per language, keyed ``TYPE.FIELD`` / ``TYPE.FIELD.help`` / ``code.CODE``; the
values that travel are codes and numbers, never text in one language, so each
side renders a form in its reader's language and nothing waits for a
translator.

The *version* of a type is the SHA-256 of its canonical definition (schema,
precedence, times, answers) — labels are not part of it: each side may word
them as it likes. The hash travels with every notification; a receiver whose
type differs refuses it and says so.

Pure: definitions and catalogues come in as values (``home.forms`` reads them).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError

from hotline.core.errors import ConfigError, DeskError
from hotline.core.model import Precedence
from hotline.core.times import parse_time
from hotline.core.wire import MAX_NESTING, nested_deeper_than

MAX_FORM_BYTES = 64 * 1024  # a whole form, as msgpack or JSON
_TYPE_ID = re.compile(r"^[a-z][a-z0-9-]{0,47}$")
_DEFINITION_KEYS = {"id", "precedence", "handling", "lead", "answers", "schema"}

# The words around field names in an error, per language; the field's label comes from the type's catalogue.
_ERRORS: dict[str, dict[str, str]] = {
    "en": {
        "required": "{field}: required", "type": "{field}: must be {what}", "enum": "{field}: not one of the codes",
        "range": "{field}: out of range", "length": "{field}: too long", "pattern": "{field}: not in the expected form",
        "format": "{field}: must be an RFC 3339 time in UTC, e.g. 2025-10-16T14:00:00Z",
        "unknown": "{field}: unknown field", "place": "{field}: give either lat and lon, or a named area",
        "area": "{field}: area {value!r} is not in this deployment's list", "other": "{field}: invalid ({detail})",
        "items": "{field}: too many items", "depth": "{field}: nested too deeply",
    },
    "ru": {
        "required": "{field}: обязательное поле", "type": "{field}: должно быть {what}",
        "enum": "{field}: недопустимый код", "range": "{field}: вне допустимого диапазона",
        "length": "{field}: слишком длинно", "pattern": "{field}: неверный формат",
        "format": "{field}: время по RFC 3339 в UTC, например 2025-10-16T14:00:00Z",
        "unknown": "{field}: неизвестное поле", "place": "{field}: укажите широту и долготу или название района",
        "area": "{field}: района {value!r} нет в списке", "other": "{field}: недопустимо ({detail})",
        "items": "{field}: слишком много элементов", "depth": "{field}: слишком глубокая вложенность",
    },
}  # fmt: skip
_TYPE_WORDS = {
    "en": {"integer": "a whole number", "number": "a number", "string": "text", "object": "a group of fields",
           "array": "a list", "boolean": "true or false"},
    "ru": {"integer": "целым числом", "number": "числом", "string": "текстом", "object": "группой полей",
           "array": "списком", "boolean": "да или нет"},
}  # fmt: skip


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the type check reports it
    if not value.endswith("Z"):
        return False
    try:
        parse_time(value)
    except ConfigError:
        return False
    return True


_FORMATS = FormatChecker(formats=())
_FORMATS.checks("date-time")(_date_time)


def _capped(schema: Any, source: str, where: str = "#") -> None:
    """Every string has a maxLength, every array a maxItems, every object additionalProperties false:
    a form from a peer is untrusted input, and no field of it is unbounded."""
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "string" and "maxLength" not in schema and "enum" not in schema:
            raise ConfigError(f"{source}: a string field without maxLength (at {where})")
        if kind == "array" and "maxItems" not in schema:
            raise ConfigError(f"{source}: a list field without maxItems (at {where})")
        if kind == "object" and schema.get("additionalProperties") is not False:
            raise ConfigError(f"{source}: an object without additionalProperties: false (at {where})")
        for key, value in schema.items():
            _capped(value, source, f"{where}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            _capped(value, source, f"{where}/{i}")


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str  # "launch_area.lat"
    text: str  # in the reader's language


@dataclass(frozen=True, slots=True)
class FormType:
    id: str
    precedence: Precedence
    handling_s: int
    lead_field: str  # "" when the type has no lead time
    lead_s: int
    answers: str  # the type this one answers ("" for none)
    schema: dict[str, Any] = field(hash=False)
    digest: bytes = field(hash=False)
    catalogues: dict[str, dict[str, str]] = field(hash=False, default_factory=dict)
    source: str = ""

    @classmethod
    def from_definition(cls, definition: Any, catalogues: dict[str, dict[str, str]], source: str) -> FormType:
        """A type from its parsed JSON definition; ``ConfigError`` names the file and what is wrong."""
        if not isinstance(definition, dict) or set(definition) - _DEFINITION_KEYS or "schema" not in definition:
            raise ConfigError(f"{source}: a form type is a map of {sorted(_DEFINITION_KEYS)}")
        type_id = definition.get("id")
        if not isinstance(type_id, str) or not _TYPE_ID.match(type_id):
            raise ConfigError(f"{source}: 'id' must be 1-48 characters of a-z, 0-9 and '-', starting with a letter")
        schema = definition["schema"]
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as e:
            raise ConfigError(f"{source}: the schema is not valid JSON Schema 2020-12: {e.message}") from None
        if schema.get("type") != "object":
            raise ConfigError(f"{source}: the schema must describe an object")
        _capped(schema, source)
        try:
            precedence = Precedence.parse(str(definition.get("precedence", "routine")))
        except Exception as e:
            raise ConfigError(f"{source}: {e}") from None
        handling, lead = definition.get("handling", 0), definition.get("lead") or {}
        if not isinstance(handling, int) or handling < 0:
            raise ConfigError(f"{source}: 'handling' is the handling time in seconds (0 for none)")
        if not isinstance(lead, dict) or (lead and set(lead) != {"field", "seconds"}):
            raise ConfigError(f"{source}: 'lead' is {{field, seconds}}: notify at least this long before that time")
        if lead and lead["field"] not in schema.get("properties", {}):
            raise ConfigError(f"{source}: the lead time counts back from {lead['field']!r}, which is not a field")
        answers = definition.get("answers") or ""
        canonical = json.dumps({k: definition.get(k) for k in sorted(_DEFINITION_KEYS)}, sort_keys=True,
                               separators=(",", ":"), ensure_ascii=False)  # fmt: skip
        return cls(
            id=type_id, precedence=precedence, handling_s=handling, lead_field=str(lead.get("field", "")),
            lead_s=int(lead.get("seconds", 0)), answers=str(answers), schema=schema,
            digest=hashlib.sha256(canonical.encode()).digest(), catalogues=catalogues, source=source,
        )  # fmt: skip

    # -- words ---------------------------------------------------------------------------------

    def text(self, msgid: str, lang: str, default: str | None = None) -> str:
        """A catalogue entry in ``lang``, else English, else ``default`` (or the msgid itself)."""
        for tag in (lang, lang.split("-", maxsplit=1)[0], "en"):
            found = self.catalogues.get(tag, {}).get(msgid)
            if found:
                return found
        return msgid if default is None else default

    def title(self, lang: str) -> str:
        return self.text(self.id, lang, self.id)

    def label(self, path: str, lang: str) -> str:
        """A field's label; a part of a place (lat, lon, area) is named after its place."""
        found = self.text(f"{self.id}.{path}", lang, "")
        if found:
            return found
        parent, _, last = path.rpartition(".")
        if parent and last in ("lat", "lon", "area"):
            return f"{self.label(parent, lang)}, {self.text(f'field.{last}', lang, last)}"
        return path

    def help(self, path: str, lang: str) -> str:
        return self.text(f"{self.id}.{path}.help", lang, "")

    def code(self, code: str, lang: str) -> str:
        return self.text(f"code.{code}", lang, code)

    # -- checking ------------------------------------------------------------------------------

    def validate(self, data: Any, lang: str = "en", areas: frozenset[str] = frozenset()) -> list[FieldError]:
        """Every way ``data`` fails this form, each naming its field in ``lang`` (empty: valid)."""
        if isinstance(data, dict | list) and nested_deeper_than(data, MAX_NESTING):
            # before json.dumps and the validator, which recurse (found by tools/fuzz.py)
            return [FieldError("", self._words(lang, "depth").format(field=self.title(lang)))]
        try:
            size = len(json.dumps(data, ensure_ascii=False, default=str).encode())
        except (TypeError, ValueError):  # a map key that is not text, from msgpack (found by tools/fuzz.py)
            return [FieldError("", "the form's data is not JSON: every map key must be text")]
        if size > MAX_FORM_BYTES:
            return [FieldError("", f"the form is over {MAX_FORM_BYTES // 1024} KiB")]
        validator = Draft202012Validator(self.schema, format_checker=_FORMATS)
        errors = [self._error(e, lang) for e in validator.iter_errors(data)]
        if not errors and areas:
            errors += [FieldError(p, self._words(lang, "area").format(field=self.label(p, lang), value=v))
                       for p, v in _areas_in(data) if v not in areas]  # fmt: skip
        unique = {(e.path, e.text): e for e in errors}
        return sorted(unique.values(), key=lambda e: e.path)

    def _words(self, lang: str, key: str) -> str:
        return _ERRORS.get(lang.split("-", maxsplit=1)[0], _ERRORS["en"])[key]

    def _error(self, error: ValidationError, lang: str) -> FieldError:
        path = ".".join(str(p) for p in error.absolute_path)
        validator = str(error.validator)
        if validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            path = ".".join(x for x in (path, missing[0] if missing else "") if x)
            key = "required"
        elif validator == "additionalProperties":
            extra = re.findall(r"'([^']+)'", error.message)
            path = ".".join(x for x in (path, extra[0] if extra else "") if x)
            key = "unknown"
        else:
            key = {"type": "type", "enum": "enum", "minimum": "range", "maximum": "range", "exclusiveMinimum": "range",
                   "exclusiveMaximum": "range", "maxLength": "length", "minLength": "length", "pattern": "pattern",
                   "format": "format", "oneOf": "place", "maxItems": "items"}.get(validator, "other")  # fmt: skip
        label = self.label(_label_path(path), lang) if path else self.title(lang)
        words = _TYPE_WORDS.get(lang.split("-", maxsplit=1)[0], _TYPE_WORDS["en"])
        what = words.get(str(error.validator_value), str(error.validator_value))
        return FieldError(path, self._words(lang, key).format(field=label, what=what, detail=error.message[:200]))

    def late(self, data: dict[str, Any], sent_at_ns: int) -> bool:
        """Whether a notification sent at ``sent_at_ns`` came later than its lead time allows."""
        if not self.lead_field or not isinstance(data.get(self.lead_field), str):
            return False
        try:
            deadline = parse_time(data[self.lead_field]) - self.lead_s * 1_000_000_000
        except ConfigError:
            return False
        return sent_at_ns > deadline

    # -- showing -------------------------------------------------------------------------------

    def render(self, data: dict[str, Any], lang: str) -> list[tuple[str, str]]:
        """The form as (label, value) lines in ``lang``, in the schema's order; codes named in ``lang``."""
        lines: list[tuple[str, str]] = []
        self._render(self.schema, data, "", lang, lines)
        return lines

    def _render(self, schema: dict[str, Any], value: Any, path: str, lang: str, out: list[tuple[str, str]]) -> None:
        if isinstance(value, dict) and set(schema.get("properties", {})) >= {"lat", "lon"}:
            out.append((self.label(path, lang), _place(value)))
            return
        if isinstance(value, dict) and schema.get("type") == "object":
            for name, sub in schema.get("properties", {}).items():
                if name in value:
                    self._render(sub, value[name], f"{path}.{name}" if path else name, lang, out)
            return
        if isinstance(value, list):
            shown = ", ".join(self.code(v, lang) if isinstance(v, str) and "enum" in schema.get("items", {})
                              else str(v) for v in value)  # fmt: skip
            out.append((self.label(_label_path(path), lang), shown))
            return
        text = self.code(value, lang) if isinstance(value, str) and "enum" in schema else str(value)
        out.append((self.label(_label_path(path), lang), text))

    def template(self) -> dict[str, Any]:
        """An empty form to fill: every field, with its type's empty value; a place as lat/lon."""
        empty = _empty(self.schema)
        return empty if isinstance(empty, dict) else {}

    def fields(self, lang: str) -> list[dict[str, Any]]:
        """The form's fields, flattened, for a form generated from the schema (the console)."""
        found: list[dict[str, Any]] = []
        _walk(self, self.schema, "", lang, found, required=True)
        return found


def _place(value: dict[str, Any]) -> str:
    """A position as people read it (WGS 84), or the named area."""
    if isinstance(value.get("area"), str):
        return str(value["area"])
    lat, lon = value.get("lat"), value.get("lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return f"{abs(lat):.4f}° {'N' if lat >= 0 else 'S'}, {abs(lon):.4f}° {'E' if lon >= 0 else 'W'}"
    return str(value)


def _label_path(path: str) -> str:
    """The catalogue key of a field path: list indices are left out ("evidence.2" -> "evidence")."""
    return ".".join(p for p in path.split(".") if not p.isdigit())


def _areas_in(data: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(data, dict):
        found = [(path or "area", data["area"])] if isinstance(data.get("area"), str) else []
        for key, value in data.items():
            if isinstance(value, dict):
                found += _areas_in(value, f"{path}.{key}" if path else key)
        return found
    return []


def _empty(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        if set(props) >= {"lat", "lon"}:
            return {"lat": 0.0, "lon": 0.0}
        return {name: _empty(sub) for name, sub in props.items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if "enum" in schema:
        return schema["enum"][0]
    return ""


def _walk(form: FormType, schema: dict[str, Any], path: str, lang: str, out: list[dict[str, Any]],
          required: bool) -> None:  # fmt: skip
    kind = schema.get("type")
    props = schema.get("properties", {})
    if kind == "object" and set(props) >= {"lat", "lon"}:
        out.append({"path": path, "kind": "place", "label": form.label(path, lang), "help": form.help(path, lang),
                    "required": required})  # fmt: skip
        return
    if kind == "object":
        needed = set(schema.get("required", []))
        for name, sub in props.items():
            _walk(form, sub, f"{path}.{name}" if path else name, lang, out, name in needed)
        return
    entry: dict[str, Any] = {"path": path, "label": form.label(path, lang), "help": form.help(path, lang),
                             "required": required, "kind": kind or "string"}  # fmt: skip
    if "enum" in schema:
        entry["kind"] = "enum"
        entry["choices"] = [(code, form.code(code, lang)) for code in schema["enum"]]
    elif schema.get("format") == "date-time":
        entry["kind"] = "date-time"
    elif kind == "array":
        entry["kind"] = "list"
        items = schema.get("items", {})
        entry["item_kind"] = "enum" if "enum" in items else str(items.get("type", "string"))
        if "enum" in items:  # a list of codes: chosen from their names, like an enumeration
            entry["choices"] = [(code, form.code(code, lang)) for code in items["enum"]]
    for cap in ("minimum", "maximum", "maxLength", "maxItems"):
        if cap in schema:
            entry[cap] = schema[cap]
    out.append(entry)


class FormRegistry:
    """The form types this terminal knows, by id."""

    def __init__(self, types: list[FormType], areas: frozenset[str] = frozenset()) -> None:
        self.types = {t.id: t for t in types}
        self.areas = areas
        for t in types:
            if t.answers and t.answers not in self.types:
                raise ConfigError(f"{t.source}: answers {t.answers!r}, which is not a known form type")

    def get(self, type_id: str) -> FormType:
        found = self.types.get(type_id)
        if found is None:
            raise DeskError(f"no form type {type_id!r}; `hotline notify --list-types` lists them")
        return found

    def by_digest(self, digest: bytes) -> FormType | None:
        return next((t for t in self.types.values() if t.digest == digest), None)
