"""HTTP routes of member analytics, computed on the tenant's store.

``GET /analytics/clv`` (BG/NBD or Pareto/NBD with Gamma-Gamma: parameters, standard
errors, log-likelihoods, per-member values as a file with ``format``) and
``GET /analytics/rfm`` (segments, sizes and value shares).
"""

from __future__ import annotations

import tempfile
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, BackgroundTasks, Query
from fastapi.responses import FileResponse

from memberlab.analytics import clv as clv_models
from memberlab.analytics import data
from memberlab.analytics.rfm import rfm_table, segment_summary
from memberlab.analytics.summary import rfm_summary
from memberlab.core.access import Permission
from memberlab.core.i18n import current_language
from memberlab.core.web import RequestContext, requires
from memberlab.dataio.export import write_table
from memberlab.programs import service as program_service

router = APIRouter(prefix="/analytics", tags=["analytics"])


class PurchaseModelName(StrEnum):
    BGNBD = "bgnbd"
    PNBD = "pnbd"


class TimeUnitName(StrEnum):
    DAY = "day"
    WEEK = "week"


def _timezone(ctx: RequestContext) -> str:
    try:
        version = program_service.active_version(ctx.session, as_of=ctx.now)
    except program_service.NoActiveProgram:
        return ctx.state.settings.timezone
    return program_service.definition_of(version).timezone


@router.get("/clv", summary="Lifetime value: purchase and spend models fitted on the store")
def get_clv(
    ctx: Annotated[RequestContext, requires(Permission.REPORTS_READ)],
    background: BackgroundTasks,
    calibration_end: date | None = None,
    model: PurchaseModelName = PurchaseModelName.BGNBD,
    time_unit: TimeUnitName = TimeUnitName.DAY,
    months: Annotated[int, Query(ge=1, le=120)] = 12,
    margin: Annotated[float, Query(gt=0, le=1)] = 1.0,
    annual_discount_rate: Annotated[float, Query(ge=0, le=1)] = 0.1,
    members_format: Annotated[str | None, Query(pattern="^(csv|xlsx|parquet)$")] = None,
) -> Any:
    """With ``members_format`` the answer is the per-member file (p_alive, expected
    purchases, expected spend, CLV); without it, the fitted models and totals."""
    timezone = _timezone(ctx)
    transactions = data.transactions_from_store(ctx.session, timezone=timezone)
    end = calibration_end or ctx.now.date()
    summary = rfm_summary(
        transactions.filter(pl.col("kind") == "purchase"),
        calibration_end=end,
        time_unit=time_unit.value,  # type: ignore[arg-type]
    )
    purchase_fit = clv_models.fit_purchase_model(summary, model=model.value)  # type: ignore[arg-type]
    spend_fit = clv_models.fit_gamma_gamma(summary)
    values = clv_models.customer_lifetime_value(
        purchase_fit,
        spend_fit,
        summary,
        months=months,
        annual_discount_rate=annual_discount_rate,
        margin=margin,
        time_unit=time_unit.value,  # type: ignore[arg-type]
    )
    if members_format is not None:
        folder = Path(tempfile.mkdtemp(prefix="memberlab-clv-"))
        path = write_table(
            summary.join(values, on="member_id", how="left"),
            folder / f"clv.{members_format}",
            timezone=timezone,
        )
        background.add_task(_remove, folder)
        return FileResponse(path, filename=path.name)
    lang = current_language()
    return {
        **purchase_fit.as_dict(lang),
        "spend_model": spend_fit.as_dict(lang),
        "frequency_spend_correlation": clv_models.spend_frequency_correlation(summary),
        "calibration_end": end.isoformat(),
        "members": summary.height,
        "expected_alive": float(values["p_alive"].sum()),
        "clv_total": float(values["clv"].sum()),
        "clv_mean": float(values["clv"].mean() or 0.0),
    }


@router.get("/rfm", summary="RFM segments: sizes and value shares")
def get_rfm(
    ctx: Annotated[RequestContext, requires(Permission.REPORTS_READ)],
    as_of: date | None = None,
) -> dict[str, Any]:
    timezone = _timezone(ctx)
    transactions = data.transactions_from_store(ctx.session, timezone=timezone)
    day = as_of or ctx.now.date()
    table = rfm_table(transactions, as_of=day, time_zone=timezone)
    return {
        "as_of": day.isoformat(),
        "members": table.height,
        "segments": segment_summary(table).to_dicts(),
    }


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
