"""Column kernels shared by the analytics: local day numbers, member codes, grouped reductions.

The analyses read ten million rows keyed by a text member id and a zoned timestamp. Done
with expressions, every analysis converted every timestamp to its local day (a time-zone
lookup per row) and grouped by the text id (a hash of every text per group-by), several
times over. These kernels do each once per call, with plain integer arithmetic:

- ``local_days``: the local calendar day of each timestamp as days since 1970-01-01. A
  zone's UTC offset changes a few times a year at most, so the offset is looked up once
  per hour of the data's span (tens of thousands of conversions, not millions) and added
  to the UTC instants; an hour containing a change of offset is converted row by row.
- ``MemberCodes``: each row's member as a dense integer code ``0 .. n - 1``. The ids are
  hashed (two independent 64-bit hashes, far faster than grouping by text) and grouped by
  one sort of integers; ids are taken as equal when both hashes agree (two distinct ids
  would collide on 128 bits about once in 10^26 runs with a million members).
- Per-member sums, counts, minima and maxima over those codes are ``numpy.bincount`` and
  ``ufunc.at`` calls: one pass each, no hashing, no sort.
- ``Prepared``: a frame with what the analyses derive from it, kept between analyses, so
  that several analyses of the same transactions convert and hash them once, not once each.

Everything here is exact: the results are those of the Polars expressions they replace.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import polars as pl

from memberlab.core.errors import FieldError, InvalidInput

__all__ = [
    "MemberCodes",
    "Prepared",
    "bits_for",
    "first_index",
    "frame_of",
    "group_max",
    "group_min",
    "hash_groups",
    "local_days",
    "masked",
    "month_numbers",
    "nullable",
    "pack_sort",
    "small_codes",
]

T = TypeVar("T")
_SEEDS = (0x6D656D62, 0x6C616221)  # two independent hashes of the member id
_PER_SECOND = {"ns": 1_000_000_000, "us": 1_000_000, "ms": 1_000}
_MAX_HOURS = 4_000_000  # hourly offset table up to ~450 years of span; beyond, row by row
_MAX_TABLE_DAYS = 4_000_000  # month lookup table up to ~11,000 years of span


# --- a frame prepared once for several analyses ----------------------------------------------


class Prepared:
    """A frame and what the analyses work out from it (local days, member codes, amounts),
    each worked out by the first analysis that needs it and kept for the next ones.

    Every analysis that takes ``transactions`` takes a ``Prepared`` of them as well and
    gives the same results; several analyses of the same transactions (a report, the
    bench) then convert the timestamps and hash the member ids once instead of once each:

    >>> transactions = Prepared(frame)  # doctest: +SKIP
    >>> rfm_table(transactions, as_of=day, time_zone=zone)  # doctest: +SKIP
    >>> cohort_matrices(transactions, by="first_store", time_zone=zone)  # doctest: +SKIP

    What is kept is the size of a few columns of the frame; ``forget()`` lets it go. The
    frame must not be changed in place while it is prepared (Polars frames seldom are).
    """

    __slots__ = ("_memo", "frame")

    def __init__(self, frame: pl.DataFrame | pl.LazyFrame) -> None:
        self.frame: pl.DataFrame = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        self._memo: dict[Hashable, Any] = {}

    def remember(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value kept under ``key``, made (and kept) the first time."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def forget(self) -> None:
        """Let go of everything kept (the frame stays)."""
        self._memo.clear()

    def __repr__(self) -> str:
        return f"Prepared({self.frame.height} rows, {len(self._memo)} kept)"


def frame_of(frame: pl.DataFrame | pl.LazyFrame | Prepared) -> pl.DataFrame | pl.LazyFrame:
    """The frame itself, prepared or not."""
    return frame.frame if isinstance(frame, Prepared) else frame


# --- days and months -------------------------------------------------------------------------


def local_days(series: pl.Series, time_zone: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Days since 1970-01-01 (int32) of a Date, Datetime or ISO-text column, and a mask of
    the non-null rows (None when there is no null; null rows hold 0).

    As ``rfm.local_date``: a Datetime in its own zone, or converted to ``time_zone`` (a
    naive one taken as UTC); a Date as it is; a text parsed and its own day used.
    """
    dtype = series.dtype
    valid = None
    if series.null_count():
        valid = series.is_not_null().to_numpy()
    if dtype == pl.Date:
        return _numpy_int(series.cast(pl.Int32), np.int32), valid
    if dtype == pl.String:
        days = series.str.to_datetime(strict=True).dt.date().cast(pl.Int32)
        return _numpy_int(days, np.int32), valid if valid is not None else _valid(days)
    if not isinstance(dtype, pl.Datetime):
        raise InvalidInput(
            errors=[FieldError(series.name, "analytics.v.not_a_date", {"dtype": str(dtype)})]
        )
    zone = time_zone if time_zone is not None else dtype.time_zone
    per_day = 86_400 * _PER_SECOND[dtype.time_unit or "us"]
    # the physical value is the UTC instant (or, naive, the wall clock read as UTC)
    instants = _numpy_int(series.to_physical(), np.int64)
    if zone is None or instants.size == 0:
        return (instants // per_day).astype(np.int32), valid
    return _zoned_days(series, instants, valid, zone, dtype.time_unit or "us"), valid


def _zoned_days(
    series: pl.Series, instants: np.ndarray, valid: np.ndarray | None, zone: str, unit: str
) -> np.ndarray:
    per_day = 86_400 * _PER_SECOND[unit]
    hour = 3_600 * _PER_SECOND[unit]
    bucket = instants // hour
    present = bucket if valid is None else bucket[valid]
    if present.size == 0:
        return np.zeros(instants.size, dtype=np.int32)
    low, high = int(present.min()), int(present.max())
    if high - low + 1 > _MAX_HOURS:
        return _polars_days(series, zone)
    starts = np.arange(low, high + 1, dtype=np.int64) * hour
    offset_start = _offsets(starts, unit, zone)
    offset_end = _offsets(starts + (hour - 1), unit, zone)
    changing = offset_start != offset_end  # an hour with a change of offset in it
    if not changing.any() and (offset_start == offset_start[0]).all():
        return ((instants + int(offset_start[0])) // per_day).astype(np.int32)
    index = np.clip(bucket - low, 0, high - low)
    days = ((instants + offset_start[index]) // per_day).astype(np.int32)
    if changing.any():
        rows = np.flatnonzero(changing[index] if valid is None else changing[index] & valid)
        if rows.size:
            exact = _polars_days(series.gather(rows), zone)
            days[rows] = exact
    return days


def _offsets(instants: np.ndarray, unit: str, zone: str) -> np.ndarray:
    """UTC offset (in ``unit``) of each instant in ``zone``."""
    utc = pl.Series(instants).cast(pl.Datetime(unit, "UTC"))  # type: ignore[arg-type]
    wall = utc.dt.convert_time_zone(zone).dt.replace_time_zone(None).to_physical()
    return wall.to_numpy() - instants


def _polars_days(series: pl.Series, zone: str) -> np.ndarray:
    zoned = series if series.dtype.time_zone else series.dt.replace_time_zone("UTC")  # type: ignore[attr-defined]
    days = zoned.dt.convert_time_zone(zone).dt.date().cast(pl.Int32)
    return _numpy_int(days, np.int32)


def _numpy_int(series: pl.Series, dtype: type) -> np.ndarray:
    if series.null_count():
        series = series.fill_null(0)
    return series.to_numpy().astype(dtype, copy=False)


def _valid(series: pl.Series) -> np.ndarray | None:
    return series.is_not_null().to_numpy() if series.null_count() else None


def month_numbers(days: np.ndarray) -> np.ndarray:
    """``year * 12 + month - 1`` (int32) of day numbers (as ``rfm.month_of_day``): looked
    up in a table of the days in their range."""
    if days.size == 0:
        return np.zeros(0, dtype=np.int32)
    low, high = int(days.min()), int(days.max())
    if high - low + 1 > _MAX_TABLE_DAYS:
        return _months(pl.Series(days.astype(np.int32)))
    table = _months(pl.Series(np.arange(low, high + 1, dtype=np.int32)))
    return table[days.astype(np.int64) - low]


def _months(days: pl.Series) -> np.ndarray:
    as_date = days.cast(pl.Date)
    month = as_date.dt.year().cast(pl.Int32) * 12 + as_date.dt.month().cast(pl.Int32) - 1
    return month.to_numpy().astype(np.int32)


# --- member codes ----------------------------------------------------------------------------


@dataclass
class MemberCodes:
    """Each row's member as a code ``0 .. n - 1``. ``ids`` (String, distinct) holds the
    member of each code, in no particular order (``by_id`` sorts them); it is gathered
    from the rows only when asked for."""

    codes: np.ndarray  # int64, one per row
    source: pl.Series  # the rows' ids (or, after ``subset``, those of the rows it kept from)
    first_rows: np.ndarray  # a row of ``source`` of each code
    hashes: tuple[np.ndarray, np.ndarray]  # the two hashes of each code's id
    _ids: pl.Series | None = None
    _by_id: np.ndarray | None = None
    _by_hash: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def n(self) -> int:
        return self.first_rows.size

    @classmethod
    def of(cls, ids: pl.Series) -> MemberCodes:
        """The codes of a column of ids (String, no nulls).

        The rows are grouped by one sort of a 64-bit integer per row: the high bits of a
        hash of the id, the row number in the low bits (a value sort, several times faster
        than an argsort, gives the row order as well). Ids whose hashes share those high
        bits are told apart by the full hash and a second, independent one: two ids are
        taken as one only if both 64-bit hashes agree.
        """
        n = len(ids)
        if n == 0:
            empty = np.zeros(0, dtype=np.uint64)
            return cls(np.zeros(0, dtype=np.int64), ids, np.zeros(0, np.int64), (empty, empty))
        order, new, first, second = hash_groups(ids)
        run = np.cumsum(new, dtype=np.int64)
        run -= 1
        codes = np.empty(n, dtype=np.int64)
        codes[order] = run
        del run
        rows = order[new]
        return cls(codes, ids, rows, (first[rows], second[rows]))

    def subset(self, rows: np.ndarray) -> MemberCodes:
        """The codes of some of the rows (a mask), renumbered ``0 .. m - 1`` over the
        members they hold, in the same order as here: a member's code may differ from the
        one ``of`` gives those rows, which no result depends on (codes are in no
        particular order)."""
        codes = self.codes[rows]
        used = np.zeros(self.n, dtype=bool)
        used[codes] = True
        renumber = np.cumsum(used, dtype=np.int64)
        renumber -= 1
        kept = np.flatnonzero(used)
        first, second = self.hashes
        subset = MemberCodes(
            renumber[codes], self.source, self.first_rows[kept], (first[kept], second[kept])
        )
        if self._ids is not None:
            subset._ids = self._ids.gather(kept)
        return subset

    @property
    def ids(self) -> pl.Series:
        if self._ids is None:
            self._ids = self.source.gather(self.first_rows)
        return self._ids

    def ids_of(self, codes: np.ndarray) -> pl.Series:
        """The ids of some codes."""
        if self._ids is not None:
            return self._ids.gather(codes)
        return self.source.gather(self.first_rows[codes])

    @property
    def by_id(self) -> np.ndarray:
        """The codes in the sort order of their ids."""
        if self._by_id is None:
            # (one thread: on a busy machine several times faster than Series.arg_sort)
            ordered = self.ids.rename("id").to_frame().with_row_index("code")
            ordered = ordered.sort("id", multithreaded=False)
            self._by_id = ordered["code"].to_numpy().astype(np.int64)
        return self._by_id

    def codes_in(self, other: MemberCodes) -> np.ndarray:
        """For each code of ``other``, the code of the same id here, or -1."""
        return self._find(*other.hashes)

    def lookup(self, ids: pl.Series) -> np.ndarray:
        """The code of each of ``ids`` (String), or -1 for ids not here (or null)."""
        found = self._find(ids.hash(_SEEDS[0]).to_numpy(), ids.hash(_SEEDS[1]).to_numpy())
        if ids.null_count():
            found[ids.is_null().to_numpy()] = -1
        return found

    def _find(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The code with both hashes, or -1."""
        if self._by_hash is None:
            order = np.argsort(self.hashes[0], kind="stable")
            self._by_hash = (order, self.hashes[0][order])
        order, sorted_first = self._by_hash
        found = np.full(first.size, -1, dtype=np.int64)
        if self.n == 0 or first.size == 0:
            return found
        at = np.searchsorted(sorted_first, first)
        todo = np.arange(first.size)
        while todo.size:  # a few rounds only where two ids here share the first hash
            inside = at[todo] < self.n
            todo = todo[inside]
            code = order[at[todo]]
            same = sorted_first[at[todo]] == first[todo]
            todo, code = todo[same], code[same]
            hit = self.hashes[1][code] == second[todo]
            found[todo[hit]] = code[hit]
            todo = todo[~hit]
            at[todo] += 1
        return found


def hash_groups(ids: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An order of the rows grouping equal ids, the flags of each group's first row, and
    the two hashes of each row's id."""
    n = len(ids)
    first = ids.hash(_SEEDS[0]).to_numpy()
    row_bits = max(1, (n - 1).bit_length())
    shift = np.uint64(row_bits)
    low = np.uint64((1 << row_bits) - 1)
    key = first & ~low
    key |= np.arange(n, dtype=np.uint64)
    key.sort()
    order = (key & low).view(np.int64)
    key >>= shift  # the hash prefix, in sorted order
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(key[1:], key[:-1], out=new[1:])
    del key
    second = ids.hash(_SEEDS[1]).to_numpy()
    check = second[order]
    mixed = (check[1:] != check[:-1]) & ~new[1:]
    if mixed.any():
        # a few prefixes shared by two ids (or more): order those runs by both full hashes
        run = np.cumsum(new) - 1
        rows = np.flatnonzero(np.isin(run, np.unique(run[1:][mixed])))
        sub = order[rows]
        sub = sub[np.lexsort((sub, second[sub], first[sub], run[rows]))]
        order[rows] = sub
        a, b = first[sub], second[sub]
        changed = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]
        new[rows] = changed | new[rows]
    return order, new, first, second


# --- grouped reductions ----------------------------------------------------------------------


def group_min(codes: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-code minimum of ``values`` and a mask of the codes that have a value."""
    return _group_extreme(codes, values, n, np.minimum)


def group_max(codes: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-code maximum of ``values`` and a mask of the codes that have a value."""
    return _group_extreme(codes, values, n, np.maximum)


def _group_extreme(
    codes: np.ndarray, values: np.ndarray, n: int, ufunc: np.ufunc
) -> tuple[np.ndarray, np.ndarray]:
    if np.issubdtype(values.dtype, np.integer):
        info = np.iinfo(values.dtype)
        start = info.max if ufunc is np.minimum else info.min
    else:
        start = np.inf if ufunc is np.minimum else -np.inf
    out = np.full(n, start, dtype=values.dtype)
    ufunc.at(out, codes, values)
    present = np.bincount(codes, minlength=n) > 0 if codes.size else np.zeros(n, dtype=bool)
    return out, present


def first_index(codes: np.ndarray, n: int) -> np.ndarray:
    """The first row of each code (-1 for codes without a row)."""
    first = np.full(n, -1, dtype=np.int64)
    rows = np.arange(codes.size - 1, -1, -1, dtype=np.int64)
    first[codes[::-1]] = rows  # the last write wins: the earliest row
    return first


def pack_sort(*parts: tuple[np.ndarray, int], row: bool = True) -> np.ndarray | None:
    """Sort rows by several non-negative integer columns, most significant first, ties in
    row order: one value sort of a packed 64-bit key ``(part_1, ..., part_k, row)``.

    ``parts``: ``(values, bits)`` pairs. Returns the row order, or None when the key needs
    more than 63 bits (the caller sorts another way). With ``row=False`` the last part
    must have no ties (e.g. ranks): the result is then that part's values in sorted order.
    """
    n = parts[0][0].size
    if not row:
        *parts, (last, bits) = parts  # type: ignore[assignment]
        if sum(b for _, b in parts) + bits > 63:
            return None
        key = np.zeros(n, dtype=np.int64)
        for values, part_bits in parts:
            key <<= part_bits
            key |= values.astype(np.int64, copy=False)
        key <<= bits
        key |= last.astype(np.int64, copy=False)
        key.sort()
        key &= (1 << bits) - 1
        return key
    row_bits = max(1, (n - 1).bit_length()) if n else 1
    if sum(bits for _, bits in parts) + row_bits > 63:
        return None
    key = np.zeros(n, dtype=np.int64)
    for values, bits in parts:
        key <<= bits
        key |= values.astype(np.int64, copy=False)
    key <<= row_bits
    key |= np.arange(n, dtype=np.int64)
    key.sort()
    key &= (1 << row_bits) - 1
    return key


def small_codes(values: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """A column of few distinct values as codes (int64) and the values of the codes (in
    order of first appearance; null is a value).

    Each row's code is found by its hash among the hashes of the distinct values (when
    those differ, as they do but about once in 10^17 runs; else by a join)."""
    distinct = values.unique(maintain_order=True)
    hashes = distinct.hash(_SEEDS[0]).to_numpy()
    order = np.argsort(hashes, kind="stable")
    ranked = hashes[order]
    if np.any(ranked[1:] == ranked[:-1]):
        table = distinct.to_frame("v").with_row_index("code")
        codes = (
            values.rename("v")
            .to_frame()
            .join(table, on="v", how="left", maintain_order="left", nulls_equal=True)["code"]
        )
        return codes.to_numpy().astype(np.int64), distinct
    at = np.searchsorted(ranked, values.hash(_SEEDS[0]).to_numpy())
    return order[at].astype(np.int64), distinct


def nullable(values: np.ndarray, known: np.ndarray | None) -> pl.Series:
    """A Series of ``values`` with nulls where not ``known`` (None: all known)."""
    series = pl.Series(values)
    if known is None:
        return series
    missing = np.flatnonzero(~known)
    return series.scatter(missing, None) if missing.size else series


def masked(mask: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays filtered by ``mask`` (the arrays themselves when it keeps every row)."""
    if mask.all():
        return arrays
    return tuple(a[mask] for a in arrays)


def bits_for(values: np.ndarray) -> int:
    """Bits needed for the largest of some non-negative integers (at least 1)."""
    return max(1, int(values.max()).bit_length()) if values.size else 1
