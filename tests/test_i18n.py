"""The console's catalogues are complete: every string a person reads has a Russian translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from hotline.web.console import environment

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "src" / "hotline" / "web" / "locale"


def extracted() -> set[str]:
    """The msgids in the sources now, extracted exactly as `make messages` does."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)  # type: ignore[no-untyped-call]
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(ROOT, method_map, options_map):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_console_string_has_a_russian_translation() -> None:
    ids = extracted()
    assert "Received and understood" in ids, "extraction found nothing; is babel.cfg right?"
    with (LOCALE / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="ru")
    missing = sorted(i for i in ids if not ((found := catalog.get(i)) and found.string))
    assert missing == [], f"untranslated (run `make messages`, then translate): {missing}"
    fuzzy = sorted(m.id for m in catalog if m.id and m.fuzzy)
    assert fuzzy == [], f"fuzzy translations need a person's check: {fuzzy}"


def test_the_template_catalogue_is_up_to_date() -> None:
    with (LOCALE / "messages.pot").open("rb") as f:
        pot = {m.id for m in read_po(f) if m.id}
    assert extracted() == pot, "messages.pot is stale: run `make messages`"


def test_templates_render_in_russian() -> None:
    page = environment("ru").from_string("{{ _('Received and understood') }}").render()
    assert page == "Получено и понято"
    assert environment("en").from_string("{{ _('Received and understood') }}").render() == "Received and understood"
