"""Messages in the reader's language: English (the source language) and Simplified Chinese.

One gettext catalogue per language, ``authenticator/locale/<ll_CC>/LC_MESSAGES/messages.po``,
whose message ids are the English texts (placeholders in ``{braces}``). The catalogues ship as
``.po`` and are compiled in memory with Babel at first use: nothing is fetched at run time and no
build step is needed. ``python -m authenticator.i18n extract`` rewrites the template
(``messages.pot``) from the sources and merges it into every catalogue; ``check`` fails when a
message has no translation (the test suite runs it).

Sources of messages: the reasons (:mod:`authenticator.vision.reasons`), the capture guides
(:mod:`authenticator.vision.capture_guides`), the pages' Python and templates (``api/pages/``,
``api/templates``) and their scripts (``api/static/*.js``, whose messages the pages embed as a
JSON catalogue, so the verifier in the browser says the same things in both languages).
"""

from __future__ import annotations

import functools
import gettext as _gettext
import io
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
LOCALE_DIR = ROOT / "locale"
DOMAIN = "messages"

#: The languages of the pages, as BCP 47 tags; the first is the source language.
LOCALES: tuple[str, ...] = ("en", "zh-CN")
DEFAULT_LOCALE = "en"
#: What each language is called in itself (the switch on every page).
NATIVE_NAMES = {"en": "English", "zh-CN": "简体中文"}

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def N_(message: str) -> str:
    """Marks ``message`` for extraction where it is defined (tables); translated where it is shown."""
    return message


def _folder(locale: str) -> str:
    return locale.replace("-", "_")


@functools.cache
def translations(locale: str) -> _gettext.NullTranslations:
    """The compiled catalogue of ``locale`` (the source language and unknown ones: identity)."""
    if locale == DEFAULT_LOCALE or locale not in LOCALES:
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    po = LOCALE_DIR / _folder(locale) / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=_folder(locale))
    buf = io.BytesIO()
    write_mo(buf, catalog)  # fuzzy entries left out
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def fill(text: str, values: dict[str, Any]) -> str:
    """``{name}`` placeholders replaced by ``values`` (others left as they are)."""
    if not values:
        return text
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


class Translator:
    """``tr("Registered by {name}", name=x)``: the message in this translator's language, filled."""

    def __init__(self, locale: str = DEFAULT_LOCALE) -> None:
        self.locale = locale if locale in LOCALES else DEFAULT_LOCALE
        self._t = translations(self.locale)

    def gettext(self, message: str) -> str:
        return self._t.gettext(message) if message else message

    def __call__(self, message: str, **values: Any) -> str:
        return fill(self.gettext(message), values)

    def catalogue(self, messages: Iterable[str]) -> dict[str, str]:
        """``{message: translation}`` of ``messages`` that have one (for a page's script)."""
        out = {}
        for m in messages:
            tr = self.gettext(m)
            if tr != m:
                out[m] = tr
        return out


ENGLISH = Translator(DEFAULT_LOCALE)


def negotiate(accept_language: str | None, requested: str | None = None) -> str:
    """The page language: ``requested`` (a ``?lang=`` value) when it is one of :data:`LOCALES`,
    else the best of ``Accept-Language`` (RFC 9110 quality values; ``zh``, ``zh-Hans``,
    ``zh-CN`` and ``zh-SG`` read Simplified Chinese), else English."""
    if requested:
        found = _match(requested.strip())
        if found is not None:
            return found
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag))
    for _q, _i, tag in sorted(ranked):
        found = _match(tag)
        if found is not None:
            return found
    return DEFAULT_LOCALE


def _match(tag: str) -> str | None:
    t = tag.lower().replace("_", "-")
    if t in ("zh", "zh-cn", "zh-hans", "zh-sg", "zh-hans-cn", "zh-hans-sg", "zh-my"):
        return "zh-CN"
    if t == "en" or t.startswith("en-"):
        return "en"
    if t == "*":
        return DEFAULT_LOCALE
    return None


# --- maintaining the catalogues (``python -m authenticator.i18n extract|check``) ----------------

REPO = ROOT.parent
#: Where messages are extracted from, with the Babel method and keywords for each.
SOURCES: tuple[tuple[str, str], ...] = (
    ("api/pages/*.py", "python"),
    ("api/routers/capture_guides.py", "python"),
    ("api/templates/*.html", "jinja2"),
    ("api/static/*.js", "javascript"),
)
KEYWORDS = {"_": None, "N_": None, "tr": None, "t": None, "gettext": None}


