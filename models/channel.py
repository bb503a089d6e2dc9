"""Channel preference: for each channel, P(the customer engages there within the horizon).

One calibrated LightGBM booster per channel (``features.contract.CHANNELS`` order), all on the same
customer features. A customer whose history is too thin to say — fewer than
``min_history_events`` engagement events, read from the ``history_feature`` column — gets a row of
``NaN`` ("not enough data") instead of a guess; callers fall back to their own default.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from features.contract import CHANNELS
from models._boosting import CalibratedBooster, fit_calibrated_booster, latest_slice
from models._estimator import BoostedEstimator, as_matrix, check_labels
from models.calibration import CalibrationMethod

logger = logging.getLogger(__name__)


class ChannelModel(BoostedEstimator):
    """Per-channel engagement probabilities with an explicit "not enough data" state."""

    def __init__(
        self,
        n_estimators: int = 150,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        early_stopping_rounds: int | None = 30,
        calibration: CalibrationMethod = "sigmoid",
        calibration_fraction: float = 0.2,
        n_jobs: int = 2,
        random_state: int = 0,
        history_feature: str | None = None,
        min_history_events: int = 3,
    ) -> None:
        super().__init__(
            n_estimators=n_estimators, num_leaves=num_leaves, learning_rate=learning_rate,
            min_child_samples=min_child_samples, subsample=subsample,
            colsample_bytree=colsample_bytree, reg_lambda=reg_lambda,
            early_stopping_rounds=early_stopping_rounds, calibration=calibration,
            calibration_fraction=calibration_fraction, n_jobs=n_jobs, random_state=random_state,
        )
        self.history_feature = history_feature
        self.min_history_events = min_history_events

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        ts_ns: np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        spec: object = None,
    ) -> ChannelModel:
        """``y`` is (rows, channels): 1 where the customer engaged on that channel."""
        matrix = as_matrix(X, None, "X")
        labels = check_labels(y, matrix.shape[0], (len(CHANNELS),))
        self._remember_schema(matrix.shape[1], feature_names, spec)
        self.history_index_: int | None = None
        if self.history_feature is not None:
            if self.history_feature not in self.feature_names_:
                raise ValueError(
                    f"history_feature {self.history_feature!r} is not one of the feature names"
                )
            self.history_index_ = self.feature_names_.index(self.history_feature)
        else:
            logger.warning("channel model without history_feature: no 'not enough data' state")
        enough = self.has_enough_history(matrix)
        if not enough.any():
            raise ValueError(
                f"no training row has {self.min_history_events} or more {self.history_feature} "
                "(the 'enough history' rule): provide longer histories or lower "
                "min_history_events"
            )
        matrix, labels = matrix[enough], labels[enough]
        times = None if ts_ns is None else np.asarray(ts_ns, dtype=np.int64)[enough]
        holdout = latest_slice(times, matrix.shape[0], self.calibration_fraction)
        self.models_: list[CalibratedBooster] = [
            fit_calibrated_booster(
                matrix,
                labels[:, index],
                holdout=holdout,
                params=self._booster_params(seed_offset=index),
                n_estimators=self.n_estimators,
                early_stopping_rounds=self.early_stopping_rounds,
                calibration=self.calibration,
                feature_names=self.feature_names_,
            )
            for index in range(len(CHANNELS))
        ]
        self.channel_rates_ = labels.mean(axis=0) if labels.size else np.zeros(len(CHANNELS))
        self.feature_importances_ = np.sum(
            [m.feature_importance(matrix.shape[1]) for m in self.models_], axis=0
        )
        logger.info(
            "channel model: %d rows with enough history (of %d); engagement rates %s",
            int(enough.sum()), enough.size,
            ", ".join(f"{c.value} {r:.2f}" for c, r in zip(CHANNELS, self.channel_rates_,
                                                           strict=True)),
        )
        return self

    def has_enough_history(self, features: np.ndarray) -> np.ndarray:
        """True for rows whose history is long enough to predict a preference."""
        if self.history_index_ is None:
            return np.ones(features.shape[0], dtype=bool)
        history = features[:, self.history_index_]
        return np.asarray(np.nan_to_num(history, nan=0.0) >= self.min_history_events)

    def predict_channels(self, features: np.ndarray) -> np.ndarray:
        """(rows, channels) engagement probabilities; NaN rows mean "not enough data"."""
        self._check_fitted()
        matrix = as_matrix(features, self.n_features_in_)
        scores = np.full((matrix.shape[0], len(CHANNELS)), np.nan, dtype=np.float64)
        enough = self.has_enough_history(matrix)
        if enough.any():
            known = matrix if enough.all() else matrix[enough]
            scores[enough] = np.column_stack([m.predict(known) for m in self.models_])
        return scores

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.predict_channels(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Preferred channel code per row (``CHANNELS`` order), -1 for "not enough data"."""
        scores = self.predict_channels(X)
        best = np.full(scores.shape[0], -1, dtype=np.int64)
        known = ~np.isnan(scores).any(axis=1)
        best[known] = np.argmax(scores[known], axis=1)
        return best
