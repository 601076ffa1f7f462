"""Members (``memberlab.members.service``): enrol, find, search, change and erase.

Every test runs with the test secret configured, so personal fields are sealed at rest; the
raw rows are read with plain SQL to prove it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from conftest import FixedClock
from factories import make_tenant
from memberlab.core.app_state import AppState
from memberlab.core.errors import Conflict, InvalidInput, MemberLabError
from memberlab.core.pii import PersonalDataVault
from memberlab.members import service
from memberlab.members.models import Member as MemberRow
from memberlab.members.schemas import Member, MemberCreate, MemberStatus, MemberUpdate

ZHANG = {
    "member_id": "M-001",
    "mobile": "138 1234 5678",
    "name": "张小明",
    "birthday": "1990-05-17",
    "gender": "male",
    "city": "上海",
    "external_id": "wx-openid-1",
    "tags": ["vip", "coffee", "vip"],
    "consents": {"sms": True, "email": False},
}


class Members:
    """One tenant's members, driven through the service as the API and CLI drive it."""

    def __init__(self, state: AppState, tenant_id: int, timezone: str = "Asia/Shanghai") -> None:
        self.state = state
        self.tenant_id = tenant_id
        self.ctx = service.MemberContext(vault=state.vault, timezone=timezone)

    def session(self) -> Any:
        return self.state.database.session(tenant_id=self.tenant_id)

    def enrol(self, **fields: Any) -> Member:
        with self.session() as session:
            member = service.enrol(
                session, MemberCreate(**fields), ctx=self.ctx, now=self.state.clock()
            )
            return service.view(session, member, ctx=self.ctx, reveal=True)

    def update(self, member_id: str, **fields: Any) -> Member:
        with self.session() as session:
            member = service.update(
                session,
                member_id,
                MemberUpdate.model_validate(fields),
                ctx=self.ctx,
                now=self.state.clock(),
            )
            return service.view(session, member, ctx=self.ctx, reveal=True)

    def erase(self, member_id: str) -> Member:
        with self.session() as session:
            member = service.erase(session, member_id, now=self.state.clock())
            return service.view(session, member, ctx=self.ctx, reveal=True)

    def show(self, member_id: str, *, reveal: bool = True) -> Member:
        with self.session() as session:
            member = service.get(session, member_id)
            return service.view(session, member, ctx=self.ctx, reveal=reveal)

    def search(self, **criteria: Any) -> list[str]:
        with self.session() as session:
            return [m.member_id for m in service.search(session, ctx=self.ctx, **criteria)]

    def count(self) -> int:
        with self.session() as session:
            return session.scalar(select(func.count()).select_from(MemberRow)) or 0

    def raw_row(self, member_id: str) -> dict[str, Any]:
        """The stored row as plain SQL returns it (no ORM, no vault)."""
        row = self.state.database.bind.execute(
            text("SELECT * FROM members WHERE tenant_id = :t AND member_id = :m"),
            {"t": self.tenant_id, "m": member_id},
        ).one()
        return dict(row._mapping)


@pytest.fixture
def members(state: AppState) -> Members:
    return Members(state, make_tenant(state).tenant.id)


def raised(call: Any, *args: Any, **kwargs: Any) -> MemberLabError:
    with pytest.raises(MemberLabError) as caught:
        call(*args, **kwargs)
    return caught.value


def rendered(error: MemberLabError, lang: str = "en") -> list[str]:
    return [e.render(lang) for e in error.errors]


# --- enrol and get --------------------------------------------------------------------------------


def test_enrol_stores_the_profile_and_normalises_it(members: Members, clock: FixedClock) -> None:
    member = members.enrol(**ZHANG)

    assert member.model_dump() == {
        "member_id": "M-001",
        "external_id": "wx-openid-1",
        "mobile": "+8613812345678",
        "name": "张小明",
        "birthday": date(1990, 5, 17),
        "gender": "male",
        "city": "上海",
        "language": None,
        "enrolled_at": clock(),
        "enrol_channel": None,
        "enrol_store": None,
        "consents": {"sms": True, "email": False},
        "tags": ["coffee", "vip"],
        "status": "active",
        "erased": False,
        "created_at": clock(),
        "updated_at": clock(),
    }
    assert members.show("M-001") == member


def test_a_member_number_is_generated_when_not_given(members: Members) -> None:
    first = members.enrol(mobile="13812345678")
    second = members.enrol()

    for member in (first, second):
        assert member.member_id.startswith("M")
        assert len(member.member_id) == 12
        assert member.member_id[1:].isdigit()
    assert first.member_id != second.member_id


def test_enrolled_at_without_a_zone_is_read_in_the_tenants_zone(members: Members) -> None:
    member = members.enrol(enrolled_at="2026-01-02T09:30:00")

    assert member.enrolled_at == datetime(2026, 1, 2, 1, 30, tzinfo=UTC)


