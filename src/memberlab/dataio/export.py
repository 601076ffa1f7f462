"""Exporting stored data and analysis results: CSV for Excel, formatted XLSX, Parquet.

``write_table`` writes any frame; the ``*_frame`` functions read the store into frames whose
columns are the import fields, so an export imports back without loss (money in yuan with
two decimals, times in the tenant's zone).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.pii import PersonalDataVault
from memberlab.experience.models import SurveyResponse
from memberlab.ledger.liability import liability
from memberlab.ledger.models import LedgerEntry, Order, OrderReturn
from memberlab.ledger.models import MemberState as MemberStateRow
from memberlab.ledger.rows import order_from_json, order_head
from memberlab.members.models import Member
from memberlab.programs.rules import OrderRecord
from memberlab.retail.models import Product, Store

FORMATS = ("csv", "xlsx", "parquet")
MONEY_FORMAT = "#,##0.00"
INTEGER_FORMAT = "#,##0"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"


def format_of(path: Path, given: str | None = None) -> str:
    chosen = (given or path.suffix.lstrip(".") or "csv").lower()
    if chosen not in FORMATS:
        raise InvalidInput(
            errors=[FieldError("format", "dataio.export.unknown_format", {"format": chosen})]
        )
    return chosen


def write_tables(
    frames: dict[str, pl.DataFrame],
    path: Path,
    *,
    format: str | None = None,
    timezone: str = "Asia/Shanghai",
) -> list[Path]:
    """Several tables: sheets of one workbook in XLSX, ``<stem>-<name>`` files otherwise."""
    chosen = format_of(path, format)
    if len(frames) == 1:
        ((name, frame),) = frames.items()
        return [write_table(frame, path, format=chosen, timezone=timezone, sheet=name)]
    if chosen == "xlsx":
        import xlsxwriter

        path.parent.mkdir(parents=True, exist_ok=True)
        with xlsxwriter.Workbook(path) as workbook:
            for name, frame in frames.items():
                write_table(frame, path, format=chosen, timezone=timezone, sheet=name,
                            workbook=workbook)  # fmt: skip
        return [path]
    return [
        write_table(
            frame,
            path.with_name(f"{path.stem}-{name}{path.suffix}"),
            format=chosen,
            timezone=timezone,
        )
        for name, frame in frames.items()
    ]


def write_table(
    frame: pl.DataFrame,
    path: Path,
    *,
    format: str | None = None,
    timezone: str = "Asia/Shanghai",
    money_columns: tuple[str, ...] = (),
    sheet: str = "data",
    workbook: Any = None,
) -> Path:
    """Write ``frame`` to ``path`` as CSV (UTF-8 with BOM), XLSX or Parquet.

    Times are shown in ``timezone`` without an offset (what Excel and people expect);
    ``money_columns`` hold yuan as Decimal and get a money format in XLSX.
    """
    chosen = format_of(path, format)
    frame = _local_times(frame, timezone)
    path.parent.mkdir(parents=True, exist_ok=True)
    if chosen == "parquet":
        frame.write_parquet(path)
    elif chosen == "csv":
        frame.with_columns(
            pl.col(pl.Datetime).dt.strftime("%Y-%m-%d %H:%M:%S"),
            pl.col(money_columns).cast(pl.String),
        ).write_csv(path, include_bom=True)
    else:
        formats: dict[str, str] = {}
        for name, dtype in frame.schema.items():
            if name in money_columns or isinstance(dtype, pl.Decimal):
                formats[name] = MONEY_FORMAT
            elif dtype.is_integer():
                formats[name] = INTEGER_FORMAT
            elif isinstance(dtype, pl.Datetime):
                formats[name] = DATETIME_FORMAT
            elif dtype == pl.Date:
                formats[name] = DATE_FORMAT
        frame.write_excel(
            workbook if workbook is not None else path,
            worksheet=sheet,
            header_format={"bold": True, "bg_color": "#DDEBF7", "border": 1},
            column_formats=formats,  # type: ignore[arg-type]
            autofit=True,
            freeze_panes=(1, 0),
            table_style=None,
            autofilter=True,
        )
    return path


def _local_times(frame: pl.DataFrame, timezone: str) -> pl.DataFrame:
    zoned = [n for n, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone]
    if not zoned:
        return frame
    return frame.with_columns(
        pl.col(zoned).dt.convert_time_zone(timezone).dt.replace_time_zone(None)
    )


def _yuan(minor: int | None) -> Decimal | None:
    return None if minor is None else Decimal(minor).scaleb(-2)


_MONEY = pl.Decimal(18, 2)


# --- what can be exported --------------------------------------------------------------------


def members_frame(session: Session, *, vault: PersonalDataVault, reveal: bool) -> pl.DataFrame:
    """Members with tier and balances; personal data in clear only when ``reveal``."""
    rows = session.execute(
        select(Member, MemberStateRow)
        .outerjoin(MemberStateRow, MemberStateRow.member_pk == Member.id)
        .order_by(Member.id)
    ).all()
    records: list[dict[str, Any]] = []
    for member, state in rows:
        name = vault.open(member.name_sealed)
        birthday = vault.open(member.birthday_sealed)
        records.append(
            {
                "member_id": member.member_id,
                "mobile": vault.open(member.mobile_sealed) if reveal else member.mobile_masked,
                "name": name if reveal else None,
                "gender": member.gender,
                "birthday": datetime.fromisoformat(birthday).date()
                if (birthday and reveal)
                else None,
                "city": member.city,
                "language": member.language,
                "enrolled_at": member.enrolled_at,
                "enrol_channel": member.enrol_channel,
                "enrol_store": member.enrol_store,
                "external_id": member.external_id,
                "status": member.status,
                "tier": state.tier if state else None,
                "available_points": state.available if state else 0,
                "pending_points": state.pending if state else 0,
                "growth": state.lifetime_growth if state else 0,
                "lifetime_spend": _yuan(state.lifetime_spend if state else 0),
                "lifetime_orders": state.lifetime_orders if state else 0,
            }
        )
    schema = {
        "member_id": pl.String, "mobile": pl.String, "name": pl.String, "gender": pl.String,
        "birthday": pl.Date, "city": pl.String, "language": pl.String,
        "enrolled_at": pl.Datetime("us", "UTC"), "enrol_channel": pl.String,
        "enrol_store": pl.String, "external_id": pl.String, "status": pl.String,
        "tier": pl.String, "available_points": pl.Int64, "pending_points": pl.Int64,
        "growth": pl.Int64, "lifetime_spend": _MONEY, "lifetime_orders": pl.Int64,
    }  # fmt: skip
    return pl.DataFrame(records, schema=schema, orient="row")


def transactions_frame(session: Session) -> pl.DataFrame:
    """Every stored purchase line and return line, in the columns of the transactions import."""
    members = dict(session.execute(select(Member.id, Member.member_id)).all())  # type: ignore[arg-type]
    records: list[dict[str, Any]] = []
    orders: dict[str, OrderRecord] = {}
    for order in session.scalars(select(Order).order_by(Order.member_pk, Order.occurred_at)):
        record = orders[order.order_id] = order_from_json(order.record, order_head(order))
        for index, line in enumerate(record.lines):
            records.append(
                {
                    "kind": "purchase", "order_id": order.order_id, "return_id": None,
                    "member_id": members[order.member_pk], "occurred_at": order.occurred_at,
                    "channel": order.channel, "store": order.store, "sku": line.sku,
                    "category": line.category, "quantity": line.quantity,
                    "amount": _yuan(line.amount),
                    "points_used": order.points_used if index == 0 else 0,
                }
            )  # fmt: skip
    for item in session.scalars(select(OrderReturn).order_by(OrderReturn.occurred_at)):
        stored = orders.get(item.order_id)
        lines = stored.lines if stored else []
        for returned in item.lines:
            line = lines[returned["line"]] if returned["line"] < len(lines) else None
            quantity = returned["quantity"]
            amount = line.amount * quantity // line.quantity if line and line.quantity else None
            records.append(
                {
                    "kind": "return", "order_id": item.order_id, "return_id": item.return_id,
                    "member_id": members[item.member_pk], "occurred_at": item.occurred_at,
                    "channel": stored.channel if stored else None,
                    "store": stored.store if stored else None,
                    "sku": line.sku if line else None,
                    "category": line.category if line else None,
                    "quantity": quantity, "amount": _yuan(amount), "points_used": 0,
                }
            )  # fmt: skip
    schema = {
        "kind": pl.String, "order_id": pl.String, "return_id": pl.String,
        "member_id": pl.String, "occurred_at": pl.Datetime("us", "UTC"), "channel": pl.String,
        "store": pl.String, "sku": pl.String, "category": pl.String, "quantity": pl.Int64,
        "amount": _MONEY, "points_used": pl.Int64,
    }  # fmt: skip
    return pl.DataFrame(records, schema=schema, orient="row")


def ledger_frame(session: Session, member_id: str | None = None) -> pl.DataFrame:
    """Ledger entries with each member's running balance."""
    query = (
        select(Member.member_id, LedgerEntry)
        .join(Member, Member.id == LedgerEntry.member_pk)
        .order_by(LedgerEntry.member_pk, LedgerEntry.seq)
    )
    if member_id:
        query = query.where(Member.member_id == member_id)
    records = [
        {
            "member_id": mid, "seq": e.seq, "kind": e.kind, "at": e.at,
            "reference": e.reference, "points": e.points, "growth": e.growth,
            "spend": _yuan(e.spend), "orders": e.orders,
        }
        for mid, e in session.execute(query)
    ]  # fmt: skip
    schema = {
        "member_id": pl.String, "seq": pl.Int64, "kind": pl.String,
        "at": pl.Datetime("us", "UTC"), "reference": pl.String, "points": pl.Int64,
        "growth": pl.Int64, "spend": _MONEY, "orders": pl.Int64,
    }  # fmt: skip
    frame = pl.DataFrame(records, schema=schema, orient="row")
    return frame.with_columns(pl.col("points").cum_sum().over("member_id").alias("balance"))


