"""Pages a person opens in a browser, shared by the domains: one Jinja2 environment that
finds each domain's ``templates/`` and the common ``base.html`` here, with autoescaping on,
and the security headers every page sends. No asset comes from anywhere else: the styles
and scripts are in the pages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape

from memberlab.core.i18n import Language, normalise_language

LANGUAGES = (("zh-CN", "中文"), ("en", "English"))
DOMAINS = ("memberlab.core", "memberlab.experience", "memberlab.engagement")
# pages without scripts (the public survey page)
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",  # a survey link is a credential: never leak it
    "X-Content-Type-Options": "nosniff",
}
# staff pages: their own inline script, which reads our API and nothing else
APP_HEADERS = {
    **HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=ChoiceLoader([PackageLoader(domain, "templates") for domain in DOMAINS]),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(
    name: str, status: int, headers: Mapping[str, str] = HEADERS, **context: Any
) -> HTMLResponse:
    html = _environment().get_template(name).render(languages=LANGUAGES, **context)
    return HTMLResponse(html, status_code=status, headers=dict(headers))


def page_language(request: Request, preferred: str | None) -> Language:
    """``?lang=`` first, then the preferred language, then zh-CN."""
    return (
        normalise_language(request.query_params.get("lang"))
        or normalise_language(preferred)
        or "zh-CN"
    )


def script_strings(strings: Mapping[str, str]) -> str:
    """Texts for a page's script, as JSON safe inside a ``<script>`` element."""
    return json.dumps(dict(strings), ensure_ascii=False).replace("</", "<\\/")
