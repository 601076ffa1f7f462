"""Importing client files into the store, on SQLite and PostgreSQL.

``run_import`` reads a file (``prepare``), checks the rows against the store (unknown
members and stores, a mobile that belongs to someone else), loads the good rows and writes
the bad ones, with their row, column, value and reason, to a rejects file beside the input
(UTF-8 with BOM, for Excel). Importing the same file again changes nothing;
``all_or_nothing`` loads nothing when any row is bad; ``dry_run`` writes nothing at all.

Purchases and returns go through the teahouse program's rules (1 point per yuan paid,
1.5x on the mini program, 50 bonus points on orders of 100 yuan, 200 welcome points,
300 on the birthday, growth 1 per yuan + 5 per order). The clock stands at 2026-11-25
16:00 in Shanghai.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
from sqlalchemy import select

from conftest import FixedClock
from memberlab.core.errors import InvalidInput
from memberlab.dataio.loaders import ImportSummary
from memberlab.experience.models import SurveyResponse
from memberlab.ledger import service as ledger_service
from memberlab.ledger.models import ImportRun, LedgerEntry, Order, OrderReturn
from memberlab.ledger.models import MemberState as MemberStateRow
from memberlab.ledger.rows import order_from_json, order_head
from memberlab.members import service as member_service
from memberlab.members.models import Member
from memberlab.members.schemas import Member as MemberView
from memberlab.retail.models import Product, Store

if TYPE_CHECKING:
    from tests.dataio.conftest import Files, Tenant

MEMBER_HEADER = ["会员卡号", "手机号", "姓名", "性别", "生日", "城市", "入会时间", "注册渠道"]
MEMBERS = [
    ["A1", "13812345678", "张三", "男", "1990-05-01", "上海", "2026-01-01 10:00", "门店"],
    ["A2", "139 1234 5678", "李四", "女", "1991/2/3", "北京", "2026/1/2", "小程序"],
    ["A3", "", "王小明", "", "", "", "2026年1月3日", ""],
]
ORDER_HEADER = ["会员卡号", "订单号", "下单时间", "实付金额", "门店", "渠道", "商品编码", "数量"]
ORDER_LINES = [
    ["A1", "O1", "2026-01-05 12:30", "12.50", "S1", "门店", "tea1", "1"],
    ["A1", "O1", "2026-01-05 12:30", "30.00", "S1", "门店", "cake", "2"],
    ["A2", "O2", "2026/1/6 12:30", "￥100", "S1", "小程序", "tea1", "1"],
    ["N9", "O3", "2026年1月7日 9:00", "20", "S2", "外卖", "tea2", "1"],
]


def view(tenant: Tenant, member_id: str, *, reveal: bool = True) -> MemberView:
    with tenant.state.database.session(tenant_id=tenant.id) as session:
        member = member_service.get(session, member_id)
        ctx = member_service.MemberContext(vault=tenant.state.vault)
        return member_service.view(session, member, ctx=ctx, reveal=reveal)


def points(tenant: Tenant, member_id: str) -> tuple[int, int, int]:
    """(available, pending, growth) of a member as of now, as ``member show`` shows them."""
    with tenant.state.database.session(tenant_id=tenant.id) as session:
        ctx = ledger_service.LedgerContext(
            session, tenant.id, tenant.state.clock(), tenant.state.vault, "test"
        )
        shown = ledger_service.member_points(ctx, member_id)
    return shown.balances.available, shown.balances.pending, shown.growth_value


def members_file(files: Files, *rows: list[str], name: str = "members.csv") -> Path:
    return files.csv(name, [MEMBER_HEADER, *rows], encoding="gbk")


def rejects_in(summary: ImportSummary) -> list[tuple[int | None, str | None, str | None, str]]:
    """(row, column, value, code) of the first rejects in a summary."""
    return [(r["row"], r["column"], r["value"], r["code"]) for r in summary.first_rejects]


# --- members -----------------------------------------------------------------------------------


def test_members_from_a_gbk_csv_load_with_their_personal_data_sealed(
    tea: Tenant, files: Files
) -> None:
    path = members_file(files, *MEMBERS)

    summary = tea.run("members", path)

    assert (summary.kind, summary.format, summary.encoding) == ("members", "csv", "gbk")
    assert (summary.rows, summary.loaded, summary.skipped, summary.rejected) == (3, 3, 0, 0)
    assert (summary.rejects_file, summary.refused, summary.first_rejects) == (None, False, [])
    assert summary.mapping == {
        "columns": {
            "member_id": "会员卡号", "mobile": "手机号", "name": "姓名", "gender": "性别",
            "birthday": "生日", "city": "城市", "enrolled_at": "入会时间",
            "enrol_channel": "注册渠道",
        },
        "ignored": [],
    }  # fmt: skip
    assert not files.path("members.csv.rejects.csv").exists()

    with tea.state.database.session(tenant_id=tea.id) as session:
        stored = session.scalar(select(Member).where(Member.member_id == "A1"))
        assert stored is not None
        sealed = (stored.mobile_sealed, stored.name_sealed, stored.birthday_sealed)
        assert stored.mobile_masked == "138****5678"
        assert stored.birthday_month_day == "05-01"
    for secret in ("13812345678", "张三", "1990-05-01"):
        assert all(secret not in (value or "") for value in sealed), secret

    a1 = view(tea, "A1")
    assert (a1.mobile, a1.name, a1.birthday) == ("+8613812345678", "张三", date(1990, 5, 1))
    assert (a1.gender, a1.city, a1.enrol_channel, a1.status) == ("male", "上海", "store", "active")
    assert a1.enrolled_at == datetime(2026, 1, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    a2 = view(tea, "A2")
    assert (a2.mobile, a2.gender, a2.birthday) == ("+8613912345678", "female", date(1991, 2, 3))
    assert (a2.enrol_channel, a2.enrolled_at) == (
        "mini_program",
        datetime(2026, 1, 1, 16, 0, tzinfo=UTC),
    )
    a3 = view(tea, "A3")
    assert (a3.mobile, a3.gender, a3.birthday, a3.city) == (None, None, None, None)
    assert view(tea, "A1", reveal=False).name == "张*"


def test_imported_members_are_found_by_their_mobile(tea: Tenant, files: Files) -> None:
    tea.run("members", members_file(files, *MEMBERS))

    with tea.state.database.session(tenant_id=tea.id) as session:
        ctx = member_service.MemberContext(vault=tea.state.vault)
        found = member_service.search(session, ctx=ctx, mobile="139-1234-5678")
        assert [m.member_id for m in found] == ["A2"]
        assert member_service.search(session, ctx=ctx, mobile="13700000000") == []


@pytest.mark.parametrize("fmt", ["xlsx", "parquet"])
def test_members_from_excel_or_parquet_load_like_from_csv(
    tea: Tenant, files: Files, fmt: str
) -> None:
    header = ["会员编号", "手机", "姓名", "性别", "出生日期", "注册时间"]
    rows: list[list[Any]] = [
        ["A1", 13812345678, "张三", "M", date(1990, 5, 1), datetime(2026, 1, 1, 10, 0)],
        ["A2", 13912345678, "李四", "F", date(1991, 2, 3), datetime(2026, 1, 2, 0, 0)],
    ]
    if fmt == "xlsx":
        path = files.xlsx("members.xlsx", {"会员": [header, *rows]})
    else:
        frame = pl.DataFrame(rows, schema=header, orient="row")
        path = files.parquet("members.parquet", frame)

    summary = tea.run("members", path)

    assert (summary.format, summary.loaded, summary.rejected) == (fmt, 2, 0)
    a1 = view(tea, "A1")
    assert (a1.mobile, a1.name, a1.gender, a1.birthday) == (
        "+8613812345678",
        "张三",
        "male",
        date(1990, 5, 1),
    )
    assert a1.enrolled_at == datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    assert view(tea, "A2").enrolled_at == datetime(2026, 1, 1, 16, 0, tzinfo=UTC)


BAD_MEMBERS = [
    # row 2: good
    ["G1", "13811112222", "好人", "男", "1990-01-01", "上海", "2026-01-01", "门店"],
    ["", "13811113333", "无号", "", "", "", "", ""],  # 3: no member id
    ["A 1", "", "空格", "", "", "", "", ""],  # 4: a space in the id
    ["B4", "", "", "", "1990-02-30", "", "", ""],  # 5: no such day
    ["B5", "", "", "", "", "", "abc", ""],  # 6: not a date
    ["B6", "", "", "", "", "", "2027-01-01", ""],  # 7: in the future
    ["B7", "", "", "", "1899-12-31", "", "", ""],  # 8: before 1900
    ["B8", "", "", "x", "", "", "", ""],  # 9: no such gender
    ["B9", "12345", "", "", "", "", "", ""],  # 10: not a mobile
    ["B10", "", "长" * 101, "", "", "", "", ""],  # 11: name too long
    ["G1", "", "又一个", "", "", "", "", ""],  # 12: G1 again
    ["B12", "13700000000", "", "", "", "", "", ""],  # 13: OLD1's mobile
    ["G2", "13811114444", "也好", "女", "", "", "", ""],  # row 14: good
]
EXPECTED_REJECTS = [
    ("3", "会员卡号", "", "dataio.v.missing"),
    ("4", "会员卡号", "A 1", "dataio.v.bad_id"),
    ("5", "生日", "1990-02-30", "dataio.v.no_such_date"),
    ("6", "入会时间", "abc", "dataio.v.not_a_date"),
    ("7", "入会时间", "2027-01-01", "dataio.v.future"),
    ("8", "生日", "1899-12-31", "dataio.v.too_old"),
    ("9", "性别", "x", "dataio.v.choice"),
    ("10", "手机号", "12345", "dataio.v.mobile"),
    ("11", "姓名", "长" * 101, "dataio.v.too_long"),
    ("12", "会员卡号", "G1", "dataio.v.duplicate"),
    ("13", "手机号", "137****0000", "dataio.v.taken"),
]
REASONS = {
    "en": [
        "is required",
        "A 1 is not a valid identifier (at most 64 characters, without spaces, quotes, commas "
        "or control characters)",
        "1990-02-30 is not a date that exists",
        "abc is not a date (e.g. 2026-11-25, 2026/11/25 14:30 or 2026年11月25日)",
        "2027-01-01 is in the future",
        "1899-12-31 is before 1900",
        "x is not one of: female, male, other, unknown",
        "12345 is not a valid mobile number",
        "is longer than 100 characters",
        "G1 repeats row 2",
        "137****0000 already belongs to member OLD1",
    ],
    "zh-CN": [
        "为必填项",
        "A 1 不是有效的编号（最多 64 个字符，不能含空格、引号、逗号或控制字符）",
        "1990-02-30 不是实际存在的日期",
        "abc 不是日期（例如 2026-11-25、2026/11/25 14:30 或 2026年11月25日）",
        "2027-01-01 是将来的时间",
        "1899-12-31 早于 1900 年",
        "x 不在可选值中：female, male, other, unknown",
        "12345 不是有效的手机号",
        "超过 100 个字符",
        "G1 与第 2 行重复",
        "137****0000 已属于会员 OLD1",
    ],
}
REJECT_HEADERS = {
    "en": ["row", "column", "value", "code", "reason"],
    "zh-CN": ["行号", "列", "值", "代码", "原因"],
}


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_every_bad_member_row_is_rejected_with_its_reason_and_the_good_rows_load(
    tea: Tenant, files: Files, read_rejects: Any, language: str
) -> None:
    old = ["OLD1", "13700000000", "", "", "", "", "", ""]
    tea.run("members", members_file(files, old, name="old.csv"))
    path = members_file(files, *BAD_MEMBERS)

    summary = tea.run("members", path, language=language)

    assert (summary.rows, summary.loaded, summary.skipped, summary.rejected) == (13, 2, 0, 11)
    assert summary.rejects_file == str(files.path("members.csv.rejects.csv"))
    rejects = read_rejects(summary.rejects_file)
    assert list(rejects[0]) == REJECT_HEADERS[language]
    row, column, value, code, reason = REJECT_HEADERS[language]
    assert [(r[row], r[column], r[value], r[code]) for r in rejects] == EXPECTED_REJECTS
    assert [r[reason] for r in rejects] == REASONS[language]
    assert [r["reason"] for r in summary.first_rejects] == REASONS[language]
    assert tea.count(Member) == 3
    assert view(tea, "G2").name == "也好"
    assert view(tea, "OLD1").mobile == "+8613700000000"  # untouched


def test_a_second_import_of_the_same_members_skips_them_all(tea: Tenant, files: Files) -> None:
    path = members_file(files, *MEMBERS)
    first = tea.run("members", path)
    before = tea.counts(Member)

    again = tea.run("members", path)

    assert (first.loaded, first.skipped) == (3, 0)
    assert (again.rows, again.loaded, again.skipped, again.rejected) == (3, 0, 3, 0)
    assert tea.counts(Member) == before


def test_all_or_nothing_loads_nothing_when_one_row_is_bad(
    tea: Tenant, files: Files, read_rejects: Any
) -> None:
    path = members_file(files, *MEMBERS, ["B1", "12345", "", "", "", "", "", ""])

    summary = tea.run("members", path, all_or_nothing=True)

    assert (summary.refused, summary.all_or_nothing) == (True, True)
    assert (summary.rows, summary.loaded, summary.rejected) == (4, 0, 1)
    assert tea.count(Member) == 0
    assert [(r["row"], r["code"]) for r in read_rejects(summary.rejects_file)] == [
        ("5", "dataio.v.mobile")
    ]


def test_all_or_nothing_loads_everything_when_every_row_is_good(tea: Tenant, files: Files) -> None:
    summary = tea.run("members", members_file(files, *MEMBERS), all_or_nothing=True)

    assert (summary.refused, summary.loaded, summary.rejects_file) == (False, 3, None)
    assert tea.count(Member) == 3


def test_a_dry_run_writes_nothing_but_shows_the_mapping_and_the_first_problems(
    tea: Tenant, files: Files
) -> None:
    path = members_file(files, *MEMBERS, ["B1", "12345", "", "", "", "", "", "自建渠道"])

    summary = tea.run("members", path, dry_run=True, language="zh-CN")

    assert (summary.dry_run, summary.loaded, summary.rows, summary.rejected) == (True, 0, 4, 1)
    assert summary.rejects_file is None
    assert summary.mapping["columns"]["member_id"] == "会员卡号"
    assert summary.first_rejects == [
        {
            "row": 5,
            "column": "手机号",
            "value": "12345",
            "code": "dataio.v.mobile",
            "reason": "12345 不是有效的手机号",
        }
    ]
    assert tea.counts(Member, ImportRun) == {"members": 0, "import_runs": 0}
    assert sorted(p.name for p in files.folder.iterdir()) == ["members.csv"]


def test_the_rejects_file_goes_where_it_is_asked_and_is_removed_when_all_is_well(
    tea: Tenant, files: Files, tmp_path: Path, read_rejects: Any
) -> None:
    target = tmp_path / "reports" / "bad rows.csv"
    bad = members_file(files, ["B1", "12345", "", "", "", "", "", ""], name="bad.csv")

    summary = tea.run("members", bad, rejects_path=target)

    assert summary.rejects_file == str(target)
    assert [r["value"] for r in read_rejects(target)] == ["12345"]
    assert not files.path("bad.csv.rejects.csv").exists()

    # fixed and imported again: no rejects file is left behind from the first run
    members_file(files, ["B1", "13812345678", "", "", "", "", "", ""], name="bad.csv")
    fixed = tea.run("members", bad, rejects_path=target)
    assert (fixed.loaded, fixed.rejects_file) == (1, None)
    assert not target.exists()


def test_rows_with_the_wrong_number_of_fields_are_rejected_with_their_row_number(
    tea: Tenant, files: Files
) -> None:
    path = files.text(
        "members.csv", "会员卡号,姓名,城市\r\nA1,张三,上海\r\nA2,李四\r\nA3,王五,深圳,多\r\n"
    )

    summary = tea.run("members", path)

    assert (summary.rows, summary.loaded, summary.rejected) == (3, 1, 2)
    assert summary.first_rejects == [
        {"row": 3, "column": None, "value": None, "code": "dataio.v.field_count",
         "reason": "the row has 2 fields where the header has 3"},
        {"row": 4, "column": None, "value": None, "code": "dataio.v.field_count",
         "reason": "the row has 4 fields where the header has 3"},
    ]  # fmt: skip


def test_a_csv_that_ends_with_an_empty_line_imports(tea: Tenant, files: Files) -> None:
    """Excel and many POS exports end the file with an empty line."""
    path = files.text("members.csv", "会员卡号,姓名\r\nA1,张三\r\nA2,李四\r\n\r\n")

    summary = tea.run("members", path)

    assert (summary.rows, summary.loaded, summary.rejected) == (2, 2, 0)


def test_a_mapping_override_is_used_by_the_import(tea: Tenant, files: Files) -> None:
    path = files.csv("members.csv", [["旧卡号", "新卡号", "手机号"], ["X1", "A1", "13812345678"]])

    summary = tea.run("members", path, overrides={"member_id": "新卡号", "mobile": None})

    assert summary.mapping == {"columns": {"member_id": "新卡号"}, "ignored": ["旧卡号", "手机号"]}
    assert view(tea, "A1").mobile is None


def test_a_file_the_importer_cannot_read_is_an_error_naming_it(tea: Tenant, files: Files) -> None:
    path = files.raw("会员.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

    with pytest.raises(InvalidInput) as caught:
        tea.run("members", path)

    assert [(e.loc, e.key) for e in caught.value.errors] == [("会员.csv", "dataio.file.binary")]
    assert tea.count(Member) == 0


LONG_CHANNEL = "抖音直播间" * 7  # 35 characters: a client's own channel name, kept as written


@pytest.mark.parametrize(
    ("kind", "header", "row"),
    [
        ("members", ["会员卡号", "注册渠道"], ["A1", LONG_CHANNEL]),
        ("transactions", ["订单号", "会员卡号", "下单时间", "实付金额", "渠道"],
         ["O1", "A1", "2026-01-05 12:30", "10", LONG_CHANNEL]),
        ("responses", ["会员卡号", "提交时间", "推荐意愿", "渠道"],
         ["A1", "2026-11-20 10:00", "9", LONG_CHANNEL]),
    ],
)  # fmt: skip
def test_a_long_channel_name_is_kept_whole_or_rejected_never_a_crash(
    tea: Tenant,
    files: Files,
    request: pytest.FixtureRequest,
    backend: str,
    kind: str,
    header: list[str],
    row: list[str],
) -> None:
    if kind == "responses":
        tea.run("members", members_file(files, MEMBERS[0]))
    path = files.csv(f"{kind}.csv", [header, row])

    summary = tea.run(kind, path)

    if summary.rejected:
        assert rejects_in(summary) == [(2, header[-1], LONG_CHANNEL, "dataio.v.too_long")]
        return
    assert summary.loaded == 1
    with tea.state.database.session(tenant_id=tea.id) as session:
        column = {
            "members": Member.enrol_channel,
            "transactions": Order.channel,
            "responses": SurveyResponse.channel,
        }[kind]
        assert session.scalar(select(column)) == LONG_CHANNEL


# --- purchases and returns ---------------------------------------------------------------------


def orders_file(files: Files, *lines: list[str], name: str = "orders.csv") -> Path:
    return files.csv(name, [ORDER_HEADER, *lines], encoding="gbk")


def test_line_level_sales_from_a_gbk_export_go_through_the_program(
    tea: Tenant, files: Files
) -> None:
    tea.run("members", members_file(files, *MEMBERS))
    path = orders_file(files, *ORDER_LINES)

    summary = tea.run("transactions", path)

    assert (summary.encoding, summary.rows, summary.rejected) == ("gbk", 4, 0)
    # the summary counts rows: O1 has two lines; N9 is a new member
    assert (summary.loaded, summary.members_enrolled) == (4, 1)
    with tea.state.database.session(tenant_id=tea.id) as session:
        orders = {
            o.order_id: (o.amount_paid, o.points_earned, o.growth_earned, o.channel, o.store)
            for o in session.scalars(select(Order))
        }
    assert orders == {
        "O1": (4250, 42, 47, "store", "S1"),  # 12.50 + 30.00; two lines, one order
        "O2": (10000, 200, 105, "mini_program", "S1"),  # 150 (x1.5) + 50 for 100 yuan
        "O3": (2000, 20, 25, "delivery", "S2"),
    }
    # 200 welcome points, 300 on the birthday (1 May, 3 February) and what the order earned
    assert points(tea, "A1") == (542, 0, 47)
    assert points(tea, "A2") == (700, 0, 105)
    assert points(tea, "N9") == (220, 0, 25)  # no birthday known
    assert view(tea, "N9").enrolled_at == datetime(2026, 1, 7, 1, 0, tzinfo=UTC)


def test_returns_take_back_what_the_returned_lines_earned_and_rule_refusals_are_rejects(
    tea: Tenant, files: Files
) -> None:
    tea.run("members", members_file(files, *MEMBERS))
    tea.run("transactions", orders_file(files, *ORDER_LINES))
    path = files.csv(
        "returns.csv",
        [
            ["退货单号", "原订单号", "会员卡号", "退货时间", "退款金额", "商品编码", "数量"],
            ["R1", "O1", "A1", "2026-01-06 10:00", "", "cake", "1"],
            ["R2", "O1", "A1", "2026-01-06 11:00", "", "cake", "5"],
            ["R3", "NOPE", "A1", "2026-01-06 11:00", "", "cake", "1"],
        ],
    )

    summary = tea.run("returns", path)

    assert (summary.rows, summary.loaded, summary.rejected) == (3, 1, 2)
    assert summary.first_rejects == [
        {"row": 3, "column": "退货单号", "value": "R2", "code": "ledger.return_too_much",
         "reason": "cake: 5 more cannot be returned (2 bought, 1 already returned)"},
        {"row": 4, "column": "退货单号", "value": "R3", "code": "ledger.order_not_found",
         "reason": "No order NOPE."},
    ]  # fmt: skip
    assert points(tea, "A1") == (527, 0, 32)  # one cake of 15 yuan: 15 points, 15 growth
    with tea.state.database.session(tenant_id=tea.id) as session:
        returned = session.scalar(select(OrderReturn))
        assert returned is not None
        assert (returned.return_id, returned.amount_returned) == ("R1", 1500)
        state = session.scalar(select(MemberStateRow).join(Member).where(Member.member_id == "A1"))
        assert state is not None
        assert (state.lifetime_spend, state.lifetime_orders) == (2750, 1)


def test_rule_refusals_are_named_in_chinese_too(tea: Tenant, files: Files) -> None:
    tea.run("transactions", orders_file(files, *ORDER_LINES))
    path = files.csv(
        "returns.csv",
        [["退货单号", "原订单号", "会员卡号", "退货时间", "商品编码", "数量"],
         ["R9", "O1", "A1", "2026-01-06 10:00", "cake", "3"]],
    )  # fmt: skip

    summary = tea.run("returns", path, language="zh-CN")

    assert [r["reason"] for r in summary.first_rejects] == [
        "cake：不能再退 3 件（购买 2 件，已退 0 件）"
    ]


def test_a_second_import_of_the_same_sales_applies_nothing(tea: Tenant, files: Files) -> None:
    path = orders_file(files, *ORDER_LINES)
    tea.run("transactions", path)
    tables = (Member, MemberStateRow, LedgerEntry, Order)
    before = tea.counts(*tables)
    balances = points(tea, "A1")

    again = tea.run("transactions", path)

    assert (again.loaded, again.skipped, again.rejected, again.members_enrolled) == (0, 4, 0, 0)
    assert tea.counts(*tables) == before
    assert points(tea, "A1") == balances


def test_the_summary_of_a_line_level_sales_file_accounts_for_every_row(
    tea: Tenant, files: Files
) -> None:
    path = orders_file(files, *ORDER_LINES)

    first = tea.run("transactions", path)
    again = tea.run("transactions", path)

    assert first.loaded + first.skipped + first.rejected == first.rows
    assert (again.loaded, again.skipped) == (0, again.rows)


BAD_LINES = [
    ["A1", "O1", "2026-01-05 12:30", "12.50", "S1", "门店", "tea1", "1"],  # 2: good
    ["A1", "O2", "2026-01-05 12:30", "-3", "S1", "门店", "tea1", "1"],  # 3: negative
    ["A1", "O3", "2026-01-05 12:30", "abc", "S1", "门店", "tea1", "1"],  # 4: not money
    ["A1", "O4", "2026-01-05 12:30", "12", "S1", "门店", "tea1", "1.5"],  # 5: half a cup
    ["A1", "O5", "2026-01-05 12:30", "12", "S1", "门店", "tea1", "0"],  # 6: none at all
    ["A1", "O6", "2026-02-30 12:30", "12", "S1", "门店", "tea1", "1"],  # 7: no such day
    ["A1", "O7", "下周一", "12", "S1", "门店", "tea1", "1"],  # 8: not a date
    ["A1", "O8", "2026-12-01 10:00", "12", "S1", "门店", "tea1", "1"],  # 9: future
    ["A1", "O9", "2026-01-05 12:30", "", "S1", "门店", "tea1", "1"],  # 10: no amount
    ["A2", "O10", "2026-01-05 12:30", "5", "S1", "门店", "tea1", "1"],  # 11: O10 of A2 ...
    ["A3", "O10", "2026-01-05 12:30", "5", "S1", "门店", "tea2", "1"],  # 12: ... and of A3
    ["A2", "O11", "2026-01-05 12:30", "8", "S1", "门店", "tea1", "1"],  # 13: good
]


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_every_bad_sales_line_is_rejected_and_the_good_ones_are_applied(
    tea: Tenant, files: Files, read_rejects: Any, language: str
) -> None:
    summary = tea.run("transactions", orders_file(files, *BAD_LINES), language=language)

    assert (summary.rows, summary.loaded, summary.rejected) == (12, 2, 10)
    rejects = read_rejects(summary.rejects_file)
    row, column, value, code, reason = REJECT_HEADERS[language]
    assert [(r[row], r[column], r[value], r[code]) for r in rejects] == [
        ("3", "实付金额", "-3", "dataio.v.negative"),
        ("4", "实付金额", "abc", "dataio.v.not_an_amount"),
        ("5", "数量", "1.5", "dataio.v.not_integer"),
        ("6", "数量", "0", "dataio.v.below_minimum"),
        ("7", "下单时间", "2026-02-30 12:30", "dataio.v.no_such_date"),
        ("8", "下单时间", "下周一", "dataio.v.not_a_date"),
        ("9", "下单时间", "2026-12-01 10:00", "dataio.v.future"),
        ("10", "实付金额", "", "dataio.v.missing"),
        ("11", "会员卡号", "A2", "dataio.v.order_mixed"),
        ("12", "会员卡号", "A3", "dataio.v.order_mixed"),
    ]
    expected = {
        "en": ["-3 is negative", "1.5 is not a whole number", "0 is below the minimum of 1",
               "the lines of this order name different members (first line: row 11)"],
        "zh-CN": ["-3 是负数", "1.5 不是整数", "0 低于最小值 1",
                  "该订单的各行会员不一致（首行：第 11 行）"],
    }[language]  # fmt: skip
    assert [rejects[i][reason] for i in (0, 2, 3, 8)] == expected
    with tea.state.database.session(tenant_id=tea.id) as session:
        assert sorted(session.scalars(select(Order.order_id))) == ["O1", "O11"]


def test_an_amount_with_a_fraction_of_a_fen_is_rejected_not_rounded(
    tea: Tenant, files: Files
) -> None:
    path = orders_file(
        files,
        ["A1", "O1", "2026-01-05 12:30", "12.345", "S1", "门店", "tea1", "1"],
        ["A1", "O2", "2026-01-05 12:30", "12.340", "S1", "门店", "tea1", "1"],
    )

    summary = tea.run("transactions", path)

    assert rejects_in(summary) == [(2, "实付金额", "12.345", "dataio.v.fraction_of_fen")]
    assert summary.first_rejects[0]["reason"] == (
        "12.345 has more than two decimals (fractions of a fen)"
    )
    with tea.state.database.session(tenant_id=tea.id) as session:
        assert list(session.execute(select(Order.order_id, Order.amount_paid))) == [("O2", 1234)]


def test_a_purchase_the_rules_refuse_is_rejected_on_the_row_of_its_first_line(
    tea: Tenant, files: Files
) -> None:
    path = files.csv(
        "orders.csv",
        [["订单号", "会员卡号", "下单时间", "实付金额", "商品编码", "积分抵扣"],
         ["O1", "A1", "2026-01-05 12:30", "10", "tea1", "150"],  # not in steps of 100
         ["O2", "A1", "2026-01-05 13:30", "10", "tea1", "0"],
         ["O3", "A1", "2026-01-06 12:30", "2", "tea1", "0"],
         ["O3", "A1", "2026-01-06 12:30", "2", "cake", "0"],
         ["O4", "A1", "2026-01-06 13:30", "2", "tea1", "200"]],  # all of the 2 yuan
    )  # fmt: skip

    summary = tea.run("transactions", path)

    assert (summary.rows, summary.loaded, summary.rejected) == (5, 3, 2)  # O2 and O3 (2 lines)
    assert summary.first_rejects == [
        {"row": 2, "column": "订单号", "value": "O1", "code": "ledger.points_step",
         "reason": "points used must be a multiple of 100 and at least 100"},
        {"row": 6, "column": "订单号", "value": "O4", "code": "ledger.points_share",
         "reason": "points may pay for at most 50.0% of an order"},
    ]  # fmt: skip


def test_where_a_purchase_does_not_enrol_unknown_members_are_rejected(
    new_tenant: Any, files: Files
) -> None:
    dept = new_tenant("dept", program="department_store")
    dept.run("members", members_file(files, MEMBERS[0]))
    path = orders_file(files, *ORDER_LINES)

    summary = dept.run("transactions", path)

    assert (summary.loaded, summary.members_enrolled) == (2, 0)  # the two lines of A1's O1
    assert rejects_in(summary) == [
        (4, "会员卡号", "A2", "dataio.v.no_member"),
        (5, "会员卡号", "N9", "dataio.v.no_member"),
    ]
    assert dept.count(Member) == 1


def test_a_store_not_in_the_tenants_store_list_is_rejected(tea: Tenant, files: Files) -> None:
    tea.run("stores", files.csv("stores.csv", [["门店编号", "门店名称"], ["S1", "一号店"]]))
    path = orders_file(
        files,
        ["A1", "O1", "2026-01-05 12:30", "12", "S1", "门店", "tea1", "1"],
        ["A1", "O2", "2026-01-05 13:30", "12", "S9", "门店", "tea1", "1"],
        ["A1", "O3", "2026-01-05 14:30", "12", "", "小程序", "tea1", "1"],
    )

    summary = tea.run("transactions", path)

    assert (summary.loaded, summary.rejected) == (2, 1)
    assert rejects_in(summary) == [(3, "门店", "S9", "dataio.v.no_store")]
    assert summary.first_rejects[0]["reason"] == "store S9 is not in the store list"


def test_without_a_store_list_any_store_is_accepted(tea: Tenant, files: Files) -> None:
    summary = tea.run("transactions", orders_file(files, *ORDER_LINES))

    assert (summary.loaded, summary.rejected) == (4, 0)


def test_all_or_nothing_sales_apply_nothing_when_the_rules_refuse_one(
    tea: Tenant, files: Files
) -> None:
    tea.run("transactions", orders_file(files, *ORDER_LINES[:2], name="first.csv"))
    before = tea.counts(Member, Order, OrderReturn, LedgerEntry)
    path = files.csv(
        "mixed.csv",
        [
            ["kind", "order_id", "return_id", "member_id", "occurred_at", "amount", "sku",
             "quantity"],
            ["purchase", "O5", "", "A1", "2026-02-01 10:00", "50", "tea1", "1"],
            ["purchase", "O6", "", "Z1", "2026-02-01 11:00", "50", "tea1", "1"],
            ["return", "O1", "R1", "A1", "2026-01-06 10:00", "", "cake", "9"],
        ],
    )  # fmt: skip

    summary = tea.run("transactions", path, all_or_nothing=True)

    assert (summary.refused, summary.loaded, summary.members_enrolled) == (True, 0, 0)
    assert rejects_in(summary) == [(4, "return_id", "R1", "ledger.return_too_much")]
    assert tea.counts(Member, Order, OrderReturn, LedgerEntry) == before


def test_purchases_and_returns_need_an_active_program(new_tenant: Any, files: Files) -> None:
    bare = new_tenant("bare", program=None)

    with pytest.raises(InvalidInput) as caught:
        bare.run("transactions", orders_file(files, *ORDER_LINES))

    assert caught.value.key == "dataio.no_program"
    assert caught.value.message("en") == (
        "no program is active: load and activate one before importing purchases or returns"
    )
    assert bare.count(Order) == 0


def test_returns_of_members_that_do_not_exist_are_rejected(tea: Tenant, files: Files) -> None:
    tea.run("transactions", orders_file(files, *ORDER_LINES))
    path = files.csv(
        "returns.csv",
        [["退货单号", "原订单号", "会员卡号", "退货时间", "商品编码", "数量"],
         ["R1", "O1", "A1", "2026-01-06 10:00", "cake", "1"],
         ["R2", "O1", "GHOST", "2026-01-06 10:00", "cake", "1"]],
    )  # fmt: skip

    summary = tea.run("returns", path, language="zh-CN")

    assert (summary.loaded, summary.rejected) == (1, 1)
    assert summary.first_rejects == [
        {"row": 3, "column": "会员卡号", "value": "GHOST", "code": "dataio.v.no_member",
         "reason": "会员 GHOST 不存在（请先导入会员）"}
    ]  # fmt: skip


def test_sales_from_parquet_keep_their_types(tea: Tenant, files: Files) -> None:
    """Float amounts are read to the fen (0.1 + 0.2 is 30 fen, not a fraction of one), float
    ids and quantities lose their ``.0``, zoned times keep their instant, naive ones are local."""
    frame = pl.DataFrame(
        {
            "member_id": [1001.0, 1001.0, 1002.0],
            "order_id": ["P1", "P1", "P2"],
            "occurred_at": [
                datetime(2026, 1, 5, 12, 30),
                datetime(2026, 1, 5, 12, 30),
                datetime(2026, 1, 6, 4, 30),
            ],
            "amount": [0.1 + 0.2, 19.99, 1.1 + 2.2],
            "quantity": [1.0, 2.0, 1.0],
        }
    )
    zoned = pl.DataFrame(
        {
            "member_id": ["1003"],
            "order_id": ["P3"],
            "occurred_at": [datetime(2026, 1, 7, 4, 30, tzinfo=UTC)],
            "amount": [10],
        }
    )

    naive = tea.run("transactions", files.parquet("orders.parquet", frame))
    aware = tea.run("transactions", files.parquet("zoned.parquet", zoned))

    assert (naive.format, naive.loaded, naive.rejected) == ("parquet", 3, 0)
    assert (aware.loaded, aware.rejected) == (1, 0)
    with tea.state.database.session(tenant_id=tea.id) as session:
        orders = session.execute(
            select(Order.order_id, Member.member_id, Order.occurred_at, Order.amount_paid)
            .join(Member, Member.id == Order.member_pk)
            .order_by(Order.order_id)
        ).all()
        first = session.scalar(select(Order).where(Order.order_id == "P1"))
        assert first is not None
        lines = order_from_json(first.record, order_head(first)).lines
    assert [tuple(o) for o in orders] == [
        ("P1", "1001", datetime(2026, 1, 5, 4, 30, tzinfo=UTC), 30 + 1999),
        ("P2", "1002", datetime(2026, 1, 5, 20, 30, tzinfo=UTC), 330),
        ("P3", "1003", datetime(2026, 1, 7, 4, 30, tzinfo=UTC), 1000),
    ]
    assert [line.quantity for line in lines] == [1, 2]


# --- survey responses --------------------------------------------------------------------------

SURVEY_HEADER = ["序号", "提交答卷时间", "所用时间", "会员卡号", "推荐意愿", "满意度", "意见建议"]


def test_a_survey_export_from_excel_loads_and_bad_answers_are_rejected(
    tea: Tenant, files: Files
) -> None:
    tea.run("members", members_file(files, *MEMBERS))
    path = files.xlsx(
        "问卷.xlsx",
        {
            "Sheet1": [
                SURVEY_HEADER,
                [1, datetime(2026, 11, 20, 10, 0, 5), "35秒", "A1", 9, 5, "奶茶很好喝"],
                [2, "2026/11/20 11:00:00", "20秒", "A2", 11, 4, ""],  # NPS is 0..10
                [3, "2026/11/21 09:30:00", "41秒", "GHOST", 8, 4, "还行"],
                [4, "2026/11/21 09:45:00", "12秒", "", 6, 3, "排队太久"],  # anonymous
                [5, "2026/11/21 10:00:00", "15秒", "A2", 7, 0, ""],  # CSAT is 1..5
            ]
        },
    )

    summary = tea.run("responses", path)

    assert (summary.format, summary.sheet, summary.rows) == ("xlsx", "Sheet1", 5)
    assert (summary.loaded, summary.rejected) == (2, 3)
    assert rejects_in(summary) == [
        (3, "推荐意愿", "11", "dataio.v.above_maximum"),
        (4, "会员卡号", "GHOST", "dataio.v.no_member"),
        (6, "满意度", "0", "dataio.v.below_minimum"),
    ]
    assert [r["reason"] for r in summary.first_rejects] == [
        "11 is above the maximum of 10",
        "member GHOST does not exist (import the members first)",
        "0 is below the minimum of 1",
    ]
    with tea.state.database.session(tenant_id=tea.id) as session:
        stored = session.execute(
            select(
                SurveyResponse.response_id, Member.member_id, SurveyResponse.responded_at,
                SurveyResponse.nps, SurveyResponse.csat, SurveyResponse.comment,
                SurveyResponse.survey, SurveyResponse.source,
            )
            .outerjoin(Member, Member.id == SurveyResponse.member_pk)
            .order_by(SurveyResponse.response_id)
        ).all()  # fmt: skip
    assert [tuple(row) for row in stored] == [
        ("1", "A1", datetime(2026, 11, 20, 2, 0, 5, tzinfo=UTC), 9, 5, "奶茶很好喝",
         "transactional", "import"),
        ("4", None, datetime(2026, 11, 21, 1, 45, tzinfo=UTC), 6, 3, "排队太久",
         "transactional", "import"),
    ]  # fmt: skip


def test_responses_without_an_id_are_recognised_when_imported_again(
    tea: Tenant, files: Files
) -> None:
    tea.run("members", members_file(files, *MEMBERS))
    rows = [
        ["提交时间", "会员卡号", "推荐意愿", "评论"],
        ["2026-11-20 10:00", "A1", "9", "好"],
        ["2026-11-20 10:00", "A2", "9", "好"],
        ["2026-11-20 10:00", "A1", "9", "好"],  # the very same answer twice
    ]
    path = files.csv("answers.csv", rows)

    first = tea.run("responses", path)
    again = tea.run("responses", files.csv("answers again.csv", rows))
    as_excel = tea.run("responses", files.xlsx("answers.xlsx", {"Sheet1": rows}))

    assert (first.rows, first.loaded, first.skipped, first.rejected) == (3, 2, 1, 0)
    assert (again.rows, again.loaded, again.skipped) == (3, 0, 3)
    assert (as_excel.rows, as_excel.loaded, as_excel.skipped) == (3, 0, 3)
    with tea.state.database.session(tenant_id=tea.id) as session:
        ids = list(session.scalars(select(SurveyResponse.response_id)))
    assert len(ids) == 2
    assert all(i.startswith("R") and len(i) == 21 for i in ids), ids


def test_a_response_id_twice_in_one_file_names_the_first_row(tea: Tenant, files: Files) -> None:
    path = files.csv(
        "answers.csv",
        [
            ["答卷编号", "提交时间", "推荐意愿"],
            ["X1", "2026-11-20", "9"],
            ["X1", "2026-11-21", "3"],
        ],
    )

    summary = tea.run("responses", path)

    assert (summary.loaded, summary.rejected) == (1, 1)
    assert summary.first_rejects == [
        {"row": 3, "column": "答卷编号", "value": "X1", "code": "dataio.v.duplicate",
         "reason": "X1 repeats row 2"}
    ]  # fmt: skip


def test_a_comment_longer_than_5000_characters_is_rejected(tea: Tenant, files: Files) -> None:
    path = files.csv(
        "answers.csv",
        [["提交时间", "推荐意愿", "意见建议"],
         ["2026-11-20", "9", "好" * 5000], ["2026-11-20", "8", "好" * 5001]],
    )  # fmt: skip

    summary = tea.run("responses", path, language="zh-CN")

    assert (summary.loaded, summary.rejected) == (1, 1)
    assert [(r["row"], r["code"], r["reason"]) for r in summary.first_rejects] == [
        (3, "dataio.v.too_long", "超过 5000 个字符")
    ]


# --- stores and products -----------------------------------------------------------------------


def test_stores_are_inserted_then_updated_when_they_change(tea: Tenant, files: Files) -> None:
    header = ["门店编号", "门店名称", "城市", "开业日期"]
    first = tea.run(
        "stores",
        files.csv("stores.csv", [header, ["001", "一号店", "上海", "2020-05-01"],
                                 ["002", "二号店", "北京", "2021年3月8日"]]),
    )  # fmt: skip
    renamed = tea.run(
        "stores",
        files.csv("stores.csv", [header, ["001", "一号旗舰店", "上海", "2020-05-01"],
                                 ["002", "二号店", "北京", "2021-03-08"]]),
    )  # fmt: skip
    same = tea.run("stores", files.path("stores.csv"))

    assert (first.loaded, first.skipped) == (2, 0)
    assert (renamed.loaded, renamed.skipped) == (1, 1)
    assert (same.loaded, same.skipped) == (0, 2)
    with tea.state.database.session(tenant_id=tea.id) as session:
        stored = session.execute(
            select(Store.store_id, Store.name_zh, Store.city, Store.opened_on).order_by(
                Store.store_id
            )
        ).all()
    assert [tuple(s) for s in stored] == [
        ("001", "一号旗舰店", "上海", date(2020, 5, 1)),
        ("002", "二号店", "北京", date(2021, 3, 8)),
    ]


def test_products_are_upserted_by_sku_and_a_new_price_updates(tea: Tenant, files: Files) -> None:
    header = ["商品编码", "商品名称", "英文名", "品类", "售价"]
    first = tea.run(
        "products",
        files.csv("products.csv", [header, ["tea1", "龙井", "Longjing", "tea", "¥18.00"],
                                   ["cake", "蛋糕", "Cake", "bakery", "15"]]),
    )  # fmt: skip
    cheaper = tea.run(
        "products",
        files.csv("products.csv", [header, ["tea1", "龙井", "Longjing", "tea", "16.5"],
                                   ["cake", "蛋糕", "Cake", "bakery", "15.00"]]),
    )  # fmt: skip
    same = tea.run("products", files.path("products.csv"))

    assert (first.loaded, cheaper.loaded, cheaper.skipped, same.loaded, same.skipped) == (
        2, 1, 1, 0, 2,
    )  # fmt: skip
    with tea.state.database.session(tenant_id=tea.id) as session:
        stored = session.execute(
            select(Product.sku, Product.name_zh, Product.category, Product.price_minor)
            .order_by(Product.sku)
        ).all()  # fmt: skip
    assert [tuple(p) for p in stored] == [("cake", "蛋糕", "bakery", 1500),
                                          ("tea1", "龙井", "tea", 1650)]  # fmt: skip


def test_a_price_list_updates_prices_and_keeps_the_names(tea: Tenant, files: Files) -> None:
    tea.run(
        "products",
        files.csv("products.csv", [["sku", "name_zh", "category", "price"],
                                   ["tea1", "龙井", "tea", "18"]]),
    )  # fmt: skip

    summary = tea.run("products", files.csv("prices.csv", [["sku", "price"], ["tea1", "16.5"]]))

    assert summary.loaded == 1
    with tea.state.database.session(tenant_id=tea.id) as session:
        stored = session.execute(
            select(Product.name_zh, Product.category, Product.price_minor)
        ).one()
    assert tuple(stored) == ("龙井", "tea", 1650)


def test_a_date_is_in_the_future_by_the_tenants_calendar_not_by_utc(
    tea: Tenant, files: Files, clock: FixedClock
) -> None:
    clock.now = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)  # 26 November, 04:00 in Shanghai
    header = ["门店编号", "开业日期"]
    path = files.csv("stores.csv", [header, ["S1", "2026-11-26"], ["S2", "2026-11-27"]])

    summary = tea.run("stores", path)

    assert rejects_in(summary) == [(3, "开业日期", "2026-11-27", "dataio.v.future")]
    assert summary.loaded == 1


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_a_time_that_states_its_offset_is_the_instant_it_names(
    tea: Tenant, files: Files, language: str
) -> None:
    """Online shops' APIs write ISO 8601 with an offset; Shanghai is UTC+8 (no summer time)."""
    path = orders_file(
        files,
        ["A1", "O1", "2026-01-05T12:30:00+08:00", "10", "S1", "门店", "tea1", "1"],
        ["A1", "O2", "2026-01-05T04:30:00Z", "10", "S1", "门店", "tea1", "1"],
        ["A1", "O3", "2026-01-05 12:30", "10", "S1", "门店", "tea1", "1"],  # Shanghai's clock
        ["A1", "O4", "2026-01-05 12:30:00.250-0500", "10", "S1", "门店", "tea1", "1"],
        ["A1", "O5", "2026-11-25T09:00:00Z", "10", "S1", "门店", "tea1", "1"],  # 17:00 there
        ["A1", "O6", "2026-01-05T12:30:00+25:00", "10", "S1", "门店", "tea1", "1"],
        ["A1", "O7", "2026-02-30T12:30:00+08:00", "10", "S1", "门店", "tea1", "1"],
        ["A1", "O8", "2026-01-05T12:30:00+8", "10", "S1", "门店", "tea1", "1"],  # +08 meant
    )

    summary = tea.run("transactions", path, language=language)

    assert rejects_in(summary) == [
        (6, "下单时间", "2026-11-25T09:00:00Z", "dataio.v.future"),  # the clock says 16:00
        (7, "下单时间", "2026-01-05T12:30:00+25:00", "dataio.v.bad_offset"),
        (8, "下单时间", "2026-02-30T12:30:00+08:00", "dataio.v.no_such_date"),
        (9, "下单时间", "2026-01-05T12:30:00+8", "dataio.v.bad_offset"),
    ]
    assert (
        summary.first_rejects[1]["reason"]
        == {
            "en": "2026-01-05T12:30:00+25:00 states an offset from UTC that does not exist"
            " (e.g. +08:00, -05:00 or Z)",
            "zh-CN": "2026-01-05T12:30:00+25:00 中的时区偏移不存在（例如 +08:00、-05:00 或 Z）",
        }[language]
    )
    with tea.state.database.session(tenant_id=tea.id) as session:
        stored = dict(session.execute(select(Order.order_id, Order.occurred_at)).all())
    assert stored == {
        "O1": datetime(2026, 1, 5, 4, 30, tzinfo=UTC),
        "O2": datetime(2026, 1, 5, 4, 30, tzinfo=UTC),
        "O3": datetime(2026, 1, 5, 4, 30, tzinfo=UTC),
        "O4": datetime(2026, 1, 5, 17, 30, 0, 250_000, tzinfo=UTC),
    }


