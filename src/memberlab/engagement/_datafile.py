"""Reading the engagement's YAML data files (holiday tables, LPR table, overrides).

A file is parsed into a pydantic model; every problem becomes a ``FieldError`` naming the
field (``years.2027.holidays[0].first``) and the line of the file where it is written, so a
person can open the file and fix it. Dates are left as text for pydantic to parse, so an
impossible date such as ``2026-02-30`` is reported at its field instead of escaping the YAML
loader.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.validation import field_error

M = TypeVar("M", bound=BaseModel)

Loc = tuple[str | int, ...]


class DataFileError(InvalidInput):
    """A data file that cannot be used; ``errors`` lists each problem with its line."""

    key = "engagement.file.invalid"


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses a key written twice and keeps dates as text."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def locate(node: yaml.Node | None, loc: Sequence[str | int]) -> tuple[str, int | None]:
    """The readable path of ``loc`` and the 1-based line where the file writes it.

    Mapping keys are joined with dots (``years.2027``), list positions in brackets
    (``holidays[0]``). A path that goes past what the file contains stops at the nearest
    existing parent, whose line is given.
    """
    path = ""
    line = node.start_mark.line + 1 if node is not None else None
    current = node
    for part in loc:
        child = None
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                if str(getattr(key_node, "value", None)) == str(part):
                    child = value_node
                    line = key_node.start_mark.line + 1
                    break
            step = f".{part}" if path else str(part)
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(current.value):
                child = current.value[part]
                line = child.start_mark.line + 1
            step = f"[{part}]"
        else:
            step = f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        path += step
        current = child
    return path, line


def problem(node: yaml.Node | None, loc: Loc, key: str, **params: Any) -> FieldError:
    """A ``FieldError`` at ``loc`` in the file whose node tree is ``node``."""
    path, line = locate(node, loc)
    return FieldError(path, key, params, line=line)


def parse_data_file(text: str, model: type[M], *, source: str) -> tuple[M, yaml.Node | None]:
    """Parse ``text`` into ``model``; raise ``DataFileError`` listing every problem.

    Returns the model and the YAML node tree, so later checks can point at lines too.
    """
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise DataFileError(
            file=source,
            errors=[
                FieldError(
                    "",
                    "engagement.file.yaml_syntax",
                    {"line": line, "column": column, "problem": exc.problem or str(exc)},
                    line=line,
                )
            ],
        ) from None
    except yaml.YAMLError as exc:  # pragma: no cover - every parser error is marked
        raise DataFileError(
            file=source,
            errors=[
                FieldError(
                    "",
                    "engagement.file.yaml_syntax",
                    {"line": "?", "column": "?", "problem": str(exc)},
                )
            ],
        ) from None
    if not isinstance(data, dict):
        raise DataFileError(
            file=source, errors=[FieldError("", "engagement.file.not_mapping", {}, line=1)]
        )
    try:
        return model.model_validate(data), node
    except ValidationError as exc:
        raise DataFileError(file=source, errors=list(_field_errors(exc, model, node))) from None


def _field_errors(
    exc: ValidationError, model: type[BaseModel], node: yaml.Node | None
) -> Iterable[FieldError]:
    for error in exc.errors():
        base = field_error(error, model=model)
        path, line = locate(node, tuple(error["loc"]))
        yield FieldError(path, base.key, base.params, line=line)
