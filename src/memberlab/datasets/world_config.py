"""Parameters and catalogue of the demo world (茶语咖啡 / Teahouse).

Everything the generator in ``memberlab.datasets.world`` draws from is here: the latent
models' parameters (written to ``manifest.json`` so analysts can score their fits), the
calendar of campaigns, the experience model (incidents, satisfaction, surveys) and the
static catalogue (cities, products, names).

Units: rates are per day, money in yuan, probabilities per purchase unless said otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

DEFAULT_START = date(2023, 11, 1)
DEFAULT_END = date(2026, 10, 31)
TIMEZONE = "Asia/Shanghai"
UTC_OFFSET_HOURS = 8  # China has kept +08:00 all year since 1991

CHANNELS = ("store", "mini_program", "app", "delivery")
CATEGORIES = ("tea", "coffee", "seasonal", "bakery", "merch", "gift_card")
INCIDENTS = (
    "delivery_delay",
    "long_queue",
    "rude_staff",
    "product_fault",
    "app_failure",
    "wrong_order",
    "cold_drink",
    "out_of_stock",
)
TIERS = ("sprout", "green_leaf", "golden_bud")


class WorldSize(StrEnum):
    """Preset sizes: members over the whole history."""

    TINY = "tiny"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"

    @property
    def members(self) -> int:
        return WORLD_SIZE_MEMBERS[self]


WORLD_SIZE_MEMBERS = {
    WorldSize.TINY: 300,
    WorldSize.SMALL: 5_000,
    WorldSize.MEDIUM: 100_000,
    WorldSize.LARGE: 1_000_000,
}


# --- latent models ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BgNbd:
    """Purchase rate lambda ~ Gamma(shape r, rate alpha) per day; after every repeat purchase
    the member drops out with probability p ~ Beta(a, b). The first purchase is the
    enrolment (time zero in BG/NBD terms): nobody drops out right after it."""

    r: float = 0.9
    alpha: float = 18.0
    a: float = 0.85
    b: float = 6.5


@dataclass(frozen=True)
class GammaGamma:
    """Fader-Hardie: nu ~ Gamma(shape q, rate gamma); each order's value ~ Gamma(shape p,
    rate nu), so a member's mean order value is p / nu and the population mean is
    p * gamma / (q - 1) yuan."""

    p: float = 6.0
    q: float = 4.0
    gamma: float = 20.0


@dataclass(frozen=True)
class Seasonality:
    """Multipliers of everybody's purchase rate by calendar day, normalised so the mean over
    the history is 1 (the BG/NBD lambda is the average intensity, i.e. a rate in
    "operational time")."""

    saturday: float = 1.12
    sunday: float = 1.06
    summer: float = 1.10  # June to August, tea season
    spring_festival_run_up: float = 1.15  # the two weeks before the Spring Festival: gifting
    spring_festival_dip: float = 0.6  # the holiday week: people go home, offices close
    festival_run_up: float = 1.12  # 1-17 June and 1-10 November
    june_18: float = 1.5
    double_11: float = 1.6
    # enrolment campaigns: new members per day, relative to an ordinary day
    join_run_up: float = 1.7
    join_peak: float = 4.5
    join_spring_festival_run_up: float = 1.3
    join_spring_festival_dip: float = 0.5


@dataclass(frozen=True)
class ProgramEffects:
    """How the program changes behaviour; all off with ``program_effects=False``."""

    # members within this share below the next tier's threshold buy faster ...
    threshold_window: float = 0.15
    threshold_acceleration: float = 1.35  # ... by this factor on their rate
    # dropout probability multiplied by tier (benefits retain)
    tier_dropout_factor: dict[str, float] = field(
        default_factory=lambda: {"sprout": 1.0, "green_leaf": 0.8, "golden_bud": 0.6}
    )
    # response to earn rates: double points on seasonal drinks, 1.5x on the mini program,
    # double points on the 8th of each month
    seasonal_category_weight: float = 1.5
    mini_program_preference: float = 1.25
    member_day_intensity: float = 1.3
    # after a purchase with incidents, the dropout probability is multiplied by these; they
    # would break pure BG/NBD, so they are switched off with the program effects too
    incident_dropout_factor: dict[str, float] = field(
        default_factory=lambda: {
            "delivery_delay": 1.5,
            "long_queue": 1.3,
            "rude_staff": 2.2,
            "product_fault": 1.8,
            "app_failure": 1.4,
            "wrong_order": 1.7,
            "cold_drink": 1.25,
            "out_of_stock": 1.2,
        }
    )
    max_dropout: float = 0.95


@dataclass(frozen=True)
class InjectedProblem:
    """A problem the chain has, put into the world on purpose: one incident far more
    frequent at one touchpoint than anything else that goes wrong there. Members who run
    into it complain about ``aspect`` (a code of ``experience/text/aspects.yaml``) and
    recommend the chain less, through the attribute the incident spoils
    (``INCIDENT_ATTRIBUTE``). Pain-point analyses should find these three on top."""

    name: str
    incident: str
    touchpoint: str
    aspect: str
    description_zh: str
    description_en: str


@dataclass(frozen=True)
class Experience:
    """Incidents at touchpoints, the latent satisfaction they move and the injected problems.

    Three incidents are the chain's problems (``injected_problems``): long queues at the
    stores' peak hours, late deliveries and checkout failures of the mini program. Every
    other incident is rare (background noise of a well-run chain): what each costs, rate x
    NPS drop x the touchpoint's trade, is well below the third problem's (see
    ``world.incident_costs``, written to the manifest).
    """

    # probability per purchase, by incident and channel, at a store of average quality
    incident_rates: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            "delivery_delay": {"delivery": 0.09},
            "long_queue": {"store": 0.014},
            "rude_staff": {"store": 0.002},
            "product_fault": {
                "store": 0.001,
                "mini_program": 0.001,
                "app": 0.001,
                "delivery": 0.002,
            },
            "app_failure": {"mini_program": 0.04, "app": 0.004},
            "wrong_order": {
                "store": 0.002,
                "mini_program": 0.002,
                "app": 0.002,
                "delivery": 0.004,
            },
            "cold_drink": {
                "store": 0.001,
                "mini_program": 0.001,
                "app": 0.001,
                "delivery": 0.003,
            },
            "out_of_stock": {
                "store": 0.002,
                "mini_program": 0.001,
                "app": 0.001,
                "delivery": 0.001,
            },
        }
    )
    peak_hours: tuple[int, ...] = (8, 9, 12, 13, 18)
    peak_queue_factor: float = 5.0  # long queues at peak hours
    # store quality z ~ N(0, 1); store-made incidents are multiplied by exp(-k z)
    store_quality_effect: float = 0.45
    severity_probs: tuple[float, float, float] = (0.6, 0.3, 0.1)  # severity 1, 2, 3
    # satisfaction (0..1) lost per severity point of each incident
    satisfaction_impact: dict[str, float] = field(
        default_factory=lambda: {
            "delivery_delay": 0.06,
            "long_queue": 0.04,
            "rude_staff": 0.10,
            "product_fault": 0.08,
            "app_failure": 0.04,
            "wrong_order": 0.07,
            "cold_drink": 0.04,
            "out_of_stock": 0.03,
        }
    )
    # each member's baseline satisfaction ~ Beta(a, b), shifted by home store quality
    baseline_beta: tuple[float, float] = (8.0, 3.0)
    store_quality_satisfaction: float = 0.03
    half_life_days: float = 30.0  # satisfaction returns towards the baseline
    injected_problems: tuple[InjectedProblem, ...] = (
        InjectedProblem(
            "peak_queues",
            "long_queue",
            "store",
            "waiting_time",
            "门店高峰期排长队",
            "Long queues in the stores at peak hours",
        ),
        InjectedProblem(
            "late_deliveries",
            "delivery_delay",
            "delivery",
            "delivery_speed",
            "外卖配送超时",
            "Deliveries arrive late",
        ),
        InjectedProblem(
            "mini_program_failures",
            "app_failure",
            "mini_program",
            "app_usability",
            "小程序下单、支付出错",
            "The mini program fails at ordering and checkout",
        ),
    )


# The rated attributes, in the order of the survey's columns.
ATTRIBUTES = ("speed", "staff", "product_quality", "value", "app_usability", "cleanliness")
# The attribute each incident spoils: its experience, hence its rating and NPS.
INCIDENT_ATTRIBUTE = {
    "delivery_delay": "speed",
    "long_queue": "speed",
    "rude_staff": "staff",
    "product_fault": "product_quality",
    "app_failure": "app_usability",
    "wrong_order": "product_quality",
    "cold_drink": "product_quality",
    "out_of_stock": "product_quality",
}


@dataclass(frozen=True)
class Drivers:
    """The true drivers: every answer's experience of each attribute, which its rating
    reads and which NPS and CSAT follow with known weights.

    Experience of attribute a in an answer, on a standard scale (mean 0, sd 1 when nothing
    went wrong)::

        x_a = halo * disposition + sqrt(member_share) * view_a + store_effect[a] * standard_a
              + sqrt(rest) * moment_a - incident_impact[i] * severity_i   (incidents i of a)

    ``disposition`` is the member's baseline satisfaction, standardised (the halo that
    colours every attribute alike); ``view_a`` the member's own lasting view of the
    attribute, ``standard_a`` the standard of the store that served the answer (the
    member's home store for the relationship survey), ``moment_a`` this visit's luck;
    ``rest`` makes the four add up to variance 1. A store's standards are its own, one per
    attribute and independent of its latent quality (which makes incidents): were the
    cleanliness of a store a sign of its queues, its rating would take credit for them.
    Incidents pull down the attribute they spoil (``INCIDENT_ATTRIBUTE``) by
    ``incident_impact`` standard deviations per severity point; after-sales answers are
    about the after-sales service, not the order, and the relationship survey has no order.

    Answers read it::

        rating_a = clip(round(rating_centre + rating_scale * x_a + N(0, rating_noise)), 1, 5)
        core     = sum over the attributes the touchpoint involves of weights[a] * x_a
        NPS      = clip(round(nps_centre + core + history * (s - baseline)
                              + N(0, nps_noise)), 0, 10)   (after_sales_shift after a return)
        CSAT     = clip(round(csat_centre + csat_scale * core + N(0, csat_noise)), 1, 5)

    A touchpoint involves the attributes it asks about (``world.ASKED``); the relationship
    survey, about the chain as a whole, involves all six. ``s - baseline`` is how far below
    the member's baseline their satisfaction still is from earlier incidents (before the
    answer's own): it moves NPS but no rating. So ``weights`` are the true drivers: NPS
    points per standard deviation of each attribute's experience, and their order
    (``order``) is what a key-driver analysis of the ratings on NPS should find at every
    touchpoint (on the attributes asked there). The gaps are wide so a few thousand
    answers resolve them: the injected problems add variance to speed (queues, delays) and
    app usability (mini program failures), which moves their shares up a little, never
    past the attribute above them.

    Comments follow the same experience: a remark on an aspect (``world.ASPECT_ATTRIBUTE``)
    has the tone of ``clip(remark_centre + remark_scale * x_a, 0, 1)``: most remarks are
    praise, complaints come from a bad experience of that very attribute.
    """

    weights: dict[str, float] = field(
        default_factory=lambda: {
            "product_quality": 1.0,
            "speed": 0.65,
            "staff": 0.45,
            "app_usability": 0.35,
            "value": 0.25,
            "cleanliness": 0.1,
        }
    )
    """The true drivers of NPS: points of NPS per standard deviation of each attribute's
    experience. The drink first, then speed (queues, deliveries), the staff, the ordering
    app (most orders go through the mini program or the app), the price (members pay member
    prices with coupons) and, last, the store's cleanliness (most take their drink away).
    Neighbours are at least 0.1 apart: relative weights on a few thousand answers tell
    them apart (tests/experience/test_drivers.py)."""
    halo: float = 0.35
    member_share: float = 0.25
    store_effect: dict[str, float] = field(
        default_factory=lambda: {
            "speed": 0.15,
            "staff": 0.2,
            "product_quality": 0.1,
            "cleanliness": 0.45,
        }
    )
    # sd of the attribute's experience lost per severity point of the incident
    incident_impact: dict[str, float] = field(
        default_factory=lambda: {
            "delivery_delay": 0.9,
            "long_queue": 1.0,
            "rude_staff": 1.2,
            "product_fault": 1.0,
            "app_failure": 1.2,
            "wrong_order": 0.6,
            "cold_drink": 0.6,
            "out_of_stock": 0.5,
        }
    )
    rating_centre: float = 3.9
    rating_scale: float = 0.85
    rating_noise: float = 0.3
    nps_centre: float = 8.0
    nps_noise: float = 0.6
    history: float = 5.0  # NPS points per unit of satisfaction (0..1) below the baseline
    after_sales_shift: float = -0.5
    csat_centre: float = 4.0
    csat_scale: float = 0.5
    csat_noise: float = 0.4
    # CES (1-7, "made it easy"): speed and app usability where the touchpoint involves
    # them, minus effort_impact per severity point of a wrong order (going back for it)
    ces_centre: float = 5.4
    ces_scale: float = 0.8
    ces_noise: float = 0.6
    effort_impact: float = 0.8
    remark_centre: float = 0.8
    remark_scale: float = 0.12

    @property
    def order(self) -> tuple[str, ...]:
        """The attributes from the strongest driver of NPS to the weakest."""
        return tuple(sorted(self.weights, key=lambda a: -self.weights[a]))


@dataclass(frozen=True)
class Surveys:
    # transactional survey answered after a purchase: base * (1 + extremes * |s - centre|)
    # + incident_boost when something went wrong
    transactional_base: float = 0.055
    transactional_extremes: float = 2.0
    transactional_centre: float = 0.65
    transactional_incident_boost: float = 0.12
    after_sales_rate: float = 0.2  # returns followed by an after-sales survey
    # relationship NPS each year (10 June): share of enrolled members invited, and answering
    relationship_invited: float = 0.12
    relationship_response: float = 0.3
    relationship_month_day: tuple[int, int] = (6, 10)
    comment_box_skipped: float = 0.35  # before write_comment's own silence


@dataclass(frozen=True)
class Commerce:
    channel_shares: dict[str, float] = field(
        default_factory=lambda: {"store": 0.45, "mini_program": 0.30, "app": 0.10, "delivery": 0.15}
    )
    channel_concentration: float = 3.0  # Dirichlet concentration of member preferences
    away_store_share: float = 0.12  # in-store purchases at another store of the city
    gift_card_rate: float = 0.03  # of orders of 120 yuan or more
    return_base_rate: float = 0.012
    return_incident_rate: dict[str, float] = field(
        default_factory=lambda: {
            "product_fault": 0.3,
            "wrong_order": 0.35,
            "cold_drink": 0.08,
            "out_of_stock": 0.02,
        }
    )
    return_full_share: float = 0.6  # the rest return one line (some of its quantity)
    # returned 1 to this many days later, at any hour: within the program's 7-day window
    return_max_days: int = 6
    # pay with points: share of members who never do, and the others' chance per order
    never_redeem: float = 0.3
    redeem_beta: tuple[float, float] = (1.2, 4.0)
    redeem_min_balance: int = 200
    redeem_balance_share: float = 0.5  # at most this share of the conservative balance
    english_name_share: float = 0.06
    english_language_if_english_name: float = 0.85
    english_language_if_chinese_name: float = 0.04
    female_share: float = 0.58


@dataclass(frozen=True)
class WorldParams:
    bgnbd: BgNbd = field(default_factory=BgNbd)
    gamma_gamma: GammaGamma = field(default_factory=GammaGamma)
    seasonality: Seasonality = field(default_factory=Seasonality)
    effects: ProgramEffects = field(default_factory=ProgramEffects)
    experience: Experience = field(default_factory=Experience)
    drivers: Drivers = field(default_factory=Drivers)
    surveys: Surveys = field(default_factory=Surveys)
    commerce: Commerce = field(default_factory=Commerce)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the program (mirrors samples/teahouse.yaml; the generator only estimates with it) -------

TIER_THRESHOLDS = (0, 800, 2500)
TIER_RETENTION = (0, 600, 2000)
GROWTH_PER_ORDER = 5
POINTS_PENDING_DAYS = 3
POINTS_CAP_ORDER = 1000
POINTS_CAP_DAY = 2000
POINTS_CAP_MONTH = 10000
POINTS_STEP = 100
POINTS_MAX_SHARE = 0.5  # of the order's gross
# the most a return can take back per order: best multiplier (2) x top tier (1.5) on the
# base points, capped per order, plus the big-order bonus
MAX_EARN_FACTOR = 3
BIG_ORDER_BONUS = 50


# --- calendar --------------------------------------------------------------------------------

# 春节 (first day of the lunar year)
SPRING_FESTIVALS = tuple(
    date.fromisoformat(d)
    for d in (
        "2019-02-05",
        "2020-01-25",
        "2021-02-12",
        "2022-02-01",
        "2023-01-22",
        "2024-02-10",
        "2025-01-29",
        "2026-02-17",
        "2027-02-06",
        "2028-01-26",
        "2029-02-13",
        "2030-02-03",
        "2031-01-23",
        "2032-02-11",
        "2033-01-31",
        "2034-02-19",
        "2035-02-08",
    )
)

# relative intensity by hour of day (local), per channel
HOURLY_PROFILE: dict[str, tuple[float, ...]] = {
    #            0    1    2    3    4    5    6    7    8     9    10   11   12    13   14   15   16   17   18   19   20   21   22   23  # noqa: E501
    "store": (0, 0, 0, 0, 0, 0, 0.5, 4, 9, 7, 5, 6, 8, 7, 6, 7, 6, 6, 6, 5, 4, 3, 1, 0.2),
    "mini_program": (
        0.2, 0.1, 0, 0, 0, 0.2, 1, 5, 10, 8, 6, 7, 8, 7, 6, 7, 5, 5, 4, 3, 3, 2, 1, 0.5,
    ),
    "app": (0.4, 0.2, 0.1, 0, 0, 0.2, 1, 4, 8, 7, 6, 7, 8, 7, 6, 7, 5, 5, 5, 4, 4, 3, 2, 1),
    "delivery": (
        0.5, 0.3, 0.1, 0, 0, 0, 0.2, 0.5, 1, 2, 4, 9, 10, 7, 7, 8, 6, 6, 8, 7, 5, 4, 3, 1.5,
    ),
}  # fmt: skip

# category weights (tea, coffee, seasonal, bakery, merch) by channel; gift cards apart
CATEGORY_WEIGHTS: dict[str, tuple[float, float, float, float, float]] = {
    "store": (0.40, 0.30, 0.10, 0.16, 0.04),
    "mini_program": (0.42, 0.32, 0.12, 0.11, 0.03),
    "app": (0.40, 0.33, 0.12, 0.10, 0.05),
    "delivery": (0.45, 0.30, 0.12, 0.11, 0.02),
}
SUMMER_TEA = 1.25
WINTER_COFFEE = 1.2


# --- catalogue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    zh: str
    en: str
    weight: float
    districts: tuple[tuple[str, str], ...]


CITIES: tuple[City, ...] = (
    City("上海", "Shanghai", 0.21, (
        ("静安", "Jing'an"), ("徐汇", "Xuhui"), ("浦东", "Pudong"), ("黄浦", "Huangpu"),
        ("长宁", "Changning"), ("杨浦", "Yangpu"), ("闵行", "Minhang"), ("虹口", "Hongkou"),
    )),
    City("北京", "Beijing", 0.17, (
        ("朝阳", "Chaoyang"), ("海淀", "Haidian"), ("东城", "Dongcheng"), ("西城", "Xicheng"),
        ("望京", "Wangjing"), ("三里屯", "Sanlitun"), ("丰台", "Fengtai"), ("通州", "Tongzhou"),
    )),
    City("杭州", "Hangzhou", 0.11, (
        ("西湖", "Xihu"), ("上城", "Shangcheng"), ("拱墅", "Gongshu"), ("滨江", "Binjiang"),
        ("余杭", "Yuhang"), ("萧山", "Xiaoshan"),
    )),
    City("深圳", "Shenzhen", 0.12, (
        ("南山", "Nanshan"), ("福田", "Futian"), ("罗湖", "Luohu"), ("宝安", "Bao'an"),
        ("龙华", "Longhua"), ("龙岗", "Longgang"),
    )),
    City("广州", "Guangzhou", 0.10, (
        ("天河", "Tianhe"), ("越秀", "Yuexiu"), ("海珠", "Haizhu"), ("荔湾", "Liwan"),
        ("番禺", "Panyu"), ("白云", "Baiyun"),
    )),
    City("成都", "Chengdu", 0.09, (
        ("锦江", "Jinjiang"), ("青羊", "Qingyang"), ("武侯", "Wuhou"), ("成华", "Chenghua"),
        ("高新", "Gaoxin"), ("金牛", "Jinniu"),
    )),
    City("南京", "Nanjing", 0.07, (
        ("鼓楼", "Gulou"), ("玄武", "Xuanwu"), ("秦淮", "Qinhuai"), ("建邺", "Jianye"),
        ("江宁", "Jiangning"),
    )),
    City("武汉", "Wuhan", 0.06, (
        ("江汉", "Jianghan"), ("武昌", "Wuchang"), ("洪山", "Hongshan"), ("汉阳", "Hanyang"),
        ("江岸", "Jiang'an"),
    )),
    City("苏州", "Suzhou", 0.04, (
        ("姑苏", "Gusu"), ("工业园区", "SIP"), ("吴中", "Wuzhong"), ("相城", "Xiangcheng"),
    )),
    City("西安", "Xi'an", 0.03, (
        ("雁塔", "Yanta"), ("碑林", "Beilin"), ("未央", "Weiyang"), ("莲湖", "Lianhu"),
    )),
)  # fmt: skip


@dataclass(frozen=True)
class Product:
    sku: str
    name_zh: str
    name_en: str
    category: str
    price: float  # list price, yuan
    months: tuple[int, ...] = ()  # seasonal drinks: months on the menu


PRODUCTS: tuple[Product, ...] = (
    Product("T01", "茉莉绿茶", "Jasmine green tea", "tea", 12),
    Product("T02", "龙井清茶", "Longjing green tea", "tea", 18),
    Product("T03", "铁观音", "Tieguanyin oolong", "tea", 16),
    Product("T04", "桂花乌龙", "Osmanthus oolong", "tea", 18),
    Product("T05", "芝士莓莓", "Cheese-foam berry tea", "tea", 26),
    Product("T06", "多肉葡萄", "Grape fruit tea", "tea", 25),
    Product("T07", "柠檬红茶", "Lemon black tea", "tea", 14),
    Product("T08", "珍珠奶茶", "Pearl milk tea", "tea", 16),
    Product("T09", "杨枝甘露", "Mango pomelo sago", "tea", 22),
    Product("T10", "普洱鲜奶茶", "Pu'er fresh milk tea", "tea", 19),
    Product("T11", "白桃乌龙", "White peach oolong", "tea", 21),
    Product("T12", "金萱厚乳茶", "Jin Xuan rich milk tea", "tea", 28),
    Product("C01", "美式咖啡", "Americano", "coffee", 15),
    Product("C02", "拿铁", "Caffè latte", "coffee", 22),
    Product("C03", "生椰拿铁", "Coconut latte", "coffee", 24),
    Product("C04", "燕麦拿铁", "Oat latte", "coffee", 25),
    Product("C05", "卡布奇诺", "Cappuccino", "coffee", 23),
    Product("C06", "澳白", "Flat white", "coffee", 26),
    Product("C07", "焦糖玛奇朵", "Caramel macchiato", "coffee", 28),
    Product("C08", "冷萃咖啡", "Cold brew", "coffee", 27),
    Product("C09", "桂花拿铁", "Osmanthus latte", "coffee", 29),
    Product("C10", "手冲单品", "Pour-over single origin", "coffee", 32),
    Product("X01", "樱花奶茶", "Sakura milk tea", "seasonal", 24, (3, 4)),
    Product("X02", "西瓜冰茶", "Watermelon iced tea", "seasonal", 22, (6, 7, 8)),
    Product("X03", "栗子拿铁", "Chestnut latte", "seasonal", 28, (9, 10, 11)),
    Product("X04", "姜枣暖茶", "Ginger-jujube tea", "seasonal", 18, (12, 1, 2)),
    Product("X05", "红运新年奶茶", "Lucky-red New Year milk tea", "seasonal", 30, (1, 2)),
    Product("X06", "月饼拿铁", "Mooncake latte", "seasonal", 26, (9,)),
    Product("X07", "青梅绿茶", "Green plum tea", "seasonal", 20, (5, 6)),
    Product("B01", "菠萝包", "Pineapple bun", "bakery", 8),
    Product("B02", "葡式蛋挞", "Portuguese egg tart", "bakery", 9),
    Product("B03", "抹茶麻薯", "Matcha mochi", "bakery", 12),
    Product("B04", "肉松小贝", "Pork floss cake", "bakery", 14),
    Product("B05", "黄油可颂", "Butter croissant", "bakery", 15),
    Product("B06", "芝士蛋糕", "Cheesecake", "bakery", 20),
    Product("B07", "鸡蛋三明治", "Egg sandwich", "bakery", 18),
    Product("M01", "茶语随行杯", "Teahouse tumbler", "merch", 89),
    Product("M02", "帆布袋", "Canvas tote", "merch", 39),
    Product("M03", "冷泡茶礼盒", "Cold-brew tea gift box", "merch", 128),
    Product("M04", "陶瓷马克杯", "Ceramic mug", "merch", 59),
    Product("M05", "手冲咖啡套装", "Pour-over coffee set", "merch", 199),
    Product("M06", "明前龙井茶叶", "Pre-Qingming Longjing leaves", "merch", 168),
    Product("G01", "茶语礼品卡 100 元", "Teahouse gift card 100 yuan", "gift_card", 100),
    Product("G02", "茶语礼品卡 200 元", "Teahouse gift card 200 yuan", "gift_card", 200),
)

# --- names -----------------------------------------------------------------------------------

# common surnames, most frequent first (weights fall off like Zipf)
SURNAMES = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛"
)
GIVEN_CHARACTERS = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚英华玉萍红建文辉力晨宇浩欣怡佳悦子涵梓轩雨思嘉"
    "琪晓婷雪琳博然睿诗若一可心宁安泽阳晴依宏俊鹏飞鑫雅慧颖倩蕾韵楠"
)
ENGLISH_FIRST_NAMES = (
    "Emily", "James", "Sophie", "Daniel", "Olivia", "Michael", "Hannah", "David", "Grace",
    "Thomas", "Chloe", "Lucas", "Amelia", "Ethan", "Isabella", "Oliver", "Mia", "Jack",
    "Charlotte", "Ryan", "Anna", "Leo", "Zoe", "Matthew", "Lily", "Kevin", "Vivian", "Eric",
)  # fmt: skip
ENGLISH_SURNAMES = (
    "Smith", "Brown", "Wilson", "Taylor", "Martin", "Anderson", "Thompson", "Walker", "White",
    "Harris", "Clarke", "Lewis", "Young", "Hall", "King", "Wright", "Scott", "Green", "Baker",
    "Müller", "Schmidt", "Dubois", "Rossi", "Kim", "Tanaka", "Nguyen", "Chen", "Wong", "Lee",
    "Zhang",
)  # fmt: skip
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "150", "151", "152", "153", "155", "156", "157", "158", "159",
    "180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
    "191", "193", "195", "196", "197", "198", "199",
)  # fmt: skip


def store_count(members: int) -> int:
    """Stores grow mildly with the member base: 12 for 300 members, about 300 for a million."""
    return int(min(max(round(12 * (max(members, 1) / 300) ** 0.4), 12), 300))
