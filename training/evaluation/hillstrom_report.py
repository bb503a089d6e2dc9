"""Presenting a Hillstrom benchmark run: a JSON-ready summary, rich tables, plots and the MLflow
run (params, metrics with stable names, the summary, the plots)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from rich.table import Table

from training.evaluation.hillstrom_benchmark import (
    ALL_ARM_POLICIES,
    BASELINE,
    LEARNED,
    BenchmarkResult,
)
from training.evaluation.ope import DR, IPS, SNIPS, PolicyEstimate
from training.hillstrom import ARMS, MENS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

EXPERIMENT = "nextbest-hillstrom"
#: uplift@30 % of the Womens-vs-none visit uplift reported in the uplift literature.
REFERENCE_UPLIFT_AT_30 = 0.066
_METHODS = (IPS, SNIPS, DR)


def _estimate_dict(estimate: PolicyEstimate) -> dict[str, Any]:
    return estimate.as_dict()


def summary(result: BenchmarkResult) -> dict[str, Any]:
    """Everything the run found, as plain JSON-serialisable data."""
    outcomes: dict[str, Any] = {}
    for name, outcome in result.outcomes.items():
        learned_ips = outcome.estimates[LEARNED][IPS].value
        outcomes[name] = {
            "arm_means": outcome.arm_means,
            "policies": {
                policy: {m: _estimate_dict(e) for m, e in by_method.items()}
                for policy, by_method in outcome.estimates.items()
            },
            "learned_minus_all_mens": {
                m: _estimate_dict(e) for m, e in outcome.versus_mens.items()
            },
            "learned_policy_shares": outcome.policy_shares,
            "learned_rules_on_all_rows": outcome.rules,
            "learned_ips_above_all_mens": learned_ips > outcome.arm_means[ARMS[MENS]],
        }
    uplift = result.uplift
    return {
        "n_rows": result.n_rows,
        "seconds": round(result.seconds, 2),
        "config": result.config.model_dump(),
        "outcomes": outcomes,
        "uplift_womens_vs_none_visit": {
            "qini_coefficient": uplift.qini_coefficient,
            "auuc": uplift.auuc,
            "auuc_random": uplift.auuc_random,
            f"uplift_at_{round(uplift.k * 100)}": uplift.uplift_at_k,
            "reference_uplift_at_30": REFERENCE_UPLIFT_AT_30,
            "n_rows": uplift.n_rows,
        },
    }


def metrics(result: BenchmarkResult) -> dict[str, float]:
    """Flat metrics with stable names, e.g. ``ips_visit``, ``ips_visit_ci_low``,
    ``ips_visit_gain_vs_mens``, ``arm_mens_visit``, ``qini_visit_womens``."""
    flat: dict[str, float] = {}
    for name, outcome in result.outcomes.items():
        for method, estimate in outcome.estimates[LEARNED].items():
            flat[f"{method}_{name}"] = estimate.value
            flat[f"{method}_{name}_ci_low"] = estimate.ci_low
            flat[f"{method}_{name}_ci_high"] = estimate.ci_high
        for method, estimate in outcome.versus_mens.items():
            flat[f"{method}_{name}_gain_vs_mens"] = estimate.value
            flat[f"{method}_{name}_gain_vs_mens_ci_low"] = estimate.ci_low
            flat[f"{method}_{name}_gain_vs_mens_ci_high"] = estimate.ci_high
        flat[f"ess_{name}"] = outcome.estimates[LEARNED][IPS].ess
        for arm, mean in outcome.arm_means.items():
            flat[f"arm_{arm}_{name}"] = mean
        for arm, share in outcome.policy_shares.items():
            flat[f"share_{arm}_{name}"] = share
    flat["qini_visit_womens"] = result.uplift.qini_coefficient
    flat["auuc_visit_womens"] = result.uplift.auuc
    flat[f"uplift_at_{round(result.uplift.k * 100)}_visit_womens"] = result.uplift.uplift_at_k
    flat["seconds"] = result.seconds
    return flat


def _fmt(value: float, outcome: str) -> str:
    return f"${value:.3f}" if outcome == "spend" else f"{100 * value:.2f} %"


def _bare(value: float, outcome: str) -> str:
    return f"{value:.3f}" if outcome == "spend" else f"{100 * value:.2f}"


def _with_ci(estimate: PolicyEstimate, outcome: str) -> str:
    """The value, and its interval on a second line in the same unit."""
    return (f"{_fmt(estimate.value, outcome)}\n"
            f"[{_bare(estimate.ci_low, outcome)}, {_bare(estimate.ci_high, outcome)}]")


def tables(result: BenchmarkResult) -> list[Table]:
    """Rich tables: policy values per outcome, learned minus all-Mens, the learned rules and the
    uplift metrics."""
    confidence = f"{result.config.confidence:.0%}"
    values = Table(title=f"Hillstrom: policy value per customer (IPS/SNIPS/DR, {confidence} CI, "
                   f"{result.config.folds}-fold cross-fitted, n={result.n_rows:,})")
    for column in ("outcome", "policy", "IPS", "SNIPS", "DR", "observed arm mean"):
        values.add_column(column, justify="left" if column in ("outcome", "policy") else "right")
    for name, outcome in result.outcomes.items():
        for policy in (LEARNED, *ALL_ARM_POLICIES):
            row = outcome.estimates[policy]
            arm = policy.removeprefix("all_")
            observed = _fmt(outcome.arm_means[arm], name) if arm in outcome.arm_means else ""
            values.add_row(name if policy == LEARNED else "", policy,
                           *(_with_ci(row[m], name) for m in _METHODS), observed,
                           style="bold" if policy == LEARNED else None)
        values.add_section()

    gains = Table(title=f"Learned policy minus {BASELINE} (paired bootstrap, {confidence} CI; "
                  "percentage points for visit and conversion)")
    for column in ("outcome", "IPS", "SNIPS", "DR", "ESS", "none/mens/womens"):
        gains.add_column(column, justify="left" if column == "outcome" else "right")
    rules = Table(title="Learned policy, fitted on all rows")
    rules.add_column("outcome")
    rules.add_column("segment: e-mail")
    for name, outcome in result.outcomes.items():
        shares = " / ".join(f"{100 * outcome.policy_shares[a]:.0f} %" for a in ARMS)
        gains.add_row(name, *(_with_ci(outcome.versus_mens[m], name) for m in _METHODS),
                      f"{outcome.estimates[LEARNED][IPS].ess:,.0f}", shares)
        rules.add_row(name, "\n".join(outcome.rules))
        rules.add_section()

    uplift = result.uplift
    lift = Table(title=f"Womens e-mail vs none, visit uplift (cross-fitted T-learner, "
                 f"n={uplift.n_rows:,})")
    for column in ("Qini coefficient", "AUUC (random)", f"uplift@{uplift.k:.0%}",
                   "published uplift@30%"):
        lift.add_column(column, justify="right")
    lift.add_row(f"{uplift.qini_coefficient:.5f}", f"{uplift.auuc:.5f} ({uplift.auuc_random:.5f})",
                 f"{uplift.uplift_at_k:.4f}", f"{REFERENCE_UPLIFT_AT_30:.3f}")
    return [values, gains, rules, lift]


def policy_value_figure(result: BenchmarkResult) -> Figure:
    """Per outcome: the learned policy (IPS, SNIPS, DR) and the single arms with their CIs."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 4), layout="constrained")
    axes = figure.subplots(1, len(result.outcomes))
    for ax, (name, outcome) in zip(axes, result.outcomes.items(), strict=True):
        labels, points, lows, highs, colours = [], [], [], [], []
        for method in _METHODS:
            labels.append(f"learned\n{method.upper()}")
            estimate = outcome.estimates[LEARNED][method]
            points.append(estimate.value)
            lows.append(estimate.ci_low)
            highs.append(estimate.ci_high)
            colours.append("tab:blue")
        for policy in ALL_ARM_POLICIES:
            estimate = outcome.estimates[policy][IPS]
            labels.append(policy.replace("_", "-") + "\nIPS")
            points.append(estimate.value)
            lows.append(estimate.ci_low)
            highs.append(estimate.ci_high)
            colours.append("tab:orange" if policy == BASELINE else "tab:gray")
        for i, (point, low, high, colour) in enumerate(
            zip(points, lows, highs, colours, strict=True)
        ):
            ax.errorbar(i, point, yerr=[[point - low], [high - point]], fmt="o", color=colour,
                        capsize=4)
        ax.axhline(outcome.arm_means[ARMS[MENS]], color="tab:orange", linestyle="--",
                   linewidth=1, label="all-Mens observed")
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_title(name)
        ax.set_ylabel("value per customer")
        ax.legend(fontsize=7)
    figure.suptitle(f"Hillstrom policy values with {result.config.confidence:.0%} bootstrap CIs")
    return figure


