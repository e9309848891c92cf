"""The console's languages: its catalogues, choosing a reader's language, and refusals in it.

Every language with a catalogue under ``web/locale`` is a console language
(``core.access.LANGUAGES`` lists them); English is the language of the sources and
needs none. A BCP 47 tag names a language (``zh-Hans``); Babel names its locale
directory with an underscore (``zh_Hans``).

A refusal — an HTTP error's text, a desk act the state machine refuses — is made in
English where it is raised, and stays English in logs and in the API's ``error_en``.
At the web boundary ``localize`` reads it again in the reader's language: the
stable, common texts are listed in ``REFUSALS`` as templates whose ``%(name)s``
placeholders match the varying part (an id, a peer's name, a state); the template is
translated by the catalogue and the values put back. A text no template matches, or
one not yet translated, stays in English: a reader never gets less than the original.
"""

from __future__ import annotations

import functools
import gettext
import io
import re
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from hotline.core.access import LANGUAGES

LOCALE = Path(__file__).parent / "locale"
DEFAULT_LANG = "en"


def N_(text: str) -> str:
    """Marks a text for the catalogue that is translated later, by value."""
    return text


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue for ``lang`` (a BCP 47 tag), built from its .po file in memory
    (no .mo committed); English, or a language without a catalogue, reads the sources as they are."""
    po = LOCALE / lang.replace("-", "_") / "LC_MESSAGES" / "messages.po"
    if lang not in LANGUAGES or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang.replace("-", "_"))
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@functools.cache
def language_name(lang: str) -> str:
    """A language's name in itself, for the language menu ("English", "Русский", "中文 (简体)")."""
    try:
        name = Locale.parse(lang, sep="-").get_display_name() or lang
    except (ValueError, UnknownLocaleError):
        return lang
    return name[:1].upper() + name[1:]


# Chinese written in traditional characters is not zh-Hans, though its primary subtag is zh.
_NOT_HANS = re.compile(r"^zh-(hant|tw|hk|mo)(-|$)")


def negotiate(accept_language: str) -> str | None:
    """The console language an Accept-Language header asks for first: a tag matched whole
    (``zh-Hans``), or by its language (``ru-RU`` is ``ru``; ``zh-CN`` and ``zh`` are ``zh-Hans``,
    ``zh-TW`` is not); None if it asks for none of them."""
    by_tag = {tag.lower(): tag for tag in LANGUAGES}
    by_language = {tag.split("-")[0].lower(): tag for tag in LANGUAGES}
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()[:35]
        if tag in by_tag:
            return by_tag[tag]
        if _NOT_HANS.match(tag):
            continue
        found = by_language.get(tag.split("-")[0])
        if found:
            return found
    return None


# -- refusals in the reader's language --------------------------------------------------------

