"""The promotion gate and ``nextbest train --json`` / ``nextbest promote`` as a user drives them:
the first version becomes champion, a worse challenger is refused with both figures logged, and
an alias can still be moved by hand."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.training.conftest import GATE_PREFIX, json_summary, run_cli
from training.promote import _is_at_least_as_good

MODEL = f"{GATE_PREFIX}-churn"


@pytest.fixture(scope="module")
def client(scratch_tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=scratch_tracking_uri, registry_uri=scratch_tracking_uri)


@pytest.fixture(scope="module")
def first(
    small_simulation_dir: Path, scratch_tracking_uri: str, gate_config: Path
) -> dict[str, Any]:
    """``nextbest train churn --json`` for a model not registered yet."""
    return json_summary(run_cli(
        "train", "churn", "--data", small_simulation_dir, "--config", gate_config,
        "--tracking-uri", scratch_tracking_uri, "--json",
    ))["tasks"]["churn"]


@pytest.fixture(scope="module")
def worse(
    first: dict[str, Any], small_simulation_dir: Path, scratch_tracking_uri: str,
    crippled_config: Path,
) -> dict[str, Any]:
    """The same task retrained with a one-stump model, after ``first``."""
    return json_summary(run_cli(
        "train", "churn", "--data", small_simulation_dir, "--config", crippled_config,
        "--tracking-uri", scratch_tracking_uri, "--json",
    ))["tasks"]["churn"]


def test_json_summary_has_runs_versions_metrics_baselines_and_promotion(
    first: dict[str, Any],
) -> None:
    assert first["model_name"] == MODEL and first["version"] == "1"
    assert len(first["run_id"]) == 32
    assert first["primary_metric"] == "roc_auc"
    assert 0.5 < first["metrics"]["roc_auc"] <= 1.0
    assert "roc_auc" in first["baseline_metrics"]
    assert first["promotion"]["promoted"] is True
    assert first["promotion"]["reason"] == "no champion yet"
    assert first["rows"]["train"] > first["rows"]["valid"] > 0
    assert first["window"]["train_end"] < first["window"]["valid_start"]


def test_gate_refuses_a_worse_challenger_and_logs_both_figures(
    worse: dict[str, Any], first: dict[str, Any], client: MlflowClient
) -> None:
    gate = worse["promotion"]
    assert worse["version"] == "2"
    assert gate["promoted"] is False
    assert gate["champion_version"] == "1"
    # Re-scored on the challenger's validation rows: the same rows, so the same value as v1's own.
    assert gate["champion_value"] == pytest.approx(first["metrics"]["roc_auc"])
    assert gate["challenger_value"] < gate["champion_value"]
    aliases = {a: str(v) for a, v in client.get_registered_model(MODEL).aliases.items()}
    assert aliases == {"champion": "1", "challenger": "2"}
    version = client.get_model_version(MODEL, "2")
    assert version.tags["gate.decision"] == "kept_champion"
    assert float(version.tags["gate.champion_value"]) > float(version.tags["gate.challenger_value"])
    run = client.get_run(worse["run_id"])
    assert run.data.tags["gate.decision"] == "kept_champion"
    assert run.data.metrics["gate_champion_roc_auc"] > run.data.metrics["gate_challenger_roc_auc"]


def test_promote_by_hand_moves_champion_and_keeps_an_audit_trail(
    worse: dict[str, Any], scratch_tracking_uri: str, client: MlflowClient
) -> None:
    result = run_cli("promote", "churn", "--registry-prefix", GATE_PREFIX,
                     "--tracking-uri", scratch_tracking_uri)
    assert result.exit_code == 0, result.output
    assert f"{MODEL}@champion: v1 -> v2" in result.stdout
    assert str(client.get_registered_model(MODEL).aliases["champion"]) == "2"
    tags = client.get_model_version(MODEL, "2").tags
    assert tags["champion.promoted_by"] == "hand"
    assert tags["champion.replaced_version"] == "1"
    audit = client.search_runs(
        [client.get_run(worse["run_id"]).info.experiment_id],
        "tags.`nextbest.kind` = 'promotion'",
    )
    assert [r.data.tags["promotion.version"] for r in audit] == ["2"]

    back = run_cli("promote", "churn", "--version", "1", "--registry-prefix", GATE_PREFIX,
                   "--tracking-uri", scratch_tracking_uri)
    assert back.exit_code == 0 and "v2 -> v1" in back.stdout


def test_promote_errors_name_what_is_wrong(
    worse: dict[str, Any], scratch_tracking_uri: str
) -> None:
    unknown_version = run_cli("promote", "churn", "--version", "9", "--registry-prefix",
                              GATE_PREFIX, "--tracking-uri", scratch_tracking_uri)
    assert unknown_version.exit_code == 2
    assert f"{MODEL} has no version 9 (versions: 1, 2)" in unknown_version.stderr
    unknown_model = run_cli("promote", "sendtime", "--registry-prefix", GATE_PREFIX,
                            "--tracking-uri", scratch_tracking_uri)
    assert unknown_model.exit_code == 2
    assert f"{GATE_PREFIX}-sendtime" in unknown_model.stderr
    unknown_task = run_cli("promote", "upsell", "--tracking-uri", scratch_tracking_uri)
    assert unknown_task.exit_code == 2 and "unknown task 'upsell'" in unknown_task.stderr


def test_gate_refuses_a_champion_it_cannot_score_on_the_same_rows(
    worse: dict[str, Any], small_simulation_dir: Path, scratch_tracking_uri: str,
    client: MlflowClient, tmp_path: Path, gate_config: Path,
) -> None:
    """A new customer attribute changes the feature set: the champion cannot be re-scored on
    the challenger's rows, so the gate keeps it and says why."""
    data = tmp_path / "with-tier"
    data.mkdir()
    for table in ("events", "catalog", "decisions"):
        shutil.copy(small_simulation_dir / f"{table}.parquet", data)
    customers = pd.read_parquet(small_simulation_dir / "customers.parquet")
    customers["tier"] = np.where(np.arange(len(customers)) % 3 == 0, "gold", "silver")
    customers.to_parquet(data / "customers.parquet")
    champion_before = str(client.get_registered_model(MODEL).aliases["champion"])

    result = json_summary(run_cli(
        "train", "churn", "--data", data, "--config", gate_config,
        "--tracking-uri", scratch_tracking_uri, "--json",
    ))["tasks"]["churn"]

    assert result["promotion"]["promoted"] is False
    assert "trained on different features" in result["promotion"]["reason"]
    assert str(client.get_registered_model(MODEL).aliases["champion"]) == champion_before


@pytest.mark.parametrize(
    ("challenger", "champion", "greater_is_better", "tolerance", "promoted"),
    [
        (0.80, 0.80, True, 0.0, True),  # a tie keeps the newer model
        (0.79, 0.80, True, 0.0, False),
        (0.79, 0.80, True, 0.02, True),
        (0.31, 0.30, False, 0.0, False),  # log loss: lower is better
        (0.29, 0.30, False, 0.0, True),
        (math.nan, 0.30, False, 0.0, False),  # an unmeasurable challenger never wins
        (0.30, math.nan, False, 0.0, True),
    ],
)
def test_gate_rule(
    challenger: float, champion: float, greater_is_better: bool, tolerance: float, promoted: bool
) -> None:
    assert _is_at_least_as_good(challenger, champion, greater_is_better, tolerance) is promoted