def test_an_unknown_member_is_not_found(members: Members) -> None:
    error = raised(members.show, "NOPE")

    assert isinstance(error, service.MemberNotFound)
    assert error.status == 404
    assert error.message("en") == "No member NOPE."
    assert error.message("zh-CN") == "会员 NOPE 不存在。"


def test_another_tenants_member_is_not_found(state: AppState, members: Members) -> None:
    members.enrol(**ZHANG)
    other = Members(state, make_tenant(state, slug="other").tenant.id)

    assert isinstance(raised(other.show, "M-001"), service.MemberNotFound)
    assert other.search(mobile="13812345678") == []
    assert other.enrol(**ZHANG).member_id == "M-001"  # numbers are per tenant


# --- search ---------------------------------------------------------------------------------------


@pytest.fixture
def three(members: Members) -> Members:
    members.enrol(member_id="A1", mobile="13812345678", external_id="ext-a", tags=["vip"])
    members.enrol(member_id="B2", mobile="13900001111", tags=["vip", "tea"])
    members.enrol(member_id="C3", mobile="+44 7911 123456", tags=["tea"])
    members.update("C3", status="frozen")
    return members


@pytest.mark.parametrize(
    "mobile",
    [
        "13812345678",
        "138 1234 5678",
        "+86-138-1234-5678",
        "+86 138 1234 5678",
        "0086 138 1234 5678",
        "１３８１２３４５６７８",
        "１３８－１２３４－５６７８",
    ],
)
def test_search_by_mobile_in_any_format_of_the_same_number(three: Members, mobile: str) -> None:
    assert three.search(mobile=mobile) == ["A1"]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({}, ["A1", "B2", "C3"]),
        ({"member_id": "B2"}, ["B2"]),
        ({"member_id": "b2"}, []),
        ({"external_id": "ext-a"}, ["A1"]),
        ({"mobile": "+447911123456"}, ["C3"]),
        ({"mobile": "13700000000"}, []),
        ({"tag": "vip"}, ["A1", "B2"]),
        ({"tag": "tea"}, ["B2", "C3"]),
        ({"tag": "nobody"}, []),
        ({"status": MemberStatus.ACTIVE}, ["A1", "B2"]),
        ({"status": MemberStatus.FROZEN}, ["C3"]),
        ({"tag": "tea", "status": MemberStatus.ACTIVE}, ["B2"]),
        ({"tag": "vip", "mobile": "13900001111"}, ["B2"]),
    ],
)
def test_search_matches_every_criterion_given(
    three: Members, criteria: dict[str, Any], expected: list[str]
) -> None:
    assert three.search(**criteria) == expected


def test_search_by_a_malformed_mobile_is_refused(three: Members) -> None:
    error = raised(three.search, mobile="12345")

    assert isinstance(error, InvalidInput)
    assert rendered(error) == [
        "mobile: is not a valid mobile number (mainland China, or international with +country code)"
    ]


def test_search_pages_with_a_cursor(members: Members) -> None:
    for n in range(1, 6):
        members.enrol(member_id=f"P{n}")
    with members.session() as session:
        pages: list[list[str]] = []
        after = None
        while True:
            page = service.search(session, ctx=members.ctx, after=after, limit=2)
            if not page:
                break
            pages.append([m.member_id for m in page])
            after = page[-1].id

    assert pages == [["P1", "P2"], ["P3", "P4"], ["P5"]]


# --- update ---------------------------------------------------------------------------------------


def test_update_changes_only_the_fields_given(members: Members, clock: FixedClock) -> None:
    before = members.enrol(**ZHANG)
    clock.now += timedelta(hours=1)

    after = members.update("M-001", city="杭州", tags=["tea"])

    assert after.city == "杭州"
    assert after.tags == ["tea"]
    assert after.updated_at == clock()
    unchanged = {"city", "tags", "updated_at"}
    assert after.model_dump(exclude=unchanged) == before.model_dump(exclude=unchanged)


def test_update_with_null_clears_a_field(members: Members) -> None:
    members.enrol(**ZHANG)

    after = members.update(
        "M-001",
        mobile=None,
        name=None,
        birthday=None,
        city=None,
        external_id=None,
        gender=None,
        tags=None,
        consents=None,
    )

    assert (after.mobile, after.name, after.birthday, after.city) == (None, None, None, None)
    assert (after.external_id, after.gender, after.tags, after.consents) == (None, None, [], {})
    assert after.status == "active"
    row = members.raw_row("M-001")
    assert row["mobile_index"] is None
    assert row["mobile_masked"] is None
    assert row["birthday_month_day"] is None


def test_update_merges_consents(members: Members) -> None:
    members.enrol(**ZHANG)

    after = members.update("M-001", consents={"email": True, "wechat": True})

    assert after.consents == {"sms": True, "email": True, "wechat": True}


