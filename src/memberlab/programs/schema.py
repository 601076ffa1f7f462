"""The program definition file: the shape of a membership program.

A program file (YAML or JSON) is parsed into ``ProgramDefinition``. The models here say
what each field is; the checks that relate fields to each other (thresholds in order,
codes unique, a mode's required fields present) live in ``validation.py`` so that every
message, structural or semantic, is produced the same way, with its path, in zh-CN and en.

Money is written as a decimal in the program's currency ("0.01", 99.9) and held as
``Decimal``; points and growth value are integers; multipliers are decimals.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Factor = Annotated[Decimal, Field(ge=0, le=100, max_digits=8, decimal_places=4)]
Share = Annotated[Decimal, Field(ge=0, le=1, max_digits=6, decimal_places=4)]
Points = Annotated[int, Field(ge=0, le=1_000_000_000)]
PositiveInt = Annotated[int, Field(ge=1, le=1_000_000)]


class Strict(BaseModel):
    """Unknown fields are errors: a misspelt key must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class LocalText(Strict):
    """A text a person reads, in both languages."""

    zh: Annotated[str, Field(min_length=1, max_length=500)]
    en: Annotated[str, Field(min_length=1, max_length=500)]

    def get(self, lang: str) -> str:
        return self.zh if lang.startswith("zh") else self.en


class Rounding(StrEnum):
    FLOOR = "floor"
    HALF_UP = "half_up"
    CEILING = "ceiling"


class ExpiryMode(StrEnum):
    NEVER = "never"
    MONTHS_AFTER_EARNING = "months_after_earning"  # the same day N months later
    END_OF_NTH_YEAR = "end_of_nth_year"  # 31 Dec of the Nth calendar year after earning
    END_OF_MONTH_AFTER_MONTHS = "end_of_month_after_months"  # month end, N months later


class PointsExpiry(Strict):
    mode: ExpiryMode = ExpiryMode.NEVER
    months: PositiveInt | None = None
    years: Annotated[int, Field(ge=0, le=100)] | None = None


class PointsSettings(Strict):
    name: LocalText = LocalText(zh="积分", en="Points")
    value_per_point: Annotated[Decimal, Field(gt=0, le=1000, max_digits=12, decimal_places=6)]
    expiry: PointsExpiry = PointsExpiry()
    pending_days: Annotated[int, Field(ge=0, le=365)] = 0
    expiring_notice_days: Annotated[int, Field(ge=0, le=365)] = 30


class GrowthSourceType(StrEnum):
    SPEND = "spend"  # growth per amount spent
    ORDER = "order"  # growth per order
    SIGN_UP = "sign_up"
    REVIEW = "review"
    REFERRAL = "referral"
    BIRTHDAY = "birthday"


class GrowthSource(Strict):
    type: GrowthSourceType
    amount: Points = Field(description="Growth given per `per` spent (spend) or per event.")
    per: Money | None = Field(default=None, description="Amount spent per `amount` (spend).")
    rounding: Rounding = Rounding.FLOOR


class GrowthSettings(Strict):
    name: LocalText = LocalText(zh="成长值", en="Growth value")
    sources: list[GrowthSource] = Field(default_factory=list)


class QualifyingMeasure(StrEnum):
    GROWTH = "growth"
    SPEND = "spend"
    ORDERS = "orders"


class WindowType(StrEnum):
    ROLLING_MONTHS = "rolling_months"
    CALENDAR_YEAR = "calendar_year"
    LIFETIME = "lifetime"


class ReviewSchedule(StrEnum):
    ANNIVERSARY = "anniversary"  # each member's enrolment anniversary
    CALENDAR_YEAR_END = "calendar_year_end"
    EVERY_N_MONTHS = "every_n_months"


class QualifyingWindow(Strict):
    type: WindowType = WindowType.ROLLING_MONTHS
    months: PositiveInt | None = Field(default=None, description="Length (rolling_months).")


class TierReview(Strict):
    schedule: ReviewSchedule = ReviewSchedule.CALENDAR_YEAR_END
    months: PositiveInt | None = None
    max_downgrade_steps: Annotated[int, Field(ge=1, le=20)] = 1


class TierQualification(Strict):
    measure: QualifyingMeasure = QualifyingMeasure.GROWTH
    window: QualifyingWindow = QualifyingWindow(months=12)
    review: TierReview = TierReview()


class Benefit(Strict):
    code: Code
    name: LocalText
    unit_cost: Money = Field(description="What one use costs the client, for budgeting.")
    quantity_per_year: Annotated[int, Field(ge=0, le=10_000)] | None = None


class Tier(Strict):
    code: Code
    name: LocalText
    threshold: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)] = Field(
        description="Qualifying measure needed to reach this tier (0 for the entry tier)."
    )
    retention_threshold: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)] | None = (
        Field(default=None, description="Measure needed to keep the tier at review (保级).")
    )
    invitation_only: bool = False
    earn_multiplier: Factor = Decimal(1)
    benefits: list[Benefit] = Field(default_factory=list)


class Basis(StrEnum):
    PAID = "paid"  # amount paid in money, after discounts and points
    GROSS = "gross"  # line amounts before order discounts


