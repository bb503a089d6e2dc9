"""What ``nextbest evaluate`` does behind its thin Typer command: load, check, evaluate, log.

Every problem a user can fix — a missing folder, invalid tables, no registered models, a
``truth/`` folder without its files, a log the policies cannot be evaluated on — becomes a
``CommandError`` whose message names the file, option or model, never a traceback.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from features.contract import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Table
from features.definitions import FeatureSpec
from features.io import DataValidationError, Journeys, load_journeys, parse_table
from models.policy import ModelSet
from models.registry import CHAMPION, TASKS, ModelLoadError, model_name, registry_client
from training.evaluation.evaluate import (
    ASSIGNMENT,
    EvaluationConfig,
    EvaluationError,
    EvaluationReport,
    LoadedModels,
    evaluate_policy,
    has_truth,
)
from training.evaluation.logged_ope import DecisionLogError
from training.runner import CommandError, quiet_mlflow

logger = logging.getLogger(__name__)

#: Where each model's training rows ended, as the training pipeline logs it.
TRAIN_END_PARAM = "data.train_end"
VALID_END_PARAM = "data.valid_end"


def load_registered_models(alias: str, tracking_uri: str | None) -> LoadedModels:
    """The four ``nextbest-<task>@<alias>`` models, their feature spec and the end of the
    data they were trained or validated on (the evaluation starts after it)."""
    from mlflow.exceptions import MlflowException

    from models.registry import alias_version, load_estimator

    client = registry_client(tracking_uri)
    estimators: dict[str, object] = {}
    versions: dict[str, str] = {}
    ends: list[pd.Timestamp] = []
    for task in TASKS:
        try:
            version = alias_version(client, task, alias)
        except MlflowException as exc:
            raise CommandError(f"--tracking-uri: cannot read the model registry ({exc})") from exc
        if version is None:
            raise CommandError(
                f"--models-alias: no registered model {model_name(task)}@{alias} in "
                f"{tracking_uri or 'the default MLflow store'}; train first (nextbest train all "
                "--data DIR) or name another alias"
            )
        try:
            estimators[task] = load_estimator(task, version, tracking_uri=tracking_uri)
        except ModelLoadError as exc:
            raise CommandError(str(exc)) from exc
        versions[task] = version
        run_id = client.get_model_version(model_name(task), version).run_id
        if run_id:
            params = client.get_run(run_id).data.params
            # the validation window was only scored, but the promotion gate chose the model on
            # it: evaluate after it too
            for key in (TRAIN_END_PARAM, VALID_END_PARAM):
                if params.get(key) not in (None, "none"):
                    ends.append(pd.Timestamp(params[key]))
    spec_dict = getattr(estimators["conversion"], "spec_", None)
    if not spec_dict:
        raise CommandError(f"{model_name('conversion')} v{versions['conversion']}: the model "
                           "carries no feature spec; retrain it with nextbest train")
    models = ModelSet(estimators["conversion"], estimators["churn"],  # type: ignore[arg-type]
                      estimators["channel"], estimators["sendtime"],  # type: ignore[arg-type]
                      versions=versions)
    return LoadedModels(models=models, spec=FeatureSpec.from_dict(spec_dict),
                        train_end=max(ends) if ends else None,
                        source=f"registry alias {alias}")


def read_decisions(path: Path) -> pd.DataFrame:
    """A decision log as the contract's decisions table (plus ``assignment`` when present)."""
    from models.policy.lift import read_decision_log

    if not path.is_file():
        raise CommandError(f"--decisions: {path} is not a file (expected JSON lines of decision "
                           "records, or a CSV/Parquet decisions table)")
    try:
        raw = read_decision_log(path)
        wanted = (*REQUIRED_COLUMNS[Table.DECISIONS], *OPTIONAL_COLUMNS[Table.DECISIONS],
                  ASSIGNMENT)
        return parse_table(raw[[c for c in wanted if c in raw.columns]], Table.DECISIONS,
                           str(path))
    except DataValidationError as exc:
        raise CommandError(str(exc)) from exc


def run_evaluate(
    data: Path,
    models_alias: str = CHAMPION,
    tracking_uri: str | None = None,
    n_bootstrap: int = 1000,
    since: datetime | None = None,
    log_to_mlflow: bool = True,
    policies: tuple[str, ...] | None = None,
    decision_log: Path | None = None,
    jobs: int | None = None,
) -> tuple[EvaluationReport, str | None]:
    """Evaluate the registered models' policy on ``data``; returns the report and the MLflow
    run id (``None`` when not logged).

    ``decision_log`` replaces the folder's decisions table: JSON lines of the service's decision
    records, or a CSV/Parquet table in the contract. Its decisions have no simulator states, so
    the oracle section is left out; its ``assignment`` column feeds the lift section.
    ``jobs``: worker processes deciding the rows (``None``: one per CPU; 1: in process).
    """
    from features.simulator import load_simulation_truth
    from training.evaluation.report import log_report

    try:
        config = EvaluationConfig(n_bootstrap=n_bootstrap, since=since, policies=policies,
                                  jobs=jobs)
    except ValidationError as exc:
        problems = "; ".join(f"--{'-'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise CommandError(problems.replace("Value error, ", "")) from exc
    if not data.is_dir():
        raise CommandError(f"--data: {data} is not a folder (expected the four tables events, "
                           "customers, catalog, decisions as .parquet or .csv)")
    try:
        journeys = load_journeys(data)
        truth = load_simulation_truth(data) if has_truth(data) else None
    except DataValidationError as exc:
        raise CommandError(str(exc)) from exc
    if truth is None and (data / "truth").exists():
        raise CommandError(f"{data / 'truth'}: simulator truth without its params.json; "
                           "re-run nextbest simulate or remove the folder")
    if decision_log is not None:
        journeys = Journeys(events=journeys.events, customers=journeys.customers,
                            catalog=journeys.catalog, decisions=read_decisions(decision_log))
        truth = None
    with quiet_mlflow():
        loaded = load_registered_models(models_alias, tracking_uri)
        try:
            report = evaluate_policy(journeys, loaded, truth, config, str(data.resolve()))
        except (EvaluationError, DecisionLogError, DataValidationError) as exc:
            raise CommandError(str(exc)) from exc
        run_id = log_report(report, tracking_uri) if log_to_mlflow else None
    return report, run_id
