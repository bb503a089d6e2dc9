"""Metrics: stable names, calibration error that notices miscalibration, hit rates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import (
    binary_metrics,
    evaluate,
    expected_calibration_error,
    hit_rates,
    primary_metric,
)
from training.tasks import Task

BINARY = {"roc_auc", "pr_auc", "log_loss", "brier", "ece"}


def test_calibration_error_is_small_when_calibrated_and_large_when_not() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.0, 0.3, 200_000)
    y = (rng.random(p.size) < p).astype(float)
    assert expected_calibration_error(y, p) < 0.005
    assert expected_calibration_error(y, np.clip(p * 2, 0, 1)) > 0.1
    # rare events: equal-count bins still see a doubled probability
    rare = p / 10
    y_rare = (rng.random(p.size) < rare).astype(float)
    assert expected_calibration_error(y_rare, rare * 2) > 0.5 * rare.mean()


def test_binary_metrics_of_a_perfect_and_an_uninformed_score() -> None:
    y = np.array([0, 0, 1, 1, 0, 1], dtype=float)
    perfect = binary_metrics(y, y)
    assert perfect["roc_auc"] == 1.0 and perfect["pr_auc"] == 1.0
    assert perfect["log_loss"] < 1e-5 and perfect["brier"] < 1e-10
    flat = binary_metrics(y, np.full(6, 0.5))
    assert flat["roc_auc"] == 0.5 and flat["log_loss"] == pytest.approx(math.log(2))
    assert math.isnan(binary_metrics(np.zeros(3), np.full(3, 0.1))["roc_auc"])


def test_hit_rates_count_rows_whose_engagement_is_among_the_top_k() -> None:
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.3, 0.8], [0.6, 0.5, 0.4], [np.nan] * 3])
    engaged = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0], [1, 0, 0]], dtype=float)
    # row 3 has no engagement and row 4 no prediction: neither counts
    assert hit_rates(scores, engaged, (1, 3)) == {"hit_at_1": 0.5, "hit_at_3": 1.0}


def test_primary_metrics_are_among_the_evaluated_names() -> None:
    from models.churn import ChurnModel
    from tests.models.synthetic import churn_arrays
    from training.datasets import TaskDataset

    arrays = churn_arrays(n=600, seed=1)
    dataset = TaskDataset(Task.CHURN, arrays.X, arrays.y, arrays.ts_ns, arrays.feature_names,
                          np.arange(600).astype(str).astype(object))
    model = ChurnModel(n_estimators=10).fit(arrays.X, arrays.y, feature_names=arrays.feature_names)
    metrics = evaluate(Task.CHURN, model, dataset)
    assert BINARY <= set(metrics) and metrics["n_rows"] == 600
    for task in Task:
        name, _ = primary_metric(task)
        assert name in BINARY | {"hit_at_1", "hit_at_3"}
    assert primary_metric("conversion") == ("log_loss", False)
