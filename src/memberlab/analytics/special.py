"""Special functions with guards: the Gauss hypergeometric function and distinct-row helpers."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.special import hyp2f1

__all__ = [
    "distinct_rows",
    "hyp2f1_safe",
    "hyp2f1_unit",
    "log1mexp",
    "softplus",
    "unique_inverse",
]


def hyp2f1_safe(a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``2F1(a, b; c; z)`` for ``0 <= z < 1``: scipy's, with the power series as a fall-back.

    scipy's ``hyp2f1`` returns ``inf`` or ``nan`` in a few corners of parameter space (large
    ``a`` and ``b`` with ``z`` near 1 is the one ``lifetimes`` trips over). The callers here
    only ask for transformed forms whose series have bounded, eventually decreasing terms,
    so summing the series directly is a safe fall-back where scipy gives up.
    """
    a, b, c, z = np.broadcast_arrays(
        np.asarray(a, float), np.asarray(b, float), np.asarray(c, float), np.asarray(z, float)
    )
    out = np.asarray(hyp2f1(a, b, c, z), dtype=float)
    bad = ~np.isfinite(out)
    if bad.any():
        out = out.copy()
        out[bad] = _series(a[bad], b[bad], c[bad], z[bad])
    return out


def _hash_order(arrays: list[np.ndarray]) -> np.ndarray:
    """Row indices sorted by a 64-bit hash of each row (equal rows end up adjacent)."""
    frame = pl.DataFrame({f"c{i}": a for i, a in enumerate(arrays)})
    return frame.select(pl.struct(pl.all()).hash(seed=7).arg_sort()).to_series().to_numpy()


