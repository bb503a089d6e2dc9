"""On simulated journeys, every model clearly beats its baseline on the later window."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import joblib
import numpy as np
import pytest
from pydantic import ValidationError

from models.interfaces import ChannelScorer, ChurnScorer, ConversionScorer, SendTimeScorer
from tests.training import small_world
from training.datasets import TaskDataset, time_split
from training.fit import TaskConfig, effective_task_config, fit_baseline, fit_task
from training.metrics import evaluate, primary_metric
from training.tasks import Task

#: Fewer, bolder trees than the defaults: the same behaviour in a fraction of the time.
QUICK = TaskConfig(n_estimators=80, learning_rate=0.15, random_state=11)
#: How much better than the baseline the model must be on its primary metric (relative).
MARGIN = {Task.CONVERSION: 0.05, Task.CHURN: 0.04, Task.CHANNEL: 1.0, Task.SENDTIME: 0.05}
#: Expected calibration error allowed on the later window: the conversion model's probabilities
#: are multiplied by message values, so they must be the tightest.
MAX_ECE = {Task.CONVERSION: 0.02, Task.CHURN: 0.05, Task.CHANNEL: 0.05, Task.SENDTIME: 0.02}
PROTOCOLS = {Task.CONVERSION: ConversionScorer, Task.CHURN: ChurnScorer,
             Task.CHANNEL: ChannelScorer, Task.SENDTIME: SendTimeScorer}


@lru_cache(maxsize=4)
def trained(task: Task) -> tuple[Any, Any, TaskDataset]:
    train, valid = time_split(small_world.datasets()[task], 0.25)
    return fit_task(task, train, QUICK), fit_baseline(task, train), valid


@pytest.mark.slow
@pytest.mark.parametrize("task", list(Task))
def test_model_clearly_beats_its_baseline_on_the_later_window(task: Task) -> None:
    model, baseline, valid = trained(task)
    name, greater_is_better = primary_metric(task)
    ours, theirs = evaluate(task, model, valid), evaluate(task, baseline, valid)
    if greater_is_better:
        assert ours[name] > theirs[name] * (1 + MARGIN[task]), (ours, theirs)
    else:
        assert ours[name] < theirs[name] * (1 - MARGIN[task]), (ours, theirs)
    assert ours["roc_auc"] > theirs["roc_auc"] + 0.03
    assert ours["ece"] < MAX_ECE[task]


@pytest.mark.slow
@pytest.mark.parametrize("task", list(Task))
def test_fitted_models_serve_the_scorer_protocol_and_survive_joblib(task: Task, tmp_path) -> None:
    model, baseline, valid = trained(task)
    assert isinstance(model, PROTOCOLS[task]) and isinstance(baseline, PROTOCOLS[task])
    assert model.feature_names_ == valid.feature_names
    assert model.spec_ == small_world.spec().to_dict()
    assert model.get_params()["random_state"] == 11
    joblib.dump(model, tmp_path / "estimator.joblib")
    restored = joblib.load(tmp_path / "estimator.joblib")
    some = valid.subset(np.arange(min(200, len(valid))))
    assert evaluate(task, restored, some) == evaluate(task, model, some)


def test_task_config_rejects_unknown_and_invalid_settings() -> None:
    with pytest.raises(ValidationError, match="extra"):
        TaskConfig.model_validate({"n_trees": 10})
    with pytest.raises(ValidationError, match="calibration"):
        TaskConfig.model_validate({"calibration": "platt"})
    with pytest.raises(ValidationError, match="learning_rate"):
        TaskConfig.model_validate({"learning_rate": 0})


def test_task_defaults_fill_only_what_the_config_leaves_unset() -> None:
    churn = effective_task_config(Task.CHURN, TaskConfig(num_leaves=63))
    assert churn.num_leaves == 63  # the user's choice wins
    assert churn.min_child_samples == 300 and churn.learning_rate == 0.05  # the task's default
    assert effective_task_config(Task.CONVERSION, TaskConfig()) == TaskConfig()
