"""``nextbest evaluate`` as a user runs it: on the shared trained store, JSON out, MLflow run,
and every kind of bad input answered by a clear message and exit status 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.training.conftest import run_cli
from tests.training.evaluation_world import EvaluationWorld, evaluation_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> EvaluationWorld:
    return evaluation_world(tmp_path_factory.mktemp("evaluation-world"))


@pytest.fixture(scope="module")
def evaluated(world: EvaluationWorld) -> dict[str, Any]:
    result = run_cli("evaluate", "--data", world.data_dir, "--tracking-uri",
                     world.tracking_uri, "--bootstrap", "50", "--json")
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{"):])
    return report


def test_json_report_has_the_oracle_table_off_policy_estimates_and_targets(
    evaluated: dict[str, Any],
) -> None:
    oracle = evaluated["oracle"]
    assert set(oracle["policies"]) == {"nextbest", "random", "no_contact", "static_rule",
                                       "journeys", "oracle"}
    assert oracle["share_of_oracle_lift"]["oracle"] == pytest.approx(1.0)
    assert oracle["share_of_oracle_lift"]["random"] == pytest.approx(0.0)
    assert set(oracle["targets"]) == {"share_of_oracle_lift", "revenue_over_static_rule",
                                      "revenue_over_journeys"}
    estimates = evaluated["off_policy"]["estimates"]
    assert {"nextbest", "no_contact", "journeys", "random", "logging_policy"} <= set(estimates)
    dr = estimates["nextbest"]["net_value"]["dr"]
    assert dr["ci_low"] <= dr["value"] <= dr["ci_high"]
    assert evaluated["off_policy"]["n_bootstrap"] == 50
    assert "off_policy_truth" in evaluated


def test_the_report_is_logged_to_mlflow_with_its_plots(
    world: EvaluationWorld, evaluated: dict[str, Any]
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=world.tracking_uri)
    experiment = client.get_experiment_by_name("nextbest-evaluation")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert runs
    run = runs[0]
    assert "oracle.nextbest.share_of_oracle_lift" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/report.json", "evaluation/policy_values.png",
            "evaluation/lift_by_stage.png"} <= artifacts


def test_a_window_without_decisions_is_a_clear_error(world: EvaluationWorld) -> None:
    result = run_cli("evaluate", "--data", world.data_dir, "--tracking-uri",
                     world.tracking_uri, "--since", "2031-01-01T00:00Z", "--no-log")
    assert result.exit_code == 2
    assert "no logged decision to evaluate" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--models-alias", "nope"], "no registered model nextbest-conversion@nope"),
        (["--policy", "greedy"], "unknown policy 'greedy'"),
        (["--since", "yesterday-ish"], "--since: expected an ISO-8601 time"),
    ],
)
def test_bad_options_are_named(
    world: EvaluationWorld, extra: list[str], message: str
) -> None:
    result = run_cli("evaluate", "--data", world.data_dir, "--tracking-uri",
                     world.tracking_uri, "--no-log", *extra)
    assert result.exit_code == 2
    assert message in result.output


def test_a_missing_folder_and_truth_without_params_are_clear_errors(
    world: EvaluationWorld, tmp_path: Path
) -> None:
    result = run_cli("evaluate", "--data", tmp_path / "nowhere", "--no-log")
    assert result.exit_code == 2
    assert "is not a folder" in result.output
    copy = tmp_path / "copy"
    shutil.copytree(world.data_dir, copy)
    (copy / "truth" / "params.json").unlink()
    result = run_cli("evaluate", "--data", copy, "--tracking-uri", world.tracking_uri,
                     "--no-log")
    assert result.exit_code == 2
    assert "truth" in result.output and "params.json" in result.output


def test_a_service_decision_log_gets_off_policy_estimates_and_the_control_group_lift(
    world: EvaluationWorld, tmp_path: Path
) -> None:
    decisions = world.simulation.journeys.decisions
    late = decisions[decisions["ts"] > world.cutoff].copy()
    control = late["customer_id"].astype(str).str.endswith("0")  # a tenth of the customers
    late["assignment"] = "treated"
    late.loc[control, "assignment"] = "global_control"
    late.loc[control, ["message_id", "channel", "send_at"]] = None
    late.loc[control, "propensity"] = 1.0
    log = tmp_path / "decisions.jsonl"
    log.write_text(late.to_json(orient="records", lines=True, date_format="iso"))
    result = run_cli("evaluate", "--data", world.data_dir, "--tracking-uri", world.tracking_uri,
                     "--decisions", log, "--bootstrap", "30", "--no-log", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert "oracle" not in report  # a service log has no simulator states
    assert "nextbest" in report["off_policy"]["estimates"]
    lift = report["control_group_lift"]
    assert lift and all(row["n_control"] > 0 for row in lift)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"decision_id": "d1"}\n')
    result = run_cli("evaluate", "--data", world.data_dir, "--tracking-uri", world.tracking_uri,
                     "--decisions", bad, "--no-log")
    assert result.exit_code == 2
    assert "customer_id" in result.output
