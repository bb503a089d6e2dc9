"""Churn model: P(no activity in the next W days | customer features at a snapshot).

W (``churn_window_days``, default 30) is fixed by the training data set; activity is any event
in ``features.contract.ACTIVITY_EVENT_TYPES``. Calibrated on the latest slice of the training
window, like every nextbest probability.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from models._boosting import CalibratedBooster, fit_calibrated_booster, latest_slice
from models._estimator import BoostedEstimator, as_matrix, check_labels

logger = logging.getLogger(__name__)


class ChurnModel(BoostedEstimator):
    """Calibrated churn probability on LightGBM."""

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        ts_ns: np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        spec: object = None,
    ) -> ChurnModel:
        """Learn from snapshot rows (``y`` = 1 when the customer was inactive for W days)."""
        matrix = as_matrix(X, None, "X")
        labels = check_labels(y, matrix.shape[0])
        self._remember_schema(matrix.shape[1], feature_names, spec)
        holdout = latest_slice(
            None if ts_ns is None else np.asarray(ts_ns, dtype=np.int64),
            matrix.shape[0], self.calibration_fraction,
        )
        self.model_: CalibratedBooster = fit_calibrated_booster(
            matrix,
            labels,
            holdout=holdout,
            params=self._booster_params(),
            n_estimators=self.n_estimators,
            early_stopping_rounds=self.early_stopping_rounds,
            calibration=self.calibration,
            feature_names=self.feature_names_,
        )
        self.feature_importances_ = self.model_.feature_importance(matrix.shape[1])
        self.base_rate_ = float(labels.mean())
        logger.info("churn model: %d rows, churn rate %.3f, %d trees",
                    matrix.shape[0], self.base_rate_, self.model_.best_iteration)
        return self

    def predict_churn(self, features: np.ndarray) -> np.ndarray:
        """P(no activity in the next W days) per row."""
        self._check_fitted()
        return self.model_.predict(as_matrix(features, self.n_features_in_))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        positive = self.predict_churn(X)
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.predict_churn(X) >= 0.5).astype(np.int64)