def hyp2f1_unit(
    b: np.ndarray, c: np.ndarray, z: np.ndarray, *, max_terms: int = 1000
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``F = 2F1(1, b; c; z)`` and its partial derivatives in ``b``, ``c`` and ``z``.

    For ``c > b > 0`` and ``0 <= z < 1`` (the Pareto/NBD likelihood's case, after Euler's
    transformation). The series ``sum_k t_k``, ``t_k = prod_{j<k} (b+j)/(c+j) z^k``, has
    terms shrinking at least as fast as ``z^k``, and differentiates term by term:
    ``dt_k/db = t_k sum_{j<k} 1/(b+j)``, ``dt_k/dc = -t_k sum_{j<k} 1/(c+j)``,
    ``dt_k/dz = k t_k / z``. scipy has no derivatives of ``2F1`` in its parameters; these give
    the model an analytic gradient. Elements whose series is still not done after
    ``max_terms`` terms (``z`` very near 1) fall back to scipy's value, the contiguous
    relation ``dF/dz = (b/c) 2F1(2, b+1; c+1; z)`` and central differences in ``b``, ``c``.
    """
    b, c, z = (np.array(v, dtype=float).ravel() for v in np.broadcast_arrays(b, c, z))
    n = z.size
    value, d_b, d_c, d_z = np.ones(n), np.zeros(n), np.zeros(n), np.zeros(n)
    idx = np.arange(n)
    bb, cc, zz = b, c, z
    term, sum_b, sum_c = np.ones(n), np.zeros(n), np.zeros(n)
    f, fb, fc, fz = np.ones(n), np.zeros(n), np.zeros(n), np.zeros(n)
    tail = 1.0 / np.maximum(1.0 - zz, 1e-300)  # remaining sum <= term * z / (1 - z)
    for k in range(1, max_terms + 1):
        bk = bb + (k - 1)
        ck = cc + (k - 1)
        term = term * (bk / ck) * zz
        sum_b = sum_b + 1.0 / bk
        sum_c = sum_c + 1.0 / ck
        f = f + term
        fb = fb + term * sum_b
        fc = fc - term * sum_c
        fz = fz + k * term
        if k % 8:
            continue  # checking costs as much as a term: look every 8 terms
        done = term * (1.0 + k + sum_b + sum_c) * tail <= 1e-16 * f
        if done.any():
            where = idx[done]
            value[where], d_b[where], d_c[where] = f[done], fb[done], fc[done]
            d_z[where] = np.where(
                zz[done] > 0, fz[done] / np.where(zz[done] > 0, zz[done], 1), bb[done] / cc[done]
            )
            keep = ~done
            if not keep.any():
                return value, d_b, d_c, d_z
            idx, bb, cc, zz, tail = idx[keep], bb[keep], cc[keep], zz[keep], tail[keep]
            term, sum_b, sum_c = term[keep], sum_b[keep], sum_c[keep]
            f, fb, fc, fz = f[keep], fb[keep], fc[keep], fz[keep]
    # The few series that did not finish: scipy's value and finite differences (NaN where
    # scipy gives up too, which the optimiser treats as a step too far).
    value[idx] = hyp2f1(1.0, bb, cc, zz)
    d_z[idx] = bb / cc * hyp2f1(2.0, bb + 1.0, cc + 1.0, zz)
    h_b = 1e-6 * np.maximum(1.0, bb)
    h_c = 1e-6 * np.maximum(1.0, cc)
    d_b[idx] = (hyp2f1(1.0, bb + h_b, cc, zz) - hyp2f1(1.0, bb - h_b, cc, zz)) / (2 * h_b)
    d_c[idx] = (hyp2f1(1.0, bb, cc + h_c, zz) - hyp2f1(1.0, bb, cc - h_c, zz)) / (2 * h_c)
    return value, d_b, d_c, d_z


def _series(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray, max_terms: int = 20_000
) -> np.ndarray:
    """The hypergeometric series summed term by term until the terms stop mattering.

    Gives ``nan`` where it has not settled after ``max_terms`` terms (or overflows): the
    caller then sees a non-finite likelihood and the optimiser steps back.
    """
    term = np.ones_like(z)
    total = np.ones_like(z)
    settled = np.zeros(z.shape, dtype=bool)
    for k in range(max_terms):
        term = term * (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z
        total = total + term
        settled = np.abs(term) <= 1e-16 * np.abs(total)
        if np.all(settled | ~np.isfinite(total)):
            break
    return np.where(settled & np.isfinite(total), total, np.nan)


def softplus(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log(1 + exp(z))`` and its derivative ``expit(z)``, sharing one ``exp``.

    Stable for any ``z``: with ``e = exp(-|z|) <= 1``, ``softplus = max(z, 0) + log1p(e)``
    and ``expit = 1/(1+e)`` or ``e/(1+e)``. Transcendental functions dominate the cost of a
    likelihood pass, so computing ``exp`` once matters.
    """
    e = np.exp(-np.abs(z))
    value = np.maximum(z, 0.0) + np.log1p(e)
    inv = 1.0 / (1.0 + e)
    return value, np.where(z >= 0, inv, e * inv)


def log1mexp(x: np.ndarray) -> np.ndarray:
    """``log(1 - exp(x))`` for ``x <= 0`` without cancellation (Maechler 2012)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(x > -0.6931471805599453, np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def unique_inverse(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct combinations of aligned columns, and for each row the index of its combination.

    Lets an expensive function (``hyp2f1``) run once per distinct argument instead of once
    per customer. See :func:`distinct_rows`.
    """
    values, inverse, _ = distinct_rows(*columns)
    return values, inverse


def distinct_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of aligned numeric columns: their values, each row's group, the counts.

    Rows are ordered by a 64-bit hash of the whole row (one integer sort, much faster than
    sorting the columns one after another), and a group starts wherever a row differs from
    the one before it *in value*. Equal rows are adjacent (equal hashes), so each distinct row
    is one group; a hash collision can only put two different rows side by side, and then the
    value comparison still tells them apart. At worst (colliding rows interleaved) a distinct
    row appears as two groups with the same values, which callers handle correctly (each
    group's count is right; the row is just computed twice).
    """
    arrays = [np.asarray(column).ravel() for column in columns]
    n = arrays[0].size
    if n == 0:
        return [a[:0] for a in arrays], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = _hash_order(arrays)
    ordered = [np.take(a, order) for a in arrays]
    new = np.zeros(n, dtype=bool)
    new[0] = True
    for a in ordered:
        new[1:] |= a[1:] != a[:-1]
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group
    counts = np.diff(np.append(starts, n))
    return [a[starts] for a in ordered], inverse, counts
