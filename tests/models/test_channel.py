"""Channel preference: beats historical open rates, says "not enough data" when it must."""

from __future__ import annotations

import numpy as np
import pytest

from features.contract import CHANNELS, Channel
from models.baselines import OpenRateChannelBaseline
from models.channel import ChannelModel
from models.interfaces import ChannelScorer
from tests.models.synthetic import HISTORY, Arrays, channel_arrays
from training.metrics import hit_rates


@pytest.fixture(scope="module")
def data() -> tuple[Arrays, Arrays]:
    return channel_arrays(n=5000, seed=5).split(0.25)


@pytest.fixture(scope="module")
def model(data: tuple[Arrays, Arrays]) -> ChannelModel:
    train, _ = data
    return ChannelModel(
        n_estimators=120, learning_rate=0.08, random_state=0, history_feature=HISTORY,
        min_history_events=3,
    ).fit(train.X, train.y, ts_ns=train.ts_ns, feature_names=train.feature_names)


def test_clearly_beats_historical_open_rates_on_later_rows(data, model) -> None:
    train, valid = data
    baseline = OpenRateChannelBaseline(history_feature=HISTORY, min_history_events=3).fit(
        train.X, train.y, feature_names=train.feature_names
    )
    ours, theirs = model.predict_channels(valid.X), baseline.predict_channels(valid.X)
    # same "not enough data" rows for both, so the hit rates compare the same customers
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    assert hit_rates(ours, valid.y)["hit_at_1"] > hit_rates(theirs, valid.y)["hit_at_1"] + 0.05


def test_customer_without_history_gets_not_enough_data(data, model) -> None:
    _, valid = data
    rows = np.repeat(valid.X[:1], 3, axis=0)
    history = valid.feature_names.index(HISTORY)
    rows[:, history] = [0.0, 2.0, 3.0]
    scores = model.predict_channels(rows)
    assert np.isnan(scores[0]).all() and np.isnan(scores[1]).all()
    assert np.isfinite(scores[2]).all()
    assert model.predict(rows).tolist()[:2] == [-1, -1]
    rows[:, history] = np.nan  # unknown history counts as none
    assert np.isnan(model.predict_channels(rows)).all()


def test_prefers_the_channel_a_customer_browses(data, model) -> None:
    _, valid = data
    names = valid.feature_names
    customer = np.zeros((1, len(names)))
    customer[0, [names.index(f"open_rate_{c.value}") for c in CHANNELS]] = 0.2
    customer[0, names.index(f"views_{Channel.WEB.value}")] = 12.0
    customer[0, names.index(HISTORY)] = 12.0
    scores = model.predict_channels(customer)[0]
    assert CHANNELS[int(np.argmax(scores))] is Channel.WEB
    assert ((scores > 0) & (scores < 1)).all()


def test_scorer_protocol_and_importances(data, model) -> None:
    _, valid = data
    assert isinstance(model, ChannelScorer)
    assert model.predict_channels(valid.X[:7]).shape == (7, len(CHANNELS))
    assert model.feature_importances_.shape == (valid.X.shape[1],)


def test_no_row_with_enough_history_is_a_clear_error(data) -> None:
    train, _ = data
    X = train.X.copy()
    X[:, train.feature_names.index(HISTORY)] = 0.0
    with pytest.raises(ValueError, match="enough history"):
        ChannelModel(history_feature=HISTORY).fit(X, train.y, feature_names=train.feature_names)
    with pytest.raises(ValueError, match="history_feature 'nope'"):
        ChannelModel(history_feature="nope").fit(train.X, train.y,
                                                 feature_names=train.feature_names)
