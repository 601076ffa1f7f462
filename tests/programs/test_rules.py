"""The rule engine by worked examples, computed by hand, for each sample program.

Every example drives ``memberlab.programs.rules`` directly, as the live ledger and the
simulator do: ``new_member_state`` + ``enrol`` when a member joins, ``advance`` to the
moment of each event (pending releases, expiries, reviews, birthdays), then the event
itself (``purchase``, ``return_``, ``redeem``, ``adjust``, ``bonus``, ``buy_plan``).

Money in events is in fen; the helpers below take yuan so the arithmetic in the comments
reads as a person would do it. All times are Asia/Shanghai, the programs' time zone.

Teahouse (茶语): 1 point per yuan paid, floor; best multiplier only, tier on top; member
day the 8th (x2); caps 1000/order, 2000/day, 10000/month; 50 bonus points for orders of
100 yuan; 3 pending days; points expire on 31 Dec of the year after earning; growth 1 per
yuan + 5 per order; tiers by rolling 12-month growth (800 / 2500), reviewed on the
enrolment anniversary; returns take from other lots; 100 points = 1 yuan, up to 50%.

Department store (恒悦百货): 1 point per yuan paid; every multiplier stacks; Saturday
member day (x1.5); caps 50000/day, 200000/month; 500 bonus points for orders of 2000
yuan; 7 pending days; points expire 24 months after earning; tiers by calendar-year spend
(5000 / 20000 / 60000), reviewed each 1 January; returned points already spent become a
debt; 200 points = 1 yuan, up to 30%, from 1000 points in steps of 200.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from memberlab.datasets.demo import sample_program_text
from memberlab.programs import rules
from memberlab.programs.schema import BonusType, ProgramDefinition
from memberlab.programs.validation import parse_program_text

TEAHOUSE = parse_program_text(sample_program_text("teahouse"))
DEPARTMENT_STORE = parse_program_text(sample_program_text("department_store"))
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0):
    """A moment in Shanghai."""
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def line(sku: str, category: str, yuan: int | str, quantity: int = 1) -> rules.PurchaseLine:
    return rules.PurchaseLine(sku, category, quantity, int(Decimal(str(yuan)) * 100))


def order(
    order_id: str,
    when: datetime,
    *lines: rules.PurchaseLine,
    channel: str = "store",
    points_used: int = 0,
    paid_yuan: int | str | None = None,
) -> rules.Purchase:
    gross = sum(item.amount for item in lines)
    paid = gross if paid_yuan is None else int(Decimal(str(paid_yuan)) * 100)
    return rules.Purchase(order_id, when, channel, None, lines, paid, 0, points_used)


def give_back(return_id: str, order_id: str, when: datetime, *lines: tuple[int, int]):
    """A return of ``(line index, quantity)`` pairs."""
    return rules.Return(return_id, order_id, when, tuple(rules.ReturnLine(i, q) for i, q in lines))


def joined(
    program: ProgramDefinition, when: datetime, birthday: str | None = None
) -> rules.MemberState:
    """A new member, with the sign-up bonus given."""
    state = rules.new_member_state(program, enrolled_at=when, birthday=birthday)
    rules.enrol(program, state, when, "signup")
    return state


def buy(program: ProgramDefinition, state: rules.MemberState, event: rules.Purchase):
    """What the ledger does for a purchase: bring the member up to its time, then apply it."""
    rules.advance(program, state, event.occurred_at)
    return rules.purchase(program, state, event)


def bring_back(
    program: ProgramDefinition,
    state: rules.MemberState,
    record: rules.OrderRecord,
    event: rules.Return,
):
    rules.advance(program, state, event.occurred_at)
    return rules.return_(program, state, record, event)


def balances(state: rules.MemberState) -> tuple[int, int, int]:
    return state.available, state.pending, state.debt


def kinds(outcome: rules.Outcome) -> list[str]:
    return [entry.kind for entry in outcome.entries]


# --- member day and multipliers --------------------------------------------------------------


def test_teahouse_member_day_on_the_8th_doubles_the_points() -> None:
    # Joining gives the 200-point welcome bonus, usable at once.
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))
    assert balances(state) == (200, 0, 0)

    # 8 March: an oolong for 58 yuan in a store.
    #   base 58 x 1 = 58; member day x2 adds 58 -> 116 (Sprout x1 adds nothing)
    #   growth: 58 (1 per yuan) + 5 (per order) = 63; points wait 3 days (pending)
    outcome = buy(TEAHOUSE, state, order("T-0308", at(2026, 3, 8), line("oolong", "tea", 58)))

    assert outcome.explanation == [
        {"rule": "base", "points": 58},
        {"rule": "multiplier:member_day", "points": 58},
    ]
    assert (outcome.points, outcome.growth) == (116, 63)
    assert balances(state) == (200, 116, 0)

    # 9 March, the same drink: no member day, 58 points.
    outcome = buy(TEAHOUSE, state, order("T-0309", at(2026, 3, 9), line("oolong", "tea", 58)))
    assert outcome.explanation == [{"rule": "base", "points": 58}]
    assert balances(state) == (200, 116 + 58, 0)


def test_teahouse_takes_only_the_best_multiplier() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))

    # A seasonal drink for 58 yuan in the mini-program on the 8th: seasonal x2,
    # mini-program x1.5 and member day x2 all apply, but only the best (x2) counts:
    #   58 x 2 = 116, not 58 x 2 x 1.5 x 2 = 348.
    outcome = buy(
        TEAHOUSE,
        state,
        order("T-1", at(2026, 3, 8), line("peach-oolong", "seasonal", 58), channel="mini_program"),
    )

    assert outcome.points == 116
    assert outcome.explanation == [
        {"rule": "base", "points": 58},
        {"rule": "multiplier:seasonal_double", "points": 58},
    ]


def test_department_store_stacks_every_multiplier() -> None:
    state = joined(DEPARTMENT_STORE, at(2026, 3, 1, 10))
    assert balances(state) == (500, 0, 0)  # the welcome bonus

    # Saturday 14 March, in the app: cosmetics 1000 yuan, electronics 400, food 100.
    #   cosmetics:   1000 x2 (cosmetics) x1.5 (app) x1.5 (Saturday) = 4500
    #                base 1000, +1000 cosmetics, +1000 app, +1500 Saturday
    #   electronics:  400 x0.5 (electronics) x1.5 x1.5 = 450
    #                base 400, -200 electronics, +100 app, +150 Saturday
    #   food: excluded, no points
    #   total 4950; 1500 yuan paid is below the 2000-yuan bonus; Classic is x1.
    outcome = buy(
        DEPARTMENT_STORE,
        state,
        order(
            "D-1",
            at(2026, 3, 14),
            line("lipstick", "cosmetics", 1000),
            line("earbuds", "electronics", 400),
            line("rice", "food", 100),
            channel="app",
        ),
    )

    assert outcome.explanation == [
        {"rule": "base", "points": 1400},
        {"rule": "multiplier:app_bonus", "points": 1100},
        {"rule": "multiplier:cosmetics_double", "points": 1000},
        {"rule": "multiplier:electronics_half", "points": -200},
        {"rule": "multiplier:saturday_member_day", "points": 1650},
    ]
    assert outcome.points == 4950
    assert [line.points for line in outcome.order.lines] == [4500, 450, 0]
    assert balances(state) == (500, 4950, 0)  # pending for 7 days


# --- caps --------------------------------------------------------------------------------------


def test_teahouse_caps_per_order_per_day_and_per_month() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))

    # 8 March (member day), 12:00: tea for 800 yuan.
    #   800 x2 = 1600 -> capped at 1000 per order (-600); +50 for an order of 100 yuan
    #   (bonuses are not capped) = 1050. Growth 805 >= 800: Sprout -> Green Leaf.
    first = buy(TEAHOUSE, state, order("C-1", at(2026, 3, 8, 12), line("tea", "tea", 800)))
    assert first.explanation == [
        {"rule": "base", "points": 800},
        {"rule": "multiplier:member_day", "points": 800},
        {"rule": "cap:per_order", "points": -600},
        {"rule": "bonus:big_order", "points": 50},
    ]
    assert first.points == 1050
    assert state.tier == "green_leaf"

    # 13:00, again 800 yuan, now as Green Leaf (x1.2 on top of the best multiplier):
    #   800 x2 x1.2 = 1920 -> 1000 per order (-920); the day has 2000 - 1000 = 1000 left,
    #   so 1000 stand; +50 bonus = 1050.
    second = buy(TEAHOUSE, state, order("C-2", at(2026, 3, 8, 13), line("tea", "tea", 800)))
    assert second.explanation == [
        {"rule": "base", "points": 800},
        {"rule": "multiplier:member_day", "points": 800},
        {"rule": "tier:green_leaf", "points": 320},
        {"rule": "cap:per_order", "points": -920},
        {"rule": "bonus:big_order", "points": 50},
    ]
    assert second.points == 1050

    # 14:00, 100 yuan: 100 x2 x1.2 = 240, but the day's 2000 are used up (-240);
    # the 50-point bonus still comes.
    third = buy(TEAHOUSE, state, order("C-3", at(2026, 3, 8, 14), line("tea", "tea", 100)))
    assert third.explanation == [
        {"rule": "base", "points": 100},
        {"rule": "multiplier:member_day", "points": 100},
        {"rule": "tier:green_leaf", "points": 40},
        {"rule": "cap:per_day", "points": -240},
        {"rule": "bonus:big_order", "points": 50},
    ]
    assert third.points == 50

    # 9-12 March: two orders of 900 yuan a day, each capped at 1000 per order
    # (900 x1.2 = 1080, then 900 x1.5 = 1350 once Golden Bud is reached on the 9th):
    # 2000 a day, so by the end of the 12th the month holds 2000 + 4 x 2000 = 10000.
    for day in (9, 10, 11, 12):
        for hour in (12, 13):
            outcome = buy(
                TEAHOUSE,
                state,
                order(f"C-{day}-{hour}", at(2026, 3, day, hour), line("tea", "tea", 900)),
            )
            assert outcome.points == 1000 + 50
    assert state.tier == "golden_bud"
    assert state.cap_month_points == 10000

    # 13 March: 900 x1.5 = 1350 -> 1000 per order (-350) -> the month is full (-1000).
    full = buy(TEAHOUSE, state, order("C-13", at(2026, 3, 13), line("tea", "tea", 900)))
    assert full.explanation == [
        {"rule": "base", "points": 900},
        {"rule": "tier:golden_bud", "points": 450},
        {"rule": "cap:per_order", "points": -350},
        {"rule": "cap:per_month", "points": -1000},
        {"rule": "bonus:big_order", "points": 50},
    ]
    assert full.points == 50

    # 1 April: a new month, the same order earns 1000 + 50 again.
    april = buy(TEAHOUSE, state, order("C-0401", at(2026, 4, 1), line("tea", "tea", 900)))
    assert april.points == 1050


# --- spend-threshold bonus ---------------------------------------------------------------------


def test_teahouse_spend_threshold_bonus_goes_when_a_return_takes_the_order_below_it() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))

    # 10 March: tea 60 + bakery 50 = 110 yuan >= 100: 60 + 50 points + 50 bonus = 160,
    # pending until 13 March. Growth 110 + 5 = 115.
    bought = buy(
        TEAHOUSE,
        state,
        order("B-1", at(2026, 3, 10), line("tea", "tea", 60), line("scone", "bakery", 50)),
    )
    assert bought.points == 160
    assert bought.explanation[-1] == {"rule": "bonus:big_order", "points": 50}
    record = bought.order

    # 11 March, the scone comes back: its 50 points, and, as 60 yuan kept is below
    # 100, the 50-point bonus too: 100 points from the order's (still pending) lot.
    # Growth: -50 for the scone; the 5 per order stays while anything is kept.
    back = bring_back(TEAHOUSE, state, record, give_back("R-1", "B-1", at(2026, 3, 11), (1, 1)))
    assert (back.points, back.growth) == (-100, -50)
    assert back.entries[0].movements == [
        rules.Movement(rules.PENDING, rules.RETURNED, 100, record.lot_seq)
    ]
    assert balances(state) == (200, 60, 0)

    # 12 March, the tea too: its 60 points, the 60 + 5 growth; the bonus is not taken twice.
    back = bring_back(TEAHOUSE, state, record, give_back("R-2", "B-1", at(2026, 3, 12), (0, 1)))
    assert (back.points, back.growth) == (-60, -65)
    assert balances(state) == (200, 0, 0)
    assert state.lifetime_growth == 0


def test_teahouse_spend_threshold_bonus_stays_when_the_order_still_reaches_it() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))
    # tea 150 + bakery 20 = 170 yuan: 170 + 50 = 220 points.
    bought = buy(
        TEAHOUSE,
        state,
        order("B-2", at(2026, 3, 10), line("tea", "tea", 150), line("scone", "bakery", 20)),
    )
    assert bought.points == 220

    # The scone comes back: 150 yuan kept >= 100, so only its 20 points go.
    back = bring_back(
        TEAHOUSE, state, bought.order, give_back("R-3", "B-2", at(2026, 3, 11), (1, 1))
    )
    assert back.points == -20
    assert balances(state) == (200, 200, 0)


# --- pending points ----------------------------------------------------------------------------


def test_teahouse_pending_points_are_released_after_3_days() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))
    bought = buy(TEAHOUSE, state, order("P-1", at(2026, 3, 9), line("tea", "tea", 58)))
    [lot] = bought.lots
    assert lot.available_at == at(2026, 3, 12)  # 9 March 12:00 + 3 days
    assert balances(state) == (200, 58, 0)

    # a minute before: still pending, nothing happens
    assert rules.advance(TEAHOUSE, state, at(2026, 3, 12, 11, 59)).entries == []
    assert balances(state) == (200, 58, 0)

    # at 12:00 the 58 points move from pending to available; the member's total is unchanged
    released = rules.advance(TEAHOUSE, state, at(2026, 3, 12))
    [entry] = released.entries
    assert (entry.kind, entry.at, entry.points) == ("release", at(2026, 3, 12), 0)
    assert entry.movements == [rules.Movement(rules.PENDING, rules.AVAILABLE, 58, lot.seq)]
    assert balances(state) == (258, 0, 0)


def test_department_store_pending_points_are_released_after_7_days() -> None:
    state = joined(DEPARTMENT_STORE, at(2026, 3, 1, 10))
    buy(DEPARTMENT_STORE, state, order("P-2", at(2026, 3, 2), line("coat", "apparel", 800)))
    assert balances(state) == (500, 800, 0)

    rules.advance(DEPARTMENT_STORE, state, at(2026, 3, 9, 11, 59))
    assert balances(state) == (500, 800, 0)
    rules.advance(DEPARTMENT_STORE, state, at(2026, 3, 9, 12))
    assert balances(state) == (1300, 0, 0)


# --- tiers: upgrade, return, review ----------------------------------------------------------


def test_teahouse_upgrade_then_partial_return_falls_back_to_the_earlier_tier() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))

    # tea 500 + a mug 400 = 900 yuan: growth 900 + 5 = 905 >= 800 -> Green Leaf.
    # Points at the tier held when buying (Sprout): 900 + 50 bonus = 950.
    bought = buy(
        TEAHOUSE,
        state,
        order("U-1", at(2026, 3, 10), line("tea", "tea", 500), line("mug", "merch", 400)),
    )
    assert (bought.points, bought.growth) == (950, 905)
    assert state.tier == "green_leaf"
    assert [n.payload for n in bought.notices if n.kind == "tier.changed"] == [
        {"from": "sprout", "to": "green_leaf", "reason": "upgrade"}
    ]

    # The mug comes back: growth -400 -> 505 < 800, so the member is Sprout again
    # (the tier held at the last review: none yet, so the entry tier).
    # Points: -400; 500 yuan kept still earns the 50 bonus.
    back = bring_back(
        TEAHOUSE, state, bought.order, give_back("UR-1", "U-1", at(2026, 3, 12), (1, 1))
    )
    assert (back.points, back.growth) == (-400, -400)
    assert state.tier == "sprout"
    assert back.entries[0].detail["tier_before"] == "green_leaf"
    assert back.entries[0].detail["tier_after"] == "sprout"
    assert [n.payload for n in back.notices if n.kind == "tier.changed"] == [
        {"from": "green_leaf", "to": "sprout", "reason": "return"}
    ]


def test_department_store_upgrade_then_return_of_one_item_of_two() -> None:
    state = joined(DEPARTMENT_STORE, at(2026, 3, 1, 10))

    # Two coats at 3000 yuan each, one line of quantity 2: spend 6000 >= 5000 -> Silver.
    # Points: 6000 + 500 (an order of 2000 yuan or more) = 6500.
    bought = buy(
        DEPARTMENT_STORE,
        state,
        order("U-2", at(2026, 3, 2), line("coat", "apparel", 6000, quantity=2)),
    )
    assert bought.points == 6500
    assert state.tier == "silver"

    # One coat back: half the line, 3000 points; 3000 yuan kept >= 2000, the bonus stays.
    # Spend this year 6000 - 3000 = 3000 < 5000 -> Classic.
    back = bring_back(
        DEPARTMENT_STORE,
        state,
        bought.order,
        give_back("UR-2", "U-2", at(2026, 3, 5), (0, 1)),
    )
    assert back.points == -3000
    assert state.tier == "classic"
    assert balances(state) == (500, 3500, 0)

    # A second coat cannot come back twice over: only 1 of 2 is left.
    with pytest.raises(rules.RuleError) as refused:
        rules.return_(
            DEPARTMENT_STORE,
            state,
            bought.order,
            give_back("UR-3", "U-2", at(2026, 3, 6), (0, 2)),
        )
    assert refused.value.key == "ledger.return_too_much"
    assert refused.value.params == {"sku": "coat", "bought": 2, "returned": 1, "asked": 2}


def test_department_store_review_keeps_gold_above_retention_then_drops_one_step() -> None:
    state = joined(DEPARTMENT_STORE, at(2025, 1, 10, 10))

    # 2025: 25000 yuan of clothes -> Gold (>= 20000) at once.
    buy(DEPARTMENT_STORE, state, order("Y25", at(2025, 3, 1), line("suit", "apparel", 25000)))
    assert state.tier == "gold"

    # Review on 1 January 2026: 2025 spend 25000 >= 20000, Gold stays.
    rules.advance(DEPARTMENT_STORE, state, at(2026, 1, 1, 0))
    assert (state.tier, state.last_review_at) == ("gold", at(2026, 1, 1, 0))

    # 2026: 16000 yuan. On 1 January 2027 that reaches only Silver (5000), but it is
    # above Gold's retention threshold of 15000 (保级): Gold stays.
    buy(DEPARTMENT_STORE, state, order("Y26", at(2026, 5, 1), line("suit", "apparel", 16000)))
    outcome = rules.advance(DEPARTMENT_STORE, state, at(2027, 1, 1, 0))
    assert state.tier == "gold"
    assert [n for n in outcome.notices if n.kind == "tier.changed"] == []

    # 2027: 4000 yuan, below every threshold. On 1 January 2028 the member falls,
    # but at most one step: Gold -> Silver, not Classic.
    buy(DEPARTMENT_STORE, state, order("Y27", at(2027, 5, 1), line("suit", "apparel", 4000)))
    outcome = rules.advance(DEPARTMENT_STORE, state, at(2028, 1, 1, 0))
    assert state.tier == "silver"
    assert [n.payload for n in outcome.notices if n.kind == "tier.changed"] == [
        {"from": "gold", "to": "silver", "reason": "review"}
    ]

    # 2028: nothing bought, below Silver's retention (3000): Silver -> Classic.
    rules.advance(DEPARTMENT_STORE, state, at(2029, 1, 1, 0))
    assert state.tier == "classic"


def test_teahouse_review_on_the_anniversary_with_retention_and_one_step_down() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))

    # tea for 2600 yuan: growth 2605 >= 2500 -> Golden Bud.
    buy(TEAHOUSE, state, order("A-1", at(2026, 3, 10), line("tea", "tea", 2600)))
    assert state.tier == "golden_bud"

    # 1 March 2027, the first anniversary: 12 months' growth 2605 >= 2500, stays.
    rules.advance(TEAHOUSE, state, at(2027, 3, 1, 0))
    assert (state.tier, state.last_review_at) == ("golden_bud", at(2027, 3, 1, 0))

    # June 2027: 2100 yuan, growth 2105. On 1 March 2028 that is below 2500 but above
    # Golden Bud's retention threshold (2000): stays.
    buy(TEAHOUSE, state, order("A-2", at(2027, 6, 1), line("tea", "tea", 2100)))
    rules.advance(TEAHOUSE, state, at(2028, 3, 1, 0))
    assert state.tier == "golden_bud"

    # Nothing in the next 12 months: on 1 March 2029 the growth (0) earns Sprout, but the
    # member steps down one tier only: Green Leaf. A year later, below Green Leaf's 600:
    # Sprout.
    rules.advance(TEAHOUSE, state, at(2029, 3, 1, 0))
    assert state.tier == "green_leaf"
    rules.advance(TEAHOUSE, state, at(2030, 3, 1, 0))
    assert state.tier == "sprout"


# --- expiry ------------------------------------------------------------------------------------


def test_teahouse_points_expire_at_the_end_of_the_next_year() -> None:
    # Joined 1 June 2025: the 200 welcome points are earned in 2025.
    state = joined(TEAHOUSE, at(2025, 6, 1, 10))
    # 15 June 2025: 100 yuan -> 100 + 50 bonus = 150 points, earned in 2025.
    june = buy(TEAHOUSE, state, order("E-1", at(2025, 6, 15), line("tea", "tea", 100)))
    # 00:30 on 1 January 2026 in Shanghai (still 31 December in UTC): 40 points, earned
    # in 2026 by the program's clock.
    new_year = buy(TEAHOUSE, state, order("E-2", at(2026, 1, 1, 0, 30), line("tea", "tea", 40)))

    # Points earned in 2025 last until 31 December 2026 and expire at local midnight
    # starting 1 January 2027 (16:00 UTC on 31 December); 2026's last a year longer.
    welcome_lot = state.lots[0]
    assert welcome_lot.expires_at == at(2027, 1, 1, 0) == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert june.lots[0].expires_at == at(2027, 1, 1, 0)
    assert new_year.lots[0].expires_at == at(2028, 1, 1, 0)

    # 30 days before, a notice that 200 + 150 points are expiring
    soon = rules.advance(TEAHOUSE, state, at(2026, 12, 2, 0))
    assert sorted(n.payload["points"] for n in soon.notices if n.kind == "points.expiring") == [
        150,
        200,
    ]

    # one second before midnight: nothing expires
    before = rules.advance(TEAHOUSE, state, at(2026, 12, 31, 23, 59, 59))
    assert "expire" not in kinds(before)
    assert balances(state) == (390, 0, 0)

    # at midnight 200 + 150 = 350 points expire; the 40 of 2026 stay
    midnight = rules.advance(TEAHOUSE, state, at(2027, 1, 1, 0))
    expired = [e for e in midnight.entries if e.kind == "expire"]
    assert [(e.at, e.points) for e in expired] == [
        (at(2027, 1, 1, 0), -200),
        (at(2027, 1, 1, 0), -150),
    ]
    assert expired[0].movements == [
        rules.Movement(rules.AVAILABLE, rules.EXPIRED, 200, welcome_lot.seq)
    ]
    assert balances(state) == (40, 0, 0)


def test_department_store_points_expire_24_months_after_earning() -> None:
    # The welcome bonus is earned on 1 March 2026: its last day is 1 March 2028.
    state = joined(DEPARTMENT_STORE, at(2026, 3, 1, 10))
    bought = buy(
        DEPARTMENT_STORE, state, order("E-3", at(2026, 3, 15), line("coat", "apparel", 100))
    )
    assert state.lots[0].expires_at == at(2028, 3, 2, 0)
    assert bought.lots[0].expires_at == at(2028, 3, 16, 0)
    # the end of a longer month is clamped: 31 August 2026 + 24 months = 31 August 2028
    assert rules.expiry_of(DEPARTMENT_STORE, at(2026, 8, 31)) == at(2028, 9, 1, 0)

    rules.advance(DEPARTMENT_STORE, state, at(2028, 3, 1, 23, 59))
    assert balances(state) == (600, 0, 0)
    first = rules.advance(DEPARTMENT_STORE, state, at(2028, 3, 2, 0))
    assert [(e.kind, e.points) for e in first.entries] == [("expire", -500)]
    second = rules.advance(DEPARTMENT_STORE, state, at(2028, 3, 16, 0))
    assert [(e.kind, e.points) for e in second.entries] == [("expire", -100)]
    assert balances(state) == (0, 0, 0)


# --- birthdays ---------------------------------------------------------------------------------


def test_teahouse_birthday_bonus_once_a_year() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10), birthday="05-17")

    assert rules.advance(TEAHOUSE, state, at(2026, 5, 16, 23, 59)).entries == []
    # 300 points at the start of the birthday, in the program's time zone
    outcome = rules.advance(TEAHOUSE, state, at(2026, 5, 17, 0))
    [entry] = outcome.entries
    assert (entry.kind, entry.at, entry.reference, entry.points) == (
        "birthday",
        at(2026, 5, 17, 0),
        "birthday:2026",
        300,
    )
    assert balances(state) == (500, 0, 0)

    # the birthday is moved to August (the member corrected it): no second bonus in 2026
    state.birthday = "08-01"
    rules.advance(TEAHOUSE, state, at(2026, 12, 31))
    assert balances(state) == (500, 0, 0)

    # the next year's birthday gives the next one
    outcome = rules.advance(TEAHOUSE, state, at(2027, 8, 1, 0))
    assert [(e.kind, e.reference, e.points) for e in outcome.entries] == [
        ("birthday", "birthday:2027", 300)
    ]


def test_department_store_birthday_bonus_waits_for_the_next_birthday_after_joining() -> None:
    # Joined on 1 June; the birthday (17 May) of that year is already past.
    state = joined(DEPARTMENT_STORE, at(2026, 6, 1, 10), birthday="05-17")
    rules.advance(DEPARTMENT_STORE, state, at(2027, 5, 16))
    assert balances(state) == (500, 0, 0)
    rules.advance(DEPARTMENT_STORE, state, at(2027, 5, 17, 0))
    assert balances(state) == (1500, 0, 0)


def test_a_birthday_bonus_given_and_expired_within_one_advance_expires() -> None:
    # Joined 1 March 2026, birthday 17 May: 300 points on 17 May 2026, 2027 and 2028.
    # The welcome 200 and the 2026 bonus expire on 1 January 2028. On 1 June 2028 the
    # member holds the 2027 and 2028 bonuses: 600, whether time is advanced year by year
    # or in one step.
    stepped = joined(TEAHOUSE, at(2026, 3, 1, 10), birthday="05-17")
    for year in (2026, 2027, 2028):
        rules.advance(TEAHOUSE, stepped, at(year, 6, 1))
    assert balances(stepped) == (600, 0, 0)

    at_once = joined(TEAHOUSE, at(2026, 3, 1, 10), birthday="05-17")
    outcome = rules.advance(TEAHOUSE, at_once, at(2028, 6, 1))

    assert [e.points for e in outcome.entries if e.kind == "expire"] == [-200, -300]
    assert balances(at_once) == (600, 0, 0)


# --- points as payment -------------------------------------------------------------------------


def test_teahouse_points_pay_for_up_to_half_an_order_and_come_back_on_return() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))  # 200
    rules.adjust(TEAHOUSE, state, 2000, at(2026, 3, 5), "goodwill", "service recovery", "ops")
    assert balances(state) == (2200, 0, 0)

    # tea 20 + scone 10 = 30 yuan. At 100 points per yuan, half the order is 1500 points.
    def paying(points: int) -> rules.Purchase:
        return order(
            "PP-1",
            at(2026, 3, 10),
            line("tea", "tea", 20),
            line("scone", "bakery", 10),
            points_used=points,
            paid_yuan=Decimal(30) - Decimal(points) / 100,
        )

    # 1550 is not a multiple of 100; 1600 is 16 yuan, more than half of 30.
    for points, key in ((1550, "ledger.points_step"), (1600, "ledger.points_share")):
        with pytest.raises(rules.RuleError) as refused:
            buy(TEAHOUSE, state, paying(points))
        assert refused.value.key == key
    assert balances(state) == (2200, 0, 0)  # nothing changed

    # 1500 points pay 15 yuan; 15 yuan in money earns 15 points (10 + 5 by line).
    outcome = buy(TEAHOUSE, state, paying(1500))
    assert [(e.kind, e.points) for e in outcome.entries] == [("payment", -1500), ("purchase", 15)]
    assert [line.points for line in outcome.order.lines] == [10, 5]
    assert balances(state) == (700, 15, 0)

    # The scone comes back: 10 of 30 yuan, so 1500 x 10/30 = 500 points come back as a new
    # lot, and the scone's 5 points go.
    back = bring_back(
        TEAHOUSE, state, outcome.order, give_back("PR-1", "PP-1", at(2026, 3, 11), (1, 1))
    )
    assert back.points == 500 - 5
    [refund] = back.lots
    assert (refund.source, refund.amount) == ("refund", 500)
    assert rules.Movement(rules.PAYMENT, rules.AVAILABLE, 500, refund.seq) in (
        back.entries[0].movements
    )
    assert balances(state) == (1200, 10, 0)

    # The tea too: the other 1000 points come back, its 10 points go.
    bring_back(
        TEAHOUSE, state, outcome.order, give_back("PR-2", "PP-1", at(2026, 3, 11, 13), (0, 1))
    )
    assert balances(state) == (2200, 0, 0)


def test_department_store_points_payment_minimum_step_and_share() -> None:
    state = joined(DEPARTMENT_STORE, at(2026, 3, 1, 10))
    rules.adjust(DEPARTMENT_STORE, state, 9500, at(2026, 3, 2), "a-1", "migration", "ops")

    def paying(points: int) -> rules.Purchase:
        # a 100-yuan coat; 200 points = 1 yuan
        return order(
            "PD-1",
            at(2026, 3, 3),
            line("coat", "apparel", 100),
            points_used=points,
            paid_yuan=Decimal(100) - Decimal(points) / 200,
        )

    # below the 1000-point minimum, not a multiple of 200, above 30% (6200 = 31 yuan)
    for points, key in (
        (800, "ledger.points_step"),
        (1100, "ledger.points_step"),
        (6200, "ledger.points_share"),
    ):
        with pytest.raises(rules.RuleError) as refused:
            buy(DEPARTMENT_STORE, state, paying(points))
        assert refused.value.key == key

    # 6000 points = 30 yuan, exactly 30%: 70 yuan paid earns 70 points
    outcome = buy(DEPARTMENT_STORE, state, paying(6000))
    assert [(e.kind, e.points) for e in outcome.entries] == [("payment", -6000), ("purchase", 70)]
    assert balances(state) == (4000, 70, 0)


# --- returns of points already spent --------------------------------------------------------


def test_department_store_returned_points_already_spent_become_a_debt() -> None:
    state = joined(DEPARTMENT_STORE, at(2026, 3, 1, 10))  # 500
    bought = buy(
        DEPARTMENT_STORE, state, order("DB-1", at(2026, 3, 2), line("coat", "apparel", 1000))
    )
    rules.advance(DEPARTMENT_STORE, state, at(2026, 3, 10))  # released on 9 March
    rules.redeem(state, 1500, at(2026, 3, 10), "scarf")
    assert balances(state) == (0, 0, 0)

    # 20 March, the coat comes back: its 1000 points were spent, so they become a debt.
    back = bring_back(
        DEPARTMENT_STORE,
        state,
        bought.order,
        give_back("DBR-1", "DB-1", at(2026, 3, 20), (0, 1)),
    )
    assert back.entries[0].movements == [
        rules.Movement(rules.AVAILABLE, rules.RETURNED, 1000, None)
    ]
    assert balances(state) == (-1000, 0, 1000)

    # Nothing can be redeemed with a negative balance.
    with pytest.raises(rules.RuleError) as refused:
        rules.redeem(state, 200, at(2026, 3, 21), "voucher")
    assert (refused.value.key, refused.value.params) == (
        "ledger.insufficient_points",
        {"requested": 200, "available": 0},
    )

    # 25 March: 600 points, pending; released on 1 April they repay 600 of the debt.
    later = buy(
        DEPARTMENT_STORE, state, order("DB-2", at(2026, 3, 25), line("shirt", "apparel", 600))
    )
    assert balances(state) == (-1000, 600, 1000)
    rules.advance(DEPARTMENT_STORE, state, at(2026, 4, 1, 12))
    assert balances(state) == (-400, 0, 400)
    assert later.lots[0].remaining == 0


def test_teahouse_returned_points_already_spent_come_from_other_lots_then_debt() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))  # 200
    # 300 yuan: 300 + 50 bonus = 350, released on 5 March
    bought = buy(TEAHOUSE, state, order("OL-1", at(2026, 3, 2), line("tea", "tea", 300)))
    rules.advance(TEAHOUSE, state, at(2026, 3, 6))
    rules.redeem(state, 550, at(2026, 3, 6), "everything")
    adjustment = rules.adjust(TEAHOUSE, state, 100, at(2026, 3, 6, 13), "a-2", "sorry", "ops")
    assert balances(state) == (100, 0, 0)

    # The whole order comes back: 350 points to take. The order's lot is spent; the 100 of
    # the adjustment lot are taken, the other 250 become a debt.
    back = bring_back(
        TEAHOUSE, state, bought.order, give_back("OLR-1", "OL-1", at(2026, 3, 7), (0, 1))
    )
    assert back.entries[0].movements == [
        rules.Movement(rules.AVAILABLE, rules.RETURNED, 100, adjustment.lots[0].seq),
        rules.Movement(rules.AVAILABLE, rules.RETURNED, 250, None),
    ]
    assert balances(state) == (-250, 0, 250)


# --- FEFO --------------------------------------------------------------------------------------


def test_teahouse_spending_takes_the_soonest_expiring_lots_first() -> None:
    state = joined(TEAHOUSE, at(2025, 11, 1, 10))  # 200, expiring 1 Jan 2027
    december = rules.adjust(TEAHOUSE, state, 300, at(2025, 12, 1), "d", "r", "ops")
    february = rules.adjust(TEAHOUSE, state, 1000, at(2026, 2, 1), "f", "r", "ops")
    welcome, dec_lot, feb_lot = state.lots
    assert (dec_lot, feb_lot) == (december.lots[0], february.lots[0])
    assert feb_lot.expires_at == at(2028, 1, 1, 0)  # a year later than the others

    # 400 points: all 200 of the welcome lot, then 200 of December's (both end 2026;
    # the earlier earned first)
    rules.advance(TEAHOUSE, state, at(2026, 3, 1))
    first = rules.redeem(state, 400, at(2026, 3, 1), "r1")
    assert first.entries[0].movements == [
        rules.Movement(rules.AVAILABLE, rules.REDEEMED, 200, welcome.seq),
        rules.Movement(rules.AVAILABLE, rules.REDEEMED, 200, dec_lot.seq),
    ]
    # 300 more: December's last 100, then 200 of February's
    second = rules.redeem(state, 300, at(2026, 3, 2), "r2")
    assert second.entries[0].movements == [
        rules.Movement(rules.AVAILABLE, rules.REDEEMED, 100, dec_lot.seq),
        rules.Movement(rules.AVAILABLE, rules.REDEEMED, 200, feb_lot.seq),
    ]
    assert [lot.remaining for lot in state.lots] == [0, 0, 800]


def test_department_store_spending_takes_the_oldest_lot_first() -> None:
    state = joined(DEPARTMENT_STORE, at(2026, 3, 1, 10))  # 500, expiring 2 Mar 2028
    rules.adjust(DEPARTMENT_STORE, state, 1000, at(2026, 4, 1), "x", "r", "ops")
    outcome = rules.redeem(state, 700, at(2026, 4, 2), "r3")
    assert [(m.lot, m.amount) for m in outcome.entries[0].movements] == [
        (state.lots[0].seq, 500),
        (state.lots[1].seq, 200),
    ]


# --- time is idempotent ------------------------------------------------------------------------


@pytest.mark.parametrize("program", [TEAHOUSE, DEPARTMENT_STORE], ids=lambda p: p.code)
def test_advancing_twice_to_the_same_moment_changes_nothing(program: ProgramDefinition) -> None:
    state = joined(program, at(2025, 6, 1, 10), birthday="07-01")
    buy(program, state, order("I-1", at(2025, 6, 2), line("x", "tea", 3000)))
    buy(program, state, order("I-2", at(2026, 2, 3), line("x", "apparel", 150)))

    first = rules.advance(program, state, at(2027, 9, 1))
    assert {"release", "expire", "birthday"} <= set(kinds(first))
    after = rules.copy_state(state)

    again = rules.advance(program, state, at(2027, 9, 1))
    earlier = rules.advance(program, state, at(2026, 1, 1))
    assert (again.entries, again.notices) == ([], [])
    assert (earlier.entries, earlier.notices) == ([], [])
    assert state == after


# --- adjustments, bonuses, paid plans ----------------------------------------------------------


def test_adjustments_carry_a_reason_and_never_overdraw() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))
    outcome = rules.adjust(TEAHOUSE, state, -150, at(2026, 3, 2), "adj-1", "duplicate", "li.na")
    [entry] = outcome.entries
    assert (entry.kind, entry.points, entry.detail) == (
        "adjustment",
        -150,
        {"reason": "duplicate", "actor": "li.na"},
    )
    assert entry.movements == [
        rules.Movement(rules.AVAILABLE, rules.ADJUSTMENT, 150, state.lots[0].seq)
    ]

    with pytest.raises(rules.RuleError) as refused:
        rules.adjust(TEAHOUSE, state, -51, at(2026, 3, 2), "adj-2", "too much", "li.na")
    assert (refused.value.key, refused.value.params) == (
        "ledger.insufficient_points",
        {"requested": 51, "available": 50},
    )
    with pytest.raises(rules.RuleError) as zero:
        rules.adjust(TEAHOUSE, state, 0, at(2026, 3, 2), "adj-3", "nothing", "li.na")
    assert zero.value.key == "ledger.bad_points"
    assert balances(state) == (50, 0, 0)


def test_teahouse_review_bonus_is_limited_to_24_a_year() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))
    for n in range(24):
        rules.bonus(TEAHOUSE, state, BonusType.REVIEW, at(2026, 4, 1) + timedelta(hours=n), f"r{n}")
    assert balances(state) == (200 + 24 * 10, 0, 0)

    with pytest.raises(rules.RuleError) as refused:
        rules.bonus(TEAHOUSE, state, BonusType.REVIEW, at(2026, 5, 1), "r24")
    assert (refused.value.key, refused.value.params) == (
        "ledger.bonus_limit",
        {"bonus": "review", "per_year": 24},
    )
    # a new year, a new allowance; and a referral is 500
    rules.bonus(TEAHOUSE, state, BonusType.REVIEW, at(2027, 1, 2), "r25")
    rules.bonus(TEAHOUSE, state, BonusType.REFERRAL, at(2027, 1, 2), "friend-1")
    assert state.available == 200 + 25 * 10 + 500


def test_teahouse_paid_plan_multiplies_points_while_it_runs() -> None:
    state = joined(TEAHOUSE, at(2026, 3, 1, 10))
    outcome = rules.buy_plan(TEAHOUSE, state, "tea_pass", at(2026, 3, 5), "plan-1")
    assert [(e.kind, e.points) for e in outcome.entries] == [("paid_plan", 0)]
    assert state.plan_until == at(2027, 3, 5)  # 12 months

    # 100 yuan with the Tea Pass (x1.2): 100 + 20 = 120, + 50 bonus = 170
    bought = buy(TEAHOUSE, state, order("PL-1", at(2026, 3, 10), line("tea", "tea", 100)))
    assert bought.explanation == [
        {"rule": "base", "points": 100},
        {"rule": "plan:tea_pass", "points": 20},
        {"rule": "bonus:big_order", "points": 50},
    ]

    # buying again before it ends extends it by 12 months from its end
    rules.buy_plan(TEAHOUSE, state, "tea_pass", at(2026, 4, 1), "plan-2")
    assert state.plan_until == at(2028, 3, 5)
    # after it ends, no more x1.2 (and by then Sprout: x1)
    after = buy(TEAHOUSE, state, order("PL-2", at(2028, 3, 6), line("tea", "tea", 50)))
    assert after.points == 50

    with pytest.raises(rules.RuleError) as refused:
        rules.buy_plan(TEAHOUSE, state, "gold_pass", at(2028, 3, 6), "plan-3")
    assert (refused.value.key, refused.value.params) == (
        "ledger.no_such_plan",
        {"plan": "gold_pass"},
    )
    with pytest.raises(rules.RuleError) as none:
        rules.buy_plan(DEPARTMENT_STORE, state, "tea_pass", at(2028, 3, 6), "plan-4")
    assert none.value.key == "ledger.no_such_plan"
