"""Held-out metrics with stable names, the same for a model, its baseline and a champion.

Every estimator is scored through its scorer protocol (``models.interfaces``), so anything that
serves can be evaluated. Names (logged to MLflow as ``valid_<name>``):

- binary probabilities (conversion, churn; per (row, channel) and per (row, hour) pairs for
  channel and send time): ``roc_auc``, ``pr_auc`` (average precision), ``log_loss``, ``brier``,
  ``ece`` (expected calibration error over :data:`ECE_BINS` equal-count bins), plus
  ``positive_rate`` and ``mean_prediction``;
- rankings (channel, send time): ``hit_at_1``, ``hit_at_3`` — the share of rows, among those where
  the customer engaged at all, whose top-1 / top-3 predicted channels (hours) include one they
  actually engaged on (in);
- channel: ``coverage``, the share of rows with a prediction (not "not enough data");
- every task: ``n_rows``.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from models.calibration import EPS
from training.tasks import Task

if TYPE_CHECKING:
    from training.datasets import TaskDataset

logger = logging.getLogger(__name__)

ECE_BINS: Final = 10
HIT_KS: Final = (1, 3)
_PRIMARY: Final[dict[Task, tuple[str, bool]]] = {
    Task.CONVERSION: ("log_loss", False),
    Task.CHURN: ("roc_auc", True),
    Task.CHANNEL: ("hit_at_1", True),
    Task.SENDTIME: ("hit_at_3", True),
}


def primary_metric(task: Task | str) -> tuple[str, bool]:
    """The metric the promotion gate compares, and whether greater is better.

    Conversion is judged on log loss because the policy multiplies its probabilities by message
    values (calibration matters, not only ranking); churn on ROC AUC; channel and send time on
    how often their top choices contain what the customer actually engaged with.
    """
    return _PRIMARY[Task(task)]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Count-weighted mean |observed rate − mean prediction| over equal-count bins of ``p``.

    Equal-count rather than equal-width bins: with rare events (conversion) equal-width bins
    would put nearly every row in the first bin and hide miscalibration.
    """
    if y.size == 0:
        return math.nan
    order = np.argsort(p, kind="stable")
    gaps = [
        abs(float(y[chunk].mean()) - float(p[chunk].mean())) * chunk.size
        for chunk in np.array_split(order, min(n_bins, y.size))
    ]
    return float(sum(gaps) / y.size)


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC, log loss, Brier score and ECE of probabilities ``p`` for 0/1 ``y``."""
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.clip(np.asarray(p, dtype=np.float64).ravel(), EPS, 1.0 - EPS)
    one_class = np.unique(y).size < 2
    return {
        "roc_auc": math.nan if one_class else float(roc_auc_score(y, p)),
        "pr_auc": math.nan if one_class else float(average_precision_score(y, p)),
        "log_loss": float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p))) if y.size
        else math.nan,
        "brier": float(np.mean((p - y) ** 2)) if y.size else math.nan,
        "ece": expected_calibration_error(y, p),
        "positive_rate": float(y.mean()) if y.size else math.nan,
        "mean_prediction": float(p.mean()) if y.size else math.nan,
    }


def hit_rates(
    scores: np.ndarray, engaged: np.ndarray, ks: tuple[int, ...] = HIT_KS
) -> dict[str, float]:
    """``hit_at_<k>``: share of rows (with a score and any engagement) whose top-k scored
    columns include an engaged one."""
    usable = np.isfinite(scores).all(axis=1) & (engaged > 0).any(axis=1)
    if not usable.any():
        return {f"hit_at_{k}": math.nan for k in ks}
    scores, hits = scores[usable], engaged[usable] > 0
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked_hits = np.take_along_axis(hits, order, axis=1)
    return {f"hit_at_{k}": float(ranked_hits[:, :k].any(axis=1).mean()) for k in ks}


def _conversion_scores(estimator: Any, X: np.ndarray) -> np.ndarray:
    actions = X[:, -3:].astype(np.int64)
    return np.asarray(
        estimator.predict_conversion(X[:, :-3], actions[:, 0], actions[:, 1], actions[:, 2]),
        dtype=np.float64,
    )


def evaluate(task: Task | str, estimator: Any, dataset: TaskDataset) -> dict[str, float]:
    """Metrics of ``estimator`` (a model or a baseline) on ``dataset`` (the held-out window)."""
    task = Task(task)
    X, y = dataset.X, np.asarray(dataset.y, dtype=np.float64)
    metrics: dict[str, float] = {"n_rows": float(X.shape[0])}
    if task is Task.CONVERSION:
        metrics |= binary_metrics(y, _conversion_scores(estimator, X))
    elif task is Task.CHURN:
        metrics |= binary_metrics(y, np.asarray(estimator.predict_churn(X), dtype=np.float64))
    elif task is Task.CHANNEL:
        scores = np.asarray(estimator.predict_channels(X), dtype=np.float64)
        known = np.isfinite(scores).all(axis=1)
        metrics["coverage"] = float(known.mean()) if known.size else math.nan
        metrics |= hit_rates(scores, y)
        metrics |= binary_metrics(y[known], scores[known])
    else:
        hour_profile = dataset.hour_profile  # type: ignore[attr-defined]
        scores = np.asarray(estimator.predict_hours(X, hour_profile), dtype=np.float64)
        metrics |= hit_rates(scores, y)
        metrics |= binary_metrics(y, scores)
    logger.debug("%s metrics: %s", task.value, metrics)
    return metrics
