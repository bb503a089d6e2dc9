"""The training pipeline: journeys in, registered and gated MLflow models out.

The point-in-time data sets of all tasks are built first, their features in one pass over the
event log. Then per task: split by time, fit the model and its baseline on the earlier rows,
evaluate both on the later window, log one MLflow run (resolved config, data window, row counts,
git sha, seed, metrics under stable names, plots, the pyfunc model with signature and input
example), register ``<prefix>-<task>``, point ``challenger`` at the new version and let the
promotion gate decide about ``champion``. Training several tasks nests their runs under one
parent run.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from features.definitions import FeatureSpec
from features.io import Journeys
from models.pyfunc import HOUR_PROFILE_COLUMNS, log_pyfunc_model
from training.config import TrainConfig
from training.datasets import TaskDataset, build_datasets, time_split
from training.fit import fit_baseline, fit_task
from training.metrics import evaluate, primary_metric
from training.progress import StageProgress
from training.promote import (
    CHALLENGER,
    KIND_TAG,
    GateDecision,
    alias_version,
    apply_gate,
    run_gate,
)
from training.run_logging import (
    data_window,
    flat_params,
    git_commit,
    log_task_plots,
)
from training.tasks import Task
from training.tracking import configure_tracking

logger = logging.getLogger(__name__)

#: Stages of one task, in order; their timings are reported per task.
STAGES: tuple[str, ...] = ("split", "fit", "baseline", "evaluate", "log", "gate")
#: Progress-bar name of the shared data-set building stage.
_DATASETS = "data sets"
_INPUT_EXAMPLE_ROWS = 5


class TrainingError(ValueError):
    """The data cannot train a task (e.g. nothing left to validate on); the message says why."""


@dataclass
class TaskResult:
    """What training one task produced."""

    task: Task
    run_id: str
    model_name: str
    version: str
    primary_metric: str
    greater_is_better: bool
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    rows: dict[str, int]
    window: dict[str, str]
    gate: GateDecision | None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def beats_baseline(self) -> bool:
        model = self.metrics.get(self.primary_metric, math.nan)
        baseline = self.baseline_metrics.get(self.primary_metric, math.nan)
        return model > baseline if self.greater_is_better else model < baseline

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model_name": self.model_name,
            "version": self.version,
            "primary_metric": self.primary_metric,
            "greater_is_better": self.greater_is_better,
            "metrics": self.metrics,
            "baseline_metrics": self.baseline_metrics,
            "beats_baseline": self.beats_baseline,
            "rows": self.rows,
            "window": self.window,
            "promotion": None if self.gate is None else self.gate.as_dict(),
            "seconds": {stage: round(s, 3) for stage, s in self.seconds.items()},
        }


@dataclass
class TrainSummary:
    """Everything a ``nextbest train`` run did, for humans (tables) and machines (``--json``)."""

    experiment: str
    tracking_uri: str
    parent_run_id: str | None
    results: list[TaskResult]
    n_events: int
    feature_seconds: float
    seconds: float

    def result(self, task: Task | str) -> TaskResult:
        for result in self.results:
            if result.task == Task(task):
                return result
        raise KeyError(f"task {task} was not trained in this run")

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "tracking_uri": self.tracking_uri,
            "parent_run_id": self.parent_run_id,
            "n_events": self.n_events,
            "feature_seconds": round(self.feature_seconds, 3),
            "seconds": round(self.seconds, 3),
            "tasks": {result.task.value: result.as_dict() for result in self.results},
        }


def split_dataset(
    dataset: TaskDataset, config: TrainConfig
) -> tuple[TaskDataset, TaskDataset]:
    """(train, valid) as the configuration says: by time, or by customer for one-shot data."""
    if config.split == "time":
        return time_split(dataset, config.valid_fraction)
    if len(np.unique(dataset.ts_ns)) > 1:
        raise TrainingError(
            f"{dataset.task.value}: split 'customer' is only for data whose rows all share one "
            "as-of time; this data spans time, so use split: time (no future may leak into "
            "training)"
        )
    customers = np.unique(dataset.customer_ids.astype(str))
    rng = np.random.default_rng(config.seed)
    n_valid = max(1, round(config.valid_fraction * len(customers)))
    held_out = rng.permutation(customers)[:n_valid]
    valid = np.isin(dataset.customer_ids.astype(str), held_out)
    return dataset.subset(~valid), dataset.subset(valid)


def _check_split(task: Task, train: TaskDataset, valid: TaskDataset, total: int) -> None:
    if total == 0:
        raise TrainingError(
            f"{task.value}: the data yields no training rows for this task; check that the "
            "journeys cover enough time and, for conversion, that decisions were logged"
        )
    if len(train.y) == 0 or len(valid.y) == 0:
        raise TrainingError(
            f"{task.value}: all {total} rows share the same as-of time, so they cannot be split "
            "by time into training and validation windows; provide data spanning more time, or "
            "for a one-shot randomised campaign set split: customer in the configuration"
        )


def _input_example(task: Task, valid: TaskDataset) -> pd.DataFrame:
    rows = slice(0, _INPUT_EXAMPLE_ROWS)
    example = pd.DataFrame(valid.X[rows], columns=list(valid.feature_names))
    if task is Task.SENDTIME:
        profile = valid.require_hour_profile()[rows]
        example = pd.concat(
            [example, pd.DataFrame(profile, columns=list(HOUR_PROFILE_COLUMNS))], axis=1
        )
    return example


@contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start


def train_task(
    task: Task,
    dataset: TaskDataset,
    spec: FeatureSpec,
    config: TrainConfig,
    client: MlflowClient,
    progress: StageProgress,
    common_tags: dict[str, str],
    logged_seconds: dict[str, float] | None = None,
) -> TaskResult:
    """Train, log, register and gate one task inside its own (possibly nested) MLflow run.

    ``logged_seconds`` are timings of shared stages to record in this run as well.
    """
    seconds: dict[str, float] = {}
    name = config.model_name(task)
    metric, greater_is_better = primary_metric(task)
    progress.start(task.value, STAGES)
    with _timed(seconds, "split"):
        train, valid = split_dataset(dataset, config)
        _check_split(task, train, valid, len(dataset.y))
        del dataset  # the split copies the rows; the caller drops its reference too
    progress.advance(task.value, f"{len(train.y):,} train / {len(valid.y):,} valid rows")
    with _timed(seconds, "fit"):
        estimator = fit_task(task, train, config.models.for_task(task))
    progress.advance(task.value, "model fitted")
    with _timed(seconds, "baseline"):
        baseline = fit_baseline(task, train)
    progress.advance(task.value, "baseline fitted")
    with _timed(seconds, "evaluate"):
        metrics = {k: float(v) for k, v in evaluate(task, estimator, valid).items()}
        baseline_metrics = {k: float(v) for k, v in evaluate(task, baseline, valid).items()}
    progress.advance(
        task.value, f"{metric} {metrics[metric]:.4f} (baseline {baseline_metrics[metric]:.4f})"
    )
    rows = {"train": int(len(train.y)), "valid": int(len(valid.y))}
    window = {**data_window("train", train.ts_ns), **data_window("valid", valid.ts_ns)}
    with mlflow.start_run(run_name=task.value, nested=mlflow.active_run() is not None) as run:
        run_id = run.info.run_id
        with _timed(seconds, "log"):
            mlflow.set_tags({**common_tags, KIND_TAG: "train", "nextbest.task": task.value,
                             "primary_metric": metric, "registered_model": name})
            mlflow.log_params(flat_params(config, task))
            mlflow.log_params({f"data.{key}": value for key, value in window.items()})
            mlflow.log_dict(config.model_dump(mode="json"), "config/resolved_config.yaml")
            mlflow.log_dict(spec.to_dict(), "config/feature_spec.json")
            mlflow.log_metrics(
                {"rows_train": rows["train"], "rows_valid": rows["valid"]}
                | {f"valid_{k}": v for k, v in metrics.items() if math.isfinite(v)}
                | {f"baseline_valid_{k}": v for k, v in baseline_metrics.items()
                   if math.isfinite(v)}
            )
            log_task_plots(task, estimator, baseline, valid)
            with tempfile.TemporaryDirectory(prefix="nextbest-train-") as workdir:
                info = log_pyfunc_model(
                    task.value, estimator, _input_example(task, valid), name, Path(workdir)
                )
            version = str(info.registered_model_version)
            client.set_registered_model_alias(name, CHALLENGER, version)
            mlflow.set_tag("model_version", version)
        progress.advance(task.value, f"registered {name} v{version}")
        gate = None
        with _timed(seconds, "gate"):
            if config.promotion.enabled:
                gate = run_gate(
                    client, task, name, version, metrics, valid, config.promotion.tolerance
                )
                apply_gate(client, gate, run_id)
        timings = {**(logged_seconds or {}), **seconds}
        mlflow.log_metrics({f"seconds_{stage}": duration for stage, duration in timings.items()})
    progress.finish(task.value, _gate_summary(gate))
    return TaskResult(
        task=task, run_id=run_id, model_name=name, version=version, primary_metric=metric,
        greater_is_better=greater_is_better, metrics=metrics, baseline_metrics=baseline_metrics,
        rows=rows, window=window, gate=gate, seconds=seconds,
    )


def _gate_summary(gate: GateDecision | None) -> str:
    if gate is None:
        return "gate off"
    return "champion" if gate.promoted else "kept previous champion"


def train(
    journeys: Journeys,
    config: TrainConfig,
    tasks: Sequence[Task] | None = None,
    tracking_uri: str | None = None,
    progress: bool = True,
    data_source: str | None = None,
) -> TrainSummary:
    """Train ``tasks`` (default: the configuration's) on ``journeys`` and register them.

    ``tracking_uri`` defaults to ``MLFLOW_TRACKING_URI`` or the project's SQLite store (see
    ``training.tracking``); ``data_source`` (e.g. the data folder) is recorded with the runs.
    """
    started = time.perf_counter()
    chosen = [Task(t) for t in (tasks or config.tasks)]
    uri = configure_tracking(tracking_uri, config.experiment)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    spec = FeatureSpec.from_journeys(journeys.customers, journeys.catalog)
    commit = git_commit()
    common_tags = {
        "mlflow.source.git.commit": commit,
        "git_sha": commit,
        "seed": str(config.seed),
        "data.source": data_source or "in-memory journeys",
    }
    results: list[TaskResult] = []
    parent_run_id = None
    with StageProgress(enabled=progress) as bars:
        bars.start(_DATASETS, ["features"])
        started_features = time.perf_counter()
        datasets = build_datasets(chosen, journeys, spec, config.dataset)
        feature_seconds = time.perf_counter() - started_features
        rows = sum(len(d.y) for d in datasets.values())
        bars.finish(_DATASETS, f"{rows:,} rows for {len(chosen)} task(s)")
        shared = {} if len(chosen) > 1 else {"features": feature_seconds}

        def run(task: Task) -> TaskResult:
            # Popped, so each data set is freed once its task is done.
            return train_task(
                task, datasets.pop(task), spec, config, client, bars, common_tags, shared
            )

        if len(chosen) > 1:
            with mlflow.start_run(run_name="train-" + "-".join(t.value for t in chosen)) as parent:
                parent_run_id = parent.info.run_id
                mlflow.set_tags({**common_tags, KIND_TAG: "train-parent",
                                 "nextbest.tasks": ",".join(t.value for t in chosen)})
                mlflow.log_dict(config.model_dump(mode="json"), "config/resolved_config.yaml")
                mlflow.log_metric("seconds_features", feature_seconds)
                results.extend(run(task) for task in chosen)
                mlflow.log_metrics(
                    {f"{r.task.value}_valid_{r.primary_metric}": r.metrics[r.primary_metric]
                     for r in results if math.isfinite(r.metrics[r.primary_metric])}
                )
        else:
            results.append(run(chosen[0]))
    for result in results:
        champion = alias_version(client, result.model_name, "champion")
        logger.info(
            "%s: v%s registered (champion: %s)", result.model_name, result.version,
            "none" if champion is None else f"v{champion.version}",
        )
    return TrainSummary(
        experiment=config.experiment, tracking_uri=uri, parent_run_id=parent_run_id,
        results=results, n_events=len(journeys.events), feature_seconds=feature_seconds,
        seconds=time.perf_counter() - started,
    )
