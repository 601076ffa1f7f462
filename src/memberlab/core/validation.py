"""Turning pydantic's validation errors into ``FieldError``s with our own bilingual messages.

Shared by program files, API bodies and importers, so a bad field reads the same everywhere:
``tiers[2].threshold: must be above 0`` / ``tiers[2].threshold: 必须大于 0``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, get_args

from pydantic import BaseModel

from memberlab.core.errors import FieldError

_KEYS = {
    "missing": "core.v.missing",
    "extra_forbidden": "core.v.unknown_field",
    "int_type": "core.v.integer",
    "int_parsing": "core.v.integer",
    "int_from_float": "core.v.integer",
    "decimal_type": "core.v.number",
    "decimal_parsing": "core.v.number",
    "float_type": "core.v.number",
    "float_parsing": "core.v.number",
    "decimal_max_places": "core.v.decimal_places",
    "decimal_max_digits": "core.v.max_digits",
    "decimal_whole_digits": "core.v.max_digits",
    "greater_than": "core.v.gt",
    "greater_than_equal": "core.v.ge",
    "less_than": "core.v.lt",
    "less_than_equal": "core.v.le",
    "string_type": "core.v.text",
    "string_too_short": "core.v.text_empty",
    "string_too_long": "core.v.text_too_long",
    "string_pattern_mismatch": "core.v.pattern",
    "bool_type": "core.v.boolean",
    "bool_parsing": "core.v.boolean",
    "enum": "core.v.choice",
    "literal_error": "core.v.choice",
    "list_type": "core.v.list",
    "model_type": "core.v.mapping",
    "model_attributes_type": "core.v.mapping",
    "dict_type": "core.v.mapping",
    "too_short": "core.v.too_few",
    "date_type": "core.v.date",
    "date_parsing": "core.v.date",
    "date_from_datetime_parsing": "core.v.date",
    "date_from_datetime_inexact": "core.v.date",
    "datetime_type": "core.v.datetime",
    "datetime_parsing": "core.v.datetime",
    "datetime_from_date_parsing": "core.v.datetime",
    "json_invalid": "core.v.json",
}


def format_path(loc: Sequence[str | int]) -> str:
    """``("tiers", 2, "threshold")`` -> ``tiers[2].threshold``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_path(path: str) -> list[str | int]:
    """The inverse of ``format_path``."""
    parts: list[str | int] = []
    for piece in path.replace("[", ".[").split("."):
        if not piece:
            continue
        parts.append(int(piece[1:-1]) if piece.startswith("[") else piece)
    return parts


def field_error(
    error: Mapping[str, Any],
    *,
    model: type[BaseModel] | None = None,
    pattern_keys: Mapping[str, str] | None = None,
    drop_loc_prefix: int = 0,
) -> FieldError:
    """One pydantic error as a ``FieldError``.

    ``model`` lets an unknown field suggest the field it most likely meant; ``pattern_keys``
    gives friendlier messages for known regular expressions.
    """
    kind = error["type"]
    loc = tuple(error["loc"])[drop_loc_prefix:]
    ctx = {k: _plain(v) for k, v in (error.get("ctx") or {}).items()}
    key = _KEYS.get(kind, "core.v.invalid")
    params: dict[str, Any] = dict(ctx)
    if kind == "string_pattern_mismatch" and pattern_keys:
        key = pattern_keys.get(ctx.get("pattern", ""), key)
    if kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", ""))
        params["expected"] = expected.replace("'", "").replace(" or ", ", ")
    if kind == "too_short":
        params["min_length"] = ctx.get("min_length", 1)
    if kind == "json_invalid":
        params["detail"] = ctx.get("error", "")
    if kind == "extra_forbidden" and model is not None:
        suggestion = closest_field(model, loc)
        if suggestion:
            key = "core.v.unknown_field_suggest"
            params["suggestion"] = suggestion
    if key == "core.v.invalid":
        params["detail"] = error.get("msg", kind)
    value = error.get("input")
    if kind != "missing":
        params.setdefault("value", value if _is_scalar(value) else type(value).__name__)
    return FieldError(format_path(loc), key, params)


def field_errors(
    errors: Sequence[Mapping[str, Any]],
    *,
    model: type[BaseModel] | None = None,
    pattern_keys: Mapping[str, str] | None = None,
    drop_loc_prefix: int = 0,
) -> list[FieldError]:
    return [
        field_error(e, model=model, pattern_keys=pattern_keys, drop_loc_prefix=drop_loc_prefix)
        for e in errors
    ]


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc`` (following lists and optionals)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = _model_in(info.annotation)
    return current


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def field_annotation(model: type[BaseModel], loc: Sequence[str | int]) -> Any:
    """The model (or type) expected at ``loc``, unwrapping lists and optionals."""
    holder = _model_at(model, loc)
    if holder is None or not loc:
        return None
    last = loc[-1] if isinstance(loc[-1], str) else (loc[-2] if len(loc) > 1 else None)
    if not isinstance(last, str) or last not in holder.model_fields:
        return None
    return _model_in(holder.model_fields[last].annotation)


def closest_field(model: type[BaseModel], loc: Sequence[str | int]) -> str | None:
    """For a misspelt field, the known field it most likely meant."""
    if not loc or not isinstance(loc[-1], str):
        return None
    holder = _model_at(model, loc)
    if holder is None:
        return None
    matches = difflib.get_close_matches(loc[-1], list(holder.model_fields), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, Decimal, bool)) or value is None


def _plain(value: Any) -> Any:
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)
