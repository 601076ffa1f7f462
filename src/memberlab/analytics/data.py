"""The frames analyses take, read from the store or from a consultant's file.

Every analysis is a pure function over Polars frames; this module is where those frames
come from. Column contracts (times in the tenant's zone, so that a day is the member's local
day; money in yuan as Float64):

- ``transactions``: member_id, order_id, occurred_at, amount, kind ("purchase" | "return"),
  channel, store
- ``members``: member_id, enrolled_at, enrol_channel, enrol_store, city, tier
- ``ledger``: member_id, at, kind, points (signed)
- ``lots``: member_id, earned_at, expires_at, amount, remaining
- ``tier_history``: member_id, at, from_tier, tier
- ``responses``: member_id, responded_at, nps, csat, ces, touchpoint, channel, store
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from memberlab.dataio.kinds import TRANSACTIONS, FieldSpec, FieldType, ImportKind
from memberlab.dataio.prepare import prepare
from memberlab.experience.models import SurveyResponse
from memberlab.ledger.models import LedgerEntry, Order, OrderReturn, PointsLot, TierChange
from memberlab.ledger.models import MemberState as MemberStateRow
from memberlab.members.models import Member

UTC_TIME = pl.Datetime("us", "UTC")


def _frame(session: Session, query: Select[Any], schema: dict[str, Any]) -> pl.DataFrame:
    rows = session.execute(query).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def _aware(frame: pl.DataFrame, *columns: str, timezone: str = "UTC") -> pl.DataFrame:
    """Times in ``timezone``: SQLite hands back naive UTC, PostgreSQL zoned times."""
    fixes = [
        (
            pl.col(c).dt.replace_time_zone("UTC")
            if frame.schema[c].time_zone is None  # type: ignore[union-attr]
            else pl.col(c)
        ).dt.convert_time_zone(timezone)
        for c in columns
    ]
    return frame.with_columns(fixes) if fixes else frame


def transactions_from_store(session: Session, *, timezone: str = "Asia/Shanghai") -> pl.DataFrame:
    """Orders (amount paid) and returns (amount returned) of every member."""
    orders = _frame(
        session,
        select(
            Member.member_id,
            Order.order_id,
            Order.occurred_at,
            Order.amount_paid,
            Order.channel,
            Order.store,
        ).join(Member, Member.id == Order.member_pk),
        {
            "member_id": pl.String, "order_id": pl.String, "occurred_at": pl.Datetime("us"),
            "amount_minor": pl.Int64, "channel": pl.String, "store": pl.String,
        },
    )  # fmt: skip
    returns = _frame(
        session,
        select(
            Member.member_id,
            OrderReturn.order_id,
            OrderReturn.occurred_at,
            OrderReturn.amount_returned,
        ).join(Member, Member.id == OrderReturn.member_pk),
        {
            "member_id": pl.String, "order_id": pl.String, "occurred_at": pl.Datetime("us"),
            "amount_minor": pl.Int64,
        },
    )  # fmt: skip
    frame = pl.concat(
        [
            orders.with_columns(pl.lit("purchase").alias("kind")),
            returns.with_columns(
                pl.lit("return").alias("kind"),
                pl.lit(None, dtype=pl.String).alias("channel"),
                pl.lit(None, dtype=pl.String).alias("store"),
            ).select([*orders.columns, "kind"]),
        ]
    )
    frame = _aware(frame, "occurred_at", timezone=timezone).with_columns(
        (pl.col("amount_minor") / 100).alias("amount")
    )
    return frame.select(
        "member_id", "order_id", "occurred_at", "amount", "kind", "channel", "store"
    ).sort("member_id", "occurred_at")


def members_from_store(session: Session, *, timezone: str = "Asia/Shanghai") -> pl.DataFrame:
    frame = _frame(
        session,
        select(
            Member.member_id,
            Member.enrolled_at,
            Member.enrol_channel,
            Member.enrol_store,
            Member.city,
            MemberStateRow.tier,
        ).outerjoin(MemberStateRow, MemberStateRow.member_pk == Member.id),
        {
            "member_id": pl.String, "enrolled_at": pl.Datetime("us"), "enrol_channel": pl.String,
            "enrol_store": pl.String, "city": pl.String, "tier": pl.String,
        },
    )  # fmt: skip
    return _aware(frame, "enrolled_at", timezone=timezone)


def ledger_from_store(session: Session, *, timezone: str = "Asia/Shanghai") -> pl.DataFrame:
    frame = _frame(
        session,
        select(Member.member_id, LedgerEntry.at, LedgerEntry.kind, LedgerEntry.points).join(
            Member, Member.id == LedgerEntry.member_pk
        ),
        {"member_id": pl.String, "at": pl.Datetime("us"), "kind": pl.String, "points": pl.Int64},
    )
    return _aware(frame, "at", timezone=timezone)


def lots_from_store(session: Session, *, timezone: str = "Asia/Shanghai") -> pl.DataFrame:
    frame = _frame(
        session,
        select(
            Member.member_id,
            PointsLot.earned_at,
            PointsLot.expires_at,
            PointsLot.amount,
            PointsLot.remaining,
        ).join(Member, Member.id == PointsLot.member_pk),
        {
            "member_id": pl.String, "earned_at": pl.Datetime("us"),
            "expires_at": pl.Datetime("us"), "amount": pl.Int64, "remaining": pl.Int64,
        },
    )  # fmt: skip
    return _aware(frame, "earned_at", "expires_at", timezone=timezone)


def tier_history_from_store(session: Session, *, timezone: str = "Asia/Shanghai") -> pl.DataFrame:
    frame = _frame(
        session,
        select(Member.member_id, TierChange.at, TierChange.from_tier, TierChange.to_tier).join(
            Member, Member.id == TierChange.member_pk
        ),
        {"member_id": pl.String, "at": pl.Datetime("us"), "from_tier": pl.String,
         "tier": pl.String},
    )  # fmt: skip
    return _aware(frame, "at", timezone=timezone).sort("member_id", "at")


def responses_from_store(session: Session, *, timezone: str = "Asia/Shanghai") -> pl.DataFrame:
    frame = _frame(
        session,
        select(
            Member.member_id,
            SurveyResponse.responded_at,
            SurveyResponse.nps,
            SurveyResponse.csat,
            SurveyResponse.ces,
            SurveyResponse.touchpoint,
            SurveyResponse.channel,
            SurveyResponse.store,
        ).outerjoin(Member, Member.id == SurveyResponse.member_pk),
        {
            "member_id": pl.String, "responded_at": pl.Datetime("us"), "nps": pl.Int64,
            "csat": pl.Int64, "ces": pl.Int64, "touchpoint": pl.String, "channel": pl.String,
            "store": pl.String,
        },
    )  # fmt: skip
    return _aware(frame, "responded_at", timezone=timezone)


# A consultant's file of purchases for analysis: only member, time and amount are needed.
SALES = ImportKind(
    name="sales",
    fields=tuple(
        FieldSpec(s.name, s.type, s.synonyms, required=s.name in ("member_id", "occurred_at",
                  "amount"), minimum=s.minimum, maximum=s.maximum, choices=s.choices,
                  default=s.default, open_choices=s.open_choices, max_length=s.max_length)
        for s in TRANSACTIONS.fields
        if s.type != FieldType.MOBILE
    ),
)  # fmt: skip


def transactions_from_file(
    path: Path, *, timezone: str, now: datetime, sheet: str | None = None
) -> tuple[pl.DataFrame, int]:
    """A file of purchases (headers as the importer recognises them) as ``transactions``;
    with the number of rows that could not be read (they are left out)."""
    prepared = prepare(path, SALES, timezone=timezone, now=now, sheet=sheet)
    frame = prepared.frame.with_columns(
        (pl.col("amount") / 100).alias("amount"),
        pl.col("order_id").fill_null(pl.concat_str(pl.lit("row-"), pl.col("_row").cast(pl.String))),
    )
    return (
        frame.with_columns(pl.col("occurred_at").dt.convert_time_zone(timezone)).select(
            "member_id", "order_id", "occurred_at", "amount", "kind", "channel", "store"
        ),
        prepared.rejected_rows,
    )
