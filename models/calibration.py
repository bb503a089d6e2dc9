"""Probability calibration fit on a later time slice than the trees it corrects.

Boosted trees trained on older data drift: scores keep their order but not their level. A
calibrator learnt on the most recent part of the training window maps raw scores back to observed
frequencies. Two methods:

- ``sigmoid`` (Platt scaling on the logit): two parameters, strictly increasing, so two actions
  with different raw scores keep different calibrated scores — which the uplift
  P(conversion | action) − P(conversion | no_action) relies on. The default.
- ``isotonic``: free-form monotone, better when the miscalibration is not logistic-shaped, but it
  pools neighbouring scores into flat steps (equal probabilities, so zero uplift between actions
  that land in one step).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression

logger = logging.getLogger(__name__)

CalibrationMethod = Literal["sigmoid", "isotonic", "none"]

#: Probabilities are kept inside [EPS, 1 - EPS] so log loss stays finite.
EPS = 1e-6
_NEWTON_STEPS = 50


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, EPS, 1.0 - EPS)
    return np.log(clipped) - np.log1p(-clipped)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow for large |z|


def _platt_loss(
    slope: float, intercept: float, z: np.ndarray, y: np.ndarray, weight: np.ndarray,
    ridge: float,
) -> float:
    margin = slope * z + intercept
    # log(1 + exp(m)) - y m, computed stably
    loss = np.logaddexp(0.0, margin) - y * margin
    return float(weight @ loss) + 0.5 * ridge * (slope - 1.0) ** 2


def _fit_platt(z: np.ndarray, y: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """Weighted logistic regression of ``y`` on one input ``z``: Newton steps, halved until the
    loss decreases.

    A small ridge pulls the slope toward 1 (no change), keeping it finite when the slice is
    tiny, separable or ``z`` is constant.
    """
    slope, intercept = 1.0, 0.0
    ridge = 1e-3 * float(weight.sum()) + 1e-9
    loss = _platt_loss(slope, intercept, z, y, weight, ridge)
    for _ in range(_NEWTON_STEPS):
        p = _sigmoid(slope * z + intercept)
        residual = weight * (p - y)
        curvature = weight * p * (1.0 - p)
        gradient = np.array([residual @ z + ridge * (slope - 1.0), residual.sum()])
        hessian = np.array(
            [
                [curvature @ (z * z) + ridge, curvature @ z],
                [curvature @ z, curvature.sum() + 1e-9],
            ]
        )
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        scale = 1.0
        while scale > 1e-4:
            candidate = (slope - scale * float(step[0]), intercept - scale * float(step[1]))
            candidate_loss = _platt_loss(*candidate, z, y, weight, ridge)
            if candidate_loss <= loss:
                break
            scale *= 0.5
        else:
            break
        improvement = loss - candidate_loss
        slope, intercept = candidate
        loss = candidate_loss
        if improvement < 1e-10 * max(abs(loss), 1.0):
            break
    return slope, intercept


class ProbabilityCalibrator:
    """Maps raw probabilities to calibrated ones; fit with :meth:`fit`, apply with
    :meth:`transform`. Picklable and numpy-only on the predict path."""

    def __init__(self, method: CalibrationMethod = "sigmoid") -> None:
        self.method = method
        self.slope_ = 1.0
        self.intercept_ = 0.0
        self.isotonic_: IsotonicRegression | None = None

    def fit(
        self, raw: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> ProbabilityCalibrator:
        raw = np.asarray(raw, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        weight = np.ones_like(raw) if sample_weight is None else np.asarray(sample_weight, float)
        if self.method == "sigmoid":
            self.slope_, self.intercept_ = _fit_platt(_logit(raw), y, weight)
            logger.debug("Platt calibration: slope %.3f intercept %.3f", self.slope_,
                         self.intercept_)
        elif self.method == "isotonic":
            self.isotonic_ = IsotonicRegression(
                y_min=EPS, y_max=1.0 - EPS, out_of_bounds="clip", increasing=True
            ).fit(raw, y, sample_weight=weight)
        elif self.method != "none":
            raise ValueError(f"calibration must be sigmoid, isotonic or none, not {self.method!r}")
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        if self.method == "sigmoid":
            return np.clip(_sigmoid(self.slope_ * _logit(raw) + self.intercept_), EPS, 1.0 - EPS)
        if self.method == "isotonic" and self.isotonic_ is not None:
            return np.asarray(self.isotonic_.predict(raw), dtype=np.float64)
        return np.clip(np.asarray(raw, dtype=np.float64), EPS, 1.0 - EPS)
