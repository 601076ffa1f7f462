"""Fixtures for the data import and export tests: client files written on the spot, and
tenants to import them into.

Every file a test reads is made by the test itself in ``tmp_path`` (``files``): CSV in any
encoding and separator, XLSX written with ``xlsxwriter`` (real Excel dates, several
sheets), Parquet with typed columns. The ``tea`` tenant runs the shipped teahouse sample
program (a first purchase enrols the customer; 1 point per yuan, 200 welcome points),
in force since 1 January 2025; the clock stands at ``conftest.FIXED_NOW``
(2026-11-25 16:00 in Shanghai).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import xlsxwriter
from sqlalchemy import func, select

from conftest import FIXED_NOW
from factories import make_tenant
from memberlab.core.app_state import AppState
from memberlab.dataio.loaders import ImportOptions, ImportSummary, run_import
from memberlab.datasets.demo import sample_program_text
from memberlab.programs import service as program_service

PROGRAM_FROM = datetime.fromisoformat("2025-01-01T00:00:00+08:00")
Cell = str | int | float | date | datetime | None


class Files:
    """Writes the client files a test needs into one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / name

    def raw(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    def text(self, name: str, text: str, *, encoding: str = "utf-8") -> Path:
        return self.raw(name, text.encode(encoding))

    def csv(
        self,
        name: str,
        rows: Sequence[Sequence[Cell]],
        *,
        encoding: str = "utf-8",
        separator: str = ",",
        bom: bool = False,
    ) -> Path:
        """Rows (the first is the header) as CSV, quoting only where needed."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=separator, lineterminator="\r\n")
        writer.writerows([["" if v is None else str(v) for v in row] for row in rows])
        data = buffer.getvalue().encode(encoding)
        return self.raw(name, (b"\xef\xbb\xbf" if bom else b"") + data)

    def xlsx(self, name: str, sheets: dict[str, Sequence[Sequence[Cell]]]) -> Path:
        """One worksheet per entry; dates and datetimes are real Excel dates with a format,
        numbers are numbers, ``None`` leaves the cell empty."""
        path = self.folder / name
        with xlsxwriter.Workbook(path) as workbook:
            day = workbook.add_format({"num_format": "yyyy-mm-dd"})
            moment = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
            for sheet, rows in sheets.items():
                worksheet = workbook.add_worksheet(sheet)
                for r, row in enumerate(rows):
                    for c, value in enumerate(row):
                        if value is None:
                            continue
                        if isinstance(value, datetime):
                            worksheet.write_datetime(r, c, value, moment)
                        elif isinstance(value, date):
                            worksheet.write_datetime(r, c, value, day)
                        elif isinstance(value, (int, float)):
                            worksheet.write_number(r, c, value)
                        else:
                            worksheet.write_string(r, c, value)
        return path

    def parquet(self, name: str, frame: pl.DataFrame) -> Path:
        path = self.folder / name
        frame.write_parquet(path)
        return path


@pytest.fixture
def files(tmp_path: Path) -> Files:
    folder = tmp_path / "in"
    folder.mkdir()
    return Files(folder)


@dataclass
class Tenant:
    """One tenant of the test store, with what the import tests keep asking of it."""

    state: AppState
    id: int

    def run(self, kind: str, path: Path, *, language: str = "en", **options: Any) -> ImportSummary:
        """``run_import`` with ``ImportOptions(**options)``; rejects in English by default."""
        return run_import(
            self.state,
            tenant_id=self.id,
            kind=kind,
            path=path,
            options=ImportOptions(language=language, **options),  # type: ignore[arg-type]
        )

    def count(self, model: type) -> int:
        with self.state.database.session(tenant_id=self.id) as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    def counts(self, *models: type) -> dict[str, int]:
        return {m.__tablename__: self.count(m) for m in models}  # type: ignore[attr-defined]


def open_tenant(state: AppState, slug: str, *, program: str | None = "teahouse") -> Tenant:
    """A tenant, running the named sample program since 2025-01-01 (or none)."""
    tenant_id = make_tenant(state, slug=slug, name_zh=slug, name_en=slug).tenant.id
    if program is not None:
        with state.database.session(tenant_id=tenant_id) as session:
            loaded = program_service.load(
                session, source=sample_program_text(program), created_by="test", now=FIXED_NOW
            )
            program_service.activate(
                session,
                version_id=loaded.version.id,
                effective_from=PROGRAM_FROM,
                activated_by="test",
                now=FIXED_NOW,
            )
    return Tenant(state, tenant_id)


@pytest.fixture
def tea(state: AppState) -> Tenant:
    """A tea chain on the teahouse sample program."""
    return open_tenant(state, "tea")


@pytest.fixture
def new_tenant(state: AppState) -> Any:
    """Opens more tenants: ``new_tenant("copy")`` or ``new_tenant("bare", program=None)``."""

    def make(slug: str, *, program: str | None = "teahouse") -> Tenant:
        return open_tenant(state, slug, program=program)

    return make


def read_rejects(path: str | Path) -> list[dict[str, str]]:
    """A rejects file as the client opens it: UTF-8 with BOM, one dict per row."""
    data = Path(path).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf"), data[:10]
    return list(csv.DictReader(io.StringIO(data[3:].decode("utf-8"))))


@pytest.fixture(name="read_rejects")
def read_rejects_fixture() -> Any:
    """``read_rejects(summary.rejects_file)``: the rows of a rejects file."""
    return read_rejects