def test_update_normalises_a_new_mobile_and_finds_it(members: Members) -> None:
    members.enrol(**ZHANG)

    after = members.update("M-001", mobile="+86 139 0000 1111")

    assert after.mobile == "+8613900001111"
    assert members.search(mobile="13900001111") == ["M-001"]
    assert members.search(mobile="13812345678") == []


def test_update_to_the_members_own_mobile_is_not_a_conflict(members: Members) -> None:
    members.enrol(**ZHANG)

    assert members.update("M-001", mobile="+8613812345678").mobile == "+8613812345678"


@pytest.mark.parametrize(
    ("field", "value"), [("mobile", "138-1234-5678"), ("external_id", "wx-openid-1")]
)
def test_update_to_another_members_identifier_is_a_conflict(
    members: Members, field: str, value: str
) -> None:
    members.enrol(**ZHANG)
    members.enrol(member_id="M-002", mobile="13900001111", external_id="wx-openid-2")

    error = raised(members.update, "M-002", **{field: value})

    assert isinstance(error, service.MemberConflict)
    assert rendered(error) == [f"{field}: is already used by member M-001"]
    assert members.show("M-002").external_id == "wx-openid-2"
    assert members.show("M-002").mobile == "+8613900001111"


def test_an_unknown_field_cannot_be_updated(members: Members) -> None:
    with pytest.raises(ValueError, match="member_id"):
        MemberUpdate.model_validate({"member_id": "NEW"})


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"mobile": "12345"},
            {
                "en": "mobile: is not a valid mobile number (mainland China, or international "
                "with +country code)",
                "zh-CN": "mobile: 不是有效的手机号（中国大陆号码，或带 +国家代码的国际号码）",
            },
        ),
        (
            {"mobile": "010 1234 5678"},  # a landline, not a mobile
            {
                "en": "mobile: is not a valid mobile number (mainland China, or international "
                "with +country code)",
                "zh-CN": "mobile: 不是有效的手机号（中国大陆号码，或带 +国家代码的国际号码）",
            },
        ),
        (
            {"birthday": "2026-11-26"},
            {
                "en": "birthday: is not a possible birthday (got 2026-11-26)",
                "zh-CN": "birthday: 不是可能的生日（实际为 2026-11-26）",
            },
        ),
        (
            {"birthday": "1899-12-31"},
            {
                "en": "birthday: is not a possible birthday (got 1899-12-31)",
                "zh-CN": "birthday: 不是可能的生日（实际为 1899-12-31）",
            },
        ),
        (
            {"enrolled_at": "2026-11-25T16:00:01+08:00"},
            {
                "en": "enrolled_at: is in the future (got 2026-11-25T16:00:01+08:00)",
                "zh-CN": "enrolled_at: 不能是将来的时间（实际为 2026-11-25T16:00:01+08:00）",
            },
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    members: Members, fields: dict[str, Any], expected: dict[str, str]
) -> None:
    error = raised(members.enrol, member_id="M-BAD", **fields)

    assert isinstance(error, InvalidInput)
    assert error.status == 422
    assert rendered(error, "en") == [expected["en"]]
    assert rendered(error, "zh-CN") == [expected["zh-CN"]]
    assert members.count() == 0


def test_every_mistake_is_reported_at_once(members: Members) -> None:
    error = raised(
        members.enrol, mobile="12345", birthday="2030-01-01", enrolled_at="2030-01-01T00:00:00Z"
    )

    assert [e.loc for e in error.errors] == ["mobile", "birthday", "enrolled_at"]
    assert members.count() == 0


def test_a_birthday_is_in_the_future_by_the_tenants_calendar(
    members: Members, clock: FixedClock
) -> None:
    # 01:00 on 26 November in Shanghai is still 25 November in UTC.
    clock.now = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)

    born_today = members.enrol(member_id="BABY", birthday="2026-11-26")
    error = raised(members.enrol, member_id="LATER", birthday="2026-11-27")

    assert born_today.birthday == date(2026, 11, 26)
    assert rendered(error) == ["birthday: is not a possible birthday (got 2026-11-27)"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("member_id", "M-001"), ("external_id", "wx-openid-1"), ("mobile", "+86 138 1234 5678")],
)
def test_a_taken_identifier_is_a_conflict_naming_the_other_member(
    members: Members, field: str, value: str
) -> None:
    members.enrol(**ZHANG)

    error = raised(members.enrol, **{"member_id": "M-002", field: value})

    assert isinstance(error, Conflict)
    assert error.status == 409
    assert error.message("en") == "Another member already has this:"
    assert error.message("zh-CN") == "已有其他会员使用了以下信息："
    assert rendered(error, "en") == [f"{field}: is already used by member M-001"]
    assert rendered(error, "zh-CN") == [f"{field}: 已被会员 M-001 使用"]
    assert members.count() == 1


