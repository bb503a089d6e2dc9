"""The action-context conversion model: the customer described relative to the action."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from features.contract import CHANNELS
from features.definitions import DAY_PARTS, FeatureSpec
from models.action_context import CONTEXT_COLUMNS, ActionContextConversionModel
from models.conversion import ACTION_COLUMNS, ConversionModel
from models.pyfunc import score_matrix

MESSAGES = ("a", "b")
NAMES = [
    *(f"{kind}_{c.value}" for kind in ("open_rate", "click_rate", "opens_90d", "deliveries_90d",
                                       "days_since_engagement", "sends_7d",
                                       "engagement_share") for c in CHANNELS),
    *(f"share_{p}" for p in DAY_PARTS),
    *(f"hours_since_send_msg_{m}" for m in MESSAGES),
    "noise",
]
OPEN_RATE = [NAMES.index(f"open_rate_{c.value}") for c in CHANNELS]
UNKNOWN = [NAMES.index(f"engagement_share_{c.value}") for c in CHANNELS]


def _customers(n: int, rng: np.random.Generator) -> np.ndarray:
    X = rng.uniform(0.0, 1.0, (n, len(NAMES)))
    X[:, OPEN_RATE] = rng.beta(0.6, 0.6, (n, len(CHANNELS)))
    X[:, UNKNOWN] = np.nan  # customers without site engagement: the share is unknown
    return X


@lru_cache(maxsize=1)
def _data() -> tuple[np.ndarray, np.ndarray]:
    """Sends convert with a probability that grows with the open rate *of the channel used*;
    no_action converts at the base rate."""
    rng = np.random.default_rng(3)
    n = 40_000
    X = _customers(n, rng)
    send = rng.random(n) < 0.8
    channel = np.where(send, rng.integers(0, len(CHANNELS), n), -1)
    message = np.where(send, rng.integers(0, len(MESSAGES), n), -1)
    hour = np.where(send, rng.integers(8, 21, n), -1)
    affinity = X[np.arange(n), np.array(OPEN_RATE)[np.maximum(channel, 0)]]
    p = 0.05 + np.where(send, 0.25 * affinity - 0.05, 0.0)
    y = (rng.random(n) < p).astype(float)
    return np.column_stack([X, message, channel, hour]), y


def _fit(cls: type[ConversionModel]) -> ConversionModel:
    X, y = _data()
    model = cls(n_estimators=80, num_leaves=15, learning_rate=0.1, min_child_samples=50,
                n_jobs=1, random_state=0)
    return model.fit(X, y, ts_ns=np.arange(len(y)), feature_names=[*NAMES, *ACTION_COLUMNS])


@lru_cache(maxsize=1)
def _models() -> tuple[ConversionModel, ConversionModel]:
    return _fit(ActionContextConversionModel), _fit(ConversionModel)


def _best_channel_hit_rate(model: ConversionModel) -> float:
    rng = np.random.default_rng(11)
    customers = _customers(400, rng)
    hits = 0
    for row in customers:
        codes = np.arange(len(CHANNELS))
        p = model.predict_conversion(row[None, :], np.zeros(len(CHANNELS)), codes,
                                     np.full(len(CHANNELS), 10))
        hits += int(np.argmax(p) == np.argmax(row[OPEN_RATE]))
    return hits / len(customers)


def test_context_columns_copy_the_actions_own_channel_hour_and_message_features() -> None:
    model, _ = _models()
    row = _customers(1, np.random.default_rng(0))
    context = model._context(row, np.array([1.0, -1.0]), np.array([2.0, -1.0]),
                             np.array([19.0, -1.0]))
    assert context.shape == (2, len(CONTEXT_COLUMNS))
    assert context[0, 0] == row[0, NAMES.index("open_rate_push")]
    assert context[0, CONTEXT_COLUMNS.index("ctx_hour_share")] == row[0, NAMES.index(
        "share_evening")]
    assert context[0, -1] == row[0, NAMES.index("hours_since_send_msg_b")]
    assert np.isnan(context[1]).all()  # no_action has no channel, hour or message


def test_it_finds_each_customers_best_channel_where_the_plain_model_struggles() -> None:
    with_context, plain = _models()
    assert _best_channel_hit_rate(with_context) > 0.6
    assert _best_channel_hit_rate(with_context) > _best_channel_hit_rate(plain) + 0.05


def test_it_keeps_the_conversion_models_inputs_and_scoring_faces() -> None:
    model, _ = _models()
    X, _ = _data()
    assert model.feature_names_ == [*NAMES, *ACTION_COLUMNS]
    assert len(model.feature_importances_) == len(model.feature_names_)
    assert set(model.context_importances_) == set(CONTEXT_COLUMNS)
    p = model.predict_proba(X[:50])[:, 1]
    assert np.allclose(p, score_matrix("conversion", model, X[:50]))
    assert np.allclose(p, model.predict_conversion(X[:50, :-3], X[:50, -3], X[:50, -2],
                                                   X[:50, -1]))
    uplift = model.predict_uplift(X[:5, :-3], X[:5, -3], X[:5, -2], X[:5, -1])
    assert uplift.shape == (5,)


def test_features_it_needs_must_be_named() -> None:
    X, y = _data()
    names = [*NAMES, *ACTION_COLUMNS]
    names[OPEN_RATE[0]] = "something_else"
    with pytest.raises(ValueError, match="open_rate_email"):
        ActionContextConversionModel(n_estimators=2).fit(X, y, feature_names=names)
    with pytest.raises(ValueError, match="feature_names"):
        ActionContextConversionModel(n_estimators=2).fit(X, y)


def test_category_and_hour_context_follow_the_actions_message_and_hour() -> None:
    """The category columns read the share of the *message's* category (NaN for a message
    without one), the hour columns the visit profile at the *action's* hour."""
    names = [*NAMES, "visit_hour_cos_1", "visit_hour_sin_1", "visit_hour_cos_2",
             "visit_hour_sin_2", "visit_peak_hour", "view_share_home", "purchase_share_home"]
    rng = np.random.default_rng(5)
    X = _customers(500, rng)
    # every customer visits at 20:00: cos/sin of the hour angle, peak at 20
    angle = 2 * np.pi * 20 / 24
    hours = np.tile([np.cos(angle), np.sin(angle), np.cos(2 * angle), np.sin(2 * angle), 20.0],
                    (500, 1))
    shares = rng.uniform(0.0, 1.0, (500, 2))
    features = np.hstack([X, hours, shares])
    actions = np.column_stack([rng.integers(-1, 2, 500), rng.integers(0, 5, 500),
                               rng.integers(8, 21, 500)]).astype(float)
    y = (rng.random(500) < 0.1).astype(float)
    spec = FeatureSpec(message_ids=MESSAGES, message_categories=("home", ""))
    model = ActionContextConversionModel(n_estimators=2, n_jobs=1).fit(
        np.hstack([features, actions]), y, feature_names=[*names, *ACTION_COLUMNS], spec=spec)
    row = features[:1]
    context = model._context(row, np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 0.0]),
                             np.array([20.0, 20.0, 9.0]))
    view = CONTEXT_COLUMNS.index("ctx_category_view_share")
    density = CONTEXT_COLUMNS.index("ctx_hour_density")
    distance = CONTEXT_COLUMNS.index("ctx_hour_distance")
    assert context[0, view] == row[0, names.index("view_share_home")]
    assert np.isnan(context[1, view])  # message "b" has no category
    assert context[0, density] > 4.0 > context[2, density]  # 20:00 is the peak, 09:00 is not
    assert (context[0, distance], context[2, distance]) == (0.0, 11.0)
