"""The column kernels (local days, member codes, integer sorts) against the Polars
expressions they replace, and the fast paths of the analyses against their general paths
and against plain Polars computations, on random data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from memberlab.analytics import cohorts as cohorts_module
from memberlab.analytics import columnar
from memberlab.analytics.churn import churn_features, churn_labels
from memberlab.analytics.cohorts import cohort_matrices
from memberlab.analytics.columnar import (
    MemberCodes,
    Prepared,
    first_index,
    group_max,
    group_min,
    local_days,
    month_numbers,
    pack_sort,
    small_codes,
)
from memberlab.analytics.points import points_cohorts
from memberlab.analytics.rfm import (
    _counted_score,
    _quantile_score,
    local_date,
    month_of_day,
    rfm_table,
    segment_movement,
)
from memberlab.analytics.tiers import (
    members_near_next_tier,
    tier_at,
    tier_distribution,
    tier_migration,
    tier_performance,
    tier_progress,
    time_to_upgrade,
)

ZONES = [
    None,
    "UTC",
    "Asia/Shanghai",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # half-hour daylight saving
    "Asia/Kathmandu",  # +05:45
]
PER_SECOND = {"us": 10**6, "ns": 10**9, "ms": 10**3}


# --- local days and months ---------------------------------------------------------------------


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("unit", ["us", "ns", "ms"])
@pytest.mark.parametrize("own_zone", [None, "UTC", "America/Sao_Paulo"])
def test_local_days_are_the_days_polars_gives(zone: str | None, unit: str, own_zone: str | None):
    rng = np.random.default_rng(1)
    seconds = rng.integers(-2_000_000_000, 2_500_000_000, 5_000)
    times = pl.Series("t", seconds * PER_SECOND[unit]).cast(pl.Datetime(unit, own_zone))  # type: ignore[arg-type]
    times = times.scatter([3, 7], None)
    frame = times.to_frame()
    expected = frame.select(local_date(frame.schema, "t", zone).cast(pl.Int32)).to_series()

    days, known = local_days(times, zone)

    assert known is not None
    assert np.array_equal(known, expected.is_not_null().to_numpy())
    assert np.array_equal(days[known], expected.drop_nulls().to_numpy())


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
def test_local_days_around_changes_of_offset(zone: str):
    # every 7 seconds over a year: each change of offset, to the second
    seconds = np.arange(1_700_000_000 - 400 * 86_400, 1_700_000_000, 7)
    times = pl.Series("t", seconds * 10**6).cast(pl.Datetime("us", "UTC"))

    days, known = local_days(times, zone)

    assert known is None
    expected = times.dt.convert_time_zone(zone).dt.date().cast(pl.Int32).to_numpy()
    assert np.array_equal(days, expected)


def test_local_days_of_dates_and_texts():
    dates = pl.Series("d", [date(2024, 1, 1), None, date(1969, 12, 31)])
    texts = pl.Series("t", ["2024-01-01T10:00:00", None, "1969-12-31T23:59:00"])

    for column in (dates, texts):
        days, known = local_days(column, "Asia/Shanghai")
        assert days[known].tolist() == [19723, -1]
        assert known.tolist() == [True, False, True]


def test_month_numbers_are_those_of_month_of_day():
    days = np.random.default_rng(2).integers(-800_000, 800_000, 20_000).astype(np.int32)
    expected = pl.DataFrame({"d": days}).select(month_of_day(pl.col("d"))).to_series()

    assert np.array_equal(month_numbers(days), expected.to_numpy())


# --- member codes -------------------------------------------------------------------------------


def random_ids(rng: np.random.Generator, distinct: int, rows: int) -> pl.Series:
    return pl.Series("member_id", [f"M{i:07d}" for i in rng.integers(0, distinct, rows)])


def check_codes(ids: pl.Series, members: MemberCodes) -> None:
    assert members.ids_of(members.codes).equals(ids.rename(members.ids.name), check_names=False)
    assert members.n == ids.n_unique()
    assert members.ids.gather(members.by_id).is_sorted()
    assert np.array_equal(members.lookup(ids), members.codes)
    assert np.array_equal(members.codes_in(members), np.arange(members.n))


@pytest.mark.parametrize(("distinct", "rows"), [(1, 5), (10, 100), (5_000, 50_000)])
def test_member_codes_group_equal_ids(distinct: int, rows: int):
    ids = random_ids(np.random.default_rng(3), distinct, rows)

    check_codes(ids, MemberCodes.of(ids))


def test_member_codes_of_ids_whose_hashes_collide(monkeypatch: pytest.MonkeyPatch):
    # The first hash cut to 20 bits (prefixes shared by many ids), then to nothing at all
    # (only the second hash tells ids apart): the codes must not change.
    ids = random_ids(np.random.default_rng(4), 3_000, 20_000)
    expected = MemberCodes.of(ids)
    real_hash = pl.Series.hash
    for mask in (0xFFFFF, 0):

        def weak_hash(self: pl.Series, seed: int = 0, *args: int, mask: int = mask) -> pl.Series:
            hashed = real_hash(self, seed, *args)
            return hashed & mask if seed == columnar._SEEDS[0] else hashed

        monkeypatch.setattr(pl.Series, "hash", weak_hash)
        members = MemberCodes.of(ids)
        check_codes(ids, members)
        assert members.ids_of(members.by_id).equals(expected.ids_of(expected.by_id))


def test_looking_up_ids_absent_or_null():
    members = MemberCodes.of(pl.Series(["a", "b", "c", "a"]))

    found = members.lookup(pl.Series(["c", "x", None, "a"]))

    assert found[1] == found[2] == -1
    assert members.ids_of(found[[0, 3]]).to_list() == ["c", "a"]
    other = MemberCodes.of(pl.Series(["z", "b"]))
    assert members.ids_of(members.codes_in(other)[1:]).to_list() == ["b"]
    assert members.codes_in(other)[0] == -1


def test_small_codes_with_nulls_and_colliding_hashes(monkeypatch: pytest.MonkeyPatch):
    values = pl.Series(["x", None, "y", "x", None, "z"])

    codes, distinct = small_codes(values)

    assert distinct.gather(codes).equals(values)
    monkeypatch.setattr(pl.Series, "hash", lambda self, seed=0, *a: pl.Series([7] * len(self)))
    codes, distinct = small_codes(values)  # every hash the same: found by a join instead
    assert distinct.gather(codes).equals(values)


def test_pack_sort_orders_as_a_lexicographic_sort():
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 50, 10_000), rng.integers(0, 1_000, 10_000)

    order = pack_sort((a, 6), (b, 10))

    assert np.array_equal(order, np.lexsort((np.arange(a.size), b, a)))
    rank = rng.permutation(a.size)
    assert np.array_equal(pack_sort((a, 6), (rank, 14), row=False), rank[np.lexsort((rank, a))])
    assert pack_sort((a, 40), (b, 30)) is None  # more than 63 bits


def test_group_extremes_and_first_rows():
    codes = np.array([2, 0, 2, 2, 0])
    values = np.array([5, 1, 3, 9, 4])

    low, seen = group_min(codes, values, 4)
    high, _ = group_max(codes, values, 4)

    assert seen.tolist() == [True, False, True, False]
    assert (low[seen].tolist(), high[seen].tolist()) == ([1, 3], [4, 9])
    assert first_index(codes, 4).tolist() == [1, -1, 0, -1]


def test_counted_scores_are_the_ranked_scores():
    rng = np.random.default_rng(6)
    for values in (rng.integers(0, 30, 5_000), rng.integers(0, 10**9, 300), np.zeros(7, int)):
        frame = pl.DataFrame({"v": values.astype(np.int32)})
        for descending in (True, False):
            expected = frame.select(_quantile_score(pl.col("v"), descending=descending))
            got = _counted_score(frame["v"].to_numpy(), descending=descending)
            assert got.to_list() == expected.to_series().to_list()


# --- the analyses on random data ----------------------------------------------------------------

START = datetime(2023, 1, 1, tzinfo=UTC)


def random_transactions(seed: int, members: int = 400, rows: int = 6_000) -> pl.DataFrame:
    """Purchases and returns, several rows of some orders (order lines), rows in no order,
    a few without a member or a time."""
    rng = np.random.default_rng(seed)
    member = rng.integers(0, members, rows)
    seconds = rng.integers(0, 700 * 86_400, rows)
    order = np.where(rng.random(rows) < 0.2, rng.integers(0, rows // 2, rows), np.arange(rows))
    kind = np.where(rng.random(rows) < 0.1, "return", "purchase")
    frame = pl.DataFrame(
        {
            "member_id": [f"M{m:05d}" for m in member],
            "order_id": [f"O{o:06d}" for o in order],
            "occurred_at": [START + timedelta(seconds=int(s)) for s in seconds],
            "amount": np.round(rng.gamma(2.0, 20.0, rows), 2),
            "kind": kind,
            "channel": pl.Series(rng.choice(["app", "store", "web", ""], rows)).replace("", None),
            "store": rng.choice(["S1", "S2", "S3"], rows),
        }
    )
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 97 == 5)
        .then(None)
        .otherwise("member_id")
        .alias("member_id"),
        pl.when(pl.int_range(pl.len()) % 89 == 7)
        .then(None)
        .otherwise("occurred_at")
        .alias("occurred_at"),
    )
    return frame


def plain_rfm_measures(transactions: pl.DataFrame, day: date, zone: str) -> pl.DataFrame:
    """RFM measures by plain Polars group-bys (distinct days and order ids counted as such)."""
    rows = transactions.drop_nulls(["member_id", "occurred_at"]).with_columns(
        pl.col("occurred_at").dt.convert_time_zone(zone).dt.date().alias("day"),
        (pl.col("kind") == "purchase").alias("bought"),
        pl.when(pl.col("kind") == "return")
        .then(-pl.col("amount"))
        .otherwise(pl.col("amount"))
        .alias("net"),
    )
    rows = rows.filter(pl.col("day") <= day)
    return (
        rows.group_by("member_id")
        .agg(
            pl.col("day").filter("bought").min().alias("first_purchase"),
            pl.col("day").filter("bought").max().alias("last_purchase"),
            pl.col("day").filter("bought").n_unique().cast(pl.Int32).alias("frequency"),
            pl.col("order_id").filter("bought").n_unique().cast(pl.Int32).alias("orders"),
            pl.col("net").sum().round(2).alias("spend"),
        )
        .filter(pl.col("last_purchase").is_not_null())
        .sort("member_id")
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_rfm_measures_are_plain_group_by_figures(seed: int):
    zone = "Europe/Berlin"
    transactions = random_transactions(seed)
    day = date(2024, 6, 30)

    table = rfm_table(transactions, as_of=day, time_zone=zone)

    expected = plain_rfm_measures(transactions, day, zone)
    columns = ["member_id", "first_purchase", "last_purchase", "frequency", "orders", "spend"]
    assert_frame_equal(table.select(columns), expected.select(columns))
    # distinct order ids: with every order id its own, counting rows is the fast path
    unique = transactions.with_columns(pl.format("U{}", pl.int_range(pl.len())).alias("order_id"))
    assert_frame_equal(
        rfm_table(unique, as_of=day, time_zone=zone).select(columns),
        plain_rfm_measures(unique, day, zone).select(columns),
    )


def test_rfm_and_movement_do_not_depend_on_row_order():
    transactions = random_transactions(3)
    shuffled = transactions.sample(fraction=1.0, shuffle=True, seed=1)
    in_time_order = transactions.sort("occurred_at", nulls_last=True)
    day = date(2024, 6, 30)

    tables = [rfm_table(t, as_of=day, window_days=200) for t in (shuffled, in_time_order)]
    assert_frame_equal(tables[0], tables[1])
    moves = [
        segment_movement(t, date_a=date(2024, 1, 31), date_b=day, time_zone="Asia/Shanghai")
        for t in (shuffled, in_time_order)
    ]
    assert_frame_equal(moves[0].long, moves[1].long)


def random_members(transactions: pl.DataFrame) -> pl.DataFrame:
    ids = transactions["member_id"].drop_nulls().unique().sort()
    rng = np.random.default_rng(7)
    return pl.DataFrame(
        {
            "member_id": pl.concat([ids, pl.Series(["M99998", "M99999"])]),
            "enrolled_at": [
                START + timedelta(days=int(d)) for d in rng.integers(-30, 400, ids.len() + 2)
            ],
            "tier": pl.Series(rng.choice(["sprout", "green", "gold", ""], ids.len() + 2)).replace(
                "", None
            ),
        }
    )


@pytest.mark.parametrize("by", ["join_month", "first_channel", "first_store", "tier"])
@pytest.mark.parametrize("start", ["first_purchase", "enrolment"])
def test_cohorts_do_not_depend_on_row_order_or_on_the_flag_table(
    by: str, start: str, monkeypatch: pytest.MonkeyPatch
):
    transactions = random_transactions(4)
    members = random_members(transactions)
    kwargs = {"members": members, "by": by, "start": start, "time_zone": "America/New_York"}

    in_time_order = cohort_matrices(transactions.sort("occurred_at", nulls_last=True), **kwargs)
    shuffled = cohort_matrices(transactions.sample(fraction=1.0, shuffle=True, seed=2), **kwargs)
    monkeypatch.setattr(cohorts_module, "_BITMAP_CELLS", 0)  # active months by sorting
    sorted_months = cohort_matrices(transactions, **kwargs)

    for other in (shuffled, sorted_months):
        assert_frame_equal(in_time_order.long, other.long)
        assert_frame_equal(in_time_order.retention, other.retention)


def test_cohort_activity_is_a_plain_group_by():
    transactions = random_transactions(5).drop_nulls(["member_id", "occurred_at"])
    result = cohort_matrices(transactions, as_of=date(2024, 10, 31))

    rows = transactions.with_columns(
        (pl.col("occurred_at").dt.year() * 12 + pl.col("occurred_at").dt.month() - 1).alias("m"),
        (pl.col("kind") == "purchase").alias("bought"),
        pl.when(pl.col("kind") == "return")
        .then(-pl.col("amount"))
        .otherwise(pl.col("amount"))
        .alias("net"),
    ).filter(pl.col("occurred_at").dt.date() <= date(2024, 10, 31))
    start = rows.filter("bought").group_by("member_id").agg(pl.col("m").min().alias("m0"))
    cells = (
        rows.join(start, on="member_id")
        .with_columns((pl.col("m") - pl.col("m0")).cast(pl.Int32).alias("period"))
        .filter(pl.col("m") <= 2024 * 12 + 9)
        .group_by("m0", "period")
        .agg(
            pl.col("member_id").filter("bought").n_unique().cast(pl.Int64).alias("active"),
            pl.col("net").sum().round(2).alias("revenue"),
        )
        .with_columns(
            pl.format(
                "{}-{}",
                (pl.col("m0") // 12),
                (pl.col("m0") % 12 + 1).cast(pl.String).str.pad_start(2, "0"),
            ).alias("cohort")
        )
    )
    joined = result.long.join(cells, on=["cohort", "period"], how="left").with_columns(
        pl.col("active_right").fill_null(0), pl.col("revenue_right").fill_null(0.0)
    )
    assert (joined["active"] == joined["active_right"]).all()
    assert (joined["revenue"] - joined["revenue_right"]).abs().max() < 1e-6


def random_ledger(seed: int) -> pl.DataFrame:
    """Earnings and outflows of 300 members (ids as in ``random_transactions``)."""
    rng = np.random.default_rng(seed)
    rows = 8_000
    points = rng.integers(1, 300, rows)
    kind = rng.choice(["purchase", "payment", "expire", "return", "redemption", "release"], rows,
                      p=[0.6, 0.15, 0.1, 0.05, 0.05, 0.05])  # fmt: skip
    signed = np.where(np.isin(kind, ["purchase"]), points, -points // 3)
    signed = np.where(kind == "release", 0, signed)
    seconds = rng.integers(0, 700 * 86_400, rows) // 60 * 60  # ties within a member
    return pl.DataFrame(
        {
            "member_id": [f"M{m:05d}" for m in rng.integers(0, 300, rows)],
            "at": [START + timedelta(seconds=int(s)) for s in seconds],
            "kind": kind,
            "points": signed,
        },
        schema_overrides={"points": pl.Int64},
    )


def test_points_cohorts_in_time_order_and_in_any_order():
    ledger = random_ledger(8)
    in_time_order = ledger.sort("at", maintain_order=True)

    one = points_cohorts(in_time_order, as_of=date(2024, 11, 30), time_zone="Europe/Berlin")
    # the same rows in another order (ties in time kept in their order within a member)
    shuffled = in_time_order.with_row_index("i").sample(fraction=1.0, shuffle=True, seed=3)
    two = points_cohorts(
        shuffled.sort("member_id", "i").drop("i"), as_of=date(2024, 11, 30),
        time_zone="Europe/Berlin",
    )  # fmt: skip

    assert_frame_equal(one.cohorts, two.cohorts)
    assert_frame_equal(one.development, two.development)
    assert one.unattributed == two.unattributed


def test_churn_features_do_not_depend_on_row_order():
    transactions = random_transactions(9)
    members = random_members(transactions)
    ledger = random_ledger(10)
    history = pl.DataFrame(
        {
            "member_id": pl.concat(
                [ledger["member_id"].head(100), transactions["member_id"].slice(100, 400)]
            ),
            "at": ledger["at"].head(500),
            "tier": np.random.default_rng(11).choice(["sprout", "green", "gold", "x"], 500),
        }
    )
    rng = np.random.default_rng(12)
    responses = pl.DataFrame(
        {
            "member_id": transactions["member_id"].head(900),
            "responded_at": ledger["at"].head(900),
            "nps": rng.integers(-1, 11, 900),
            "csat": rng.integers(-1, 6, 900),
        }
    )
    sources = {"members": members, "tier_history": history, "ledger": ledger,
               "responses": responses}  # fmt: skip

    def features(shuffle: bool) -> pl.DataFrame:
        frames = {k: v.sample(fraction=1.0, shuffle=True, seed=4) if shuffle and k != "responses"
                  else v for k, v in sources.items()}  # fmt: skip
        txs = transactions.sample(fraction=1.0, shuffle=True, seed=5) if shuffle else transactions
        return churn_features(
            txs, cutoff=date(2024, 6, 1), tiers=["sprout", "green", "gold"],
            time_zone="Asia/Shanghai", **frames,
        )  # fmt: skip

    in_order, shuffled = features(False), features(True)

    assert_frame_equal(in_order, shuffled)
    assert in_order["points_balance"].sum() != 0


def test_tiers_do_not_depend_on_row_order():
    transactions = random_transactions(13)
    members = random_members(transactions)
    ledger = random_ledger(14)
    history = pl.DataFrame(
        {
            "member_id": transactions["member_id"].drop_nulls().head(700),
            "at": ledger["at"].head(700),
            "tier": np.random.default_rng(15).choice(["green", "gold", "sprout"], 700),
        }
    )
    tiers = ["sprout", "green", "gold"]
    program = {"entry_tier": "sprout", "tiers": tiers, "time_zone": "Europe/Berlin"}

    def run(shuffle: bool) -> list[pl.DataFrame]:
        h, m, t = (
            f.sample(fraction=1.0, shuffle=True, seed=6) if shuffle else f
            for f in (history, members, transactions)
        )
        thresholds = [("sprout", 0.0), ("green", 200.0), ("gold", 900.0)]
        migration = tier_migration(
            h, date_a=date(2023, 9, 1), date_b=date(2024, 9, 1), members=m, **program
        )
        return [
            tier_distribution(h, members=m, **program),
            tier_at(h, on=date(2024, 3, 1), members=m, entry_tier="sprout"),
            migration.long,
            members_near_next_tier(t, thresholds, as_of=date(2024, 9, 1), within=0.5),
            time_to_upgrade(h, m, **program),
            tier_performance(t, h, as_of=date(2024, 9, 1), members=m, **program),
        ]

    for one, two in zip(run(False), run(True), strict=True):
        assert_frame_equal(one, two)


def test_prepared_transactions_give_the_results_of_the_frame():
    # every analysis of the transactions, on the frame and on one Prepared of it shared by
    # all of them (days up to the last day and earlier ones, which take part of the rows)
    transactions = random_transactions(16)
    members = random_members(transactions)
    history = pl.DataFrame(
        {
            "member_id": transactions["member_id"].drop_nulls().head(700),
            "at": random_ledger(17)["at"].head(700),
            "tier": np.random.default_rng(18).choice(["green", "gold", "sprout"], 700),
        }
    )
    thresholds = [("sprout", 0.0), ("green", 200.0), ("gold", 900.0)]
    zone = "Asia/Shanghai"

    def run(txs: pl.DataFrame | Prepared) -> list[pl.DataFrame]:
        results = []
        for day in (date(2024, 12, 31), date(2024, 3, 15)):
            results += [
                rfm_table(txs, as_of=day, time_zone=zone),
                rfm_table(txs, as_of=day, window_days=90, time_zone=zone),
                segment_movement(txs, date_a=day - timedelta(days=60), date_b=day).long,
                tier_progress(txs, thresholds, as_of=day, time_zone=zone),
                members_near_next_tier(txs, thresholds, as_of=day, within=0.5, time_zone=zone),
                tier_performance(txs, history, as_of=day, members=members, tiers=["sprout"]),
                churn_features(txs, cutoff=day, members=members, time_zone=zone),
                churn_labels(txs, cutoff=day - timedelta(days=90), time_zone=zone),
                points_cohorts(random_ledger(19), transactions=txs, time_zone=zone).cohorts,
            ]
            for by in ("join_month", "first_channel", "first_store", "tier"):
                for as_of in (None, day):
                    matrices = cohort_matrices(
                        txs, members=members, by=by, as_of=as_of, time_zone=zone
                    )
                    results.append(matrices.long)
        return results

    prepared = Prepared(transactions)
    for one, two in zip(run(transactions), run(prepared), strict=True):
        assert_frame_equal(one, two)
    assert repr(prepared) == "Prepared(6000 rows, 2 kept)"  # the rows, in each time zone
    prepared.forget()
    day = date(2024, 3, 15)
    assert_frame_equal(rfm_table(prepared, as_of=day), rfm_table(transactions, as_of=day))
