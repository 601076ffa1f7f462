"""The exact-integer points arithmetic gives the same numbers as the Decimal reference."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from memberlab.datasets.demo import sample_program_text
from memberlab.programs import rules
from memberlab.programs.schema import ProgramDefinition, Stacking
from memberlab.programs.validation import parse_program_text


def variants(name: str) -> list[ProgramDefinition]:
    program = parse_program_text(sample_program_text(name))
    earning = program.earning
    return [
        program,
        program.model_copy(
            update={
                "earning": earning.model_copy(
                    update={"stacking": Stacking.ALL, "tier_multiplier_stacks": False}
                )
            }
        ),
        # a rate that is no finite decimal: the reference arithmetic is used as it is
        program.model_copy(
            update={
                "earning": earning.model_copy(
                    update={"base": earning.base.model_copy(update={"per": Decimal(3)})}
                )
            }
        ),
    ]


@pytest.mark.parametrize("name", ["teahouse", "department_store"])
def test_scaled_points_equal_the_decimal_reference(name: str) -> None:
    rng = random.Random(name)
    for program in variants(name):
        compiled = rules._compiled(program)
        categories = ["tea", "seasonal", "gift_card", "cosmetics", "food", "other"]
        for _ in range(3000):
            lines = tuple(
                rules.PurchaseLine(
                    f"sku{rng.randrange(5)}",
                    rng.choice(categories),
                    rng.randint(1, 3),
                    rng.choice([0, 1, 99, rng.randint(1, 10**6), rng.randint(1, 10**9)]),
                )
                for _ in range(rng.randint(1, 4))
            )
            gross = sum(line.amount for line in lines)
            at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(10**6))
            event = rules.Purchase(
                "o",
                at,
                rng.choice(["store", "app", "mini_program"]),
                None,
                lines,
                rng.randint(0, gross),
            )
            state = rules.new_member_state(program, enrolled_at=at)
            state.tier = rng.choice(program.tiers).code
            if program.paid_plans and rng.random() < 0.5:
                state.plan_code = program.paid_plans[0].code
                state.plan_until = at + timedelta(days=1)
            paid = rules.allocate(event.amount_paid, [line.amount for line in lines])
            excluded = [
                line.category in compiled.ex_categories or event.channel in compiled.ex_channels
                for line in lines
            ]
            day = at.astimezone(compiled.zone).date()
            reference = rules._points_decimal(program, state, event, paid, excluded, day)
            if compiled.exact_points is None:
                continue
            scaled = rules._points_scaled(compiled, state, event, paid, excluded, day)
            assert scaled is not None
            rounded, per_rule, per_line, scale = scaled
            assert rounded == reference[0]
            assert {k: rules._as_decimal(v, scale) for k, v in per_rule.items()} == reference[1]
            assert [rules._as_decimal(v, scale) for v in per_line] == reference[2]
    assert rules._compiled(variants(name)[2]).exact_points is None