# --- personal data --------------------------------------------------------------------------------


def test_personal_data_is_not_stored_in_clear(members: Members) -> None:
    members.enrol(**ZHANG)

    row = members.raw_row("M-001")
    stored = " ".join(str(value) for value in row.values())

    for secret in ("13812345678", "8613812345678", "张小明", "小明", "1990-05-17", "1990"):
        assert secret not in stored
    for column in ("mobile_sealed", "name_sealed", "birthday_sealed"):
        assert row[column].startswith("enc1:")
    # What stays readable, on purpose: the masked mobile for lists, and the birthday's month
    # and day for the birthday bonus.
    assert row["mobile_masked"] == "138****5678"
    assert row["birthday_month_day"] == "05-17"


def test_the_mobile_index_depends_on_the_secret(members: Members) -> None:
    members.enrol(**ZHANG)

    row = members.raw_row("M-001")

    assert row["mobile_index"] == members.state.vault.index("+8613812345678")
    assert row["mobile_index"] != PersonalDataVault("another-secret").index("+8613812345678")
    assert row["mobile_index"] != PersonalDataVault(None).index("+8613812345678")


def test_lists_show_personal_data_masked(members: Members) -> None:
    members.enrol(**ZHANG)
    members.enrol(member_id="M-002", mobile="+44 7911 123456", name="Alice Smith")

    with members.session() as session:
        views = [
            service.view(session, m, ctx=members.ctx, reveal=False)
            for m in service.search(session, ctx=members.ctx)
        ]

    assert [(v.mobile, v.name, v.birthday) for v in views] == [
        ("138****5678", "张**", None),
        ("+4479****3456", "A**********", None),
    ]


def test_revealed_view_shows_everything(members: Members) -> None:
    members.enrol(**ZHANG)

    revealed = members.show("M-001", reveal=True)
    masked = members.show("M-001", reveal=False)

    assert (revealed.mobile, revealed.name, revealed.birthday) == (
        "+8613812345678",
        "张小明",
        date(1990, 5, 17),
    )
    assert (masked.mobile, masked.name, masked.birthday) == ("138****5678", "张**", None)


# --- erase ----------------------------------------------------------------------------------------


@pytest.fixture
def erased(members: Members, clock: FixedClock) -> Members:
    members.enrol(**ZHANG, language="zh-CN", enrol_channel="wechat", enrol_store="SH-01")
    clock.now += timedelta(days=30)
    members.erase("M-001")
    return members


def test_erase_removes_personal_data_from_the_row(erased: Members, clock: FixedClock) -> None:
    row = erased.raw_row("M-001")

    personal = (
        "external_id",
        "mobile_sealed",
        "mobile_index",
        "mobile_masked",
        "name_sealed",
        "birthday_sealed",
        "birthday_month_day",
        "gender",
        "city",
    )
    assert {column: row[column] for column in personal} == dict.fromkeys(personal)
    assert row["status"] == "closed"
    assert row["consents"] in ({}, "{}")
    with erased.state.database.session(tenant_id=erased.tenant_id) as session:
        assert service.tags_of(session, service.get(session, "M-001")) == []


def test_an_erased_member_keeps_its_number_and_history(erased: Members, clock: FixedClock) -> None:
    member = erased.show("M-001")

    assert member.erased
    assert member.status == "closed"
    assert member.enrolled_at == clock() - timedelta(days=30)
    assert member.enrol_channel == "wechat"
    assert (member.mobile, member.name, member.birthday, member.tags) == (None, None, None, [])


def test_erasing_twice_is_a_no_op(erased: Members, clock: FixedClock) -> None:
    first = erased.show("M-001")
    clock.now += timedelta(days=1)

    again = erased.erase("M-001")

    assert again == first
    assert again.updated_at == clock() - timedelta(days=1)


def test_an_erased_member_cannot_be_updated(erased: Members) -> None:
    error = raised(erased.update, "M-001", name="张小明")

    assert isinstance(error, Conflict)
    assert error.message("en") == "Member M-001 has been erased and cannot be changed."
    assert error.message("zh-CN") == "会员 M-001 的个人信息已删除，无法修改。"
    assert erased.raw_row("M-001")["name_sealed"] is None


def test_an_erased_members_identifiers_are_free_again(erased: Members) -> None:
    newcomer = erased.enrol(member_id="M-002", mobile="13812345678", external_id="wx-openid-1")

    assert erased.search(mobile="138 1234 5678") == ["M-002"]
    assert newcomer.external_id == "wx-openid-1"


def test_erasing_an_unknown_member_is_not_found(members: Members) -> None:
    assert isinstance(raised(members.erase, "NOPE"), service.MemberNotFound)
