"""The Hillstrom policy benchmark: honest cross-fitting, policy trees, results a user reads."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from training.evaluation.hillstrom_benchmark import (
    BenchmarkConfig,
    OutcomeModelParams,
    assign_folds,
    cross_fit,
    fold_splits,
    run_benchmark,
)
from training.evaluation.hillstrom_report import metrics, summary, tables
from training.evaluation.policy_tree import PolicyTree
from training.hillstrom import ARMS, HillstromCol, arm_codes, read_hillstrom

H = HillstromCol


def test_folds_are_stratified_by_arm_and_reproducible() -> None:
    arms = np.random.default_rng(0).integers(0, 3, 3_000)
    folds = assign_folds(arms, 5, seed=1)
    assert np.array_equal(folds, assign_folds(arms, 5, seed=1))
    assert not np.array_equal(folds, assign_folds(arms, 5, seed=2))
    for arm in range(3):
        counts = np.bincount(folds[arms == arm], minlength=5)
        assert counts.max() - counts.min() <= 1  # each fold keeps the 1/3 design
    with pytest.raises(ValueError, match="at least 2 folds"):
        assign_folds(arms, 1, seed=0)


def test_cross_fitting_never_shows_a_fold_its_own_rows() -> None:
    n = 600
    row_ids = np.arange(n, dtype=np.float64)[:, None]  # the "features" are the row ids
    arms = np.arange(n) % 3
    folds = assign_folds(arms, 4, seed=0)
    seen_by_model: list[set[int]] = []

    def learner(X: np.ndarray, arms: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
        trained_on = set(X[:, 0].astype(int))
        seen_by_model.append(trained_on)
        return lambda X_new: np.array([int(i) in trained_on for i in X_new[:, 0]], dtype=float)

    leaked = cross_fit(row_ids, arms, np.zeros(n), folds, learner)
    assert leaked.sum() == 0  # no held-out row was in its model's training rows
    assert len(seen_by_model) == 4
    for (train, held_out), trained_on in zip(fold_splits(folds), seen_by_model, strict=True):
        assert trained_on == set(train) and trained_on.isdisjoint(held_out)
        assert len(trained_on) + len(held_out) == n


def _planted_scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logged 1/3 randomised rewards where arm 2 is better only for x0 == 1 and x1 <= 5."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.integers(0, 2, n), rng.integers(1, 11, n)]).astype(float)
    segment = (X[:, 0] == 1) & (X[:, 1] <= 5)
    mean = np.column_stack([np.full(n, 0.10), np.full(n, 0.20), np.where(segment, 0.35, 0.12)])
    arms = rng.integers(0, 3, n)
    reward = (rng.random(n) < mean[np.arange(n), arms]).astype(float)
    scores = np.zeros((n, 3))
    scores[np.arange(n), arms] = 3 * reward  # IPS scores
    return X, scores


def test_policy_tree_finds_a_planted_segment_and_reads_as_rules() -> None:
    X, scores = _planted_scores(30_000, seed=0)
    tree = PolicyTree(max_depth=2, caution=1.0).fit(X, scores)
    actions = tree.predict(X)
    segment = (X[:, 0] == 1) & (X[:, 1] <= 5)
    assert tree.default_action_ == 1
    assert (actions[segment] == 2).mean() > 0.95 and (actions[~segment] == 1).mean() > 0.95
    rules = tree.describe(["bought_womens", "recency"], ARMS)
    assert any(rule.endswith(": womens") for rule in rules)


def test_caution_keeps_the_best_single_arm_when_gains_are_noise() -> None:
    rng = np.random.default_rng(5)
    X = rng.integers(0, 4, (2_000, 3)).astype(float)
    scores = np.zeros((2_000, 3))
    arms = rng.integers(0, 3, 2_000)
    scores[np.arange(2_000), arms] = 3 * (rng.random(2_000) < 0.2)  # no arm differs anywhere
    cautious = PolicyTree(caution=3.0).fit(X, scores)
    assert np.unique(cautious.predict(X)).tolist() == [cautious.default_action_]


@pytest.fixture(scope="module")
def small_run() -> tuple[pd.DataFrame, object]:
    frame = read_hillstrom().sample(6_000, random_state=0).reset_index(drop=True)
    config = BenchmarkConfig(
        folds=3, n_bootstrap=50, min_leaf_fraction=0.1,
        outcome_model=OutcomeModelParams(n_estimators=15, min_child_samples=100),
    )
    return frame, run_benchmark(frame, config)


def test_benchmark_reports_every_policy_against_the_observed_arms(small_run) -> None:  # type: ignore[no-untyped-def]
    frame, result = small_run
    arms = arm_codes(frame)
    for outcome in (H.VISIT, H.CONVERSION, H.SPEND):
        found = result.outcomes[outcome]
        y = frame[outcome].to_numpy(dtype=float)
        for code, arm in enumerate(ARMS):
            assert found.arm_means[arm] == pytest.approx(y[arms == code].mean())
            # SNIPS of a single-arm policy is exactly that arm's observed mean.
            assert found.estimates[f"all_{arm}"]["snips"].value == pytest.approx(
                found.arm_means[arm])
        learned = found.estimates["learned"]
        assert set(learned) == {"ips", "snips", "dr"}
        assert all(e.ci_low <= e.value <= e.ci_high for e in learned.values())
        assert sum(found.policy_shares.values()) == pytest.approx(1.0)
        assert found.rules
    assert 0 < result.uplift.n_rows < len(frame)


def test_benchmark_summary_is_json_and_metrics_have_stable_names(small_run) -> None:  # type: ignore[no-untyped-def]
    _, result = small_run
    decoded = json.loads(json.dumps(summary(result)))
    assert decoded["outcomes"]["visit"]["policies"]["learned"]["ips"]["method"] == "ips"
    assert "uplift_at_30" in decoded["uplift_womens_vs_none_visit"]
    names = metrics(result)
    for name in ("ips_visit", "ips_visit_ci_low", "ips_visit_ci_high", "dr_spend",
                 "snips_conversion_gain_vs_mens", "arm_mens_visit", "qini_visit_womens",
                 "uplift_at_30_visit_womens"):
        assert np.isfinite(names[name]), name
    assert len(tables(result)) == 4


@pytest.mark.slow
def test_benchmark_run_is_logged_to_mlflow(small_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    from training.evaluation.hillstrom_report import EXPERIMENT, log_to_mlflow

    _, result = small_run
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = log_to_mlflow(result, uri)
    run = mlflow.get_run(run_id)
    assert run.data.metrics["ips_visit"] == pytest.approx(metrics(result)["ips_visit"])
    assert run.data.params["folds"] == "3"
    artifacts = {a.path for a in mlflow.MlflowClient(uri).list_artifacts(run_id, "plots")}
    assert artifacts == {"plots/policy_values.png", "plots/qini_visit_womens.png"}
    assert mlflow.get_experiment(run.info.experiment_id).name == EXPERIMENT


def test_too_little_data_is_a_clear_error() -> None:
    frame = read_hillstrom().head(300)
    with pytest.raises(ValueError, match="needs at least 500 customers in every arm for 5 folds"):
        run_benchmark(frame, BenchmarkConfig())
