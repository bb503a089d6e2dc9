"""Uplift metrics: how well a score ranks customers by the *incremental* effect of a treatment.

All metrics need a randomised (or propensity-balanced) comparison of treated and control rows:
``outcome`` (binary or continuous), ``treatment`` (1 treated, 0 control) and ``score`` (the
predicted uplift; higher = target first). Customers are targeted in order of decreasing score;
customers with equal scores are targeted together, so the curves do not depend on row order.

With ``k`` customers targeted, ``Y_T(k)``/``Y_C(k)`` the summed outcomes and ``N_T(k)``/``N_C(k)``
the counts of treated/control rows among them:

- **Qini curve** ``Q(k) = Y_T(k) - Y_C(k) * N_T(k) / N_C(k)``: incremental outcomes among the
  targeted treated, the control outcome rescaled to the treated count (Radcliffe, 2007).
- **Uplift curve** ``U(k) = (Y_T(k)/N_T(k) - Y_C(k)/N_C(k)) * k``: incremental outcomes had all
  ``k`` targeted customers been treated.

Curves are returned against the fraction targeted ``k / n`` and divided by ``n`` (incremental
outcomes per customer of the population), so areas compare across data sets. The **Qini
coefficient** is the area between the Qini curve and the random-targeting line (the straight line
to the same end point); **AUUC** is the area under the uplift curve, next to the random
targeting's area (the overall uplift times 1/2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class UpliftCurve:
    """A curve over the fraction of customers targeted (``fraction[0] == 0``, last == 1)."""

    fraction: np.ndarray
    values: np.ndarray

    @property
    def area(self) -> float:
        """Area under the curve (trapezoids over ``fraction``)."""
        return float(np.trapezoid(self.values, self.fraction))

    @property
    def random_area(self) -> float:
        """Area under the random-targeting line from the origin to the curve's end point."""
        return float(self.values[-1]) / 2.0


def _validate(
    outcome: np.ndarray, treatment: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(outcome, dtype=np.float64)
    t = np.asarray(treatment)
    s = np.asarray(score, dtype=np.float64)
    if y.ndim != 1 or t.shape != y.shape or s.shape != y.shape or y.size == 0:
        raise ValueError(
            "outcome, treatment and score must be 1-D arrays of the same non-zero length, got "
            f"shapes {y.shape}, {t.shape}, {s.shape}"
        )
    bad = np.flatnonzero(~np.isin(t, (0, 1)))
    if bad.size:
        raise ValueError(
            f"treatment must be 0 (control) or 1 (treated): index {bad[0]} is {t[bad[0]]!r}"
        )
    for name, values in (("outcome", y), ("score", s)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(f"{name} must be finite: index {bad[0]} is {values[bad[0]]!r}")
    treated = t.astype(bool)
    if treated.all() or not treated.any():
        raise ValueError("uplift needs both treated (1) and control (0) rows")
    return y, treated, s


def _cumulative(
    outcome: np.ndarray, treatment: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative ``k, Y_T, Y_C, N_T, N_C`` at the end of each block of equal scores (from 0)."""
    y, treated, s = _validate(outcome, treatment, score)
    order = np.argsort(-s, kind="stable")
    y, treated, s = y[order], treated[order], s[order]
    block_ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    n_t = np.cumsum(treated)[block_ends]
    n_c = np.cumsum(~treated)[block_ends]
    y_t = np.cumsum(np.where(treated, y, 0.0))[block_ends]
    y_c = np.cumsum(np.where(treated, 0.0, y))[block_ends]

    def start(values: np.ndarray) -> np.ndarray:
        return np.r_[0.0, values.astype(np.float64)]

    return start(block_ends + 1), start(y_t), start(y_c), start(n_t), start(n_c)


def qini_curve(outcome: np.ndarray, treatment: np.ndarray, score: np.ndarray) -> UpliftCurve:
    """The Qini curve, per customer of the population, against the fraction targeted."""
    k, y_t, y_c, n_t, n_c = _cumulative(outcome, treatment, score)
    with np.errstate(divide="ignore", invalid="ignore"):
        control_scaled = np.where(n_c > 0, y_c * n_t / n_c, 0.0)
    n = k[-1]
    return UpliftCurve(fraction=k / n, values=(y_t - control_scaled) / n)


def uplift_curve(outcome: np.ndarray, treatment: np.ndarray, score: np.ndarray) -> UpliftCurve:
    """The uplift curve, per customer of the population, against the fraction targeted."""
    k, y_t, y_c, n_t, n_c = _cumulative(outcome, treatment, score)
    both = (n_t > 0) & (n_c > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_gap = np.where(both, y_t / n_t - y_c / n_c, 0.0)
    n = k[-1]
    return UpliftCurve(fraction=k / n, values=rate_gap * k / n)


def qini_coefficient(outcome: np.ndarray, treatment: np.ndarray, score: np.ndarray) -> float:
    """Area between the Qini curve and random targeting (> 0: the score ranks better than
    chance), in incremental outcomes per customer."""
    curve = qini_curve(outcome, treatment, score)
    return curve.area - curve.random_area


def auuc(outcome: np.ndarray, treatment: np.ndarray, score: np.ndarray) -> float:
    """Area under the uplift curve, in incremental outcomes per customer (random targeting
    scores ``uplift_curve(...).random_area``)."""
    return uplift_curve(outcome, treatment, score).area


def uplift_at_k(
    outcome: np.ndarray,
    treatment: np.ndarray,
    score: np.ndarray,
    k: float = 0.3,
    strategy: Literal["overall", "by_group"] = "overall",
) -> float:
    """Treated minus control outcome rate among the top ``k`` fraction by score.

    ``overall`` takes the top ``floor(k * n)`` customers of the whole population (at least one);
    ``by_group`` takes the top ``floor(k * n)`` of the treated and of the control rows separately
    (the two conventions of the uplift literature; ``overall`` is the default of scikit-uplift).
    """
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must be a fraction in (0, 1], got {k}")
    y, treated, s = _validate(outcome, treatment, score)
    order = np.argsort(-s, kind="stable")
    y, treated = y[order], treated[order]
    if strategy == "overall":
        top = slice(0, max(1, math.floor(k * y.size)))
        y_top, treated_top = y[top], treated[top]
        if treated_top.all() or not treated_top.any():
            raise ValueError(
                f"the top {k:.0%} holds only {'treated' if treated_top.all() else 'control'} "
                "rows: uplift is undefined there; use a larger k"
            )
        return float(y_top[treated_top].mean() - y_top[~treated_top].mean())
    if strategy == "by_group":
        y_t, y_c = y[treated], y[~treated]
        top_t = y_t[: max(1, math.floor(k * y_t.size))]
        top_c = y_c[: max(1, math.floor(k * y_c.size))]
        return float(top_t.mean() - top_c.mean())
    raise ValueError(f"strategy must be 'overall' or 'by_group', got {strategy!r}")
