"""Answers exported by other survey tools: a 问卷星 (Wenjuanxing) Excel export, whose columns
are the questions as asked, numbered, with the tool's own columns around them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from memberlab.dataio.kinds import KINDS
from memberlab.dataio.mapping import map_columns
from memberlab.experience.models import SurveyResponse

if TYPE_CHECKING:
    from tests.dataio.conftest import Files, Tenant

WJX_HEADER = [
    "序号",
    "提交答卷时间",
    "所用时间",
    "来源",
    "来源详情",
    "来自IP",
    "1、您的会员卡号",
    "2、您有多大可能向朋友或同事推荐茶语咖啡？(0-10分)",
    "3、您对本次消费的总体满意程度",
    "4、出餐速度",
    "5、店员的服务态度",
    "6、您对门店的卫生满意吗？",
    "7、这次购买方便省心吗？",
    "8、您还有什么建议想对我们说？",
]


def test_the_questions_of_a_wjx_export_find_their_fields() -> None:
    mapping = map_columns(WJX_HEADER, KINDS["responses"])

    assert mapping.columns == {
        "response_id": "序号",
        "responded_at": "提交答卷时间",
        "member_id": "1、您的会员卡号",
        "nps": "2、您有多大可能向朋友或同事推荐茶语咖啡？(0-10分)",
        "csat": "3、您对本次消费的总体满意程度",
        "rating_speed": "4、出餐速度",
        "rating_staff": "5、店员的服务态度",
        "rating_cleanliness": "6、您对门店的卫生满意吗？",  # the attribute, not satisfaction
        "ces": "7、这次购买方便省心吗？",
        "comment": "8、您还有什么建议想对我们说？",
    }
    assert mapping.ignored == ["所用时间", "来源", "来源详情", "来自IP"]


def test_a_wjx_export_loads_with_skipped_questions_and_one_bad_row(
    tea: Tenant, files: Files
) -> None:
    members = [["会员卡号", "注册时间"]] + [[m, "2026-01-01 10:00"] for m in ("A1", "A2", "A3")]
    assert tea.run("members", files.csv("members.csv", members)).loaded == 3
    submitted = datetime(2026, 11, 20, 10, 5, 31)
    tool = ["N/A", "1.2.3.4(上海)"]  # the tool's own columns, ignored
    rows = [
        [1, submitted, "35秒", "微信", *tool, "A1", "9分", 5, 4, 5, "(跳过)", 6, "拿铁好喝"],
        [2, submitted, "20秒", "手机提交", *tool, "A2", 3, 2, 2, "(跳过)", 4, 3, "(跳过)"],
        [3, submitted, "11秒", "链接", *tool, "A3", 11, 4, 4, 4, 4, 5, ""],
    ]
    path = files.xlsx("问卷星导出.xlsx", {"Sheet1": [WJX_HEADER, *rows]})

    summary = tea.run("responses", path)

    assert (summary.loaded, summary.rejected) == (2, 1)
    (reject,) = summary.first_rejects
    assert (reject["row"], reject["column"], reject["value"]) == (
        4,
        "2、您有多大可能向朋友或同事推荐茶语咖啡？(0-10分)",
        "11",
    )
    with tea.state.database.session(tenant_id=tea.id) as session:
        answers = session.scalars(select(SurveyResponse).order_by(SurveyResponse.response_id))
        got = [
            (a.response_id, a.nps, a.csat, a.rating_cleanliness, a.ces, a.comment) for a in answers
        ]
    assert got == [("1", 9, 5, None, 6, "拿铁好喝"), ("2", 3, 2, 4, 3, None)]
