"""Messages for people, kept as a catalog key and its parameters until they are shown.

Computed dates, penalty breakdowns and warnings carry ``Message`` objects rather than text,
so the same result reads in zh-CN or en. A parameter may itself be a ``Message`` (a holiday's
name, say) or a list of them; both are rendered in the language asked for.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from memberlab.core.i18n import Language, catalogs, current_language, t

__all__ = ["Message", "holiday_label", "msg"]


class Message(BaseModel):
    """A catalog key with its parameters: ``Message(key="engagement.rule.working_days", ...)``."""

    model_config = ConfigDict(frozen=True)

    key: str
    params: dict[str, Any] = {}

    def render(self, lang: Language | None = None) -> str:
        lang = lang or current_language()
        return t(self.key, lang, **{k: _render(v, lang) for k, v in self.params.items()})

    def __str__(self) -> str:
        return self.render("en")


def msg(key: str, /, **params: Any) -> Message:
    return Message(key=key, params=params)


def _render(value: Any, lang: Language) -> Any:
    if isinstance(value, Message):
        return value.render(lang)
    if isinstance(value, (list, tuple)):
        separator = t("engagement.list_separator", lang)
        return separator.join(str(_render(item, lang)) for item in value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def holiday_label(name: str) -> Message | str:
    """A holiday's name: the catalog's text for a known one, the user's own text otherwise."""
    key = f"engagement.holiday.{name}"
    if key in catalogs()["en"]:
        return Message(key=key)
    return name
