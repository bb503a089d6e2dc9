"""Small real scorers for serving tests: one fitted logistic regression behind all four scorer
protocols (``models.interfaces``), picklable with joblib like the trained models.

With a feature spec the scorer is as wide as the spec and carries it (``spec_``), like a trained
estimator, so the service's decision engine can build its features. Its conversion answer
depends on the action: sending lifts the conversion probability by ``lift`` plus a little per
channel code, so the engine sends (on the highest-coded channel it may use) rather than always
choosing ``no_action``.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from features.contract import CHANNELS
from features.definitions import FeatureSpec

HOURS = 168


class TinyScorer:
    """``scale`` > 1 makes it a model with a real bug: probabilities above 1."""

    def __init__(
        self,
        n_features: int = 3,
        scale: float = 1.0,
        random_state: int = 0,
        spec: FeatureSpec | None = None,
        lift: float = 0.1,
    ) -> None:
        self.n_features = n_features
        self.scale = scale
        self.random_state = random_state
        self.spec = spec
        self.lift = lift

    def fit(self) -> TinyScorer:
        width = self.n_features if self.spec is None else len(self.spec.names)
        rng = np.random.default_rng(self.random_state)
        X = rng.normal(size=(64, width))
        y = (X[:, 0] + rng.normal(scale=0.5, size=64) > 0).astype(int)
        self.model_ = LogisticRegression(random_state=self.random_state).fit(X, y)
        self.n_features_in_ = width
        self.spec_ = {} if self.spec is None else self.spec.to_dict()
        return self

    def _p(self, features) -> np.ndarray:
        # Feature rows hold NaN for "never" and large counts: squash them to a usable range.
        X = np.tanh(np.nan_to_num(np.asarray(features, dtype=float)) / 100.0)
        return self.model_.predict_proba(X)[:, 1] * self.scale

    def predict_conversion(self, features, message, channel, local_hour) -> np.ndarray:
        message = np.asarray(message).reshape(-1)
        base = 0.5 * np.broadcast_to(self._p(features), message.shape)
        sent = message >= 0
        uplift = self.lift + 0.02 * np.asarray(channel).reshape(-1) + 0.001 * message
        return base + np.where(sent, uplift, 0.0)

    def predict_churn(self, features) -> np.ndarray:
        return self._p(features)

    def predict_channels(self, features) -> np.ndarray:
        return np.tile(self._p(features)[:, None], (1, len(CHANNELS)))

    def predict_hours(self, features, hour_profile) -> np.ndarray:
        return np.tile(self._p(features)[:, None], (1, HOURS))


def tiny_scorer(seed: int = 0, scale: float = 1.0, spec: FeatureSpec | None = None) -> TinyScorer:
    return TinyScorer(scale=scale, random_state=seed, spec=spec).fit()
