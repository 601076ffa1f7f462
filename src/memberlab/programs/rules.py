"""The rule engine: what a program does to one member's state when something happens.

Every function here is a state transition of a single member, driven only by its arguments:
the program, the member's state, the event and the time it happens. No I/O, no clock. The
live ledger (``memberlab.ledger``) loads a member's state, calls these functions and persists
what they return; the simulator replays years of history through exactly the same functions
in memory. Tests prove that the two drivers agree.

The functions mutate the ``MemberState`` they are given into the state after the event and
return the ``Entry`` records (ledger transactions, each a list of double-entry ``Movement``s)
and ``Notice``s (tier changed, points expiring, ...) that the event caused.

Conventions
-----------
- Money is an ``int`` in minor units (fen); points and growth are ``int``.
- Times are aware datetimes; calendar rules (member day, caps per day, expiry dates,
  birthdays, calendar-year reviews) use the program's time zone.
- Points accounts: a member has ``available`` and ``pending``; the program's side has
  ``issued`` (earnings and bonuses), ``redeemed``, ``payment`` (points paying at checkout),
  ``expired``, ``returned`` (taken back on returns) and ``adjustment``. Every movement goes
  from one account to another, so the program's outstanding liability always equals the sum
  of member balances.
- A member's available balance = remaining points in released lots - debt. Lots never go
  below zero; what a return cannot take back becomes debt, repaid by later earnings.
"""

from __future__ import annotations

import bisect
import calendar
import decimal
import heapq
import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from memberlab.core.money import minor_digits
from memberlab.core.records import frozen
from memberlab.programs.schema import (
    Basis,
    Bonus,
    BonusType,
    ExpiryMode,
    GrowthSourceType,
    MultiplierType,
    ProgramDefinition,
    QualifyingMeasure,
    ReviewSchedule,
    Rounding,
    SpentPointsPolicy,
    Stacking,
    Tier,
    WindowType,
)

# --- accounts ------------------------------------------------------------------------------

AVAILABLE = "member.available"
PENDING = "member.pending"
ISSUED = "program.issued"
REDEEMED = "program.redeemed"
PAYMENT = "program.payment"
EXPIRED = "program.expired"
RETURNED = "program.returned"
ADJUSTMENT = "program.adjustment"
MEMBER_ACCOUNTS = (AVAILABLE, PENDING)

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


class RuleError(Exception):
    """An event the program does not allow. ``key`` names the message, ``params`` fill it."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


# --- state -----------------------------------------------------------------------------------


@dataclass
class Lot:
    """Points earned together: they become usable and expire together."""

    seq: int
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    amount: int
    remaining: int
    source: str
    released: bool
    reference: str | None = None
    noticed: bool = False  # an expiring-soon notice has been sent

    @property
    def expiry_key(self) -> datetime:
        return self.expires_at or FAR_FUTURE


@dataclass
class Activity:
    """What counts towards tiers, at one moment: growth, spend (minor units) and orders."""

    at: datetime
    growth: int = 0
    spend: int = 0
    orders: int = 0


@dataclass
class MemberState:
    """Everything the rules need to know about one member."""

    enrolled_at: datetime
    tier: str
    tier_since: datetime
    birthday: str | None = None  # "MM-DD"
    as_of: datetime | None = None  # time-based rules have been applied up to here
    tier_at_review: str | None = None  # the tier held after the last review
    last_review_at: datetime | None = None
    lots: list[Lot] = field(default_factory=list)
    debt: int = 0
    activity: list[Activity] = field(default_factory=list)
    lifetime_growth: int = 0
    lifetime_spend: int = 0
    lifetime_orders: int = 0
    cap_day: date | None = None
    cap_day_points: int = 0
    cap_month: tuple[int, int] | None = None
    cap_month_points: int = 0
    bonus_counts: dict[str, int] = field(default_factory=dict)  # "code:year" -> count
    plan_code: str | None = None
    plan_until: datetime | None = None
    next_seq: int = 1  # sequence for this member's entries and lots
    # Not persisted: before this moment nothing happens with time alone (None: unknown),
    # and before ``calendar_due`` no birthday or tier review falls.
    next_due: datetime | None = None
    calendar_due: datetime | None = None
    # Lots used up and released leave ``lots`` (as they would not be loaded from the store);
    # the driver that persists the state writes their last values, then clears this.
    retired: list[Lot] = field(default_factory=list)

    def take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    @property
    def available(self) -> int:
        return sum(lot.remaining for lot in self.lots if lot.released) - self.debt

    @property
    def pending(self) -> int:
        return sum(lot.remaining for lot in self.lots if not lot.released)

    def open_lots(self) -> list[Lot]:
        return [lot for lot in self.lots if lot.remaining > 0]


def new_member_state(
    program: ProgramDefinition, *, enrolled_at: datetime, birthday: str | None = None
) -> MemberState:
    entry = program.entry_tier.code
    return MemberState(
        enrolled_at=enrolled_at,
        tier=entry,
        tier_since=enrolled_at,
        birthday=birthday,
        as_of=enrolled_at,
        tier_at_review=entry,
    )


# --- events and effects --------------------------------------------------------------------


@frozen
class PurchaseLine:
    sku: str
    category: str
    quantity: int
    amount: int  # minor units, after line-level discounts


@frozen
class Purchase:
    order_id: str
    occurred_at: datetime
    channel: str
    store: str | None
    lines: tuple[PurchaseLine, ...]
    amount_paid: int  # money paid, minor units
    discount: int = 0
    points_used: int = 0
    coupon_code: str | None = None
    gross: int = -1  # the lines added up; computed when not given

    def __post_init__(self) -> None:
        if self.gross < 0:
            object.__setattr__(self, "gross", sum(line.amount for line in self.lines))


@dataclass
class LineRecord:
    """What one order line earned and what has been returned of it."""

    sku: str
    category: str
    quantity: int
    amount: int
    paid: int
    points: int
    growth: int
    returned_quantity: int = 0
    points_reversed: int = 0
    growth_reversed: int = 0
    paid_returned: int = 0


@dataclass
class OrderRecord:
    """A purchase as the ledger remembers it, for explanations and returns."""

    order_id: str
    occurred_at: datetime
    channel: str
    store: str | None
    amount_paid: int
    gross: int
    points_used: int
    lines: list[LineRecord]
    lot_seq: int | None
    points: int  # purchase points (after caps), excluding bonuses
    bonus_points: int
    bonus_code: str | None
    growth_order: int  # growth for the order itself (the per-order source)
    points_refunded: int = 0
    bonus_reversed: bool = False
    growth_order_reversed: bool = False
    spend_reversed: int = 0

    @property
    def fully_returned(self) -> bool:
        return all(line.returned_quantity >= line.quantity for line in self.lines)


@frozen
class ReturnLine:
    line: int  # index of the order line
    quantity: int


@frozen
class Return:
    return_id: str
    order_id: str
    occurred_at: datetime
    lines: tuple[ReturnLine, ...]


@frozen
class Movement:
    source: str
    destination: str
    amount: int
    lot: int | None = None


@dataclass
class Entry:
    """One ledger transaction of a member: balanced movements plus tier-relevant activity."""

    seq: int
    kind: str
    at: datetime
    reference: str | None = None
    movements: list[Movement] = field(default_factory=list)
    growth: int = 0
    spend: int = 0
    orders: int = 0
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def points(self) -> int:
        """Net change of the member's points (available + pending)."""
        net = 0
        for m in self.movements:
            if m.destination in MEMBER_ACCOUNTS and m.source not in MEMBER_ACCOUNTS:
                net += m.amount
            elif m.source in MEMBER_ACCOUNTS and m.destination not in MEMBER_ACCOUNTS:
                net -= m.amount
        return net


@frozen
class Notice:
    kind: str  # tier.changed, points.earned, points.expiring, redemption
    at: datetime
    payload: dict[str, Any]


