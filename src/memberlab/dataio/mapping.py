"""Which column of a file holds which field: built-in synonyms, overridable by a mapping file.

A mapping file is YAML (or JSON) naming, for each field, the header that holds it::

    member_id: 会员卡号(新)
    amount: 应收-优惠
    store: null        # a column that looks like a store but must be ignored

Fields the file does not name are still found by their synonyms.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.dataio.kinds import ImportKind

_BRACKETED = re.compile(r"[(\[（【][^)\]）】]*[)\]）】]")
_SEPARATORS = re.compile(r"[\s_\-:：/.·]+")


def header_key(header: str) -> str:
    """The comparable form of a header: ``实付金额（元）`` -> ``实付金额``, ``Amount_Paid`` ->
    ``amountpaid``."""
    text = unicodedata.normalize("NFKC", header).strip().lower()
    without_units = _BRACKETED.sub("", text)
    text = without_units if without_units.strip() else text
    return _SEPARATORS.sub("", text.lstrip("\ufeff"))


@dataclass
class ColumnMapping:
    """The outcome of mapping a file's headers onto a kind's fields."""

    kind: str
    columns: dict[str, str] = field(default_factory=dict)  # field -> header
    ignored: list[str] = field(default_factory=list)  # headers no field took
    missing: list[str] = field(default_factory=list)  # required fields not found

    def as_dict(self) -> dict[str, object]:
        return {"columns": dict(self.columns), "ignored": list(self.ignored)}


def read_mapping_file(path: Path) -> dict[str, str | None]:
    """A mapping file's ``field: header`` pairs; the file's problems name its line."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(
            errors=[FieldError("mapping", "dataio.mapping.unreadable", {"reason": str(error)})]
        ) from None
    except yaml.YAMLError as error:
        line = getattr(getattr(error, "problem_mark", None), "line", None)
        raise InvalidInput(
            errors=[
                FieldError(
                    "mapping",
                    "dataio.mapping.not_yaml",
                    {"reason": str(getattr(error, "problem", error))},
                    line=None if line is None else line + 1,
                )
            ]
        ) from None
    if isinstance(loaded, dict) and isinstance(loaded.get("columns"), dict):
        loaded = loaded["columns"]
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in loaded.items()
    ):
        raise InvalidInput(errors=[FieldError("mapping", "dataio.mapping.shape")])
    return loaded


# "1、", "Q2.", "第3题：" in front of a survey tool's question
_QUESTION_NUMBER = re.compile(r"^\s*(?:q?\d+[、.．:：)）]|第\d+题[、.．:：]?)\s*", re.IGNORECASE)
# when a question mentions an attribute and satisfaction ("您对门店卫生满意吗"), the
# attribute wins: ratings are matched before the overall scores
_QUESTION_ORDER = ("member_id", "nps", "ces")


def _match_questions(
    headers: list[str],
    kind: ImportKind,
    overrides: dict[str, str | None],
    mapping: ColumnMapping,
    taken: set[str],
) -> None:
    """Fields still without a column, found by the patterns of the question asked."""
    specs = sorted(
        (s for s in kind.fields if s.patterns and s.name not in mapping.columns),
        key=lambda s: (
            _QUESTION_ORDER.index(s.name) if s.name in _QUESTION_ORDER else len(_QUESTION_ORDER),
            s.name in ("csat", "comment"),
        ),
    )
    for spec in specs:
        if spec.name in overrides:
            continue
        for header in headers:
            if header in taken or header in mapping.columns.values():
                continue
            question = header_key(_QUESTION_NUMBER.sub("", header))
            if any(re.search(pattern, question) for pattern in spec.patterns):
                mapping.columns[spec.name] = header
                taken.add(header)
                break


def map_columns(
    headers: list[str], kind: ImportKind, overrides: dict[str, str | None] | None = None
) -> ColumnMapping:
    """Find each field's column: first the overrides, then the synonyms in order of preference.

    Raises ``InvalidInput`` naming the overrides that name no field or no column.
    """
    overrides = dict(overrides or {})
    names = {spec.name for spec in kind.fields}
    errors: list[FieldError] = []
    for name, header in overrides.items():
        if name not in names:
            params = {"field": name, "choices": ", ".join(sorted(names))}
            errors.append(FieldError(f"mapping.{name}", "dataio.mapping.unknown_field", params))
        elif header is not None and header not in headers:
            close = difflib.get_close_matches(header, headers, n=1)
            params = {"header": header, "suggestion": close[0] if close else "-"}
            errors.append(FieldError(f"mapping.{name}", "dataio.mapping.no_such_column", params))
    if errors:
        raise InvalidInput(errors=errors)

    mapping = ColumnMapping(kind=kind.name)
    taken = {header for header in overrides.values() if header is not None}
    by_key: dict[str, str] = {}
    for header in headers:
        by_key.setdefault(header_key(header), header)
    for spec in kind.fields:
        if spec.name in overrides:
            header = overrides[spec.name]
            if header is not None:
                mapping.columns[spec.name] = header
            continue
        for synonym in (spec.name, *spec.synonyms):
            header = by_key.get(header_key(synonym))
            if header is not None and header not in taken:
                mapping.columns[spec.name] = header
                taken.add(header)
                break
    _match_questions(headers, kind, overrides, mapping, taken)
    mapping.ignored = [h for h in headers if h not in mapping.columns.values()]
    mapping.missing = [s.name for s in kind.fields if s.required and s.name not in mapping.columns]
    return mapping


def suggest_header(field_name: str, kind: ImportKind, headers: list[str]) -> str | None:
    """The header most like a missing field's synonyms, to suggest in the error."""
    spec = kind.field(field_name)
    keys = {header_key(h): h for h in headers}
    for synonym in (spec.name, *spec.synonyms):
        close = difflib.get_close_matches(header_key(synonym), list(keys), n=1, cutoff=0.75)
        if close:
            return keys[close[0]]
    return None
