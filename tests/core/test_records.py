"""``core.records.frozen``: the class ``@dataclass(frozen=True, slots=True)`` makes, only
quicker to make."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field

import pytest

from memberlab.core.records import frozen


@frozen
class Line:
    sku: str
    quantity: int
    amount: int = 0
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceLine:
    sku: str
    quantity: int
    amount: int = 0
    note: str | None = None


@frozen
class Order:
    order_id: str
    lines: tuple[Line, ...]
    gross: int = -1

    def __post_init__(self) -> None:
        if self.gross < 0:
            object.__setattr__(self, "gross", sum(line.amount for line in self.lines))


def test_it_is_made_from_positions_keywords_and_defaults_as_a_dataclass_is() -> None:
    made = [Line("tea", 2), Line("tea", 2, 500), Line(sku="tea", quantity=2, note="gift")]
    reference = [
        ReferenceLine("tea", 2),
        ReferenceLine("tea", 2, 500),
        ReferenceLine(sku="tea", quantity=2, note="gift"),
    ]

    assert [dataclasses.astuple(x) for x in made] == [dataclasses.astuple(x) for x in reference]
    assert repr(made[1]) == "Line(sku='tea', quantity=2, amount=500, note=None)"
    assert [f.name for f in dataclasses.fields(Line)] == ["sku", "quantity", "amount", "note"]


def test_missing_or_unknown_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="quantity"):
        Line("tea")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="colour"):
        Line("tea", 1, colour="red")  # type: ignore[call-arg]


def test_it_cannot_be_changed() -> None:
    line = Line("tea", 2)

    with pytest.raises(dataclasses.FrozenInstanceError):
        line.quantity = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del line.sku  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        line.colour = "red"  # type: ignore[attr-defined]
    assert line == Line("tea", 2)


def test_equal_values_are_equal_and_hash_alike() -> None:
    assert Line("tea", 2) == Line("tea", 2)
    assert Line("tea", 2) != Line("tea", 3)
    assert len({Line("tea", 2), Line("tea", 2), Line("cake", 1)}) == 2


def test_post_init_runs() -> None:
    order = Order("O1", (Line("tea", 1, 300), Line("cake", 2, 700)))

    assert order.gross == 1000
    assert Order("O2", (), gross=5).gross == 5


def test_it_is_copied_replaced_and_pickled_as_it_was() -> None:
    order = Order("O1", (Line("tea", 1, 300),))

    assert pickle.loads(pickle.dumps(order)) == order
    assert copy.deepcopy(order) == order
    assert dataclasses.replace(order, order_id="O9") == Order("O9", order.lines, 300)


def test_only_plain_fields_are_taken() -> None:
    with pytest.raises(TypeError, match=r"Listed\.items"):

        @frozen
        class Listed:
            items: list[int] = field(default_factory=list)

    with pytest.raises(TypeError, match=r"Keyed\.key"):

        @frozen
        class Keyed:
            key: int = field(kw_only=True)
