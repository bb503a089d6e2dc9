"""What ``nextbest train`` and ``nextbest promote`` do, behind the thin Typer commands.

Errors a user can fix (bad data, bad config, an unknown version) become a ``CommandError`` with
a message naming the file, key or value; the CLI prints it and exits with status 2 instead of
showing a traceback.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.table import Table

from training.pipeline import TrainSummary

logger = logging.getLogger(__name__)

ALL: Final = "all"


class CommandError(Exception):
    """A problem the user can fix; ``str(error)`` says what and where."""


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Keep MLflow's own INFO chatter out of the progress display for the command's duration."""
    mlflow_logger = logging.getLogger("mlflow")
    previous = mlflow_logger.level
    mlflow_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        mlflow_logger.setLevel(previous)


def parse_tasks(task: str) -> list[str] | None:
    """``all`` (the configuration's tasks) or one task name, checked."""
    from training.tasks import Task

    if task == ALL:
        return None
    try:
        return [Task(task).value]
    except ValueError:
        known = ", ".join([ALL, *(t.value for t in Task)])
        raise CommandError(f"unknown task {task!r}: expected one of {known}") from None


def run_train(
    task: str,
    data: Path,
    config_path: str | None,
    tracking_uri: str | None,
    progress: bool = True,
) -> TrainSummary:
    """Validate the inputs, then train; every user-fixable problem raises ``CommandError``."""
    from features.io import DataValidationError, load_journeys
    from training.config import ConfigError, load_config
    from training.pipeline import TrainingError, train
    from training.tasks import Task

    tasks = parse_tasks(task)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise CommandError(f"invalid configuration:\n{exc}") from exc
    if not data.is_dir():
        raise CommandError(f"{data}: no such data folder (expected a folder with the four "
                           "tables events, customers, catalog, decisions as .parquet or .csv)")
    try:
        if progress:
            with Console(stderr=True).status(f"loading and validating {data} …"):
                journeys = load_journeys(data)
        else:
            journeys = load_journeys(data)
    except DataValidationError as exc:
        raise CommandError(str(exc)) from exc
    try:
        with quiet_mlflow():
            return train(
                journeys, config, [Task(t) for t in tasks] if tasks else None,
                tracking_uri=tracking_uri, progress=progress, data_source=str(data.resolve()),
            )
    except TrainingError as exc:
        raise CommandError(str(exc)) from exc


def summary_json(summary: TrainSummary) -> str:
    """The machine-readable summary (``--json``); NaN metrics become ``null``."""

    def clean(value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(summary.as_dict()), indent=2)


def summary_table(summary: TrainSummary) -> Table:
    """One row per task: version, primary metric for model and baseline, promotion outcome."""
    table = Table(title=f"nextbest train — experiment '{summary.experiment}'")
    for column in ("task", "model version", "metric", "model", "baseline", "promotion"):
        table.add_column(column)
    for result in summary.results:
        metric = result.primary_metric
        gate = result.gate
        if gate is None:
            outcome = "gate off (challenger only)"
        elif gate.promoted:
            outcome = f"[green]champion[/] ({gate.reason})"
        else:
            outcome = f"[yellow]kept v{gate.champion_version}[/] ({gate.reason})"
        model_value = result.metrics.get(metric, math.nan)
        baseline_value = result.baseline_metrics.get(metric, math.nan)
        style = "green" if result.beats_baseline else "red"
        table.add_row(
            result.task.value,
            f"{result.model_name} v{result.version}",
            metric,
            f"[{style}]{model_value:.4f}[/]",
            f"{baseline_value:.4f}",
            outcome,
        )
    return table


def print_summary(summary: TrainSummary, console: Console) -> None:
    console.print(summary_table(summary))
    console.print(
        f"MLflow: {summary.tracking_uri} (browse with: mlflow ui --backend-store-uri "
        f"{summary.tracking_uri})"
    )


def run_promote(
    task: str,
    version: str | None,
    alias: str,
    registry_prefix: str,
    tracking_uri: str | None,
) -> dict[str, object]:
    """Move an alias by hand (default: ``champion`` to the current challenger)."""
    from training.promote import PromotionError, promote_by_hand, registry_client
    from training.tasks import Task

    try:
        model_name = f"{registry_prefix}-{Task(task).value}"
    except ValueError:
        known = ", ".join(t.value for t in Task)
        raise CommandError(f"unknown task {task!r}: expected one of {known}") from None
    with quiet_mlflow():
        client = registry_client(tracking_uri)
        try:
            record = promote_by_hand(client, model_name, version, alias)
        except PromotionError as exc:
            raise CommandError(str(exc)) from exc
    return record.as_dict()
