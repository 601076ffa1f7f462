"""A tenant's own holiday table, stored, and the working-day calendar its engagements use.

The built-in table (``holidays_cn.yaml``) has the State Council's schedules up to the last
published year. A tenant may store an override in the same form (a year not yet published,
a company's own days off, a correction): it is checked with the same rules as the built-in
file, every problem named with its field and line, and kept with its source and date. Every
due date computed for the tenant's engagements then uses it, and says so: the calendar's
version becomes ``<built-in version>+<label>.<hash>`` and a date crossing a year the
override touched notes its label, source and date.

Uploads are kept (a new one or a removal closes the one in force), so the override behind
any version a computed date names can be read back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from memberlab.core.errors import FieldError, InvalidInput, NotFound
from memberlab.engagement._datafile import DataFileError, parse_data_file
from memberlab.engagement.calendar import (
    CalendarFile,
    WorkingCalendar,
    check_calendar_file,
    default_calendar,
    load_calendar,
)
from memberlab.engagement.models import CalendarOverride

MAX_SOURCE = 500
MAX_TEXT = 200_000


class NoOverride(NotFound):
    key = "engagement.holidays.none"


def current(session: Session) -> CalendarOverride | None:
    """The tenant's override in force, if any."""
    return session.scalars(
        select(CalendarOverride)
        .where(CalendarOverride.removed_at.is_(None))
        .order_by(CalendarOverride.id.desc())
        .limit(1)
    ).first()


def history(session: Session) -> list[CalendarOverride]:
    return list(session.scalars(select(CalendarOverride).order_by(CalendarOverride.id)))


def check(text: str, *, source: str, file_name: str | None = None) -> CalendarFile:
    """The override's text checked as ``holidays_cn.yaml`` is (``DataFileError`` naming each
    problem's field and line), and a source to say where it comes from."""
    name = file_name or "override"
    problems: list[FieldError] = []
    if not source.strip():
        problems.append(FieldError("source", "engagement.holidays.source_needed"))
    elif len(source.strip()) > MAX_SOURCE:
        problems.append(FieldError("source", "core.v.text_too_long", {"max_length": MAX_SOURCE}))
    if len(text) > MAX_TEXT:
        problems.append(FieldError("text", "core.v.text_too_long", {"max_length": MAX_TEXT}))
    if problems:
        raise InvalidInput(errors=problems)
    data, node = parse_data_file(text, CalendarFile, source=name)
    errors = check_calendar_file(data, node)
    if not data.years and not data.fallback:
        errors.append(FieldError("years", "engagement.holidays.empty", line=1))
    if errors:
        raise DataFileError(file=name, errors=errors)
    return data


def store(
    session: Session,
    *,
    text: str,
    source: str,
    actor: str,
    now: dt.datetime,
    file_name: str | None = None,
) -> CalendarOverride:
    """Store ``text`` as the tenant's override (the one in force before is closed). The same
    text and source as the one in force changes nothing."""
    data = check(text, source=source, file_name=file_name)
    source = source.strip()
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    before = current(session)
    if before is not None and (before.sha256, before.source) == (digest, source):
        return before
    dated = data.compiled or now.date()
    calendar = _calendar(text, source, dated)
    if before is not None:
        before.removed_at, before.removed_by = now, actor
    row = CalendarOverride(
        label=(data.label or data.version or "override")[:100],
        source=source,
        dated=dated,
        file_name=(file_name or None) and file_name[:300],
        text=text,
        sha256=digest,
        calendar_version=calendar.version[:200],
        uploaded_at=now,
        uploaded_by=actor,
    )
    session.add(row)
    session.flush()
    return row


def remove(session: Session, *, actor: str, now: dt.datetime) -> CalendarOverride:
    """Stop using the override: the built-in table alone applies again."""
    row = current(session)
    if row is None:
        raise NoOverride()
    row.removed_at, row.removed_by = now, actor
    session.flush()
    return row


@lru_cache(maxsize=64)
def _calendar(text: str, source: str, dated: dt.date) -> WorkingCalendar:
    return load_calendar(text=text, source=source, dated=dated)


def tenant_calendar(session: Session) -> WorkingCalendar:
    """The calendar of the session's tenant: the built-in table, with its override if any."""
    row = current(session)
    if row is None:
        return default_calendar()
    return _calendar(row.text, row.source, row.dated)


def override_view(row: CalendarOverride, *, text: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "label": row.label,
        "source": row.source,
        "dated": row.dated.isoformat(),
        "file_name": row.file_name,
        "sha256": row.sha256,
        "calendar_version": row.calendar_version,
        "uploaded_at": row.uploaded_at.isoformat(),
        "uploaded_by": row.uploaded_by,
        "removed_at": row.removed_at.isoformat() if row.removed_at else None,
        "removed_by": row.removed_by,
    }
    if text:
        out["text"] = row.text
    return out


def view(session: Session) -> dict[str, Any]:
    """The calendar in use: its version, the override in force (with its text), the years
    known, and every override stored before."""
    row = current(session)
    calendar = tenant_calendar(session)
    years = sorted(calendar.years.values(), key=lambda y: y.year)
    return {
        "calendar_version": calendar.version,
        "builtin_version": default_calendar().version,
        "override": override_view(row, text=True) if row else None,
        "years": [
            {
                "year": y.year,
                "published": y.published,
                "overridden": y.overridden,
                "notices": [n.title for n in y.notices],
            }
            for y in years
        ],
        "history": [override_view(r) for r in history(session)],
    }
