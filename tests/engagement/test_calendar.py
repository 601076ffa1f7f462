"""The Chinese working-day calendar: worked examples counted by hand on the official notices.

Civil Code art. 201: the start day is not counted. Art. 203: a period whose last day is a rest
day or holiday ends on the next working day. 调休: weekend days the notice makes working days.
"""

from __future__ import annotations

import datetime as dt

import pytest

from memberlab.core.errors import InvalidInput
from memberlab.engagement._datafile import DataFileError
from memberlab.engagement.calendar import (
    add_calendar_days,
    add_working_days,
    default_calendar,
    is_working_day,
    load_calendar,
)

D = dt.date


def keys(computed) -> list[str]:
    return [note.key for note in computed.notes]


def test_five_working_days_after_30_september_2026_is_13_october() -> None:
    # The example. 2026-09-30 is a Wednesday; 1-7 Oct is National Day; Sat 10 Oct is
    # a make-up working day. Counting from the next day: Thu 8 Oct = 1, Fri 9 = 2,
    # Sat 10 (调休) = 3, Sun 11 rest, Mon 12 = 4, Tue 13 = 5.
    result = add_working_days(D(2026, 9, 30), 5)

    assert result.date == D(2026, 10, 13)
    assert result.year_published is True
    assert result.calendar_version == default_calendar().version == "cn-holidays 2026.1"
    assert result.rule.key == "engagement.rule.working_days"
    assert keys(result) == ["engagement.note.makeup_counted", "engagement.note.holidays_skipped"]
    assert result.notes[0].params["dates"] == ["2026-10-10"]


def test_signed_on_the_friday_before_national_day_2025() -> None:
    # Signed Fri 2025-09-26, "within 5 working days". Sat 27 rest; Sun 28 is a make-up
    # working day = 1; Mon 29 = 2; Tue 30 = 3; 1-8 Oct off (National Day and Mid-Autumn);
    # Thu 9 Oct = 4; Fri 10 Oct = 5.
    result = add_working_days(D(2025, 9, 26), 5)

    assert result.date == D(2025, 10, 10)
    assert result.notes[0].params["dates"] == ["2025-09-28"]
    spans = result.notes[1].params["holidays"]
    assert [(s.params["first"], s.params["last"]) for s in spans] == [("2025-10-01", "2025-10-08")]


def test_across_spring_festival_2026_with_its_two_make_up_saturdays() -> None:
    # Signed Fri 2026-02-13. Sat 14 Feb (调休) = 1; 15-23 Feb off; Tue 24 = 2, Wed 25 = 3,
    # Thu 26 = 4, Fri 27 = 5; Sat 28 Feb (调休) = 6; Sun 1 Mar rest; Mon 2 = 7, Tue 3 = 8,
    # Wed 4 = 9, Thu 5 = 10. Without the make-up days, 5 would land on 3 Mar.
    assert add_working_days(D(2026, 2, 13), 5).date == D(2026, 2, 27)
    ten = add_working_days(D(2026, 2, 13), 10)
    assert ten.date == D(2026, 3, 5)
    assert ten.notes[0].params["dates"] == ["2026-02-14", "2026-02-28"]


def test_the_start_day_is_not_counted() -> None:
    # Mon 2026-03-02 is a working day, yet "1 working day after" it is Tue 3 March.
    assert add_working_days(D(2026, 3, 2), 1).date == D(2026, 3, 3)
    assert add_calendar_days(D(2026, 3, 2), 1).date == D(2026, 3, 3)
    # No offset: the day itself, even a rest day (a fixed date is not a period).
    same = add_working_days(D(2026, 3, 7), 0)
    assert same.date == D(2026, 3, 7)
    assert keys(same) == ["engagement.note.same_day_rest"]


def test_a_calendar_day_deadline_on_a_holiday_moves_to_the_next_working_day() -> None:
    # 2025-09-20 + 11 days = Wed 1 Oct, first day of the 1-8 Oct holiday; the next working
    # day is Thu 9 Oct (art. 203).
    result = add_calendar_days(D(2025, 9, 20), 11)

    assert result.date == D(2025, 10, 9)
    assert keys(result) == ["engagement.note.moved"]
    assert result.notes[0].params["original"] == "2025-10-01"
    assert "2025-10-09" in result.describe("en")
    assert "第二百零三条" in result.describe("zh-CN")


