"""Conversion model: P(conversion within the attribution window | customer features, action).

The action is part of the input — message, channel and local send hour, or ``no_action`` (all
three ``-1``) — so one model answers "what if we sent this?" for every candidate *and* "what if we
sent nothing?". Their difference is the uplift the decision policy weighs (a single "S-learner"
on the decision log, whose randomised arms, including no_action, make the contrast learnable).

Message and channel enter LightGBM as categorical features (code + 1, so ``no_action`` is
category 0); the local hour stays numeric. Probabilities are calibrated on the latest slice of
the training window (see ``models.calibration``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

import numpy as np

from models._boosting import CalibratedBooster, fit_calibrated_booster, latest_slice
from models._estimator import BoostedEstimator, as_matrix, check_labels

logger = logging.getLogger(__name__)

#: The three action columns that follow the customer features in a conversion row.
ACTION_MESSAGE: Final = "action_message"
ACTION_CHANNEL: Final = "action_channel"
ACTION_LOCAL_HOUR: Final = "action_local_hour"
ACTION_COLUMNS: Final = (ACTION_MESSAGE, ACTION_CHANNEL, ACTION_LOCAL_HOUR)
#: Code of ``no_action`` in each action column.
NO_ACTION_CODE: Final = -1


def _encode_actions(matrix: np.ndarray) -> np.ndarray:
    """Shift message and channel codes so ``no_action`` (-1) is category 0 (in place)."""
    matrix[:, -3] += 1.0
    matrix[:, -2] += 1.0
    if (matrix[:, -3:-1] < 0).any():
        raise ValueError("action message/channel codes must be >= -1 (-1 means no_action)")
    return matrix


class ConversionModel(BoostedEstimator):
    """Calibrated, action-conditional conversion probability on LightGBM.

    ``fit`` takes ``X`` whose last three columns are :data:`ACTION_COLUMNS`; the scorer method
    :meth:`predict_conversion` takes the customer features and the action codes separately.
    """

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        ts_ns: np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        spec: object = None,
    ) -> ConversionModel:
        """Learn from decision rows; ``ts_ns`` (as-of time per row) picks the calibration slice."""
        matrix = as_matrix(X, None, "X")
        if matrix.shape[1] < len(ACTION_COLUMNS):
            raise ValueError(f"X must end with the three action columns {ACTION_COLUMNS}")
        labels = check_labels(y, matrix.shape[0])
        names = list(feature_names) if feature_names is not None else None
        if names is not None and tuple(names[-3:]) != ACTION_COLUMNS:
            raise ValueError(f"the last three feature_names must be {ACTION_COLUMNS}")
        self._remember_schema(matrix.shape[1], names, spec)
        n_columns = matrix.shape[1]
        holdout = latest_slice(
            None if ts_ns is None else np.asarray(ts_ns, dtype=np.int64),
            matrix.shape[0], self.calibration_fraction,
        )
        self.model_: CalibratedBooster = fit_calibrated_booster(
            _encode_actions(matrix.copy()),
            labels,
            holdout=holdout,
            params=self._booster_params(),
            n_estimators=self.n_estimators,
            early_stopping_rounds=self.early_stopping_rounds,
            calibration=self.calibration,
            categorical=(n_columns - 3, n_columns - 2),
            feature_names=self.feature_names_,
        )
        self.feature_importances_ = self.model_.feature_importance(n_columns)
        self.base_rate_ = float(labels.mean())
        logger.info("conversion model: %d rows, base rate %.4f, %d trees",
                    matrix.shape[0], self.base_rate_, self.model_.best_iteration)
        return self

    # ----------------------------------------------------------------- scoring (numpy only)
    def predict_conversion(
        self,
        features: np.ndarray,
        message: np.ndarray,
        channel: np.ndarray,
        local_hour: np.ndarray,
    ) -> np.ndarray:
        """P(conversion | features, action) per row; a single feature row is broadcast over
        the actions (one customer, many candidates)."""
        self._check_fitted()
        n_customer = self.n_features_in_ - 3
        feats = as_matrix(features, n_customer)
        message = np.asarray(message, dtype=np.float64).reshape(-1)
        n_rows = message.shape[0]
        if feats.shape[0] not in (1, n_rows):
            raise ValueError(
                f"features has {feats.shape[0]} rows but there are {n_rows} actions"
            )
        matrix = np.empty((n_rows, self.n_features_in_), dtype=np.float64)
        matrix[:, :n_customer] = feats
        matrix[:, -3] = message + 1.0
        matrix[:, -2] = np.asarray(channel, dtype=np.float64).reshape(-1) + 1.0
        matrix[:, -1] = np.asarray(local_hour, dtype=np.float64).reshape(-1)
        return self.model_.predict(matrix)

    def predict_uplift(
        self,
        features: np.ndarray,
        message: np.ndarray,
        channel: np.ndarray,
        local_hour: np.ndarray,
    ) -> np.ndarray:
        """P(conversion | action) − P(conversion | no_action), per row."""
        with_action = self.predict_conversion(features, message, channel, local_hour)
        none = np.full(np.asarray(message).reshape(-1).shape[0], NO_ACTION_CODE)
        without = self.predict_conversion(features, none, none, none)
        return with_action - without

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Rows of ``X`` as in ``fit`` (action columns last): [[P(no conv), P(conv)], ...]."""
        self._check_fitted()
        matrix = _encode_actions(as_matrix(X, self.n_features_in_, "X").copy())
        positive = self.model_.predict(matrix)
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)
