"""The store's answers as the frames the experience analyses take (comments, aspects,
drivers, pain points), for the API and the CLI. The analyses themselves are pure functions
in ``text/``, ``drivers.py`` and ``painpoints.py``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from memberlab.experience.models import SurveyResponse
from memberlab.members.models import Member

RATING_COLUMNS = (
    "rating_speed",
    "rating_staff",
    "rating_product_quality",
    "rating_value",
    "rating_app_usability",
    "rating_cleanliness",
)


def answers_frame(
    session: Session,
    *,
    timezone: str,
    start: date | None = None,
    end: date | None = None,
    touchpoint: str | None = None,
) -> pl.DataFrame:
    """Answers with scores, ratings and comments, times in the tenant's zone; ``start`` and
    ``end`` are inclusive local days."""
    zone = ZoneInfo(timezone)
    query = select(
        SurveyResponse.response_id,
        Member.member_id,
        SurveyResponse.responded_at,
        SurveyResponse.touchpoint,
        SurveyResponse.channel,
        SurveyResponse.store,
        SurveyResponse.nps,
        SurveyResponse.csat,
        SurveyResponse.ces,
        *(getattr(SurveyResponse, c) for c in RATING_COLUMNS),
        SurveyResponse.comment,
    ).outerjoin(Member, Member.id == SurveyResponse.member_pk)
    if start is not None:
        query = query.where(SurveyResponse.responded_at >= datetime.combine(start, time.min, zone))
    if end is not None:
        after = datetime.combine(end + timedelta(days=1), time.min, zone)
        query = query.where(SurveyResponse.responded_at < after)
    if touchpoint is not None:
        query = query.where(SurveyResponse.touchpoint == touchpoint)
    schema = {
        "response_id": pl.String, "member_id": pl.String, "responded_at": pl.Datetime("us"),
        "touchpoint": pl.String, "channel": pl.String, "store": pl.String, "nps": pl.Int64,
        "csat": pl.Int64, "ces": pl.Int64, **dict.fromkeys(RATING_COLUMNS, pl.Int64),
        "comment": pl.String,
    }  # fmt: skip
    rows = [tuple(r) for r in session.execute(query).all()]
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    at = pl.col("responded_at")
    if frame.schema["responded_at"].time_zone is None:  # type: ignore[union-attr]
        at = at.dt.replace_time_zone("UTC")
    return frame.with_columns(at.dt.convert_time_zone(timezone).alias("responded_at"))


def comment_summary(
    answers: pl.DataFrame, *, cache_dir: Path, lexicon_file: Path | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(comment_table, aspect_summary)`` of the answers' comments."""
    from memberlab.experience.text.aspects import aspect_summary, comment_table, load_lexicon

    lexicon = load_lexicon(lexicon_file) if lexicon_file else None
    with_text = answers.filter(pl.col("comment").is_not_null())
    table = comment_table(with_text, lexicon=lexicon, cache_dir=cache_dir)
    return table, aspect_summary(table, lexicon=lexicon)


def json_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows for JSON: NaN (an undefined rate) becomes null."""
    return frame.with_columns(pl.col(pl.Float64).fill_nan(None)).to_dicts()


@dataclass(frozen=True)
class Diagnosis:
    """What drives the scores and where it hurts, for one period."""

    weights: pl.DataFrame  # relative weights of the ratings on NPS, per touchpoint
    skipped: list[str]  # touchpoints that could not be analysed, and why
    aspects: pl.DataFrame  # comment aspects behind detractors
    pain_points: pl.DataFrame


def diagnose(
    answers: pl.DataFrame,
    transactions: pl.DataFrame | None,
    *,
    cache_dir: Path,
    lexicon_file: Path | None = None,
    resamples: int = 1000,
) -> Diagnosis:
    from memberlab.core.errors import InvalidInput
    from memberlab.experience.drivers import aspect_drivers, driver_weights
    from memberlab.experience.painpoints import pain_points
    from memberlab.experience.text.aspects import load_lexicon

    lexicon = load_lexicon(lexicon_file) if lexicon_file else None
    table, _ = comment_summary(answers, cache_dir=cache_dir, lexicon_file=lexicon_file)
    skipped: list[str] = []

    def part(run: Any) -> pl.DataFrame:
        # too few answers for one part of the diagnosis is said, not fatal to the rest
        try:
            return run()
        except InvalidInput as error:
            skipped.extend(e.render() for e in error.errors)
            return pl.DataFrame()

    def weights_table() -> pl.DataFrame:
        drivers = driver_weights(answers, resamples=resamples)
        skipped.extend(e.render() for e in drivers.skipped)  # touchpoints left out
        return drivers.table

    weights = part(weights_table)
    aspects = part(lambda: aspect_drivers(answers, table, lexicon=lexicon))
    pains = part(lambda: pain_points(answers, table, transactions, lexicon=lexicon))
    return Diagnosis(weights, skipped, aspects, pains)
