"""Reading and checking program files.

``parse_program_text`` turns YAML or JSON text into a ``ProgramDefinition`` or raises
``InvalidProgram`` listing *every* problem found, each as ``path: reason`` (for example
``tiers[2].threshold: must be above tiers[1].threshold (3000)``) in zh-CN or en, with the
line of the file where the YAML places it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, available_timezones

import yaml
from babel.numbers import list_currencies
from pydantic import BaseModel, ValidationError

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.validation import field_annotation, field_errors, parse_path
from memberlab.programs.schema import (
    BonusType,
    ExpiryMode,
    GrowthSourceType,
    LocalText,
    MultiplierType,
    ProgramDefinition,
    QualifyingMeasure,
    ReviewSchedule,
    RewardType,
    WindowType,
)


class InvalidProgram(InvalidInput):
    key = "programs.invalid"


# --- reading -----------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping with the same key twice (YAML allows it silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Dates stay text for pydantic to parse: an impossible date such as 2026-02-30 then gets a
# field error with its path instead of escaping the YAML loader as a bare ValueError.
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_document(text: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML (JSON is YAML too) into data, and keep the node tree for line numbers."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = exc.problem or str(exc)
        if problem.startswith("duplicate key "):
            error = FieldError(
                "",
                "programs.v.duplicate_key",
                {"key": problem[len("duplicate key ") :].strip("'\""), "line": line},
                line=line,
            )
        else:
            error = FieldError(
                "",
                "programs.v.yaml_syntax",
                {"line": line, "column": column, "problem": problem},
                line=line,
            )
        raise InvalidProgram(errors=[error]) from None
    except yaml.YAMLError as exc:
        raise InvalidProgram(
            errors=[
                FieldError(
                    "", "programs.v.yaml_syntax", {"line": "?", "column": "?", "problem": str(exc)}
                )
            ]
        ) from None
    return data, node


def line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the YAML node at ``loc``, or of its nearest existing parent."""
    if node is None:
        return None
    current = node
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(current, yaml.MappingNode) and isinstance(part, str):
            for key_node, value_node in current.value:
                if getattr(key_node, "value", None) == part:
                    child = value_node
                    line = key_node.start_mark.line + 1  # where the user wrote the key
                    break
        elif (
            isinstance(current, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(current.value)
        ):
            child = current.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        current = child
    return line


# --- structural errors (pydantic) ------------------------------------------------------------

_PATTERN_KEYS = {
    r"^[a-z][a-z0-9_]{0,63}$": "programs.v.code_pattern",
    r"^[A-Z]{3}$": "programs.v.currency_pattern",
}


# --- semantic checks ---------------------------------------------------------------------


def _duplicates(items: Iterable[Any], path: str, field: str = "code") -> list[FieldError]:
    errors: list[FieldError] = []
    first_at: dict[Any, int] = {}
    for index, item in enumerate(items):
        value = getattr(item, field)
        if isinstance(value, StrEnum):
            value = value.value
        if value in first_at:
            errors.append(
                FieldError(
                    f"{path}[{index}].{field}",
                    "programs.v.duplicate",
                    {"value": value, "other": f"{path}[{first_at[value]}].{field}"},
                )
            )
        else:
            first_at[value] = index
    return errors


def _fmt(value: Decimal | int) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return str(value)


def _depends(loc: str, kind: str, field: str, value: StrEnum) -> FieldError:
    """``loc`` is required (``kind="required_for"``) or out of place (``"not_for"``) because
    ``field`` has ``value``."""
    return FieldError(loc, f"programs.v.{kind}", {"field": field, "mode": value.value})


def semantic_errors(program: ProgramDefinition) -> list[FieldError]:
    """Every rule that relates one field to another. Empty for a sound program."""
    errors: list[FieldError] = []
    add = errors.append

    if program.currency not in _currencies():
        add(FieldError("currency", "programs.v.currency_pattern", {"value": program.currency}))
    if program.timezone not in _timezones():
        add(FieldError("timezone", "programs.v.timezone", {"value": program.timezone}))

    expiry = program.points.expiry
    needs_months = expiry.mode in (
        ExpiryMode.MONTHS_AFTER_EARNING,
        ExpiryMode.END_OF_MONTH_AFTER_MONTHS,
    )
    if needs_months and expiry.months is None:
        add(_depends("points.expiry.months", "required_for", "points.expiry.mode", expiry.mode))
    if not needs_months and expiry.months is not None:
        add(_depends("points.expiry.months", "not_for", "points.expiry.mode", expiry.mode))
    if expiry.mode is ExpiryMode.END_OF_NTH_YEAR and expiry.years is None:
        add(_depends("points.expiry.years", "required_for", "points.expiry.mode", expiry.mode))
    if expiry.mode is not ExpiryMode.END_OF_NTH_YEAR and expiry.years is not None:
        add(_depends("points.expiry.years", "not_for", "points.expiry.mode", expiry.mode))

    errors.extend(_duplicates(program.growth.sources, "growth.sources", "type"))
    for index, source in enumerate(program.growth.sources):
        path = f"growth.sources[{index}]"
        if source.type is GrowthSourceType.SPEND and source.per == 0:
            add(FieldError(f"{path}.per", "core.v.gt", {"gt": 0, "value": 0}))
        if source.type is GrowthSourceType.SPEND and source.per is None:
            add(_depends(f"{path}.per", "required_for", f"{path}.type", source.type))
        if source.type is not GrowthSourceType.SPEND and source.per is not None:
            add(_depends(f"{path}.per", "not_for", f"{path}.type", source.type))

    qualification = program.tier_qualification
    window = qualification.window
    if window.type is WindowType.ROLLING_MONTHS and window.months is None:
        add(
            _depends(
                "tier_qualification.window.months",
                "required_for",
                "tier_qualification.window.type",
                window.type,
            )
        )
    if window.type is not WindowType.ROLLING_MONTHS and window.months is not None:
        add(
            _depends(
                "tier_qualification.window.months",
                "not_for",
                "tier_qualification.window.type",
                window.type,
            )
        )
    review = qualification.review
    if review.schedule is ReviewSchedule.EVERY_N_MONTHS and review.months is None:
        add(
            _depends(
                "tier_qualification.review.months",
                "required_for",
                "tier_qualification.review.schedule",
                review.schedule,
            )
        )
    if review.schedule is not ReviewSchedule.EVERY_N_MONTHS and review.months is not None:
        add(
            _depends(
                "tier_qualification.review.months",
                "not_for",
                "tier_qualification.review.schedule",
                review.schedule,
            )
        )
    if qualification.measure is QualifyingMeasure.GROWTH and not program.growth.sources:
        add(FieldError("growth.sources", "programs.v.growth_without_sources"))

    errors.extend(_tier_errors(program))
    errors.extend(_earning_errors(program))

    payment = program.points_payment
    if payment.min_points % payment.step:
        add(
            FieldError(
                "points_payment.min_points",
                "programs.v.multiple_of",
                {"value": payment.min_points, "step": payment.step},
            )
        )

    errors.extend(_duplicates(program.paid_plans, "paid_plans"))
    for index, plan in enumerate(program.paid_plans):
        errors.extend(_duplicates(plan.benefits, f"paid_plans[{index}].benefits"))

    errors.extend(_duplicates(program.rewards, "rewards"))
    for index, reward in enumerate(program.rewards):
        path = f"rewards[{index}]"
        if reward.type is RewardType.COUPON and reward.coupon is None:
            add(_depends(f"{path}.coupon", "required_for", f"{path}.type", reward.type))
        if reward.type is not RewardType.COUPON and reward.coupon is not None:
            add(_depends(f"{path}.coupon", "not_for", f"{path}.type", reward.type))
        if reward.valid_from and reward.valid_until and reward.valid_until < reward.valid_from:
            add(
                FieldError(
                    f"{path}.valid_until",
                    "programs.v.date_order",
                    {"other": f"{path}.valid_from", "value": reward.valid_from.isoformat()},
                )
            )
    return errors


def _tier_errors(program: ProgramDefinition) -> list[FieldError]:
    errors = _duplicates(program.tiers, "tiers")
    tiers = program.tiers
    entry = tiers[0]
    if entry.threshold != 0:
        errors.append(FieldError("tiers[0].threshold", "programs.v.entry_threshold"))
    if entry.invitation_only:
        errors.append(FieldError("tiers[0].invitation_only", "programs.v.entry_invitation"))
    if entry.retention_threshold is not None:
        errors.append(FieldError("tiers[0].retention_threshold", "programs.v.entry_retention"))
    previous: tuple[int, Decimal] | None = (0, entry.threshold)
    for index in range(1, len(tiers)):
        tier = tiers[index]
        path = f"tiers[{index}]"
        if not tier.invitation_only and previous is not None and tier.threshold <= previous[1]:
            errors.append(
                FieldError(
                    f"{path}.threshold",
                    "programs.v.threshold_order",
                    {"other": f"tiers[{previous[0]}].threshold", "value": _fmt(previous[1])},
                )
            )
        if tier.retention_threshold is not None and tier.retention_threshold >= tier.threshold:
            errors.append(
                FieldError(
                    f"{path}.retention_threshold",
                    "programs.v.retention_below",
                    {"other": f"{path}.threshold", "value": _fmt(tier.threshold)},
                )
            )
        if not tier.invitation_only:
            previous = (index, tier.threshold)
    for index, tier in enumerate(tiers):
        errors.extend(_duplicates(tier.benefits, f"tiers[{index}].benefits"))
    return errors


_MULTIPLIER_NEEDS = {
    MultiplierType.CATEGORY: "categories",
    MultiplierType.SKU: "skus",
    MultiplierType.CHANNEL: "channels",
}


def _earning_errors(program: ProgramDefinition) -> list[FieldError]:
    earning = program.earning
    errors: list[FieldError] = []
    if earning.base.per <= 0:
        errors.append(FieldError("earning.base.per", "programs.v.gt", {"gt": 0}))
    errors.extend(_duplicates(earning.multipliers, "earning.multipliers"))
    for index, multiplier in enumerate(earning.multipliers):
        path = f"earning.multipliers[{index}]"
        needed = _MULTIPLIER_NEEDS.get(multiplier.type)
        if needed and not getattr(multiplier, needed):
            errors.append(
                _depends(f"{path}.{needed}", "required_for", f"{path}.type", multiplier.type)
            )
        if multiplier.type is MultiplierType.MEMBER_DAY and not (
            multiplier.days_of_month or multiplier.weekdays
        ):
            errors.append(FieldError(f"{path}.days_of_month", "programs.v.member_day_needs_days"))
        if multiplier.type is MultiplierType.DATE_RANGE:
            for bound in ("start", "end"):
                if getattr(multiplier, bound) is None:
                    errors.append(
                        _depends(f"{path}.{bound}", "required_for", f"{path}.type", multiplier.type)
                    )
        if multiplier.start and multiplier.end and multiplier.end < multiplier.start:
            errors.append(
                FieldError(
                    f"{path}.end",
                    "programs.v.date_order",
                    {"other": f"{path}.start", "value": multiplier.start.isoformat()},
                )
            )
    errors.extend(_duplicates(earning.bonuses, "earning.bonuses"))
    for index, bonus in enumerate(earning.bonuses):
        path = f"earning.bonuses[{index}]"
        if bonus.type is BonusType.SPEND_THRESHOLD and bonus.min_amount is None:
            errors.append(
                _depends(f"{path}.min_amount", "required_for", f"{path}.type", bonus.type)
            )
    caps = earning.caps
    ordered = [
        ("per_order", caps.per_order),
        ("per_day", caps.per_day),
        ("per_month", caps.per_month),
    ]
    present = [(name, value) for name, value in ordered if value is not None]
    for (low_name, low), (high_name, high) in pairwise(present):
        if high < low:
            errors.append(
                FieldError(
                    f"earning.caps.{high_name}",
                    "programs.v.cap_order",
                    {"other": f"earning.caps.{low_name}", "value": low},
                )
            )
    return errors


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


# --- the entry points --------------------------------------------------------------------


def validate_program_data(data: Any, node: yaml.Node | None = None) -> ProgramDefinition:
    """Check already-parsed data; raise ``InvalidProgram`` with every problem found."""
    if not isinstance(data, dict):
        raise InvalidProgram(errors=[FieldError("", "programs.v.not_a_mapping")])
    try:
        program = ProgramDefinition.model_validate(data)
    except ValidationError as exc:
        errors = [
            _bilingual_hint(error)
            for error in field_errors(
                exc.errors(include_url=False), model=ProgramDefinition, pattern_keys=_PATTERN_KEYS
            )
        ]
        raise InvalidProgram(errors=_with_lines(errors, node)) from None
    problems = semantic_errors(program)
    if problems:
        raise InvalidProgram(errors=_with_lines(problems, node))
    ZoneInfo(program.timezone)
    return program


def _bilingual_hint(error: FieldError) -> FieldError:
    """A name given as plain text instead of ``{zh: ..., en: ...}`` gets a message that says so."""
    if error.key != "core.v.mapping":
        return error
    if field_annotation(ProgramDefinition, parse_path(error.loc)) is LocalText:
        return FieldError(error.loc, "programs.v.local_text", error.params, line=error.line)
    return error


def _with_lines(errors: list[FieldError], node: yaml.Node | None) -> list[FieldError]:
    if node is None:
        return errors
    out = []
    for error in errors:
        loc = parse_path(error.loc)
        line = line_of(node, loc)
        out.append(FieldError(error.loc, error.key, error.params, line=line))
    return out


def parse_program_text(text: str) -> ProgramDefinition:
    """Parse and check the text of a program file (YAML or JSON)."""
    if not text.strip():
        raise InvalidProgram(errors=[FieldError("", "programs.v.empty_file")])
    data, node = load_document(text)
    if data is None:  # only comments
        raise InvalidProgram(errors=[FieldError("", "programs.v.empty_file")])
    return validate_program_data(data, node)


def canonical_json(program: ProgramDefinition) -> str:
    """The normalised content of a program: the same program always gives the same text."""
    return json.dumps(
        program.model_dump(mode="json"), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )


# --- other documents written like program files (surveys, engagements) ------------------

M = TypeVar("M", bound=BaseModel)


def validate_document(
    data: Any,
    node: yaml.Node | None,
    *,
    model: type[M],
    semantic: Callable[[M], list[FieldError]],
    error: type[InvalidInput],
    keys: str,
) -> M:
    """Check parsed data against ``model`` and then ``semantic``; raise ``error`` listing every
    problem, each with its line when the data came from a file. ``keys`` is the message prefix
    (``<keys>.not_a_mapping``)."""
    if not isinstance(data, dict):
        raise error(errors=[FieldError("", f"{keys}.not_a_mapping")])
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_url=False), model=model)
        raise error(errors=_with_lines(errors, node)) from None
    problems = semantic(parsed)
    if problems:
        raise error(errors=_with_lines(problems, node))
    return parsed


def parse_document(
    text: str,
    *,
    model: type[M],
    semantic: Callable[[M], list[FieldError]],
    error: type[InvalidInput],
    keys: str,
) -> M:
    """A document's text (YAML or JSON), checked as ``validate_document`` does; an empty text
    is ``<keys>.empty_file``."""
    if not text.strip():
        raise error(errors=[FieldError("", f"{keys}.empty_file")])
    try:
        data, node = load_document(text)
    except InvalidProgram as failure:  # the YAML reader of the program files
        raise error(errors=failure.errors) from None
    return validate_document(data, node, model=model, semantic=semantic, error=error, keys=keys)
