"""Send time: for each of the 168 hours of the week (Monday 00:00 local = 0), the probability the
customer engages in that hour, in the customer's own timezone.

One LightGBM booster scores (customer, hour) pairs. Each pair is described by the customer's
features (all, or the ``customer_features`` named) plus where that hour sits in the customer's
hour-of-week activity profile (count and share at the hour, its neighbourhood, the same hour on
other days, the same day), the hour and weekday themselves and the population's engagement rate
at that hour. Training keeps every hour the customer engaged in and a seeded sample of
``negative_hours`` other hours per row, re-weighted so probabilities stay unbiased.

Customers with fewer than ``min_history_events`` profiled events get the population profile (the
mean engagement rate of each hour over the training rows): a new customer is not a guess.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

import numpy as np

from models._boosting import CalibratedBooster, fit_calibrated_booster, latest_slice
from models._estimator import BoostedEstimator, as_matrix, check_labels
from models.calibration import EPS, CalibrationMethod

logger = logging.getLogger(__name__)

HOURS_PER_WEEK: Final = 168
#: Columns describing one hour of the week for one customer, appended to the customer features.
HOUR_COLUMNS: Final = (
    "hour_of_day",
    "day_of_week",
    "population_rate",
    "profile_count",
    "profile_share",
    "profile_share_3h",
    "profile_share_5h",
    "profile_share_same_hour_all_days",
    "profile_share_same_hour_all_days_3h",
    "profile_share_same_hour_all_days_5h",
    "profile_share_same_day",
    "profile_total",
)


def hour_columns(
    profile: np.ndarray, population_rate: np.ndarray, rows: np.ndarray, hours: np.ndarray
) -> np.ndarray:
    """:data:`HOUR_COLUMNS` of each (row, hour) pair, computed only for the pairs asked for."""
    n_rows = profile.shape[0]
    total = profile.sum(axis=1)
    safe_total = np.where(total > 0, total, 1.0)[rows]
    by_day = profile.reshape(n_rows, 7, 24)
    same_hour, same_day = by_day.sum(axis=1), by_day.sum(axis=2)
    hour_of_day = hours % 24
    at_hour = profile[rows, hours]

    def neighbours(offset: int) -> np.ndarray:
        return profile[rows, (hours + offset) % HOURS_PER_WEEK]

    def daily_neighbours(offset: int) -> np.ndarray:
        return same_hour[rows, (hour_of_day + offset) % 24]

    window_3h = at_hour + neighbours(-1) + neighbours(1)
    window_5h = window_3h + neighbours(-2) + neighbours(2)
    out = np.empty((rows.size, len(HOUR_COLUMNS)), dtype=np.float64)
    out[:, 0] = hour_of_day
    out[:, 1] = hours // 24
    out[:, 2] = population_rate[hours]
    out[:, 3] = at_hour
    out[:, 4] = at_hour / safe_total
    out[:, 5] = window_3h / safe_total
    out[:, 6] = window_5h / safe_total
    daily_1h = daily_neighbours(0)
    daily_3h = daily_1h + daily_neighbours(-1) + daily_neighbours(1)
    out[:, 7] = daily_1h / safe_total
    out[:, 8] = daily_3h / safe_total
    out[:, 9] = (daily_3h + daily_neighbours(-2) + daily_neighbours(2)) / safe_total
    out[:, 10] = same_day[rows, hours // 24] / safe_total
    out[:, 11] = total[rows]
    return out


class SendTimeModel(BoostedEstimator):
    """168 hour-of-week engagement probabilities per customer, with a population fallback."""

    def __init__(
        self,
        n_estimators: int = 120,
        num_leaves: int = 31,
        learning_rate: float = 0.08,
        min_child_samples: int = 100,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        early_stopping_rounds: int | None = 20,
        calibration: CalibrationMethod = "sigmoid",
        calibration_fraction: float = 0.2,
        n_jobs: int = 2,
        random_state: int = 0,
        negative_hours: int = 24,
        min_history_events: int = 3,
        customer_features: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            n_estimators=n_estimators, num_leaves=num_leaves, learning_rate=learning_rate,
            min_child_samples=min_child_samples, subsample=subsample,
            colsample_bytree=colsample_bytree, reg_lambda=reg_lambda,
            early_stopping_rounds=early_stopping_rounds, calibration=calibration,
            calibration_fraction=calibration_fraction, n_jobs=n_jobs, random_state=random_state,
        )
        self.negative_hours = negative_hours
        self.min_history_events = min_history_events
        self.customer_features = customer_features

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        hour_profile: np.ndarray,
        ts_ns: np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        spec: object = None,
    ) -> SendTimeModel:
        """``y`` is (rows, 168): 1 for each hour of the week the customer engaged in during the
        horizon; ``hour_profile`` is (rows, 168) activity counts before the as-of time."""
        matrix = as_matrix(X, None, "X")
        labels = check_labels(y, matrix.shape[0], (HOURS_PER_WEEK,))
        profile = self._check_profile(hour_profile, matrix.shape[0])
        self._remember_schema(matrix.shape[1], feature_names, spec)
        self.customer_index_ = self._customer_index()
        # Never exactly 0 or 1: an hour nobody engaged in during training is unlikely, not
        # impossible.
        self.population_rate_ = np.clip(
            labels.mean(axis=0) if labels.size else np.full(HOURS_PER_WEEK, 1.0 / HOURS_PER_WEEK),
            EPS, 1.0 - EPS,
        )
        enough = self.has_enough_history(profile)
        if not enough.any():
            raise ValueError(
                f"no training row has {self.min_history_events} or more profiled engagement "
                "events: provide longer histories or lower min_history_events"
            )
        matrix, labels, profile = matrix[enough], labels[enough], profile[enough]
        times = None if ts_ns is None else np.asarray(ts_ns, dtype=np.int64)[enough]
        row_holdout = latest_slice(times, matrix.shape[0], self.calibration_fraction)
        rows, hours, weight = self._sample_pairs(labels)
        self.pair_feature_names_ = [
            *(self.feature_names_[i] for i in self.customer_index_), *HOUR_COLUMNS
        ]
        long_matrix = self._pair_matrix(matrix, profile, rows, hours)
        self.model_: CalibratedBooster = fit_calibrated_booster(
            long_matrix,
            labels[rows, hours],
            holdout=row_holdout[rows],
            params=self._booster_params(),
            n_estimators=self.n_estimators,
            early_stopping_rounds=self.early_stopping_rounds,
            calibration=self.calibration,
            sample_weight=weight,
            feature_names=self.pair_feature_names_,
        )
        self.pair_feature_importances_ = self.model_.feature_importance(long_matrix.shape[1])
        # Aligned with feature_names_ (the scikit-learn convention; unread features get 0); the
        # hour columns' share is in pair_feature_importances_.
        self.feature_importances_ = np.zeros(self.n_features_in_)
        self.feature_importances_[self.customer_index_] = self.pair_feature_importances_[
            : self.customer_index_.size
        ]
        logger.info("send-time model: %d customer rows with history (of %d), %d hour pairs",
                    int(enough.sum()), enough.size, rows.size)
        return self

    def _customer_index(self) -> np.ndarray:
        """Columns of the customer features the hour model reads (all unless narrowed)."""
        if self.customer_features is None:
            return np.arange(self.n_features_in_)
        unknown = [f for f in self.customer_features if f not in self.feature_names_]
        if unknown:
            raise ValueError(f"customer_features not among the feature names: {unknown}")
        return np.array([self.feature_names_.index(f) for f in self.customer_features],
                        dtype=np.int64)

    def _check_profile(self, hour_profile: np.ndarray, n_rows: int) -> np.ndarray:
        profile = np.ascontiguousarray(hour_profile, dtype=np.float64)
        if profile.ndim == 1:
            profile = profile.reshape(1, -1)
        if profile.shape != (n_rows, HOURS_PER_WEEK):
            raise ValueError(
                f"hour_profile must have shape ({n_rows}, {HOURS_PER_WEEK}), got {profile.shape}"
            )
        return profile

    def _sample_pairs(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every positive (row, hour) pair plus ``negative_hours`` seeded negatives per row."""
        rng = np.random.default_rng(self.random_state)
        n_rows = labels.shape[0]
        keys = rng.random((n_rows, HOURS_PER_WEEK))
        keys[labels > 0] = np.inf
        take = min(self.negative_hours, HOURS_PER_WEEK)
        picked = np.argpartition(keys, take - 1, axis=1)[:, :take]
        picked_rows = np.repeat(np.arange(n_rows), take)
        picked_hours = picked.reshape(-1)
        is_negative = np.isfinite(keys[picked_rows, picked_hours])
        negatives_per_row = (labels == 0).sum(axis=1)
        sampled_per_row = np.minimum(negatives_per_row, take)
        negative_weight = negatives_per_row / np.maximum(sampled_per_row, 1)
        pos_rows, pos_hours = np.nonzero(labels > 0)
        rows = np.concatenate([pos_rows, picked_rows[is_negative]])
        hours = np.concatenate([pos_hours, picked_hours[is_negative]])
        weight = np.concatenate(
            [np.ones(pos_rows.size), negative_weight[picked_rows[is_negative]]]
        )
        order = np.lexsort((hours, rows))
        return rows[order], hours[order], weight[order]

    def _pair_matrix(
        self, features: np.ndarray, profile: np.ndarray, rows: np.ndarray, hours: np.ndarray
    ) -> np.ndarray:
        n_customer = self.customer_index_.size
        out = np.empty((rows.size, n_customer + len(HOUR_COLUMNS)), dtype=np.float64)
        out[:, :n_customer] = features[:, self.customer_index_][rows]
        out[:, n_customer:] = hour_columns(profile, self.population_rate_, rows, hours)
        return out

    def has_enough_history(self, hour_profile: np.ndarray) -> np.ndarray:
        """True for rows whose profile holds at least ``min_history_events`` events."""
        return np.asarray(hour_profile.sum(axis=1) >= self.min_history_events)

    def predict_hours(self, features: np.ndarray, hour_profile: np.ndarray) -> np.ndarray:
        """(rows, 168) engagement probabilities; thin histories get the population profile."""
        self._check_fitted()
        matrix = as_matrix(features, self.n_features_in_)
        profile = self._check_profile(hour_profile, matrix.shape[0])
        scores = np.tile(self.population_rate_, (matrix.shape[0], 1))
        enough = self.has_enough_history(profile)
        if enough.any():
            known = np.flatnonzero(enough)
            rows = np.repeat(np.arange(known.size), HOURS_PER_WEEK)
            hours = np.tile(np.arange(HOURS_PER_WEEK), known.size)
            pairs = self._pair_matrix(matrix[known], profile[known], rows, hours)
            scores[known] = self.model_.predict(pairs).reshape(known.size, HOURS_PER_WEEK)
        return scores

    def predict_hours_at(
        self, features: np.ndarray, hour_profile: np.ndarray, wanted: np.ndarray
    ) -> np.ndarray:
        """(rows, 168) like :meth:`predict_hours`, scored only where ``wanted`` ((rows, 168)
        bool) is True and NaN elsewhere; the scored entries equal :meth:`predict_hours`'s, bit
        for bit (the booster scores each (customer, hour) pair on its own).

        A decision can send only in the hours of its slot grid (a few dozen of the 168), and
        the booster's cost is per pair: this skips the hours nobody can use."""
        self._check_fitted()
        matrix = as_matrix(features, self.n_features_in_)
        profile = self._check_profile(hour_profile, matrix.shape[0])
        mask = np.asarray(wanted, dtype=bool)
        if mask.shape != profile.shape:
            raise ValueError(
                f"wanted must have shape {profile.shape} like hour_profile, got {mask.shape}"
            )
        scores = np.full(profile.shape, np.nan)
        enough = self.has_enough_history(profile)
        thin = mask & ~enough[:, None]
        scores[thin] = np.broadcast_to(self.population_rate_, profile.shape)[thin]
        rows, hours = np.nonzero(mask & enough[:, None])
        if rows.size:
            known, local_rows = np.unique(rows, return_inverse=True)
            pairs = self._pair_matrix(matrix[known], profile[known], local_rows, hours)
            scores[rows, hours] = self.model_.predict(pairs)
        return scores

    def predict_proba(self, X: np.ndarray, hour_profile: np.ndarray) -> np.ndarray:
        return self.predict_hours(X, hour_profile)

    def predict(self, X: np.ndarray, hour_profile: np.ndarray) -> np.ndarray:
        """Best hour of the week per row."""
        return np.argmax(self.predict_hours(X, hour_profile), axis=1)
