"""The console's catalogues are complete: every string a person reads is translated into each
console language (Russian, Simplified Chinese, and any catalogue added beside them), with its
placeholders kept; and a refusal from the server reads in the user's language."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from hotline.core.access import LANGUAGES
from hotline.core.alarms import KINDS
from hotline.web.console import environment
from hotline.web.i18n import REFUSALS, catalogue_languages, localize, negotiate, placeholders

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


def catalogue(lang: str) -> Catalog:
    directory = lang.replace("-", "_")  # BCP 47 zh-Hans is Babel's zh_Hans
    with (LOCALE / directory / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=directory)


TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]


def test_the_console_languages_are_the_catalogues_present(tmp_path: Path) -> None:
    assert LANGUAGES == catalogue_languages() == ("en", "ru", "zh-Hans")
    (tmp_path / "fr" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / "fr" / "LC_MESSAGES" / "messages.po").write_text("")
    (tmp_path / "pt_BR" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / "pt_BR" / "LC_MESSAGES" / "messages.po").write_text("")
    (tmp_path / "notes").mkdir()  # no catalogue: no language
    assert catalogue_languages(tmp_path) == ("en", "fr", "pt-BR")


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_console_string_is_translated_with_its_placeholders(lang: str) -> None:
    ids = extracted()
    assert "Received and understood" in ids, "extraction found nothing; is babel.cfg right?"
    found = catalogue(lang)
    missing = sorted(i for i in ids if not ((m := found.get(i)) and m.string))
    assert missing == [], f"untranslated in {lang} (run `make messages`, then translate): {missing}"
    fuzzy = sorted(m.id for m in found if m.id and m.fuzzy)
    assert fuzzy == [], f"fuzzy translations in {lang} need a person's check: {fuzzy}"
    changed = [(m.id, m.string) for m in found if m.id and sorted(placeholders(str(m.id))) !=
               sorted(placeholders(str(m.string)))]  # fmt: skip
    assert changed == [], f"placeholders lost or renamed in {lang}: {changed}"


def test_plural_forms_fit_each_language() -> None:
    assert catalogue("ru").num_plurals == 3
    assert (catalogue("zh-Hans").num_plurals, catalogue("zh-Hans").plural_expr) == (1, "0")


def test_the_template_catalogue_is_up_to_date() -> None:
    with (LOCALE / "messages.pot").open("rb") as f:
        pot = {m.id for m in read_po(f) if m.id}
    assert extracted() == pot, "messages.pot is stale: run `make messages`"


def test_templates_render_in_russian() -> None:
    page = environment("ru").from_string("{{ _('Received and understood') }}").render()
    assert page == "Получено и понято"
    assert environment("en").from_string("{{ _('Received and understood') }}").render() == "Received and understood"
    assert environment("zh-Hans").from_string("{{ _('Received and understood') }}").render() == "已收到并理解"


def test_a_browser_language_picks_a_console_language() -> None:
    assert negotiate("zh-CN,zh;q=0.9,en;q=0.8") == "zh-Hans"
    assert negotiate("zh-Hans-CN") == "zh-Hans"
    assert negotiate("zh-TW,fr") is None  # traditional characters are not zh-Hans
    assert negotiate("fr-FR, ru;q=0.5") == "ru"
    assert negotiate("") is None


def test_refusals_read_in_the_users_language_with_their_values_kept() -> None:
    text = "no message with id 01900000-0000-7000-8000-000000000000"
    assert localize(text, "zh-Hans") == "没有 ID 为 01900000-0000-7000-8000-000000000000 的消息"
    assert localize(text, "ru") == "нет сообщения с номером 01900000-0000-7000-8000-000000000000"
    assert localize(text, "en") == text
    # A state is itself a word of the catalogue; a peer's name is kept as it is.
    refused = "the call is already declined; it cannot be answered now"
    assert localize(refused, "zh-Hans") == "通话已是“已拒绝”状态，现在无法答复"
    peer = "no peer named 'paris'; see `hotline peers`"
    assert localize(peer, "ru") == "нет абонента с именем 'paris'; см. `hotline peers`"
    # A text no template matches stays English: the reader never gets less than the original.
    assert localize("the journal refused: disk full", "zh-Hans") == "the journal refused: disk full"


def test_every_refusal_template_has_distinct_placeholders() -> None:
    for template in REFUSALS:
        names = placeholders(template)
        assert len(names) == len(set(names)), template


def test_every_alarm_kind_has_a_label_on_the_alarms_page() -> None:
    """A new alarm kind shows in the operator's language, not as its code name."""
    template = (ROOT / "src/hotline/web/templates/_alarms.html").read_text()
    unlabelled = [kind for kind in KINDS if f'"{kind}": _(' not in template]
    assert unlabelled == [], f"alarm kinds without a label in _alarms.html: {unlabelled}"