def test_a_calendar_day_deadline_on_a_weekend_moves_but_not_on_a_make_up_saturday() -> None:
    # Mon 2026-03-02 + 5 = Sat 7 March, a rest day: moves to Mon 9 March.
    assert add_calendar_days(D(2026, 3, 2), 5).date == D(2026, 3, 9)
    # 2025-10-01 + 10 = Sat 11 Oct 2025, a make-up working day: the deadline stays.
    stays = add_calendar_days(D(2025, 10, 1), 10)
    assert stays.date == D(2025, 10, 11)
    assert stays.notes == ()


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2026, 2, 14), True),  # Saturday, 调休 for Spring Festival
        (D(2026, 2, 16), False),  # Monday, 除夕
        (D(2026, 2, 23), False),  # Monday, last day of the 9-day break
        (D(2026, 3, 7), False),  # an ordinary Saturday
        (D(2026, 10, 10), True),  # Saturday, 调休 for National Day
        (D(2024, 2, 18), True),  # Sunday, 调休 for Spring Festival 2024
        (D(2023, 12, 29), True),  # an ordinary Friday
        (D(2022, 12, 31), False),  # Saturday, 元旦 2023 begins in 2022
        (D(2018, 12, 29), True),  # Saturday, 调休 for 元旦 2019 (the 2019 notice)
        (D(2019, 5, 3), False),  # Labour Day as changed on 2019-03-22 (1 day -> 4 days)
        (D(2019, 5, 5), True),  # Sunday, the make-up day that change added
        (D(2020, 1, 31), False),  # Spring Festival 2020, extended to 2 Feb (COVID-19)
        (D(2020, 2, 1), False),  # was a make-up Saturday before the extension
        (D(2025, 4, 27), True),  # Sunday, 调休 for Labour Day 2025
    ],
)
def test_working_days_from_the_notices(day: dt.date, working: bool) -> None:
    assert is_working_day(day) is working


def test_every_year_2019_to_2026_is_published_with_its_notice() -> None:
    calendar = default_calendar()
    for year in range(2019, 2027):
        status = calendar.year_status(year)
        assert status.published, year
        assert status.notices[0].title == f"国务院办公厅关于{year}年部分节假日安排的通知"
        assert status.notices[0].date.year == year - 1
    assert calendar.year_status(2026).notices[0].date == D(2025, 11, 4)
    assert calendar.year_status(2027).published is False


def test_every_make_up_day_is_a_weekend_and_every_holiday_a_rest_day() -> None:
    calendar = default_calendar()
    makeup = [day for day, mark in calendar.work.items() if mark.year >= 2019]
    assert len(makeup) == 7 + 6 + 7 + 7 + 7 + 8 + 5 + 6  # the notices, 2019 to 2026
    assert all(day.weekday() >= 5 for day in makeup)
    assert not any(calendar.is_working_day(day) for day in calendar.rest)


def test_a_year_without_a_published_schedule_falls_back_and_says_so() -> None:
    # 2027 has no notice in the table: weekends and the fixed-date holidays only. Thu
    # 2027-09-30: Fri 1 - Sun 3 Oct are National Day (fixed); Mon 4 = 1 ... Fri 8 = 5.
    result = add_working_days(D(2027, 9, 30), 5)

    assert result.date == D(2027, 10, 8)
    assert result.year_published is False
    assert result.provisional
    assert keys(result)[-1] == "engagement.note.year_unpublished"
    assert result.notes[-1].params["year"] == 2027
    assert "暂定" in result.describe("zh-CN")
    assert "provisional" in result.describe("en")
    assert not is_working_day(D(2027, 5, 2))  # 2 May is statutory from 2025
    assert is_working_day(D(2027, 2, 8))  # a Monday; its Spring Festival is not known yet


