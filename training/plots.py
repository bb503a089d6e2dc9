"""Evaluation plots logged with every training run, drawn on held-out data.

Figures are built with matplotlib's object API (``Figure`` without ``pyplot``), so no global
backend or figure registry is touched: safe in a CLI, a notebook or a test, and nothing leaks
between runs. Margins are fixed rather than computed by ``tight_layout``, which renders every
figure an extra time and was most of the plotting cost of a run. Every function takes plain
numpy arrays and returns a ``Figure``; the pipeline hands them to ``mlflow.log_figure``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

_MODEL_COLOR = "#1f77b4"
_BASELINE_COLOR = "#ff7f0e"
_FIGSIZE = (6.0, 4.5)


def _finite(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows where the score is known ("not enough data" rows are NaN and cannot be judged)."""
    keep = np.isfinite(scores)
    return y[keep], scores[keep]


def _reliability(
    y: np.ndarray, scores: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean prediction, observed rate and row count per equal-frequency bin.

    Equal-frequency bins keep every point backed by the same number of rows, which matters for
    conversion probabilities that crowd near zero.
    """
    order = np.argsort(scores, kind="stable")
    groups = [g for g in np.array_split(order, min(bins, max(len(order), 1))) if len(g)]
    mean_pred = np.array([scores[g].mean() for g in groups])
    observed = np.array([y[g].mean() for g in groups])
    counts = np.array([len(g) for g in groups])
    return mean_pred, observed, counts


def calibration_figure(
    y: np.ndarray,
    model_scores: np.ndarray,
    baseline_scores: np.ndarray | None = None,
    title: str = "Calibration on the validation window",
    bins: int = 10,
) -> Figure:
    """Reliability diagram: observed rate against mean predicted probability per bin."""
    figure = Figure(figsize=_FIGSIZE)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    curves = [("model", model_scores, _MODEL_COLOR)]
    if baseline_scores is not None:
        curves.append(("baseline", baseline_scores, _BASELINE_COLOR))
    upper = 0.0
    for label, scores, color in curves:
        labels, known = _finite(np.asarray(y, dtype=float), np.asarray(scores, dtype=float))
        if not len(known):
            continue
        mean_pred, observed, _ = _reliability(labels, known, bins)
        axes.plot(mean_pred, observed, marker="o", color=color, label=label)
        upper = max(upper, float(mean_pred.max()), float(observed.max()))
    # Zoom on the populated range: a 2 % conversion rate is invisible on a 0..1 axis.
    limit = min(1.0, max(0.05, upper * 1.1))
    axes.set_xlim(0, limit)
    axes.set_ylim(0, limit)
    axes.set_xlabel("mean predicted probability")
    axes.set_ylabel("observed rate")
    axes.set_title(title)
    axes.legend(loc="upper left")
    figure.subplots_adjust(left=0.13, right=0.96, bottom=0.12, top=0.91)
    return figure


def _cumulative_gain(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(y[order])
    share_targeted = np.arange(1, len(order) + 1) / len(order)
    share_found = hits / hits[-1] if hits[-1] > 0 else np.zeros_like(share_targeted)
    return np.concatenate([[0.0], share_targeted]), np.concatenate([[0.0], share_found])


def gain_figure(
    y: np.ndarray,
    model_scores: np.ndarray,
    baseline_scores: np.ndarray | None = None,
    title: str = "Cumulative gain and lift on the validation window",
) -> Figure:
    """Cumulative gain (share of positives found when targeting the top x %) and lift."""
    figure = Figure(figsize=(10.0, 4.5))
    gain_axes, lift_axes = figure.subplots(1, 2)
    gain_axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="random")
    curves = [("model", model_scores, _MODEL_COLOR)]
    if baseline_scores is not None:
        curves.append(("baseline", baseline_scores, _BASELINE_COLOR))
    for label, scores, color in curves:
        labels, known = _finite(np.asarray(y, dtype=float), np.asarray(scores, dtype=float))
        if not len(known):
            continue
        targeted, found = _cumulative_gain(labels, known)
        gain_axes.plot(targeted, found, color=color, label=label)
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = np.where(targeted > 0, found / targeted, np.nan)
        # The first percent is noise-dominated; start the lift curve where it means something.
        start = max(1, len(targeted) // 100)
        lift_axes.plot(targeted[start:], lift[start:], color=color, label=label)
    gain_axes.set_xlabel("share of customers targeted (by score)")
    gain_axes.set_ylabel("share of positives found")
    gain_axes.set_title("cumulative gain")
    gain_axes.legend(loc="lower right")
    lift_axes.axhline(1.0, linestyle="--", color="grey", linewidth=1)
    lift_axes.set_xlabel("share of customers targeted (by score)")
    lift_axes.set_ylabel("lift over random")
    lift_axes.set_title("lift")
    lift_axes.legend(loc="upper right")
    figure.suptitle(title)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.85, wspace=0.25)
    return figure


def importance_figure(
    importances: Mapping[str, float], title: str = "Feature importance (gain)", top: int = 25
) -> Figure:
    """Horizontal bars of the ``top`` most important features, largest on top."""
    ranked = sorted(importances.items(), key=lambda item: item[1], reverse=True)[:top]
    names = [name for name, _ in reversed(ranked)]
    values = [value for _, value in reversed(ranked)]
    figure = Figure(figsize=(7.0, max(3.0, 0.28 * len(ranked) + 1.2)))
    axes = figure.add_subplot()
    axes.barh(names, values, color=_MODEL_COLOR)
    axes.set_xlabel("importance")
    axes.set_title(title)
    # Room on the left for the longest feature name, at about 6.5 points per character.
    longest = max((len(name) for name in names), default=10)
    height = figure.get_figheight()
    figure.subplots_adjust(left=min(0.6, 0.05 + longest * 6.5 / (72 * 7.0)), right=0.97,
                           bottom=0.8 / height, top=1 - 0.45 / height)
    return figure


def confusion_figure(
    actual: np.ndarray,
    predicted: np.ndarray,
    labels: Sequence[str],
    title: str = "Engaged channel vs top predicted channel",
) -> Figure:
    """Row-normalised confusion matrix of class codes ``0..len(labels)-1``."""
    size = len(labels)
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (np.asarray(actual, dtype=int), np.asarray(predicted, dtype=int)), 1)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    figure = Figure(figsize=(6.0, 5.0))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the actual channel's rows")
    axes.set_xticks(range(size), labels=list(labels), rotation=30)
    axes.set_yticks(range(size), labels=list(labels))
    for row in range(size):
        for column in range(size):
            axes.text(
                column, row, f"{shares[row, column]:.2f}\n({counts[row, column]})",
                ha="center", va="center", fontsize=8,
                color="white" if shares[row, column] > 0.5 else "black",
            )
    axes.set_xlabel("top predicted channel")
    axes.set_ylabel("channel engaged")
    axes.set_title(title)
    figure.subplots_adjust(left=0.15, right=0.98, bottom=0.16, top=0.93)
    return figure


def hit_rate_figure(
    model_hit_rates: Sequence[float] | np.ndarray,
    baseline_hit_rates: Sequence[float] | np.ndarray | None = None,
    title: str = "Hit rate of the top-k predicted hours",
) -> Figure:
    """Share of rows whose actual engagement falls in the top ``k`` predicted slots, k = 1..K."""
    figure = Figure(figsize=_FIGSIZE)
    axes = figure.add_subplot()
    ks = np.arange(1, len(model_hit_rates) + 1)
    axes.plot(ks, model_hit_rates, marker="o", color=_MODEL_COLOR, label="model")
    if baseline_hit_rates is not None:
        axes.plot(
            ks, baseline_hit_rates, marker="s", color=_BASELINE_COLOR, label="baseline"
        )
    axes.set_xlabel("k (number of top predicted slots)")
    axes.set_ylabel("hit rate")
    axes.set_ylim(0, 1)
    axes.set_title(title)
    axes.legend(loc="lower right")
    figure.subplots_adjust(left=0.12, right=0.96, bottom=0.12, top=0.91)
    return figure
