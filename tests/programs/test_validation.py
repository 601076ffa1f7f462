"""Program files: the samples are valid, and every broken file says what is wrong, and where.

Each file in ``broken/`` is a small program with one mistake (``several_mistakes`` has three);
``expected_messages.yaml`` holds what a person is told about it, in en and zh-CN, line by line
as ``FieldError.render(lang)`` gives it (``path: reason``).
"""

from __future__ import annotations

import json
from datetime import date
from importlib import resources
from pathlib import Path

import pytest
import yaml

from memberlab.programs.schema import ProgramDefinition
from memberlab.programs.validation import InvalidProgram, parse_program_text

HERE = Path(__file__).parent
BROKEN = HERE / "broken"
EXPECTED: dict[str, dict] = yaml.safe_load(
    (HERE / "expected_messages.yaml").read_text(encoding="utf-8")
)
SAMPLES = resources.files("memberlab.programs") / "samples"
LANGUAGES = ("en", "zh-CN")


def sample_text(name: str) -> str:
    return SAMPLES.joinpath(name).read_text(encoding="utf-8")


def broken_text(name: str) -> str:
    return (BROKEN / f"{name}.yaml").read_text(encoding="utf-8")


def errors_of(text: str) -> list:
    with pytest.raises(InvalidProgram) as caught:
        parse_program_text(text)
    return caught.value.errors


def line_number(text: str, snippet: str) -> int:
    """The 1-based number of the only line of ``text`` that contains ``snippet``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if snippet in line]
    assert len(found) == 1, f"{snippet!r} is on lines {found}"
    return found[0]


# --- (a) the samples ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", sorted(p.name for p in SAMPLES.iterdir() if p.name.endswith(".yaml"))
)
def test_sample_program_is_valid(name):
    program = parse_program_text(sample_text(name))

    assert isinstance(program, ProgramDefinition)
    assert program.entry_tier.threshold == 0


def test_both_samples_are_there():
    names = {p.name for p in SAMPLES.iterdir()}

    assert {"teahouse.yaml", "department_store.yaml"} <= names


def test_teahouse_sample_reads_as_intended():
    program = parse_program_text(sample_text("teahouse.yaml"))

    assert program.name.get("zh-CN") == "茶语会员计划"
    assert str(program.points.value_per_point) == "0.01"
    assert [tier.code for tier in program.tiers] == [
        "sprout",
        "green_leaf",
        "golden_bud",
        "imperial",
    ]
    assert program.tiers[-1].invitation_only
    member_day = next(m for m in program.earning.multipliers if m.type == "member_day")
    assert member_day.days_of_month == [8]
    assert program.earning.exclusions.categories == ["gift_card"]
    assert program.points_payment.points_per_unit == 100
    assert program.enrolment.enrol_on_first_purchase


def test_department_store_sample_reads_as_intended():
    program = parse_program_text(sample_text("department_store.yaml"))

    assert program.tier_qualification.measure == "spend"
    assert program.tier_qualification.review.schedule == "calendar_year_end"
    assert program.points.expiry.months == 24
    assert program.earning.stacking == "all"
    assert program.rewards[-1].valid_until == date(2026, 9, 25)


def test_calendar_year_window_needs_no_months_and_refuses_them():
    text = sample_text("department_store.yaml")
    program = parse_program_text(text)
    assert program.tier_qualification.window.type == "calendar_year"
    assert program.tier_qualification.window.months is None

    with_months = text.replace("type: calendar_year", "type: calendar_year\n    months: 12", 1)
    assert with_months != text
    with pytest.raises(InvalidProgram) as caught:
        parse_program_text(with_months)
    assert [e.render("en") for e in caught.value.errors] == [
        "tier_qualification.window.months: does not apply when "
        "tier_qualification.window.type is calendar_year"
    ]


# --- (b) the broken files ----------------------------------------------------------------------


def test_every_broken_file_has_its_expected_messages():
    files = {p.stem for p in BROKEN.glob("*.yaml")}

    assert files == set(EXPECTED)
    assert len(files) >= 15


def broken_cases():
    for name, case in sorted(EXPECTED.items()):
        for lang in LANGUAGES:
            yield pytest.param(name, lang, case[lang], id=f"{name}-{lang}")


@pytest.mark.parametrize(("name", "lang", "expected"), list(broken_cases()))
def test_broken_file_fails_with_its_messages(name, lang, expected):
    errors = errors_of(broken_text(name))

    assert [error.render(lang) for error in errors] == expected


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            "The program file is not valid:\n"
            "  tiers[2].threshold: must be above tiers[1].threshold (3000)",
        ),
        ("zh-CN", "会员计划文件无效：\n  tiers[2].threshold: 必须高于 tiers[1].threshold（3000）"),
    ],
)
def test_the_whole_message_lists_each_problem_under_a_summary(lang, expected):
    with pytest.raises(InvalidProgram) as caught:
        parse_program_text(broken_text("tier_order"))

    assert caught.value.render(lang) == expected


# --- (c) where in the file ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "loc", "snippet"),
    [
        ("tier_order", "tiers[2].threshold", "threshold: 1000"),
        ("bad_timezone", "timezone", "timezone: Asia/Beijing"),
        ("unknown_field_typo", "points.pending_day", "pending_day: 3"),
        ("member_day_bad_day", "earning.multipliers[0].days_of_month[0]", "days_of_month: [0, 8]"),
        ("coupon_without_terms", "rewards[0].coupon", "- code: coupon_5"),
        # a missing field: the mapping that lacks it
        ("missing_tier_name", "tiers[1].name", "- code: silver"),
        # every problem has its own line
        ("several_mistakes", "points.value_per_point", "value_per_point: free"),
        ("several_mistakes", "tiers[1].treshold", "treshold: 1000"),
        ("several_mistakes", "tiers[2].code", "code: Gold"),
        ("unknown_field_block", "tiers[1].benefit", "benefit:"),
        ("duplicate_key", "", "threshold: 2000"),
    ],
)
def test_error_points_at_the_line_of_the_file(name, loc, snippet):
    text = broken_text(name)

    errors = {error.loc: error for error in errors_of(text)}

    assert errors[loc].line == line_number(text, snippet)


# --- (d) JSON works as well as YAML --------------------------------------------------------------


def as_json(yaml_text: str) -> str:
    return json.dumps(yaml.safe_load(yaml_text), ensure_ascii=False, indent=2, default=str)


@pytest.mark.parametrize("name", ["teahouse.yaml", "department_store.yaml"])
def test_a_sample_written_as_json_is_the_same_program(name):
    from_yaml = parse_program_text(sample_text(name))

    from_json = parse_program_text(as_json(sample_text(name)))

    assert from_json == from_yaml


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_broken_json_file_gets_the_same_messages(lang):
    errors = errors_of(as_json(broken_text("tier_order")))

    assert [error.render(lang) for error in errors] == EXPECTED["tier_order"][lang]


def test_a_json_error_points_at_its_line():
    text = as_json(broken_text("tier_order"))

    (error,) = errors_of(text)

    assert error.line == line_number(text, '"threshold": 1000')


def test_a_json_file_with_a_key_twice_is_refused():
    text = '{"code": "mini",\n "code": "maxi"}'

    (error,) = errors_of(text)

    assert error.render("en") == "duplicate key “code” at line 2: each field may appear once"
    assert error.line == 2
