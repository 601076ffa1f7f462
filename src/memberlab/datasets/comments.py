"""Short survey comments in Chinese and English, written from what happened to the member.

The demo world knows, for each survey response, the touchpoint, the incidents the member
ran into and a latent satisfaction score; ``write_comment`` turns that into the kind of
free text people leave in app stores, on dianping or in a WeChat survey.

How a comment is built (all choices come from the caller's ``rng``):

1. *Silence.* Some people leave the box empty (``""``): middling scores most often (up
   to ~28%), people who just had something go wrong least often (2%).
2. *Clauses.* An optional context opener ("用小程序点了拿铁"), one clause per incident
   (each incident has many phrasings, filled with drinks and waiting times), a few
   remarks about other aspects (chosen by touchpoint, sentiment drawn around the score
   and pulled down by incidents) and an optional verdict ("还会再来的", "Never again").
   A drink named once is usually named again, so the clauses talk about the same cup.
3. *Joining.* Connectors follow the sentiment: a turn from good to bad takes 但是/不过 or
   "but", same-sentiment clauses take 而且/还有/"also"; the ending punctuation, emoji and
   internet slang follow the overall mood.
4. *Noise.* Casual style (no final punctuation, spaces for commas, all lowercase) and, at
   ``_TYPO_RATE``, one typo: a homophone (在/再, 的/得, 做/作) or an English misspelling
   (recieve, definately) or a doubled letter. Incident clauses are never touched, so every
   incident stays findable by the phrasings in ``INCIDENT_PHRASES``.

Speed: each call takes exactly ``_DRAWS`` uniforms from ``rng`` in one vectorised call,
so the caller's stream advances by the same amount whatever the comment says, and
everything else is list indexing and string joins over tables built at import (about
20 µs per call).
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from typing import NamedTuple, TypeVar

import numpy as np

from memberlab.core.i18n import normalise_language

__all__ = [
    "ASPECTS",
    "INCIDENTS",
    "INCIDENT_ASPECT",
    "INCIDENT_PHRASES",
    "SENTIMENT_WORDS",
    "SLOTS",
    "TOUCHPOINTS",
    "TYPOS",
    "AspectName",
    "write_comment",
]


class AspectName(NamedTuple):
    zh: str
    en: str


ASPECTS: dict[str, AspectName] = {
    "delivery_speed": AspectName("配送速度", "Delivery speed"),
    "staff_attitude": AspectName("服务态度", "Staff attitude"),
    "price_value": AspectName("价格与性价比", "Price and value"),
    "product_quality": AspectName("产品口味与品质", "Taste and product quality"),
    "waiting_time": AspectName("等待时间", "Waiting time"),
    "app_usability": AspectName("App与小程序易用性", "App usability"),
    "membership_benefits": AspectName("会员权益与积分", "Membership benefits and points"),
    "cleanliness": AspectName("门店环境与卫生", "Cleanliness and environment"),
    "effort": AspectName("办事省心程度", "Customer effort"),
}

INCIDENT_ASPECT: dict[str, str] = {
    "delivery_delay": "delivery_speed",
    "long_queue": "waiting_time",
    "rude_staff": "staff_attitude",
    "product_fault": "product_quality",
    "app_failure": "app_usability",
    # Getting it fixed is the customer's effort: going back, calling, asking for a remake.
    "wrong_order": "effort",
    # Served lukewarm: a product that is not what it should be.
    "cold_drink": "product_quality",
    # Availability of the product; the complaint is about the menu, not the process.
    "out_of_stock": "product_quality",
}
INCIDENTS: tuple[str, ...] = tuple(INCIDENT_ASPECT)
TOUCHPOINTS: tuple[str, ...] = (
    "store",
    "mini_program",
    "app",
    "delivery",
    "service_centre",
    "after_sales",
    "membership",
)

# Each call takes this many uniforms from the rng, however long the comment is.
_DRAWS = 96
# Share of comments with one typo (homophone, misspelling or doubled letter).
_TYPO_RATE = 0.09
# How far a remark's tone strays from the score it follows: around the overall score
# widely, around an aspect's own score (``aspect_scores``, noisy already) a little.
_SCORE_SPREAD = 0.36
_ASPECT_SPREAD = 0.12

# ---------------------------------------------------------------------------------------
# Slots: fillers for ``{name}`` fields in templates. ``drink2`` is a second, different
# drink from the ``drink`` list.
# ---------------------------------------------------------------------------------------

SLOTS: dict[str, dict[str, tuple[str, ...]]] = {
    "zh": {
        "drink": (
            "奶茶", "拿铁", "美式", "冰美式", "柠檬茶", "手打柠檬茶", "乌龙奶茶", "桂花乌龙",
            "生椰拿铁", "燕麦拿铁", "杨枝甘露", "芝士莓莓", "新品", "latte",
        ),
        "hot": ("拿铁", "美式", "奶茶", "乌龙", "可可", "燕麦拿铁"),
        "wait": (
            "二十分钟", "半个小时", "四十多分钟", "快一个小时", "一个多小时", "40分钟",
            "半个多小时", "50分钟",
        ),
    },
    "en": {
        "drink": (
            "latte", "cold brew", "milk tea", "lemon tea", "matcha latte", "flat white",
            "mocha", "peach oolong", "jasmine milk tea", "coconut latte", "brown sugar boba",
        ),
        "hot": ("latte", "flat white", "mocha", "milk tea", "cocoa"),
        "wait": (
            "20 minutes", "half an hour", "40 mins", "almost an hour", "over an hour",
            "45 minutes", "like 50 min",
        ),
    },
}  # fmt: skip

# ---------------------------------------------------------------------------------------
# Incident phrasings. The test suite turns these into patterns, so keep them free of
# anything the noise step could change (noise never touches incident clauses anyway).
# Each one holds a complaint phrase of its aspect (``INCIDENT_ASPECT``) from the aspect
# lexicon (experience/text/aspects.yaml), so comment analysis finds every incident as a
# complaint about the right aspect whatever the sentiment model makes of the rest; and
# none names another aspect (bar the drinks in a wrong order: "milk tea", "cold brew").
# ---------------------------------------------------------------------------------------

INCIDENT_PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "zh": {
        "delivery_delay": (
            "外卖超时{wait}", "送餐严重超时", "配送太慢了，足足{wait}", "骑手迟迟没到，超时{wait}",
            "下单{wait}了还没送到", "外卖送晚了{wait}", "显示已送达其实超时{wait}",
            "配送慢得离谱", "骑手取餐后迟迟不送",
        ),
        "long_queue": (
            "排了好久，足足{wait}", "高峰期排队太久了", "午高峰排了很久才拿到",
            "取餐等太久了，足足{wait}", "前面排了二十多个人等了好久", "队伍排到门口等了半天",
            "排了好久的队", "早高峰出餐太慢", "排队太久了，{wait}才取到",
        ),
        "rude_staff": (
            "店员态度很差", "店员爱答不理的", "店员一直在玩手机，叫了好几声都不理人",
            "店员脸很臭", "问个问题店员还不耐烦", "收银的态度太冲了", "客服态度很敷衍",
            "被店员凶了一顿", "店员当面翻白眼",
        ),
        "product_fault": (
            "{drink}里喝出了异物", "杯子漏了，洒了一袋子", "{drink}是坏的，一股酸味",
            "封口没封好，撒了一半", "喝出了头发，恶心", "珍珠是硬的，根本没煮熟",
            "杯盖是坏的，漏了一手", "奶是酸的，怀疑过期了", "{drink}喝完拉肚子",
        ),
        "app_failure": (
            "小程序一直闪退", "小程序卡死了，付了钱订单没显示", "支付的时候一直转圈",
            "app登录不上，收不到验证码", "下单页面一直报错", "小程序崩了好几次",
            "点单页面打不开", "下单时系统一直提示错误", "扣了钱却没出订单",
        ),
        "wrong_order": (
            "点的是{drink}，给我做成了{drink2}", "送错了，根本不是我点的",
            "备注少冰结果给了多冰", "点了两杯只送来一杯", "做错单了，还得回去换",
            "备注了少糖结果还是全糖", "拿错餐了，拿到的是别人的{drink}", "订单漏了一杯",
            "少给了一杯还不认",
        ),
        "cold_drink": (
            "点的热{hot}到手都凉了", "咖啡拿到手都凉了", "热饮拿到手已经冷掉了",
            "{hot}拿到手已经不热了", "要的热饮结果都凉透了", "拿到的时候{hot}都凉透了",
            "热{hot}凉了，像冰的一样",
        ),
        "out_of_stock": (
            "想喝的{drink}卖完了", "新品刚上就没货了", "去了三次都说{drink}售罄",
            "想点的{drink}到店说卖完了", "好几款都缺货", "燕麦奶没了，只能换别的",
            "点了半天才告诉我没原料了", "限定款根本买不到", "{drink}又断货了",
        ),
    },
    "en": {
        "delivery_delay": (
            "late delivery again, took {wait}", "the rider took forever to arrive",
            "the delivery was late by {wait}", "super late delivery",
            "the eta said 30 mins and it arrived late", "the courier never showed up for {wait}",
            "it showed delivered but the order was still not here",
            "my order arrived late, way behind schedule",
        ),
        "long_queue": (
            "long queue, {wait} before I got my drink", "the line was out the door",
            "waited ages in line",
            "huge queue at the counter", "took ages just to pick up my order",
            "ridiculously long line at peak time", "stood in line forever",
            "long queue at pickup, {wait} at least",
        ),
        "rude_staff": (
            "the staff were rude", "the barista was really rude to me",
            "the cashier rolled her eyes at me", "staff was chatting and ignored me",
            "the guy at the counter was so rude", "got snapped at by the staff",
            "the support agent was rude and dismissive",
            "staff acted like I was bothering them",
        ),
        "product_fault": (
            "found something floating in my {drink}", "the cup leaked all over the bag",
            "the milk tasted sour, pretty sure it was off",
            "the lid was broken and half of it spilled", "the pearls were hard and undercooked",
            "found a hair in my drink", "my {drink} tasted off and made me sick",
            "the seal was broken and it leaked",
        ),
        "app_failure": (
            "the app kept crashing", "the app crashed at checkout",
            "the mini program froze after I paid", "payment went through but no order showed up",
            "couldn't log into the app", "the app froze and never sent the verification code",
            "the app kept showing an error", "checkout kept throwing an error",
        ),
        "wrong_order": (
            "ordered a {drink} but got a {drink2}", "they got my order wrong",
            "they got my order wrong, large instead of medium",
            "one drink was missing from my order", "got someone else's order",
            "got full sugar instead of no sugar", "wrong drink, again",
            "had to go back to get it remade",
        ),
        "cold_drink": (
            "my hot {hot} was cold", "the coffee was lukewarm",
            "hot drink was stone cold", "the {hot} was barely warm",
            "ordered it hot, got it cold", "my {hot} was cold by the time I got it",
        ),
        "out_of_stock": (
            "they were out of {drink}", "the new drink was sold out again",
            "half the menu was unavailable", "the menu said available but the store was sold out",
            "they ran out of oat milk, again", "everything was sold out by noon",
            "couldn't get the seasonal special anywhere", "{drink} out of stock for a week",
        ),
    },
}  # fmt: skip

# ---------------------------------------------------------------------------------------
# Remarks on aspects, by sentiment: "pos", "neu", "neg".
# ---------------------------------------------------------------------------------------

_REMARKS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "zh": {
        "product_quality": {
            "pos": (
                "{drink}很好喝", "{drink}yyds", "味道很正", "奶味很浓也不腻", "茶味很足",
                "新品好喝，已经回购好几次了", "咖啡豆品质不错", "用料很足，好喝",
                "{drink}好喝到哭", "口感绝绝子", "甜度刚刚好，好喝", "出品很稳定，好喝",
                "这杯{drink}真香",
            ),
            "neu": (
                "味道还行", "{drink}中规中矩", "口感一般般吧", "和之前差不多",
                "新品没什么特别的", "味道可以，没有惊艳", "{drink}正常水平", "味道OK",
            ),
            "neg": (
                "{drink}太甜了，难喝", "味道很淡，像水一样", "{drink}难喝", "新品踩雷了",
                "茶味不足，全是糖精味", "咖啡有股糊味，难喝", "品质下降了",
                "味道不如以前了", "避雷{drink}", "{drink}又苦又涩，难喝",
            ),
        },
        "staff_attitude": {
            "pos": (
                "店员很热情", "小姐姐服务超好", "店员很耐心", "服务态度很好",
                "店员小哥超级nice", "客服回复很及时，很耐心", "服务很周到",
                "店员还热情地推荐了新品", "店员都很有礼貌，赞",
            ),
            "neu": (
                "服务正常", "店员态度还可以", "服务中规中矩", "店员比较忙，没怎么说话",
                "服务OK",
            ),
            "neg": (
                "服务有点冷淡", "店员没什么笑容，很冷淡", "服务有点敷衍",
                "店员一直催，很不舒服", "服务态度一般，有点冷淡", "感觉服务不走心，敷衍",
            ),
        },
        "delivery_speed": {
            "pos": (
                "配送很快", "外卖半小时就送到了，很快", "骑手小哥很准时", "送得比预计还快",
                "配送速度很给力", "下单没多久就收到了，很快",
            ),
            "neu": (
                "配送时间正常", "送餐速度还行", "比预计晚了几分钟，能接受", "配送速度一般",
            ),
            "neg": (
                "配送有点慢", "送得不算快，有点慢", "配送时间不稳定，经常慢",
                "骑手绕了好久，太慢",
            ),
        },
        "waiting_time": {
            "pos": (
                "出餐很快", "不用排队，很快", "到店就能取，很方便", "提前下单到店直接拿，方便",
                "几分钟就做好了，很快",
            ),
            "neu": ("出餐速度正常", "高峰期稍微等了一下", "等的时间还能接受"),
            "neg": ("出餐有点慢", "做得太慢了", "出餐效率低，太慢", "每次取餐都很慢"),
        },
        "price_value": {
            "pos": (
                "价格实惠", "性价比很高", "用券下来十几块，很划算", "学生党友好，实惠",
                "会员价很香", "这个价格很值了", "第二杯半价很划算",
            ),
            "neu": (
                "价格中规中矩", "不算便宜也不算贵", "价格还行", "有券的话还可以",
                "价格一般吧",
            ),
            "neg": (
                "价格偏贵", "越来越贵了", "性价比不高", "一杯快三十，太贵了",
                "不打折不会买，太贵", "量少价高，不值",
            ),
        },
        "app_usability": {
            "pos": (
                "小程序点单很方便", "app用起来很顺手", "下单流程很简单，方便", "界面很清楚，好用",
                "提前点单很方便", "app做得很好用",
            ),
            "neu": ("app还行，功能有点多", "小程序能用", "界面一般", "app还OK"),
            "neg": (
                "app有点难用", "小程序太卡了，难用", "界面很乱，找不到入口，难用",
                "每次都要重新登录，很烦", "下单步骤太多了，麻烦", "弹窗广告太多，很烦",
            ),
        },
        "membership_benefits": {
            "pos": (
                "会员积分可以换饮品，很划算", "生日券很贴心", "升级到金卡了，优惠很多",
                "积分攒起来挺快的，不错", "会员日第二杯半价很香", "每周都有优惠券，不错",
                "积分兑换很实用", "会员权益很给力",
            ),
            "neu": (
                "会员权益一般般", "积分有点难攒", "优惠券门槛有点高", "会员等级没什么感觉",
                "积分能换的东西不多",
            ),
            "neg": (
                "积分清零了都没提醒，很坑", "会员等级降了，很不爽", "优惠券少得可怜，很坑",
                "积分贬值了，很坑", "会员权益越来越少，失望", "充了会员没什么用，后悔",
            ),
        },
        "cleanliness": {
            "pos": (
                "店里很干净", "环境不错，适合坐坐", "装修很好看，拍照出片", "桌子收拾得很干净",
                "环境很舒服",
            ),
            "neu": ("环境一般", "店面比较小，座位不多", "环境还行"),
            "neg": (
                "桌子脏脏的没人收", "店里又脏又乱", "垃圾桶都满了，很脏", "地上黏黏的，很脏",
                "卫生有待提高，有点脏",
            ),
        },
        "effort": {
            "pos": (
                "退款很快就处理好了", "客服一次就帮我解决了，省心", "售后很省心",
                "沟通很顺畅", "问题很快就解决了", "不用来回折腾，省心",
            ),
            "neu": (
                "处理流程有点长，但最后解决了", "打了两次电话才搞定", "解决了，就是慢了点",
            ),
            "neg": (
                "退款流程太麻烦了", "客服踢皮球，麻烦", "打了好几次电话都没解决，麻烦",
                "来回折腾好几天，心累", "售后根本找不到人，麻烦", "要提交一堆截图，太麻烦",
            ),
        },
    },
    "en": {
        "product_quality": {
            "pos": (
                "the {drink} was amazing", "the best {drink} in town", "tastes great as always",
                "the new {drink} is so good", "perfect sweetness, delicious",
                "quality is consistently good", "really fresh and tasty",
                "the {drink} was on point, delicious", "love the {drink}",
            ),
            "neu": (
                "the {drink} was okay", "taste was fine", "nothing special",
                "decent, nothing more", "about what you'd expect", "drinks are alright",
            ),
            "neg": (
                "the {drink} was way too sweet", "tasted watered down, bland",
                "the {drink} was bland", "quality has gone downhill",
                "the new drink is a miss, bland", "the coffee tasted burnt, awful",
                "the {drink} is not as good as it used to be, disappointing",
            ),
        },
        "staff_attitude": {
            "pos": (
                "staff were super friendly", "the barista was lovely",
                "staff went out of their way to help", "friendly service",
                "the cashier was really patient with me, so friendly",
                "customer service was very helpful",
            ),
            "neu": (
                "staff were fine", "service was ok", "staff were busy but polite enough",
                "the staff were alright",
            ),
            "neg": (
                "staff seemed uninterested", "service felt careless",
                "no one greeted us, so indifferent",
                "staff could be a lot more attentive, careless", "service was pretty indifferent",
            ),
        },
        "delivery_speed": {
            "pos": (
                "delivery was fast", "received my order in under 30 minutes, fast",
                "the rider was right on time", "got here earlier than expected, quick",
                "super quick delivery",
            ),
            "neu": (
                "delivery time was ok", "arrived more or less when it said",
                "delivery was a few minutes behind but fine",
            ),
            "neg": (
                "delivery is always slow", "delivery times are unpredictable, slow",
                "delivery took longer than it should, slow",
            ),
        },
        "waiting_time": {
            "pos": (
                "drinks were ready in minutes, quick", "quick service",
                "order ahead and skip the line, so convenient", "super fast pickup",
            ),
            "neu": (
                "a short wait at peak time", "wait was reasonable", "took a little while but ok",
            ),
            "neg": (
                "drinks take ages to make, slow", "service is slow",
                "slow even when it's not busy",
            ),
        },
        "price_value": {
            "pos": (
                "great value", "good price for the quality",
                "with the coupon it was a steal, great value",
                "member prices are really worth it", "affordable, great value",
            ),
            "neu": (
                "prices are ok", "a bit pricey but fine", "fair price I guess",
                "fine with coupons",
            ),
            "neg": (
                "way overpriced", "prices keep going up, overpriced", "not worth the money",
                "too expensive for what you get", "tiny cup for the price, overpriced",
            ),
        },
        "app_usability": {
            "pos": (
                "the app is easy to use", "ordering on the app is super convenient",
                "the mini program is quick and easy", "love ordering ahead on the app",
                "checkout is smooth and easy",
            ),
            "neu": (
                "the app is ok", "app works but is a bit cluttered", "mini program does the job",
            ),
            "neg": (
                "the app is confusing", "too many steps to order, annoying",
                "the app is slow and clunky", "it keeps logging me out, annoying",
                "too many pop-up ads in the app, annoying",
            ),
        },
        "membership_benefits": {
            "pos": (
                "love the member points", "the birthday coupon was a nice touch",
                "got a free drink with my points, love it", "gold tier perks are great",
                "member day deals are awesome", "points add up quickly, great",
                "I receive good coupons every week",
            ),
            "neu": (
                "membership perks are ok", "points take a while to add up",
                "coupons come with too many conditions", "not sure the tier makes a difference",
            ),
            "neg": (
                "my points expired without warning, annoying", "got downgraded a tier, annoying",
                "membership benefits keep getting worse", "the coupons are useless",
                "points are worth less than before, disappointing",
            ),
        },
        "cleanliness": {
            "pos": (
                "the store is clean", "nice cozy place", "lovely interior, clean",
                "tables were spotless, clean", "great vibe, very clean",
            ),
            "neu": ("the store is ok", "small place with few seats", "the place is alright"),
            "neg": (
                "tables were dirty", "the store was messy", "the trash bin was overflowing, dirty",
                "the floor was sticky, dirty", "the store needs a proper scrub, messy",
            ),
        },
        "effort": {
            "pos": (
                "the refund was processed quickly", "support sorted it out in one go, easy",
                "no hassle at all, easy", "issue resolved fast",
                "super easy to get help, convenient",
            ),
            "neu": (
                "took a couple of calls but it got sorted", "resolved eventually",
                "the process was a bit long but fine",
            ),
            "neg": (
                "the refund process is a nightmare",
                "got passed around between agents, frustrating",
                "called several times and still not resolved, frustrating",
                "way too much hassle", "impossible to reach anyone, frustrating",
            ),
        },
    },
}  # fmt: skip

# Context openers by touchpoint (neutral in tone).
_OPENERS: dict[str, dict[str, tuple[str, ...]]] = {
    "zh": {
        "store": (
            "今天去门店买了{drink}", "下班路过门店", "到店自取", "周末和朋友去店里坐了坐",
            "在店里点了杯{drink}", "公司楼下的门店",
        ),
        "mini_program": ("用小程序点了{drink}", "小程序下单", "在小程序上点的", "小程序点单到店取"),
        "app": ("用app点单", "在app上买了{drink}", "用APP下的单"),
        "delivery": (
            "点了外卖", "叫了个外卖", "外卖点了两杯{drink}", "中午点的外卖", "下午茶点了外卖",
        ),
        "service_centre": ("打了客服电话", "联系了在线客服", "找客服咨询积分的问题"),
        "after_sales": ("申请了退款", "找售后处理", "联系了售后"),
        "membership": ("办了会员", "会员一年多了", "刚升了金卡", "老会员了", "开了付费会员"),
    },
    "en": {
        "store": (
            "stopped by the store for a {drink}", "went in after work", "picked up in store",
            "grabbed a {drink} with friends", "popped into the store near my office",
        ),
        "mini_program": ("ordered a {drink} on the mini program", "used the mini program to order"),
        "app": (
            "ordered through the app", "got a {drink} via the app", "used the app to order ahead",
        ),
        "delivery": (
            "ordered delivery", "got two {drink}s delivered", "ordered delivery for lunch",
        ),
        "service_centre": (
            "called customer service", "contacted online support", "chatted with support",
        ),
        "after_sales": (
            "asked for a refund", "contacted after-sales", "reported a problem with my order",
        ),
        "membership": (
            "been a member for a year", "just reached gold tier", "long time member here",
        ),
    },
}  # fmt: skip

# Remarks are about aspects that fit the touchpoint; repeats weight the draw.
_TOUCHPOINT_ASPECTS: dict[str, tuple[str, ...]] = {
    "store": (
        "product_quality", "product_quality", "product_quality", "staff_attitude",
        "staff_attitude", "waiting_time", "waiting_time", "cleanliness", "cleanliness",
        "price_value", "membership_benefits",
    ),
    "mini_program": (
        "app_usability", "app_usability", "app_usability", "product_quality", "product_quality",
        "membership_benefits", "membership_benefits", "waiting_time", "price_value",
    ),
    "app": (
        "app_usability", "app_usability", "app_usability", "membership_benefits",
        "membership_benefits", "product_quality", "product_quality", "price_value",
    ),
    "delivery": (
        "delivery_speed", "delivery_speed", "delivery_speed", "product_quality",
        "product_quality", "product_quality", "price_value", "app_usability",
    ),
    "service_centre": (
        "effort", "effort", "effort", "staff_attitude", "staff_attitude", "staff_attitude",
        "membership_benefits",
    ),
    "after_sales": (
        "effort", "effort", "effort", "staff_attitude", "staff_attitude", "product_quality",
        "price_value",
    ),
    "membership": (
        "membership_benefits", "membership_benefits", "membership_benefits", "price_value",
        "price_value", "app_usability", "product_quality",
    ),
}  # fmt: skip


class _Language(NamedTuple):
    """Everything a language needs besides remarks, incidents, openers and slots."""

    summary_prefixes: tuple[str, ...]
    summaries: dict[str, tuple[str, ...]]
    verdicts: dict[str, tuple[str, ...]]
    endings: dict[str, tuple[str, ...]]
    emoji: dict[str, tuple[str, ...]]
    slang_lead: dict[str, tuple[str, ...]]
    slang_tail: dict[str, tuple[str, ...]]
    after_opener: tuple[str, ...]
    same: tuple[str, ...]
    to_neg: tuple[str, ...]
    to_pos: tuple[str, ...]
    between_incidents: tuple[str, ...]
    before_verdict: tuple[str, ...]
    typos: tuple[tuple[str, str], ...]
    char_typos: dict[str, str]


_ZH_SLANG = {
    "pos": ("yyds", "绝绝子", "真香", "狠狠爱住", "宝藏店铺", "无限回购"),
    "neu": ("emmm", "一般般吧", "还行吧"),
    "neg": ("无语", "踩雷了", "避雷", "破防了", "服了", "离谱"),
}

_LANG: dict[str, _Language] = {
    "zh": _Language(
        summary_prefixes=("总体来说", "总的来说", "总之", "整体", "综合来看", "总体"),
        summaries={
            "pos": ("还是很满意的", "体验很好", "挺不错的", "很喜欢", "值得推荐"),
            "neu": ("还行吧", "中规中矩", "一般般", "凑合", "还可以"),
            "neg": ("体验很差", "很失望", "不推荐", "太让人失望了", "体验极差"),
        },
        verdicts={
            "pos": (
                "还会再来的", "会回购", "推荐给大家", "五星好评", "爱了爱了", "每天一杯续命",
                "冲就完事了", "已经安利给同事了", "下次还点", "好评",
            ),
            "neu": ("看情况吧", "有优惠再来", "下次试试别的", "不好不坏", "就这样吧"),
            "neg": (
                "不会再买了", "再也不来了", "差评", "大家避雷", "别踩雷了", "无语了",
                "要求退款", "已投诉", "以后不点了", "心累", "差评差评",
            ),
        },
        endings={
            "pos": ("！", "！", "～", "", "。", "!!", "！！"),
            "neu": ("。", "", "~", "。。。", "。"),
            "neg": ("！", "！！！", "。", "", "...", "？？？", "。"),
        },
        emoji={
            "pos": ("👍", "😋", "❤️", "🥰", "😍", "🧋", "☕"),
            "neu": ("🤔", "😐", "🙂"),
            "neg": ("😡", "😤", "👎", "🙄", "💢", "😅"),
        },
        slang_lead=_ZH_SLANG,
        slang_tail=_ZH_SLANG,
        after_opener=("，", "，", "，结果", " "),
        same=("，", "，", "，而且", "，还有", "。", "，另外", "；"),
        to_neg=("，但是", "，不过", "。但是", "，可是", "，就是"),
        to_pos=("，不过", "，但是", "。不过", "，好在"),
        between_incidents=("，", "，而且", "。还有", "，然后", "，更离谱的是", "；"),
        before_verdict=("。", "，", "！", "。"),
        typos=(
            ("再来", "在来"), ("再也", "在也"), ("再买", "在买"), ("在店里", "再店里"),
            ("在小程序", "再小程序"), ("在app", "再app"), ("现在", "现再"), ("已经", "以经"),
            ("因为", "应为"), ("收到", "受到"), ("做得", "作得"), ("做好", "作好"),
            ("收拾得", "收拾的"), ("送得", "送的"), ("好喝", "好和"), ("推荐", "推见"),
            ("热情", "热请"), ("满意", "满义"),
        ),
        char_typos={
            "的": "得", "在": "再", "再": "在", "很": "狠", "做": "作", "那": "哪",
            "吗": "嘛", "已": "以", "得": "的",
        },
    ),
    "en": _Language(
        summary_prefixes=("Overall, ", "All in all, ", "Overall ", "Honestly, ", "tbh "),
        summaries={
            "pos": (
                "great experience", "really happy with it", "very satisfied", "love this place",
            ),
            "neu": ("it's ok", "pretty average", "so-so", "it's fine"),
            "neg": ("very disappointed", "terrible experience", "really frustrating", "awful"),
        },
        verdicts={
            "pos": (
                "Will definitely be back", "Highly recommend", "5 stars", "My go-to spot",
                "10/10", "Would definitely recommend", "Keep it up",
            ),
            "neu": ("Might come back", "It's fine I guess", "Meh", "3 stars"),
            "neg": (
                "Never again", "Not coming back", "Avoid", "1 star", "I want a refund",
                "So disappointed", "Terrible",
            ),
        },
        endings={
            "pos": ("!", ".", "!!", "", "!!!", "."),
            "neu": (".", "", "...", "."),
            "neg": (".", "!", "", "...", "!!!", "."),
        },
        emoji={
            "pos": ("👍", "😋", "❤️", "🙌", "☕"),
            "neu": ("🤷", "😐"),
            "neg": ("😡", "👎", "🙄", "😤"),
        },
        slang_lead={
            "pos": ("Omg", "Ngl", "Honestly"),
            "neu": ("Meh", "Idk", "Tbh"),
            "neg": ("Ugh", "Smh", "Seriously"),
        },
        slang_tail={
            "pos": ("obsessed", "no cap", "lowkey the best", "chef's kiss"),
            "neu": ("meh", "idk", "it is what it is"),
            "neg": ("smh", "ugh", "not it", "so annoying"),
        },
        after_opener=(", ", ". ", ". ", " - "),
        same=(". ", ", ", " and ", ". Also ", ". Plus ", ". "),
        to_neg=(", but ", ". But ", ". However, ", " but ", ", though "),
        to_pos=(", but ", ". But ", ". That said, ", ". On the bright side, "),
        between_incidents=(". ", ", and ", ". On top of that ", ". Also ", " and then "),
        before_verdict=(". ", ". ", "! ", ", "),
        typos=(
            ("receive", "recieve"), ("definitely", "definately"), ("because", "becuase"),
            ("really", "realy"), ("coffee", "cofee"), ("their", "thier"), ("until", "untill"),
            ("minutes", "minuets"), ("the ", "teh "), ("staff", "staf"),
            ("delicious", "delicous"), ("friendly", "freindly"), ("experience", "experiance"),
            ("again", "agian"), ("disappoint", "dissapoint"), ("convenient", "convinient"),
            ("recommend", "reccomend"), ("quickly", "quikly"), ("expensive", "expencive"),
            ("service", "servise"), ("it's", "its"), ("separate", "seperate"),
            ("ordered", "orderd"), ("waiting", "wating"),
        ),
        char_typos={},
    ),
}  # fmt: skip

# Words that mark a comment as positive or negative, for tests and quick checks. Every
# positive and negative remark and verdict contains one of these.
SENTIMENT_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "zh": {
        "pos": (
            "好喝", "很好", "超好", "yyds", "绝绝子", "真香", "很香", "热情", "耐心", "周到",
            "nice", "礼貌", "很快", "准时", "给力", "方便", "实惠", "划算", "性价比很高", "很值",
            "顺手", "好用", "贴心", "实用", "不错", "干净", "很舒服", "出片", "省心", "顺畅",
            "满意", "喜欢", "推荐给", "值得推荐", "回购", "好评", "爱了", "续命", "冲就完事",
            "安利", "还点", "味道很正", "很足", "出品很稳定", "优惠很多", "赞", "还会再来",
            "狠狠爱住", "宝藏", "刚刚好", "很浓", "友好", "解决了", "适合坐坐", "比预计还快",
        ),
        "neg": (
            "难喝", "踩雷", "避雷", "糖精", "糊味", "下降", "不如以前", "冷淡", "敷衍",
            "不舒服", "不走心", "慢", "太贵", "偏贵", "越来越贵", "不高", "不值", "难用",
            "很烦", "麻烦", "坑", "不爽", "失望", "后悔", "脏", "乱", "满了", "踢皮球", "心累",
            "很差", "极差", "不推荐", "不会再", "再也不", "差评", "无语", "要求退款", "投诉",
            "以后不点", "破防", "服了", "离谱", "太甜", "像水", "又苦又涩", "超时", "排队排",
            "排长队", "排了", "排队太久", "排队的人", "队伍排", "不理", "太冲", "臭", "凶",
            "白眼", "不耐烦", "异物", "漏", "洒", "撒", "酸", "头发", "恶心", "没煮熟",
            "拉肚子", "闪退", "卡死", "转圈", "登录不上", "报错", "崩", "打不开", "用不了",
            "没出订单", "送错", "做错", "拿错", "不是我点的", "多冰", "只送来", "全糖", "不认",
            "凉", "冷了", "不热", "温的", "变成了冰", "卖完", "没货", "售罄", "缺货", "没了",
            "没原料", "买不到", "断货", "等了", "太慢", "黏", "少得可怜", "骑手送了", "才到",
            "才拿到", "还没取餐", "给我做成了", "没有了", "迟迟", "还没送到", "送晚了", "等太久",
            "提示错误", "冷掉",
        ),
    },
    "en": {
        "pos": (
            "amazing", "the best", "great", "so good", "delicious", "consistently good",
            "fresh", "love", "friendly", "lovely", "out of their way", "helpful", "fast",
            "on time", "quick", "convenient", "value", "worth it", "steal", "easy", "smooth",
            "nice", "awesome", "clean", "spotless", "cozy", "recommend", "10/10", "5 stars",
            "go-to", "satisfied", "happy", "will definitely be back", "keep it up", "obsessed",
            "chef's kiss", "on point", "perfect", "resolved fast", "good price", "good coupons",
            "quickly",
            "no cap",
        ),
        "neg": (
            "too sweet", "bland", "downhill", "a miss", "burnt", "awful", "disappointing",
            "disappointed", "uninterested", "careless", "indifferent", "slow", "overpriced",
            "not worth", "too expensive", "confusing", "annoying", "clunky", "useless",
            "worse", "dirty", "messy", "nightmare", "frustrating", "too much hassle",
            "impossible", "terrible", "never again", "not coming back", "avoid", "1 star",
            "want a refund", "refund process", "smh", "ugh", "not it", "late", "took",
            "waited", "queue", "queued", "in line", "line was", "rude", "ignored", "snapped",
            "dismissive", "bothering", "sour", "leaked", "spilled", "undercooked", "hair",
            "sick", "broken", "floating", "crash", "froze", "no order", "couldn't",
            "never got", "error", "wrong", "missing", "someone else", "full sugar", "remade",
            "was cold", "got it cold", "stone cold", "lukewarm", "barely warm", "were out of",
            "sold out", "unavailable",
            "no oat milk", "worth less", "out of stock", "downgraded", "expired", "sticky",
            "overflowing", "took longer", "ages", "unpredictable", "watered down",
            "passed around", "not resolved", "full ice", "forever", "didn't even",
            "rolled her eyes", "but got a", "crashing", "crashed", "later", "never showed up",
            "still not here", "long line", "ran out",
        ),
    },
}  # fmt: skip

TYPOS: dict[str, tuple[tuple[str, str], ...]] = {code: lang.typos for code, lang in _LANG.items()}

# ---------------------------------------------------------------------------------------
# Prebuilt tables: templates parsed once into (text, slot names).
# ---------------------------------------------------------------------------------------

_Template = tuple[str, tuple[str, ...]]
_T = TypeVar("_T")


def _parse(texts: Sequence[str]) -> tuple[_Template, ...]:
    formatter = string.Formatter()
    return tuple(
        (text, tuple(name for _, name, _, _ in formatter.parse(text) if name)) for text in texts
    )


_P_INCIDENTS = {
    lang: {code: _parse(texts) for code, texts in table.items()}
    for lang, table in INCIDENT_PHRASES.items()
}
_P_REMARKS = {
    lang: {
        aspect: {sent: _parse(texts) for sent, texts in by_sent.items()}
        for aspect, by_sent in table.items()
    }
    for lang, table in _REMARKS.items()
}
_P_OPENERS = {
    lang: {tp: _parse(texts) for tp, texts in table.items()} for lang, table in _OPENERS.items()
}
_LANGUAGE_CODES = {"zh": "zh", "zh-CN": "zh", "en": "en"}
# How many aspect remarks a comment makes: fewer when there is an incident to tell.
_REMARK_COUNTS = (1, 1, 1, 2, 2, 2, 3, 4)
_REMARK_COUNTS_WITH_INCIDENTS = (0, 0, 1, 1, 1, 2)


class _Draws:
    """A fixed batch of uniforms from the caller's rng, handed out one at a time."""

    __slots__ = ("_i", "_u")

    def __init__(self, rng: np.random.Generator) -> None:
        self._u: list[float] = rng.random(_DRAWS).tolist()
        self._i = 0

    def u(self) -> float:
        i = self._i
        self._i = i + 1
        if i < _DRAWS:
            return self._u[i]
        # Past the batch (only for very long comments): reuse it, shifted by the golden ratio.
        return (self._u[i % _DRAWS] + 0.6180339887498949 * (i // _DRAWS)) % 1.0

    def pick(self, options: Sequence[_T]) -> _T:
        return options[int(self.u() * len(options))]


def _fill(
    template: _Template, slots: dict[str, tuple[str, ...]], d: _Draws, said: dict[str, str]
) -> str:
    """Fill a template's slots; a drink already named in the comment is usually named again."""
    text, names = template
    if not names:
        return text
    values: dict[str, str] = {}
    for name in names:
        if name in values:
            continue
        if name == "drink" and "drink" in said and d.u() < 0.7:
            values[name] = said["drink"]
        elif name == "drink2":
            drinks = slots["drink"]
            first = drinks.index(values["drink"]) if "drink" in values else 0
            values[name] = drinks[(first + 1 + int(d.u() * (len(drinks) - 1))) % len(drinks)]
        else:
            values[name] = d.pick(slots[name])
    said.update(values)
    return text.format_map(values)


def _sentiment(value: float) -> str:
    if value < 0.4:
        return "neg"
    if value > 0.6:
        return "pos"
    return "neu"


def write_comment(
    rng: np.random.Generator,
    *,
    language: str,
    touchpoint: str,
    incidents: Sequence[str],
    score: float,
    aspect_scores: Mapping[str, float] | None = None,
) -> str:
    """A short customer comment about a visit, or ``""`` when the member left none.

    Every incident in ``incidents`` is mentioned once (phrased as in ``INCIDENT_PHRASES``),
    no other incident is; remarks on other aspects agree with ``score`` (0 furious,
    1 delighted), pulled down by the incidents. ``aspect_scores`` (aspect code -> 0..1), if
    given, says how the member found each aspect it names: remarks on those follow their
    own score instead (the incidents' effect is in it already), so a complaint about the
    price comes from someone who found the price poor. The result depends only on the
    arguments and the state of ``rng``, which advances by exactly ``_DRAWS`` uniforms per
    call.
    """
    code = _LANGUAGE_CODES.get(language)
    if code is None:
        normalised = normalise_language(language)
        if normalised is None:
            raise ValueError(f"unsupported language: {language!r}")
        code = "zh" if normalised == "zh-CN" else "en"
    if touchpoint not in _TOUCHPOINT_ASPECTS:
        raise ValueError(f"unknown touchpoint: {touchpoint!r}")
    codes = list(dict.fromkeys(incidents))
    for incident in codes:
        if incident not in INCIDENT_ASPECT:
            raise ValueError(f"unknown incident: {incident!r}")
    score = min(max(float(score), 0.0), 1.0)
    lang = _LANG[code]
    slots = SLOTS[code]
    zh = code == "zh"
    d = _Draws(rng)

    # 1. Silence: most likely for the lukewarm, least for those with something to report.
    p_empty = 0.02 if codes else 0.04 + 0.24 * math.exp(-(((score - 0.5) / 0.13) ** 2))
    if d.u() < p_empty:
        return ""

    # Incidents pull every remark and the overall mood down.
    mood = score - 0.1 * len(codes)
    overall = _sentiment(mood + 0.16 * (d.u() - 0.5))

    # 2. Clauses as (text, sentiment, protected); sentiment "ctx" for the opener.
    clauses: list[tuple[str, str, bool]] = []
    said: dict[str, str] = {}  # slot values used so far, to keep naming the same drink
    if d.u() < 0.3:
        opener = _fill(d.pick(_P_OPENERS[code][touchpoint]), slots, d, said)
        clauses.append((opener, "ctx", False))

    incident_clauses: list[tuple[str, str, bool]] = []
    if codes:
        keys = [d.u() for _ in codes]
        for _, incident in sorted(zip(keys, codes, strict=True)):
            text = _fill(d.pick(_P_INCIDENTS[code][incident]), slots, d, said)
            incident_clauses.append((text, "inc", True))

    remark_clauses: list[tuple[str, str, bool]] = []
    n_remarks = d.pick(_REMARK_COUNTS_WITH_INCIDENTS if codes else _REMARK_COUNTS)
    used = {INCIDENT_ASPECT[incident] for incident in codes}
    pool = _TOUCHPOINT_ASPECTS[touchpoint]
    for _ in range(n_remarks):
        for _attempt in range(4):
            aspect = pool[int(d.u() * len(pool))]
            if aspect not in used:
                break
        else:
            continue
        used.add(aspect)
        if aspect_scores is not None and aspect in aspect_scores:
            sentiment = _sentiment(aspect_scores[aspect] + _ASPECT_SPREAD * (d.u() - 0.5))
        else:
            sentiment = _sentiment(score + _SCORE_SPREAD * (d.u() - 0.5) - 0.06 * len(codes))
        text = _fill(d.pick(_P_REMARKS[code][aspect][sentiment]), slots, d, said)
        remark_clauses.append((text, sentiment, False))

    # Bad news usually comes first; happy members mention the good part before the "but".
    if overall == "pos" and d.u() < 0.5:
        clauses += remark_clauses + incident_clauses
    else:
        clauses += incident_clauses + remark_clauses

    # 3. Verdict, slang, emoji, style.
    verdict = ""
    if d.u() < (0.45 if overall != "neu" else 0.3) or not clauses:
        if d.u() < 0.4:
            verdict = d.pick(lang.summary_prefixes) + d.pick(lang.summaries[overall])
        else:
            verdict = d.pick(lang.verdicts[overall])
    slang = ""
    slang_first = d.u() < 0.4
    if d.u() < 0.1:
        slang = d.pick((lang.slang_lead if slang_first else lang.slang_tail)[overall])
    emoji = d.pick(lang.emoji[overall]) * (1 + int(d.u() * 3)) if d.u() < 0.13 else ""
    ending = d.pick(lang.endings[overall])
    no_commas = zh and d.u() < 0.08
    run_on = not zh and d.u() < 0.07
    lowercase = not zh and d.u() < 0.12

    # 4. Join into segments (text, protected); separators are never protected.
    segments: list[tuple[str, bool]] = []
    capitalise = not zh
    if slang and slang_first:
        if zh:
            segments.append((slang + "，", False))
        else:
            segments.append((slang + ", ", False))
            capitalise = False
    previous = ""
    for text, sentiment, protected in clauses:
        if previous:
            if previous == "ctx":
                sep = d.pick(lang.after_opener)
            elif previous == "inc" and sentiment == "inc":
                sep = d.pick(lang.between_incidents)
            else:
                before = "neg" if previous == "inc" else previous
                after = "neg" if sentiment == "inc" else sentiment
                if before == "pos" and after == "neg":
                    sep = d.pick(lang.to_neg)
                elif before == "neg" and after == "pos":
                    sep = d.pick(lang.to_pos)
                else:
                    sep = d.pick(lang.same)
            if sep == "，结果" and sentiment not in ("neg", "inc"):
                sep = "，"
            if (no_commas and sep == "，") or (run_on and sep == ". "):
                sep = " "
            segments.append((sep, False))
            capitalise = not zh and sep.endswith((". ", "! "))
        if capitalise:
            text = text[0].upper() + text[1:]
        segments.append((text, protected))
        previous = sentiment
    if verdict:
        if segments:
            segments.append((d.pick(lang.before_verdict), False))
            if not zh and segments[-1][0] == ", " and not verdict.startswith("I "):
                verdict = verdict[0].lower() + verdict[1:]
        segments.append((verdict, False))
    if slang and not slang_first:
        segments.append((("，" if zh else ", ") + slang, False))
    segments.append((ending + emoji, False))

    # 5. Noise: one typo in an unprotected segment, then case.
    if d.u() < _TYPO_RATE:
        _add_typo(segments, lang, d)
    comment = "".join(text for text, _ in segments).strip()
    if lowercase:
        comment = comment.lower()
    return comment


def _add_typo(segments: list[tuple[str, bool]], lang: _Language, d: _Draws) -> None:
    """Put one typo into an unprotected segment (in place): a known one where it fits."""
    candidates = [
        (i, right, wrong)
        for i, (text, protected) in enumerate(segments)
        if not protected and len(text) > 2
        for right, wrong in lang.typos
        if right in text
    ]
    if candidates:
        i, right, wrong = candidates[int(d.u() * len(candidates))]
        segments[i] = (segments[i][0].replace(right, wrong, 1), False)
        return
    open_segments = [i for i, (text, protected) in enumerate(segments) if not protected]
    if lang.char_typos:
        spots = [
            (i, j)
            for i in open_segments
            for j, char in enumerate(segments[i][0])
            if char in lang.char_typos
        ]
        if spots:
            i, j = spots[int(d.u() * len(spots))]
            text = segments[i][0]
            segments[i] = (text[:j] + lang.char_typos[text[j]] + text[j + 1 :], False)
        return
    # English fallback: double a letter inside a longer word ("sooo", "reallly").
    words = [
        (i, w) for i in open_segments for w in segments[i][0].split() if len(w) >= 4 and w.isalpha()
    ]
    if words:
        i, word = words[int(d.u() * len(words))]
        k = 1 + int(d.u() * (len(word) - 2))
        segments[i] = (segments[i][0].replace(word, word[:k] + word[k] + word[k:], 1), False)
