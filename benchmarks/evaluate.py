"""``nextbest evaluate`` on 100,000 logged decisions with 1,000 bootstrap resamples: <= 60 s?

    .venv/bin/python benchmarks/evaluate.py [--customers 40000] [--decisions 100000]
        [--bootstrap 1000] [--data DIR] [--config fast] [--models URI] [--jobs N]

Setup (not timed): simulates ``--customers`` customers over 90 days (or reuses ``--data``; the
window before the evaluated decisions must span the training windows, about 70 days),
trains the four models with the training pipeline (``--config``) into a throwaway MLflow store
on everything before the last ``--decisions`` logged decisions (``--models``: reuse the MLflow
store of an earlier run on the same ``--data``, which holds those same models). Timed: the
evaluation of those decisions exactly as ``nextbest evaluate`` runs it — loading the champion
models from the registry, features, the decision engine on every row (in ``--jobs`` worker
processes, default one per CPU), the oracle section, the off-policy section (IPS, SNIPS, DR for
six policies x three metrics on shared bootstrap resamples). Prints the time of each stage, the
total, the CPU time of this process and its workers, and PASS/FAIL against the 60 s target. Not
run by pytest; timings on a shared machine are pessimistic.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

# the repository root first, before this folder (whose features.py would shadow the package)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=40_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--config", default="fast")
    parser.add_argument("--data", type=Path, default=None, help="reuse a simulated folder")
    parser.add_argument("--models", default=None,
                        help="reuse an MLflow tracking URI trained on the same --data")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes deciding the rows (default: one per CPU)")
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
    from training.pipeline import train

    workdir = (Path(tempfile.mkdtemp(prefix="nextbest-evaluate-bench-"))
               if args.data is None or args.models is None else Path())
    data = args.data
    if data is None:
        config = SimulationConfig(n_customers=args.customers, days=args.days, seed=3)
        data = write_simulation(simulate(config, progress=False), workdir / "sim")
    journeys = load_journeys(data)
    ts = pd.DatetimeIndex(journeys.decisions[Col.TS]).sort_values()
    if len(ts) <= args.decisions:
        raise SystemExit(f"{data}: only {len(ts):,} decisions; simulate more customers")
    since = ts[-args.decisions]
    early = Journeys(
        events=journeys.events[pd.DatetimeIndex(journeys.events[Col.TS]) < since]
        .reset_index(drop=True),
        customers=journeys.customers, catalog=journeys.catalog,
        decisions=journeys.decisions[pd.DatetimeIndex(journeys.decisions[Col.TS]) < since]
        .reset_index(drop=True),
    )
    uri = args.models
    if uri is None:
        uri = f"sqlite:///{workdir / 'mlflow.db'}"
        train(early, load_config(args.config), tracking_uri=uri, progress=False)

    began, cpu_began = time.perf_counter(), _cpu_seconds()
    loaded = load_registered_models("champion", uri)
    truth = load_simulation_truth(data)
    loading = time.perf_counter() - began
    report = evaluate_policy(
        journeys, loaded, truth,
        EvaluationConfig(since=since.to_pydatetime(warn=False), decisions_per_customer=None,
                         n_bootstrap=args.bootstrap, jobs=args.jobs),
        str(data),
    )
    total, cpu = time.perf_counter() - began, _cpu_seconds() - cpu_began
    stages = {"load models + truth": loading, **report.seconds}
    print(f"nextbest evaluate: {report.n_rows:,} logged decisions, {args.bootstrap} bootstrap "  # noqa: T201
          f"resamples, {len(report.ope.estimates)} policies x 3 metrics")
    for stage, seconds in stages.items():
        print(f"  {stage:<20} {seconds:8.1f} s")  # noqa: T201
    verdict = "PASS" if total <= TARGET_SECONDS else "FAIL"
    print(f"total {total:.1f} s (target <= {TARGET_SECONDS:.0f} s): {verdict}; "  # noqa: T201
          f"off-policy section alone {report.seconds.get('ope', float('nan')):.1f} s")
    # on a shared machine the wall clock mostly measures the other jobs: the CPU time of the
    # process (all its threads) and of its decision workers says what the evaluation costs
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"process CPU time {cpu:.1f} s, workers included (wall {total:.1f} s; "  # noqa: T201
          f"load average {load})")


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that ended (the decision workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


if __name__ == "__main__":
    main()
