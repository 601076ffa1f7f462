"""Simulators of the BG/NBD, Pareto/NBD and Gamma-Gamma models (vectorised numpy).

They generate data whose true parameters are known, for parameter-recovery tests, the
benchmark and demos. Each customer's story follows the model's assumptions exactly:

- BG/NBD: ``lambda ~ Gamma(r, rate alpha)``, ``p ~ Beta(a, b)``; repeat purchases arrive as a
  Poisson process with rate ``lambda``; after each repeat purchase the customer drops out with
  probability ``p`` (so the number of repeat purchases ever made is geometric, >= 1).
- Pareto/NBD: the same purchase process, and an exponential lifetime with rate
  ``mu ~ Gamma(s, rate beta)``.
- Gamma-Gamma: each transaction's value is ``Gamma(p, rate nu)``, ``nu ~ Gamma(q, rate gamma)``.

Summaries are drawn without generating every purchase: given ``K`` Poisson events in
``[0, T]``, their times are ``K`` sorted uniforms, so the ``x``-th (the last observed) is
``T * Beta(x, K - x + 1)``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

__all__ = [
    "simulate_bgnbd",
    "simulate_pnbd",
    "simulate_spend",
    "simulate_transactions",
]


def _ages(n: int, age: float | np.ndarray) -> np.ndarray:
    out = np.broadcast_to(np.asarray(age, dtype=float), (n,)).copy()
    if np.any(out < 0):
        raise ValueError("T must not be negative")
    return out


def _last_of_first(
    rng: np.random.Generator, x: np.ndarray, k: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """Time of the ``x``-th of ``k`` uniform events on ``[0, T]`` (0 when ``x = 0``)."""
    positive = x > 0
    draws = rng.beta(np.where(positive, x, 1), np.where(positive, k - x + 1, 1))
    return np.where(positive, age * draws, 0.0)


def simulate_bgnbd(
    n: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    age: float | np.ndarray,
    seed: int | np.random.Generator | None = None,
) -> pl.DataFrame:
    """``n`` customers' ``frequency, recency, T`` (and hidden ``lam, p, alive``) under BG/NBD."""
    rng = np.random.default_rng(seed)
    ages = _ages(n, age)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    k = rng.poisson(lam * ages)  # events if the customer never dropped out
    lifetime_purchases = rng.geometric(p)  # repeat purchases before dropping out
    x = np.minimum(k, lifetime_purchases)
    return pl.DataFrame(
        {
            "member_id": np.arange(n, dtype=np.int64),
            "frequency": x.astype(np.int64),
            "recency": _last_of_first(rng, x, k, ages),
            "T": ages,
            "lam": lam,
            "p": p,
            "alive": k < lifetime_purchases,
        }
    )


def simulate_pnbd(
    n: int,
    *,
    r: float,
    alpha: float,
    s: float,
    beta: float,
    age: float | np.ndarray,
    seed: int | np.random.Generator | None = None,
) -> pl.DataFrame:
    """``n`` customers' ``frequency, recency, T`` (and ``lam, mu, alive``) under Pareto/NBD."""
    rng = np.random.default_rng(seed)
    ages = _ages(n, age)
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    lifetime = rng.exponential(1.0 / mu)
    active = np.minimum(lifetime, ages)
    x = rng.poisson(lam * active)
    return pl.DataFrame(
        {
            "member_id": np.arange(n, dtype=np.int64),
            "frequency": x.astype(np.int64),
            "recency": _last_of_first(rng, x, x, active),
            "T": ages,
            "lam": lam,
            "mu": mu,
            "alive": lifetime > ages,
        }
    )


def simulate_spend(
    frequency: np.ndarray,
    *,
    p: float,
    q: float,
    gamma: float,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Mean value of each customer's ``frequency`` repeat transactions (0 when none).

    The sum of ``x`` independent ``Gamma(p, nu)`` values is ``Gamma(px, nu)``, so the mean is
    ``Gamma(px, x nu)``: one draw per customer.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(q, 1.0 / gamma, x.size)
    positive = x > 0
    draws = rng.gamma(np.where(positive, p * x, 1.0), 1.0 / (np.where(positive, x, 1.0) * nu))
    return np.where(positive, draws, 0.0)


def _sorted_uniforms(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """For each customer, ``counts[i]`` sorted uniforms on [0, 1), concatenated.

    Normalised cumulative sums of ``k + 1`` exponential spacings are the order statistics of
    ``k`` uniforms, so no sort is needed: one pass over the draws.
    """
    n = counts.size
    sizes = counts + 1
    ends = np.cumsum(sizes)
    starts = ends - sizes
    spacings = rng.standard_exponential(int(ends[-1]) if n else 0)
    running = np.cumsum(spacings)
    before = np.where(starts > 0, running[starts - 1], 0.0)
    within = running - np.repeat(before, sizes)
    totals = np.repeat(within[ends - 1], sizes)
    keep = np.ones(spacings.size, dtype=bool)
    keep[ends - 1] = False  # the last spacing only normalises
    return (within / totals)[keep]


def simulate_transactions(
    n: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    p: float,
    q: float,
    gamma: float,
    start: date,
    days: int,
    join_days: int,
    seed: int | np.random.Generator | None = None,
    member_prefix: str = "M",
) -> pl.DataFrame:
    """A transaction log for ``n`` members under BG/NBD purchases and Gamma-Gamma spend.

    Member ``i`` makes a first purchase on a day drawn uniformly from the first ``join_days``
    days after ``start`` and is observed until ``start + days``; times are continuous (days),
    so two purchases may fall on one calendar day, as in real data. ``alpha`` is per day.
    Returns ``member_id`` (text), ``occurred_at`` (datetime) and ``amount`` (2 decimals).
    """
    rng = np.random.default_rng(seed)
    join = rng.integers(0, join_days, n).astype(float) + rng.random(n)
    ages = days - join
    lam = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n)
    k = rng.poisson(lam * ages)
    x = np.minimum(k, rng.geometric(drop))

    # Times of all k events in (0, T) sorted per member; keep the first x of each.
    uniforms = _sorted_uniforms(rng, k)
    owner = np.repeat(np.arange(n), k)
    rank = np.arange(uniforms.size) - np.repeat(np.cumsum(k) - k, k)
    kept = rank < x[owner]
    owner = np.concatenate([np.arange(n), owner[kept]])
    offset = np.concatenate([join, join[owner[n:]] + uniforms[kept] * ages[owner[n:]]])

    nu = rng.gamma(q, 1.0 / gamma, n)
    amount = np.round(rng.gamma(p, 1.0 / nu[owner]), 2) + 0.01  # never 0 after rounding

    order = np.lexsort((offset, owner))
    owner, offset, amount = owner[order], offset[order], amount[order]
    epoch = datetime.combine(start, datetime.min.time()) - datetime(1970, 1, 1)
    micros = np.round(offset * 86_400_000_000).astype(np.int64) + epoch // timedelta(microseconds=1)
    width = max(7, len(str(n - 1)))
    ids = pl.Series("member_id", owner, dtype=pl.Int64).cast(pl.String).str.zfill(width)
    return pl.DataFrame(
        {
            "member_id": member_prefix + ids,
            "occurred_at": pl.Series("occurred_at", micros).cast(pl.Datetime("us")),
            "amount": amount,
        }
    )
