"""Reading the form types a terminal knows: those shipped with Hotline, and the deployment's own.

The shipped types are ``hotline/desk/formdefs/*.json`` with their catalogues
``forms.LANG.po``. A deployment adds (or replaces, by id) types by putting
``NAME.json`` files and ``*.LANG.po`` catalogues in the home folder's ``forms/``
folder — no code changes. Every definition is checked when it is read (a broken
one is a start-up error naming the file), and the named areas a form may use
come from ``[notify] areas`` in config.toml.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from babel.messages.pofile import read_po

from hotline.core.errors import ConfigError
from hotline.desk.forms import FormRegistry, FormType
from hotline.home.config import Config

FORMS_DIR = "forms"


def _catalogue(entry: Traversable | Path, lang: str) -> dict[str, str]:
    try:
        with entry.open("rb") as f:
            catalog = read_po(f, locale=lang.replace("-", "_"))
    except Exception as e:  # babel raises several kinds for a broken file
        raise ConfigError(f"{entry}: not a readable gettext catalogue ({e})") from None
    return {str(m.id): str(m.string) for m in catalog if m.id and isinstance(m.string, str) and m.string}


def _read(folder: Traversable | Path, types: dict[str, FormType], catalogues: dict[str, dict[str, str]]) -> None:
    entries = sorted(folder.iterdir(), key=lambda e: e.name)
    for entry in entries:
        if entry.name.endswith(".po"):
            lang = entry.name[:-3].rsplit(".", 1)[-1]
            catalogues.setdefault(lang, {}).update(_catalogue(entry, lang))
    for entry in entries:
        if entry.name.endswith(".json"):
            try:
                definition = json.loads(entry.read_text(encoding="utf-8"))
            except (ValueError, OSError) as e:
                raise ConfigError(f"{entry}: not readable JSON ({e})") from None
            form = FormType.from_definition(definition, catalogues, str(entry))
            types[form.id] = form


def load_forms(home: Path | None, config: Config | None = None) -> FormRegistry:
    """The shipped form types, then the home folder's (a type of the same id replaces a shipped one)."""
    types: dict[str, FormType] = {}
    catalogues: dict[str, dict[str, str]] = {}
    _read(resources.files("hotline.desk") / "formdefs", types, catalogues)
    if home is not None and (home / FORMS_DIR).is_dir():
        _read(home / FORMS_DIR, types, catalogues)
    areas: list[object] = []
    if config is not None:
        section = config.extra.get("notify", {})
        areas = section.get("areas", []) if isinstance(section, dict) else []
        if not isinstance(areas, list) or not all(isinstance(a, str) for a in areas):
            raise ConfigError("[notify] areas in config.toml must be a list of area names")
    return FormRegistry(list(types.values()), frozenset(str(a) for a in areas))
