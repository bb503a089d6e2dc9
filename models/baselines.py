"""Simple baselines every nextbest model must clearly beat; same scorer methods as the models.

- conversion: the historical conversion rate of each (message, channel) action, ``no_action``
  included, shrunk toward the overall rate when an action was rarely taken;
- churn: a recency heuristic — the churn rate observed at each number of days since the last
  activity (a monotone, isotonic map: longer inactive, more likely churned);
- channel: the customer's historical open rate per channel (``open_rate_<channel>`` features),
  with the same "not enough data" rule as the model;
- send time: the customer's most active hours of the week (their hour-of-week profile), the
  population's profile for customers without history.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression

from features.contract import CHANNELS
from models._estimator import as_matrix, check_labels
from models.calibration import EPS

logger = logging.getLogger(__name__)

#: Feature names the baselines read (``features.definitions``).
RECENCY_FEATURE: Final = "days_since_activity"
HOURS_PER_WEEK: Final = 168


def open_rate_feature(channel: str) -> str:
    return f"open_rate_{channel}"


def _names(feature_names: Sequence[str] | None, n_columns: int) -> list[str]:
    if feature_names is None:
        return [f"f{i}" for i in range(n_columns)]
    names = list(feature_names)
    if len(names) != n_columns:
        raise ValueError(f"feature_names has {len(names)} names but X has {n_columns} columns")
    return names


class ConversionRateBaseline(BaseEstimator):  # type: ignore[misc]
    """Historical conversion rate per (message, channel) action, ``no_action`` included.

    ``X`` ends with the three action columns, as for ``models.conversion.ConversionModel``.
    """

    def __init__(self, prior_weight: float = 20.0) -> None:
        self.prior_weight = prior_weight

    def fit(
        self, X: np.ndarray, y: np.ndarray, *, feature_names: Sequence[str] | None = None,
        **_: object,
    ) -> ConversionRateBaseline:
        matrix = as_matrix(X, None, "X")
        labels = check_labels(y, matrix.shape[0])
        self.feature_names_ = _names(feature_names, matrix.shape[1])
        self.n_features_in_ = matrix.shape[1]
        self.global_rate_ = float(np.clip(labels.mean(), EPS, 1 - EPS)) if labels.size else EPS
        self.n_messages_ = int(max(matrix[:, -3].max(initial=-1), -1)) + 1
        keys = self._keys(matrix[:, -3], matrix[:, -2])
        size = (self.n_messages_ + 1) * (len(CHANNELS) + 1)
        counts = np.bincount(keys, minlength=size).astype(np.float64)
        conversions = np.bincount(keys, weights=labels, minlength=size)
        self.rates_ = (conversions + self.prior_weight * self.global_rate_) / (
            counts + self.prior_weight
        )
        return self

    def _keys(self, message: np.ndarray, channel: np.ndarray) -> np.ndarray:
        m = np.asarray(message, dtype=np.int64) + 1
        c = np.asarray(channel, dtype=np.int64) + 1
        return m * (len(CHANNELS) + 1) + c

    def predict_conversion(
        self, features: np.ndarray, message: np.ndarray, channel: np.ndarray,
        local_hour: np.ndarray,
    ) -> np.ndarray:
        message = np.asarray(message).reshape(-1)
        channel = np.asarray(channel).reshape(-1)
        known = (message >= -1) & (message < self.n_messages_) & (channel >= -1) & (
            channel < len(CHANNELS)
        )
        rates = np.full(message.shape[0], self.global_rate_)
        rates[known] = self.rates_[self._keys(message[known], channel[known])]
        return rates

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        matrix = as_matrix(X, self.n_features_in_, "X")
        positive = self.predict_conversion(matrix[:, :-3], matrix[:, -3], matrix[:, -2],
                                           matrix[:, -1])
        return np.column_stack([1.0 - positive, positive])


class RecencyChurnBaseline(BaseEstimator):  # type: ignore[misc]
    """Churn rate as a monotone function of days since the last activity."""

    def __init__(self, recency_feature: str = RECENCY_FEATURE) -> None:
        self.recency_feature = recency_feature

    def fit(
        self, X: np.ndarray, y: np.ndarray, *, feature_names: Sequence[str] | None = None,
        **_: object,
    ) -> RecencyChurnBaseline:
        matrix = as_matrix(X, None, "X")
        labels = check_labels(y, matrix.shape[0])
        self.feature_names_ = _names(feature_names, matrix.shape[1])
        self.n_features_in_ = matrix.shape[1]
        if self.recency_feature not in self.feature_names_:
            raise ValueError(f"the churn baseline needs the feature {self.recency_feature!r}")
        self.recency_index_ = self.feature_names_.index(self.recency_feature)
        recency = matrix[:, self.recency_index_]
        never = np.isnan(recency)
        # Never active: as inactive as it gets; its own observed rate.
        self.never_active_rate_ = float(labels[never].mean()) if never.any() else 1.0 - EPS
        self.isotonic_ = IsotonicRegression(
            y_min=EPS, y_max=1.0 - EPS, increasing=True, out_of_bounds="clip"
        ).fit(recency[~never], labels[~never])
        return self

    def predict_churn(self, features: np.ndarray) -> np.ndarray:
        matrix = as_matrix(features, self.n_features_in_)
        recency = matrix[:, self.recency_index_]
        never = np.isnan(recency)
        out = np.full(matrix.shape[0], self.never_active_rate_)
        if (~never).any():
            out[~never] = self.isotonic_.predict(recency[~never])
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        positive = self.predict_churn(X)
        return np.column_stack([1.0 - positive, positive])


class OpenRateChannelBaseline(BaseEstimator):  # type: ignore[misc]
    """The customer's historical open rate on each channel; NaN rows when history is thin."""

    def __init__(self, history_feature: str | None = None, min_history_events: int = 3) -> None:
        self.history_feature = history_feature
        self.min_history_events = min_history_events

    def fit(
        self, X: np.ndarray, y: np.ndarray, *, feature_names: Sequence[str] | None = None,
        **_: object,
    ) -> OpenRateChannelBaseline:
        matrix = as_matrix(X, None, "X")
        labels = check_labels(y, matrix.shape[0], (len(CHANNELS),))
        self.feature_names_ = _names(feature_names, matrix.shape[1])
        self.n_features_in_ = matrix.shape[1]
        self.channel_rates_ = labels.mean(axis=0) if labels.size else np.zeros(len(CHANNELS))
        # Channels without an open-rate feature fall back to their population engagement rate.
        self.rate_index_ = np.array(
            [self.feature_names_.index(open_rate_feature(c.value))
             if open_rate_feature(c.value) in self.feature_names_ else -1 for c in CHANNELS],
            dtype=np.int64,
        )
        self.history_index_ = (
            self.feature_names_.index(self.history_feature)
            if self.history_feature in self.feature_names_ else None
        )
        return self

    def predict_channels(self, features: np.ndarray) -> np.ndarray:
        matrix = as_matrix(features, self.n_features_in_)
        scores = np.tile(self.channel_rates_, (matrix.shape[0], 1))
        with_feature = self.rate_index_ >= 0
        scores[:, with_feature] = np.nan_to_num(
            matrix[:, self.rate_index_[with_feature]], nan=0.0
        )
        if self.history_index_ is not None:
            history = np.nan_to_num(matrix[:, self.history_index_], nan=0.0)
            scores[history < self.min_history_events] = np.nan
        return np.clip(scores, EPS, 1.0 - EPS)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.predict_channels(X)


