"""The staff handbook: a program explained to front-line staff, as PDF (and DOCX), in zh-CN or en.

Issue 7, item 8. The handbook is generated from a :class:`~memberlab.programs.schema.
ProgramDefinition` (the active program, as the caller loads it) and covers, in plain words:
how customers join; the tiers (a table of thresholds, what keeps a tier at the review, the
points multiplier and the benefits of each); how points are earned (base rate, multipliers
with their categories, channels, days and dates, limits, exclusions, when pending points can
be used, bonuses); how they are used (as payment, the rewards catalog, coupons); when they
expire; what a return does; paid membership plans; and the questions customers ask at the
till, answered from the program's own rules.

Every figure comes from the program. The worked answers are computed, not written: the
points an example order earns come from the rule engine itself
(:func:`memberlab.programs.rules.purchase`, on an ordinary day with no promotion), the last
day points can be used from :func:`memberlab.programs.rules.expiry_of`, the most points an
order can take from the points-payment settings. The only figure the handbook brings is the
example order amount (``example_amount``, 100 in the program's currency unless given).

The texts are the ``engagement.handbook.*`` keys of the engagement message catalogs
(``locales/en.yaml`` and ``locales/zh-CN.yaml``); the layout is the engagement documents'
(:class:`~memberlab.engagement.documents.Document`, laid out by
:func:`~memberlab.engagement.documents.write_pdf` with reportlab's built-in ``STSong-Light``
font, and :func:`~memberlab.engagement.documents.write_docx`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.i18n import catalogs, normalise_language
from memberlab.core.money import minor_digits
from memberlab.core.settings import Language
from memberlab.engagement.documents import (
    Block,
    Document,
    Grid,
    Para,
    format_date,
    format_number,
    write_docx,
    write_pdf,
)
from memberlab.programs import rules
from memberlab.programs.schema import (
    Benefit,
    BonusType,
    CouponTerms,
    ExpiryMode,
    GrowthSourceType,
    Multiplier,
    MultiplierType,
    ProgramDefinition,
    QualifyingMeasure,
    ReviewSchedule,
    Reward,
    SpentPointsPolicy,
    Stacking,
    Tier,
    WindowType,
)

__all__ = [
    "DEFAULT_EXAMPLE_AMOUNT",
    "InvalidHandbook",
    "OrderPoints",
    "handbook_document",
    "handbook_docx",
    "handbook_pdf",
    "last_usable_day",
    "max_points_payment",
    "order_points",
    "ordinary_day",
]

PREFIX = "engagement.handbook."
DEFAULT_EXAMPLE_AMOUNT = Decimal(100)
_SEARCH_DAYS = 400  # how far ahead to look for an ordinary day or a promotion day
_DAY_TYPES = (MultiplierType.MEMBER_DAY, MultiplierType.DATE_RANGE)
_NOWHERE = "-"  # a channel, category and SKU no program code can name (codes are [a-z0-9_])


class InvalidHandbook(InvalidInput):
    key = "engagement.handbook.invalid"


# --- figures computed from the program --------------------------------------------------------


@dataclass(frozen=True)
class OrderPoints:
    """What one example order earns: points from the order itself and the order bonus."""

    points: int
    bonus: int = 0
    bonus_code: str | None = None

    @property
    def total(self) -> int:
        return self.points + self.bonus


def _noon(program: ProgramDefinition, day: dt.date) -> dt.datetime:
    return rules.local_midnight(program, day) + dt.timedelta(hours=12)


def _day_multiplier_applies(multiplier: Multiplier, day: dt.date) -> bool:
    if multiplier.type is MultiplierType.MEMBER_DAY:
        return day.day in multiplier.days_of_month or day.isoweekday() in multiplier.weekdays
    if multiplier.type is MultiplierType.DATE_RANGE:
        return (
            multiplier.start is not None
            and multiplier.end is not None
            and multiplier.start <= day <= multiplier.end
        )
    return False


def ordinary_day(program: ProgramDefinition, start: dt.date) -> dt.date:
    """The first day from ``start`` with no member day or promotion date (``start`` if every
    day of the next ``_SEARCH_DAYS`` has one)."""
    day_rules = [m for m in program.earning.multipliers if m.type in _DAY_TYPES]
    for offset in range(_SEARCH_DAYS):
        day = start + dt.timedelta(days=offset)
        if not any(_day_multiplier_applies(m, day) for m in day_rules):
            return day
    return start


def _first_day_of(multiplier: Multiplier, start: dt.date) -> dt.date | None:
    for offset in range(_SEARCH_DAYS):
        day = start + dt.timedelta(days=offset)
        if _day_multiplier_applies(multiplier, day):
            return day
    return None


def order_points(
    program: ProgramDefinition, amount: Decimal, tier: Tier, day: dt.date
) -> OrderPoints:
    """The points an order paying ``amount`` (one item, with no category, SKU or channel
    multiplier) earns a member of ``tier`` on ``day``, by the rule engine itself."""
    at = _noon(program, day)
    state = rules.new_member_state(program, enrolled_at=at - dt.timedelta(days=1))
    state.tier = tier.code
    minor = int(amount * rules.unit(program))
    event = rules.Purchase(
        order_id="handbook-example",
        occurred_at=at,
        channel=_NOWHERE,
        store=None,
        lines=(rules.PurchaseLine(_NOWHERE, _NOWHERE, 1, minor),),
        amount_paid=minor,
    )
    order = rules.purchase(program, state, event).order
    assert order is not None
    return OrderPoints(order.points, order.bonus_points, order.bonus_code)


def max_points_payment(program: ProgramDefinition, amount: Decimal) -> int:
    """The most points an order of ``amount`` can take as payment (0: none can be used)."""
    payment = program.points_payment
    if not payment.enabled:
        return 0
    allowed = payment.max_share * amount * payment.points_per_unit
    points = int(allowed // payment.step) * payment.step
    return points if points >= payment.min_points and points > 0 else 0


def last_usable_day(program: ProgramDefinition, earned: dt.date) -> dt.date | None:
    """The last day points earned on ``earned`` can be used (None: they never expire)."""
    expires = rules.expiry_of(program, _noon(program, earned))
    if expires is None:
        return None
    return rules.local(program, expires).date() - dt.timedelta(days=1)


# --- the writer -----------------------------------------------------------------------------


def _number(value: Decimal | int) -> str:
    """A count or threshold as written: 12,800, 1.5."""
    number = Decimal(value)
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return format(number.normalize(), ",f")


class _Writer:
    """Writes the handbook of one program in one language."""

    def __init__(self, program: ProgramDefinition, lang: Language, example: Decimal) -> None:
        self.program = program
        self.lang = lang
        self.example = example
        self.table = catalogs()[lang]
        self.points_name = program.points.name.get(lang)
        self.growth_name = program.growth.name.get(lang)

    # texts and values

    def t(self, key: str, /, **params: Any) -> str:
        return self.table[PREFIX + key].format(**params)

    def has(self, key: str) -> bool:
        return PREFIX + key in self.table

    def join(self, items: Iterable[str]) -> str:
        return self.table["engagement.list_separator"].join(items)

    def clauses(self, items: Iterable[str]) -> str:
        return self.t("clause_sep").join(items)

    def sentences(self, items: Iterable[str]) -> str:
        return (" " if self.lang == "en" else "").join(item for item in items if item)

    def count(self, unit: str, n: int) -> str:
        return self.t(f"{unit}_one" if n == 1 else f"{unit}_many", n=_number(n))

    def pts(self, n: int) -> str:
        return self.count("point", n)

    def money(self, amount: Decimal) -> str:
        step = Decimal(1).scaleb(-minor_digits(self.program.currency))
        value = Decimal(amount).quantize(step)
        text = _number(value) if value == value.to_integral_value() else format(value, ",f")
        if self.program.currency == "CNY":
            return self.t("money_cny", amount=text)
        return self.t("money_other", amount=text, currency=self.program.currency)

    def factor(self, value: Decimal) -> str:
        return self.t("factor", factor=format_number(Decimal(value)))

    def percent(self, share: Decimal) -> str:
        return self.t("percent", value=_number(share * 100))

    def date(self, day: dt.date) -> str:
        return format_date(day, self.lang)

    def growth(self, n: Decimal | int) -> str:
        return self.t("growth_amount", n=_number(n), name=self.growth_name)

    def codes(self, codes: Sequence[str]) -> str:
        return self.join(self.t("codes", codes=code) for code in codes)

    def channels(self, codes: Sequence[str]) -> str:
        return self.join(
            self.t(f"channel.{code}") if self.has(f"channel.{code}") else code for code in codes
        )

    def measure_value(self, value: Decimal) -> str:
        measure = self.program.tier_qualification.measure
        if measure is QualifyingMeasure.GROWTH:
            return self.growth(value)
        if measure is QualifyingMeasure.SPEND:
            return self.money(value)
        return self.count("order", int(value))

    def measure(self) -> str:
        measure = self.program.tier_qualification.measure
        return self.t(f"measure.{measure.value}", growth=self.growth_name)

    def window(self) -> str:
        window = self.program.tier_qualification.window
        if window.type is WindowType.ROLLING_MONTHS:
            return self.t("window.rolling_months", months=self.count("month", window.months or 12))
        return self.t(f"window.{window.type.value}")

    def benefits(self, benefits: Sequence[Benefit]) -> str:
        if not benefits:
            return self.t("none")
        return self.clauses(
            self.t("benefit_count", name=b.name.get(self.lang), n=_number(b.quantity_per_year))
            if b.quantity_per_year
            else b.name.get(self.lang)
            for b in benefits
        )

    # sections

    def blocks(self, brand: str | None, generated: dt.date) -> list[Block]:
        program = self.program
        name = program.name.get(self.lang)
        blocks: list[Block] = [Para(self.t("title", program=name), "title")]
        if brand:
            blocks.append(Para(brand, "subtitle"))
        blocks.append(Para(self.t("internal"), "note"))
        blocks.append(Para(self.t("generated", date=self.date(generated), code=program.code)))
        if program.description is not None:
            blocks.append(Para(program.description.get(self.lang)))
        blocks.append(Para(self.t("intro", program=name, points=self.points_name)))
        if self.uses_growth():
            names = self.t("names", points=self.points_name, growth=self.growth_name)
        else:
            names = self.t("names_points", points=self.points_name)
        blocks.append(Para(names))
        blocks += self.joining()
        blocks += self.tiers()
        blocks += self.earning()
        blocks += self.using()
        blocks += self.expiry(generated)
        blocks += self.returns()
        blocks += self.plans()
        blocks += self.faq(generated)
        return blocks

    def uses_growth(self) -> bool:
        """Whether growth value means anything here: it is earned, or it sets the tiers."""
        return bool(self.program.growth.sources) or (
            self.program.tier_qualification.measure is QualifyingMeasure.GROWTH
        )

    def heading(self, key: str) -> Para:
        return Para(self.t(key, points=self.points_name), "heading")

    def join_texts(self) -> list[str]:
        program = self.program
        enrolment = program.enrolment
        texts = [
            self.t("join_channels", channels=self.channels(enrolment.channels))
            if enrolment.channels
            else self.t("join_channels_any"),
            self.t("join_auto" if enrolment.enrol_on_first_purchase else "join_manual"),
            self.t("join_entry", tier=program.entry_tier.name.get(self.lang)),
        ]
        for bonus in program.earning.bonuses:
            if bonus.type is BonusType.SIGN_UP:
                texts.append(
                    self.t(
                        "join_bonus", points=self.pts(bonus.points), name=bonus.name.get(self.lang)
                    )
                )
        for source in program.growth.sources:
            if source.type is GrowthSourceType.SIGN_UP:
                texts.append(self.t("join_growth", growth=self.growth(source.amount)))
        return texts

    def joining(self) -> list[Block]:
        return [self.heading("h_join"), *(Para(text) for text in self.join_texts())]

    # tiers

    def growth_sources(self) -> str | None:
        sources = self.program.growth.sources
        if not sources:
            return None
        parts = []
        for source in sources:
            if source.type is GrowthSourceType.SPEND:
                parts.append(
                    self.t(
                        "growth.spend",
                        amount=_number(source.amount),
                        per=self.money(source.per or Decimal(1)),
                        rounding=self.t(f"rounding.{source.rounding.value}"),
                    )
                )
            else:
                parts.append(self.t(f"growth.{source.type.value}", amount=_number(source.amount)))
        return self.t("tiers_growth", growth=self.growth_name, sources=self.clauses(parts))

    def review_text(self) -> str:
        review = self.program.tier_qualification.review
        schedule = self.t(
            f"review.{review.schedule.value}",
            months=self.count("month", review.months or 12)
            if review.schedule is ReviewSchedule.EVERY_N_MONTHS
            else "",
        )
        return self.t(
            "tiers_review", schedule=schedule, steps=self.count("tier", review.max_downgrade_steps)
        )

    def invitation_text(self) -> str | None:
        invited = [t.name.get(self.lang) for t in self.program.tiers if t.invitation_only]
        return self.t("tiers_invitation", tiers=self.join(invited)) if invited else None

    def reach(self, index: int, tier: Tier) -> str:
        if index == 0:
            return self.t("reach_entry")
        if tier.invitation_only:
            return self.t("reach_invitation", value=self.measure_value(tier.threshold))
        return self.measure_value(tier.threshold)

    def keep(self, index: int, tier: Tier) -> str:
        if index == 0:
            return self.t("keep_always")
        if tier.retention_threshold is not None:
            return self.measure_value(tier.retention_threshold)
        if tier.invitation_only:
            return self.t("keep_always")
        return self.measure_value(tier.threshold)

    def tiers(self) -> list[Block]:
        rows = tuple(
            (
                tier.name.get(self.lang),
                self.reach(i, tier),
                self.keep(i, tier),
                self.factor(tier.earn_multiplier),
                self.benefits(tier.benefits),
            )
            for i, tier in enumerate(self.program.tiers)
        )
        header = tuple(
            self.t(k)
            for k in ("col_tier", "col_reach", "col_keep", "col_multiplier", "col_benefits")
        )
        texts = [
            self.t("tiers_measure", measure=self.measure(), window=self.window()),
            self.growth_sources(),
            self.review_text(),
            self.invitation_text(),
        ]
        return [
            self.heading("h_tiers"),
            *(Para(text) for text in texts if text),
            Grid(rows, header, widths=(1.3, 1.4, 1.3, 0.9, 2.8)),
        ]

    # earning

    def base_rate(self) -> str:
        base = self.program.earning.base
        return self.t(
            "earn_base",
            per=self.money(base.per),
            basis=self.t(f"basis.{base.basis.value}"),
            points=self.pts(base.points),
        )

    def applies(self, m: Multiplier) -> str:
        if m.type is MultiplierType.CATEGORY:
            return self.t("applies.category", codes=self.codes(m.categories))
        if m.type is MultiplierType.SKU:
            return self.t("applies.sku", codes=self.codes(m.skus))
        if m.type is MultiplierType.CHANNEL:
            return self.t("applies.channel", channels=self.channels(m.channels))
        if m.type is MultiplierType.DATE_RANGE:
            if m.start is None or m.end is None:
                return self.t("none")
            return self.t("applies.range", start=self.date(m.start), end=self.date(m.end))
        parts = []
        if m.days_of_month:
            parts.append(self.t("applies.days", days=self.join(str(d) for d in m.days_of_month)))
        if m.weekdays:
            days = self.join(self.t(f"weekday_{d}") for d in m.weekdays)
            parts.append(self.t("applies.weekdays", days=days))
        return self.clauses(parts) or self.t("none")

    def stacking(self) -> str:
        earning = self.program.earning
        if earning.stacking is Stacking.BEST:
            return self.t("stacking.best")
        multipliers = earning.multipliers
        for i, first in enumerate(multipliers):
            for second in multipliers[i + 1 :]:
                if first.type is not second.type:
                    return self.t(
                        "stacking.all_example",
                        a=self.factor(first.factor),
                        b=self.factor(second.factor),
                        c=self.factor(first.factor * second.factor),
                    )
        return self.t("stacking.all")

    def caps_text(self) -> str:
        caps = self.program.earning.caps
        limits = [
            self.t(f"cap.{name}", points=self.pts(value))
            for name, value in (
                ("per_order", caps.per_order),
                ("per_day", caps.per_day),
                ("per_month", caps.per_month),
            )
            if value is not None
        ]
        return self.t("caps", limits=self.join(limits)) if limits else self.t("no_caps")

    def exclusions_text(self) -> str:
        ex = self.program.earning.exclusions
        items = []
        if ex.categories:
            items.append(self.t("excl.categories", codes=self.codes(ex.categories)))
        if ex.skus:
            items.append(self.t("excl.skus", codes=self.codes(ex.skus)))
        if ex.channels:
            items.append(self.t("excl.channels", channels=self.channels(ex.channels)))
        if not items:
            return self.t("no_exclusions", points=self.points_name)
        return self.t("exclusions", points=self.points_name, items=self.clauses(items))

    def pending_text(self) -> str:
        days = self.program.points.pending_days
        return self.t("pending", days=self.count("day", days)) if days else self.t("pending_none")

    def bonus_rows(self) -> tuple[tuple[str, ...], ...]:
        rows = []
        for bonus in self.program.earning.bonuses:
            when = self.t(
                f"bonus.{bonus.type.value}",
                amount=self.money(bonus.min_amount or Decimal(0)),
            )
            if bonus.per_year:
                limit = self.t("limit_year", n=_number(bonus.per_year))
            elif bonus.type is BonusType.SIGN_UP:
                limit = self.t("limit_once")
            else:
                limit = self.t("limit_none")
            rows.append((bonus.name.get(self.lang), when, _number(bonus.points), limit))
        return tuple(rows)

    def earning(self) -> list[Block]:
        earning = self.program.earning
        base = earning.base
        blocks: list[Block] = [
            self.heading("h_earn"),
            Para(self.t("sub_base"), "subheading"),
            Para(self.base_rate()),
            Para(self.t("earn_rounding", rounding=self.t(f"rounding.{base.rounding.value}"))),
            Para(
                self.t(
                    "earn_tier_stacks" if earning.tier_multiplier_stacks else "earn_tier_competes"
                )
            ),
            Para(self.t("sub_multipliers"), "subheading"),
        ]
        if earning.multipliers:
            rows = tuple(
                (m.name.get(self.lang), self.applies(m), self.factor(m.factor))
                for m in earning.multipliers
            )
            header = (self.t("col_promotion"), self.t("col_applies"), self.t("col_factor"))
            blocks += [Grid(rows, header, widths=(2.6, 3.0, 0.8)), Para(self.stacking())]
        else:
            blocks.append(Para(self.t("no_multipliers")))
        blocks += [
            Para(self.t("sub_limits"), "subheading"),
            Para(self.caps_text()),
            Para(self.exclusions_text()),
            Para(self.t("sub_pending"), "subheading"),
            Para(self.pending_text()),
            Para(self.t("sub_bonuses"), "subheading"),
        ]
        if earning.bonuses:
            header = tuple(self.t(k) for k in ("col_bonus", "col_when", "col_points", "col_limit"))
            blocks.append(Grid(self.bonus_rows(), header, widths=(1.8, 3.2, 0.9, 1.1)))
        else:
            blocks.append(Para(self.t("no_bonuses")))
        return blocks

    # using

    def payment_texts(self) -> list[str]:
        payment = self.program.points_payment
        if not payment.enabled:
            return [self.t("pay_off")]
        minimum = (
            self.t("pay_minimum", points=self.pts(payment.min_points)) if payment.min_points else ""
        )
        texts = [
            self.t(
                "pay",
                ppu=self.pts(payment.points_per_unit),
                one=self.money(Decimal(1)),
                step=self.pts(payment.step),
                minimum=minimum,
                share=self.percent(payment.max_share),
            )
        ]
        most = max_points_payment(self.program, self.example)
        if most:
            value = Decimal(most) / payment.points_per_unit
            texts.append(
                self.t(
                    "pay_example",
                    amount=self.money(self.example),
                    points=self.pts(most),
                    value=self.money(value),
                )
            )
        else:
            texts.append(self.t("pay_example_none", amount=self.money(self.example)))
        return texts

    def reward_notes(self, reward: Reward) -> str:
        notes = []
        if reward.stock is not None:
            notes.append(self.t("note_stock", n=_number(reward.stock)))
        if reward.per_member_limit is not None:
            notes.append(self.t("note_limit", n=_number(reward.per_member_limit)))
        start, end = reward.valid_from, reward.valid_until
        if start and end:
            notes.append(self.t("note_from_until", start=self.date(start), end=self.date(end)))
        elif start:
            notes.append(self.t("note_from", start=self.date(start)))
        elif end:
            notes.append(self.t("note_until", end=self.date(end)))
        return self.clauses(notes) or self.t("none")

    def coupons(self) -> list[tuple[Reward, CouponTerms]]:
        return [(r, r.coupon) for r in self.program.rewards if r.coupon is not None]

    def using(self) -> list[Block]:
        program = self.program
        blocks: list[Block] = [
            self.heading("h_use"),
            Para(self.t("sub_payment"), "subheading"),
            *(Para(text) for text in self.payment_texts()),
            Para(self.t("sub_rewards"), "subheading"),
        ]
        if program.rewards:
            rows = tuple(
                (
                    r.name.get(self.lang),
                    self.t(f"reward.{r.type.value}"),
                    _number(r.points_cost),
                    self.reward_notes(r),
                )
                for r in program.rewards
            )
            header = tuple(self.t(k) for k in ("col_reward", "col_type", "col_cost", "col_notes"))
            blocks += [
                Para(self.t("rewards_intro", points=self.points_name)),
                Grid(rows, header, widths=(2.6, 0.9, 1.1, 2.8)),
            ]
        else:
            blocks.append(Para(self.t("rewards_none")))
        blocks.append(Para(self.t("sub_coupons"), "subheading"))
        coupons = self.coupons()
        if coupons:
            rows = tuple(
                (
                    r.name.get(self.lang),
                    self.money(c.value),
                    self.money(c.min_spend) if c.min_spend else self.t("min_none"),
                    self.t("valid_days", days=self.count("day", c.validity_days)),
                )
                for r, c in coupons
            )
            header = tuple(self.t(k) for k in ("col_coupon", "col_value", "col_min", "col_valid"))
            blocks += [
                Para(self.t("coupons_intro")),
                Grid(rows, header, widths=(2.6, 1.0, 1.2, 1.8)),
            ]
        else:
            blocks.append(Para(self.t("coupons_none")))
        return blocks

    # expiry

    def expiry_texts(self, generated: dt.date) -> list[str]:
        points = self.program.points
        expiry = points.expiry
        mode = expiry.mode
        name = self.points_name
        if mode is ExpiryMode.NEVER:
            return [self.t("expiry.never", points=name)]
        if mode is ExpiryMode.END_OF_NTH_YEAR:
            years = expiry.years or 0
            key = {0: "expiry.year_same", 1: "expiry.year_next"}.get(years, "expiry.year_n")
            texts = [self.t(key, points=name, years=_number(years))]
        else:
            months = self.count("month", expiry.months or 0)
            texts = [self.t(f"expiry.{mode.value}", points=name, months=months)]
        last = last_usable_day(self.program, generated)
        if last is not None:
            texts.append(
                self.t("expiry_example", earned=self.date(generated), last=self.date(last))
            )
        if points.pending_days:
            texts.append(self.t("expiry_pending"))
        if points.expiring_notice_days:
            texts.append(
                self.t("expiry_notice", days=self.count("day", points.expiring_notice_days))
            )
        texts.append(self.t("expiry_fefo"))
        return texts

    def expiry(self, generated: dt.date) -> list[Block]:
        return [self.heading("h_expiry"), *(Para(t) for t in self.expiry_texts(generated))]

    # returns

    def return_texts(self) -> list[str]:
        policy = self.program.returns
        name = self.points_name
        texts = []
        if policy.window_days is not None:
            texts.append(self.t("returns_window", days=self.count("day", policy.window_days)))
        if policy.reverse_points:
            texts.append(self.t("returns_points_back", points=name))
            order_bonuses = [
                b.name.get(self.lang)
                for b in self.program.earning.bonuses
                if b.type is BonusType.SPEND_THRESHOLD
            ]
            if order_bonuses:
                texts.append(self.t("returns_bonus", names=self.join(order_bonuses)))
            texts.append(
                self.t(
                    "returns_other_lots"
                    if policy.spent_points is SpentPointsPolicy.OTHER_LOTS
                    else "returns_debt"
                )
            )
        else:
            texts.append(self.t("returns_points_kept", points=name))
        texts.append(
            self.t("returns_refund" if policy.refund_points_payment else "returns_no_refund")
        )
        if self.program.growth.sources:
            growth_key = "returns_growth_back" if policy.reverse_growth else "returns_growth_kept"
            texts.append(self.t(growth_key, growth=self.growth_name))
        texts.append(self.t("returns_tier"))
        return texts

    def returns(self) -> list[Block]:
        return [self.heading("h_returns"), *(Para(t) for t in self.return_texts())]

    # paid plans

    def duration(self, months: int) -> str:
        return self.count("month", months)

    def plans(self) -> list[Block]:
        plans = self.program.paid_plans
        if not plans:
            return [self.heading("h_plans"), Para(self.t("plans_none"))]
        rows = tuple(
            (
                p.name.get(self.lang),
                self.money(p.price),
                self.duration(p.duration_months),
                self.factor(p.earn_multiplier),
                self.benefits(p.benefits),
            )
            for p in plans
        )
        header = tuple(
            self.t(k)
            for k in ("col_plan", "col_price", "col_duration", "col_multiplier", "col_benefits")
        )
        return [
            self.heading("h_plans"),
            Para(self.t("plans_intro")),
            Grid(rows, header, widths=(1.3, 0.9, 0.9, 0.9, 3.0)),
        ]

    # questions

    def faq(self, generated: dt.date) -> list[Block]:
        blocks: list[Block] = [self.heading("h_faq")]
        for n, (question, answer) in enumerate(self.questions(generated), 1):
            blocks.append(Para(self.t("faq_q", n=n, question=question), "subheading"))
            blocks.append(Para(answer))
        return blocks

    def questions(self, generated: dt.date) -> list[tuple[str, str]]:
        """The questions customers ask at the till, each answered from the program."""
        program = self.program
        amount = self.money(self.example)
        qa = [
            (self.t("q.join"), self.sentences(self.join_texts())),
            (self.t("q.order", amount=amount), self.order_answer(generated)),
            (self.t("q.today"), self.today_answer()),
            (self.t("q.excluded"), self.excluded_answer()),
            (self.t("q.pay"), self.pay_answer()),
        ]
        coupons = self.coupons()
        if coupons:
            items = [
                self.t(
                    "a.coupon_item",
                    name=r.name.get(self.lang),
                    days=self.count("day", c.validity_days),
                )
                for r, c in coupons
            ]
            qa.append((self.t("q.coupon"), self.t("a.coupon", coupons=self.clauses(items))))
        qa += [
            (self.t("q.upgrade"), self.upgrade_answer()),
            (self.t("q.keep"), self.keep_answer()),
            (self.t("q.expiry"), self.sentences(self.expiry_texts(generated))),
        ]
        birthday = self.birthday_answer()
        if birthday:
            qa.append((self.t("q.birthday"), birthday))
        qa.append((self.t("q.returns"), self.sentences(self.return_texts())))
        if program.paid_plans:
            qa.append((self.t("q.plan"), self.plan_answer()))
        return qa

    def bonus_name(self, code: str | None) -> str:
        bonus = next((b for b in self.program.earning.bonuses if b.code == code), None)
        return bonus.name.get(self.lang) if bonus else ""

    def order_item(self, tier: Tier, result: OrderPoints) -> str:
        name = tier.name.get(self.lang)
        if not result.bonus:
            return self.t("a.order_tier", tier=name, total=self.pts(result.total))
        return self.t(
            "a.order_tier_bonus",
            tier=name,
            total=self.pts(result.total),
            base=_number(result.points),
            bonus=_number(result.bonus),
            name=self.bonus_name(result.bonus_code),
        )

    def order_answer(self, generated: dt.date) -> str:
        program = self.program
        day = ordinary_day(program, generated)
        per_tier = [
            self.order_item(tier, order_points(program, self.example, tier, day))
            for tier in program.tiers
        ]
        texts = [
            self.t("a.order", amount=self.money(self.example), per_tier=self.clauses(per_tier))
        ]
        for plan in program.paid_plans:
            if plan.earn_multiplier != 1:
                texts.append(
                    self.t(
                        "a.order_plan",
                        plan=plan.name.get(self.lang),
                        factor=self.factor(plan.earn_multiplier),
                    )
                )
        for multiplier in program.earning.multipliers:
            if multiplier.type not in _DAY_TYPES:
                continue
            promotion_day = _first_day_of(multiplier, generated)
            if promotion_day is None:
                continue
            entry = program.entry_tier
            result = order_points(program, self.example, entry, promotion_day)
            texts.append(
                self.t(
                    "a.order_day",
                    name=multiplier.name.get(self.lang),
                    date=self.date(promotion_day),
                    tier=entry.name.get(self.lang),
                    total=self.pts(result.total),
                )
            )
            break
        texts.append(self.pending_text())
        return self.sentences(texts)

    def today_answer(self) -> str:
        multipliers = self.program.earning.multipliers
        days = [m for m in multipliers if m.type in _DAY_TYPES]
        if days:
            items = [
                self.t(
                    "a.today_item",
                    name=m.name.get(self.lang),
                    applies=self.applies(m),
                    factor=self.factor(m.factor),
                )
                for m in days
            ]
            texts = [self.t("a.today", days=self.clauses(items))]
        else:
            texts = [self.t("a.today_none")]
        if len(days) < len(multipliers):
            texts.append(self.t("a.today_other"))
        return self.sentences(texts)

    def excluded_answer(self) -> str:
        texts = [self.exclusions_text(), self.caps_text(), self.pending_text()]
        if not self.program.enrolment.enrol_on_first_purchase:
            texts.append(self.t("join_manual"))
        return self.sentences(texts)

    def pay_answer(self) -> str:
        if not self.program.points_payment.enabled:
            return self.t("pay_off")
        return self.sentences([self.t("a.pay_yes"), *self.payment_texts()])

    def upgrade_answer(self) -> str:
        tiers = [
            self.t(
                "a.tier_value", tier=t.name.get(self.lang), value=self.measure_value(t.threshold)
            )
            for t in self.program.tiers[1:]
            if not t.invitation_only
        ]
        if tiers:
            text = self.t(
                "a.upgrade",
                measure=self.measure(),
                window=self.window(),
                tiers=self.clauses(tiers),
            )
        else:
            text = self.t("a.upgrade_none")
        return self.sentences([text, self.invitation_text() or ""])

    def keep_answer(self) -> str:
        tiers = [
            self.t("a.tier_value", tier=tier.name.get(self.lang), value=self.keep(i, tier))
            for i, tier in enumerate(self.program.tiers)
            if i > 0
        ]
        texts = [self.review_text()]
        if tiers:
            texts.append(self.t("a.keep", tiers=self.clauses(tiers)))
        return self.sentences(texts)

    def birthday_answer(self) -> str | None:
        texts = [
            self.t("a.birthday_bonus", points=self.pts(b.points), name=b.name.get(self.lang))
            for b in self.program.earning.bonuses
            if b.type is BonusType.BIRTHDAY
        ]
        texts += [
            self.t("a.birthday_growth", growth=self.growth(s.amount))
            for s in self.program.growth.sources
            if s.type is GrowthSourceType.BIRTHDAY
        ]
        return self.sentences(texts) if texts else None

    def plan_answer(self) -> str:
        items = [
            self.t(
                "a.plan_item",
                plan=p.name.get(self.lang),
                price=self.money(p.price),
                duration=self.duration(p.duration_months),
                factor=self.factor(p.earn_multiplier),
                benefits=self.benefits(p.benefits),
            )
            for p in self.program.paid_plans
        ]
        return self.t("a.plan", plans=self.clauses(items))


# --- entry points ---------------------------------------------------------------------------


def _language(lang: str) -> Language:
    language = normalise_language(lang)
    if language is None:
        raise InvalidHandbook(errors=[FieldError("lang", PREFIX + "language", {"value": lang})])
    return language


def _moment(value: dt.datetime | dt.date | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now().replace(microsecond=0)
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time())


def _example(program: ProgramDefinition, amount: Decimal | int | str) -> Decimal:
    refused = InvalidHandbook(
        errors=[FieldError("example_amount", PREFIX + "example_amount", {"value": amount})]
    )
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation as exc:
        raise refused from exc
    step = Decimal(1).scaleb(-minor_digits(program.currency))
    if not value.is_finite() or value <= 0 or value != value.quantize(step):
        raise refused
    return value


def handbook_document(
    program: ProgramDefinition,
    lang: str,
    *,
    brand: str | None = None,
    generated_at: dt.datetime | dt.date | None = None,
    example_amount: Decimal | int | str = DEFAULT_EXAMPLE_AMOUNT,
) -> Document:
    """The staff handbook of ``program`` in ``lang`` (zh-CN or en), as document blocks.

    ``generated_at`` (default: now) is printed on the handbook and is the day the worked
    examples start from (the expiry example, the next ordinary day and promotion day);
    ``example_amount`` is the order amount of the worked examples.
    """
    language = _language(lang)
    moment = _moment(generated_at)
    writer = _Writer(program, language, _example(program, example_amount))
    name = brand or program.name.get(language)
    return Document(
        lang=language,
        title=writer.t("title", program=program.name.get(language)),
        reference=writer.t("footer", name=name),
        page_label=writer.t("page", page="{page}"),
        generated_at=moment,
        blocks=tuple(writer.blocks(brand, moment.date())),
    )


def handbook_pdf(
    program: ProgramDefinition,
    lang: str,
    out_path: str | Path,
    *,
    brand: str | None = None,
    generated_at: dt.datetime | dt.date | None = None,
    example_amount: Decimal | int | str = DEFAULT_EXAMPLE_AMOUNT,
) -> Path:
    """Write the staff handbook of ``program`` as an A4 PDF; returns the path written."""
    document = handbook_document(
        program, lang, brand=brand, generated_at=generated_at, example_amount=example_amount
    )
    return write_pdf(document, out_path)


def handbook_docx(
    program: ProgramDefinition,
    lang: str,
    out_path: str | Path,
    *,
    brand: str | None = None,
    generated_at: dt.datetime | dt.date | None = None,
    example_amount: Decimal | int | str = DEFAULT_EXAMPLE_AMOUNT,
) -> Path:
    """Write the staff handbook of ``program`` as a Word file; returns the path written."""
    document = handbook_document(
        program, lang, brand=brand, generated_at=generated_at, example_amount=example_amount
    )
    return write_docx(document, out_path)
