"""Policy value on the simulator: simulate -> train on the early window -> oracle evaluation.

    .venv/bin/python benchmarks/policy_value.py [--customers 100000] [--days 90]
        [--config default] [--data DIR] [--eval-share 0.25]

Simulates ``--customers`` customers (or reuses a simulated folder given with ``--data``), trains
the four models with the training pipeline (``--config``, default ``default``) into a throwaway
MLflow store on the journeys *before* the evaluation window (the last ``--eval-share`` of the
decision period), then evaluates the champion models on each customer's first decision in that
window: true value per 1,000 customers of every policy, nextbest's share of the oracle's lift
over random, its revenue over the best static rule and the rule-based journeys, PASS/FAIL
against issue 5's targets (share >= 0.90, revenue +20 % over both). Prints its figures; not run
by pytest. Timings on a shared machine are pessimistic.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

# run as a script from anywhere: the repository root first, before this folder (whose
# features.py would shadow the features package)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--config", default="default", help="training config (name or path)")
    parser.add_argument("--data", type=Path, default=None, help="reuse a simulated folder")
    parser.add_argument("--eval-share", type=float, default=0.25)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from features.contract import Col
    from features.io import Journeys, load_journeys
    from features.simulator import (
        SimulationConfig,
        load_simulation_truth,
        simulate,
        write_simulation,
    )
    from training.config import load_config
    from training.evaluation.command import load_registered_models
    from training.evaluation.evaluate import EvaluationConfig, evaluate_policy
    from training.evaluation.report import report_json
    from training.pipeline import train

    timings: dict[str, float] = {}
    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="nextbest-policy-value-"))
    data = args.data
    if data is None:
        config = SimulationConfig(n_customers=args.customers, days=args.days, seed=args.seed)
        data = write_simulation(simulate(config, progress=False), workdir / "sim")
        timings["simulate"] = time.perf_counter() - began
    journeys = load_journeys(data)
    truth = load_simulation_truth(data)

    ts = pd.DatetimeIndex(journeys.decisions[Col.TS])
    cutoff = ts.min() + (ts.max() - ts.min()) * (1.0 - args.eval_share)
    early = Journeys(
        events=journeys.events[pd.DatetimeIndex(journeys.events[Col.TS]) < cutoff]
        .reset_index(drop=True),
        customers=journeys.customers,
        catalog=journeys.catalog,
        decisions=journeys.decisions[ts < cutoff].reset_index(drop=True),
    )
    mark = time.perf_counter()
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    train(early, load_config(args.config), tracking_uri=uri, progress=False,
          data_source=f"{data} before {cutoff}")
    timings["train"] = time.perf_counter() - mark

    mark = time.perf_counter()
    loaded = load_registered_models("champion", uri)
    evaluation = EvaluationConfig(since=cutoff.to_pydatetime(warn=False), n_bootstrap=200)
    report = evaluate_policy(journeys, loaded, truth, evaluation, str(data))
    timings["evaluate"] = time.perf_counter() - mark
    section = report.oracle
    assert section is not None

    print(f"policy value benchmark: {journeys.customers.shape[0]:,} customers x {args.days} "  # noqa: T201
          f"days, training config '{args.config}', {report.n_rows:,} evaluated customers "
          f"(first decision at or after {cutoff:%Y-%m-%d %H:%M} UTC)")
    print(f"{'policy':<13}{'conversions':>13}{'revenue':>11}{'net value':>11}"  # noqa: T201
          f"{'sends':>7}{'share of oracle lift':>22}   (per 1,000 customers)")
    for name in ("no_contact", "random", "static_rule", "journeys", "nextbest", "oracle"):
        v = section.values[name]
        print(f"{name:<13}{v.conversions:>13.2f}{v.revenue:>11.1f}{v.net_value:>11.1f}"  # noqa: T201
              f"{v.send_share:>7.0%}{section.share[name]:>22.3f}")
    message, channel, hour = section.static_action
    print(f"best static rule: {message} / {channel} / {hour:02d}:00 local")  # noqa: T201
    print(f"nextbest revenue vs static rule: {section.revenue_gain['static_rule']:+.1%}; "  # noqa: T201
          f"vs journeys: {section.revenue_gain['journeys']:+.1%}")
    for target, met in section.targets.items():
        print(f"target {target}: {'PASS' if met else 'FAIL'}")  # noqa: T201
    conversion = loaded.models.conversion
    trees = getattr(getattr(conversion, "model_", None), "best_iteration", None)
    gains = getattr(conversion, "context_importances_", None) or {}
    top = sorted(gains.items(), key=lambda kv: -kv[1])[:6]
    print(f"conversion model: {trees} trees; top action-context gains: "  # noqa: T201
          + ", ".join(f"{name} {gain:.0f}" for name, gain in top))
    print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())  # noqa: T201
          + " | evaluate: " + ", ".join(f"{k} {v:.0f}" for k, v in report.seconds.items()))
    if args.json is not None:
        args.json.write_text(report_json(report))


if __name__ == "__main__":
    main()
