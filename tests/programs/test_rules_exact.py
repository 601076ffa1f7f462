"""The exact-integer points arithmetic gives the same numbers as the Decimal reference."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# --- allocate: shares of a total in proportion, exactly -----------------------------------------


def largest_remainder(total: int, weights: list) -> list[int]:
    """The reference, in fractions: floors, then one more to the largest remainders (equal
    remainders: the first weight first)."""
    weight_sum = sum(Fraction(w) for w in weights)
    if weight_sum == 0:
        return [total] + [0] * (len(weights) - 1) if total else [0] * len(weights)
    exact = [total * Fraction(w) / weight_sum for w in weights]
    floors = [math.floor(e) for e in exact]
    order = sorted(range(len(weights)), key=lambda i: (floors[i] - exact[i], i))
    for i in order[: total - sum(floors)]:
        floors[i] += 1
    return floors


# negative weights too: a multiplier below 1 gives a rule negative extra points
whole_weights = st.lists(st.integers(min_value=-(10**12), max_value=10**12), min_size=1, max_size=6)
decimal_weights = st.lists(
    st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False), min_size=1, max_size=6
)
mixed_weights = st.lists(
    st.one_of(
        st.integers(min_value=-(10**6), max_value=10**6),
        st.decimals(min_value=-(10**6), max_value=10**6, allow_nan=False, allow_infinity=False),
        st.sampled_from([Decimal("1E+3"), Decimal("2.5E-7"), Decimal("-0.000")]),
    ),
    min_size=1,
    max_size=6,
)


@given(total=st.integers(min_value=-(10**9), max_value=10**9), weights=whole_weights)
def test_allocate_gives_the_largest_remainder_shares_of_whole_weights(
    total: int, weights: list[int]
) -> None:
    shares = rules.allocate(total, weights)
    assert shares == largest_remainder(total, weights)
    assert sum(shares) == total


@given(total=st.integers(min_value=0, max_value=10**9), weights=decimal_weights)
def test_allocate_gives_decimal_weights_the_shares_of_the_same_weights_scaled(
    total: int, weights: list[Decimal]
) -> None:
    """As the points rules pass per-rule points: scaled to integers, or as Decimals."""
    scaled = [int(w.scaleb(4)) for w in weights]
    assert rules.allocate(total, weights) == rules.allocate(total, scaled)
    assert rules.allocate(total, weights) == largest_remainder(total, weights)


@given(total=st.integers(min_value=-(10**9), max_value=10**9), weights=mixed_weights)
def test_allocate_takes_ints_and_decimals_of_any_exponent_together(
    total: int, weights: list
) -> None:
    shares = rules.allocate(total, weights)
    assert shares == largest_remainder(total, weights)
    assert sum(shares) == total


def test_allocate_breaks_equal_remainders_in_favour_of_the_first() -> None:
    assert rules.allocate(1, [1, 1]) == [1, 0]
    assert rules.allocate(10, [Decimal(1), Decimal(1), Decimal(1)]) == [4, 3, 3]
    assert rules.allocate(2, [Decimal("1.5"), 3, Decimal("1.5")]) == [1, 1, 0]


def test_allocate_is_exact_beyond_28_digits() -> None:
    """Decimal division rounds to 28 digits: these shares once summed to 45 less than the
    total."""
    total = 807010636748837617260213135188
    shares = rules.allocate(total, [7, 9])
    assert shares == largest_remainder(total, [7, 9])
    assert sum(shares) == total