class MostActiveHourBaseline(BaseEstimator):  # type: ignore[misc]
    """The customer's own hour-of-week activity shares; the population's for a new customer.

    Scores are the customer's share of past activity at each hour times the mean number of hours
    a customer engages in per horizon (so they read as per-hour probabilities); the population
    rate breaks ties, so the top hour is the customer's most active one.
    """

    def __init__(self, min_history_events: int = 1) -> None:
        self.min_history_events = min_history_events

    def fit(
        self, X: np.ndarray, y: np.ndarray, *, hour_profile: np.ndarray,
        feature_names: Sequence[str] | None = None, **_: object,
    ) -> MostActiveHourBaseline:
        matrix = as_matrix(X, None, "X")
        labels = check_labels(y, matrix.shape[0], (HOURS_PER_WEEK,))
        self.feature_names_ = _names(feature_names, matrix.shape[1])
        self.n_features_in_ = matrix.shape[1]
        self.population_rate_ = (
            labels.mean(axis=0) if labels.size else np.full(HOURS_PER_WEEK, 1 / HOURS_PER_WEEK)
        )
        self.engaged_hours_ = float(labels.sum(axis=1).mean()) if labels.size else 1.0
        return self

    def predict_hours(self, features: np.ndarray, hour_profile: np.ndarray) -> np.ndarray:
        profile = np.asarray(hour_profile, dtype=np.float64).reshape(-1, HOURS_PER_WEEK)
        total = profile.sum(axis=1, keepdims=True)
        share = profile / np.where(total > 0, total, 1.0)
        # Within [EPS, 1 - EPS]; equal shares are ordered by the population's rate.
        tie_break = EPS * self.population_rate_ / max(float(self.population_rate_.max()), EPS)
        scores = np.clip(share * self.engaged_hours_, EPS, 1.0 - 2 * EPS) + tie_break
        thin = total[:, 0] < self.min_history_events
        scores[thin] = np.clip(self.population_rate_, EPS, 1.0 - EPS)
        return scores

    def predict_proba(self, X: np.ndarray, hour_profile: np.ndarray) -> np.ndarray:
        return self.predict_hours(X, hour_profile)
