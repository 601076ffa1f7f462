"""Pain points: touchpoint x aspect ranked by what the complaints cost, worked by hand, on
real comments, and on the demo world against the problems its generator injects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from memberlab.core.errors import InvalidInput
from memberlab.datasets import world_config
from memberlab.datasets.comments import INCIDENT_ASPECT
from memberlab.datasets.world import generate_world, incident_costs
from memberlab.experience.painpoints import pain_points
from memberlab.experience.text.aspects import MAX_QUOTE_CHARS, comment_table

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LONG = "排队太久了，" * 50  # 300 characters


def _responses() -> pl.DataFrame:
    """Six store answers with a comment and one without; four delivery answers."""
    ids = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "d1", "d2", "d3", "d4"]
    return pl.DataFrame(
        {
            "response_id": ids,
            "member_id": [f"m_{i}" for i in ids],
            "responded_at": [T0] * len(ids),
            "touchpoint": ["store"] * 7 + ["delivery"] * 4,
            "nps": [2, 4, 8, 9, 10, 10, 0, 3, 5, 9, 10],
            "comment": ["..."] * 6 + [None] + ["..."] * 4,
        }
    )


def _aspects() -> pl.DataFrame:
    rows = [
        ("s1", "waiting_time", "negative", 0.10, "  排队  排了四十分钟 "),
        ("s2", "waiting_time", "negative", 0.15, LONG),
        ("s3", "waiting_time", "positive", 0.90, "不用排队"),
        ("s2", "staff_attitude", "negative", 0.30, LONG),
        ("d1", "delivery_speed", "negative", 0.05, "外卖超时一个小时"),
        ("d2", "delivery_speed", "negative", 0.20, "外卖超时一个小时"),  # same words again
        ("d3", "delivery_speed", "neutral", 0.50, "外卖还行"),
        ("d1", "product_quality", "negative", 0.05, "外卖超时一个小时"),
        ("s7", "waiting_time", "negative", 0.10, "ignored: no comment in the answers"),
    ]
    return pl.DataFrame(
        rows, schema=["response_id", "aspect", "label", "sentiment", "comment"], orient="row"
    )


def test_pain_points_by_hand() -> None:
    table = pain_points(_responses(), _aspects(), min_negative=2)
    rows = {(r["touchpoint"], r["aspect"]): r for r in table.iter_rows(named=True)}

    # store, waiting: 3 mentions, 2 negative (NPS 2 and 4, mean 3); the store's other four
    # commented answers have 8, 9, 10, 10 (mean 9.25): gap 6.25, score 2 * 0.625 = 1.25
    queue = rows["store", "waiting_time"]
    assert (queue["answers"], queue["mentions"], queue["negative"]) == (6, 3, 2)
    assert queue["share_negative"] == pytest.approx(2 / 3)
    assert queue["mean_nps_negative"] == pytest.approx(3.0)
    assert queue["mean_nps_others"] == pytest.approx(9.25)
    assert queue["nps_gap"] == pytest.approx(6.25)
    assert queue["detractor_rate_negative"] == pytest.approx(1.0)
    assert queue["score"] == pytest.approx(1.25)
    assert queue["score_per_answer"] == pytest.approx(1.25 / 6)
    assert queue["churn_gap"] is None
    assert (queue["touchpoint_zh"], queue["touchpoint_en"]) == ("门店", "Store")
    assert (queue["aspect_zh"], queue["aspect_en"]) == ("等待时间", "Waiting time")
    # quotes: most negative first, spaces tidied, long ones cut with an ellipsis
    assert queue["quotes"][0] == "排队 排了四十分钟"
    assert len(queue["quotes"][1]) == MAX_QUOTE_CHARS
    assert queue["quotes"][1].endswith("…")
    # delivery, speed: NPS 3 and 5 (mean 4) against 9 and 10 (9.5): 2 * 0.55 = 1.1; the
    # same comment twice is quoted once
    speed = rows["delivery", "delivery_speed"]
    assert speed["score"] == pytest.approx(1.1)
    assert speed["quotes"] == ["外卖超时一个小时"]
    # one complaint each: too small to judge, ranked after the others whatever their score
    assert rows["delivery", "product_quality"]["score"] == pytest.approx(0.5)  # 1 * (8 - 3)/10
    assert rows["store", "staff_attitude"]["score"] == pytest.approx(0.38)  # 1 * (7.8 - 4)/10
    assert table.select("touchpoint", "aspect", "too_small").rows() == [
        ("store", "waiting_time", False),
        ("delivery", "delivery_speed", False),
        ("delivery", "product_quality", True),
        ("store", "staff_attitude", True),
    ]
    assert table.get_column("rank").to_list() == [1, 2, 3, 4]


def test_churn_after_the_complaint_can_change_the_order() -> None:
    # Everyone buys again within 90 days except s1, d1 and d2. Store, waiting: churn 1/2
    # among the complainers, 0/4 among the others: score 2 * (0.625 + 0.5) = 2.25.
    # Delivery, speed: 2/2 against 0/2: 2 * (0.55 + 1.0) = 3.1, now first.
    buyers = ["s2", "s3", "s4", "s5", "s6", "s7", "d3", "d4"]
    transactions = pl.DataFrame(
        {
            "member_id": [f"m_{i}" for i in buyers] + ["m_s1"],
            "occurred_at": [T0 + timedelta(days=30)] * len(buyers) + [T0 + timedelta(days=200)],
            "amount": [25.0] * (len(buyers) + 1),
            "kind": ["purchase"] * (len(buyers) + 1),
        }
    )

    table = pain_points(_responses(), _aspects(), transactions, churn_days=90, min_negative=2)
    top, second = table.head(2).rows(named=True)

    assert (top["touchpoint"], top["aspect"]) == ("delivery", "delivery_speed")
    assert (top["churn_negative"], top["churn_others"]) == (1.0, 0.0)
    assert top["score"] == pytest.approx(3.1)
    assert (second["churn_negative"], second["churn_others"], second["churn_gap"]) == (0.5, 0, 0.5)
    assert second["score"] == pytest.approx(2.25)

    # with churn weighed at zero, back to the NPS order
    nps_only = pain_points(_responses(), _aspects(), transactions, churn_weight=0, min_negative=2)
    assert nps_only.get_column("aspect").to_list()[:2] == ["waiting_time", "delivery_speed"]


def test_answers_without_comments_can_count_as_others() -> None:
    table = pain_points(_responses(), _aspects(), commented_only=False, min_negative=2)
    queue = table.filter(pl.col("aspect") == "waiting_time").row(0, named=True)

    # s7 (NPS 0, no comment) is now an answer, and its row in the aspects counts:
    # complaints 2, 4, 0 (mean 2); others 8, 9, 10, 10
    assert (queue["answers"], queue["negative"]) == (7, 3)
    assert queue["mean_nps_negative"] == pytest.approx(2.0)


def test_real_comments_through_the_aspect_table() -> None:
    # English comments are scored by VADER, so this runs the whole path without training
    # the Chinese model.
    comments = {
        "a": "Delivery was late again, took over an hour to arrive.",
        "b": "The delivery never arrived and support was useless.",
        "c": "Fast delivery, tasty drink.",
        "d": "Long line at the store, waited ages.",
        "e": "Lovely staff, great service.",
    }
    responses = pl.DataFrame(
        {
            "response_id": list(comments),
            "touchpoint": ["delivery", "delivery", "delivery", "store", "store"],
            "nps": [2, 1, 10, 6, 9],
            "comment": list(comments.values()),
        }
    )

    table = pain_points(responses, comment_table(responses), min_negative=1)
    top = table.row(0, named=True)

    assert (top["touchpoint"], top["aspect"], top["negative"], top["mentions"]) == (
        "delivery",
        "delivery_speed",
        2,
        3,
    )
    assert top["nps_gap"] == pytest.approx(10 - 1.5)
    assert top["quotes"] == [comments["b"], comments["a"]]  # most negative first


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        pain_points(_responses().drop("touchpoint"), _aspects())
    assert caught.value.errors[0].loc == "responses.touchpoint"

    with pytest.raises(InvalidInput) as caught:
        pain_points(_responses(), _aspects().drop("label", "sentiment"))
    assert caught.value.errors[0].key == "experience.text.missing_column"

    with pytest.raises(InvalidInput) as caught:
        pain_points(_responses(), _aspects(), churn_days=0)
    assert caught.value.errors[0].key == "experience.value.days"
    assert "至少 1" in caught.value.render("zh-CN")


# --- the demo world ---------------------------------------------------------------------------

PURCHASES = ("store", "mini_program", "app", "delivery")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate_world(out, members=8000, seed=3)
    return out


@pytest.fixture(scope="module")
def responses(world: Path) -> pl.DataFrame:
    return pl.read_parquet(world / "responses.parquet")


@pytest.fixture(scope="module")
def problems(world: Path) -> list[dict]:
    return json.loads((world / "manifest.json").read_text(encoding="utf-8"))["injected_problems"]


@pytest.fixture(scope="module")
def read_comments(responses: pl.DataFrame, model_dir: Path) -> pl.DataFrame:
    """The comments through the real pipeline: clauses, the aspect lexicon, sentiment (the
    Chinese model is trained once per run, into ``model_dir``)."""
    return comment_table(responses.filter(pl.col("comment").is_not_null()), cache_dir=model_dir)


def test_the_top_three_pain_points_are_the_injected_problems(
    world: Path, responses: pl.DataFrame, problems: list[dict], read_comments: pl.DataFrame
) -> None:
    """The generator injects three problems (the manifest's ``injected_problems``): queues
    at peak in the stores, late deliveries, failures of the mini program. Read from the
    comments as a consultant would, they are the top three pain points, well clear of the
    rest.

    Checked on seeds 1 to 15 (8,000 members): the top three were the injected problems on
    all fifteen, the third scoring at least 2.1 times the fourth, and the queues came first
    on all fifteen; ten ranked all three in their designed order. Late deliveries and the
    mini program's failures score close (by design 12.2 and 8.8 NPS points per 1,000
    orders, and the mini program's many answers carry a share of comments the sentiment
    model reads as negative), so the test holds the set and the first. (With
    transactions, i.e. churn after the complaint, the top three held on 13 of the 15: a
    background pair with 20 to 80 complaints has a noisy churn gap.)"""
    table = pain_points(responses, read_comments)
    top = table.head(3)
    injected = [(p["touchpoint"], p["aspect"]) for p in problems]

    assert set(top.select("touchpoint", "aspect").iter_rows()) == set(injected)
    assert top.row(0, named=True)["touchpoint"] == injected[0][0] == "store"
    assert not top.get_column("too_small").any()
    assert (top.get_column("nps_gap") > 0.2).all()
    assert top.get_column("score").min() > 1.5 * table.get_column("score")[3]
    for quotes in top.get_column("quotes").to_list():
        assert len(quotes) == 3
    # complaints about each problem are mostly about that very problem: an incident told
    incidents = pl.read_parquet(world / "truth" / "incidents.parquet")
    for problem in problems:
        complained = read_comments.filter(
            (pl.col("aspect") == problem["aspect"]) & (pl.col("label") == "negative")
        ).join(
            responses.filter(pl.col("touchpoint") == problem["touchpoint"]).select(
                "response_id", "order_id"
            ),
            on="response_id",
        )
        told = complained.join(
            incidents.filter(pl.col("incident") == problem["incident"]).select("order_id"),
            on="order_id",
            how="semi",
        )
        assert told.height > 60
        # the rest: remarks on a poor experience of the aspect, and (Chinese) neutral
        # openers such as "小程序下单" the sentiment model reads as negative
        assert told.height > 0.3 * complained.height


def _truth_aspects(world: Path, responses: pl.DataFrame) -> pl.DataFrame:
    """What a perfect reader finds in the comments: every incident of the answer's order
    is mentioned, negatively, as its aspect (``comments.INCIDENT_ASPECT``)."""
    incidents = pl.read_parquet(world / "truth" / "incidents.parquet")
    return (
        responses.filter(pl.col("comment").is_not_null())
        .join(incidents.select("order_id", "incident"), on="order_id")
        .select(
            "response_id",
            pl.col("incident").replace_strict(INCIDENT_ASPECT).alias("aspect"),
            pl.lit("negative").alias("label"),
            "comment",
        )
        .unique(["response_id", "aspect"], keep="first", maintain_order=True)
    )


def test_the_worst_problem_per_answer_is_the_injected_one(
    world: Path, responses: pl.DataFrame
) -> None:
    # By design, per order at the touchpoint (``cost / share`` of ``incident_costs``):
    # late deliveries cost 0.09 NPS points per delivery, twice the queues per store visit
    # and three times the failures per mini program order
    per_order = {
        (row["touchpoint"], row["aspect"]): row["cost"] / row["share"]
        for row in incident_costs(world_config.WorldParams())
    }
    ranked = sorted(per_order, key=per_order.get, reverse=True)
    assert ranked[0] == ("delivery", "delivery_speed")
    assert per_order[ranked[0]] > 1.5 * per_order[ranked[1]]

    table = pain_points(responses, _truth_aspects(world, responses))
    # after-sales answers are chosen by returns, which the incidents cause, and the
    # membership survey has no order: the loss per answer is compared where people buy
    bought = table.filter(pl.col("touchpoint").is_in(PURCHASES))
    worst = bought.sort("score_per_answer", descending=True).row(0, named=True)

    assert (worst["touchpoint"], worst["aspect"]) == ranked[0]
    assert worst["nps_gap"] > 0.5
    assert len(worst["quotes"]) == 3
    assert len(set(worst["quotes"])) == 3
