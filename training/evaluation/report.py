"""Showing an evaluation: rich tables for people, JSON for machines, an MLflow run with plots.

The MLflow run goes to the experiment ``nextbest-evaluation``: parameters (data, models, window,
bootstrap), one metric per (section, policy, metric), the report as JSON and two figures —
policy values with their confidence intervals, and the net lift by journey stage.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Final

import numpy as np
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from training.evaluation.evaluate import (
    JOURNEYS,
    NEXTBEST,
    ORACLE,
    STATIC_RULE,
    EvaluationReport,
)
from training.evaluation.ope import DR, IPS, SNIPS
from training.evaluation.oracle_values import CONVERSIONS, NET_VALUE, REVENUE

logger = logging.getLogger(__name__)

EXPERIMENT: Final = "nextbest-evaluation"
POLICY_ORDER: Final = ("no_contact", "random", "static_rule", "journeys", "nextbest", "oracle")
_METRIC_LABEL: Final = {CONVERSIONS: "conv.", REVENUE: "revenue", NET_VALUE: "net"}


def as_jsonable(value: Any) -> Any:
    """Floats that are not finite become ``None``; numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): as_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def report_dict(report: EvaluationReport) -> dict[str, object]:
    """The whole report as plain JSON-able data (non-finite numbers become null)."""
    out: dict[str, object] = {
        "data": report.data,
        "models": report.models,
        "window": report.window,
        "n_rows": report.n_rows,
        "config": report.config.model_dump(mode="json"),
        "seconds": {k: round(v, 3) for k, v in report.seconds.items()},
        "off_policy": report.ope.as_dict(),
    }
    if report.ope_truth:
        out["off_policy_truth"] = _coverage(report)
    if report.oracle is not None:
        section = report.oracle
        message, channel, hour = section.static_action
        out["oracle"] = {
            "per": 1000,
            "policies": {name: v.as_dict() for name, v in section.values.items()},
            "share_of_oracle_lift": section.share,
            "nextbest_revenue_gain": section.revenue_gain,
            "static_rule": {"message_id": message, "channel": channel, "local_hour": hour},
            "candidates_per_row": section.candidates_per_row,
            "targets": section.targets,
            "by_stage": section.by_stage.to_dict(orient="records"),
        }
    if report.lift is not None:
        out["control_group_lift"] = report.lift.to_dict(orient="records")
    return as_jsonable(out)  # type: ignore[no-any-return]


def report_json(report: EvaluationReport) -> str:
    return json.dumps(report_dict(report), indent=2, default=str)


def _coverage(report: EvaluationReport) -> dict[str, dict[str, dict[str, object]]]:
    """For each policy and metric: the true value and whether each method's CI covers it."""
    result: dict[str, dict[str, dict[str, object]]] = {}
    for policy, truths in report.ope_truth.items():
        estimates = report.ope.estimates.get(policy, {})
        for metric, true_value in truths.items():
            entry: dict[str, object] = {"true": true_value}
            for method, estimate in estimates.get(metric, {}).items():
                entry[f"{method}_covers"] = bool(estimate.ci_low <= true_value <= estimate.ci_high)
            result.setdefault(policy, {})[metric] = entry
    return result


def _fmt(value: float, digits: int = 1) -> str:
    return "—" if not math.isfinite(value) else f"{value:,.{digits}f}"


def print_report(report: EvaluationReport, console: Console) -> None:
    """Tables: oracle values and targets (with truth), off-policy estimates, lift."""
    console.print(f"[bold]nextbest evaluate[/] — {report.data}: {report.n_rows:,} decisions "
                  f"({report.window['first']} .. {report.window['last']})")
    if report.oracle is not None:
        section = report.oracle
        table = Table(title="True expected value per 1,000 customers (simulator oracle)")
        for column in ("policy", "conversions", "revenue", "net value", "sends",
                       "share of oracle lift"):
            table.add_column(column, justify="right" if column != "policy" else "left")
        for name in POLICY_ORDER:
            v = section.values[name]
            table.add_row(name, _fmt(v.conversions, 2), _fmt(v.revenue), _fmt(v.net_value),
                          f"{v.send_share:.0%}", _fmt(section.share[name], 3))
        console.print(table)
        message, channel, hour = section.static_action
        console.print(f"best static rule (hindsight): {message} on {channel} at {hour:02d}:00")
        for rival in (STATIC_RULE, JOURNEYS):
            gain = section.revenue_gain[rival]
            console.print(f"nextbest revenue vs {rival}: {gain:+.1%}")
        for target, met in section.targets.items():
            console.print(f"target {target}: {'[green]PASS[/]' if met else '[red]FAIL[/]'}")
    level = f"{report.config.confidence:.0%}"
    ope = Table(title=f"Off-policy estimates per 1,000 decisions [{level} bootstrap CI]")
    for column in ("policy", "metric", "IPS", "SNIPS", "DR", "ESS", "true"):
        ope.add_column(column, justify="left" if column in ("policy", "metric") else "right",
                       no_wrap=column in ("policy", "metric"))
    for policy, by_metric in report.ope.estimates.items():
        for metric, by_method in by_metric.items():
            cells = []
            for method in (IPS, SNIPS, DR):
                e = by_method.get(method)
                digits = 1 if metric == CONVERSIONS else 0
                cells.append("—" if e is None else f"{_fmt(e.value, digits)} "
                             f"[{_fmt(e.ci_low, digits)}, {_fmt(e.ci_high, digits)}]")
            true = report.ope_truth.get(policy, {}).get(metric, float("nan"))
            ope.add_row(policy, _METRIC_LABEL[metric], *cells,
                        _fmt(report.ope.ess[policy], 0),
                        _fmt(true, 1 if metric == CONVERSIONS else 0))
    console.print(ope)
    if report.lift is not None:
        console.print(report.lift.to_string(index=False))