def liability_frames(session: Session, *, as_of: datetime) -> dict[str, pl.DataFrame]:
    report = liability(session, as_of=as_of)
    by_month = pl.DataFrame(
        [m.model_dump() for m in report.by_expiry_month],
        schema={"month": pl.String, "points": pl.Int64, "value": _MONEY},
        orient="row",
    )
    flows = (
        pl.DataFrame([f.model_dump() for f in report.flows], orient="row")
        if report.flows
        else (pl.DataFrame(schema={"month": pl.String}))
    )
    return {"by_expiry_month": by_month, "flows": flows}


def stores_frame(session: Session) -> pl.DataFrame:
    rows = [
        {"store_id": s.store_id, "name_zh": s.name_zh, "name_en": s.name_en, "city": s.city,
         "city_en": s.city_en, "opened_on": s.opened_on}
        for s in session.scalars(select(Store).order_by(Store.store_id))
    ]  # fmt: skip
    schema = {"store_id": pl.String, "name_zh": pl.String, "name_en": pl.String,
              "city": pl.String, "city_en": pl.String, "opened_on": pl.Date}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def products_frame(session: Session) -> pl.DataFrame:
    rows = [
        {"sku": p.sku, "name_zh": p.name_zh, "name_en": p.name_en, "category": p.category,
         "price": _yuan(p.price_minor)}
        for p in session.scalars(select(Product).order_by(Product.sku))
    ]  # fmt: skip
    schema = {"sku": pl.String, "name_zh": pl.String, "name_en": pl.String,
              "category": pl.String, "price": _MONEY}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


RESPONSE_COLUMNS = (
    "response_id", "member_id", "order_id", "responded_at", "survey", "touchpoint", "channel",
    "store", "language", "nps", "csat", "ces", "rating_speed", "rating_staff",
    "rating_product_quality", "rating_value", "rating_app_usability", "rating_cleanliness",
    "comment",
)  # fmt: skip


def responses_frame(session: Session) -> pl.DataFrame:
    query = (
        select(SurveyResponse, Member.member_id)
        .outerjoin(Member, Member.id == SurveyResponse.member_pk)
        .order_by(SurveyResponse.responded_at, SurveyResponse.id)
    )
    rows = []
    for response, member_id in session.execute(query):
        row = {c: getattr(response, c, None) for c in RESPONSE_COLUMNS}
        row["member_id"] = member_id
        rows.append(row)
    schema: dict[str, Any] = dict.fromkeys(RESPONSE_COLUMNS, pl.String)
    schema["responded_at"] = pl.Datetime("us", "UTC")
    for c in RESPONSE_COLUMNS[9:18]:
        schema[c] = pl.Int64
    return pl.DataFrame(rows, schema=schema, orient="row")
