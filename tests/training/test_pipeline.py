"""The training pipeline end to end on a small simulation (the shared ``trained_store``): what an
analyst finds in MLflow afterwards, and what serving can load."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.pyfunc import (
    BEST_HOUR,
    CHANNEL_OUTPUT_COLUMNS,
    HOUR_OUTPUT_COLUMNS,
    P_CHURN,
    P_CONVERSION,
    ModelInputError,
    load_estimator,
)
from tests.conftest import TrainedStore
from training.pipeline import TrainSummary
from training.tasks import Task

PLOTS = {
    Task.CONVERSION: {"calibration.png", "gain_lift.png", "feature_importance.png"},
    Task.CHURN: {"calibration.png", "gain_lift.png", "feature_importance.png"},
    Task.CHANNEL: {"calibration.png", "gain_lift.png", "confusion_matrix.png",
                   "feature_importance.png"},
    Task.SENDTIME: {"hit_rate_by_k.png"},
}
OUTPUTS = {
    Task.CONVERSION: [P_CONVERSION],
    Task.CHURN: [P_CHURN],
    Task.CHANNEL: list(CHANNEL_OUTPUT_COLUMNS),
    Task.SENDTIME: [*HOUR_OUTPUT_COLUMNS, BEST_HOUR],
}


@pytest.fixture(scope="module")
def client(trained_store: TrainedStore) -> MlflowClient:
    return MlflowClient(tracking_uri=trained_store.tracking_uri,
                        registry_uri=trained_store.tracking_uri)


@pytest.fixture(scope="module")
def summary(trained_store: TrainedStore) -> TrainSummary:
    assert isinstance(trained_store.summary, TrainSummary)
    return trained_store.summary


def test_every_task_is_registered_as_challenger_and_first_champion(
    summary: TrainSummary, client: MlflowClient
) -> None:
    assert [r.task for r in summary.results] == list(Task)
    for result in summary.results:
        model = client.get_registered_model(f"nextbest-{result.task.value}")
        aliases = {alias: str(version) for alias, version in model.aliases.items()}
        assert aliases == {"challenger": result.version, "champion": result.version}
        assert result.gate is not None and result.gate.promoted
        assert result.gate.reason == "no champion yet"
        version = client.get_model_version(model.name, result.version)
        assert version.tags["gate.decision"] == "promoted"
        assert version.run_id == result.run_id


def test_runs_log_config_window_counts_provenance_and_stable_metric_names(
    summary: TrainSummary, client: MlflowClient
) -> None:
    assert summary.parent_run_id is not None
    for result in summary.results:
        run = client.get_run(result.run_id)
        assert run.data.tags["mlflow.parentRunId"] == summary.parent_run_id
        assert run.data.tags["nextbest.task"] == result.task.value
        sha = run.data.tags["git_sha"]
        assert sha == "unknown" or len(sha) == 40
        assert run.data.tags["seed"] == "7"
        params = run.data.params
        assert params["model.random_state"] == "7"  # the global seed reached the estimator
        assert params["data.train_end"] < params["data.valid_start"]  # split by time
        metrics = run.data.metrics
        assert metrics["rows_train"] > 0 and metrics["rows_valid"] > 0
        primary = result.primary_metric
        assert math.isfinite(metrics[f"valid_{primary}"])
        assert math.isfinite(metrics[f"baseline_valid_{primary}"])
        assert metrics[f"gate_challenger_{primary}"] == pytest.approx(metrics[f"valid_{primary}"])
        if result.task in (Task.CONVERSION, Task.CHURN):
            for name in ("roc_auc", "pr_auc", "log_loss", "brier", "ece"):
                assert f"valid_{name}" in metrics and f"baseline_valid_{name}" in metrics
        else:
            assert {"valid_hit_at_1", "valid_hit_at_3"} <= set(metrics)
        artifacts = {a.path for a in client.list_artifacts(result.run_id, "config")}
        assert artifacts == {"config/resolved_config.yaml", "config/feature_spec.json"}


def test_plots_are_logged_per_task(summary: TrainSummary, client: MlflowClient) -> None:
    for result in summary.results:
        logged = {Path(a.path).name for a in client.list_artifacts(result.run_id, "plots")}
        assert PLOTS[result.task] <= logged, result.task


def test_resolved_config_is_a_config_file_that_reproduces_the_run(
    summary: TrainSummary, trained_store: TrainedStore, tmp_path: Path
) -> None:
    from training.config import load_config

    mlflow.set_tracking_uri(trained_store.tracking_uri)
    text = mlflow.artifacts.load_text(
        f"runs:/{summary.results[0].run_id}/config/resolved_config.yaml"
    )
    (tmp_path / "resolved.yaml").write_text(text, encoding="utf-8")
    assert load_config(tmp_path / "resolved.yaml") == load_config("fast")


@pytest.mark.parametrize("task", list(Task))
def test_registered_pyfunc_loads_and_scores_its_input_example(
    task: Task, trained_store: TrainedStore
) -> None:
    mlflow.set_tracking_uri(trained_store.tracking_uri)
    uri = f"models:/nextbest-{task.value}@champion"
    model = mlflow.pyfunc.load_model(uri)
    local = Path(mlflow.artifacts.download_artifacts(f"{uri}/input_example.json"))
    # Every input column is float64 in the signature (JSON has no int/float distinction).
    example = pd.read_json(local, orient="split").astype("float64")
    scores = model.predict(example)
    assert list(scores.columns) == OUTPUTS[task]
    assert len(scores) == len(example)
    probabilities = scores.drop(columns=[BEST_HOUR], errors="ignore").to_numpy()
    known = probabilities[np.isfinite(probabilities)]
    assert known.size and ((known >= 0) & (known <= 1)).all()
    assert model.metadata.get_input_schema() is not None


def test_pyfunc_names_missing_columns(trained_store: TrainedStore) -> None:
    mlflow.set_tracking_uri(trained_store.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/nextbest-churn@champion")
    python_model = model.unwrap_python_model()
    with pytest.raises(ModelInputError, match="needs input column"):
        python_model.predict(None, pd.DataFrame({"unrelated": [1.0]}))


def test_estimator_file_is_what_serving_loads(
    summary: TrainSummary, client: MlflowClient
) -> None:
    result = summary.result(Task.CHURN)
    estimator = load_estimator(client, result.model_name, result.version)
    assert hasattr(estimator, "predict_churn")
    assert len(estimator.feature_names_) == estimator.n_features_in_
