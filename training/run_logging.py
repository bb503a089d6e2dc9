"""What a training run writes to MLflow besides metrics: parameters, provenance, plots.

Plots are drawn on the held-out validation window, model next to baseline, from a seeded
subsample of at most ``PLOT_MAX_ROWS`` rows (``SENDTIME_PLOT_MAX_ROWS`` for send time, which
scores 168 hours per row): enough for smooth curves, cheap on big runs.
"""

from __future__ import annotations

import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import mlflow
import numpy as np

from features.contract import CHANNELS
from models.pyfunc import score_matrix
from training.config import TrainConfig
from training.datasets import TaskDataset
from training.plots import (
    calibration_figure,
    confusion_figure,
    gain_figure,
    hit_rate_figure,
    importance_figure,
)
from training.tasks import Task

logger = logging.getLogger(__name__)

PLOT_MAX_ROWS: Final = 20_000
#: Send time scores 168 (row, hour) pairs per row: fewer rows keep its plot's memory small.
SENDTIME_PLOT_MAX_ROWS: Final = 2_000
#: Hit rates of the send-time model are plotted for the top 1..HIT_RATE_MAX_K hours.
HIT_RATE_MAX_K: Final = 24
UNKNOWN_COMMIT: Final = "unknown"
_PLOT_SEED: Final = 0


def git_commit(directory: Path | None = None) -> str:
    """The commit of the code that trains (the checkout holding this package), or "unknown"."""
    where = directory or Path(__file__).resolve().parent
    try:
        completed = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN_COMMIT
    sha = completed.stdout.strip()
    return sha if completed.returncode == 0 and sha else UNKNOWN_COMMIT


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="seconds")


def data_window(prefix: str, ts_ns: np.ndarray) -> dict[str, str]:
    """First and last as-of time of a split, as ISO-8601 UTC strings."""
    if len(ts_ns) == 0:
        return {f"{prefix}_start": "none", f"{prefix}_end": "none"}
    return {f"{prefix}_start": _iso(int(ts_ns.min())), f"{prefix}_end": _iso(int(ts_ns.max()))}


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, list):
        out[prefix] = ",".join(str(v) for v in value)
    else:
        out[prefix] = str(value)


def flat_params(config: TrainConfig, task: Task) -> dict[str, str]:
    """The resolved settings that shaped one task's run, as MLflow params (``a.b.c`` keys)."""
    dumped = config.model_dump(mode="json")
    relevant = {
        key: dumped[key]
        for key in ("experiment", "registry_prefix", "seed", "valid_fraction", "dataset",
                    "promotion")
    }
    relevant["model"] = dumped["models"][task.value]
    params: dict[str, str] = {"task": task.value}
    _flatten("", relevant, params)
    return params


def _subsample(valid: TaskDataset, max_rows: int) -> np.ndarray:
    n_rows = len(valid.y)
    if n_rows <= max_rows:
        return np.arange(n_rows)
    rng = np.random.default_rng(_PLOT_SEED)
    return np.sort(rng.choice(n_rows, max_rows, replace=False))


def hit_rates(scores: np.ndarray, engaged: np.ndarray, max_k: int) -> np.ndarray:
    """Share of rows (with any engagement and known scores) whose engagement is in the top k.

    Computed from each row's best rank of an engaged slot, so all k come from one sort.
    """
    known = np.isfinite(scores).all(axis=1) & (engaged > 0).any(axis=1)
    if not known.any():
        return np.full(max_k, np.nan)
    scores, engaged = scores[known], engaged[known] > 0
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :], axis=1)
    best = np.where(engaged, ranks, scores.shape[1]).min(axis=1)
    return np.array([(best < k).mean() for k in range(1, max_k + 1)])


def _importances(estimator: Any, names: list[str]) -> dict[str, float] | None:
    values = getattr(estimator, "feature_importances_", None)
    if values is None or len(values) != len(names):
        return None
    return {name: float(v) for name, v in zip(names, values, strict=True)}


def task_figures(task: Task, estimator: Any, baseline: Any, valid: TaskDataset) -> dict[str, Any]:
    """The evaluation figures of one task, keyed by artifact file name."""
    rows = _subsample(valid, SENDTIME_PLOT_MAX_ROWS if task is Task.SENDTIME else PLOT_MAX_ROWS)
    X, y = valid.X[rows], np.asarray(valid.y)[rows]
    figures: dict[str, Any] = {}
    if task in (Task.CONVERSION, Task.CHURN):
        model_p = score_matrix(task.value, estimator, X)
        baseline_p = score_matrix(task.value, baseline, X)
        figures["calibration.png"] = calibration_figure(y, model_p, baseline_p,
                                                        title=f"{task.value}: calibration")
        figures["gain_lift.png"] = gain_figure(y, model_p, baseline_p,
                                               title=f"{task.value}: cumulative gain and lift")
    elif task is Task.CHANNEL:
        model_p = score_matrix(task.value, estimator, X)
        baseline_p = score_matrix(task.value, baseline, X)
        figures["calibration.png"] = calibration_figure(
            y.ravel(), model_p.ravel(), baseline_p.ravel(),
            title="channel: calibration of per-channel engagement",
        )
        figures["gain_lift.png"] = gain_figure(
            y.ravel(), model_p.ravel(), baseline_p.ravel(),
            title="channel: gain over (customer, channel) pairs",
        )
        known = np.isfinite(model_p).all(axis=1)
        pair_rows, pair_channels = np.nonzero((y > 0) & known[:, None])
        predicted = np.argmax(np.nan_to_num(model_p, nan=-1.0), axis=1)[pair_rows]
        figures["confusion_matrix.png"] = confusion_figure(
            pair_channels, predicted, [c.value for c in CHANNELS]
        )
    else:
        profile = valid.require_hour_profile()[rows]
        model_p = score_matrix(task.value, estimator, X, profile)
        baseline_p = score_matrix(task.value, baseline, X, profile)
        figures["hit_rate_by_k.png"] = hit_rate_figure(
            hit_rates(model_p, y, HIT_RATE_MAX_K), hit_rates(baseline_p, y, HIT_RATE_MAX_K),
            title="sendtime: engagement within the top-k predicted hours",
        )
    importances = _importances(estimator, list(valid.feature_names))
    if importances is not None:
        figures["feature_importance.png"] = importance_figure(
            importances, title=f"{task.value}: feature importance (gain)"
        )
    return figures


def log_task_plots(task: Task, estimator: Any, baseline: Any, valid: TaskDataset) -> list[str]:
    """Draw and log the task's figures under ``plots/`` of the active run."""
    logged = []
    for file_name, figure in task_figures(task, estimator, baseline, valid).items():
        path = f"plots/{file_name}"
        mlflow.log_figure(figure, path)
        logged.append(path)
    logger.debug("%s: logged %s", task.value, ", ".join(logged))
    return logged
