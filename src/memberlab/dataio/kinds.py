"""What each kind of import file holds: its fields, their types and the headers they go by.

The synonyms are the headers seen in real exports from Chinese and international retail,
POS, CRM and survey systems. Headers are compared after ``mapping.header_key`` (full-width
to ASCII, lower case, no spaces, underscores or bracketed units), so ``实付金额（元）`` and
``Amount_Paid`` find their field without listing every spelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FieldType(StrEnum):
    TEXT = "text"
    ID = "id"  # an identifier: letters, digits and - _ . / : #, at most 64 characters
    DATETIME = "datetime"
    DATE = "date"
    AMOUNT = "amount"  # money, read into minor units (fen)
    INTEGER = "integer"
    CHOICE = "choice"  # a code, from synonyms; unknown text kept as written
    MOBILE = "mobile"


CHANNELS = {
    "store": "store", "门店": "store", "线下": "store", "堂食": "store", "到店": "store",
    "pos": "store", "offline": "store", "店铺": "store", "实体店": "store",
    "mini_program": "mini_program", "miniprogram": "mini_program", "小程序": "mini_program",
    "微信小程序": "mini_program", "wechat": "mini_program", "微信": "mini_program",
    "app": "app", "手机app": "app", "应用": "app",
    "delivery": "delivery", "外卖": "delivery", "外送": "delivery", "配送": "delivery",
    "美团": "delivery", "饿了么": "delivery", "takeaway": "delivery",
    "online": "online", "线上": "online", "网店": "online", "电商": "online", "官网": "online",
}  # fmt: skip
GENDERS = {
    "male": "male", "m": "male", "男": "male", "先生": "male",
    "female": "female", "f": "female", "女": "female", "女士": "female",
    "other": "other", "其他": "other", "unknown": "unknown", "未知": "unknown", "保密": "unknown",
}  # fmt: skip
EVENT_KINDS = {
    "purchase": "purchase", "sale": "purchase", "order": "purchase", "消费": "purchase",
    "销售": "purchase", "购买": "purchase", "下单": "purchase", "正常": "purchase",
    "return": "return", "refund": "return", "退货": "return", "退款": "return", "退单": "return",
}  # fmt: skip
LANGUAGES = {
    "zh-cn": "zh-CN", "zh": "zh-CN", "中文": "zh-CN", "简体中文": "zh-CN", "chinese": "zh-CN",
    "en": "en", "english": "en", "英文": "en", "英语": "en",
}  # fmt: skip
SURVEY_TYPES = {
    "transactional": "transactional", "交易": "transactional", "消费后": "transactional",
    "relationship": "relationship", "关系": "relationship", "年度": "relationship",
    "followup": "follow_up", "follow_up": "follow_up", "回访": "follow_up",
}  # fmt: skip


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    synonyms: tuple[str, ...] = ()
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    choices: dict[str, str] | None = None
    default: str | None = None  # used (as text) when the column is absent or the cell empty
    # choices that are open keep unknown text as written (a client's own channel names)
    open_choices: bool = False
    max_length: int = 200
    # survey tools name columns by the question asked ("2、您有多大可能向朋友推荐我们？"):
    # regular expressions found in such headers (after the synonyms, in field order)
    patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportKind:
    name: str
    fields: tuple[FieldSpec, ...]
    # fields that must be unique within the file (each row is one thing)
    unique: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)


_MEMBER_ID = ("member_id", "会员id", "会员编号", "会员卡号", "会员号", "卡号", "memberno",
              "membercode", "customer_id", "customerid", "客户id", "客户编号", "顾客id", "用户id",
              "userid", "card_no", "member", "customer", "cust", "cust_id", "客户")  # fmt: skip
_ORDER_ID = ("order_id", "订单号", "订单编号", "单号", "小票号", "流水号", "交易单号", "订单id",
             "order_no", "orderno", "receipt_no", "transaction_id", "order")  # fmt: skip
_TIME = ("occurred_at", "order_time", "下单时间", "交易时间", "消费时间", "购买时间", "订单时间",
         "支付时间", "日期", "时间", "transaction_time", "purchase_date", "order_date", "date",
         "time", "datetime")  # fmt: skip
_STORE = ("store", "store_id", "门店", "门店编号", "门店代码", "门店id", "店铺", "店号", "店铺编号",
          "shop", "shop_id", "outlet")  # fmt: skip
_CHANNEL = ("channel", "渠道", "销售渠道", "下单渠道", "来源", "source")
_SKU = ("sku", "商品编码", "商品编号", "商品id", "货号", "条码", "product_id", "item_id",
        "product_code", "item")  # fmt: skip
_CATEGORY = ("category", "品类", "类别", "商品类别", "商品分类", "分类", "category_code")
_AMOUNT = ("amount", "实付金额", "消费金额", "支付金额", "实收金额", "金额", "成交金额", "销售额",
           "paid", "amount_paid", "sales", "net_amount", "total", "price_paid")  # fmt: skip

MEMBERS = ImportKind(
    name="members",
    fields=(
        FieldSpec("member_id", FieldType.ID, _MEMBER_ID, required=True),
        FieldSpec(
            "mobile",
            FieldType.MOBILE,
            (
                "mobile",
                "手机号",
                "手机",
                "手机号码",
                "电话",
                "联系电话",
                "phone",
                "cellphone",
                "tel",
            ),
        ),
        FieldSpec(
            "name",
            FieldType.TEXT,
            ("name", "姓名", "会员姓名", "名字", "客户姓名", "full_name"),
            max_length=100,
        ),
        FieldSpec("gender", FieldType.CHOICE, ("gender", "性别", "sex"), choices=GENDERS),
        FieldSpec(
            "birthday",
            FieldType.DATE,
            ("birthday", "生日", "出生日期", "birth_date", "date_of_birth", "dob"),
        ),
        FieldSpec("city", FieldType.TEXT, ("city", "城市", "所在城市", "常住城市"), max_length=100),
        FieldSpec("language", FieldType.CHOICE, ("language", "语言", "lang"), choices=LANGUAGES),
        FieldSpec(
            "enrolled_at",
            FieldType.DATETIME,
            (
                "enrolled_at",
                "入会时间",
                "注册时间",
                "开卡时间",
                "入会日期",
                "注册日期",
                "join_date",
                "joined_at",
                "registration_date",
                "signup_date",
            ),
        ),
        FieldSpec(
            "enrol_channel",
            FieldType.CHOICE,
            ("enrol_channel", "注册渠道", "入会渠道", "开卡渠道", "join_channel"),
            choices=CHANNELS,
            open_choices=True,
            max_length=32,
        ),
        FieldSpec(
            "enrol_store",
            FieldType.ID,
            ("enrol_store", "注册门店", "入会门店", "开卡门店", "归属门店", "home_store"),
        ),
        FieldSpec("external_id", FieldType.ID, ("external_id", "外部id", "unionid", "openid")),
    ),
    unique=("member_id", "mobile", "external_id"),
)

TRANSACTIONS = ImportKind(
    name="transactions",
    fields=(
        FieldSpec("order_id", FieldType.ID, _ORDER_ID, required=True),
        FieldSpec("member_id", FieldType.ID, _MEMBER_ID, required=True),
        FieldSpec("occurred_at", FieldType.DATETIME, _TIME, required=True),
        FieldSpec("amount", FieldType.AMOUNT, _AMOUNT, required=True, minimum=0),
        FieldSpec(
            "kind",
            FieldType.CHOICE,
            ("kind", "type", "类型", "交易类型", "单据类型"),
            choices=EVENT_KINDS,
            default="purchase",
        ),
        FieldSpec("return_id", FieldType.ID, ("return_id", "退货单号", "退款单号", "refund_id")),
        FieldSpec(
            "channel",
            FieldType.CHOICE,
            _CHANNEL,
            choices=CHANNELS,
            default="store",
            open_choices=True,
            max_length=32,
        ),
        FieldSpec("store", FieldType.ID, _STORE),
        FieldSpec("sku", FieldType.ID, _SKU),
        FieldSpec("category", FieldType.TEXT, _CATEGORY, default="other", max_length=64),
        FieldSpec(
            "quantity",
            FieldType.INTEGER,
            ("quantity", "数量", "件数", "qty", "杯数"),
            minimum=1,
            default="1",
        ),
        FieldSpec(
            "points_used",
            FieldType.INTEGER,
            ("points_used", "积分抵扣", "使用积分", "抵扣积分", "积分支付", "redeemed_points"),
            minimum=0,
            default="0",
        ),
    ),
)

RETURNS = ImportKind(
    name="returns",
    fields=(
        FieldSpec(
            "return_id",
            FieldType.ID,
            ("return_id", "退货单号", "退款单号", "退单号", "refund_id", "return_no"),
            required=True,
        ),
        FieldSpec("order_id", FieldType.ID, ("原订单号", "原单号", *_ORDER_ID), required=True),
        FieldSpec("member_id", FieldType.ID, _MEMBER_ID, required=True),
        FieldSpec(
            "occurred_at",
            FieldType.DATETIME,
            ("退货时间", "退款时间", "return_time", "refund_time", *_TIME),
            required=True,
        ),
        FieldSpec(
            "amount",
            FieldType.AMOUNT,
            ("退款金额", "退货金额", "refund_amount", "return_amount", *_AMOUNT),
            minimum=0,
        ),
        FieldSpec("sku", FieldType.ID, _SKU),
        FieldSpec(
            "quantity",
            FieldType.INTEGER,
            ("quantity", "数量", "退货数量", "qty"),
            minimum=1,
            default="1",
        ),
        FieldSpec(
            "channel",
            FieldType.CHOICE,
            _CHANNEL,
            choices=CHANNELS,
            default="store",
            open_choices=True,
            max_length=32,
        ),
        FieldSpec("store", FieldType.ID, _STORE),
    ),
)

_RATING = {"minimum": 1, "maximum": 5}
RESPONSES = ImportKind(
    name="responses",
    fields=(
        FieldSpec(
            "response_id",
            FieldType.ID,
            ("response_id", "答卷编号", "答卷id", "序号", "编号", "id", "respondent_id"),
        ),
        FieldSpec(
            "member_id",
            FieldType.ID,
            _MEMBER_ID,
            patterns=(r"会员卡?(号|编号)", r"memberid"),
        ),
        FieldSpec("order_id", FieldType.ID, _ORDER_ID),
        FieldSpec(
            "responded_at",
            FieldType.DATETIME,
            (
                "responded_at",
                "提交答卷时间",
                "提交时间",
                "答题时间",
                "填写时间",
                "submitted_at",
                "response_time",
                "end_date",
                *_TIME,
            ),
            required=True,
        ),
        FieldSpec(
            "survey",
            FieldType.CHOICE,
            ("survey", "问卷类型", "survey_type"),
            choices=SURVEY_TYPES,
            default="transactional",
        ),
        FieldSpec(
            "touchpoint",
            FieldType.TEXT,
            ("touchpoint", "触点", "接触点", "服务环节"),
            max_length=64,
        ),
        FieldSpec(
            "channel",
            FieldType.CHOICE,
            # not 来源: in a survey tool's export that is how the answer came in (微信, 链接)
            tuple(synonym for synonym in _CHANNEL if synonym != "来源"),
            choices=CHANNELS,
            open_choices=True,
            max_length=32,
        ),
        FieldSpec("store", FieldType.ID, _STORE),
        FieldSpec("language", FieldType.CHOICE, ("language", "语言", "lang"), choices=LANGUAGES),
        FieldSpec(
            "nps",
            FieldType.INTEGER,
            (
                "nps",
                "推荐意愿",
                "推荐度",
                "推荐可能性",
                "nps_score",
                "likelihood_to_recommend",
                "recommend",
            ),
            minimum=0,
            maximum=10,
            patterns=(r"推荐.*(可能|意愿|程度)", r"(可能|愿意).*推荐", r"recommend"),
        ),
        FieldSpec(
            "csat",
            FieldType.INTEGER,
            ("csat", "满意度", "总体满意度", "satisfaction", "csat_score"),
            **_RATING,
            patterns=(r"满意", r"satisf"),
        ),
        FieldSpec(
            "ces",
            FieldType.INTEGER,
            ("ces", "费力度", "便捷度", "省力度", "effort", "ces_score"),
            minimum=1,
            maximum=7,
            patterns=(r"容易|便捷|方便|费力|省力|省心", r"easy|effort"),
        ),
        FieldSpec(
            "rating_speed",
            FieldType.INTEGER,
            ("rating_speed", "速度评分", "出餐速度", "速度"),
            **_RATING,
            patterns=(r"速度|快慢|等待|等候|出餐", r"speed|wait"),
        ),
        FieldSpec(
            "rating_staff",
            FieldType.INTEGER,
            ("rating_staff", "服务态度", "店员服务", "员工服务", "staff"),
            **_RATING,
            patterns=(r"态度|店员|员工|服务人员", r"staff"),
        ),
        FieldSpec(
            "rating_product_quality",
            FieldType.INTEGER,
            ("rating_product_quality", "产品质量", "口味", "商品质量", "quality"),
            **_RATING,
            patterns=(r"品质|质量|口味|口感", r"quality|taste"),
        ),
        FieldSpec(
            "rating_value",
            FieldType.INTEGER,
            ("rating_value", "性价比", "价格", "value_for_money", "value"),
            **_RATING,
            patterns=(r"性价比|价格|价值", r"value|price"),
        ),
        FieldSpec(
            "rating_app_usability",
            FieldType.INTEGER,
            ("rating_app_usability", "app体验", "小程序体验", "易用性", "app_usability"),
            **_RATING,
            patterns=(r"小程序|app|界面|操作", r"usability"),
        ),
        FieldSpec(
            "rating_cleanliness",
            FieldType.INTEGER,
            ("rating_cleanliness", "环境卫生", "卫生", "整洁度", "cleanliness"),
            **_RATING,
            patterns=(r"卫生|整洁|干净|环境", r"clean"),
        ),
        FieldSpec(
            "comment",
            FieldType.TEXT,
            (
                "comment",
                "评论",
                "意见",
                "建议",
                "留言",
                "评价内容",
                "其他意见",
                "意见建议",
                "feedback",
                "comments",
                "verbatim",
            ),
            max_length=5000,
            patterns=(r"建议|意见|留言|评价|想说|其他", r"comment|feedback|suggest"),
        ),
    ),
    unique=("response_id",),
)

PRODUCTS = ImportKind(
    name="products",
    fields=(
        FieldSpec("sku", FieldType.ID, _SKU, required=True),
        FieldSpec(
            "name_zh",
            FieldType.TEXT,
            ("name_zh", "商品名称", "品名", "名称", "中文名"),
            max_length=200,
        ),
        FieldSpec(
            "name_en", FieldType.TEXT, ("name_en", "英文名", "product_name", "name"), max_length=200
        ),
        FieldSpec("category", FieldType.TEXT, _CATEGORY, default="other", max_length=64),
        FieldSpec(
            "price",
            FieldType.AMOUNT,
            ("price", "单价", "售价", "零售价", "标价", "list_price"),
            minimum=0,
        ),
    ),
    unique=("sku",),
)

STORES = ImportKind(
    name="stores",
    fields=(
        FieldSpec(
            "store_id",
            FieldType.ID,
            ("store_id", *(h for h in _STORE if h != "store_id")),
            required=True,
        ),
        FieldSpec(
            "name_zh", FieldType.TEXT, ("name_zh", "门店名称", "店名", "名称"), max_length=200
        ),
        FieldSpec("name_en", FieldType.TEXT, ("name_en", "store_name", "name"), max_length=200),
        FieldSpec("city", FieldType.TEXT, ("city", "城市", "所在城市"), max_length=100),
        FieldSpec("city_en", FieldType.TEXT, ("city_en",), max_length=100),
        FieldSpec(
            "opened_on", FieldType.DATE, ("opened_on", "开业日期", "开店日期", "opening_date")
        ),
    ),
    unique=("store_id",),
)

KINDS: dict[str, ImportKind] = {
    kind.name: kind for kind in (MEMBERS, TRANSACTIONS, RETURNS, RESPONSES, PRODUCTS, STORES)
}
