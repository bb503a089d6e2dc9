"""Small real scorers for serving tests: one fitted logistic regression behind all four scorer
protocols (``models.interfaces``), picklable with joblib like the trained models."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from features.contract import CHANNELS

HOURS = 168


class TinyScorer:
    """``scale`` > 1 makes it a model with a real bug: probabilities above 1."""

    def __init__(self, n_features: int = 3, scale: float = 1.0, random_state: int = 0) -> None:
        self.n_features = n_features
        self.scale = scale
        self.random_state = random_state

    def fit(self) -> TinyScorer:
        rng = np.random.default_rng(self.random_state)
        X = rng.normal(size=(64, self.n_features))
        y = (X[:, 0] + rng.normal(scale=0.5, size=64) > 0).astype(int)
        self.model_ = LogisticRegression(random_state=self.random_state).fit(X, y)
        self.n_features_in_ = self.n_features
        return self

    def _p(self, features: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(np.asarray(features, dtype=float))[:, 1] * self.scale

    def predict_conversion(self, features, message, channel, local_hour) -> np.ndarray:
        return self._p(features)

    def predict_churn(self, features) -> np.ndarray:
        return self._p(features)

    def predict_channels(self, features) -> np.ndarray:
        return np.tile(self._p(features)[:, None], (1, len(CHANNELS)))

    def predict_hours(self, features, hour_profile) -> np.ndarray:
        return np.tile(self._p(features)[:, None], (1, HOURS))


def tiny_scorer(seed: int = 0, scale: float = 1.0) -> TinyScorer:
    return TinyScorer(scale=scale, random_state=seed).fit()
