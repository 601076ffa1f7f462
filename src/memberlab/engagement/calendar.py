"""The Chinese working-day calendar, and deadlines computed on it.

A working day is a weekday that is not a public holiday, or a weekend day the State Council
has made a working day (调休, "make-up working day"). The table of holidays and make-up days
is ``holidays_cn.yaml``: one entry per year, from the General Office's annual notice
(国务院办公厅关于<year>年部分节假日安排的通知), with the notice's title and date, whether it
is published, and the table's version. A user file can add to it or replace a year
(:func:`load_calendar`).

Periods follow the Civil Code:

- art. 201: a period counted in days starts on the next day; the start day is not counted.
- art. 203: when the last day of a period is a statutory rest day or holiday, the period ends
  on the first day after it; here, the next working day.

Every computed date is a :class:`ComputedDate` that records the rule applied, the calendar's
version, whether each year it crossed had a published schedule, and notes (make-up days
counted, holidays skipped, a deadline moved), as messages in zh-CN and en.

A year without a published schedule is computed from weekends and the fixed-date statutory
holidays (元旦 1 Jan, 劳动节 1 May (and 2 May from 2025), 国庆节 1-3 Oct) and marked
provisional: the lunar holidays and make-up days of such a year are not known yet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.engagement._datafile import DataFileError, Loc, parse_data_file, problem
from memberlab.engagement.messages import Message, holiday_label, msg

__all__ = [
    "CalendarFile",
    "ComputedDate",
    "DayInfo",
    "OverrideInfo",
    "WorkingCalendar",
    "YearStatus",
    "add_calendar_days",
    "add_working_days",
    "default_calendar",
    "is_working_day",
    "load_calendar",
]

# The loop guard: no real schedule has more than a few weeks without a working day.
_MAX_REST_RUN = 60


# --- the file format (built-in table and user overrides) ------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoticeSpec(_Strict):
    """The official notice a year's schedule comes from."""

    title: str = Field(min_length=1)
    number: str | None = None
    date: dt.date
    url: str | None = None
    note: str | None = None


class HolidaySpec(_Strict):
    """A span of consecutive days off, with the weekend days worked to make it up."""

    name: str = Field(min_length=1)
    first: dt.date
    last: dt.date
    days: int | None = Field(default=None, ge=1)
    work: list[dt.date] = []


class YearSpec(_Strict):
    """One year of the table. In an override, ``replace: true`` drops the built-in year."""

    published: bool | None = None
    replace: bool = False
    data_version: int | None = Field(default=None, ge=1)
    notices: list[NoticeSpec] = []
    holidays: list[HolidaySpec] = []
    rest_days: list[dt.date] = []
    working_days: list[dt.date] = []
    note: str | None = None


class FixedDate(_Strict):
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)
    name: str = Field(min_length=1)
    since: int | None = None
    until: int | None = None

    def in_year(self, year: int) -> dt.date | None:
        if (self.since is not None and year < self.since) or (
            self.until is not None and year > self.until
        ):
            return None
        return dt.date(year, self.month, self.day)


class FallbackSpec(_Strict):
    source: str = Field(min_length=1)
    fixed_dates: list[FixedDate]


class CalendarFile(_Strict):
    """The built-in ``holidays_cn.yaml`` or a user's override file."""

    name: str | None = None
    version: str | None = None
    label: str | None = None
    compiled: dt.date | None = None
    fallback: FallbackSpec | None = None
    years: dict[int, YearSpec] = {}


# --- results --------------------------------------------------------------------------------


class YearStatus(BaseModel):
    """What the calendar knows about one year."""

    model_config = ConfigDict(frozen=True)

    year: int
    published: bool
    in_table: bool
    data_version: int | None = None
    notices: tuple[NoticeSpec, ...] = ()
    overridden: bool = False


class DayInfo(BaseModel):
    """One day: working or not, and why."""

    model_config = ConfigDict(frozen=True)

    date: dt.date
    working: bool
    kind: Literal["workday", "weekend", "holiday", "makeup_workday"]
    holiday: str | None = None
    year_published: bool

    def reason(self) -> Message:
        if self.kind == "holiday":
            return msg("engagement.day.holiday", name=holiday_label(self.holiday or ""))
        if self.kind == "weekend":
            return msg("engagement.day.weekend")
        if self.kind == "makeup_workday":
            return msg("engagement.day.makeup_workday", name=holiday_label(self.holiday or ""))
        return msg("engagement.day.workday")


