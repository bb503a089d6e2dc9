"""LightGBM underneath every nextbest model: one calibrated binary booster, trained and scored on
numpy arrays.

Training holds out the *latest* slice of its rows (by as-of time, never at random): the trees are
grown on the earlier rows, early stopping watches the later slice, and the calibrator is fit on
it, so calibration corrects the drift a model meets when it scores the future.

Scoring one customer must take microseconds: batches up to ``SMALL_BATCH_ROWS`` rows are scored
by ``models.fast_trees`` (the same predictions without LightGBM's per-call cost), larger ones by
``Booster.predict`` on ``n_jobs`` threads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

# OpenMP threads that spin while waiting make LightGBM many times slower when the cores are
# shared (measured: 4x on a busy 2-core machine); sleeping waits cost little when they are not.
# Only a default: it takes effect if set before the OpenMP runtime starts, and a user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402

from models.calibration import EPS, CalibrationMethod, ProbabilityCalibrator
from models.fast_trees import FlatForest

logger = logging.getLogger(__name__)

#: Batches up to this many rows are scored on one thread (the request path scores one customer);
#: larger ones use ``n_jobs`` threads.
SMALL_BATCH_ROWS = 20_000
#: Below this many training rows LightGBM trains on one thread: OpenMP's start-up and spin-waits
#: cost more than a second core saves (badly so on a busy machine — measured 20x slower).
SMALL_TRAINING_ROWS = 20_000
#: Marks a ``CalibratedBooster`` whose flat trees were not built yet (``None``: cannot be).
_NOT_BUILT: Any = object()


def booster_params(
    *,
    num_leaves: int,
    learning_rate: float,
    min_child_samples: int,
    subsample: float,
    colsample_bytree: float,
    reg_lambda: float,
    n_jobs: int,
    random_state: int,
) -> dict[str, Any]:
    """LightGBM parameters of a deterministic binary model."""
    return {
        "objective": "binary",
        "num_leaves": num_leaves,
        "learning_rate": learning_rate,
        "min_data_in_leaf": min_child_samples,
        "bagging_fraction": subsample,
        "bagging_freq": 1 if subsample < 1.0 else 0,
        "feature_fraction": colsample_bytree,
        "lambda_l2": reg_lambda,
        "num_threads": n_jobs,
        "seed": random_state,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


def latest_slice(ts_ns: np.ndarray | None, n_rows: int, fraction: float) -> np.ndarray:
    """Boolean mask of the latest ``fraction`` of rows by as-of time (row order if no times).

    Rows tied with the cut-off time all go to the later slice, so every earlier row is strictly
    earlier than every later one.
    """
    mask = np.zeros(n_rows, dtype=bool)
    if fraction <= 0.0 or n_rows < 2:
        return mask
    if ts_ns is None:
        mask[int(round(n_rows * (1.0 - fraction))):] = True
        return mask
    cutoff = np.quantile(ts_ns, 1.0 - fraction, method="higher")
    mask = ts_ns >= cutoff
    if mask.all():  # every row at one time: no earlier slice to learn from
        return np.zeros(n_rows, dtype=bool)
    return np.asarray(mask, dtype=bool)


@dataclass
class CalibratedBooster:
    """A binary LightGBM booster and the calibrator of its probabilities.

    ``booster`` is ``None`` when the training labels had one class only; ``prior`` is then the
    answer for every row.
    """

    booster: lgb.Booster | None
    calibrator: ProbabilityCalibrator
    prior: float
    n_jobs: int = 1
    best_iteration: int = 0

    def raw(self, X: np.ndarray) -> np.ndarray:
        if self.booster is None:
            return np.full(X.shape[0], self.prior, dtype=np.float64)
        if X.shape[0] > SMALL_BATCH_ROWS:
            return np.asarray(self.booster.predict(X, num_threads=self.n_jobs), dtype=np.float64)
        # Booster.predict costs ~50-80 µs per call before it reaches a tree, more than the
        # request path's small calls take to score: they walk the flattened trees instead,
        # which gives LightGBM's predictions bit for bit (models.fast_trees).
        forest = self.__dict__.get("_forest", _NOT_BUILT)
        if forest is _NOT_BUILT:
            forest = FlatForest.from_booster(self.booster, self.booster.best_iteration)
            self.__dict__["_forest"] = forest
        if forest is not None:
            return forest.predict(X)
        return self._lightgbm_raw(X)

    def _lightgbm_raw(self, X: np.ndarray) -> np.ndarray:
        """LightGBM's own prediction on one thread, with a predictor kept across calls
        (``Booster.predict`` builds a new one, parameters and all, on every call)."""
        assert self.booster is not None
        predictor = self.__dict__.get("_predictor")
        if predictor is None:
            predictor = lgb.basic._InnerPredictor.from_booster(self.booster, {"num_threads": 1})
            self.__dict__["_predictor"] = predictor
        scores = predictor.predict(X, num_iteration=self.booster.best_iteration)
        return np.asarray(scores, dtype=np.float64)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # Caches of this process, rebuilt on first use: a predictor handle and the flat trees.
        state.pop("_predictor", None)
        state.pop("_forest", None)
        return state

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.calibrator.transform(self.raw(X))

    def feature_importance(self, n_features: int) -> np.ndarray:
        if self.booster is None:
            return np.zeros(n_features, dtype=np.float64)
        gain = self.booster.feature_importance(importance_type="gain")
        return np.asarray(gain, dtype=np.float64)


def fit_calibrated_booster(
    X: np.ndarray,
    y: np.ndarray,
    *,
    holdout: np.ndarray,
    params: dict[str, Any],
    n_estimators: int,
    early_stopping_rounds: int | None,
    calibration: CalibrationMethod,
    categorical: Sequence[int] = (),
    sample_weight: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
) -> CalibratedBooster:
    """Grow trees on ``~holdout`` rows, stop early and calibrate on ``holdout`` rows.

    With an empty holdout the trees use every row and stay uncalibrated.
    """
    n_jobs = int(params["num_threads"])
    y = np.asarray(y, dtype=np.float64)
    weight = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, np.float64)
    prior = float(np.clip(np.average(y, weights=weight), EPS, 1.0 - EPS)) if y.size else 0.5
    calibrator = ProbabilityCalibrator("none")
    if y.size == 0 or np.unique(y).size < 2:
        logger.warning("labels have a single class (rate %.3f): a constant model is fit", prior)
        return CalibratedBooster(None, calibrator, prior, n_jobs=n_jobs)
    train = ~holdout
    if np.unique(y[train]).size < 2:  # the earlier slice alone cannot learn: use everything
        train, holdout = np.ones_like(holdout), np.zeros_like(holdout)
    if int(train.sum()) < SMALL_TRAINING_ROWS:
        params = params | {"num_threads": 1}
    names: list[str] | Literal["auto"] = (
        list(feature_names) if feature_names is not None else "auto"
    )
    train_set = lgb.Dataset(
        X[train], y[train], weight=weight[train], feature_name=names,
        categorical_feature=list(categorical), free_raw_data=True,
    )
    valid_sets: list[lgb.Dataset] = []
    callbacks: list[Any] = []
    has_holdout = bool(holdout.any())
    if has_holdout:
        valid_sets.append(
            lgb.Dataset(X[holdout], y[holdout], weight=weight[holdout], reference=train_set)
        )
        if early_stopping_rounds:
            callbacks.append(lgb.early_stopping(early_stopping_rounds, verbose=False))
    booster = lgb.train(
        params, train_set, num_boost_round=n_estimators, valid_sets=valid_sets,
        callbacks=callbacks,
    )
    best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    # Keep only the trees that are used: smaller artefact, faster scoring.
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    fitted = CalibratedBooster(booster, calibrator, prior, n_jobs, best)
    if has_holdout and calibration != "none":
        if np.unique(y[holdout]).size < 2:
            logger.warning("the calibration slice has a single class: probabilities left raw")
        else:
            fitted.calibrator = ProbabilityCalibrator(calibration).fit(
                fitted.raw(X[holdout]), y[holdout], weight[holdout]
            )
    logger.debug("booster: %d trees (of %d), %d training rows, %d calibration rows",
                 best, n_estimators, int(train.sum()), int(holdout.sum()))
    return fitted