def test_a_period_running_into_an_unpublished_year_is_provisional() -> None:
    # Wed 2026-12-30: Thu 31 Dec = 1; Fri 1 Jan 2027 off (fixed); weekend; Mon 4 = 2; Tue 5 = 3.
    result = add_working_days(D(2026, 12, 30), 3)

    assert result.date == D(2027, 1, 5)
    assert result.year_published is False
    # ... while one that stays in 2026 is not.
    assert add_working_days(D(2026, 12, 29), 2).year_published is True


def test_a_negative_offset_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        add_calendar_days(D(2026, 3, 2), -1)
    assert caught.value.errors[0].key == "engagement.calendar.negative_offset"


OVERRIDE = """\
label: acme-test
years:
  2027:
    published: true
    notices:
      - title: a test schedule, not the real 2027 notice
        date: 2026-11-01
    holidays:
      - {name: national_day, first: 2027-10-01, last: 2027-10-07, work: [2027-09-26, 2027-10-09]}
  2026:
    rest_days: [2026-12-31]
"""


def test_an_override_merges_over_the_built_in_table() -> None:
    calendar = load_calendar(text=OVERRIDE)

    # 2027 is now in the table: 1-7 Oct off; Fri 8 = 1; Sat 9 (调休) = 2; Mon 11 = 3;
    # Tue 12 = 4; Wed 13 = 5.
    result = calendar.add_working_days(D(2027, 9, 30), 5)
    assert result.date == D(2027, 10, 13)
    assert result.year_published is True
    assert result.calendar_version.startswith("cn-holidays 2026.1+acme-test.")
    # 2026 keeps its notice and gains a day off.
    assert not calendar.is_working_day(D(2026, 12, 31))
    assert calendar.year_status(2026).overridden
    assert calendar.add_working_days(D(2026, 9, 30), 5).date == D(2026, 10, 13)
    # The built-in calendar is untouched.
    assert is_working_day(D(2026, 12, 31))


def test_an_override_file_is_read_from_disk(tmp_path) -> None:
    path = tmp_path / "holidays.yaml"
    path.write_text(OVERRIDE, encoding="utf-8")

    assert not load_calendar(path).is_working_day(D(2026, 12, 31))


BROKEN = """\
years:
  2027:
    published: true
    holidays:
      - name: national_day
        first: 2027-10-07
        last: 2027-10-01
      - {name: spring_festival, first: 2027-02-30, last: 2027-02-12}
    holiday: []
"""


def test_a_broken_override_names_the_field_and_the_line() -> None:
    with pytest.raises(DataFileError) as caught:
        load_calendar(text=BROKEN)
    found = {(e.loc, e.key, e.line) for e in caught.value.errors}

    assert ("years.2027.holidays[1].first", "core.v.date", 8) in found
    assert ("years.2027.holiday", "core.v.unknown_field_suggest", 9) in found

    # Once the structure is right, the dates themselves are checked.
    with pytest.raises(DataFileError) as caught:
        load_calendar(
            text=BROKEN.replace("2027-02-30", "2027-02-10").replace("    holiday: []\n", "")
        )
    found = {(e.loc, e.key, e.line) for e in caught.value.errors}
    assert ("years.2027.holidays[0].last", "engagement.calendar.span_order", 7) in found
    # A published year must say which notice it comes from; the path goes past the file, so
    # the line is the year's own.
    assert ("years.2027.notices", "engagement.calendar.no_notice", 2) in found


def test_an_override_with_a_yaml_error_names_the_line() -> None:
    with pytest.raises(DataFileError) as caught:
        load_calendar(text="years:\n  2027:\n    rest_days: [2027-01-04\n")
    error = caught.value.errors[0]

    assert error.key == "engagement.file.yaml_syntax"
    assert error.line is not None
    assert error.line >= 3


def test_a_make_up_day_on_a_weekday_is_refused() -> None:
    text = (
        "years:\n"
        "  2026:\n"
        "    holidays:\n"
        "      - {name: company, first: 2026-12-31, last: 2026-12-31, work: [2026-12-30]}\n"
    )
    with pytest.raises(DataFileError) as caught:
        load_calendar(text=text)

    (error,) = caught.value.errors
    assert (error.loc, error.key, error.line) == (
        "years.2026.holidays[0].work[0]",
        "engagement.calendar.makeup_weekday",
        4,
    )
    assert "2026-12-30" in error.render("en")