def test_a_date_with_an_offset_is_the_day_on_the_tenants_calendar(
    tea: Tenant, files: Files
) -> None:
    """A birthday exported as UTC midnight-in-Shanghai (16:00 the day before) keeps its day."""
    path = members_file(
        files,
        ["A1", "13812345678", "张三", "男", "1990-04-30T16:00:00Z", "上海", "", "门店"],
        ["A2", "13912345678", "李四", "女", "1991-02-03T00:00:00+08:00", "北京", "", "门店"],
    )

    summary = tea.run("members", path)

    assert (summary.loaded, summary.rejected) == (2, 0)
    assert (view(tea, "A1").birthday, view(tea, "A2").birthday) == (
        date(1990, 5, 1),
        date(1991, 2, 3),
    )


def test_one_tenants_data_does_not_get_in_the_way_of_anothers(
    tea: Tenant, new_tenant: Any, files: Files
) -> None:
    """Mobiles, store lists and response ids are per tenant."""
    other = new_tenant("other")
    other.run("members", members_file(files, *MEMBERS, name="other.csv"))
    other.run("stores", files.csv("stores.csv", [["门店编号"], ["S1"]]))
    answers = files.csv("answers.csv", [["序号", "提交时间", "推荐意愿"], ["1", "2026-11-20", "9"]])
    other.run("responses", answers)

    same_mobile = ["B1", "13812345678", "", "", "", "", "", ""]
    members = tea.run("members", members_file(files, same_mobile))
    sales = tea.run("transactions", orders_file(files, *ORDER_LINES))  # stores S1 and S2
    responses = tea.run("responses", answers)

    assert (members.loaded, members.rejected) == (1, 0)  # A1's mobile, but in another tenant
    assert (sales.loaded, sales.rejected) == (4, 0)
    assert (responses.loaded, responses.skipped) == (1, 0)
    assert view(tea, "B1").mobile == "+8613812345678"
    assert (tea.count(Member), other.count(Member)) == (4, 3)


def test_every_import_but_sales_is_recorded_as_a_run(tea: Tenant, files: Files) -> None:
    path = members_file(files, *MEMBERS, ["B1", "12345", "", "", "", "", "", ""])

    tea.run("members", path)

    with tea.state.database.session(tenant_id=tea.id) as session:
        run = session.scalar(select(ImportRun))
        assert run is not None
        assert (run.kind, run.file_name, run.rows, run.applied, run.rejected, run.status) == (
            "members", "members.csv", 4, 3, 1, "done",
        )  # fmt: skip
        assert len(run.file_sha256) == 64
