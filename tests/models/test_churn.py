"""Churn model: beats the recency heuristic, rises with inactivity, calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from models.baselines import RECENCY_FEATURE, RecencyChurnBaseline
from models.churn import ChurnModel
from models.interfaces import ChurnScorer
from tests.models.synthetic import Arrays, churn_arrays
from training.metrics import binary_metrics


@pytest.fixture(scope="module")
def data() -> tuple[Arrays, Arrays]:
    return churn_arrays(n=6000, seed=4).split(0.25)


@pytest.fixture(scope="module")
def model(data: tuple[Arrays, Arrays]) -> ChurnModel:
    train, _ = data
    return ChurnModel(n_estimators=150, learning_rate=0.08, random_state=0).fit(
        train.X, train.y, ts_ns=train.ts_ns, feature_names=train.feature_names
    )


def test_clearly_beats_the_recency_heuristic_on_later_rows(data, model) -> None:
    train, valid = data
    baseline = RecencyChurnBaseline().fit(train.X, train.y, feature_names=train.feature_names)
    ours = binary_metrics(valid.y, model.predict_churn(valid.X))
    theirs = binary_metrics(valid.y, baseline.predict_churn(valid.X))
    assert ours["roc_auc"] > theirs["roc_auc"] + 0.04
    assert ours["log_loss"] < theirs["log_loss"] - 0.02


def test_long_inactive_customers_are_more_likely_churned(data, model) -> None:
    _, valid = data
    p = model.predict_churn(valid.X)
    recency = valid.X[:, 0]
    assert p[recency > 30].mean() > p[recency < 5].mean() + 0.3
    same_customer = np.repeat(valid.X[:1], 2, axis=0)
    same_customer[:, 0] = [2.0, 60.0]
    recent, gone = model.predict_churn(same_customer)
    assert gone > recent


def test_calibrated_on_held_out_rows(data, model) -> None:
    _, valid = data
    assert binary_metrics(valid.y, model.predict_churn(valid.X))["ece"] < 0.04


def test_recency_baseline_is_monotone_and_handles_never_active(data) -> None:
    train, _ = data
    baseline = RecencyChurnBaseline().fit(train.X, train.y, feature_names=train.feature_names)
    rows = np.zeros((4, train.X.shape[1]))
    rows[:, 0] = [1.0, 10.0, 40.0, np.nan]
    p = baseline.predict_churn(rows)
    assert p[0] <= p[1] <= p[2]
    assert 0.0 < p[3] < 1.0
    with pytest.raises(ValueError, match=RECENCY_FEATURE):
        RecencyChurnBaseline().fit(train.X, train.y, feature_names=["a", "b", "c", "d"])


def test_scorer_protocol_and_shapes(data, model) -> None:
    _, valid = data
    assert isinstance(model, ChurnScorer)
    p = model.predict_churn(valid.X[:5])
    assert p.shape == (5,) and ((p > 0) & (p < 1)).all()
    assert model.predict_proba(valid.X[:5]).shape == (5, 2)
    assert model.feature_importances_.shape == (valid.X.shape[1],)
