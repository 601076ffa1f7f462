"""Fixtures for the lifetime-value tests: the CDNOW sample of Fader, Hardie and Lee.

The CDNOW sample (2,357 customers who first bought in the first quarter of 1997, 6,919
purchases to mid-1998) ships inside the ``lifetimes`` wheel as
``lifetimes/datasets/CDNOW_sample.txt``: one purchase a line, ``customer id, sample index,
date YYYYMMDD, number of CDs, dollar value``. It is a test-only dependency installed with
``--no-deps``, so the package is located with ``importlib.util.find_spec`` and its file read
directly: importing ``lifetimes`` would fail without autograd, pandas and dill, which
``--no-deps`` leaves out. ``MEMBERLAB_CDNOW_SAMPLE`` may point at the file instead. Tests
that need the data are skipped, with the reason, when neither is there.
"""

from __future__ import annotations

import importlib.util
import os
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from memberlab.analytics.summary import rfm_summary

CALIBRATION_END = date(1997, 9, 30)  # 39 weeks after 1997-01-01: the papers' calibration
OBSERVATION_END = date(1998, 6, 30)  # the 39-week holdout


def cdnow_sample_path() -> Path | None:
    override = os.environ.get("MEMBERLAB_CDNOW_SAMPLE")
    if override:
        return Path(override) if Path(override).is_file() else None
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "datasets" / "CDNOW_sample.txt"
        if path.is_file():
            return path
    return None


@pytest.fixture(scope="session")
def cdnow_transactions() -> pl.DataFrame:
    path = cdnow_sample_path()
    if path is None:
        pytest.skip(
            "CDNOW sample not available: install the test-only dependency "
            "`lifetimes==0.11.3 --no-deps` (it ships lifetimes/datasets/CDNOW_sample.txt) "
            "or set MEMBERLAB_CDNOW_SAMPLE to the file"
        )
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return pl.DataFrame(
        {
            "member_id": [int(row[1]) for row in rows],
            "occurred_at": [date(int(r[2][:4]), int(r[2][4:6]), int(r[2][6:8])) for r in rows],
            "cds": [int(row[3]) for row in rows],
            "amount": [float(row[4]) for row in rows],
        }
    )


@pytest.fixture(scope="session")
def cdnow(cdnow_transactions: pl.DataFrame) -> pl.DataFrame:
    """The papers' calibration summary, in weeks, with the 39-week holdout."""
    return rfm_summary(
        cdnow_transactions,
        calibration_end=CALIBRATION_END,
        observation_end=OBSERVATION_END,
        time_unit="week",
    ).sort("member_id")
