"""The demo world: three years of a tea-and-coffee chain, with the truth kept aside.

茶语咖啡 (Teahouse) runs the sample program ``teahouse.yaml``. Members join over time (a
growth curve with Spring Festival, 618 and Double 11 campaigns), buy BG/NBD-style (a
latent Poisson rate and a dropout chance after each repeat purchase) with Gamma-Gamma
order values, run into incidents at touchpoints, answer surveys and leave comments. The
latent values are written to ``truth/`` and the parameters to ``manifest.json``, so the
analytics can be scored against known answers.

The experience side has two known answers on purpose. Every survey answer has a latent
experience of each rated attribute; each rating reads its own attribute and NPS and CSAT
follow them with the weights of ``world_config.Drivers`` (the manifest's
``params.drivers``, with their ``order``): a key-driver analysis should find that order.
And three incidents are the chain's problems (``Experience.injected_problems``: queues at
peak, late deliveries, mini program failures), far more costly than anything else that
goes wrong (the manifest's ``injected_problems``, ranked by designed impact): a pain-point
analysis of the comments should put them on top.

How it runs: members are simulated in chunks, each with its own random streams
(``SeedSequence(seed, spawn_key=...)``), so the output depends only on the seed, the
member count and the chunk size, never on the order in which chunks run. Within a chunk
the simulation is vectorised over members in *rounds*: round k is every still-active
member's k-th purchase, so per-member state (satisfaction, rolling growth and tier, a
conservative points balance) is updated with array operations and no Python loop per
purchase. Each chunk's rows are appended to Parquet files as row groups, so memory stays
bounded by the chunk size.

Times are local (Asia/Shanghai, always +08:00). Internally a moment is a float number of
days since local midnight at the start of the history.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from memberlab.datasets import world_config as cfg
from memberlab.datasets.world_config import (
    CATEGORIES,
    CHANNELS,
    DEFAULT_END,
    DEFAULT_START,
    INCIDENTS,
    TIERS,
    TIMEZONE,
    WorldParams,
    WorldSize,
)

__all__ = [
    "DEFAULT_END",
    "DEFAULT_START",
    "FILES",
    "WorldParams",
    "WorldSize",
    "WorldSummary",
    "generate_world",
]

GENERATOR = "memberlab.datasets.world"
VERSION = 2
DAY = 86_400
YEAR_DAYS = 365.2425
RING = 4  # recent orders whose points are still pending, per member
# stream numbers under each chunk's seed: independent draws for each part of the work.
# Incidents have their own, so the purchase process (``_SIM``) draws the same numbers
# whatever the experience parameters: without the program effects, changing them leaves
# every purchase as it was.
_SIM, _LINES, _RESPONSES, _COMMENTS, _PEOPLE, _INCIDENTS, _EXPERIENCE = range(7)
_STREAMS = 7

FILES = {
    "stores": "stores.parquet",
    "products": "products.parquet",
    "members": "members.parquet",
    "transactions": "transactions.parquet",
    "responses": "responses.parquet",
    "truth_members": "truth/members.parquet",
    "truth_incidents": "truth/incidents.parquet",
    "truth_responses": "truth/responses.parquet",
    "manifest": "manifest.json",
}

_LOCAL_TIME = pl.Datetime("us", TIMEZONE)
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "stores": {
        "store_id": pl.String(),
        "name_zh": pl.String(),
        "name_en": pl.String(),
        "city": pl.String(),
        "city_en": pl.String(),
        "opened_on": pl.Date(),
    },
    "products": {
        "sku": pl.String(),
        "name_zh": pl.String(),
        "name_en": pl.String(),
        "category": pl.String(),
        "price": pl.Float64(),
    },
    "members": {
        "member_id": pl.String(),
        "mobile": pl.String(),
        "name": pl.String(),
        "gender": pl.String(),
        "birthday": pl.Date(),
        "city": pl.String(),
        "language": pl.String(),
        "enrolled_at": _LOCAL_TIME,
        "enrol_channel": pl.String(),
        "enrol_store": pl.String(),
    },
    "transactions": {
        "kind": pl.String(),
        "order_id": pl.String(),
        "return_id": pl.String(),
        "member_id": pl.String(),
        "occurred_at": _LOCAL_TIME,
        "channel": pl.String(),
        "store": pl.String(),
        "sku": pl.String(),
        "category": pl.String(),
        "quantity": pl.Int64(),
        "amount": pl.Float64(),
        "points_used": pl.Int64(),
    },
    "responses": {
        "response_id": pl.String(),
        "member_id": pl.String(),
        "order_id": pl.String(),
        "responded_at": _LOCAL_TIME,
        "survey": pl.String(),
        "touchpoint": pl.String(),
        "channel": pl.String(),
        "store": pl.String(),
        "language": pl.String(),
        "nps": pl.Int64(),
        "csat": pl.Int64(),
        "ces": pl.Int64(),
        "rating_speed": pl.Int64(),
        "rating_staff": pl.Int64(),
        "rating_product_quality": pl.Int64(),
        "rating_value": pl.Int64(),
        "rating_app_usability": pl.Int64(),
        "rating_cleanliness": pl.Int64(),
        "comment": pl.String(),
    },
    "truth_members": {
        "member_id": pl.String(),
        "lambda_per_day": pl.Float64(),
        "p_dropout": pl.Float64(),
        "nu": pl.Float64(),
        "expected_spend": pl.Float64(),
        "join_at": _LOCAL_TIME,
        "dropout_at": _LOCAL_TIME,
        "alive_at_end": pl.Boolean(),
        "store_quality": pl.Float64(),
        "satisfaction_end": pl.Float64(),
        "n_purchases": pl.Int64(),
        "n_incidents": pl.Int64(),
        "tier_end": pl.String(),
    },
    "truth_incidents": {
        "order_id": pl.String(),
        "member_id": pl.String(),
        "occurred_at": _LOCAL_TIME,
        "touchpoint": pl.String(),
        "incident": pl.String(),
        "severity": pl.Int64(),
    },
    # each answer's experience of every attribute (``Drivers``), asked there or not
    "truth_responses": {
        "response_id": pl.String(),
        **{f"experience_{rating}": pl.Float64() for rating in cfg.ATTRIBUTES},
    },
}

# survey attributes asked at each touchpoint
RATINGS = cfg.ATTRIBUTES
ASKED: dict[str, tuple[str, ...]] = {
    "store": ("speed", "staff", "product_quality", "value", "cleanliness"),
    "mini_program": ("speed", "product_quality", "value", "app_usability"),
    "app": ("speed", "product_quality", "value", "app_usability"),
    "delivery": ("speed", "product_quality", "value"),
    "after_sales": ("speed", "staff"),
    "membership": ("value",),
}
# what NPS and CSAT at each touchpoint follow (``Drivers``): the attributes asked there,
# and for the relationship survey, about the chain as a whole, all of them
INVOLVED: dict[str, tuple[str, ...]] = {**ASKED, "membership": RATINGS}
# comment aspects (``comments.ASPECTS``) and the attribute whose experience sets the tone
# of a remark on them (member benefits are what the membership is worth, effort is how
# quickly things get done)
ASPECT_ATTRIBUTE: dict[str, str] = {
    "product_quality": "product_quality",
    "staff_attitude": "staff",
    "delivery_speed": "speed",
    "waiting_time": "speed",
    "price_value": "value",
    "app_usability": "app_usability",
    "cleanliness": "cleanliness",
    "membership_benefits": "value",
    "effort": "speed",
}
EFFORT_ATTRIBUTES = ("speed", "app_usability")  # CES: how easy it was
TOUCHPOINTS = (*CHANNELS, "after_sales", "membership")
SURVEY_KINDS = ("transactional", "relationship")


@dataclass(frozen=True)
class WorldSummary:
    """What ``generate_world`` wrote: where, how many rows of each kind, how long it took."""

    out_dir: Path
    counts: dict[str, int]
    seconds: float


# --- the fixed parts: calendar, stores, products ---------------------------------------------


@dataclass(frozen=True)
class _Calendar:
    start: date
    days: int
    intensity: np.ndarray  # purchase-rate multiplier per day, mean 1
    cumulative: np.ndarray  # operational time at each midnight (days + 1 values)
    join_weight: np.ndarray  # relative enrolments per day (before store openings)
    month_index: np.ndarray  # months since the first month, per day
    year_index: np.ndarray  # years since the first year, per day
    month_of_year: np.ndarray
    hour_cdf: np.ndarray  # share of a day's purchases before each hour (25 values)
    waves: np.ndarray  # relationship survey instants
    epoch: int  # UTC epoch seconds of local midnight at the start

    @property
    def months(self) -> int:
        return int(self.month_index[-1]) + 1

    @property
    def years(self) -> int:
        return int(self.year_index[-1]) + 1

    def operational(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, np.arange(self.days + 1), self.cumulative)

    def calendar(self, u: np.ndarray) -> np.ndarray:
        return np.interp(u, self.cumulative, np.arange(self.days + 1))

    def time_of_day(self, share: np.ndarray) -> np.ndarray:
        """The moment (fraction of the day) by which ``share`` of a day's purchases happen."""
        return np.interp(share, self.hour_cdf, np.arange(25.0)) / 24.0

    def clock(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Process time -> (day, displayed time, hour): within a day, the uniform position
        of a Poisson event is mapped through the hour-of-day profile, which keeps order."""
        day = np.minimum(x.astype(np.int64), self.days - 1)
        moment = self.time_of_day(x - day)
        return day, day + moment, np.minimum((moment * 24).astype(np.int64), 23)

    def epoch_seconds(self, t: np.ndarray) -> np.ndarray:
        return self.epoch + np.floor(t * DAY).astype(np.int64)


def _calendar(start: date, end: date, params: WorldParams, program_effects: bool) -> _Calendar:
    season = params.seasonality
    days = np.arange(np.datetime64(start), np.datetime64(end) + np.timedelta64(1, "D"))
    n = days.size
    months = days.astype("datetime64[M]")
    month_of_year = months.astype(np.int64) % 12 + 1
    day_of_month = (days - months).astype(np.int64) + 1
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    years = days.astype("datetime64[Y]").astype(np.int64) + 1970

    rate = np.ones(n)
    join = np.ones(n)
    rate[weekday == 5] *= season.saturday
    rate[weekday == 6] *= season.sunday
    rate[(month_of_year >= 6) & (month_of_year <= 8)] *= season.summer
    for festival in cfg.SPRING_FESTIVALS:
        offset = (days - np.datetime64(festival)).astype(np.int64)
        run_up = (offset >= -14) & (offset < -1)
        holiday = (offset >= -1) & (offset <= 6)
        rate[run_up] *= season.spring_festival_run_up
        rate[holiday] *= season.spring_festival_dip
        join[run_up] *= season.join_spring_festival_run_up
        join[holiday] *= season.join_spring_festival_dip
    for month, peak in ((6, 18), (11, 11)):
        run_up = (month_of_year == month) & (day_of_month < peak)
        on_peak = (month_of_year == month) & (day_of_month == peak)
        rate[run_up] *= season.festival_run_up
        rate[on_peak] *= season.june_18 if month == 6 else season.double_11
        join[run_up] *= season.join_run_up
        join[on_peak] *= season.join_peak
    if program_effects:
        rate[day_of_month == 8] *= params.effects.member_day_intensity
    rate /= rate.mean()

    shares = params.commerce.channel_shares
    hourly = sum(
        shares[c] * np.asarray(cfg.HOURLY_PROFILE[c]) / sum(cfg.HOURLY_PROFILE[c]) for c in CHANNELS
    )
    hour_cdf = np.concatenate([[0.0], np.cumsum(hourly)]) / hourly.sum()

    month_day = params.surveys.relationship_month_day
    waves = [
        (date(year, *month_day) - start).days + 10 / 24
        for year in range(start.year, end.year + 1)
        if start < date(year, *month_day) <= end
    ]
    first_month = months[0].astype(np.int64)
    epoch = (start - date(1970, 1, 1)).days * DAY - cfg.UTC_OFFSET_HOURS * 3600
    return _Calendar(
        start=start,
        days=n,
        intensity=rate,
        cumulative=np.concatenate([[0.0], np.cumsum(rate)]),
        join_weight=join,
        month_index=months.astype(np.int64) - first_month,
        year_index=years - years[0],
        month_of_year=month_of_year,
        hour_cdf=hour_cdf,
        waves=np.asarray(waves, dtype=np.float64),
        epoch=epoch,
    )


@dataclass(frozen=True)
class _Stores:
    ids: list[str]
    name_zh: list[str]
    name_en: list[str]
    city: np.ndarray  # index into CITIES
    open_day: np.ndarray  # days since the start (negative: opened before), ascending
    quality: np.ndarray  # latent z ~ N(0, 1); low is worse
    open_total: np.ndarray  # stores open on each day: a prefix of the opening order
    by_city: np.ndarray  # store indices grouped by city, each city in opening order
    city_start: np.ndarray
    city_open: np.ndarray  # [city, day] stores of the city open on that day

    def frame(self, start: date) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "store_id": self.ids,
                "name_zh": self.name_zh,
                "name_en": self.name_en,
                "city": [cfg.CITIES[c].zh for c in self.city],
                "city_en": [cfg.CITIES[c].en for c in self.city],
                "opened_on": [start + timedelta(days=int(d)) for d in self.open_day],
            },
            schema=SCHEMAS["stores"],
        )


def _stores(members: int, days: int, rng: np.random.Generator) -> _Stores:
    n = cfg.store_count(members)
    weights = np.array([c.weight for c in cfg.CITIES])
    city = rng.choice(len(cfg.CITIES), size=n, p=weights / weights.sum())
    # most stores predate the history; the chain keeps opening stores during it
    before = max(1, round(n * 0.6))
    open_day = np.concatenate(
        [
            -rng.integers(60, 3000, before),
            (rng.random(n - before) ** 0.8 * (days - 30)).astype(np.int64),
        ]
    )
    order = np.argsort(open_day, kind="stable")
    city, open_day = city[order], open_day[order]
    quality = rng.standard_normal(n)
    ids = [f"S{i + 1:03d}" for i in range(n)]
    seen: dict[tuple[int, int], int] = {}
    name_zh, name_en = [], []
    for i in range(n):
        districts = cfg.CITIES[city[i]].districts
        d = int(rng.integers(len(districts)))
        count = seen[city[i], d] = seen.get((city[i], d), 0) + 1
        zh, en = districts[d]
        suffix_zh, suffix_en = ("", "") if count == 1 else (f"{count}号", f" {count}")
        name_zh.append(f"茶语咖啡（{cfg.CITIES[city[i]].zh}{zh}{suffix_zh}店）")
        name_en.append(f"Teahouse {cfg.CITIES[city[i]].en} {en}{suffix_en}")
    day_grid = np.arange(days)
    by_city = np.lexsort((open_day, city))
    city_start = np.searchsorted(city[by_city], np.arange(len(cfg.CITIES)))
    city_open = np.stack(
        [
            np.searchsorted(open_day[by_city][city[by_city] == c], day_grid, side="right")
            for c in range(len(cfg.CITIES))
        ]
    )
    return _Stores(
        ids=ids,
        name_zh=name_zh,
        name_en=name_en,
        city=city,
        open_day=open_day,
        quality=quality,
        open_total=np.searchsorted(open_day, day_grid, side="right"),
        by_city=by_city,
        city_start=city_start,
        city_open=city_open,
    )


@dataclass(frozen=True)
class _Products:
    sku: list[str]
    category: np.ndarray  # index into CATEGORIES; products sorted by category, then price
    price_fen: np.ndarray
    category_start: np.ndarray
    category_count: np.ndarray
    seasonal: np.ndarray  # [month of year, k]: seasonal drinks on the menu
    seasonal_count: np.ndarray
    gift_100: int
    gift_200: int

    @staticmethod
    def frame() -> pl.DataFrame:
        return pl.DataFrame(
            [(p.sku, p.name_zh, p.name_en, p.category, float(p.price)) for p in cfg.PRODUCTS],
            schema=SCHEMAS["products"],
            orient="row",
        )


def _products() -> _Products:
    # by category, then price: popular (cheap) first, and budgets find items by price
    products = sorted(cfg.PRODUCTS, key=lambda p: (CATEGORIES.index(p.category), p.price))
    category = np.array([CATEGORIES.index(p.category) for p in products])
    seasonal = [[i for i, p in enumerate(products) if month in p.months] for month in range(13)]
    width = max(len(s) for s in seasonal)
    return _Products(
        sku=[p.sku for p in products],
        category=category,
        price_fen=np.array([round(p.price * 100) for p in products], dtype=np.int64),
        category_start=np.searchsorted(category, np.arange(len(CATEGORIES))),
        category_count=np.bincount(category, minlength=len(CATEGORIES)),
        seasonal=np.array([s + [s[0] if s else 0] * (width - len(s)) for s in seasonal]),
        seasonal_count=np.array([len(s) for s in seasonal]),
        gift_100=next(i for i, p in enumerate(products) if p.sku == "G01"),
        gift_200=next(i for i, p in enumerate(products) if p.sku == "G02"),
    )


@dataclass(frozen=True)
class _World:
    params: WorldParams
    program_effects: bool
    members: int
    seed: int
    calendar: _Calendar
    stores: _Stores
    products: _Products
    join_x: np.ndarray  # every member's enrolment (first purchase), process time, ascending
    mobile_factor: int
    mobile_offset: int
    store_standard: np.ndarray  # [store, attribute] ~ N(0, 1), see ``Drivers``


def _joins(
    members: int, calendar: _Calendar, stores: _Stores, rng: np.random.Generator
) -> np.ndarray:
    """Enrolment times: more stores, more members; campaigns bring bursts."""
    weight = calendar.join_weight * np.maximum(stores.open_total, 1)
    cumulative = np.cumsum(weight)
    day = np.searchsorted(cumulative, rng.random(members) * cumulative[-1], side="right")
    return np.sort(np.minimum(day, calendar.days - 1) + rng.random(members))


# --- one chunk of members ---------------------------------------------------------------------


def _pick(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of ``weights`` (rows need not sum to one)."""
    cumulative = np.cumsum(weights, axis=1)
    draw = rng.random(weights.shape[0]) * cumulative[:, -1]
    return np.minimum((draw[:, None] >= cumulative).sum(axis=1), weights.shape[1] - 1)


def _tier_of(growth: np.ndarray) -> np.ndarray:
    """The tier (0 sprout, 1 green leaf, 2 golden bud) a 12-month growth reaches."""
    return (growth >= cfg.TIER_THRESHOLDS[1]).astype(np.int8) + (
        growth >= cfg.TIER_THRESHOLDS[2]
    ).astype(np.int8)


@dataclass
class _Orders:
    """Every purchase of a chunk's members, sorted by member then time."""

    member: np.ndarray  # chunk-local member index
    seq: np.ndarray  # k: the member's k-th purchase (0 = enrolment)
    t: np.ndarray  # local days since the start
    day: np.ndarray
    channel: np.ndarray
    store: np.ndarray
    gross: np.ndarray  # fen: the lines' total, paid in money and points
    gift: np.ndarray  # fen of the gross that is a gift card
    points_used: np.ndarray
    severity: np.ndarray  # [order, incident] 0 = none
    satisfaction: np.ndarray  # after the purchase's experience
    prior: np.ndarray  # before it: what earlier purchases left
    return_t: np.ndarray  # when the order is returned; NaN when it is not


@dataclass
class _Members:
    """A chunk's members: latent values and the state at the end."""

    lam: np.ndarray
    p: np.ndarray
    nu: np.ndarray
    home: np.ndarray
    join_t: np.ndarray
    tea_tilt: np.ndarray
    baseline: np.ndarray  # satisfaction when nothing has gone wrong for a while
    satisfaction_end: np.ndarray
    wave_satisfaction: np.ndarray  # [member, wave]; NaN when not enrolled by then
    dropout_t: np.ndarray  # NaN when alive at the end
    n_purchases: np.ndarray
    n_incidents: np.ndarray
    tier_end: np.ndarray


def _simulate(
    world: _World,
    join_x: np.ndarray,
    rng: np.random.Generator,
    incident_rng: np.random.Generator,
) -> tuple[_Orders, _Members]:
    """The purchase process of one chunk, vectorised over members round by round: round k
    is every active member's k-th purchase (k = 0 the enrolment). Incidents are drawn from
    ``incident_rng``, everything else from ``rng``."""
    params, cal, stores = world.params, world.calendar, world.stores
    effects, experience, commerce = params.effects, params.experience, params.commerce
    on = world.program_effects
    n = join_x.size
    join_t = cal.clock(join_x)[1]

    lam = rng.gamma(params.bgnbd.r, 1.0 / params.bgnbd.alpha, n)
    p_drop = rng.beta(params.bgnbd.a, params.bgnbd.b, n)
    nu = rng.gamma(params.gamma_gamma.q, 1.0 / params.gamma_gamma.gamma, n)
    join_day = join_x.astype(np.int64)
    home = np.minimum(
        (rng.random(n) * stores.open_total[join_day]).astype(np.int64),
        stores.open_total[join_day] - 1,
    )
    baseline = np.clip(
        rng.beta(*experience.baseline_beta, n)
        + experience.store_quality_satisfaction * stores.quality[home],
        0.02,
        0.99,
    )
    shares = np.array([commerce.channel_shares[c] for c in CHANNELS])
    preference = rng.dirichlet(shares * commerce.channel_concentration, n)
    if on:
        preference[:, CHANNELS.index("mini_program")] *= effects.mini_program_preference
    tea_tilt = rng.beta(2.0, 2.0, n)
    redeem = np.where(
        rng.random(n) < commerce.never_redeem, 0.0, rng.beta(*commerce.redeem_beta, n)
    )

    # per-channel, per-incident rates; hour profile per channel
    rates = np.array(
        [[experience.incident_rates[i].get(c, 0.0) for i in INCIDENTS] for c in CHANNELS]
    )
    store_made = np.array([i != "app_failure" for i in INCIDENTS])
    queue = INCIDENTS.index("long_queue")
    peak = np.isin(np.arange(24), experience.peak_hours)
    profile = np.array([np.asarray(cfg.HOURLY_PROFILE[c]) for c in CHANNELS])
    profile = profile / profile.sum(axis=1, keepdims=True) + 1e-12
    impact = np.array([experience.satisfaction_impact[i] for i in INCIDENTS])
    log_dropout = np.log([effects.incident_dropout_factor[i] for i in INCIDENTS])
    tier_dropout = np.array([effects.tier_dropout_factor[t] for t in TIERS])
    return_rate = np.array([commerce.return_incident_rate.get(i, 0.0) for i in INCIDENTS])
    severity_cdf = np.cumsum(experience.severity_probs)
    decay_rate = math.log(2) / experience.half_life_days
    thresholds = np.array([*cfg.TIER_THRESHOLDS[1:], np.inf])
    retention = np.array(cfg.TIER_RETENTION)
    back = np.arange(12)
    end_u = cal.cumulative[-1]

    # state, per member
    satisfaction = baseline.copy()
    last_t = np.zeros(n)
    tier = np.zeros(n, dtype=np.int8)
    reviews = np.zeros(n, dtype=np.int64)
    growth = np.zeros((n, cal.months + 11), dtype=np.int64)  # by month, 11 leading zeros
    accel = np.ones(n)
    # points: base points released, by year earned (column = year index + 1), the points
    # used and a reserve for what returns take back; the last orders' points are pending
    settled = np.zeros((n, cal.years + 1), dtype=np.int64)
    used = np.zeros(n, dtype=np.int64)
    reserve = np.zeros(n, dtype=np.int64)
    ring_t = np.full((n, RING), np.inf)
    ring_points = np.zeros((n, RING), dtype=np.int64)
    ring_year = np.zeros((n, RING), dtype=np.int64)
    ring_head = np.zeros(n, dtype=np.int64)
    cap_day = np.full(n, -1, dtype=np.int64)
    cap_day_sum = np.zeros(n, dtype=np.int64)
    cap_month = np.full(n, -1, dtype=np.int64)
    cap_month_sum = np.zeros(n, dtype=np.int64)
    wave_satisfaction = np.full((n, cal.waves.size), np.nan)
    dropout_t = np.full(n, np.nan)
    n_purchases = np.zeros(n, dtype=np.int64)
    n_incidents = np.zeros(n, dtype=np.int64)

    def drifted(members: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Satisfaction at ``at``: back towards the baseline since the last purchase."""
        base = baseline[members]
        return base + (satisfaction[members] - base) * np.exp(-decay_rate * (at - last_t[members]))

    def rolling_growth(members: np.ndarray, column: np.ndarray) -> np.ndarray:
        return growth[members[:, None], column[:, None] - back].sum(axis=1)

    def review(members: np.ndarray, at: np.ndarray, column: np.ndarray) -> None:
        """Enrolment-anniversary reviews since the last: down at most one step each."""
        due_count = np.floor((at - join_t[members]) / YEAR_DAYS).astype(np.int64)
        due = due_count > reviews[members]
        if not due.any():
            return
        who = members[due]
        steps = due_count[due] - reviews[who]
        measure = rolling_growth(who, column[due])
        current = tier[who]
        kept = measure >= retention[current]
        earned = _tier_of(measure)
        tier[who] = np.where(kept, current, np.maximum(earned, current - steps)).astype(np.int8)
        reviews[who] = due_count[due]

    rounds: list[dict[str, np.ndarray]] = []
    active = np.arange(n)
    x = join_x
    u = cal.operational(x)
    k = 0
    while active.size:
        m = active.size
        day, t, hour = cal.clock(x)
        column = cal.month_index[day] + 11
        year = cal.year_index[day] + 1
        if k:
            for w, wave in enumerate(cal.waves):
                hit = (last_t[active] < wave) & (wave <= t)
                if hit.any():
                    wave_satisfaction[active[hit], w] = drifted(
                        active[hit], np.full(hit.sum(), wave)
                    )
            satisfaction[active] = drifted(active, t)
            review(active, t, column)

        # where and how: channel by preference and hour, mostly at the home store
        channel = _pick(preference[active] * profile[:, hour].T, rng)
        store = home[active].copy()
        away = (channel == 0) & (rng.random(m) < commerce.away_store_share) & (k > 0)
        if away.any():
            city = stores.city[store[away]]
            count = stores.city_open[city, day[away]]
            position = np.minimum((rng.random(away.sum()) * count).astype(np.int64), count - 1)
            store[away] = stores.by_city[stores.city_start[city] + position]

        # what went wrong: worse stores and peak hours make more incidents
        chance = rates[channel]
        chance[:, store_made] *= np.exp(-experience.store_quality_effect * stores.quality[store])[
            :, None
        ]
        chance[:, queue] *= np.where(peak[hour], experience.peak_queue_factor, 1.0)
        hits = incident_rng.random((m, len(INCIDENTS))) < chance
        severity = np.zeros((m, len(INCIDENTS)), dtype=np.int8)
        if hits.any():
            severity[hits] = 1 + np.searchsorted(
                severity_cdf, incident_rng.random(hits.sum()) * severity_cdf[-1]
            )
        prior = satisfaction[active].copy()
        satisfaction[active] = np.clip(prior - severity @ impact, 0.0, 1.0)

        # how much: Gamma-Gamma order value; some big orders include a gift card
        gross = np.maximum(
            np.rint(rng.gamma(params.gamma_gamma.p, 1.0 / nu[active]) * 100), 1
        ).astype(np.int64)
        gift = np.where(
            (gross >= 12_000) & (rng.random(m) < commerce.gift_card_rate),
            np.where(gross >= 22_000, 20_000, 10_000),
            0,
        )
        returned = rng.random(m) < commerce.return_base_rate + hits @ return_rate
        # 1 to 6 days later in opening hours: always within the program's 7-day window
        return_day = day + 1 + (rng.random(m) * commerce.return_max_days).astype(np.int64)
        returned &= return_day < cal.days
        return_t = np.where(returned, return_day + cal.time_of_day(rng.random(m)), np.nan)

        # pay with points: never more than half a conservative estimate of the balance
        for slot in range(RING):
            ripe = ring_t[active, slot] <= t - (cfg.POINTS_PENDING_DAYS + 1)
            if ripe.any():
                who = active[ripe]
                settled[who, ring_year[who, slot]] += ring_points[who, slot]
                ring_t[who, slot] = np.inf
                ring_points[who, slot] = 0
        balance = settled[active, year] + settled[active, year - 1] - used[active] - reserve[active]
        points = (
            np.minimum(
                (balance * commerce.redeem_balance_share).astype(np.int64),
                (gross * cfg.POINTS_MAX_SHARE).astype(np.int64),
            )
            // cfg.POINTS_STEP
            * cfg.POINTS_STEP
        )
        wants = (
            (balance >= commerce.redeem_min_balance) & (rng.random(m) < redeem[active]) & (k > 0)
        )
        points = np.where(wants & (points >= cfg.POINTS_STEP), points, 0)
        used[active] += points
        # the base points this order earns for sure (1 per yuan paid, gift cards excluded,
        # a few fen short for rounding), within the order, day and month caps
        base = np.clip((gross - gift - points - 10) // 100, 0, cfg.POINTS_CAP_ORDER)
        day_sum = np.where(cap_day[active] == day, cap_day_sum[active], 0)
        month_sum = np.where(cap_month[active] == column, cap_month_sum[active], 0)
        earned = np.minimum(
            base,
            np.maximum(
                np.minimum(cfg.POINTS_CAP_DAY - day_sum, cfg.POINTS_CAP_MONTH - month_sum), 0
            ),
        )
        cap_day[active], cap_day_sum[active] = day, day_sum + earned
        cap_month[active], cap_month_sum[active] = column, month_sum + earned
        reserve[active] += np.where(
            returned,
            np.minimum(cfg.MAX_EARN_FACTOR * ((gross - gift) // 100 + 1), cfg.POINTS_CAP_ORDER)
            + cfg.BIG_ORDER_BONUS,
            0,
        )
        slot = ring_head[active] % RING
        ring_t[active, slot] = t
        ring_points[active, slot] = earned
        ring_year[active, slot] = year
        ring_head[active] += 1

        # growth (1 per yuan paid + 5 per order) over 12 months sets the tier
        growth[active, column] += (gross - gift - points) // 100 + cfg.GROWTH_PER_ORDER
        rolling = rolling_growth(active, column)
        tier[active] = np.maximum(tier[active], _tier_of(rolling))
        if on:
            target = thresholds[tier[active]]
            near = (rolling >= (1 - effects.threshold_window) * target) & (rolling < target)
            accel[active] = np.where(near, effects.threshold_acceleration, 1.0)

        # BG/NBD: after each repeat purchase the member may drop out for good
        drop = np.zeros(m, dtype=bool)
        if k:
            chance_drop = p_drop[active]
            if on:
                chance_drop = np.minimum(
                    chance_drop * tier_dropout[tier[active]] * np.exp(hits @ log_dropout),
                    effects.max_dropout,
                )
            drop = rng.random(m) < chance_drop
        next_u = u + rng.standard_exponential(m) / (lam[active] * accel[active])

        rounds.append(
            {
                "member": active,
                "seq": np.full(m, k, dtype=np.int64),
                "t": t,
                "day": day,
                "channel": channel,
                "store": store,
                "gross": gross,
                "gift": gift,
                "points_used": points,
                "severity": severity,
                "satisfaction": satisfaction[active].copy(),
                "prior": prior,
                "return_t": return_t,
            }
        )
        last_t[active] = t
        n_purchases[active] += 1
        n_incidents[active] += hits.sum(axis=1)
        dropout_t[active[drop]] = t[drop]
        more = ~drop & (next_u < end_u)
        active, u = active[more], next_u[more]
        x = cal.calendar(u)
        k += 1

    # the end: satisfaction at the later survey waves and at the close, last reviews
    everyone = np.arange(n)
    for w, wave in enumerate(cal.waves):
        late = last_t < wave
        wave_satisfaction[late, w] = drifted(everyone[late], np.full(late.sum(), wave))
    end_t = np.full(n, float(cal.days))
    satisfaction_end = drifted(everyone, end_t)
    review(everyone, end_t, np.full(n, cal.month_index[-1] + 11))

    merged = {key: np.concatenate([r[key] for r in rounds]) for key in rounds[0]}
    order = np.lexsort((merged["seq"], merged["member"]))
    orders = _Orders(**{key: value[order] for key, value in merged.items()})
    members = _Members(
        lam=lam,
        p=p_drop,
        nu=nu,
        home=home,
        join_t=join_t,
        tea_tilt=tea_tilt,
        baseline=baseline,
        satisfaction_end=satisfaction_end,
        wave_satisfaction=wave_satisfaction,
        dropout_t=dropout_t,
        n_purchases=n_purchases,
        n_incidents=n_incidents,
        tier_end=tier,
    )
    return orders, members


# --- lines and returns -------------------------------------------------------------------------


@dataclass
class _Lines:
    order: np.ndarray  # index into the chunk's orders
    product: np.ndarray
    quantity: np.ndarray
    amount: np.ndarray  # fen


def _lines(
    world: _World, orders: _Orders, tea_tilt: np.ndarray, rng: np.random.Generator
) -> _Lines:
    """Baskets whose totals are exactly the drawn order values: items by channel, season,
    taste and budget; big orders buy several of a kind (for the office); line amounts are
    list prices scaled to the total (coupons, combos, upsizes)."""
    cal, products = world.calendar, world.products
    n = orders.gross.size
    goods = orders.gross - orders.gift
    items = np.minimum(1 + rng.poisson(np.maximum(goods / 100 - 30, 0) / 30), 6)

    weights = np.array([cfg.CATEGORY_WEIGHTS[c] for c in CHANNELS])[orders.channel]
    month = cal.month_of_year[orders.day]
    summer = (month >= 6) & (month <= 8)
    winter = (month == 12) | (month <= 2)
    tilt = tea_tilt[orders.member]
    weights[:, 0] *= np.where(summer, cfg.SUMMER_TEA, 1.0) * 2 * tilt
    weights[:, 1] *= np.where(winter, cfg.WINTER_COFFEE, 1.0) * 2 * (1 - tilt)
    if world.program_effects:
        weights[:, 2] *= world.params.effects.seasonal_category_weight
    weights[:, 4] *= np.where(goods >= 3_500, 1.0 + (goods >= 15_000) * 3.0, 0.0)

    item_order = np.repeat(np.arange(n), items)
    category = _pick(weights[item_order], rng)
    draw = rng.random(item_order.size)
    product = products.category_start[category] + (
        draw**1.5 * products.category_count[category]
    ).astype(np.int64)
    # too dear for the budget per item: the dearest of the category that fits, or its cheapest
    budget = (goods / items)[item_order]
    price_key = products.category * 1_000_000 + products.price_fen
    fitting = np.maximum(
        np.searchsorted(price_key, category * 1_000_000 + budget, side="right") - 1,
        products.category_start[category],
    )
    product = np.where(products.price_fen[product] > 1.5 * budget, fitting, product)
    seasonal = category == CATEGORIES.index("seasonal")
    item_month = month[item_order[seasonal]]
    product[seasonal] = products.seasonal[
        item_month, (draw[seasonal] * products.seasonal_count[item_month]).astype(np.int64)
    ]
    gifted = np.flatnonzero(orders.gift)
    item_order = np.concatenate([item_order, gifted])
    product = np.concatenate(
        [
            product,
            np.where(orders.gift[gifted] == 20_000, products.gift_200, products.gift_100),
        ]
    )
    # one line per product and order (returns find lines by SKU): repeats become quantity
    n_products = len(products.sku)
    keys, quantity = np.unique(item_order * n_products + product, return_counts=True)
    line_order, line_product = keys // n_products, keys % n_products

    is_gift = products.category[line_product] == CATEGORIES.index("gift_card")

    def listed_goods_of(quantity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        listed = products.price_fen[line_product] * quantity
        total = np.bincount(line_order, weights=np.where(is_gift, 0, listed), minlength=n)
        return listed, np.rint(total).astype(np.int64)

    listed, listed_goods = listed_goods_of(quantity)
    # far more money than the basket lists: a group order, more of each
    ratio = goods / np.maximum(listed_goods, 1)
    group = (ratio > 1.3)[line_order] & ~is_gift
    quantity = np.where(group, np.maximum(np.rint(quantity * ratio[line_order]), 1), quantity)
    quantity = quantity.astype(np.int64)
    listed, listed_goods = listed_goods_of(quantity)
    amount = np.where(
        is_gift, listed, listed * goods[line_order] // np.maximum(listed_goods[line_order], 1)
    )
    # what the floor left over goes on the order's last goods line (gift cards sort last)
    short = orders.gross - np.bincount(line_order, weights=amount, minlength=n).astype(np.int64)
    last = np.searchsorted(line_order, np.arange(n), side="right") - 1 - (orders.gift > 0)
    amount[last] += short
    return _Lines(line_order, line_product, quantity.astype(np.int64), amount)


def _returns(
    orders: _Orders, lines: _Lines, share_full: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return rows of the returned orders as (line index, quantity, amount in fen): all the
    lines (a full return), or some of one line."""
    returned = np.flatnonzero(np.isfinite(orders.return_t))
    first = np.searchsorted(lines.order, returned, side="left")
    count = np.searchsorted(lines.order, returned, side="right") - first
    full = rng.random(returned.size) < share_full
    pick = first + np.minimum((rng.random(returned.size) * count).astype(np.int64), count - 1)
    part = rng.random(returned.size)
    # full returns: every line of the order
    full_orders = returned[full]
    full_lines = np.flatnonzero(np.isin(lines.order, full_orders))
    partial_lines = pick[~full]
    partial_quantity = 1 + (part[~full] * lines.quantity[partial_lines]).astype(np.int64)
    partial_quantity = np.minimum(partial_quantity, lines.quantity[partial_lines])
    line = np.concatenate([full_lines, partial_lines])
    quantity = np.concatenate([lines.quantity[full_lines], partial_quantity])
    amount = lines.amount[line] * quantity // lines.quantity[line]
    return line, quantity, amount


# --- surveys ---------------------------------------------------------------------------------


def _awake(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """People answer surveys when awake: an answer due between 1 and 7 am comes that morning."""
    hour = (t - np.floor(t)) * 24
    night = (hour >= 1) & (hour < 7)
    return np.where(night, t + (7 - hour + rng.random(t.size) * 3) / 24, t)


def _experience(
    world: _World,
    members: _Members,
    member: np.ndarray,
    store: np.ndarray,
    touchpoint: np.ndarray,
    severity: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Each answer's experience of every attribute (``RATINGS`` columns), on the standard
    scale of ``Drivers``: the member's disposition and own view, the store, the moment and
    the incidents of the order (after a purchase only)."""
    drivers, experience = world.params.drivers, world.params.experience
    n, k = member.size, len(RATINGS)
    a, b = experience.baseline_beta
    base_mean = a / (a + b)
    base_sd = math.sqrt(
        a * b / ((a + b) ** 2 * (a + b + 1)) + experience.store_quality_satisfaction**2
    )
    store_effect = np.array([drivers.store_effect.get(r, 0.0) for r in RATINGS])
    moment = np.sqrt(1.0 - drivers.halo**2 - drivers.member_share - store_effect**2)
    view = rng.standard_normal((members.lam.size, k))  # every member's own view
    disposition = (members.baseline[member] - base_mean) / base_sd
    x = (
        drivers.halo * disposition[:, None]
        + math.sqrt(drivers.member_share) * view[member]
        + store_effect * world.store_standard[store]
        + moment * rng.standard_normal((n, k))
    )
    spoils = np.zeros((len(INCIDENTS), k))
    for i, incident in enumerate(INCIDENTS):
        attribute = RATINGS.index(cfg.INCIDENT_ATTRIBUTE[incident])
        spoils[i, attribute] = drivers.incident_impact[incident]
    purchase = touchpoint < len(CHANNELS)  # after a purchase (not a return, not a wave)
    x[purchase] -= severity[purchase] @ spoils
    return x


def _scores(
    drivers: cfg.Drivers,
    experience: np.ndarray,
    touchpoint: np.ndarray,
    severity: np.ndarray,
    history: np.ndarray,
    asked_csat: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """NPS, CSAT, CES and attribute ratings from the attributes' experience (see
    ``Drivers``). Missing answers (not asked at the touchpoint) are -1."""
    n = touchpoint.size
    weights = np.array([drivers.weights[r] for r in RATINGS])
    involved = np.array([[r in INVOLVED[tp] for r in RATINGS] for tp in TOUCHPOINTS])[touchpoint]
    asked = np.array([[r in ASKED[tp] for r in RATINGS] for tp in TOUCHPOINTS])[touchpoint]
    core = (experience * weights * involved).sum(axis=1)
    after_sales = touchpoint == TOUCHPOINTS.index("after_sales")
    nps = (
        drivers.nps_centre
        + core
        + drivers.history * history
        + drivers.after_sales_shift * after_sales
        + rng.normal(0, drivers.nps_noise, n)
    )
    csat = drivers.csat_centre + drivers.csat_scale * core + rng.normal(0, drivers.csat_noise, n)
    effort_columns = [RATINGS.index(r) for r in EFFORT_ATTRIBUTES]
    effort_involved = involved[:, effort_columns]
    effort = (experience[:, effort_columns] * effort_involved).sum(axis=1) / np.maximum(
        effort_involved.sum(axis=1), 1
    )
    wrong = severity[:, INCIDENTS.index("wrong_order")] * (touchpoint < len(CHANNELS))
    ces = (
        drivers.ces_centre
        + drivers.ces_scale * effort
        - drivers.effort_impact * wrong
        + rng.normal(0, drivers.ces_noise, n)
    )
    ratings = np.clip(
        np.rint(
            drivers.rating_centre
            + drivers.rating_scale * experience
            + rng.normal(0, drivers.rating_noise, experience.shape)
        ),
        1,
        5,
    )
    answers = {
        "nps": np.clip(np.rint(nps), 0, 10),
        "csat": np.where(asked_csat, np.clip(np.rint(csat), 1, 5), -1),
        "ces": np.where(asked_csat, np.clip(np.rint(ces), 1, 7), -1),
    }
    for j, rating in enumerate(RATINGS):
        answers[f"rating_{rating}"] = np.where(asked[:, j], ratings[:, j], -1)
    return {key: value.astype(np.int64) for key, value in answers.items()}


# --- frames ----------------------------------------------------------------------------------


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """``prefix`` + zero-padded numbers: M0000001, O00000010003 ..."""
    return prefix + pl.Series(numbers.astype(np.int64)).cast(pl.String).str.zfill(width)


def _where(mask: np.ndarray, values: pl.Series) -> pl.Series:
    """``values`` where ``mask`` holds, null elsewhere."""
    return values.scatter(np.flatnonzero(~mask), None)


def _lookup(values: list[str] | tuple[str, ...], index: np.ndarray) -> pl.Series:
    """Codes to their names, e.g. channel numbers to "store", "app" ..."""
    return pl.Series(list(values), dtype=pl.String).gather(index.astype(np.int64))


def _times(calendar: _Calendar, t: np.ndarray) -> pl.Series:
    """Local days since the start -> Asia/Shanghai datetimes, to the second."""
    return (
        pl.Series(calendar.epoch_seconds(t) * 1_000_000)
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(TIMEZONE)
    )


class _Table:
    """One Parquet file, written a chunk (row group) at a time."""

    def __init__(self, path: Path, name: str) -> None:
        self.schema = SCHEMAS[name]
        self.arrow_schema = pl.DataFrame(schema=self.schema).to_arrow().schema
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(path, self.arrow_schema, compression="zstd")
        self.rows = 0

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        frame = frame.select(pl.col(c).cast(t) for c, t in self.schema.items())
        self.writer.write_table(frame.to_arrow().cast(self.arrow_schema))
        self.rows += frame.height

    def close(self) -> None:
        self.writer.close()


def _chunk_frames(
    world: _World, lo: int, hi: int
) -> tuple[dict[str, pl.DataFrame], dict[str, int]]:
    """Simulate members lo..hi-1 (0-based, in enrolment order) into this chunk's rows;
    also the counts of what is not one row per item (orders, returns, lines)."""
    cal, stores, products, params = world.calendar, world.stores, world.products, world.params
    streams = [
        np.random.default_rng(np.random.SeedSequence(world.seed, spawn_key=(1, lo, part)))
        for part in range(_STREAMS)
    ]
    orders, members = _simulate(world, world.join_x[lo:hi], streams[_SIM], streams[_INCIDENTS])
    n = hi - lo
    number = np.arange(lo + 1, hi + 1)  # M0000001 is the first to enrol
    member_ids = _ids("M", number, 7)

    # --- members -----------------------------------------------------------------------
    people = streams[_PEOPLE]
    english = people.random(n) < params.commerce.english_name_share
    surname = np.minimum((people.pareto(1.2, n) * 4).astype(np.int64), len(cfg.SURNAMES) - 1)
    given = people.integers(0, len(cfg.GIVEN_CHARACTERS), (n, 2))
    two = people.random(n) < 0.7
    first = people.integers(0, len(cfg.ENGLISH_FIRST_NAMES), n)
    last = people.integers(0, len(cfg.ENGLISH_SURNAMES), n)
    chinese_name = pl.select(
        pl.concat_str(
            _lookup(cfg.SURNAMES, surname),
            _lookup(cfg.GIVEN_CHARACTERS, given[:, 0]),
            _where(two, _lookup(cfg.GIVEN_CHARACTERS, given[:, 1])).fill_null(""),
        )
    ).to_series()
    english_name = pl.select(
        pl.concat_str(
            _lookup(cfg.ENGLISH_FIRST_NAMES, first),
            pl.lit(" "),
            _lookup(cfg.ENGLISH_SURNAMES, last),
        )
    ).to_series()
    name = chinese_name.scatter(np.flatnonzero(english), english_name.filter(english))
    language = np.where(
        english,
        people.random(n) < params.commerce.english_language_if_english_name,
        people.random(n) < params.commerce.english_language_if_chinese_name,
    ).astype(np.int64)  # 1 = English
    female = people.random(n) < params.commerce.female_share
    age_days = (np.clip(18 + people.gamma(2.5, 5.0, n), 16, 75) * YEAR_DAYS).astype(np.int64)
    join_day = members.join_t.astype(np.int64)
    birthday = np.datetime64(cal.start) + (join_day - age_days).astype("timedelta64[D]")
    index = number - 1
    mobile_digits = (index * world.mobile_factor + world.mobile_offset) % 100_000_000
    mobile_prefix = (index * 7 + world.mobile_offset) % len(cfg.MOBILE_PREFIXES)
    mobile = pl.select(
        pl.concat_str(
            _lookup(cfg.MOBILE_PREFIXES, mobile_prefix),
            pl.Series(mobile_digits).cast(pl.String).str.zfill(8),
        )
    ).to_series()
    first_order = np.searchsorted(orders.member, np.arange(n), side="left")
    languages = ("zh-CN", "en")
    frames: dict[str, pl.DataFrame] = {}
    frames["members"] = pl.DataFrame(
        {
            "member_id": member_ids,
            "mobile": mobile,
            "name": name,
            "gender": np.where(female, "F", "M"),
            "birthday": birthday,
            "city": _lookup([c.zh for c in cfg.CITIES], stores.city[members.home]),
            "language": _lookup(languages, language),
            "enrolled_at": _times(cal, members.join_t),
            "enrol_channel": _lookup(CHANNELS, orders.channel[first_order]),
            "enrol_store": _lookup(stores.ids, orders.store[first_order]),
        }
    )

    # --- transactions ------------------------------------------------------------------
    lines = _lines(world, orders, members.tea_tilt, streams[_LINES])
    ret_line, ret_quantity, ret_amount = _returns(
        orders, lines, params.commerce.return_full_share, streams[_LINES]
    )
    order_code = number[orders.member] * 10_000 + orders.seq
    first_line = np.zeros(lines.order.size, dtype=bool)
    first_line[np.searchsorted(lines.order, np.arange(orders.gross.size), side="left")] = True
    ret_order = lines.order[ret_line]
    row_order = np.concatenate([lines.order, ret_order])
    kind = np.concatenate([np.zeros(lines.order.size, np.int64), np.ones(ret_line.size, np.int64)])
    row_t = np.concatenate([orders.t[lines.order], orders.return_t[ret_order]])
    row_seconds = cal.epoch_seconds(row_t)
    row_product = np.concatenate([lines.product, lines.product[ret_line]])
    sort = np.lexsort(
        (row_product, kind, order_code[row_order], row_seconds, orders.member[row_order])
    )
    row_order, kind, row_product = row_order[sort], kind[sort], row_product[sort]
    row_seconds = row_seconds[sort]
    quantity = np.concatenate([lines.quantity, ret_quantity])[sort]
    amount = np.concatenate([lines.amount, ret_amount])[sort]
    points = np.concatenate(
        [
            np.where(first_line, orders.points_used[lines.order], 0),
            np.zeros(ret_line.size, np.int64),
        ]
    )[sort]
    codes = order_code[row_order]
    frames["transactions"] = pl.DataFrame(
        {
            "kind": _lookup(("purchase", "return"), kind),
            "order_id": _ids("O", codes, 11),
            "return_id": _where(kind == 1, _ids("R", codes, 11)),
            "member_id": member_ids.gather(orders.member[row_order]),
            "occurred_at": pl.Series(row_seconds * 1_000_000)
            .cast(pl.Datetime("us"))
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone(TIMEZONE),
            "channel": _lookup(CHANNELS, orders.channel[row_order]),
            "store": _lookup(stores.ids, orders.store[row_order]),
            "sku": _lookup(products.sku, row_product),
            "category": _lookup(CATEGORIES, products.category[row_product]),
            "quantity": quantity,
            "amount": amount / 100.0,
            "points_used": points,
        }
    )

    # --- truth -----------------------------------------------------------------------
    hit_order, hit_incident = np.nonzero(orders.severity)
    frames["truth_incidents"] = pl.DataFrame(
        {
            "order_id": _ids("O", order_code[hit_order], 11),
            "member_id": member_ids.gather(orders.member[hit_order]),
            "occurred_at": _times(cal, orders.t[hit_order]),
            "touchpoint": _lookup(CHANNELS, orders.channel[hit_order]),
            "incident": _lookup(INCIDENTS, hit_incident),
            "severity": orders.severity[hit_order, hit_incident].astype(np.int64),
        }
    )
    alive = np.isnan(members.dropout_t)
    frames["truth_members"] = pl.DataFrame(
        {
            "member_id": member_ids,
            "lambda_per_day": members.lam,
            "p_dropout": members.p,
            "nu": members.nu,
            "expected_spend": params.gamma_gamma.p / members.nu,
            "join_at": _times(cal, members.join_t),
            "dropout_at": _where(~alive, _times(cal, np.nan_to_num(members.dropout_t))),
            "alive_at_end": alive,
            "store_quality": stores.quality[members.home],
            "satisfaction_end": members.satisfaction_end,
            "n_purchases": members.n_purchases,
            "n_incidents": members.n_incidents,
            "tier_end": _lookup(TIERS, members.tier_end),
        }
    )

    # --- responses ---------------------------------------------------------------------
    frames["responses"], frames["truth_responses"] = _responses(
        world, orders, members, language, ret_order, streams, number, member_ids
    )
    counts = {
        "orders": int(orders.gross.size),
        "lines": int(lines.order.size),
        "returns": int(np.unique(ret_order).size),
        "return_lines": int(ret_line.size),
        "comments": int(frames["responses"]["comment"].is_not_null().sum()),
    }
    return frames, counts


def _responses(
    world: _World,
    orders: _Orders,
    members: _Members,
    language: np.ndarray,
    ret_order: np.ndarray,
    streams: list[np.random.Generator],
    numbers: np.ndarray,
    member_ids: pl.Series,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Transactional surveys after purchases and returns, the yearly relationship NPS; and
    the truth behind each answer (its experience of every attribute)."""
    from memberlab.datasets.comments import write_comment  # written alongside; loaded late

    cal, stores, surveys = world.calendar, world.stores, world.params.surveys
    rng = streams[_RESPONSES]

    # after purchases: extremes and incidents answer more
    any_incident = orders.severity.any(axis=1)
    chance = (
        surveys.transactional_base
        * (
            1
            + surveys.transactional_extremes
            * np.abs(orders.satisfaction - surveys.transactional_centre)
        )
        + surveys.transactional_incident_boost * any_incident
    )
    after = np.flatnonzero(rng.random(orders.t.size) < chance)
    after_t = _awake(orders.t[after] + (5 + rng.exponential(6 * 60, after.size)) / (24 * 60), rng)

    # after returns (one survey per returned order)
    returned = np.unique(ret_order)
    asked = returned[rng.random(returned.size) < surveys.after_sales_rate]
    sales_t = _awake(orders.return_t[asked] + rng.exponential(1.0, asked.size), rng)

    # relationship: invited each year, extremes answer more
    wave_member, wave = np.nonzero(np.isfinite(members.wave_satisfaction))
    wave_s = members.wave_satisfaction[wave_member, wave]
    answer = rng.random(wave_member.size) < surveys.relationship_invited * np.minimum(
        surveys.relationship_response * (0.6 + 1.5 * np.abs(wave_s - surveys.transactional_centre)),
        1,
    )
    wave_member, wave, wave_s = wave_member[answer], wave[answer], wave_s[answer]
    relation_t = _awake(cal.waves[wave] + rng.random(wave.size) * 10, rng)

    order_index = np.concatenate([after, asked, np.full(wave.size, -1)])  # -1: no order
    member = np.concatenate([orders.member[after], orders.member[asked], wave_member])
    responded = np.concatenate([after_t, sales_t, relation_t])
    survey = np.concatenate(
        [np.zeros(after.size + asked.size, np.int64), np.ones(wave.size, np.int64)]
    )
    touchpoint = np.concatenate(
        [
            orders.channel[after],
            np.full(asked.size, TOUCHPOINTS.index("after_sales")),
            np.full(wave.size, TOUCHPOINTS.index("membership")),
        ]
    )
    has_order = order_index >= 0
    safe_order = np.where(has_order, order_index, 0)
    # satisfaction still missing from earlier incidents: before the order's own after a
    # purchase, after it following a return (the order is history by then)
    state = np.concatenate([orders.prior[after], orders.satisfaction[asked], wave_s])
    severity = np.where(has_order[:, None], orders.severity[safe_order], 0)
    store = np.where(has_order, orders.store[safe_order], members.home[member])
    # by member and time; answers due after the end of the history never came
    sort = np.lexsort((survey, responded, member))
    sort = sort[responded[sort] < cal.days]
    member, responded, survey, touchpoint = (
        a[sort] for a in (member, responded, survey, touchpoint)
    )
    has_order, safe_order, state, store = (a[sort] for a in (has_order, safe_order, state, store))
    severity = severity[sort]
    experience = _experience(
        world, members, member, store, touchpoint, severity, streams[_EXPERIENCE]
    )
    answers = _scores(
        world.params.drivers,
        experience,
        touchpoint,
        severity,
        state - members.baseline[member],
        survey == 0,
        streams[_EXPERIENCE],
    )

    # comments, in the member's language; the only per-row Python work
    comment_rng = streams[_COMMENTS]
    wants = comment_rng.random(member.size) >= surveys.comment_box_skipped
    score = np.clip(answers["nps"] / 10.0, 0, 1)
    # the tone of a remark on an aspect follows the experience of its attribute
    drivers = world.params.drivers
    aspects = tuple(ASPECT_ATTRIBUTE)
    of_aspect = [RATINGS.index(ASPECT_ATTRIBUTE[a]) for a in aspects]
    tones = np.clip(
        drivers.remark_centre + drivers.remark_scale * experience[:, of_aspect], 0, 1
    ).tolist()
    comments: list[str | None] = [None] * member.size
    hit = severity.any(axis=1).tolist()
    english = language[member].tolist()
    touchpoints = [TOUCHPOINTS[tp] for tp in touchpoint.tolist()]
    scores = score.tolist()
    for row in np.flatnonzero(wants).tolist():
        incidents = [INCIDENTS[i] for i in np.flatnonzero(severity[row])] if hit[row] else []
        text = write_comment(
            comment_rng,
            language="en" if english[row] else "zh",
            touchpoint=touchpoints[row],
            incidents=incidents,
            score=scores[row],
            aspect_scores=dict(zip(aspects, tones[row], strict=True)),
        )
        comments[row] = text or None

    first = np.searchsorted(member, member, side="left")
    sequence = np.arange(member.size) - first + 1
    number = numbers[member]
    order_codes = number * 10_000 + orders.seq[safe_order]
    columns: dict[str, Any] = {
        "response_id": _ids("Q", number * 10_000 + sequence, 11),
        "member_id": member_ids.gather(member),
        "order_id": _where(has_order, _ids("O", order_codes, 11)),
        "responded_at": _times(cal, responded),
        "survey": _lookup(SURVEY_KINDS, survey),
        "touchpoint": _lookup(TOUCHPOINTS, touchpoint),
        "channel": _where(has_order, _lookup(CHANNELS, orders.channel[safe_order])),
        "store": _lookup(stores.ids, store),
        "language": _lookup(("zh-CN", "en"), language[member]),
    }
    for key, value in answers.items():
        columns[key] = _where(value >= 0, pl.Series(value))
    columns["comment"] = pl.Series(comments, dtype=pl.String)
    truth = {"response_id": columns["response_id"]}
    for j, rating in enumerate(RATINGS):
        truth[f"experience_{rating}"] = experience[:, j]
    return pl.DataFrame(columns), pl.DataFrame(truth)


# --- the whole world ---------------------------------------------------------------------------


def _world(
    *,
    members: int,
    seed: int,
    start: date,
    end: date,
    program_effects: bool,
    params: WorldParams,
) -> _World:
    calendar = _calendar(start, end, params, program_effects)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    stores = _stores(members, calendar.days, rng)
    join_x = _joins(members, calendar, stores, rng)
    factor = int(rng.integers(1, 50_000_000)) * 2 + 1  # odd ...
    if factor % 5 == 0:
        factor += 2  # ... and not a multiple of 5: a bijection of 0..10^8-1
    return _World(
        params=params,
        program_effects=program_effects,
        members=members,
        seed=seed,
        calendar=calendar,
        stores=stores,
        products=_products(),
        join_x=join_x,
        mobile_factor=factor,
        mobile_offset=int(rng.integers(0, 100_000_000)),
        # each store's own standard of each attribute, from a stream of its own so the
        # stores and enrolments above stay as they were
        store_standard=np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(2,))
        ).standard_normal((len(stores.ids), len(RATINGS))),
    )


def generate_world(
    out_dir: Path,
    *,
    members: int,
    seed: int,
    start: date = DEFAULT_START,
    end: date = DEFAULT_END,
    program_effects: bool = True,
    chunk_members: int = 50_000,
    progress: Callable[[int, int], None] | None = None,
    params: WorldParams | None = None,
) -> WorldSummary:
    """Write the demo world into ``out_dir`` (see ``FILES``) and return what was written.

    Deterministic for (``seed``, ``members``, ``start``, ``end``, ``program_effects``,
    ``chunk_members``, ``params``). With ``program_effects=False`` the purchases are pure
    BG/NBD with Gamma-Gamma values (plus the calendar seasonality, see the manifest):
    fitted models should recover the manifest's parameters.
    """
    if members < 1:
        raise ValueError("members must be at least 1")
    if end <= start:
        raise ValueError("end must be after start")
    if chunk_members < 1:
        raise ValueError("chunk_members must be at least 1")
    started = time.perf_counter()
    params = params or WorldParams()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = _world(
        members=members,
        seed=seed,
        start=start,
        end=end,
        program_effects=program_effects,
        params=params,
    )
    tables = {
        name: _Table(out_dir / FILES[name], name)
        for name in (
            "members",
            "transactions",
            "responses",
            "truth_members",
            "truth_incidents",
            "truth_responses",
        )
    }
    counts = dict.fromkeys(("orders", "lines", "returns", "return_lines", "comments"), 0)
    try:
        for name, frame in (
            ("stores", world.stores.frame(start)),
            ("products", _Products.frame()),
        ):
            table = _Table(out_dir / FILES[name], name)
            table.write(frame)
            table.close()
        for lo in range(0, members, chunk_members):
            hi = min(lo + chunk_members, members)
            frames, chunk_counts = _chunk_frames(world, lo, hi)
            for name, frame in frames.items():
                tables[name].write(frame)
            for key, value in chunk_counts.items():
                counts[key] += value
            if progress:
                progress(hi, members)
    finally:
        for table in tables.values():
            table.close()
    counts = {
        "stores": len(world.stores.ids),
        "products": len(cfg.PRODUCTS),
        "members": tables["members"].rows,
        **counts,
        "responses": tables["responses"].rows,
        "incidents": tables["truth_incidents"].rows,
    }
    _manifest(out_dir, world, counts, start, end, chunk_members)
    return WorldSummary(out_dir=out_dir, counts=counts, seconds=time.perf_counter() - started)


def incident_costs(params: WorldParams, program_effects: bool = True) -> list[dict[str, Any]]:
    """What the incidents cost by design, per (touchpoint, comment aspect), largest first.

    ``cost``: NPS points the chain loses per 1,000 orders, summed over the aspect's
    incidents at the touchpoint: ``share`` of orders there (``channel_shares``, with the
    mini program's pull under the program effects) x expected rate x NPS drop (so
    ``cost / share`` is the loss per 1,000 orders at the touchpoint). The rate
    is at a store of average quality (store-made incidents times E[exp(-k z)] = exp(k^2 / 2)
    over z ~ N(0, 1)) and, for queues, averaged over the store's hours; the drop is the
    driver weight of the attribute the incident spoils x its impact per severity point x
    the mean severity. Pain points on the answers rank alike: surveys after an incident
    are as likely whatever the incident, so complaints and their NPS gap scale the same.
    """
    from memberlab.datasets.comments import INCIDENT_ASPECT  # written alongside

    experience, drivers = params.experience, params.drivers
    shares = dict(params.commerce.channel_shares)
    if program_effects:
        shares["mini_program"] *= params.effects.mini_program_preference
    total = sum(shares.values())
    shares = {channel: share / total for channel, share in shares.items()}
    probs = np.asarray(experience.severity_probs)
    severity = float((np.arange(1, probs.size + 1) * probs).sum() / probs.sum())
    store_made = math.exp(experience.store_quality_effect**2 / 2)
    profile = np.asarray(cfg.HOURLY_PROFILE["store"])
    peak = float(profile[list(experience.peak_hours)].sum() / profile.sum())
    costs: dict[tuple[str, str], dict[str, Any]] = {}
    for incident, rates in experience.incident_rates.items():
        attribute = cfg.INCIDENT_ATTRIBUTE[incident]
        drop = drivers.weights[attribute] * drivers.incident_impact[incident] * severity
        for channel, rate in rates.items():
            if incident != "app_failure":
                rate *= store_made
            if incident == "long_queue":
                rate *= 1 - peak + peak * experience.peak_queue_factor
            key = (channel, INCIDENT_ASPECT[incident])
            row = costs.setdefault(
                key,
                {
                    "touchpoint": key[0],
                    "aspect": key[1],
                    "share": shares[channel],
                    "incidents": [],
                    "cost": 0.0,
                },
            )
            row["incidents"].append(incident)
            row["cost"] += 1000 * shares[channel] * rate * drop
    return sorted(costs.values(), key=lambda row: -row["cost"])


def injected_problems(params: WorldParams, program_effects: bool = True) -> list[dict[str, Any]]:
    """The injected problems with their designed impact (``incident_costs``), largest
    first, ranked from 1."""
    costs = {
        (c["touchpoint"], c["aspect"]): c["cost"] for c in incident_costs(params, program_effects)
    }
    problems = [
        {
            "name": p.name,
            "touchpoint": p.touchpoint,
            "aspect": p.aspect,
            "incident": p.incident,
            "attribute": cfg.INCIDENT_ATTRIBUTE[p.incident],
            "description_zh": p.description_zh,
            "description_en": p.description_en,
            "designed_impact": round(costs[p.touchpoint, p.aspect], 3),
        }
        for p in params.experience.injected_problems
    ]
    problems.sort(key=lambda p: -p["designed_impact"])
    return [{"rank": i + 1, **p} for i, p in enumerate(problems)]


def background_impact(params: WorldParams, program_effects: bool = True) -> float:
    """The largest designed impact of a (touchpoint, aspect) that is not injected."""
    injected = {(p.touchpoint, p.aspect) for p in params.experience.injected_problems}
    return round(
        max(
            (
                c["cost"]
                for c in incident_costs(params, program_effects)
                if (c["touchpoint"], c["aspect"]) not in injected
            ),
            default=0.0,
        ),
        3,
    )


def _manifest(
    out_dir: Path, world: _World, counts: dict[str, int], start: date, end: date, chunk: int
) -> None:
    params = world.params.as_dict()
    manifest = {
        "generator": GENERATOR,
        "version": VERSION,
        "seed": world.seed,
        "members": world.members,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "timezone": TIMEZONE,
        "program_effects": world.program_effects,
        "chunk_members": chunk,
        "params": {
            "bgnbd": params["bgnbd"],
            "gamma_gamma": params["gamma_gamma"],
            "time_unit": "day",
            "money_unit": "yuan",
            "notes": {
                "bgnbd": (
                    "lambda ~ Gamma(shape r, rate alpha) per day is the average intensity: "
                    "each day's rate is lambda times the seasonality multiplier of that day, "
                    "normalised to mean 1 over the history, so lambda is a rate in "
                    "operational time (purchases per average day). The first purchase is "
                    "the enrolment (time zero); after each repeat purchase the member drops "
                    "out with probability p ~ Beta(a, b), for good (dropout_at in truth)."
                ),
                "gamma_gamma": (
                    "nu ~ Gamma(shape q, rate gamma); each order's value (the sum of its "
                    "lines' amounts, points included) ~ Gamma(shape p, rate nu), mean p/nu "
                    "(expected_spend in truth). Returns are separate rows."
                ),
                "program_effects": (
                    "With program_effects false, none of the effects apply (no threshold "
                    "acceleration, tier retention, incident dropout, member-day bump or "
                    "earn-rate responses): purchases are pure BG/NBD and Gamma-Gamma under "
                    "the seasonality. Incidents, satisfaction and surveys happen either way."
                ),
                "drivers": (
                    "Each answer has a latent experience of every attribute (standard "
                    "scale: sd 1 when nothing went wrong; incidents pull down the attribute "
                    "they spoil); each rating reads its own attribute, and NPS and CSAT "
                    "follow the attributes the touchpoint involves with these weights (NPS "
                    "points per sd), plus noise and what earlier incidents left. order is "
                    "the true ranking of the drivers: a key-driver analysis of the ratings "
                    "on NPS should find it at every touchpoint, on the ratings asked there."
                ),
                "injected_problems": (
                    "The three problems put into the world (injected_problems, at the top "
                    "level), ranked by designed impact: NPS points lost per 1,000 orders of "
                    "the chain (share of orders at the touchpoint x rate x NPS drop). Every "
                    "other (touchpoint, aspect) costs at most background_impact."
                ),
                "points_used": (
                    "At most half of a conservative balance: released base points (1 per "
                    "yuan paid, capped) of the current and previous calendar year, minus all "
                    "points used and a reserve for what returns can take back."
                ),
            },
            "seasonality": params["seasonality"],
            "effects": params["effects"],
            "experience": params["experience"],
            "drivers": {**params["drivers"], "order": list(world.params.drivers.order)},
            "surveys": params["surveys"],
            "commerce": params["commerce"],
        },
        "injected_problems": injected_problems(world.params, world.program_effects),
        "background_impact": background_impact(world.params, world.program_effects),
        "counts": counts,
        "files": FILES,
    }
    (out_dir / FILES["manifest"]).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
    )