def qini_figure(result: BenchmarkResult) -> Figure:
    """The Qini curve of the Womens-vs-none visit uplift scores against random targeting."""
    from matplotlib.figure import Figure

    uplift = result.uplift
    figure = Figure(figsize=(6, 4.5), layout="constrained")
    ax = figure.subplots()
    ax.plot(uplift.qini_fraction, uplift.qini_values, label="cross-fitted T-learner")
    ax.plot([0, 1], [0, uplift.qini_values[-1]], linestyle="--", color="gray", label="random")
    ax.set_xlabel("fraction of customers targeted (by predicted uplift)")
    ax.set_ylabel("incremental visits per customer (Qini)")
    ax.set_title(f"Womens e-mail vs none, visit: Qini coefficient {uplift.qini_coefficient:.4f}")
    ax.legend()
    return figure


def _flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def log_to_mlflow(result: BenchmarkResult, tracking_uri: str | None = None) -> str:
    """Log the run to the ``nextbest-hillstrom`` experiment; returns the run id."""
    import mlflow

    from training.tracking import configure_tracking

    configure_tracking(tracking_uri, experiment=EXPERIMENT)
    with mlflow.start_run(run_name=f"hillstrom-seed{result.config.seed}") as run:
        mlflow.set_tag("nextbest.benchmark", "hillstrom")
        mlflow.log_params(_flat_params(result.config.model_dump()) | {"n_rows": result.n_rows})
        mlflow.log_metrics(metrics(result))
        mlflow.log_dict(summary(result), "hillstrom_benchmark.json")
        mlflow.log_figure(policy_value_figure(result), "plots/policy_values.png")
        mlflow.log_figure(qini_figure(result), "plots/qini_visit_womens.png")
        run_id: str = run.info.run_id
    logger.info("logged Hillstrom benchmark to MLflow run %s", run_id)
    return run_id