def values_figure(report: EvaluationReport) -> Figure:
    """Net value per 1,000 of each policy: true values (bars) and SNIPS/DR estimates with
    their intervals (error bars)."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_axes((0.1, 0.2, 0.85, 0.7))
    policies = [p for p in POLICY_ORDER if p in report.ope.estimates
                or (report.oracle is not None and p in report.oracle.values)]
    x = np.arange(len(policies))
    if report.oracle is not None:
        truth = [report.oracle.values[p].net_value if p in report.oracle.values else np.nan
                 for p in policies]
        ax.bar(x, truth, width=0.5, color="#c7d7ea", label="true (oracle)")
    for offset, method, color in ((-0.12, SNIPS, "#ff7f0e"), (0.12, DR, "#1f77b4")):
        points, low, high = [], [], []
        for p in policies:
            e = report.ope.estimates.get(p, {}).get(NET_VALUE, {}).get(method)
            points.append(np.nan if e is None else e.value)
            low.append(np.nan if e is None else e.value - e.ci_low)
            high.append(np.nan if e is None else e.ci_high - e.value)
        ax.errorbar(x + offset, points, yerr=[low, high], fmt="o", color=color, capsize=3,
                    label=f"{method.upper()} estimate, {report.config.confidence:.0%} CI")
    ax.set_xticks(x, policies, rotation=20)
    ax.set_ylabel("net value per 1,000 decisions")
    ax.set_title("Policy values")
    ax.legend(fontsize=8)
    return fig


def stage_figure(report: EvaluationReport) -> Figure | None:
    """Net lift over no contact by journey stage for nextbest, journeys and the oracle."""
    if report.oracle is None:
        return None
    frame = report.oracle.by_stage
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_axes((0.1, 0.15, 0.85, 0.75))
    x = np.arange(len(frame))
    for k, name in enumerate((NEXTBEST, JOURNEYS, ORACLE)):
        ax.bar(x + (k - 1) * 0.27, frame[f"{name}_net_lift"], width=0.27, label=name)
    ax.set_xticks(x, frame["stage"].astype(str))
    ax.set_ylabel("net value over no contact, per 1,000")
    ax.set_title("Lift by journey stage")
    ax.legend(fontsize=8)
    return fig


def log_report(report: EvaluationReport, tracking_uri: str | None) -> str:
    """Log the report as one MLflow run in ``nextbest-evaluation``; returns the run id."""
    import mlflow

    from training.tracking import configure_tracking

    configure_tracking(tracking_uri, EXPERIMENT)
    with mlflow.start_run(run_name=f"evaluate-{report.data.rsplit('/', 1)[-1]}") as run:
        mlflow.set_tags({"nextbest.kind": "evaluate", "data.source": report.data})
        params = {"data": report.data, "n_rows": report.n_rows,
                  **{f"model.{k}": v for k, v in report.models.items()},
                  **{f"window.{k}": v for k, v in report.window.items()},
                  **{f"config.{k}": v for k, v in report.config.model_dump(mode="json").items()}}
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        metrics: dict[str, float] = {}
        if report.oracle is not None:
            for name, value in report.oracle.values.items():
                for metric in (CONVERSIONS, REVENUE, NET_VALUE):
                    metrics[f"oracle.{name}.{metric}"] = value.metric(metric)
                metrics[f"oracle.{name}.share_of_oracle_lift"] = report.oracle.share[name]
            for rival, gain in report.oracle.revenue_gain.items():
                metrics[f"oracle.nextbest.revenue_gain_vs_{rival}"] = gain
        for policy, by_metric in report.ope.estimates.items():
            metrics[f"ope.{policy}.ess"] = report.ope.ess[policy]
            for metric, by_method in by_metric.items():
                for method, e in by_method.items():
                    metrics[f"ope.{policy}.{metric}.{method}"] = e.value
                    metrics[f"ope.{policy}.{metric}.{method}.ci_low"] = e.ci_low
                    metrics[f"ope.{policy}.{metric}.{method}.ci_high"] = e.ci_high
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
        mlflow.log_dict(report_dict(report), "evaluation/report.json")
        mlflow.log_figure(values_figure(report), "evaluation/policy_values.png")
        stages = stage_figure(report)
        if stages is not None:
            mlflow.log_figure(stages, "evaluation/lift_by_stage.png")
        return str(run.info.run_id)
