"""Message catalogs in zh-CN and en.

Each domain package keeps its own strings in ``<package>/locales/<lang>.yaml`` as flat
``key: text`` pairs; keys are namespaced by domain (``members.not_found``). Texts are
``str.format`` templates with named fields. The current language is a context variable set
at the edge (``Accept-Language`` for the API, ``--lang`` for the CLI).
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from memberlab.core.settings import SUPPORTED_LANGUAGES, Language

_current_language: ContextVar[Language | None] = ContextVar("memberlab_language", default=None)


def normalise_language(value: str | None) -> Language | None:
    """Map a language tag such as ``zh``, ``zh-Hans-CN`` or ``en-GB`` to a supported one."""
    if not value:
        return None
    tag = value.strip().lower().replace("_", "-")
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return None


def negotiate_language(accept_language: str | None, default: Language) -> Language:
    """Pick the best supported language from an HTTP ``Accept-Language`` header."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag))
    for negative_quality, _, tag in sorted(ranked):
        language = normalise_language(tag)
        if language and negative_quality < 0:
            return language
    return default


def current_language() -> Language:
    language = _current_language.get()
    if language is not None:
        return language
    from memberlab.core.settings import get_settings

    return get_settings().language


def set_language(language: Language) -> None:
    _current_language.set(language)


@contextmanager
def language(lang: Language) -> Iterator[None]:
    """Run a block in one language: ``with language("en"): ...``."""
    token = _current_language.set(lang)
    try:
        yield
    finally:
        _current_language.reset(token)


@lru_cache
def catalogs() -> dict[Language, dict[str, str]]:
    """All catalogs, merged over the domain packages that have a ``locales`` folder.

    A key defined twice is an error.
    """
    merged: dict[Language, dict[str, str]] = {lang: {} for lang in SUPPORTED_LANGUAGES}
    root = resources.files("memberlab")
    packages = sorted(p.name for p in root.iterdir() if p.joinpath("locales").is_dir())
    for package in packages:
        for lang in SUPPORTED_LANGUAGES:
            resource = root.joinpath(package, "locales", f"{lang}.yaml")
            if not resource.is_file():
                continue
            entries = yaml.safe_load(resource.read_text(encoding="utf-8")) or {}
            for key, text in entries.items():
                if key in merged[lang]:
                    raise RuntimeError(f"message key {key!r} defined twice ({package}, {lang})")
                merged[lang][key] = str(text)
    return merged


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def t(key: str, lang: Language | None = None, /, **params: Any) -> str:
    """Translate ``key`` into ``lang`` (default: the current language), filling ``params``.

    A missing key falls back to English, then to the key itself, so a message is never lost.
    """
    lang = lang or current_language()
    table = catalogs()
    template = table[lang].get(key) or table["en"].get(key)
    if template is None:
        return key if not params else f"{key} {params}"
    # a Decimal reads as written: 90, not the 9E+1 that str() gives after normalize()
    params = {k: format(v, "f") if isinstance(v, Decimal) else v for k, v in params.items()}
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template
