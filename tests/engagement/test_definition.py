"""The engagement file: the sample (modelled on the founding contract) is valid; every
problem of a broken one is named with its field and line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from memberlab.core.i18n import t
from memberlab.engagement.definition import (
    InvalidEngagement,
    content_hash,
    parse_definition_text,
    uscc_is_valid,
    validate_definition,
)

SAMPLE = (
    Path(__file__).parents[2]
    / "src"
    / "memberlab"
    / "engagement"
    / "samples"
    / "membership_consulting.yaml"
)
TEXT = SAMPLE.read_text(encoding="utf-8")
DATA = yaml.safe_load(TEXT)


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidEngagement) as caught:
        validate_definition(data)
    return [(e.loc, e.key) for e in caught.value.errors]


def changed(**edits: Any) -> dict[str, Any]:
    data = copy.deepcopy(DATA)
    for path, value in edits.items():
        *parents, last = path.split("__")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value
    return data


def test_the_sample_is_valid_and_its_hash_is_stable() -> None:
    spec = parse_definition_text(TEXT)

    assert spec.contract_number == "ML-2026-001"
    assert [i.code for i in spec.payment.instalments] == ["advance", "design", "final"]
    assert sum(s.weight for s in spec.standards) == 100
    assert content_hash(spec) == content_hash(parse_definition_text(TEXT))
    assert content_hash(spec) != content_hash(
        validate_definition(changed(title={"zh": "新", "en": "New"}))
    )


def test_unified_social_credit_codes_carry_a_check_character() -> None:
    assert uscc_is_valid("91350100M000100Y43")  # a published example
    assert uscc_is_valid("91310115MA1H7Q8L3W")
    assert not uscc_is_valid("91310115MA1H7Q8L3X")  # one character off
    assert not uscc_is_valid("91310115MA1H7Q8L3")  # 17 characters
    assert not uscc_is_valid("91310115MA1H7Q8LIW")  # I is not used (nor O, S, V, Z)
    assert problems(changed(parties__client__credit_code="91310115MA1H7Q8L3X")) == [
        ("parties.client.credit_code", "engagement.v.credit_code")
    ]


def test_dates_out_of_order_are_named() -> None:
    assert problems(changed(term__end="2025-12-31")) == [
        ("term.end", "engagement.v.after"),
        # and so every date in the term is outside it
        *[(f"milestones[{i}].planned", "engagement.v.within_term") for i in range(5)],
        *[(f"deliverables[{i}].due", "engagement.v.within_term") for i in range(8)],
        *[(f"training[{i}].planned", "engagement.v.within_term") for i in range(2)],
    ]
    # design accepted before the diagnosis it depends on
    assert problems(changed(milestones__2__planned="2026-03-01")) == [
        ("milestones[2].planned", "engagement.v.before_dependency")
    ]


def test_milestones_that_depend_on_each_other_in_a_circle() -> None:
    found = problems(changed(milestones__0__depends_on=["final_acceptance"]))
    assert ("milestones[0].depends_on", "engagement.v.cycle") in found


def test_instalments_must_add_up_to_the_fee() -> None:
    found = problems(changed(payment__instalments__2__portion=20))
    assert [loc for loc, _ in found] == ["payment.instalments"]
    with pytest.raises(InvalidEngagement) as caught:
        validate_definition(changed(payment__instalments__2__portion=20))
    assert "90" in caught.value.errors[0].message("en")


def test_references_codes_and_weights() -> None:
    data = changed(deliverables__3__milestone="nowhere", standards__2__weight=20)
    data["deliverables"].append(copy.deepcopy(data["deliverables"][0]))
    found = problems(data)
    assert ("deliverables[3].milestone", "engagement.v.unknown") in found
    assert ("deliverables[0].code", "engagement.v.duplicate") in found
    assert ("deliverables[8].code", "engagement.v.duplicate") in found
    assert ("standards", "engagement.v.weights") in found


def test_a_broken_file_names_the_line_in_both_languages() -> None:
    text = TEXT.replace("credit_code: 91440300MA5G2K9T0G", "credit_code: 91440300MA5G2K9T0X")
    with pytest.raises(InvalidEngagement) as caught:
        parse_definition_text(text)
    (error,) = caught.value.errors
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "91440300MA5G2K9T0X" in row)
    assert (error.loc, error.line) == ("parties.provider.credit_code", line)
    assert "不是有效的统一社会信用代码" in error.message("zh-CN")
    assert "is not a valid unified social credit code" in error.message("en")
    assert t("engagement.definition.invalid", "zh-CN") == "项目合同数据无效。"
    with pytest.raises(InvalidEngagement):
        parse_definition_text("   ")
    with pytest.raises(InvalidEngagement):
        parse_definition_text("contract_number: [unclosed")