@dataclass
class Outcome:
    entries: list[Entry] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    lots: list[Lot] = field(default_factory=list)  # lots created
    order: OrderRecord | None = None
    explanation: list[dict[str, Any]] = field(default_factory=list)
    main: Entry | None = None  # the entry of the event itself (purchase, return)

    def extend(self, other: Outcome) -> None:
        self.entries.extend(other.entries)
        self.notices.extend(other.notices)
        self.lots.extend(other.lots)

    @property
    def points(self) -> int:
        return sum(entry.points for entry in self.entries)

    @property
    def growth(self) -> int:
        return sum(entry.growth for entry in self.entries)


def _append(state: MemberState, outcome: Outcome, entry: Entry, *, first: bool = False) -> None:
    """Number an entry when it is kept (so that no-op entries use no sequence number)."""
    entry.seq = state.take_seq()
    if first:
        outcome.entries.insert(0, entry)
    else:
        outcome.entries.append(entry)


# --- calendar helpers ----------------------------------------------------------------------


@lru_cache(maxsize=32)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local(program: ProgramDefinition, moment: datetime) -> datetime:
    return moment.astimezone(_zone(program.timezone))


def local_midnight(program: ProgramDefinition, day: date) -> datetime:
    return midnight_in(program.timezone, day)


@lru_cache(maxsize=65536)
def midnight_in(zone: str, day: date) -> datetime:
    """The UTC instant at which ``day`` begins in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=_zone(zone)).astimezone(UTC)


@lru_cache(maxsize=65536)
def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _month_end(day: date) -> date:
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


_EXPIRY_CACHE: dict[int, tuple[ProgramDefinition, dict[date, datetime | None]]] = {}


def expiry_of(program: ProgramDefinition, earned_at: datetime) -> datetime | None:
    """When points earned at ``earned_at`` expire: the start of the day after their last day."""
    earned = earned_at.astimezone(_compiled(program).zone).date()
    held = _EXPIRY_CACHE.get(id(program))
    if held is None or held[0] is not program:
        held = (program, {})
        _EXPIRY_CACHE[id(program)] = held
    cache = held[1]
    if earned not in cache:
        cache[earned] = _expiry_for_day(program, earned)
    return cache[earned]


def _expiry_for_day(program: ProgramDefinition, earned: date) -> datetime | None:
    expiry = program.points.expiry
    if expiry.mode is ExpiryMode.NEVER:
        return None
    if expiry.mode is ExpiryMode.MONTHS_AFTER_EARNING:
        last_day = add_months(earned, expiry.months or 0)
    elif expiry.mode is ExpiryMode.END_OF_NTH_YEAR:
        last_day = date(earned.year + (expiry.years or 0), 12, 31)
    else:  # END_OF_MONTH_AFTER_MONTHS
        last_day = _month_end(add_months(earned, expiry.months or 0))
    return local_midnight(program, last_day + timedelta(days=1))


@lru_cache(maxsize=16)
def _unit_of(currency: str) -> Decimal:
    return Decimal(10 ** minor_digits(currency))


def unit(program: ProgramDefinition) -> Decimal:
    """Minor units per unit of the program's currency (100 fen per yuan)."""
    return _unit_of(program.currency)


def _round(value: Decimal, rounding: Rounding) -> int:
    mode = {
        Rounding.FLOOR: ROUND_FLOOR,
        Rounding.HALF_UP: ROUND_HALF_UP,
        Rounding.CEILING: ROUND_CEILING,
    }[rounding]
    return int(value.quantize(Decimal(1), rounding=mode))