class ComputedDate(BaseModel):
    """A date computed on the calendar, with what it rests on.

    ``year_published`` is false when any year the computation crossed had no published
    schedule: the date is then provisional, and a note says which year and why.
    """

    model_config = ConfigDict(frozen=True)

    date: dt.date
    rule: Message
    calendar_version: str
    year_published: bool
    notes: tuple[Message, ...] = ()

    @property
    def provisional(self) -> bool:
        return not self.year_published

    def describe(self, lang: Literal["zh-CN", "en"] | None = None) -> str:
        """The date, the rule and the notes as one text for people."""
        lines = [f"{self.date.isoformat()}: {self.rule.render(lang)}"]
        lines.extend(f"- {note.render(lang)}" for note in self.notes)
        return "\n".join(lines)


class OverrideInfo(BaseModel):
    """Where a calendar's override comes from: its label, source and date, and the hash of
    its text (the calendar's version ends with the hash's first 8 characters)."""

    model_config = ConfigDict(frozen=True)

    label: str
    source: str
    dated: dt.date | None = None
    sha256: str


# --- the calendar ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mark:
    name: str
    year: int  # the year of the notice (or override) that set it


@dataclass
class WorkingCalendar:
    """Public holidays and make-up working days, by date, with their provenance."""

    version: str
    fallback: FallbackSpec
    years: dict[int, YearStatus]
    rest: dict[dt.date, _Mark] = field(default_factory=dict)
    work: dict[dt.date, _Mark] = field(default_factory=dict)
    override: OverrideInfo | None = None
    _marked_years: frozenset[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._marked_years = frozenset(mark.year for mark in self.rest.values())

    # -- days --

    def year_status(self, year: int) -> YearStatus:
        return self.years.get(year) or YearStatus(year=year, published=False, in_table=False)

    def _uses_fallback(self, year: int) -> bool:
        status = self.years.get(year)
        if status is None:
            return True
        return not status.published and year not in self._marked_years

    def _fixed_holiday(self, day: dt.date) -> str | None:
        for fixed in self.fallback.fixed_dates:
            if fixed.in_year(day.year) == day:
                return fixed.name
        return None

    def day(self, day: dt.date) -> DayInfo:
        published = self.year_status(day.year).published
        if day in self.work:
            kind = "makeup_workday" if day.weekday() >= 5 else "workday"
            return DayInfo(
                date=day,
                working=True,
                kind=kind,
                holiday=self.work[day].name,
                year_published=published,
            )
        if day in self.rest:
            return DayInfo(
                date=day,
                working=False,
                kind="holiday",
                holiday=self.rest[day].name,
                year_published=published,
            )
        if self._uses_fallback(day.year):
            name = self._fixed_holiday(day)
            if name is not None:
                return DayInfo(
                    date=day, working=False, kind="holiday", holiday=name, year_published=False
                )
        if day.weekday() >= 5:
            return DayInfo(date=day, working=False, kind="weekend", year_published=published)
        return DayInfo(date=day, working=True, kind="workday", year_published=published)

    def is_working_day(self, day: dt.date) -> bool:
        return self.day(day).working

    def next_working_day(self, day: dt.date) -> dt.date:
        """``day`` itself if it is a working day, else the first working day after it."""
        for candidate in _days_from(day, _MAX_REST_RUN):
            if self.is_working_day(candidate):
                return candidate
        raise InvalidInput("engagement.calendar.no_working_day", start=day.isoformat())

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in ``(start, end]``: after ``start``, up to and including ``end``."""
        if end <= start:
            return 0
        return sum(
            1
            for offset in range(1, (end - start).days + 1)
            if self.is_working_day(start + dt.timedelta(days=offset))
        )

    # -- periods --

    def add_working_days(self, start: dt.date, n: int) -> ComputedDate:
        """The ``n``-th working day after ``start`` (start not counted; Civil Code art. 201).

        ``n == 0`` is ``start`` itself, unchanged.
        """
        _check_offset(n)
        if n == 0:
            return self._same_day(start)
        counted = 0
        day = start
        makeup: list[dt.date] = []
        skipped: list[DayInfo] = []
        rest_run = 0
        while counted < n:
            day += dt.timedelta(days=1)
            info = self.day(day)
            if info.working:
                counted += 1
                rest_run = 0
                if info.kind == "makeup_workday":
                    makeup.append(day)
            else:
                rest_run += 1
                if rest_run > _MAX_REST_RUN:
                    raise InvalidInput(
                        "engagement.calendar.no_working_day", start=start.isoformat()
                    )
                if info.kind == "holiday":
                    skipped.append(info)
        notes: list[Message] = []
        if makeup:
            notes.append(
                msg("engagement.note.makeup_counted", dates=[d.isoformat() for d in makeup])
            )
        if skipped:
            notes.append(msg("engagement.note.holidays_skipped", holidays=_spans(skipped)))
        return self._computed(
            day,
            msg("engagement.rule.working_days", n=n, start=start.isoformat()),
            start,
            notes,
        )

    def add_calendar_days(self, start: dt.date, n: int) -> ComputedDate:
        """``start`` plus ``n`` days (start not counted, art. 201); a last day that is a rest
        day or holiday moves to the next working day (art. 203). ``n == 0`` is ``start``.
        """
        _check_offset(n)
        if n == 0:
            return self._same_day(start)
        end = start + dt.timedelta(days=n)
        info = self.day(end)
        notes: list[Message] = []
        final = end
        if not info.working:
            final = self.next_working_day(end)
            notes.append(
                msg(
                    "engagement.note.moved",
                    original=end.isoformat(),
                    reason=info.reason(),
                    moved=final.isoformat(),
                )
            )
        return self._computed(
            final,
            msg("engagement.rule.calendar_days", n=n, start=start.isoformat()),
            start,
            notes,
        )

    def _same_day(self, start: dt.date) -> ComputedDate:
        info = self.day(start)
        notes = []
        if not info.working:
            notes.append(
                msg("engagement.note.same_day_rest", date=start.isoformat(), reason=info.reason())
            )
        return self._computed(
            start, msg("engagement.rule.same_day", start=start.isoformat()), None, notes
        )

    def _computed(
        self, result: dt.date, rule: Message, start: dt.date | None, notes: list[Message]
    ) -> ComputedDate:
        first = (start + dt.timedelta(days=1)) if start is not None else result
        years = range(first.year, result.year + 1)
        overridden = [y for y in years if self.year_status(y).overridden]
        if overridden and self.override is not None:
            notes.append(
                msg(
                    "engagement.note.override",
                    years=[str(y) for y in overridden],
                    label=self.override.label,
                    source=self.override.source,
                    dated=self.override.dated.isoformat() if self.override.dated else "-",
                    version=self.version,
                )
            )
        unpublished = [y for y in years if not self.year_status(y).published]
        for year in unpublished:
            notes.append(
                msg(
                    "engagement.note.year_unpublished",
                    year=year,
                    version=self.version,
                    fixed=self._fixed_text(year),
                )
            )
        return ComputedDate(
            date=result,
            rule=rule,
            calendar_version=self.version,
            year_published=not unpublished,
            notes=tuple(notes),
        )

    def _fixed_text(self, year: int) -> str:
        dates = [f.in_year(year) for f in self.fallback.fixed_dates]
        return ", ".join(d.strftime("%m-%d") for d in dates if d is not None)


def _days_from(day: dt.date, limit: int) -> Iterator[dt.date]:
    for offset in range(limit + 1):
        yield day + dt.timedelta(days=offset)


def _check_offset(n: int) -> None:
    if n < 0:
        raise InvalidInput(
            errors=[FieldError("offset", "engagement.calendar.negative_offset", {"value": n})]
        )


def _spans(days: list[DayInfo]) -> list[Message]:
    """Consecutive holidays grouped: ``national_day 2025-10-01 - 2025-10-08``."""
    spans: list[tuple[str, dt.date, dt.date]] = []
    for info in days:
        name = info.holiday or ""
        if spans and spans[-1][0] == name and (info.date - spans[-1][2]).days <= 3:
            spans[-1] = (name, spans[-1][1], info.date)
        else:
            spans.append((name, info.date, info.date))
    return [
        msg(
            "engagement.note.holiday_span",
            name=holiday_label(name),
            first=first.isoformat(),
            last=last.isoformat(),
        )
        for name, first, last in spans
    ]


# --- loading --------------------------------------------------------------------------------


def _builtin_text() -> str:
    return (
        resources.files("memberlab.engagement")
        .joinpath("holidays_cn.yaml")
        .read_text(encoding="utf-8")
    )


@lru_cache(maxsize=1)
def _builtin() -> CalendarFile:
    data, node = parse_data_file(_builtin_text(), CalendarFile, source="holidays_cn.yaml")
    errors = check_calendar_file(data, node, builtin=True)
    if errors:
        raise DataFileError(file="holidays_cn.yaml", errors=errors)
    return data


def check_calendar_file(
    data: CalendarFile, node: yaml.Node | None, *, builtin: bool = False
) -> list[FieldError]:
    """Checks beyond the structure: spans in order, make-up days on weekends, years sane."""
    errors: list[FieldError] = []
    if builtin:
        for loc, value in ((("version",), data.version), (("fallback",), data.fallback)):
            if value is None:
                errors.append(problem(node, loc, "core.v.missing"))
    for year, spec in data.years.items():
        here: Loc = ("years", year)
        if not 1900 <= year <= 2200:
            errors.append(problem(node, here, "engagement.calendar.bad_year", year=year))
            continue
        if builtin and spec.published is None:
            errors.append(problem(node, (*here, "published"), "core.v.missing"))
        if spec.published and not spec.notices:
            errors.append(problem(node, (*here, "notices"), "engagement.calendar.no_notice"))
        rest: dict[dt.date, Loc] = {}
        work: dict[dt.date, Loc] = {}
        for i, holiday in enumerate(spec.holidays):
            at: Loc = (*here, "holidays", i)
            if holiday.last < holiday.first:
                errors.append(
                    problem(
                        node,
                        (*at, "last"),
                        "engagement.calendar.span_order",
                        first=holiday.first.isoformat(),
                        last=holiday.last.isoformat(),
                    )
                )
                continue
            length = (holiday.last - holiday.first).days + 1
            if holiday.days is not None and holiday.days != length:
                errors.append(
                    problem(
                        node,
                        (*at, "days"),
                        "engagement.calendar.span_days",
                        days=holiday.days,
                        counted=length,
                    )
                )
            errors.extend(_check_in_year(node, (*at, "first"), holiday.first, year))
            errors.extend(_check_in_year(node, (*at, "last"), holiday.last, year))
            for day in _span(holiday.first, holiday.last):
                rest.setdefault(day, (*at, "first"))
            for j, day in enumerate(holiday.work):
                work.setdefault(day, (*at, "work", j))
        for j, day in enumerate(spec.rest_days):
            errors.extend(_check_in_year(node, (*here, "rest_days", j), day, year))
            rest.setdefault(day, (*here, "rest_days", j))
        for j, day in enumerate(spec.working_days):
            work.setdefault(day, (*here, "working_days", j))
        for day, loc in work.items():
            errors.extend(_check_in_year(node, loc, day, year))
            if day.weekday() < 5 and loc[2] == "holidays":
                errors.append(
                    problem(node, loc, "engagement.calendar.makeup_weekday", date=day.isoformat())
                )
            if day in rest:
                errors.append(problem(node, loc, "engagement.calendar.both", date=day.isoformat()))
    return errors


def _check_in_year(node: yaml.Node | None, loc: Loc, day: dt.date, year: int) -> list[FieldError]:
    # A notice may reach into the last weeks of the year before (元旦) or the first of the next.
    if dt.date(year - 1, 12, 1) <= day <= dt.date(year + 1, 1, 31):
        return []
    return [problem(node, loc, "engagement.calendar.outside_year", date=day.isoformat(), year=year)]


def _span(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    for offset in range((last - first).days + 1):
        yield first + dt.timedelta(days=offset)


def _year_entries(spec: YearSpec) -> tuple[dict[dt.date, str], dict[dt.date, str]]:
    rest: dict[dt.date, str] = {}
    work: dict[dt.date, str] = {}
    for holiday in spec.holidays:
        for day in _span(holiday.first, holiday.last):
            rest[day] = holiday.name
        for day in holiday.work:
            work[day] = holiday.name
    for day in spec.rest_days:
        rest[day] = "override_rest_day"
    for day in spec.working_days:
        work[day] = rest.pop(day, "override_working_day")
    return rest, work


def _build(
    base: CalendarFile,
    override: CalendarFile | None,
    version: str,
    info: OverrideInfo | None = None,
) -> WorkingCalendar:
    assert base.fallback is not None  # checked on load
    rest: dict[dt.date, _Mark] = {}
    work: dict[dt.date, _Mark] = {}
    years: dict[int, YearStatus] = {}

    def apply(year: int, spec: YearSpec, *, overridden: bool, published: bool) -> None:
        year_rest, year_work = _year_entries(spec)
        for day, name in year_rest.items():
            work.pop(day, None)
            rest[day] = _Mark(name, year)
        for day, name in year_work.items():
            rest.pop(day, None)
            work[day] = _Mark(name, year)
        old = years.get(year)
        years[year] = YearStatus(
            year=year,
            published=published,
            in_table=True,
            data_version=spec.data_version or (old.data_version if old else None),
            notices=tuple((old.notices if old and not spec.replace else ()) + tuple(spec.notices)),
            overridden=overridden,
        )

    for year, spec in sorted(base.years.items()):
        apply(year, spec, overridden=False, published=bool(spec.published))
    if override is not None:
        for year, spec in sorted(override.years.items()):
            if spec.replace or year not in years:
                for table in (rest, work):
                    for day in [d for d, mark in table.items() if mark.year == year]:
                        del table[day]
                years.pop(year, None)
                published = bool(spec.published)
            else:
                published = years[year].published if spec.published is None else spec.published
            apply(year, spec, overridden=True, published=published)
    return WorkingCalendar(
        version=version,
        fallback=override.fallback if override and override.fallback else base.fallback,
        years=years,
        rest=rest,
        work=work,
        override=info,
    )


def _builtin_version(base: CalendarFile) -> str:
    return f"{base.name or 'cn-holidays'} {base.version}"


@lru_cache(maxsize=1)
def default_calendar() -> WorkingCalendar:
    """The built-in table, without overrides."""
    base = _builtin()
    return _build(base, None, _builtin_version(base))


def load_calendar(
    override: str | Path | None = None,
    *,
    text: str | None = None,
    source: str | None = None,
    dated: dt.date | None = None,
) -> WorkingCalendar:
    """The built-in table with a user's override file merged over it.

    The override has the same form as ``holidays_cn.yaml`` (every field optional): for each
    year, ``holidays`` (spans with make-up ``work`` days), ``rest_days`` and ``working_days``
    are added to the built-in year (a date the override lists wins over the built-in one);
    ``replace: true``, or a year the table does not have, uses the override's year alone.
    ``published`` says whether the override's year is an official schedule.

    The calendar's version becomes ``<built-in version>+<label>.<hash>``, so every date
    computed with it says so; a date computed across a year the override touched also notes
    the override's ``source`` (default: the file's name) and date (default: its ``compiled``).
    Problems raise ``DataFileError`` naming field and line.
    """
    base = _builtin()
    if override is None and text is None:
        return default_calendar()
    source_name = "override"
    if text is None:
        assert override is not None
        path = Path(override)
        source_name = path.name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DataFileError(
                file=source_name,
                errors=[
                    FieldError(
                        "",
                        "engagement.file.unreadable",
                        {"file": source_name, "reason": exc.strerror},
                    )
                ],
            ) from None
    data, node = parse_data_file(text, CalendarFile, source=source_name)
    errors = check_calendar_file(data, node)
    if errors:
        raise DataFileError(file=source_name, errors=errors)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    label = data.label or data.version or "override"
    info = OverrideInfo(
        label=label, source=source or source_name, dated=dated or data.compiled, sha256=digest
    )
    return _build(base, data, f"{_builtin_version(base)}+{label}.{digest[:8]}", info)


# --- module-level shortcuts on the built-in calendar ----------------------------------------


def is_working_day(day: dt.date, calendar: WorkingCalendar | None = None) -> bool:
    return (calendar or default_calendar()).is_working_day(day)


def add_working_days(
    start: dt.date, n: int, calendar: WorkingCalendar | None = None
) -> ComputedDate:
    return (calendar or default_calendar()).add_working_days(start, n)


def add_calendar_days(
    start: dt.date, n: int, calendar: WorkingCalendar | None = None
) -> ComputedDate:
    return (calendar or default_calendar()).add_calendar_days(start, n)
