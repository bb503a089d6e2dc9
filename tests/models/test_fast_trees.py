"""The flattened tree walk gives LightGBM's predictions: on numeric and categorical splits, NaN,
zeros (as missing or not), unseen and negative categories, one-leaf trees and any sigmoid."""

from __future__ import annotations

import pickle

import lightgbm as lgb
import numpy as np
import pytest

from models._boosting import CalibratedBooster, fit_calibrated_booster, latest_slice
from models.calibration import ProbabilityCalibrator
from models.fast_trees import FlatForest


def _data(seed: int, n: int = 3_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)) * np.array([1, 1, 1, 10, 0.01, 100])
    X[:, 0] = rng.integers(0, 40, n)  # categorical, many levels
    X[:, 1] = rng.integers(0, 5, n)  # categorical, few levels
    X[rng.random(X.shape) < 0.15] = np.nan
    X[rng.random(X.shape) < 0.10] = 0.0
    signal = np.nan_to_num(X[:, 2]) + (np.nan_to_num(X[:, 0]) % 3 == 0) - np.isnan(X[:, 3])
    y = (signal + rng.normal(size=n) > 0.4).astype(np.float64)
    return X, y


def _edge_rows(X: np.ndarray) -> np.ndarray:
    rows = X[:40].copy()
    rows[:5, 0] = -1.0  # negative category
    rows[5:10, 0] = 1_000.0  # category never seen in training
    rows[10:15, 0] = -0.5  # truncates to category 0, as LightGBM's int cast does
    rows[15:20, 3] = 1e-36  # below LightGBM's zero threshold: reads as zero
    rows[20:25, :] = np.nan
    rows[25:30, :] = 0.0
    return np.vstack([X, rows])


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"zero_as_missing": True},
        {"use_missing": False},
        {"max_cat_to_onehot": 64},
        {"sigmoid": 0.7, "num_leaves": 63},
        {"min_data_in_leaf": 5_000},  # one-leaf trees only
    ],
)
def test_flat_forest_reproduces_lightgbm(params: dict[str, object]) -> None:
    X, y = _data(seed=1)
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_leaves": 15, "seed": 1, **params},
        lgb.Dataset(X, y, categorical_feature=[0, 1]),
        num_boost_round=30,
    )
    forest = FlatForest.from_booster(booster)
    assert forest is not None
    rows = _edge_rows(_data(seed=2)[0])
    np.testing.assert_array_equal(forest.raw_score(rows), booster.predict(rows, raw_score=True))
    np.testing.assert_allclose(forest.predict(rows), booster.predict(rows), rtol=0, atol=1e-12)


def test_first_iterations_only() -> None:
    X, y = _data(seed=3)
    booster = lgb.train({"objective": "binary", "verbosity": -1}, lgb.Dataset(X, y), 20)
    forest = FlatForest.from_booster(booster, num_iteration=7)
    assert forest is not None
    np.testing.assert_allclose(
        forest.predict(X), booster.predict(X, num_iteration=7), rtol=0, atol=1e-12
    )


def test_models_it_cannot_reproduce_are_left_to_lightgbm() -> None:
    X, y = _data(seed=4)
    regression = lgb.train({"objective": "regression", "verbosity": -1}, lgb.Dataset(X, y), 3)
    assert FlatForest.from_booster(regression) is None


def test_wrong_width_is_refused() -> None:
    X, y = _data(seed=5)
    booster = lgb.train({"objective": "binary", "verbosity": -1}, lgb.Dataset(X, y), 3)
    forest = FlatForest.from_booster(booster)
    assert forest is not None
    with pytest.raises(ValueError, match="6 features"):
        forest.predict(X[:, :5])


def test_calibrated_booster_scores_as_lightgbm_and_pickles_without_caches() -> None:
    X, y = _data(seed=6)
    fitted = fit_calibrated_booster(
        X, y, holdout=latest_slice(None, len(y), 0.3),
        params={"objective": "binary", "verbosity": -1, "num_threads": 1, "seed": 6},
        n_estimators=25, early_stopping_rounds=5, calibration="sigmoid", categorical=[0, 1],
    )  # fmt: skip
    assert fitted.booster is not None
    rows = _edge_rows(X)
    np.testing.assert_allclose(fitted.raw(rows), fitted.booster.predict(rows), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fitted.raw(rows[:1]), fitted.booster.predict(rows[:1]), atol=1e-12)
    copy = pickle.loads(pickle.dumps(fitted))
    assert "_forest" not in copy.__dict__
    np.testing.assert_array_equal(copy.predict(rows), fitted.predict(rows))


def test_constant_model_answers_its_prior() -> None:
    constant = CalibratedBooster(None, ProbabilityCalibrator("none"), prior=0.25)
    np.testing.assert_array_equal(constant.raw(np.zeros((3, 4))), np.full(3, 0.25))
