"""Seeded synthetic arrays with a known truth, for model-behaviour tests.

Each generator returns rows ordered by as-of time (``ts_ns``), so tests can split by time like
training does: fit on the earlier rows, judge on the later ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract import CHANNELS, Channel
from models.baselines import RECENCY_FEATURE, open_rate_feature
from models.conversion import ACTION_COLUMNS

DAY_NS = 86_400 * 10**9
HISTORY = "engagements_90d"
HOURS = 168


@dataclass
class Arrays:
    X: np.ndarray
    y: np.ndarray
    ts_ns: np.ndarray
    feature_names: list[str]
    hour_profile: np.ndarray | None = None
    truth: np.ndarray | None = None

    def split(self, valid_fraction: float = 0.25) -> tuple[Arrays, Arrays]:
        cut = int(len(self.y) * (1 - valid_fraction))

        def part(rows: slice) -> Arrays:
            return Arrays(
                self.X[rows], self.y[rows], self.ts_ns[rows], self.feature_names,
                None if self.hour_profile is None else self.hour_profile[rows],
                None if self.truth is None else self.truth[rows],
            )

        return part(slice(0, cut)), part(slice(cut, None))


def _times(rng: np.random.Generator, n: int, days: int = 60) -> np.ndarray:
    return np.sort(rng.integers(0, days * DAY_NS, n)).astype(np.int64) + 1_700_000_000 * 10**9


def conversion_arrays(n: int = 8000, seed: int = 0) -> Arrays:
    """Decisions with randomised actions; message 1 helps customers with f1 > 0 and hurts the
    others (heterogeneous uplift), message 2 helps on channel 1 only, evening sends help a bit.
    ``truth`` is the true conversion probability."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 6))
    message = rng.integers(-1, 4, n)
    channel = np.where(message < 0, -1, rng.integers(0, 3, n))
    hour = np.where(message < 0, -1, rng.integers(0, 24, n))
    sent = message >= 0
    effect = (
        (message == 1) * np.where(features[:, 1] > 0, 1.2, -0.8)
        + (message == 2) * (channel == 1) * 1.2
        + sent * ((hour >= 18) & (hour <= 21)) * 0.3
    )
    logit = -3.2 + 0.9 * features[:, 0] - 0.5 * features[:, 2] + effect
    truth = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < truth).astype(float)
    names = [f"f{i}" for i in range(6)] + list(ACTION_COLUMNS)
    X = np.column_stack([features, message, channel, hour]).astype(float)
    return Arrays(X, y, _times(rng, n), names, truth=truth)


def churn_arrays(n: int = 6000, seed: int = 0) -> Arrays:
    """Churn rises with days since the last activity, falls with recent purchases (which the
    recency baseline ignores)."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(15.0, n)
    purchases = rng.poisson(1.5, n).astype(float)
    support = rng.poisson(0.3, n).astype(float)
    noise = rng.normal(size=n)
    logit = -1.5 + 0.08 * recency - 0.9 * purchases + 0.6 * support
    truth = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < truth).astype(float)
    X = np.column_stack([recency, purchases, support, noise])
    names = [RECENCY_FEATURE, "purchases_30d", "support_contacts_30d", "noise"]
    return Arrays(X, y, _times(rng, n), names, truth=truth)


def channel_arrays(n: int = 6000, seed: int = 0) -> Arrays:
    """Latent channel affinities. Open rates are noisy views of them (few deliveries, and none
    on web and in-app, where customers browse instead); page and app views reveal those, which
    open rates cannot. A quarter of the customers have (almost) no history."""
    rng = np.random.default_rng(seed)
    n_channels = len(CHANNELS)
    affinity = rng.dirichlet(np.full(n_channels, 0.6), n)
    deliveries = rng.poisson(3.0, (n, n_channels)).astype(float)
    deliveries[:, [CHANNELS.index(Channel.WEB), CHANNELS.index(Channel.IN_APP)]] = 0.0
    opens = rng.binomial(deliveries.astype(int), np.clip(affinity * 1.5, 0, 1)).astype(float)
    open_rate = (opens + 0.2 * 4) / (deliveries + 4)
    views = rng.poisson(8 * affinity).astype(float)
    history = opens.sum(axis=1) + views.sum(axis=1)
    thin = rng.random(n) < 0.25
    history[thin] = rng.integers(0, 2, thin.sum())
    y = (rng.random((n, n_channels)) < 1 - np.exp(-4 * affinity)).astype(float)
    names = (
        [open_rate_feature(c.value) for c in CHANNELS]
        + [f"views_{c.value}" for c in CHANNELS]
        + [f"deliveries_{c.value}" for c in CHANNELS]
        + [HISTORY]
    )
    X = np.column_stack([open_rate, views, deliveries, history])
    return Arrays(X, y, _times(rng, n), names, truth=affinity)


def sendtime_arrays(n: int = 3000, seed: int = 0) -> Arrays:
    """Each customer is active around a habitual local hour on weekdays (jitter of about an
    hour), plus off-peak visits at any hour from 07:00 to 23:00 on any day; the profile holds a
    handful of past events, the label next week's hours. ``truth`` is the habitual hour of day.
    One customer in ten is new (empty profile)."""
    rng = np.random.default_rng(seed)
    habit = rng.choice([8, 12, 19, 21], n)
    level = rng.gamma(2.0, 3.0, n)

    def draw(counts: np.ndarray) -> np.ndarray:
        out = np.zeros((n, HOURS))
        rows = np.repeat(np.arange(n), counts)
        peak = rng.random(rows.size) < 0.6
        weekday = rng.choice(7, rows.size, p=[0.18, 0.18, 0.18, 0.18, 0.18, 0.05, 0.05])
        day = np.where(peak, weekday, rng.integers(0, 7, rows.size))
        hour = np.where(
            peak,
            np.clip(np.round(habit[rows] + rng.normal(0, 1.0, rows.size)), 0, 23),
            rng.integers(7, 24, rows.size),
        )
        np.add.at(out, (rows, (day * 24 + hour).astype(int)), 1.0)
        return out

    profile = draw(rng.poisson(level))
    profile[rng.random(n) < 0.1] = 0.0
    future = draw(rng.poisson(level * 0.5) + 1)
    y = (future > 0).astype(float)
    features = np.column_stack([profile.sum(axis=1), level + rng.normal(0, 1, n)])
    return Arrays(features, y, _times(rng, n), [HISTORY, "activity_level"], profile, habit)
