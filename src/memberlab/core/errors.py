"""Typed domain errors, rendered in one place as RFC 9457 problems and CLI messages.

A domain error names a message key (``members.not_found``) and its parameters; the text is
produced in the caller's language only when the error is shown. Field-level problems
(``FieldError``) name the path of the bad field (``tiers[2].threshold``) so every
validation message says where and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memberlab.core.i18n import Language, t


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: where it is, and a message key with its parameters."""

    loc: str
    key: str
    params: dict[str, Any] = field(default_factory=dict)
    line: int | None = None  # where in a source file, when the input was a file

    def message(self, lang: Language | None = None) -> str:
        return t(self.key, lang, **self.params)

    def render(self, lang: Language | None = None) -> str:
        text = self.message(lang)
        return f"{self.loc}: {text}" if self.loc else text

    def as_dict(self, lang: Language | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.loc, "code": self.key, "message": self.message(lang)}
        if self.line is not None:
            out["line"] = self.line
        return out


class MemberLabError(Exception):
    """Base of every error the user is meant to see. Subclasses set ``status`` and ``key``."""

    status: int = 400
    key: str = "core.error.bad_request"
    title_key: str = "core.title.bad_request"

    def __init__(
        self,
        key: str | None = None,
        /,
        *,
        errors: list[FieldError] | None = None,
        **params: Any,
    ) -> None:
        self.key = key or type(self).key
        self.params = params
        self.errors = errors or []
        super().__init__(self.key)

    def __str__(self) -> str:
        return self.render("en")

    @property
    def code(self) -> str:
        return self.key

    def message(self, lang: Language | None = None) -> str:
        return t(self.key, lang, **self.params)

    def title(self, lang: Language | None = None) -> str:
        return t(self.title_key, lang)

    def render(self, lang: Language | None = None) -> str:
        """The whole message as a person reads it: the summary, then one line per field."""
        lines = [self.message(lang)]
        lines.extend(f"  {error.render(lang)}" for error in self.errors)
        return "\n".join(lines)


class InvalidInput(MemberLabError):
    status = 422
    key = "core.error.invalid_input"
    title_key = "core.title.invalid_input"


class NotFound(MemberLabError):
    status = 404
    key = "core.error.not_found"
    title_key = "core.title.not_found"


class Conflict(MemberLabError):
    status = 409
    key = "core.error.conflict"
    title_key = "core.title.conflict"


class Unauthenticated(MemberLabError):
    status = 401
    key = "core.error.unauthenticated"
    title_key = "core.title.unauthenticated"


class Forbidden(MemberLabError):
    status = 403
    key = "core.error.forbidden"
    title_key = "core.title.forbidden"