def allocate(total: int, weights: list[Decimal] | list[int]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` by largest remainder (equal
    remainders: the first weight first), exactly.

    In integers: ``Decimal`` weights are first scaled to whole numbers, which keeps their
    proportions; each share is then the floor and the remainder of ``total * w / sum``.
    (Dividing ``Decimal``s instead rounds each quotient to 28 digits, and took 4.2 us for
    two weights against 1.6 us.)"""
    n = len(weights)
    if n == 0:
        return []
    if n == 1:
        return [total]
    whole = weights if all(type(w) is int for w in weights) else _whole(weights)
    weight_sum = sum(whole)
    if weight_sum == 0:
        return [total] + [0] * (n - 1) if total else [0] * n
    if weight_sum < 0:  # the same proportions, with a positive divisor for divmod
        whole, weight_sum = [-w for w in whole], -weight_sum
    floors: list[int] = []
    remainders: list[int] = []
    for w in whole:
        share, remainder = divmod(total * w, weight_sum)
        floors.append(share)
        remainders.append(remainder)
    short = total - sum(floors)
    if short:
        order = sorted(range(n), key=lambda i: (-remainders[i], i))
        for i in order[:short]:
            floors[i] += 1
    return floors


def _whole(weights: list[Decimal] | list[int]) -> list[int]:
    """Weights as whole numbers in the same proportions: each times 10**k, k the most
    decimals among them."""
    decimals = max(0, *(-Decimal(w).as_tuple().exponent for w in weights))
    return [int(Fraction(w) * 10**decimals) for w in weights]


# --- what is derived from a program once ---------------------------------------------------
#
# A program is immutable (frozen models), so what the rules look up on every event (sets of
# categories, factors as exact integers, the time zone, ...) is worked out once per program
# object. None of this changes a result: the exact-integer arithmetic below is used only where
# it provably gives the same values as the ``Decimal`` arithmetic it stands for.


def _decimal_exponent(value: Fraction) -> int | None:
    """The least k with ``value * 10**k`` an integer, or None (not a finite decimal)."""
    den = value.denominator
    k = 0
    while den % 10 == 0:
        den //= 10
        k += 1
    while den % 2 == 0:
        den //= 2
        k += 1
    extra = 0
    while den % 5 == 0:
        den //= 5
        extra += 1
    if den != 1:
        return None
    # 2**a * 5**b divides 10**max(a, b); both loops above counted one of them
    return max(k, extra) if extra else k


class _Factor:
    """A multiplier as an exact integer: ``value == scaled / 10**digits``."""

    __slots__ = ("digits", "one", "rule", "scaled", "value")

    def __init__(self, rule: str, value: Decimal) -> None:
        self.rule = rule
        self.value = value
        exact = Fraction(value)
        digits = _decimal_exponent(exact)
        if digits is None:  # cannot happen for a Decimal; kept for safety
            raise ValueError(value)
        self.digits = digits
        self.scaled = int(exact * 10**digits)
        self.one = value == 1


class _Compiled:
    """Per-program lookups and constants for the hot paths."""

    def __init__(self, program: ProgramDefinition) -> None:
        self.program = program
        self.zone = _zone(program.timezone)
        self.tier_index = {tier.code: i for i, tier in enumerate(program.tiers)}
        self.notice = timedelta(days=program.points.expiring_notice_days)
        earning = program.earning
        ex = earning.exclusions
        self.ex_categories = frozenset(ex.categories)
        self.ex_skus = frozenset(ex.skus)
        self.ex_channels = frozenset(ex.channels)
        self.multipliers = [
            (
                m.type,
                frozenset(m.categories),
                frozenset(m.skus),
                frozenset(m.channels),
                frozenset(m.days_of_month),
                frozenset(m.weekdays),
                m.start,
                m.end,
                _Factor(f"multiplier:{m.code}", m.factor),
            )
            for m in earning.multipliers
        ]
        self.day_multipliers = any(
            m.type in (MultiplierType.MEMBER_DAY, MultiplierType.DATE_RANGE)
            for m in earning.multipliers
        )
        self.tier_factors = [_Factor("tier:" + t.code, t.earn_multiplier) for t in program.tiers]
        self.plan_factors = {
            p.code: _Factor("plan:" + p.code, p.earn_multiplier) for p in program.paid_plans
        }
        self.spend_bonuses = [
            (b, b.min_amount * unit(program))
            for b in earning.bonuses
            if b.type is BonusType.SPEND_THRESHOLD and b.min_amount is not None
        ]
        minor = unit(program)
        self.minor = minor
        self.exact_points = self._exact_points_setup(program, minor)
        self.growth = [self._growth_setup(s, minor) for s in program.growth.sources]
        self.measure = program.tier_qualification.measure
        self.window = program.tier_qualification.window
        self.earned_thresholds = [
            (i, t.threshold) for i, t in enumerate(program.tiers) if not t.invitation_only
        ]
        window = program.tier_qualification.window
        if window.type is WindowType.LIFETIME:
            self.prune_after: timedelta | None = None
        else:
            months = (window.months or 12) if window.type is WindowType.ROLLING_MONTHS else 24
            self.prune_after = timedelta(days=31 * (months + 1))
        self.pending = timedelta(days=program.points.pending_days)
        self.birthday_rules = any(b.type is BonusType.BIRTHDAY for b in earning.bonuses) or any(
            s.type is GrowthSourceType.BIRTHDAY for s in program.growth.sources
        )

    def _exact_points_setup(
        self, program: ProgramDefinition, minor: Decimal
    ) -> tuple[int, int, int, int] | None:
        """(scale, basis multiplier, bound, rounding divisor) for exact-integer points, or None.

        Points of a line are ``basis / minor * rate`` times the factors that apply. With every
        value a multiple of ``10**-scale`` and below ``10**(precision - 1)``, each ``Decimal``
        operation of the reference arithmetic is exact, so integers give the same numbers.
        """
        base = program.earning.base
        if decimal.getcontext().prec < 28 or base.per == 0:
            return None
        rate = Fraction(base.points) / Fraction(base.per)
        if Fraction(Decimal(base.points) / base.per) != rate:
            return None  # the Decimal rate is rounded: keep the reference arithmetic
        rate_digits = _decimal_exponent(rate)
        minor_digits_ = _decimal_exponent(Fraction(1) / Fraction(minor))
        if rate_digits is None or minor_digits_ is None or Fraction(minor).denominator != 1:
            return None
        factors = [m[-1] for m in self.multipliers]
        if program.earning.stacking is Stacking.BEST:
            chain = [max((f.digits for f in factors), default=0)]
            growth_chain = [max((max(f.value, 1) for f in factors), default=Decimal(1))]
        else:
            chain = [f.digits for f in factors]
            growth_chain = [max(f.value, 1) for f in factors]
        tier_factors = self.tier_factors
        plan_factors = list(self.plan_factors.values())
        chain.append(max((f.digits for f in tier_factors), default=0))
        chain.append(max((f.digits for f in plan_factors), default=0))
        growth_chain.append(max((max(f.value, 1) for f in tier_factors), default=Decimal(1)))
        growth_chain.append(max((max(f.value, 1) for f in plan_factors), default=Decimal(1)))
        if program.earning.stacking is Stacking.BEST and not program.earning.tier_multiplier_stacks:
            # the tier factor may be the one chosen among the multipliers: count it twice
            chain.append(max((f.digits for f in tier_factors), default=0))
        scale = minor_digits_ + rate_digits + sum(chain)
        growth = 1
        for value in growth_chain:
            growth *= value
        if program.earning.stacking is Stacking.BEST and not program.earning.tier_multiplier_stacks:
            growth *= max((max(f.value, 1) for f in tier_factors), default=Decimal(1))
        growth_bound = int(Fraction(growth)) + 1
        # basis (minor units) * per_unit == the line's exact points before factors, scaled
        per_unit = rate * 10**scale / Fraction(minor)
        if per_unit.denominator != 1:
            return None
        per_unit_int = int(per_unit)
        # any value (a line, a rule, a total) is below gross * per_unit * growth_bound
        bound = max(per_unit_int * growth_bound, 1)
        return scale, per_unit_int, bound, 10**scale

    @staticmethod
    def _growth_setup(source: Any, minor: Decimal) -> tuple[int, int, int] | None:
        """(numerator, denominator, bound): spend growth is ``paid * num / den`` exactly when
        ``paid * bound < _EXACT_LIMIT``; None where the reference ``Decimal`` steps
        (``paid / minor / per * amount``) could round (then they are used as they are)."""
        if source.type is not GrowthSourceType.SPEND or not source.per:
            return None
        per, amount = Fraction(source.per), Fraction(source.amount)
        if per.denominator != 1 or amount.denominator != 1 or per > 10**6:
            return None
        digits = _decimal_exponent(Fraction(1) / per)
        if digits is None or Fraction(minor).denominator != 1:
            return None
        # paid / minor / per == paid * (10**digits / per) / (minor * 10**digits): the digits
        # of paid * (10**digits / per) * amount bound every step's significant digits
        bound = (10**digits // int(per)) * max(int(amount), 1)
        return int(amount), int(per) * int(minor), bound


_COMPILED: dict[int, _Compiled] = {}

# values of exact-integer arithmetic stay below this many digits (Decimal's precision is 28)
_EXACT_LIMIT = 10**26


_LAST_COMPILED: list[Any] = [None]  # the last one asked for: most callers ask again at once


def _compiled(program: ProgramDefinition) -> _Compiled:
    last = _LAST_COMPILED[0]
    if last is not None and last.program is program:
        return last
    held = _COMPILED.get(id(program))
    if held is None or held.program is not program:
        held = _Compiled(program)
        if len(_COMPILED) > 64:
            _COMPILED.clear()
        _COMPILED[id(program)] = held
    _LAST_COMPILED[0] = held
    return held


def _round_scaled(value: int, divisor: int, rounding: Rounding) -> int:
    """``_round(Decimal(value) / divisor, rounding)`` for integers, exactly."""
    if divisor == 1:
        return value
    if rounding is Rounding.FLOOR:
        return value // divisor
    if rounding is Rounding.CEILING:
        return -(-value // divisor)
    whole, rest = divmod(abs(value), divisor)
    if 2 * rest >= divisor:
        whole += 1
    return whole if value >= 0 else -whole


def _as_decimal(value: int, scale: int) -> Decimal:
    return Decimal(value).scaleb(-scale) if scale else Decimal(value)


# --- tiers ---------------------------------------------------------------------------------


_TIER_INDEX: dict[int, tuple[ProgramDefinition, dict[str, int]]] = {}


def _tier_index(program: ProgramDefinition, code: str) -> int:
    held = _TIER_INDEX.get(id(program))
    if held is None or held[0] is not program:
        held = (program, {tier.code: i for i, tier in enumerate(program.tiers)})
        _TIER_INDEX[id(program)] = held
    return held[1].get(code, 0)  # a tier the program no longer has: the entry tier


def _window_start(program: ProgramDefinition, end: datetime) -> datetime | None:
    window = program.tier_qualification.window
    if window.type is WindowType.LIFETIME:
        return None
    if window.type is WindowType.CALENDAR_YEAR:
        year = local(program, end - timedelta(microseconds=1)).year
        return local_midnight(program, date(year, 1, 1))
    end_local = end.astimezone(_compiled(program).zone)
    start_day = add_months(end_local.date(), -(window.months or 12))
    return datetime.combine(start_day, end_local.timetz()).astimezone(UTC)


def qualifying_measure(program: ProgramDefinition, state: MemberState, end: datetime) -> Decimal:
    """The tier measure over the program's window ending at ``end`` (growth, yuan or orders)."""
    measure = program.tier_qualification.measure
    start = _window_start(program, end)
    if start is None:
        growth, spend, orders = state.lifetime_growth, state.lifetime_spend, state.lifetime_orders
    else:
        growth = spend = orders = 0
        for item in reversed(state.activity):  # kept in time order: stop at the window start
            if item.at < start:
                break
            if item.at <= end:
                growth += item.growth
                spend += item.spend
                orders += item.orders
    if measure is QualifyingMeasure.GROWTH:
        return Decimal(growth)
    if measure is QualifyingMeasure.ORDERS:
        return Decimal(orders)
    return Decimal(spend) / unit(program)  # spend thresholds are written in yuan


def _measure(program: ProgramDefinition, state: MemberState, end: datetime) -> Decimal | int:
    """``qualifying_measure`` for comparisons: an ``int`` (of equal value) for growth and
    orders, which compares with the ``Decimal`` thresholds exactly."""
    measure = program.tier_qualification.measure
    if measure is QualifyingMeasure.SPEND:
        return qualifying_measure(program, state, end)
    start = _window_start(program, end)
    if start is None:
        if measure is QualifyingMeasure.GROWTH:
            return state.lifetime_growth
        return state.lifetime_orders
    total = 0
    growth = measure is QualifyingMeasure.GROWTH
    for item in reversed(state.activity):  # kept in time order: stop at the window start
        if item.at < start:
            break
        if item.at <= end:
            total += item.growth if growth else item.orders
    return total


def _earned_tier(program: ProgramDefinition, measure: Decimal | int) -> int:
    best = 0
    for index, threshold in _compiled(program).earned_thresholds:
        if measure >= threshold:
            best = index
    return best


def _change_tier(
    state: MemberState,
    program: ProgramDefinition,
    new_index: int,
    at: datetime,
    reason: str,
    outcome: Outcome,
) -> None:
    old = state.tier
    new = program.tiers[new_index].code
    if new == old:
        return
    state.tier = new
    state.tier_since = at
    outcome.notices.append(Notice("tier.changed", at, {"from": old, "to": new, "reason": reason}))


def _upgrade_if_earned(
    program: ProgramDefinition, state: MemberState, at: datetime, outcome: Outcome
) -> None:
    current = _tier_index(program, state.tier)
    if program.tiers[current].invitation_only:
        return
    earned = _earned_tier(program, _measure(program, state, at))
    if earned > current:
        _change_tier(state, program, earned, at, "upgrade", outcome)


def _review(program: ProgramDefinition, state: MemberState, at: datetime, outcome: Outcome) -> None:
    """A tier review at ``at``: keep, or step down by the program's rules (保级)."""
    current = _tier_index(program, state.tier)
    tier: Tier = program.tiers[current]
    measure = _measure(program, state, at)
    earned = _earned_tier(program, measure)
    if earned > current and not tier.invitation_only:
        _change_tier(state, program, earned, at, "review", outcome)
    elif earned < current:
        keeps = (tier.retention_threshold is not None and measure >= tier.retention_threshold) or (
            tier.invitation_only and tier.retention_threshold is None
        )
        if not keeps:
            steps = program.tier_qualification.review.max_downgrade_steps
            _change_tier(state, program, max(earned, current - steps), at, "review", outcome)
    state.last_review_at = at
    state.tier_at_review = state.tier


def review_instants(
    program: ProgramDefinition, state: MemberState, after: datetime, until: datetime
) -> list[datetime]:
    """Scheduled tier reviews in ``(after, until]``."""
    review = program.tier_qualification.review
    enrolled = local(program, state.enrolled_at).date()
    first_year = local(program, after).year
    last_year = local(program, until).year
    instants: list[datetime] = []
    if review.schedule is ReviewSchedule.CALENDAR_YEAR_END:
        candidates = [
            local_midnight(program, date(y, 1, 1)) for y in range(first_year, last_year + 2)
        ]
    elif review.schedule is ReviewSchedule.ANNIVERSARY:
        candidates = [
            local_midnight(program, add_months(enrolled, 12 * (y - enrolled.year)))
            for y in range(max(first_year, enrolled.year + 1), last_year + 2)
        ]
    else:
        months = review.months or 12
        start_k = max(1, ((first_year - enrolled.year) * 12) // months - 1)
        end_k = ((last_year - enrolled.year + 1) * 12) // months + 1
        candidates = [
            local_midnight(program, add_months(enrolled, k * months))
            for k in range(start_k, end_k + 1)
        ]
    for instant in candidates:
        if after < instant <= until and instant > state.enrolled_at:
            instants.append(instant)
    return sorted(instants)


# --- lots ----------------------------------------------------------------------------------


def _spendable(state: MemberState, at: datetime) -> list[Lot]:
    lots = [
        lot
        for lot in state.lots
        if lot.released and lot.remaining > 0 and (lot.expires_at is None or lot.expires_at > at)
    ]
    return sorted(lots, key=lambda lot: (lot.expiry_key, lot.earned_at, lot.seq))


def _consume(
    state: MemberState, amount: int, destination: str, at: datetime, allow_debt: bool = False
) -> list[Movement]:
    """Take ``amount`` points from the soonest-expiring usable lots."""
    movements: list[Movement] = []
    left = amount
    for lot in _spendable(state, at):
        if left == 0:
            break
        take = min(lot.remaining, left)
        lot.remaining -= take
        left -= take
        movements.append(Movement(AVAILABLE, destination, take, lot.seq))
    if left:
        if not allow_debt:
            raise RuleError("ledger.insufficient_points", requested=amount, available=amount - left)
        state.debt += left
        movements.append(Movement(AVAILABLE, destination, left, None))
    return movements


def _credit(
    program: ProgramDefinition,
    state: MemberState,
    entry: Entry,
    amount: int,
    source: str,
    at: datetime,
    *,
    pending_days: int,
    lot_source: str,
    reference: str | None,
    outcome: Outcome,
) -> Lot | None:
    """Give ``amount`` points as a new lot; released points first repay any debt."""
    if amount <= 0:
        return None
    compiled = _compiled(program)
    if not pending_days:
        available_at = at
    elif pending_days == program.points.pending_days:
        available_at = at + compiled.pending
    else:
        available_at = at + timedelta(days=pending_days)
    released = pending_days == 0
    seq = state.next_seq
    state.next_seq = seq + 1
    lot = Lot(
        seq,
        at,
        available_at,
        expiry_of(program, at),
        amount,
        amount,
        lot_source,
        released,
        reference,
    )
    state.lots.append(lot)
    outcome.lots.append(lot)
    if state.next_due is not None:
        state.next_due = min(state.next_due, _lot_due(lot, compiled.notice))
    entry.movements.append(Movement(source, AVAILABLE if released else PENDING, amount, lot.seq))
    if released:
        _repay_debt(state, lot)
    return lot


def _repay_debt(state: MemberState, lot: Lot) -> None:
    repay = min(state.debt, lot.remaining)
    if repay:
        lot.remaining -= repay
        state.debt -= repay


# --- time passing ----------------------------------------------------------------------------


def advance(program: ProgramDefinition, state: MemberState, until: datetime) -> Outcome:
    """Apply everything that happens with time alone, up to ``until``: releases of pending
    points, expiries, expiring-soon notices, birthday bonuses and tier reviews, in order.

    Idempotent: advancing again to the same moment (or an earlier one) changes nothing.
    """
    outcome = Outcome()
    start = state.as_of or state.enrolled_at
    if until <= start:
        if state.calendar_due is None:  # a new member: when its first birthday/review falls
            _plan_calendar(program, state, start)
        return outcome
    if state.next_due is not None and until < state.next_due:
        state.as_of = until  # nothing is due yet: a cheap step
        return outcome
    # A heap, because what happens can make more happen (a birthday lot that expires too).
    # Releases and expiries have no lower bound: a lot posted late (dated before ``as_of``)
    # is released or expired at the next advance; the flags keep this idempotent.
    # (moment, order, lot, counter, kind, lot): the counter keeps equal keys in push order
    heap: list[tuple[datetime, int, int, int, str, Lot | None]] = []
    counter = itertools.count()
    for lot in state.lots:
        if not lot.released and lot.available_at <= until:
            heap.append((lot.available_at, 0, lot.seq, next(counter), "release", lot))
        expires = lot.expires_at
        if expires is not None and lot.remaining > 0 and expires <= until:
            heap.append((expires, 1, lot.seq, next(counter), "expire", lot))
    calendar = state.calendar_due is None or until >= state.calendar_due
    if calendar:
        for instant in _birthdays(program, state, start, until):
            heap.append((instant, 2, 0, next(counter), "birthday", None))
        for instant in review_instants(program, state, start, until):
            heap.append((instant, 3, 0, next(counter), "review", None))
    heapq.heapify(heap)

    def push(at: datetime, order: int, kind: str, lot: Lot | None) -> None:
        heapq.heappush(heap, (at, order, lot.seq if lot else 0, next(counter), kind, lot))

    while heap:
        at, _, _, _, kind, lot = heapq.heappop(heap)
        if kind == "release":
            _release(state, lot, at, outcome)
        elif kind == "expire":
            _expire(state, lot, at, outcome)
        elif kind == "birthday":
            created = len(outcome.lots)
            _birthday(program, state, at, outcome)
            for new in outcome.lots[created:]:
                if new.expires_at is not None and new.expires_at <= until:
                    push(new.expires_at, 1, "expire", new)
        else:
            _review(program, state, at, outcome)
    _notice_expiring(program, state, until, outcome)
    state.as_of = until
    _prune_activity(program, state, until)
    if calendar:
        _plan_calendar(program, state, until)
    state.next_due = _next_due(program, state)
    return outcome


def _plan_calendar(program: ProgramDefinition, state: MemberState, since: datetime) -> None:
    """``calendar_due``: the first birthday or tier review after ``since`` (or 400 days on)."""
    horizon = since + timedelta(days=400)
    reviews = review_instants(program, state, since, horizon)
    birthdays = _birthdays(program, state, since, horizon)
    state.calendar_due = min([horizon, *reviews[:1], *birthdays[:1]])


def _next_due(program: ProgramDefinition, state: MemberState) -> datetime:
    """The first moment at which ``advance`` would have something to do (and retire the
    lots that are used up)."""
    window = _compiled(program).notice
    due = state.calendar_due or FAR_FUTURE
    kept = []
    for lot in state.lots:
        # _lot_due, inline: keeps the earlier moment on ties, as min() does
        if lot.released:
            if lot.remaining == 0:
                state.retired.append(lot)
                continue
        elif lot.available_at < due:
            due = lot.available_at
        kept.append(lot)
        expires = lot.expires_at
        if expires is not None and lot.remaining > 0:
            if expires < due:
                due = expires
            if window and not lot.noticed and expires - window < due:
                due = expires - window
    state.lots = kept
    return due


def due_at(state: MemberState, notice_days: int) -> datetime | None:
    """When time alone will next change this member (a release, an expiry, an expiring-soon
    notice, a birthday or a tier review), for jobs to skip everyone with nothing due.

    Pure (unlike ``_next_due``); None when the calendar has not been worked out yet, which
    callers must treat as "due now".
    """
    if state.calendar_due is None:
        return None
    window = timedelta(days=notice_days)
    return min([state.calendar_due, *(_lot_due(lot, window) for lot in state.lots)])


def _lot_due(lot: Lot, notice_window: timedelta) -> datetime:
    due = FAR_FUTURE
    if not lot.released:
        due = lot.available_at
    if lot.expires_at is not None and lot.remaining > 0:
        due = min(due, lot.expires_at)
        if notice_window and not lot.noticed:
            due = min(due, lot.expires_at - notice_window)
    return due


def _release(state: MemberState, lot: Lot, at: datetime, outcome: Outcome) -> None:
    entry = Entry(0, "release", at, lot.reference)
    if lot.remaining:
        entry.movements.append(Movement(PENDING, AVAILABLE, lot.remaining, lot.seq))
    lot.released = True
    _repay_debt(state, lot)
    if entry.movements:
        entry.detail = {"lot": lot.seq}
        _append(state, outcome, entry)


def _expire(state: MemberState, lot: Lot, at: datetime, outcome: Outcome) -> None:
    if lot.remaining <= 0:
        return
    account = AVAILABLE if lot.released else PENDING
    entry = Entry(
        0,
        "expire",
        at,
        lot.reference,
        [Movement(account, EXPIRED, lot.remaining, lot.seq)],
        detail={"lot": lot.seq},
    )
    lot.remaining = 0
    _append(state, outcome, entry)


def _notice_expiring(
    program: ProgramDefinition, state: MemberState, at: datetime, outcome: Outcome
) -> None:
    window = _compiled(program).notice
    if not window:
        return
    horizon = at + window
    for lot in state.lots:
        if (
            lot.expires_at is not None
            and lot.remaining > 0
            and not lot.noticed
            and at < lot.expires_at <= horizon
        ):
            lot.noticed = True
            outcome.notices.append(
                Notice(
                    "points.expiring",
                    at,
                    {
                        "lot": lot.seq,
                        "points": lot.remaining,
                        "expires_at": lot.expires_at.isoformat(),
                    },
                )
            )


def _birthdays(
    program: ProgramDefinition, state: MemberState, start: datetime, until: datetime
) -> list[datetime]:
    if not state.birthday or (
        not any(b.type is BonusType.BIRTHDAY for b in program.earning.bonuses)
        and not any(s.type is GrowthSourceType.BIRTHDAY for s in program.growth.sources)
    ):
        return []
    month, day = (int(part) for part in state.birthday.split("-"))
    instants = []
    for year in range(local(program, start).year, local(program, until).year + 1):
        last = calendar.monthrange(year, month)[1]
        instant = local_midnight(program, date(year, month, min(day, last)))
        if start < instant <= until and instant >= state.enrolled_at:
            instants.append(instant)
    return instants


def _birthday(
    program: ProgramDefinition, state: MemberState, at: datetime, outcome: Outcome
) -> None:
    year = local(program, at).year
    entry = Entry(0, "birthday", at, f"birthday:{year}")
    for bonus in program.earning.bonuses:
        if bonus.type is BonusType.BIRTHDAY and _bonus_allowed(
            state, bonus.code, bonus.per_year, year
        ):
            _count_bonus(state, bonus.code, year)
            _award(program, state, entry, bonus, at, outcome)
    for source in program.growth.sources:
        if source.type is GrowthSourceType.BIRTHDAY:
            entry.growth += source.amount
    if entry.movements or entry.growth:
        _record_activity(state, at, growth=entry.growth)
        _append(state, outcome, entry)


def _award(
    program: ProgramDefinition,
    state: MemberState,
    entry: Entry,
    bonus: Bonus,
    at: datetime,
    outcome: Outcome,
) -> None:
    """Give a bonus as its own lot (usable at once) and say so in the entry's detail."""
    _credit(
        program,
        state,
        entry,
        bonus.points,
        ISSUED,
        at,
        pending_days=0,
        lot_source=f"bonus:{bonus.code}",
        reference=entry.reference,
        outcome=outcome,
    )
    entry.detail.setdefault("rules", []).append(
        {"rule": f"bonus:{bonus.code}", "points": bonus.points}
    )


def _bonus_allowed(state: MemberState, code: str, per_year: int | None, year: int) -> bool:
    return per_year is None or state.bonus_counts.get(f"{code}:{year}", 0) < per_year


def _count_bonus(state: MemberState, code: str, year: int) -> None:
    key = f"{code}:{year}"
    state.bonus_counts[key] = state.bonus_counts.get(key, 0) + 1
    for old in [k for k in state.bonus_counts if int(k.rsplit(":", 1)[1]) < year - 1]:
        del state.bonus_counts[old]


def _record_activity(
    state: MemberState, at: datetime, *, growth: int = 0, spend: int = 0, orders: int = 0
) -> None:
    if not (growth or spend or orders):
        return
    item = Activity(at, growth, spend, orders)
    if state.activity and at < state.activity[-1].at:  # a late event: keep time order
        bisect.insort(state.activity, item, key=lambda a: a.at)
    else:
        state.activity.append(item)
    state.lifetime_growth += growth
    state.lifetime_spend += spend
    state.lifetime_orders += orders


def _prune_activity(program: ProgramDefinition, state: MemberState, now: datetime) -> None:
    """Forget activity older than any window the rules can still look at."""
    keep = _compiled(program).prune_after
    if keep is None:
        state.activity.clear()
        return
    horizon = now - keep
    if state.activity and state.activity[0].at < horizon:
        state.activity = [a for a in state.activity if a.at >= horizon]


# --- purchases -------------------------------------------------------------------------------


def _plan_factor(program: ProgramDefinition, state: MemberState, at: datetime) -> Decimal:
    if state.plan_code and state.plan_until and at < state.plan_until:
        for plan in program.paid_plans:
            if plan.code == state.plan_code:
                return plan.earn_multiplier
    return Decimal(1)


def _line_factors(
    program: ProgramDefinition, purchase: Purchase, line: PurchaseLine, local_day: date
) -> list[tuple[str, Decimal]]:
    applicable = []
    for m in program.earning.multipliers:
        t = m.type
        hit = (
            (t is MultiplierType.CATEGORY and line.category in m.categories)
            or (t is MultiplierType.SKU and line.sku in m.skus)
            or (t is MultiplierType.CHANNEL and purchase.channel in m.channels)
            or (
                t is MultiplierType.MEMBER_DAY
                and (local_day.day in m.days_of_month or local_day.isoweekday() in m.weekdays)
            )
            or (
                t is MultiplierType.DATE_RANGE
                and m.start is not None
                and m.end is not None
                and m.start <= local_day <= m.end
            )
        )
        if hit:
            applicable.append((f"multiplier:{m.code}", m.factor))
    return applicable


def _excluded(program: ProgramDefinition, purchase: Purchase, line: PurchaseLine) -> bool:
    ex = program.earning.exclusions
    return line.category in ex.categories or line.sku in ex.skus or purchase.channel in ex.channels


def check_purchase(program: ProgramDefinition, purchase: Purchase) -> None:
    """Refuse a purchase the program cannot accept, before anything changes."""
    if not purchase.lines:
        raise RuleError("ledger.no_lines")
    for line in purchase.lines:
        if line.quantity <= 0:
            raise RuleError("ledger.bad_quantity", sku=line.sku, quantity=line.quantity)
        if line.amount < 0:
            raise RuleError("ledger.negative_amount", sku=line.sku)
    if purchase.amount_paid < 0:
        raise RuleError("ledger.negative_paid")
    if purchase.amount_paid > purchase.gross:
        raise RuleError("ledger.paid_above_gross", paid=purchase.amount_paid, gross=purchase.gross)
    if purchase.points_used:
        payment = program.points_payment
        if not payment.enabled:
            raise RuleError("ledger.points_payment_off")
        if purchase.points_used % payment.step or purchase.points_used < payment.min_points:
            raise RuleError("ledger.points_step", step=payment.step, minimum=payment.min_points)
        value = Decimal(purchase.points_used) * unit(program) / payment.points_per_unit
        if value > payment.max_share * purchase.gross:
            raise RuleError("ledger.points_share", share=str(payment.max_share * 100))


def _points_scaled(
    compiled: _Compiled,
    state: MemberState,
    event: Purchase,
    paid_by_line: list[int],
    excluded: list[bool],
    local_day: date,
) -> tuple[int, dict[str, Any], list[Any], int | None] | None:
    """``_points_decimal`` in exact integers (multiples of ``10**-scale``): the same values,
    as the caller checked that no ``Decimal`` step there would round. None if a step does
    not come out exact after all (then the caller uses ``_points_decimal``)."""
    program = compiled.program
    scale, per_unit, _, divisor = compiled.exact_points  # type: ignore[misc]
    earning = program.earning
    use_paid = earning.base.basis is Basis.PAID
    stacks = earning.tier_multiplier_stacks
    best = earning.stacking is Stacking.BEST
    tier_factor = compiled.tier_factors[compiled.tier_index.get(state.tier, 0)]
    plan_factor = None
    if state.plan_code and state.plan_until and event.occurred_at < state.plan_until:
        plan_factor = compiled.plan_factors.get(state.plan_code)
    per_line: list[Any] = [0] * len(paid_by_line)
    per_rule: dict[str, Any] = {}
    for i, line in enumerate(event.lines):
        if excluded[i]:
            continue
        running = (paid_by_line[i] if use_paid else line.amount) * per_unit
        per_rule["base"] = per_rule.get("base", 0) + running
        factors = _line_factors_compiled(compiled, event, line, local_day)
        if not stacks:
            factors.append(tier_factor)
        if best and factors:
            factors = [max(factors, key=lambda f: f.value)]
        if stacks:
            factors.append(tier_factor)
        if plan_factor is not None:
            factors.append(plan_factor)
        for factor in factors:
            if factor.one:
                continue
            extra, rest = divmod(running * (factor.scaled - 10**factor.digits), 10**factor.digits)
            if rest:
                return None
            per_rule[factor.rule] = per_rule.get(factor.rule, 0) + extra
            running += extra
        per_line[i] = running
    total = sum(per_line)
    rounded = _round_scaled(total, divisor, earning.base.rounding)
    return rounded, per_rule, per_line, scale


def _line_factors_compiled(
    compiled: _Compiled, purchase: Purchase, line: PurchaseLine, local_day: date
) -> list[_Factor]:
    """``_line_factors`` with the program's sets worked out once."""
    applicable = []
    for (
        kind,
        categories,
        skus,
        channels,
        days,
        weekdays,
        start,
        end,
        factor,
    ) in compiled.multipliers:
        if kind is MultiplierType.CATEGORY:
            hit = line.category in categories
        elif kind is MultiplierType.SKU:
            hit = line.sku in skus
        elif kind is MultiplierType.CHANNEL:
            hit = purchase.channel in channels
        elif kind is MultiplierType.MEMBER_DAY:
            hit = local_day.day in days or local_day.isoweekday() in weekdays
        else:
            hit = start is not None and end is not None and start <= local_day <= end
        if hit:
            applicable.append(factor)
    return applicable


def _points_decimal(
    program: ProgramDefinition,
    state: MemberState,
    event: Purchase,
    paid_by_line: list[int],
    excluded: list[bool],
    local_day: date,
) -> tuple[int, dict[str, Any], list[Any], int | None]:
    """Exact (Decimal) points per line and per rule, and their rounded total."""
    earning = program.earning
    base = earning.base
    tier = program.tiers[_tier_index(program, state.tier)]
    plan_factor = _plan_factor(program, state, event.occurred_at)
    per_line: list[Decimal] = [Decimal(0)] * len(paid_by_line)
    per_rule: dict[str, Decimal] = {}
    rate = Decimal(base.points) / base.per
    minor = unit(program)
    for i, line in enumerate(event.lines):
        if excluded[i]:
            continue
        basis = Decimal(paid_by_line[i] if base.basis is Basis.PAID else line.amount) / minor
        running = basis * rate
        per_rule["base"] = per_rule.get("base", Decimal(0)) + running
        factors = _line_factors(program, event, line, local_day)
        tier_factor = ("tier:" + tier.code, tier.earn_multiplier)
        plan = ("plan:" + (state.plan_code or ""), plan_factor)
        if not earning.tier_multiplier_stacks:
            factors.append(tier_factor)
        if earning.stacking is Stacking.BEST and factors:
            factors = [max(factors, key=lambda f: f[1])]
        if earning.tier_multiplier_stacks:
            factors.append(tier_factor)
        factors.append(plan)
        for rule, factor in factors:
            if factor == 1:
                continue
            extra = running * (factor - 1)
            per_rule[rule] = per_rule.get(rule, Decimal(0)) + extra
            running += extra
        per_line[i] = running
    exact_total = sum(per_line, Decimal(0))
    return _round(exact_total, base.rounding), per_rule, per_line, None


def purchase(program: ProgramDefinition, state: MemberState, event: Purchase) -> Outcome:
    """A purchase: points (base, multipliers, tier, caps, bonuses), growth, tier upgrade.

    Points used as payment are taken first (they cannot pay for the order they earn on).
    """
    check_purchase(program, event)
    at = event.occurred_at
    outcome = Outcome()
    explanation: list[dict[str, Any]] = []

    if event.points_used:
        if event.points_used > state.available:
            raise RuleError(
                "ledger.insufficient_points",
                requested=event.points_used,
                available=max(state.available, 0),
            )
        pay = Entry(0, "payment", at, event.order_id)
        pay.movements = _consume(state, event.points_used, PAYMENT, at)
        _append(state, outcome, pay)

    entry = Entry(0, "purchase", at, event.order_id)
    compiled = _compiled(program)
    local_day = at.astimezone(compiled.zone).date()
    earning = program.earning
    lines = event.lines
    n = len(lines)
    if n == 1:
        amount_total = lines[0].amount
        paid_by_line = [event.amount_paid]
    else:
        amounts = [line.amount for line in lines]
        amount_total = sum(amounts)
        paid_by_line = allocate(event.amount_paid, amounts)
    excluded = [
        line.category in compiled.ex_categories
        or line.sku in compiled.ex_skus
        or event.channel in compiled.ex_channels
        for line in lines
    ]

    # exact points per line and per rule, before rounding and caps
    exact = compiled.exact_points
    found = None
    if exact is not None and max(amount_total, event.amount_paid) * exact[2] < _EXACT_LIMIT:
        found = _points_scaled(compiled, state, event, paid_by_line, excluded, local_day)
    if found is None:
        found = _points_decimal(program, state, event, paid_by_line, excluded, local_day)
    rounded, per_rule, per_line, _scale = found  # the weights, scaled or not
    points = rounded
    caps = earning.caps
    cap_cuts: list[tuple[str, int]] = []
    if caps.per_order is not None and points > caps.per_order:
        cap_cuts.append(("cap:per_order", points - caps.per_order))
        points = caps.per_order
    if state.cap_day != local_day:
        state.cap_day, state.cap_day_points = local_day, 0
    month_key = (local_day.year, local_day.month)
    if state.cap_month != month_key:
        state.cap_month, state.cap_month_points = month_key, 0
    if caps.per_day is not None and points > caps.per_day - state.cap_day_points:
        allowed = max(caps.per_day - state.cap_day_points, 0)
        cap_cuts.append(("cap:per_day", points - allowed))
        points = allowed
    if caps.per_month is not None and points > caps.per_month - state.cap_month_points:
        allowed = max(caps.per_month - state.cap_month_points, 0)
        cap_cuts.append(("cap:per_month", points - allowed))
        points = allowed
    state.cap_day_points += points
    state.cap_month_points += points

    # explain: the rounded total split over the rules, then rounding and caps
    rules = sorted(per_rule)
    if len(rules) == 1:
        shares = [rounded]
    elif rules:
        weights = [per_rule[r] for r in rules]
        shares = allocate(rounded, weights)  # scaled or not: the same proportions
    else:
        shares = []
    for rule, share in zip(rules, shares, strict=True):
        explanation.append({"rule": rule, "points": share})
    for rule, cut in cap_cuts:
        explanation.append({"rule": rule, "points": -cut})
    if not points:
        line_points = [0] * n
    elif n == 1:
        line_points = [points]
    else:
        line_points = allocate(points, per_line)

    # bonuses on the order (not capped)
    bonus_points, bonus_code = 0, None
    year = local_day.year
    for bonus, threshold in compiled.spend_bonuses:
        if event.amount_paid >= threshold and _bonus_allowed(
            state, bonus.code, bonus.per_year, year
        ):
            _count_bonus(state, bonus.code, year)
            bonus_points += bonus.points
            bonus_code = bonus.code
            explanation.append({"rule": f"bonus:{bonus.code}", "points": bonus.points})
            break

    # growth
    eligible_paid = [0 if excluded[i] else paid_by_line[i] for i in range(n)]
    eligible_total = sum(eligible_paid)
    growth_spend, growth_order = 0, 0
    minor = compiled.minor
    for source, fast in zip(program.growth.sources, compiled.growth, strict=True):
        if source.type is GrowthSourceType.SPEND and source.per:
            if fast is not None and eligible_total * fast[2] < _EXACT_LIMIT:
                growth_spend += _round_scaled(eligible_total * fast[0], fast[1], source.rounding)
            else:
                growth_spend += _round(
                    Decimal(eligible_total) / minor / source.per * source.amount,
                    source.rounding,
                )
        elif source.type is GrowthSourceType.ORDER:
            growth_order += source.amount
    line_growth = allocate(growth_spend, eligible_paid)

    total_points = points + bonus_points
    lot = _credit(
        program,
        state,
        entry,
        total_points,
        ISSUED,
        at,
        pending_days=program.points.pending_days,
        lot_source="purchase",
        reference=event.order_id,
        outcome=outcome,
    )
    entry.growth = growth_spend + growth_order
    entry.spend = event.amount_paid
    entry.orders = 1
    entry.detail = {
        "rules": explanation,
        "points": total_points,
        "growth": entry.growth,
        "tier_before": state.tier,
    }
    _record_activity(state, at, growth=entry.growth, spend=entry.spend, orders=1)
    _append(state, outcome, entry)

    _upgrade_if_earned(program, state, at, outcome)
    entry.detail["tier_after"] = state.tier
    if total_points:
        outcome.notices.append(
            Notice(
                "points.earned",
                at,
                {
                    "order_id": event.order_id,
                    "points": total_points,
                    "pending": lot is not None and not lot.released,
                },
            )
        )

    outcome.order = OrderRecord(
        order_id=event.order_id,
        occurred_at=at,
        channel=event.channel,
        store=event.store,
        amount_paid=event.amount_paid,
        gross=event.gross,
        points_used=event.points_used,
        lines=[
            LineRecord(
                line.sku,
                line.category,
                line.quantity,
                line.amount,
                paid_by_line[i],
                line_points[i],
                line_growth[i],
            )
            for i, line in enumerate(event.lines)
        ],
        lot_seq=lot.seq if lot else None,
        points=points,
        bonus_points=bonus_points,
        bonus_code=bonus_code,
        growth_order=growth_order,
    )
    outcome.explanation = explanation
    outcome.main = entry
    return outcome


# --- returns ---------------------------------------------------------------------------------


def check_return(order: OrderRecord, event: Return, window_days: int | None = None) -> None:
    if not event.lines:
        raise RuleError("ledger.no_lines")
    asked: dict[int, int] = {}
    for item in event.lines:
        if item.line < 0 or item.line >= len(order.lines):
            raise RuleError("ledger.unknown_line", line=item.line, order_id=order.order_id)
        if item.quantity <= 0:
            raise RuleError(
                "ledger.bad_quantity", sku=order.lines[item.line].sku, quantity=item.quantity
            )
        asked[item.line] = asked.get(item.line, 0) + item.quantity
    for index, quantity in asked.items():
        line = order.lines[index]
        if line.returned_quantity + quantity > line.quantity:
            raise RuleError(
                "ledger.return_too_much",
                sku=line.sku,
                bought=line.quantity,
                returned=line.returned_quantity,
                asked=quantity,
            )
    if event.occurred_at < order.occurred_at:
        raise RuleError("ledger.return_before_order", order_id=order.order_id)
    if window_days is not None and event.occurred_at > order.occurred_at + timedelta(
        days=window_days
    ):
        raise RuleError("ledger.return_window", days=window_days, order_id=order.order_id)


def return_(
    program: ProgramDefinition, state: MemberState, order: OrderRecord, event: Return
) -> Outcome:
    """Take back what the returned lines earned, refund points that paid for them,
    re-evaluate the tier."""
    check_return(order, event, program.returns.window_days)
    at = event.occurred_at
    outcome = Outcome()
    entry = Entry(
        0,
        "return",
        at,
        event.return_id,
        detail={"order_id": order.order_id, "tier_before": state.tier},
    )
    policy = program.returns
    take_points = take_growth = refund_paid = 0
    for item in event.lines:
        line = order.lines[item.line]
        line.returned_quantity += item.quantity
        # cumulative shares keep partial returns exact: all returned -> all taken back
        points_due = line.points * line.returned_quantity // line.quantity
        growth_due = line.growth * line.returned_quantity // line.quantity
        paid_due = line.paid * line.returned_quantity // line.quantity
        if policy.reverse_points:
            take_points += points_due - line.points_reversed
            line.points_reversed = points_due
        if policy.reverse_growth:
            take_growth += growth_due - line.growth_reversed
            line.growth_reversed = growth_due
        refund_paid += paid_due - line.paid_returned
        line.paid_returned = paid_due

    # the spend-threshold bonus goes when the order no longer reaches it
    if order.bonus_points and not order.bonus_reversed and policy.reverse_points:
        bonus = next((b for b in program.earning.bonuses if b.code == order.bonus_code), None)
        kept = order.amount_paid - sum(line.paid_returned for line in order.lines)
        if bonus is None or bonus.min_amount is None or kept < bonus.min_amount * unit(program):
            take_points += order.bonus_points
            order.bonus_reversed = True
    if policy.reverse_growth and order.fully_returned and not order.growth_order_reversed:
        take_growth += order.growth_order
        order.growth_order_reversed = True

    if take_points:
        entry.movements.extend(_take_back(program, state, order, take_points, at))
    entry.growth = -take_growth
    entry.spend = -refund_paid
    entry.orders = -1 if order.fully_returned else 0
    order.spend_reversed += refund_paid

    # points that paid for the order come back in proportion to what is returned
    if policy.refund_points_payment and order.points_used:
        returned_gross = sum(
            line.amount * line.returned_quantity // line.quantity for line in order.lines
        )
        due = order.points_used * returned_gross // order.gross if order.gross else 0
        if order.fully_returned:
            due = order.points_used
        refund = due - order.points_refunded
        if refund > 0:
            order.points_refunded = due
            _credit(
                program,
                state,
                entry,
                refund,
                PAYMENT,
                at,
                pending_days=0,
                lot_source="refund",
                reference=event.return_id,
                outcome=outcome,
            )
    _record_activity(state, at, growth=entry.growth, spend=entry.spend, orders=entry.orders)

    # a tier reached since the last review falls back when the order no longer earns it
    current = _tier_index(program, state.tier)
    floor = _tier_index(program, state.tier_at_review or program.entry_tier.code)
    if current > floor and not program.tiers[current].invitation_only:
        earned = _earned_tier(program, _measure(program, state, at))
        if earned < current:
            _change_tier(state, program, max(earned, floor), at, "return", outcome)
    entry.detail.update({"points": -take_points, "growth": -take_growth, "tier_after": state.tier})
    _append(state, outcome, entry, first=True)
    outcome.main = entry
    return outcome


def _take_back(
    program: ProgramDefinition, state: MemberState, order: OrderRecord, amount: int, at: datetime
) -> list[Movement]:
    movements: list[Movement] = []
    left = amount
    lot = next((x for x in state.lots if x.seq == order.lot_seq), None)
    if lot is not None and lot.remaining > 0:
        take = min(lot.remaining, left)
        lot.remaining -= take
        left -= take
        movements.append(Movement(AVAILABLE if lot.released else PENDING, RETURNED, take, lot.seq))
    if left:
        if program.returns.spent_points is SpentPointsPolicy.OTHER_LOTS:
            movements.extend(_consume(state, left, RETURNED, at, allow_debt=True))
        else:
            state.debt += left
            movements.append(Movement(AVAILABLE, RETURNED, left, None))
    return movements


# --- other events ----------------------------------------------------------------------------


def enrol(
    program: ProgramDefinition, state: MemberState, at: datetime, reference: str | None = None
) -> Outcome:
    """Sign-up bonus and sign-up growth."""
    outcome = Outcome()
    entry = Entry(0, "sign_up", at, reference)
    year = local(program, at).year
    for bonus in program.earning.bonuses:
        if bonus.type is BonusType.SIGN_UP and _bonus_allowed(state, bonus.code, None, year):
            _award(program, state, entry, bonus, at, outcome)
    for source in program.growth.sources:
        if source.type is GrowthSourceType.SIGN_UP:
            entry.growth += source.amount
    if entry.movements or entry.growth:
        _record_activity(state, at, growth=entry.growth)
        _append(state, outcome, entry)
        _upgrade_if_earned(program, state, at, outcome)
    return outcome


def bonus(
    program: ProgramDefinition,
    state: MemberState,
    bonus_type: BonusType,
    at: datetime,
    reference: str,
) -> Outcome:
    """A review or referral bonus (and its growth), within the program's yearly limit."""
    rule = next((b for b in program.earning.bonuses if b.type is bonus_type), None)
    growth_source = next(
        (s for s in program.growth.sources if s.type.value == bonus_type.value), None
    )
    if rule is None and growth_source is None:
        raise RuleError("ledger.no_such_bonus", bonus=bonus_type.value)
    year = local(program, at).year
    outcome = Outcome()
    entry = Entry(0, bonus_type.value, at, reference)
    if rule is not None:
        if not _bonus_allowed(state, rule.code, rule.per_year, year):
            raise RuleError("ledger.bonus_limit", bonus=rule.code, per_year=rule.per_year)
        _count_bonus(state, rule.code, year)
        _award(program, state, entry, rule, at, outcome)
    if growth_source is not None:
        entry.growth = growth_source.amount
    _record_activity(state, at, growth=entry.growth)
    _append(state, outcome, entry)
    _upgrade_if_earned(program, state, at, outcome)
    return outcome


def redeem(
    state: MemberState,
    points: int,
    at: datetime,
    reference: str,
    detail: dict[str, Any] | None = None,
) -> Outcome:
    """Spend points on a reward (soonest-expiring lots first)."""
    if points <= 0:
        raise RuleError("ledger.bad_points", points=points)
    if points > state.available:
        raise RuleError(
            "ledger.insufficient_points", requested=points, available=max(state.available, 0)
        )
    entry = Entry(0, "redemption", at, reference, detail=dict(detail or {}))
    entry.movements = _consume(state, points, REDEEMED, at)
    outcome = Outcome()
    _append(state, outcome, entry)
    outcome.notices.append(
        Notice("redemption", at, {"reference": reference, "points": points, **(detail or {})})
    )
    return outcome


def adjust(
    program: ProgramDefinition,
    state: MemberState,
    points: int,
    at: datetime,
    reference: str,
    reason: str,
    actor: str,
) -> Outcome:
    """A manual correction: positive points make a lot, negative ones are taken FEFO."""
    if points == 0:
        raise RuleError("ledger.bad_points", points=points)
    outcome = Outcome()
    entry = Entry(0, "adjustment", at, reference, detail={"reason": reason, "actor": actor})
    if points > 0:
        _credit(
            program,
            state,
            entry,
            points,
            ADJUSTMENT,
            at,
            pending_days=0,
            lot_source="adjustment",
            reference=reference,
            outcome=outcome,
        )
    else:
        if -points > state.available:
            raise RuleError(
                "ledger.insufficient_points", requested=-points, available=max(state.available, 0)
            )
        entry.movements = _consume(state, -points, ADJUSTMENT, at)
    _append(state, outcome, entry)
    return outcome


def buy_plan(
    program: ProgramDefinition, state: MemberState, plan_code: str, at: datetime, reference: str
) -> Outcome:
    """A paid membership: starts now, or extends the current one of the same plan."""
    plan = next((p for p in program.paid_plans if p.code == plan_code), None)
    if plan is None:
        raise RuleError("ledger.no_such_plan", plan=plan_code)
    start = (
        state.plan_until
        if (state.plan_code == plan_code and state.plan_until and state.plan_until > at)
        else at
    )
    start_local = local(program, start)
    until = datetime.combine(
        add_months(start_local.date(), plan.duration_months), start_local.timetz()
    ).astimezone(UTC)
    state.plan_code, state.plan_until = plan_code, until
    entry = Entry(
        0,
        "paid_plan",
        at,
        reference,
        detail={"plan": plan_code, "price": str(plan.price), "until": until.isoformat()},
    )
    outcome = Outcome(notices=[Notice("plan.purchased", at, dict(entry.detail))])
    _append(state, outcome, entry)
    return outcome


def copy_state(state: MemberState) -> MemberState:
    """A deep copy, for dry runs and for comparing drivers."""
    return replace(
        state,
        lots=[replace(lot) for lot in state.lots],
        activity=[replace(a) for a in state.activity],
        bonus_counts=dict(state.bonus_counts),
    )