def _extract(pattern: str, method: str) -> list[tuple[str, str, int]]:
    """``(message, file, line)`` of every marked message of the files matching ``pattern``."""
    from babel.messages.extract import extract

    out = []
    for path in sorted(REPO.glob(pattern)):
        func: Any = method
        options: dict[str, str] = {}
        if method == "jinja2":
            from jinja2.ext import babel_extract

            func = babel_extract
        with path.open("rb") as f:
            for lineno, message, _comments, _context in extract(func, f, keywords=KEYWORDS, options=options):
                if isinstance(message, str) and message:
                    out.append((message, path.relative_to(REPO).as_posix(), lineno))
    return out


def table_messages() -> list[tuple[str, str, int]]:
    """The messages of the core's tables: every reason and retake hint, every capture guide."""
    from authenticator.vision.capture_guides import FRAMING_GATES, GUIDES
    from authenticator.vision.reasons import MESSAGES, NOT_VALIDATED_MESSAGES, RETAKE

    out = [(m, "authenticator/vision/reasons.py", 0) for m in [*MESSAGES.values(), *NOT_VALIDATED_MESSAGES.values()]]
    out += [(m, "authenticator/vision/reasons.py", 0) for m in RETAKE.values()]
    where = "authenticator/vision/capture_guides.py"
    out += [(g.checks, where, 0) for g in FRAMING_GATES.values()]
    for guide in GUIDES.values():
        for v in guide.views:
            out += [(v.name, where, 0), (v.instruction, where, 0)]
    return out


def extracted() -> list[tuple[str, str, int]]:
    """Every message the sources mark (and the core's tables hold), with where."""
    found = table_messages()
    for pattern, method in SOURCES:
        found.extend(_extract(pattern, method))
    return found


@functools.cache
def script_messages() -> tuple[str, ...]:
    """The messages the pages' scripts translate with ``t(...)`` (embedded into each page)."""
    return tuple(sorted({m for m, _f, _l in _extract("api/static/*.js", "javascript")}))


def _write_template() -> Any:
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    catalog = Catalog(project="authenticator", domain=DOMAIN, charset="utf-8")
    for message, file, line in extracted():
        catalog.add(message, locations=[(file, line)])
    LOCALE_DIR.mkdir(parents=True, exist_ok=True)
    with (LOCALE_DIR / f"{DOMAIN}.pot").open("wb") as f:
        write_po(f, catalog, width=120, sort_output=True, omit_header=False)
    return catalog


def extract_and_merge() -> None:
    """Rewrite ``messages.pot`` and bring every catalogue up to date with it (new messages empty,
    gone ones dropped as obsolete)."""
    from babel.messages.pofile import read_po, write_po

    template = _write_template()
    for locale in LOCALES[1:]:
        po = LOCALE_DIR / _folder(locale) / "LC_MESSAGES" / f"{DOMAIN}.po"
        po.parent.mkdir(parents=True, exist_ok=True)
        if po.exists():
            with po.open("rb") as f:
                catalog = read_po(f, locale=_folder(locale))
        else:
            from babel.messages.catalog import Catalog

            catalog = Catalog(locale=_folder(locale), domain=DOMAIN, charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with po.open("wb") as f:
            write_po(f, catalog, width=120, sort_output=True, ignore_obsolete=True)


def untranslated(locale: str) -> list[str]:
    """Messages of the sources that ``locale``'s catalogue has no translation for (empty or fuzzy)."""
    from babel.messages.pofile import read_po

    po = LOCALE_DIR / _folder(locale) / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=_folder(locale))
    done = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    return sorted({m for m, _f, _l in extracted() if m not in done})


def main(argv: list[str]) -> int:
    if argv[:1] == ["extract"]:
        extract_and_merge()
        return 0
    if argv[:1] == ["check"]:
        bad = {loc: untranslated(loc) for loc in LOCALES[1:]}
        for loc, messages in bad.items():
            for m in messages:
                print(f"{loc}: no translation: {m!r}")
        return 1 if any(bad.values()) else 0
    print("usage: python -m authenticator.i18n extract|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
