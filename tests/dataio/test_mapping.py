"""Which column holds which field: the headers clients' systems write, and mapping files.

``map_columns`` finds each field of a kind by its synonyms, comparing headers after
``header_key`` (full-width to ASCII, lower case, no spaces, separators or bracketed units).
A mapping file (YAML) names the column of a field outright, or ``null`` to ignore one.
Mistakes (a field that does not exist, a column the file does not have, a required field
with no column) are ``InvalidInput`` saying what would fit, in Chinese and English.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from memberlab.core.errors import InvalidInput
from memberlab.dataio.kinds import KINDS, MEMBERS, RESPONSES, RETURNS, STORES, TRANSACTIONS
from memberlab.dataio.mapping import header_key, map_columns, read_mapping_file
from memberlab.dataio.prepare import prepare

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


# --- comparing headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("实付金额（元）", "实付金额"),  # units in full-width brackets
        ("实付金额(元)", "实付金额"),
        ("下单时间【北京时间】", "下单时间"),
        ("Amount_Paid", "amountpaid"),
        ("Order-Time", "ordertime"),
        ("会员 编号", "会员编号"),
        ("手机号：", "手机号"),
        ("ＭＥＭＢＥＲ＿ＩＤ", "memberid"),  # full-width letters
        ("\ufeff会员ID", "会员id"),  # the byte order mark Excel leaves on the first header
        ("（元）", "(元)"),  # only units: kept, so the header is not empty
    ],
)
def test_header_key_is_the_comparable_form_of_a_header(header: str, key: str) -> None:
    assert header_key(header) == key


# --- synonyms ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["会员ID", "会员编号", "会员卡号", "member_id", "Member ID", "卡号", "客户编号",
     "ＭＥＭＢＥＲ＿ＩＤ", "\ufeff会员卡号"],
)  # fmt: skip
def test_the_usual_headers_of_a_member_id_are_recognised(header: str) -> None:
    mapping = map_columns([header, "姓名"], MEMBERS)

    assert mapping.columns == {"member_id": header, "name": "姓名"}
    assert mapping.missing == []


@pytest.mark.parametrize("header", ["手机号", "手机", "手机号码", "mobile", "Mobile", "联系电话"])
def test_the_usual_headers_of_a_mobile_are_recognised(header: str) -> None:
    assert map_columns(["会员编号", header], MEMBERS).columns["mobile"] == header


def test_a_line_level_sales_export_is_mapped_field_by_field() -> None:
    headers = ["\ufeff会员卡号", "订单号", "下单时间", "实付金额（元）", "门店", "渠道",
               "商品编码", "数量", "收银员"]  # fmt: skip

    mapping = map_columns(headers, TRANSACTIONS)

    assert mapping.columns == {
        "order_id": "订单号",
        "member_id": "\ufeff会员卡号",
        "occurred_at": "下单时间",
        "amount": "实付金额（元）",
        "channel": "渠道",
        "store": "门店",
        "sku": "商品编码",
        "quantity": "数量",
    }
    assert mapping.ignored == ["收银员"]
    assert mapping.missing == []
    assert mapping.as_dict() == {"columns": mapping.columns, "ignored": ["收银员"]}


@pytest.mark.parametrize(
    ("headers", "amount", "time"),
    [
        (["消费金额", "交易时间"], "消费金额", "交易时间"),
        (["amount", "order_time"], "amount", "order_time"),
        (["Amount Paid", "Order Time"], "Amount Paid", "Order Time"),
        (["支付金额(元)", "支付时间"], "支付金额(元)", "支付时间"),
    ],
)
def test_amounts_and_times_go_by_many_names(headers: list[str], amount: str, time: str) -> None:
    mapping = map_columns(["订单号", "会员卡号", *headers], TRANSACTIONS)

    assert (mapping.columns["amount"], mapping.columns["occurred_at"]) == (amount, time)


def test_english_headers_with_spaces_and_capitals_are_recognised() -> None:
    mapping = map_columns(["Order No", "Member", "Date", "Total", "Store", "Channel"],
                          TRANSACTIONS)  # fmt: skip

    assert mapping.columns == {
        "order_id": "Order No",
        "member_id": "Member",
        "occurred_at": "Date",
        "amount": "Total",
        "channel": "Channel",
        "store": "Store",
    }


def test_a_column_goes_to_one_field_only() -> None:
    """Returns: 原订单号 is the order; 退货单号 the return; neither is taken twice."""
    headers = ["退货单号", "原订单号", "会员卡号", "退货时间", "退款金额"]

    mapping = map_columns(headers, RETURNS)

    assert mapping.columns == {
        "return_id": "退货单号",
        "order_id": "原订单号",
        "member_id": "会员卡号",
        "occurred_at": "退货时间",
        "amount": "退款金额",
    }
    assert len(set(mapping.columns.values())) == len(mapping.columns)


def test_a_survey_export_maps_its_questions() -> None:
    headers = ["序号", "提交答卷时间", "所用时间", "来源IP", "会员卡号", "推荐意愿", "满意度",
               "意见建议"]  # fmt: skip

    mapping = map_columns(headers, RESPONSES)

    assert mapping.columns == {
        "response_id": "序号",
        "member_id": "会员卡号",
        "responded_at": "提交答卷时间",
        "nps": "推荐意愿",
        "csat": "满意度",
        "comment": "意见建议",
    }
    assert mapping.ignored == ["所用时间", "来源IP"]


def test_required_fields_without_a_column_are_listed_as_missing() -> None:
    mapping = map_columns(["门店名称", "城市"], STORES)

    assert mapping.missing == ["store_id"]
    assert mapping.columns == {"name_zh": "门店名称", "city": "城市"}


def test_every_kind_finds_its_own_field_names() -> None:
    """A file written with the canonical names (as the export writes them) maps fully."""
    for kind in KINDS.values():
        names = [spec.name for spec in kind.fields]

        mapping = map_columns(names, kind)

        assert mapping.columns == {name: name for name in names}, kind.name
        assert (mapping.ignored, mapping.missing) == ([], []), kind.name


# --- mapping files -----------------------------------------------------------------------------


def test_a_mapping_file_names_columns_and_ignores_others(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(
        "# 会员卡号(新) is the current number; 会员卡号 is the old one\n"
        "member_id: 会员卡号(新)\n"
        "mobile: null\n",
        encoding="utf-8",
    )
    overrides = read_mapping_file(path)

    mapping = map_columns(["会员卡号", "会员卡号(新)", "手机号", "姓名"], MEMBERS, overrides)

    assert overrides == {"member_id": "会员卡号(新)", "mobile": None}
    assert mapping.columns == {"member_id": "会员卡号(新)", "name": "姓名"}
    assert mapping.ignored == ["会员卡号", "手机号"]


def test_a_mapping_file_may_nest_its_pairs_under_columns_and_start_with_a_bom(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mapping.yml"
    path.write_bytes(b"\xef\xbb\xbf" + "columns:\n  amount: 应收-优惠\n".encode())

    assert read_mapping_file(path) == {"amount": "应收-优惠"}


def test_an_override_wins_over_the_synonyms_and_the_others_still_apply() -> None:
    headers = ["订单号", "会员卡号", "下单时间", "实付金额", "应收-优惠"]

    mapping = map_columns(headers, TRANSACTIONS, {"amount": "应收-优惠"})

    assert mapping.columns["amount"] == "应收-优惠"
    assert mapping.columns["order_id"] == "订单号"
    assert "实付金额" in mapping.ignored


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("member_id: 会员卡号\n  mobile: 手机号\n", "dataio.mapping.not_yaml", 2),
        ("- member_id\n- mobile\n", "dataio.mapping.shape", None),
        ("amount: 12\n", "dataio.mapping.shape", None),
    ],
)
def test_a_mapping_file_that_is_not_field_header_pairs_is_refused(
    tmp_path: Path, text: str, key: str, line: int | None
) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(InvalidInput) as caught:
        read_mapping_file(path)

    (error,) = caught.value.errors
    assert (error.loc, error.key, error.line) == ("mapping", key, line)


def test_an_override_of_a_field_that_does_not_exist_lists_the_fields() -> None:
    with pytest.raises(InvalidInput) as caught:
        map_columns(["会员卡号", "手机号"], MEMBERS, {"memberid": "会员卡号"})

    (error,) = caught.value.errors
    assert (error.loc, error.key) == ("mapping.memberid", "dataio.mapping.unknown_field")
    assert error.render("en") == (
        "mapping.memberid: memberid is not a field of this kind of file (fields: birthday, "
        "city, enrol_channel, enrol_store, enrolled_at, external_id, gender, language, "
        "member_id, mobile, name)"
    )
    assert error.render("zh-CN").startswith(
        "mapping.memberid: memberid 不是此类文件的字段（可用字段：birthday, city,"
    )


def test_an_override_naming_a_column_the_file_lacks_suggests_the_closest() -> None:
    with pytest.raises(InvalidInput) as caught:
        map_columns(["会员卡号", "手机号"], MEMBERS, {"member_id": "会员卡", "mobile": "电话号"})

    first, second = caught.value.errors
    assert first.params == {"header": "会员卡", "suggestion": "会员卡号"}
    assert (
        first.render("en") == "mapping.member_id: the file has no column 会员卡 (closest: 会员卡号)"
    )
    assert first.render("zh-CN") == (
        "mapping.member_id: 文件中没有 会员卡 这一列（最接近的是：会员卡号）"
    )
    assert (second.loc, second.key) == ("mapping.mobile", "dataio.mapping.no_such_column")


def test_an_override_naming_nothing_like_any_column_says_so() -> None:
    with pytest.raises(InvalidInput) as caught:
        map_columns(["会员卡号"], MEMBERS, {"mobile": "xyz"})

    (error,) = caught.value.errors
    assert error.render("en") == "mapping.mobile: the file has no column xyz (closest: -)"


# --- a required field without a column, as the importer reports it ----------------------------


def test_a_missing_required_column_names_the_field_and_the_closest_header(
    tmp_path: Path,
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("订单号,会员卡号,下单时间,实付金\r\nO1,A1,2026-01-05,12\r\n", encoding="utf-8")

    with pytest.raises(InvalidInput) as caught:
        prepare(path, TRANSACTIONS, timezone="Asia/Shanghai", now=NOW)

    (error,) = caught.value.errors
    assert (error.loc, error.key) == ("amount", "dataio.v.missing_column")
    assert error.params == {
        "headers": "amount, 实付金额, 消费金额, 支付金额",
        "suggestion": "实付金",
    }
    assert error.render("en") == (
        "amount: no column found for this required field (usual headers: amount, 实付金额, "
        "消费金额, 支付金额; closest in the file: 实付金); name it in a mapping file"
    )
    assert error.render("zh-CN") == (
        "amount: 找不到此必填字段对应的列（常见列名：amount, 实付金额, 消费金额, 支付金额；"
        "文件中最接近的：实付金），请在列映射文件中指定"
    )


def test_every_missing_required_column_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("单号X,备注\r\nO1,x\r\n", encoding="utf-8")

    with pytest.raises(InvalidInput) as caught:
        prepare(path, TRANSACTIONS, timezone="Asia/Shanghai", now=NOW)

    missing = [(e.loc, e.params["suggestion"]) for e in caught.value.errors]
    assert [loc for loc, _ in missing] == ["order_id", "member_id", "occurred_at", "amount"]
    assert dict(missing)["amount"] == "-"


def test_a_mapping_file_fixes_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("订单号,会员卡号,下单时间,应收-优惠\r\nO1,A1,2026-01-05,12.50\r\n",
                    encoding="utf-8")  # fmt: skip

    prepared = prepare(
        path, TRANSACTIONS, timezone="Asia/Shanghai", now=NOW, overrides={"amount": "应收-优惠"}
    )

    assert prepared.rejects == []
    assert prepared.frame.select("order_id", "amount").rows() == [("O1", 1250)]
