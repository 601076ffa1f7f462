"""The live ledger through the API: purchases, returns, redemptions, coupons, adjustments,
paid plans, jobs, the member's points and history, the liability, and bad input.

Each tenant runs a shipped sample program, in force since 1 January 2025; the clock stands
at 2026-11-25 16:00 in Shanghai (``conftest.FIXED_NOW``). Every write is checked for what it
answers *and* for what it leaves in the store: a replay or a refusal writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import FixedClock
from factories import TenantWithKeys, make_tenant, run_program
from memberlab.core.app_state import AppState
from memberlab.datasets.demo import sample_program_text
from memberlab.ledger.models import (
    IdempotencyRecord,
    LedgerEntry,
    Order,
    OrderReturn,
    PointsLot,
    Posting,
)
from memberlab.ledger.models import MemberState as MemberStateRow
from memberlab.members.models import Member
from memberlab.rewards.models import Coupon, Redemption, RewardStock
from memberlab.webhooks.models import OutboxEvent
from problems import assert_problem

API = "/api/v1"
TEAHOUSE = sample_program_text("teahouse")
DEPARTMENT_STORE = sample_program_text("department_store")
PROGRAM_FROM = "2025-01-01T00:00:00+08:00"
TABLES = (
    Member,
    MemberStateRow,
    LedgerEntry,
    Posting,
    PointsLot,
    Order,
    OrderReturn,
    Redemption,
    Coupon,
    RewardStock,
    IdempotencyRecord,
    OutboxEvent,
)


# --- set-up ------------------------------------------------------------------------------------


@pytest.fixture
def tea(state: AppState, client: TestClient) -> TenantWithKeys:
    """A tea chain on the teahouse sample: enrols a member on the first purchase."""
    tenant = make_tenant(state, slug="tea", name_zh="茶语", name_en="Teahouse")
    run_program(client, tenant, TEAHOUSE, effective_from=PROGRAM_FROM)
    return tenant


@pytest.fixture
def dept(state: AppState, client: TestClient) -> TenantWithKeys:
    """A department store on its sample: members must sign up first; D-1 has."""
    tenant = make_tenant(state, slug="dept", name_zh="恒悦", name_en="Hengyue")
    run_program(client, tenant, DEPARTMENT_STORE, effective_from=PROGRAM_FROM)
    enrol(client, tenant, "D-1", "2026-01-05T10:00:00+08:00")
    return tenant


def enrol(client: TestClient, tenant: TenantWithKeys, member_id: str, when: str, **extra: Any):
    response = client.post(
        f"{API}/members",
        json={"member_id": member_id, "enrolled_at": when, **extra},
        headers=tenant.headers(),
    )
    assert response.status_code == 201, response.text


def purchase(
    member_id: str, order_id: str, when: str, *lines: tuple[str, str, str], **extra: Any
) -> dict[str, Any]:
    """A purchase body; lines are (sku, category, amount in yuan)."""
    return {
        "member_id": member_id,
        "order_id": order_id,
        "occurred_at": when,
        "channel": "store",
        "lines": [{"sku": s, "category": c, "amount": a} for s, c, a in lines],
        **extra,
    }


def post(
    client: TestClient,
    tenant: TenantWithKeys,
    path: str,
    body: dict[str, Any],
    *,
    key: str | None = None,
    lang: str = "en",
):
    headers = tenant.headers(lang=lang)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(f"{API}{path}", json=body, headers=headers)


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()


def give(client: TestClient, tenant: TenantWithKeys, member_id: str, points: int, key: str):
    return created(
        post(
            client,
            tenant,
            f"/members/{member_id}/adjustments",
            {"points": points, "reason": "test points"},
            key=key,
        )
    )


def rows(state: AppState, tenant: TenantWithKeys) -> dict[str, int]:
    """How many rows of each ledger table the tenant has."""
    with state.database.session(tenant_id=tenant.tenant.id) as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in TABLES
        }


def points_of(client: TestClient, tenant: TenantWithKeys, member_id: str) -> dict[str, Any]:
    response = client.get(f"{API}/members/{member_id}/points", headers=tenant.headers())
    assert response.status_code == 200, response.text
    return response.json()


def test_the_next_tier_is_above_the_one_held_even_when_the_window_has_fallen_below_it(
    client: TestClient, tea: TenantWithKeys
) -> None:
    """Teahouse: Green Leaf from 800 growth over 12 rolling months, kept at the anniversary
    review from 600. N1 (enrolled 2024-12-01) reaches 810 on 2025-11-30 (505 + 305: spend
    plus 5 an order) and keeps the tier at the 2025-12-01 review. On 2026-11-25 only what
    came after 2025-11-25 counts: 305, below Green Leaf's 800, and the next tier is Golden
    Bud (2,500), 2,195 to go, not the Green Leaf N1 already holds."""
    enrol(client, tea, "N1", "2024-12-01T10:00:00+08:00")
    created(post(client, tea, "/purchases", purchase("N1", "N1-a", "2025-01-10T10:00:00+08:00",
                                                     ("tea-1", "tea", "500.00"))))  # fmt: skip
    created(post(client, tea, "/purchases", purchase("N1", "N1-b", "2025-11-30T10:00:00+08:00",
                                                     ("tea-1", "tea", "300.00"))))  # fmt: skip
    view = points_of(client, tea, "N1")
    assert (view["tier"], view["qualifying"]) == ("green_leaf", "305")
    assert (view["next_tier"], view["next_tier_name"], view["to_next_tier"]) == (
        "golden_bud",
        "Golden Bud",
        "2195",
    )


# --- purchases ---------------------------------------------------------------------------------


def test_a_purchase_earns_points_and_explains_them(client: TestClient, tea: TenantWithKeys) -> None:
    # 8 November is member day: 58 yuan of tea -> 58 x2 = 116 points, pending 3 days;
    # growth 58 + 5. The customer is new: the purchase enrols them (200 welcome points).
    body = purchase("T-1", "o-1", "2026-11-08T12:00:00+08:00", ("oolong", "tea", "58.00"))
    answer = created(post(client, tea, "/purchases", body))

    assert answer == {
        "order_id": "o-1",
        "member_id": "T-1",
        "enrolled": True,
        "points_earned": 116,
        "points_pending": True,
        "points_used": 0,
        "growth_earned": 63,
        "tier_before": "sprout",
        "tier_after": "sprout",
        "coupon_code": None,
        "explanation": [
            {"rule": "base", "points": 58},
            {"rule": "multiplier:member_day", "points": 58},
        ],
        "balances": {"available": 200, "pending": 116, "debt": 0},
    }
    # by now (25 November) the 116 points are released
    assert points_of(client, tea, "T-1")["balances"] == {"available": 316, "pending": 0, "debt": 0}


def test_the_same_order_id_with_the_same_body_returns_the_first_answer(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    body = purchase("T-1", "o-1", "2026-11-20T12:00:00+08:00", ("oolong", "tea", "58.00"))
    first = post(client, tea, "/purchases", body)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    before = rows(state, tea)

    again = post(client, tea, "/purchases", body)

    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert rows(state, tea) == before


def test_the_same_order_id_with_another_body_is_a_conflict(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    body = purchase("T-1", "o-1", "2026-11-20T12:00:00+08:00", ("oolong", "tea", "58.00"))
    created(post(client, tea, "/purchases", body))
    before = rows(state, tea)

    changed = {**body, "lines": [{"sku": "oolong", "category": "tea", "amount": "59.00"}]}
    en = assert_problem(
        post(client, tea, "/purchases", changed), 409, "ledger.idempotency_conflict"
    )
    zh = assert_problem(
        post(client, tea, "/purchases", changed, lang="zh-CN"), 409, "ledger.idempotency_conflict"
    )

    assert en["detail"] == "The key o-1 was already used for a different purchase request."
    assert zh["detail"] == "幂等键 o-1 已用于另一个不同的 purchase 请求。"
    assert rows(state, tea) == before


# --- returns -----------------------------------------------------------------------------------


@pytest.fixture
def two_lines(client: TestClient, tea: TenantWithKeys) -> dict[str, Any]:
    # tea 60 + scone 50 = 110 yuan: 60 + 50 points + 50 for an order of 100 yuan = 160;
    # growth 110 + 5 = 115
    body = purchase(
        "T-1",
        "o-2",
        "2026-11-20T12:00:00+08:00",
        ("tea", "tea", "60.00"),
        ("scone", "bakery", "50.00"),
    )
    answer = created(post(client, tea, "/purchases", body))
    assert (answer["points_earned"], answer["growth_earned"]) == (160, 115)
    return answer


def test_a_full_return_takes_back_everything_the_order_earned(
    client: TestClient, tea: TenantWithKeys, two_lines: dict[str, Any], state: AppState
) -> None:
    body = {"return_id": "r-1", "order_id": "o-2", "occurred_at": "2026-11-22T12:00:00+08:00"}
    answer = created(post(client, tea, "/returns", body))

    assert answer["points_reversed"] == 160
    assert answer["growth_reversed"] == 115
    assert answer["balances"] == {"available": 200, "pending": 0, "debt": 0}

    # sent again (a retry), the same answer; nothing taken twice
    before = rows(state, tea)
    replayed = post(client, tea, "/returns", body)
    assert (replayed.headers["Idempotent-Replayed"], replayed.json()) == ("true", answer)
    assert rows(state, tea) == before

    # and nothing is left to return
    again = {**body, "return_id": "r-2"}
    problem = assert_problem(post(client, tea, "/returns", again), 409, "ledger.already_returned")
    assert problem["detail"] == "Everything in order o-2 has already been returned."


def test_a_partial_return_by_sku_takes_back_that_line_and_the_lost_bonus(
    client: TestClient, tea: TenantWithKeys, two_lines: dict[str, Any]
) -> None:
    # the scone: its 50 points, and the 50 bonus as 60 yuan kept is below 100
    body = {
        "return_id": "r-1",
        "order_id": "o-2",
        "occurred_at": "2026-11-21T12:00:00+08:00",
        "lines": [{"sku": "scone"}],
    }
    answer = created(post(client, tea, "/returns", body))

    assert (answer["points_reversed"], answer["growth_reversed"]) == (100, 50)
    assert answer["balances"] == {"available": 200, "pending": 60, "debt": 0}


def test_returning_more_than_was_bought_is_refused_with_the_counts(
    client: TestClient, tea: TenantWithKeys, two_lines: dict[str, Any], state: AppState
) -> None:
    before = rows(state, tea)
    body = {
        "return_id": "r-1",
        "order_id": "o-2",
        "occurred_at": "2026-11-21T12:00:00+08:00",
        "lines": [{"sku": "scone", "quantity": 2}],
    }
    en = assert_problem(post(client, tea, "/returns", body), 409, "ledger.return_too_much")
    zh = assert_problem(
        post(client, tea, "/returns", body, lang="zh-CN"), 409, "ledger.return_too_much"
    )

    assert en["detail"] == "scone: 2 more cannot be returned (1 bought, 0 already returned)"
    assert zh["detail"] == "scone：不能再退 2 件（购买 1 件，已退 0 件）"
    assert rows(state, tea) == before


def test_returning_a_sku_not_in_the_order_names_the_line(
    client: TestClient, tea: TenantWithKeys, two_lines: dict[str, Any], state: AppState
) -> None:
    before = rows(state, tea)
    body = {
        "return_id": "r-1",
        "order_id": "o-2",
        "occurred_at": "2026-11-21T12:00:00+08:00",
        "lines": [{"sku": "muffin"}],
    }
    problem = assert_problem(post(client, tea, "/returns", body), 422, "core.error.invalid_input")

    assert problem["errors"] == [
        {
            "field": "lines[0].sku",
            "code": "ledger.v.unknown_sku",
            "message": "order o-2 has no line with SKU muffin",
        }
    ]
    assert rows(state, tea) == before


def test_a_return_of_an_unknown_order_is_not_found(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    before = rows(state, tea)
    body = {"return_id": "r-1", "order_id": "nope", "occurred_at": "2026-11-21T12:00:00+08:00"}
    en = assert_problem(post(client, tea, "/returns", body), 404, "ledger.order_not_found")
    zh = assert_problem(
        post(client, tea, "/returns", body, lang="zh-CN"), 404, "ledger.order_not_found"
    )

    assert (en["detail"], zh["detail"]) == ("No order nope.", "订单 nope 不存在。")
    assert rows(state, tea) == before


def test_a_return_after_the_window_is_refused(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    # the teahouse takes returns for 7 days: an order of 10 November can come back until
    # 17 November 12:00
    body = purchase("T-1", "o-3", "2026-11-10T12:00:00+08:00", ("tea", "tea", "30.00"))
    created(post(client, tea, "/purchases", body))
    before = rows(state, tea)

    late = {"return_id": "r-3", "order_id": "o-3", "occurred_at": "2026-11-18T12:00:00+08:00"}
    problem = assert_problem(post(client, tea, "/returns", late), 409, "ledger.return_window")

    assert problem["detail"] == "Order o-3 is past its 7-day return window."
    assert rows(state, tea) == before


def test_a_purchase_posted_late_is_released_after_its_pending_days(
    client: TestClient, tea: TenantWithKeys
) -> None:
    # T-1 buys on 24 November (30 points, pending until 27 November); then a till that was
    # offline posts an order of 10 November (50 points, pending until 13 November).
    for order_id, when, amount in (
        ("o-24", "2026-11-24T12:00:00+08:00", "30.00"),
        ("o-10", "2026-11-10T12:00:00+08:00", "50.00"),
    ):
        created(
            post(client, tea, "/purchases", purchase("T-1", order_id, when, ("t", "tea", amount)))
        )

    # on 25 November the order of the 10th is long past its 3 pending days
    assert points_of(client, tea, "T-1")["balances"] == {
        "available": 200 + 50,
        "pending": 30,
        "debt": 0,
    }


# --- redemptions and coupons -------------------------------------------------------------------


def test_a_redemption_spends_points_and_respects_the_per_member_limit(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    enrol(client, tea, "T-1", "2026-11-01T10:00:00+08:00")
    give(client, tea, "T-1", 20000, "grant-1")  # 200 welcome + 20000

    # the tumbler: 6800 points, at most 2 per member
    first = created(
        post(
            client, tea, "/members/T-1/redemptions", {"reward": "tumbler", "quantity": 2}, key="k1"
        )
    )
    assert (first["points"], first["available"]) == (13600, 6600)

    before = rows(state, tea)
    problem = assert_problem(
        post(client, tea, "/members/T-1/redemptions", {"reward": "tumbler"}, key="k2"),
        409,
        "rewards.member_limit",
    )
    assert problem["detail"] == "Reward tumbler is limited to 2 per member (2 already taken)."
    assert rows(state, tea) == before


def test_a_redemption_beyond_the_balance_is_refused(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    enrol(client, tea, "T-1", "2026-11-01T10:00:00+08:00")
    before = rows(state, tea)

    en = assert_problem(
        post(client, tea, "/members/T-1/redemptions", {"reward": "tumbler"}, key="k1"),
        409,
        "ledger.insufficient_points",
    )
    zh = assert_problem(
        post(
            client, tea, "/members/T-1/redemptions", {"reward": "tumbler"}, key="k1", lang="zh-CN"
        ),
        409,
        "ledger.insufficient_points",
    )

    # the member has only the 200 welcome points
    assert en["detail"] == "Not enough points: 6800 asked, 200 available."
    assert zh["detail"] == "积分不足：需要 6800，可用 200。"
    assert rows(state, tea) == before


def test_a_redemption_replayed_with_its_key_spends_once(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    enrol(client, tea, "T-1", "2026-11-01T10:00:00+08:00")
    give(client, tea, "T-1", 2000, "grant-1")  # 200 + 2000
    body = {"reward": "free_drink"}  # 1800 points
    first = created(post(client, tea, "/members/T-1/redemptions", body, key="same"))
    before = rows(state, tea)

    again = post(client, tea, "/members/T-1/redemptions", body, key="same")

    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
    assert again.json() == first
    assert rows(state, tea) == before
    assert points_of(client, tea, "T-1")["balances"]["available"] == 2200 - 1800

    # the same key for another reward is a conflict
    other = post(client, tea, "/members/T-1/redemptions", {"reward": "coupon_5"}, key="same")
    assert_problem(other, 409, "ledger.idempotency_conflict")


def test_a_write_without_an_idempotency_key_is_refused_naming_the_header(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    enrol(client, tea, "T-1", "2026-11-01T10:00:00+08:00")
    before = rows(state, tea)

    for path, body in (
        ("/members/T-1/redemptions", {"reward": "coupon_5"}),
        ("/members/T-1/adjustments", {"points": 5, "reason": "r"}),
        ("/members/T-1/paid-plans", {"plan": "tea_pass"}),
    ):
        problem = assert_problem(post(client, tea, path, body), 422, "core.error.invalid_input")
        [error] = problem["errors"]
        assert error["field"] == "Idempotency-Key"
        assert error["message"] == (
            "is required for this write: send a unique key, and the same key when retrying"
        )
    assert rows(state, tea) == before


def test_a_reward_out_of_stock_is_refused(client: TestClient, state: AppState) -> None:
    # the teahouse sample with only 2 tumblers in stock
    limited = make_tenant(state, slug="limited")
    run_program(client, limited, TEAHOUSE.replace("stock: 500", "stock: 2"))
    for member in ("A", "B"):
        enrol(client, limited, member, "2026-11-01T10:00:00+08:00")
        give(client, limited, member, 20000, f"grant-{member}")

    created(
        post(
            client, limited, "/members/A/redemptions", {"reward": "tumbler", "quantity": 2}, key="a"
        )
    )
    before = rows(state, limited)
    problem = assert_problem(
        post(client, limited, "/members/B/redemptions", {"reward": "tumbler"}, key="b"),
        409,
        "rewards.out_of_stock",
    )

    assert problem["detail"] == "Reward tumbler is out of stock (0 left)."
    assert rows(state, limited) == before
    catalog = client.get(f"{API}/rewards", headers=limited.headers()).json()
    tumbler = next(item for item in catalog if item["code"] == "tumbler")
    assert (tumbler["issued"], tumbler["left"], tumbler["available"]) == (2, 0, False)


def test_a_reward_outside_its_dates_is_refused(client: TestClient, tea: TenantWithKeys) -> None:
    enrol(client, tea, "T-1", "2026-11-01T10:00:00+08:00")
    give(client, tea, "T-1", 20000, "grant-1")
    problem = assert_problem(
        post(client, tea, "/members/T-1/redemptions", {"reward": "spring_tea_tin"}, key="k"),
        409,
        "rewards.not_valid_now",
    )
    assert problem["detail"] == (
        "Reward spring_tea_tin can be redeemed only from 2026-03-20 to 2026-05-31."
    )


def test_a_coupon_reward_gives_a_coupon_used_once_at_checkout(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    enrol(client, tea, "T-1", "2026-11-01T10:00:00+08:00")
    give(client, tea, "T-1", 1000, "grant-1")
    redeemed = created(
        post(client, tea, "/members/T-1/redemptions", {"reward": "coupon_15_off_50"}, key="c1")
    )
    [coupon] = redeemed["coupons"]
    assert (coupon["value"], coupon["min_spend"], coupon["status"]) == ("15.00", "50.00", "issued")
    code = coupon["code"]

    # below the coupon's 50-yuan minimum: refused, nothing written
    before = rows(state, tea)
    small = purchase(
        "T-1", "o-small", "2026-11-25T12:00:00+08:00", ("tea", "tea", "30.00"), coupon_code=code
    )
    problem = assert_problem(
        post(client, tea, "/purchases", small), 409, "rewards.coupon_min_spend"
    )
    assert problem["detail"] == f"Coupon {code} needs an order of at least 50."
    assert rows(state, tea) == before

    # 60 yuan: the coupon is taken
    body = purchase(
        "T-1", "o-c1", "2026-11-25T12:00:00+08:00", ("tea", "tea", "60.00"), coupon_code=code
    )
    assert created(post(client, tea, "/purchases", body))["coupon_code"] == code
    [used] = client.get(f"{API}/members/T-1/coupons", headers=tea.headers()).json()
    assert (used["status"], used["used_order_id"]) == ("used", "o-c1")

    # a second order cannot use it again
    before = rows(state, tea)
    second = {**body, "order_id": "o-c2"}
    problem = assert_problem(post(client, tea, "/purchases", second), 409, "rewards.coupon_used")
    assert problem["detail"] == f"Coupon {code} was already used (order o-c1)."
    assert rows(state, tea) == before

    # nor can another member use someone's coupon
    other = {**body, "order_id": "o-c3", "member_id": "T-2"}
    problem = assert_problem(post(client, tea, "/purchases", other), 409, "rewards.coupon_unknown")
    assert problem["detail"] == f"Coupon {code} does not exist or belongs to another member."


# --- adjustments, bonuses, paid plans ----------------------------------------------------------


def test_an_adjustment_carries_its_reason_and_who_made_it(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    enrol(client, tea, "T-1", "2026-11-01T10:00:00+08:00")
    answer = created(
        post(
            client,
            tea,
            "/members/T-1/adjustments",
            {"points": 500, "reason": "门店系统故障补偿"},
            key="adj-1",
        )
    )

    entry = answer["entry"]
    assert (entry["kind"], entry["points"], entry["balance"]) == ("adjustment", 500, 700)
    assert entry["detail"]["reason"] == "门店系统故障补偿"
    assert entry["detail"]["actor"].startswith("key:")

    # a retry with the same key gives the same answer and no second adjustment
    before = rows(state, tea)
    retry = post(
        client,
        tea,
        "/members/T-1/adjustments",
        {"points": 500, "reason": "门店系统故障补偿"},
        key="adj-1",
    )
    assert (retry.headers["Idempotent-Replayed"], retry.json()) == ("true", answer)
    assert rows(state, tea) == before

    taken = created(
        post(
            client,
            tea,
            "/members/T-1/adjustments",
            {"points": -650, "reason": "duplicate order"},
            key="adj-2",
        )
    )
    assert taken["balances"] == {"available": 50, "pending": 0, "debt": 0}

    problem = assert_problem(
        post(
            client,
            tea,
            "/members/T-1/adjustments",
            {"points": -51, "reason": "too much"},
            key="adj-3",
        ),
        409,
        "ledger.insufficient_points",
    )
    assert problem["detail"] == "Not enough points: 51 asked, 50 available."


def test_a_review_bonus_is_idempotent_by_its_reference(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    enrol(client, tea, "T-1", "2026-11-01T10:00:00+08:00")
    body = {"type": "review", "reference": "review-88"}
    first = created(post(client, tea, "/members/T-1/bonuses", body))
    before = rows(state, tea)
    again = post(client, tea, "/members/T-1/bonuses", body)

    assert first["entry"]["points"] == 10
    assert again.headers["Idempotent-Replayed"] == "true"
    assert rows(state, tea) == before


def test_a_paid_plan_runs_for_its_months(client: TestClient, tea: TenantWithKeys) -> None:
    enrol(client, tea, "T-1", "2026-11-01T10:00:00+08:00")
    answer = created(post(client, tea, "/members/T-1/paid-plans", {"plan": "tea_pass"}, key="p-1"))

    assert answer["entry"]["kind"] == "paid_plan"
    assert answer["entry"]["detail"]["until"] == "2027-11-25T08:00:00+00:00"
    view = points_of(client, tea, "T-1")
    assert (view["plan"], view["plan_until"]) == ("tea_pass", "2027-11-25T08:00:00Z")
    # a retry does not extend it again
    retry = post(client, tea, "/members/T-1/paid-plans", {"plan": "tea_pass"}, key="p-1")
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert points_of(client, tea, "T-1")["plan_until"] == "2027-11-25T08:00:00Z"

    # with the Tea Pass, 100 yuan earns 100 x1.2 = 120 + 50 bonus
    body = purchase("T-1", "o-p", "2026-11-25T15:00:00+08:00", ("tea", "tea", "100.00"))
    bought = created(post(client, tea, "/purchases", body))
    assert bought["points_earned"] == 170
    assert {"rule": "plan:tea_pass", "points": 20} in bought["explanation"]


def test_an_unknown_paid_plan_names_the_plan_field(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    enrol(client, tea, "T-1", "2026-11-01T10:00:00+08:00")
    before = rows(state, tea)
    problem = assert_problem(
        post(client, tea, "/members/T-1/paid-plans", {"plan": "gold_pass"}, key="p-1"),
        422,
        "core.error.invalid_input",
    )
    assert rows(state, tea) == before
    assert problem["errors"] == [
        {
            "field": "plan",
            "code": "ledger.no_such_plan",
            "message": "this program has no paid plan gold_pass",
        }
    ]


# --- jobs --------------------------------------------------------------------------------------


def test_jobs_run_twice_for_the_same_moment_change_nothing(
    client: TestClient, tea: TenantWithKeys, state: AppState, clock: FixedClock
) -> None:
    # points earned in 2025 (expiring at the start of 2027), a birthday in December,
    # purchases still pending, tiers to review on enrolment anniversaries
    enrol(client, tea, "T-1", "2025-03-01T10:00:00+08:00")
    enrol(client, tea, "T-2", "2025-06-01T10:00:00+08:00", birthday="1990-12-20")
    for member, order_id, when, amount in (
        ("T-1", "j-1", "2025-03-08T12:00:00+08:00", "880.00"),
        ("T-2", "j-2", "2025-07-01T12:00:00+08:00", "120.00"),
        ("T-2", "j-3", "2026-11-24T12:00:00+08:00", "30.00"),
        ("T-3", "j-4", "2026-02-01T12:00:00+08:00", "2600.00"),
    ):
        body = purchase(member, order_id, when, ("t", "tea", amount))
        created(post(client, tea, "/purchases", body))

    clock.now = datetime(2027, 3, 5, tzinfo=UTC)
    jobs = {"as_of": "2027-03-02T00:00:00+08:00"}
    first = client.post(f"{API}/jobs/run", json=jobs, headers=tea.headers())
    assert first.status_code == 200, first.text
    report = first.json()
    # released: j-1, j-3 and j-4 (j-2 was released when T-2 bought j-3).
    # expired on 1 January 2027, all earned in 2025: T-1's 200 welcome + 1050 (880 yuan on
    # member day, capped at 1000, + 50); T-2's 200 + 170 (120 + 50) and the 300 of the
    # birthday of 20 December 2025 (given when j-3 brought T-2 up to date).
    # birthday: T-2's of 20 December 2026.
    # tiers: T-1 (Green Leaf since March 2025) has no growth in the year before
    # 1 March 2027: Sprout. T-3 keeps Golden Bud on 1 February 2027.
    skipped = ("as_of", "notices", "reviews", "engagement_reminders")
    assert {k: v for k, v in report.items() if k not in skipped} == {
        "members": 3,
        "released": 3,
        "expired": 5,
        "expired_points": 200 + 1050 + 200 + 170 + 300,
        "tier_changes": 1,
        "birthday_bonuses": 1,
    }
    after_first = rows(state, tea)
    balances = {m: points_of(client, tea, m)["balances"] for m in ("T-1", "T-2", "T-3")}
    assert balances == {
        "T-1": {"available": 0, "pending": 0, "debt": 0},
        "T-2": {"available": 30 + 300, "pending": 0, "debt": 0},
        "T-3": {"available": 200 + 1050, "pending": 0, "debt": 0},
    }

    second = client.post(f"{API}/jobs/run", json=jobs, headers=tea.headers())

    assert second.status_code == 200
    assert second.json()["members"] == 0
    assert second.json()["expired"] == second.json()["tier_changes"] == 0
    assert rows(state, tea) == after_first
    assert {m: points_of(client, tea, m)["balances"] for m in balances} == balances


def test_a_first_jobs_run_after_a_long_time_expires_birthday_points_given_in_that_run(
    client: TestClient, tea: TenantWithKeys, clock: FixedClock
) -> None:
    # T-1 joins on 1 March 2025 (birthday 20 December) and is not seen again until the
    # jobs run to 2 March 2027: birthday bonuses on 20 December 2025 and 2026; the 2025 one
    # expires with the welcome points on 1 January 2027. Left: the 2026 bonus, 300.
    enrol(client, tea, "T-1", "2025-03-01T10:00:00+08:00", birthday="1990-12-20")
    clock.now = datetime(2027, 3, 5, tzinfo=UTC)
    report = client.post(
        f"{API}/jobs/run", json={"as_of": "2027-03-02T00:00:00+08:00"}, headers=tea.headers()
    ).json()

    assert report["birthday_bonuses"] == 2
    assert (report["expired"], report["expired_points"]) == (2, 200 + 300)
    assert points_of(client, tea, "T-1")["balances"]["available"] == 300


def test_jobs_load_only_members_with_something_due(
    client: TestClient, tea: TenantWithKeys, state: AppState, clock: FixedClock
) -> None:
    # T-2 buys on 1 October and the jobs of 1 November release its points: nothing is due
    # for T-2 until a notice or a review. T-1 buys on 10 November: 100 points pending until
    # 13 November 12:00 (3 days).
    created(
        post(
            client,
            tea,
            "/purchases",
            purchase("T-2", "d-2", "2026-10-01T12:00:00+08:00", ("t", "tea", "100.00")),
        )
    )
    settled = client.post(
        f"{API}/jobs/run", json={"as_of": "2026-11-01T00:00:00+08:00"}, headers=tea.headers()
    ).json()
    assert (settled["members"], settled["released"]) == (1, 1)
    created(
        post(
            client,
            tea,
            "/purchases",
            purchase("T-1", "d-1", "2026-11-10T12:00:00+08:00", ("t", "tea", "100.00")),
        )
    )
    clock.now = datetime(2026, 11, 25, tzinfo=UTC)

    before_due = client.post(
        f"{API}/jobs/run", json={"as_of": "2026-11-13T11:00:00+08:00"}, headers=tea.headers()
    ).json()
    at_due = client.post(
        f"{API}/jobs/run", json={"as_of": "2026-11-13T13:00:00+08:00"}, headers=tea.headers()
    ).json()

    # an hour before the release nobody is loaded, yet every state has moved to that hour
    assert (before_due["members"], before_due["released"]) == (0, 0)
    # at the release only T-1 is loaded
    assert (at_due["members"], at_due["released"]) == (1, 1)
    assert points_of(client, tea, "T-1")["balances"]["pending"] == 0
    with state.database.session(tenant_id=tea.tenant.id) as session:
        moments = set(session.scalars(select(MemberStateRow.as_of)))
    assert moments == {datetime(2026, 11, 13, 5, 0, tzinfo=UTC)}


# --- reading: points, ledger, liability --------------------------------------------------------


@pytest.fixture
def history(client: TestClient, tea: TenantWithKeys) -> None:
    """T-1: a purchase, a partial return, a redemption, an adjustment, a newer purchase."""
    created(
        post(
            client,
            tea,
            "/purchases",
            purchase(
                "T-1",
                "h-1",
                "2026-11-10T12:00:00+08:00",
                ("tea", "tea", "500.00"),
                ("mug", "merch", "400.00"),
            ),
        )
    )
    created(
        post(
            client,
            tea,
            "/returns",
            {
                "return_id": "hr-1",
                "order_id": "h-1",
                "occurred_at": "2026-11-12T12:00:00+08:00",
                "lines": [{"sku": "mug"}],
            },
        )
    )
    created(post(client, tea, "/members/T-1/redemptions", {"reward": "coupon_5"}, key="hx-1"))
    give(client, tea, "T-1", 300, "hg-1")
    created(
        post(
            client,
            tea,
            "/purchases",
            purchase("T-1", "h-2", "2026-11-25T15:00:00+08:00", ("tea", "tea", "40.00")),
        )
    )


def test_the_member_view_shows_tier_balances_lots_and_last_entries(
    client: TestClient, tea: TenantWithKeys, history: None
) -> None:
    view = points_of(client, tea, "T-1")

    # 200 welcome + 950 (900 + 50 bonus) - 400 (the mug) - 500 (coupon) + 300 = 550
    # available; 40 pending from 25 November.
    assert view["balances"] == {"available": 550, "pending": 40, "debt": 0}
    assert view["tier"] == "sprout"  # Green Leaf on 10 November, lost with the mug
    assert view["growth_value"] == 905 - 400 + 45
    assert sum(lot["remaining"] for lot in view["lots"]) == 590
    assert {lot["expires_at"] for lot in view["lots"]} == {"2027-12-31T16:00:00Z"}
    assert [e["kind"] for e in view["last_entries"]] == [
        "purchase",
        "adjustment",
        "redemption",
        "release",
        "return",
        "purchase",
        "sign_up",
    ]


def test_the_ledger_running_balance_is_the_sum_of_the_entries(
    client: TestClient, tea: TenantWithKeys, history: None
) -> None:
    response = client.get(f"{API}/members/T-1/ledger", headers=tea.headers())
    assert response.status_code == 200
    entries = response.json()

    oldest_first = list(reversed(entries))
    total = 0
    for entry in oldest_first:
        total += entry["points"]
        assert entry["balance"] == total, entry
    assert entries[0]["balance"] == 550 + 40

    # paging back from an entry continues the same running balance
    page = client.get(
        f"{API}/members/T-1/ledger",
        params={"before_seq": entries[2]["seq"], "limit": 2},
        headers=tea.headers(),
    ).json()
    assert page == entries[3:5]


def test_the_liability_equals_member_balances_and_lot_remainders_less_debts(
    client: TestClient, tea: TenantWithKeys, history: None, state: AppState
) -> None:
    # a debt too: T-9 spends the points of an order, then returns it (no other lots left)
    created(
        post(
            client,
            tea,
            "/purchases",
            purchase("T-9", "d-1", "2026-11-20T12:00:00+08:00", ("tea", "tea", "300.00")),
        )
    )
    created(post(client, tea, "/members/T-9/redemptions", {"reward": "coupon_5"}, key="dx-1"))
    back = created(
        post(
            client,
            tea,
            "/returns",
            {"return_id": "dr-1", "order_id": "d-1", "occurred_at": "2026-11-25T16:00:00+08:00"},
        )
    )
    # 200 + 350 - 500 = 50 left; the return takes 350: 50 from the lots, 300 as debt
    assert (back["debt"], back["balances"]["available"]) == (300, -300)

    report = client.get(f"{API}/liability", headers=tea.headers()).json()
    with state.database.session(tenant_id=tea.tenant.id) as session:
        remainders = session.scalar(select(func.sum(PointsLot.remaining))) or 0
        debts = session.scalar(select(func.sum(MemberStateRow.debt))) or 0

    assert report["outstanding_points"] == report["member_balances"] == remainders - debts
    assert report["outstanding_points"] == 590 - 300
    assert sum(month["points"] for month in report["by_expiry_month"]) == remainders
    assert report["currency"] == "CNY"


# --- bad input: a precise message, nothing written ----------------------------------------------


def test_an_unknown_member_is_refused_where_a_purchase_does_not_enrol(
    client: TestClient, dept: TenantWithKeys, state: AppState
) -> None:
    before = rows(state, dept)
    body = purchase("D-404", "o-1", "2026-11-20T12:00:00+08:00", ("coat", "apparel", "800.00"))

    en = assert_problem(post(client, dept, "/purchases", body), 404, "members.not_found")
    zh = assert_problem(
        post(client, dept, "/purchases", body, lang="zh-CN"), 404, "members.not_found"
    )

    assert (en["detail"], zh["detail"]) == ("No member D-404.", "会员 D-404 不存在。")
    assert rows(state, dept) == before
    # the order id was not used up: the same order for a known member goes through
    created(post(client, dept, "/purchases", {**body, "member_id": "D-1"}))


@pytest.mark.parametrize(
    ("amount", "code", "message"),
    [
        ("-5.00", "core.v.ge", "must be at least 0"),
        ("abc", "core.v.number", "must be a number (got abc)"),
        ("12.345", "ledger.v.precision", "has more decimals than CNY allows (got 12.345)"),
    ],
)
def test_a_bad_amount_is_refused_naming_the_line(
    client: TestClient,
    dept: TenantWithKeys,
    state: AppState,
    amount: str,
    code: str,
    message: str,
) -> None:
    before = rows(state, dept)
    body = purchase("D-1", "o-1", "2026-11-20T12:00:00+08:00", ("coat", "apparel", amount))

    response = post(client, dept, "/purchases", body)

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "lines[0].amount"
    assert (error["code"], error["message"]) == (code, message)
    assert rows(state, dept) == before


def test_another_currency_is_refused(
    client: TestClient, dept: TenantWithKeys, state: AppState
) -> None:
    before = rows(state, dept)
    body = purchase(
        "D-1", "o-1", "2026-11-20T12:00:00+08:00", ("coat", "apparel", "80.00"), currency="USD"
    )
    en = assert_problem(post(client, dept, "/purchases", body), 422, "core.error.invalid_input")
    zh = assert_problem(
        post(client, dept, "/purchases", body, lang="zh-CN"), 422, "core.error.invalid_input"
    )

    assert en["errors"] == [
        {
            "field": "currency",
            "code": "ledger.v.currency",
            "message": "must be the program's currency CNY (got USD)",
        }
    ]
    assert zh["errors"][0]["message"] == "必须是会员计划的货币 CNY（实际为 USD）"
    assert rows(state, dept) == before


@pytest.mark.parametrize(
    ("occurred_at", "code", "message"),
    [
        (
            "2030-01-01T12:00:00+08:00",
            "ledger.v.future",
            "is in the future (got 2030-01-01T12:00:00+08:00)",
        ),
        (
            "2026-11-20T12:00:00",
            "ledger.v.naive_time",
            "must include a time zone offset, e.g. 2026-11-25T14:30:00+08:00",
        ),
    ],
)
def test_a_bad_time_is_refused(
    client: TestClient,
    dept: TenantWithKeys,
    state: AppState,
    occurred_at: str,
    code: str,
    message: str,
) -> None:
    before = rows(state, dept)
    body = purchase("D-1", "o-1", occurred_at, ("coat", "apparel", "80.00"))

    problem = assert_problem(
        post(client, dept, "/purchases", body), 422, "core.error.invalid_input"
    )

    assert problem["errors"] == [{"field": "occurred_at", "code": code, "message": message}]
    assert rows(state, dept) == before


def test_a_time_in_the_future_is_refused_in_chinese(
    client: TestClient, dept: TenantWithKeys
) -> None:
    body = purchase("D-1", "o-1", "2030-01-01T12:00:00+08:00", ("coat", "apparel", "80.00"))
    problem = assert_problem(
        post(client, dept, "/purchases", body, lang="zh-CN"), 422, "core.error.invalid_input"
    )
    assert problem["errors"][0]["message"] == "不能是将来的时间（实际为 2030-01-01T12:00:00+08:00）"


def test_points_used_beyond_the_balance_are_refused(
    client: TestClient, dept: TenantWithKeys, state: AppState
) -> None:
    # D-1 has 500 welcome points; 1000 would pay 5 yuan of a 100-yuan coat
    before = rows(state, dept)
    body = purchase(
        "D-1", "o-1", "2026-11-20T12:00:00+08:00", ("coat", "apparel", "100.00"), points_used=1000
    )
    problem = assert_problem(
        post(client, dept, "/purchases", body), 409, "ledger.insufficient_points"
    )
    assert problem["detail"] == "Not enough points: 1000 asked, 500 available."
    assert rows(state, dept) == before