class BaseEarn(Strict):
    points: Points = Field(description="Points per `per` of the basis amount.")
    per: Money = Decimal(1)
    basis: Basis = Basis.PAID
    rounding: Rounding = Rounding.FLOOR


class Stacking(StrEnum):
    BEST = "best"  # only the largest applicable multiplier
    ALL = "all"  # all applicable multipliers multiply together


class MultiplierType(StrEnum):
    CATEGORY = "category"
    SKU = "sku"
    CHANNEL = "channel"
    MEMBER_DAY = "member_day"
    DATE_RANGE = "date_range"


class Multiplier(Strict):
    code: Code
    name: LocalText
    type: MultiplierType
    factor: Factor
    categories: list[Code] = Field(default_factory=list)
    skus: list[str] = Field(default_factory=list)
    channels: list[Code] = Field(default_factory=list)
    days_of_month: list[Annotated[int, Field(ge=1, le=31)]] = Field(default_factory=list)
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default_factory=list, description="ISO weekdays, 1 = Monday."
    )
    start: date | None = None
    end: date | None = None


class BonusType(StrEnum):
    SIGN_UP = "sign_up"
    BIRTHDAY = "birthday"
    REVIEW = "review"
    REFERRAL = "referral"
    SPEND_THRESHOLD = "spend_threshold"


class Bonus(Strict):
    code: Code
    name: LocalText
    type: BonusType
    points: Points
    min_amount: Money | None = Field(default=None, description="Order amount (spend_threshold).")
    per_year: Annotated[int, Field(ge=1, le=366)] | None = None


class Caps(Strict):
    per_order: Points | None = None
    per_day: Points | None = None
    per_month: Points | None = None


class Exclusions(Strict):
    categories: list[Code] = Field(default_factory=list)
    skus: list[str] = Field(default_factory=list)
    channels: list[Code] = Field(default_factory=list)


class Earning(Strict):
    base: BaseEarn
    stacking: Stacking = Stacking.BEST
    tier_multiplier_stacks: bool = Field(
        default=True, description="Whether the tier multiplier applies on top of the others."
    )
    multipliers: list[Multiplier] = Field(default_factory=list)
    bonuses: list[Bonus] = Field(default_factory=list)
    caps: Caps = Caps()
    exclusions: Exclusions = Exclusions()


class SpentPointsPolicy(StrEnum):
    DEBT = "debt"  # the balance may go negative; later earnings repay it
    OTHER_LOTS = "other_lots"  # take from other lots; what cannot be taken becomes debt


class ReturnsPolicy(Strict):
    reverse_points: bool = True
    reverse_growth: bool = True
    spent_points: SpentPointsPolicy = SpentPointsPolicy.OTHER_LOTS
    refund_points_payment: bool = True
    window_days: Annotated[int, Field(ge=0, le=3650)] | None = None


class PointsPayment(Strict):
    enabled: bool = False
    points_per_unit: PositiveInt = Field(
        default=100, description="Points worth one unit of currency (100 points = 1 yuan)."
    )
    max_share: Share = Field(default=Decimal("0.5"), description="Largest share of an order.")
    min_points: Points = 0
    step: PositiveInt = Field(default=1, description="Smallest unit of points that can be used.")


class PaidPlan(Strict):
    code: Code
    name: LocalText
    price: Money
    duration_months: PositiveInt
    earn_multiplier: Factor = Decimal(1)
    benefits: list[Benefit] = Field(default_factory=list)


class RewardType(StrEnum):
    COUPON = "coupon"
    PRODUCT = "product"
    VOUCHER = "voucher"


class CouponTerms(Strict):
    value: Money
    min_spend: Money = Decimal(0)
    validity_days: PositiveInt = 30


class Reward(Strict):
    code: Code
    name: LocalText
    type: RewardType
    points_cost: Annotated[int, Field(ge=1, le=1_000_000_000)]
    unit_cost: Money = Decimal(0)
    stock: Annotated[int, Field(ge=0)] | None = None
    per_member_limit: PositiveInt | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    coupon: CouponTerms | None = None


class Enrolment(Strict):
    enrol_on_first_purchase: bool = False
    channels: list[Code] = Field(default_factory=list)


class ProgramDefinition(Strict):
    """A whole membership program, as written in a program file."""

    schema_version: Literal[1] = SCHEMA_VERSION
    code: Code
    name: LocalText
    description: LocalText | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    timezone: str = "Asia/Shanghai"
    points: PointsSettings
    growth: GrowthSettings = GrowthSettings()
    tier_qualification: TierQualification = TierQualification()
    tiers: Annotated[list[Tier], Field(min_length=1)]
    earning: Earning
    returns: ReturnsPolicy = ReturnsPolicy()
    points_payment: PointsPayment = PointsPayment()
    paid_plans: list[PaidPlan] = Field(default_factory=list)
    rewards: list[Reward] = Field(default_factory=list)
    enrolment: Enrolment = Enrolment()

    def tier(self, code: str) -> Tier:
        for tier in self.tiers:
            if tier.code == code:
                return tier
        raise KeyError(code)

    @property
    def entry_tier(self) -> Tier:
        return self.tiers[0]