# The stable, common refusals a console or API user meets, as their English texts with the
# varying part as %(name)s. Each must match the text where it is raised exactly; one that
# drifts is not translated (the reader gets the English), never mistranslated.
REFUSALS = [
    # web.auth
    N_("log in first"),
    N_("log in, or present a bearer token (`hotline token create`)"),
    N_("the bearer token is unknown or revoked"),
    N_("missing or wrong CSRF token; reload the page and try again"),
    N_("the %(role)s role may not %(permission)s"),
    N_("wrong user name or password"),
    N_("too many failed logins; try again in %(seconds)s s"),
    N_("too many logins at once; try again in a second"),
    # web.forms, web.api, web.console
    N_("the body must be a JSON object"),
    N_("the body is not valid JSON: %(reason)s"),
    N_("a JSON body here may have at most %(limit)s bytes; send files as multipart"),
    N_("send the body as application/json, not %(content_type)s"),
    N_("malformed form: %(reason)s"),
    N_("attachment %(name)s is larger than the 16 MiB limit"),
    N_("%(name)s must be a whole number from %(low)s to %(high)s"),
    N_("'box' must be inbox or outbox"),
    N_("'to' (the peer's name) is required; see GET /api/peers"),
    N_("no such fragment"),
    N_("no such attachment"),
    N_("no message with id %(id)s"),
    N_("no received message with id %(id)s"),
    N_("no received message with id %(id)s; see `hotline inbox`"),
    # peers and messages (engine, core.model, core.compose)
    N_("no peer named %(peer)s; see `hotline peers`"),
    N_("no peer named %(peer)s; see GET /api/peers"),
    N_("invalid message id %(id)s: expected a UUID"),
    N_("unknown precedence %(given)s; choose one of %(choices)s"),
    N_("invalid language tag %(tag)s: expected BCP 47 such as en, ru, zh-Hans"),
    N_("subject is %(count)s characters; the limit is %(limit)s"),
    N_("body is over %(limit)s bytes; send long text as an attachment"),
    N_("unknown classification %(given)s; this terminal marks messages %(markings)s ([messages] markings in "
       "config.toml)"),
    # users (core.access, storage)
    N_("unknown role %(role)s; choose operator, supervisor or auditor"),
    N_("a password needs at least %(count)s characters"),
    N_("the console speaks %(languages)s; not %(lang)s"),
    N_("there is already a user named %(name)s"),
    N_("no user named %(name)s; see `hotline user list`"),
    # the desk: ids (web.desk, desk.register)
    N_("no call with id %(id)s; see `hotline calls`"),
    N_("no commitment with id %(id)s; see `hotline commitments`"),
    N_("no call with id %(id)s"),
    N_("no commitment with id %(id)s"),
    N_("no call or commitment with id %(id)s; see `hotline calls` or `hotline commitments`"),
    N_("%(id)s names %(count)s calls or commitments; give more of the id"),
    N_("no call action %(act)s"),
    N_("no commitment action %(act)s"),
    N_("%(name)s must be a whole number"),
    N_("%(name)s must be a time: RFC 3339 text or integer nanoseconds"),
    N_("%(act)s takes %(allowed)s; not %(unknown)s"),
    # the desk: acts the state machine refuses (desk.register, desk.notices)
    N_("%(side)s is not a party to this call"),
    N_("%(side)s is not a party to this commitment"),
    N_("the call is already %(state)s; it cannot be answered now"),
    N_("it is %(turn)s's turn to answer, not %(side)s's"),
    N_("%(side)s is asked to answer; it declines rather than withdraws"),
    N_("the call is already %(state)s; it cannot be withdrawn"),
    N_("the call is %(state)s; only an accepted call starts"),
    N_("the call is %(state)s; only a call in progress ends"),
    N_("the commitment is already %(state)s"),
    N_("the side that proposed a commitment cannot countersign it"),
    N_("the side that proposed a commitment withdraws it rather than declines"),
    N_("a commitment not yet agreed can only be withdrawn, by the side that proposed it"),
    N_("the commitment is %(state)s; rounds are counted on an agreed one"),
    N_("round %(round)s is already recorded as done"),
    N_("only the side that received a notification acknowledges or refuses it"),
    N_("the notification is already acknowledged or refused"),
    # notifications (web.notify): the form's own errors are already in the reader's language
    N_("no notification with id %(id)s; see GET /api/notifications"),
    N_("no form type %(form)s; see GET /api/forms"),
    N_("no form type %(form)s"),
    N_("'form' (the form type) is required; see GET /api/forms"),
    N_("choose a form type"),
    N_("the %(form)s form is refused: %(errors)s"),
]  # fmt: skip

# Placeholders whose value is itself a word of the catalogue (a state, a role): read in the
# reader's language too. Every other value (an id, a name, a number, a code) is kept as it is.
_WORD_VALUES = frozenset({"state", "role"})
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def placeholders(text: str) -> list[str]:
    """The ``%(name)s`` placeholders of a template, in order."""
    return _PLACEHOLDER.findall(text)


@functools.cache
def _patterns() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for template in REFUSALS:
        parts = _PLACEHOLDER.split(template)  # text, name, text, name, ... text
        regex = "".join(f"(?P<{p}>.+?)" if i % 2 else re.escape(p) for i, p in enumerate(parts))
        out.append((re.compile(regex, re.DOTALL), template))
    return out


def localize(text: str, lang: str) -> str:
    """A refusal's English ``text`` in ``lang``, if a template of ``REFUSALS`` matches it and is
    translated; otherwise ``text`` itself."""
    if lang == DEFAULT_LANG or lang not in LANGUAGES:
        return text
    catalogue = translations(lang)
    for pattern, template in _patterns():
        found = pattern.fullmatch(text)
        if found is None:
            continue
        translated = catalogue.gettext(template)
        if translated == template:
            return text
        values = {k: catalogue.gettext(v) if k in _WORD_VALUES else v for k, v in found.groupdict().items()}
        try:
            return translated % values
        except (KeyError, ValueError, TypeError):  # a catalogue's mistake must not cost the reader the text
            return text
    return text


def catalogue_languages(locale_dir: Path = LOCALE) -> tuple[str, ...]:
    """The languages the catalogues present give the console: English and each
    ``LOCALE/<dir>/LC_MESSAGES/messages.po`` (``zh_Hans`` -> ``zh-Hans``). ``core.access.LANGUAGES``
    must list the same (tests/test_i18n.py): the core reads no files."""
    found = sorted(po.parents[1].name.replace("_", "-") for po in locale_dir.glob("*/LC_MESSAGES/messages.po"))
    return ("en", *(tag for tag in found if tag != "en"))
