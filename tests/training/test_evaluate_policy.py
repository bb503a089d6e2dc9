"""The whole evaluation on a small seeded simulation: models trained by the pipeline on the
early window, the nextbest policy judged by the oracle on the later one, off-policy intervals
checked against the truth of the same decisions."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.contract import Col
from features.io import load_journeys
from tests.training.evaluation_world import EvaluationWorld, evaluation_world
from training.evaluation.evaluate import (
    EvaluationConfig,
    EvaluationError,
    EvaluationReport,
    evaluate_policy,
    evaluation_rows,
)
from training.evaluation.logged_ope import DecisionLogError, load_decision_log
from training.evaluation.ope import DR, IPS, SNIPS
from training.evaluation.oracle_values import CONVERSIONS, NET_VALUE, REVENUE


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> EvaluationWorld:
    return evaluation_world(tmp_path_factory.mktemp("evaluation-world"))


@lru_cache(maxsize=1)
def _evaluate(data_dir: Path, tracking_uri: str) -> EvaluationReport:
    from features.simulator import load_simulation_truth
    from training.evaluation.command import load_registered_models

    loaded = load_registered_models("champion", tracking_uri)
    # 99 % intervals: the coverage tests check a dozen intervals at once, and at 95 % one
    # miss in twenty is what a correct estimator gives
    config = EvaluationConfig(n_bootstrap=400, decisions_per_customer=None, confidence=0.99)
    return evaluate_policy(load_journeys(data_dir), loaded, load_simulation_truth(data_dir),
                           config)


@pytest.fixture(scope="module")
def report(world: EvaluationWorld) -> EvaluationReport:
    return _evaluate(world.data_dir, world.tracking_uri)


def test_nextbest_beats_random_and_no_contact_on_held_out_decisions(
    report: EvaluationReport,
) -> None:
    assert report.oracle is not None
    values = report.oracle.values
    for rival in ("random", "no_contact"):
        assert values["nextbest"].net_value > values[rival].net_value
        assert values["nextbest"].revenue > values[rival].revenue
    assert values["oracle"].net_value >= max(v.net_value for v in values.values()) - 1e-9
    assert 0.0 < report.oracle.share["nextbest"] <= 1.0
    assert values["nextbest"].outside_candidates == 0  # the engine stays inside the set


def test_every_evaluated_decision_comes_after_the_training_window(
    world: EvaluationWorld, report: EvaluationReport
) -> None:
    # the models' window ends at their last validation row, about one attribution window
    # before the cut; the evaluation starts strictly after it
    since = pd.Timestamp(report.window["since"])
    assert world.cutoff - pd.Timedelta(days=8) < since < world.cutoff
    assert pd.Timestamp(report.window["first"]) > since
    decisions = pd.DatetimeIndex(world.simulation.journeys.decisions[Col.TS])
    assert report.n_rows == int((decisions > since).sum())


# policies with a large effective sample; the nextbest policy's exact (message, channel, hour)
# rarely matches the log in a world this small (see test_evaluate_ope for the other policies)
@pytest.mark.parametrize("policy", ["no_contact", "random", "logging_policy"])
def test_off_policy_intervals_cover_the_true_value_of_the_same_decisions(
    policy: str, report: EvaluationReport
) -> None:
    truth = report.ope_truth[policy]
    for metric in (CONVERSIONS, REVENUE, NET_VALUE):
        for method, estimate in report.ope.estimates[policy][metric].items():
            assert estimate.ci_low <= truth[metric] <= estimate.ci_high, (policy, metric, method)


def test_nextbest_gets_doubly_robust_estimates_and_a_small_effective_sample(
    report: EvaluationReport,
) -> None:
    nextbest = report.ope.estimates["nextbest"][NET_VALUE]
    assert set(nextbest) == {IPS, SNIPS, DR}  # DR with the conversion model as reward model
    assert all(e.ci_low <= e.value <= e.ci_high for e in nextbest.values())
    assert report.ope.ess["logging_policy"] == pytest.approx(report.n_rows)
    assert report.ope.ess["nextbest"] < report.ope.ess["no_contact"] < report.n_rows


def test_no_decision_after_the_training_window_is_a_clear_error(world: EvaluationWorld) -> None:
    decisions = world.simulation.journeys.decisions
    last = pd.DatetimeIndex(decisions[Col.TS]).max()
    with pytest.raises(EvaluationError, match="no logged decision to evaluate"):
        evaluation_rows(decisions, last, None, inclusive=False)


def test_a_log_without_usable_propensities_names_the_rows(world: EvaluationWorld) -> None:
    sim = world.simulation
    decisions = sim.journeys.decisions.head(20).copy()
    decisions.loc[3, Col.PROPENSITY] = 0.0
    with pytest.raises(DecisionLogError, match=r"propensity must be in \(0, 1\].*row\(s\) 4"):
        load_decision_log(decisions, sim.journeys.events, sim.journeys.catalog,
                          np.full(20, "Europe/Paris"), 168)


def test_an_unknown_policy_is_rejected_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown policy 'greedy'; expected one of nextbest"):
        EvaluationConfig(policies=("greedy",))


def test_decisions_in_two_worker_processes_equal_those_in_process(
    world: EvaluationWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from features.simulator import load_simulation_truth
    from training.evaluation import evaluate as evaluate_module
    from training.evaluation import nextbest_policy
    from training.evaluation.command import load_registered_models
    from training.evaluation.oracle_values import PolicyActions

    decided: dict[int, PolicyActions] = {}

    def small_batches(*args: Any, **kwargs: Any) -> PolicyActions:
        # batches of 40 rows: the small world's decisions make several tasks for the workers
        actions = nextbest_policy.nextbest_actions(*args, **(kwargs | {"batch_size": 40}))
        decided[kwargs["jobs"]] = actions
        return actions

    monkeypatch.setattr(evaluate_module, "nextbest_actions", small_batches)
    monkeypatch.setattr(nextbest_policy, "BATCHES_PER_TASK", 1)
    journeys = load_journeys(world.data_dir)
    truth = load_simulation_truth(world.data_dir)
    loaded = load_registered_models("champion", world.tracking_uri)
    reports = {
        jobs: evaluate_policy(journeys, loaded, truth,
                              EvaluationConfig(n_bootstrap=20, decisions_per_customer=None,
                                               jobs=jobs))
        for jobs in (1, 2)
    }
    assert len(decided[1].message) > 3 * 40
    for field in ("message", "channel", "hour"):
        np.testing.assert_array_equal(getattr(decided[2], field), getattr(decided[1], field))
    assert (decided[1].message >= 0).any()
    assert reports[1].oracle is not None and reports[2].oracle is not None
    assert reports[2].oracle.values == reports[1].oracle.values
