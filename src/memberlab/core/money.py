"""Money as integers in minor units (fen for CNY), never floats."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import get_currency_precision


@lru_cache(maxsize=64)
def minor_digits(currency: str) -> int:
    """Digits after the decimal point: CNY 2, JPY 0, KWD 3."""
    return get_currency_precision(currency)


def to_minor(amount: Decimal | int | str, currency: str = "CNY") -> int:
    """``Decimal("12.34")`` CNY -> ``1234``. Raises ``ValueError`` if it has finer precision."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {amount!r}") from exc
    scaled = value.scaleb(minor_digits(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency} allows")
    return int(scaled)


def from_minor(minor: int, currency: str = "CNY") -> Decimal:
    """``1234`` CNY -> ``Decimal("12.34")``."""
    return Decimal(minor).scaleb(-minor_digits(currency))


def points_value(points: int, value_per_point: Decimal, currency: str = "CNY") -> int:
    """What ``points`` are worth, in minor units, rounded half up."""
    value = (Decimal(points) * value_per_point).scaleb(minor_digits(currency))
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
