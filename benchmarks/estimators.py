"""Benchmark: point-in-time data sets and the four models on simulated journeys.

Simulates (or loads) journeys, builds the four data sets in one feature pass, splits each by
time, fits each model and its baseline on the earlier rows and scores both on the later window.
Prints per task: rows, fit and evaluation time, the primary metric of the model and of its
baseline (with their ratio), and the time to score one customer (conversion: 120 candidate
actions) on one thread — best of many calls and the median, since on a shared CPU the median
also measures the other processes. Peak RSS and CPU time close the report.

    .venv/bin/python benchmarks/estimators.py [--customers 100000] [--days 90] [--seed 1]
                                              [--data DIR]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

# a script's folder comes first on sys.path, and benchmarks/ has scripts named like the packages
# (features.py): drop it so the imports below find the installed packages
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402

from features.contract import Col  # noqa: E402
from features.definitions import FeatureSpec  # noqa: E402
from features.io import Journeys, load_journeys  # noqa: E402
from training.datasets import DatasetConfig, TaskDataset, build_datasets, time_split  # noqa: E402
from training.fit import TaskConfig, fit_baseline, fit_task  # noqa: E402
from training.metrics import evaluate, primary_metric  # noqa: E402
from training.tasks import Task  # noqa: E402

CANDIDATES = 120
LATENCY_CALLS = 300


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _journeys(args: argparse.Namespace) -> Journeys:
    if args.data:
        return load_journeys(args.data)
    from features.simulator import SimulationConfig, simulate

    started = time.perf_counter()
    config = SimulationConfig(n_customers=args.customers, days=args.days, seed=args.seed)
    journeys = simulate(config, progress=False).journeys
    print(f"simulate {args.customers:,} customers x {args.days} days: "
          f"{time.perf_counter() - started:.1f}s (not counted below)")
    return journeys


def _latency_ms(task: Task, estimator: object, valid: TaskDataset) -> tuple[float, float]:
    """Best and median milliseconds to score one customer."""
    rng = np.random.default_rng(0)
    first = 0
    if valid.history_feature in valid.feature_names:  # a customer the model answers for
        history = valid.X[:, valid.feature_names.index(valid.history_feature)]
        first = int(np.argmax(history >= max(valid.min_history_events, 10)))
    row = np.ascontiguousarray(valid.X[first : first + 1])
    if task is Task.CONVERSION:
        features = row[:, :-3]
        message = rng.integers(0, int(valid.X[:, -3].max()) + 1, CANDIDATES)
        channel = rng.integers(0, 5, CANDIDATES)
        hour = rng.integers(8, 21, CANDIDATES)

        def call() -> object:
            return estimator.predict_conversion(  # type: ignore[attr-defined]
                features, message, channel, hour)
    elif task is Task.CHURN:
        def call() -> object:
            return estimator.predict_churn(row)  # type: ignore[attr-defined]
    elif task is Task.CHANNEL:
        def call() -> object:
            return estimator.predict_channels(row)  # type: ignore[attr-defined]
    else:
        profile = np.ascontiguousarray(valid.require_hour_profile()[first : first + 1])

        def call() -> object:
            return estimator.predict_hours(row, profile)  # type: ignore[attr-defined]
    call()
    timings = []
    for _ in range(LATENCY_CALLS):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return 1e3 * min(timings), 1e3 * float(np.median(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="load journeys instead")
    parser.add_argument("--valid-fraction", type=float, default=0.2)
    args = parser.parse_args()

    journeys = _journeys(args)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    spec = FeatureSpec.from_customers(journeys.customers,
                                      message_ids=list(journeys.catalog[Col.MESSAGE_ID]))
    started = time.perf_counter()
    datasets = build_datasets(list(Task), journeys, spec, DatasetConfig())
    build_seconds = time.perf_counter() - started
    n_events = len(journeys.events)
    rows = sum(len(d) for d in datasets.values())
    print(f"data sets: {rows:,} rows from {n_events:,} events, {len(journeys.decisions):,} "
          f"decisions in {build_seconds:.1f}s ({n_events / build_seconds:,.0f} events/s, "
          f"{rows / build_seconds:,.0f} rows/s)")
    header = (f"{'task':<11}{'train':>9}{'valid':>8}{'fit s':>8}{'eval s':>8}  "
              f"{'metric':<9}{'model':>8}{'baseline':>9}{'ratio':>7}{'best ms':>9}{'p50 ms':>8}")
    print(header)
    print("-" * len(header))
    fit_total = 0.0
    for task in Task:
        train, valid = time_split(datasets.pop(task), args.valid_fraction)
        started = time.perf_counter()
        model = fit_task(task, train, TaskConfig(random_state=args.seed))
        fit_seconds = time.perf_counter() - started
        fit_total += fit_seconds
        started = time.perf_counter()
        baseline = fit_baseline(task, train)
        ours, theirs = evaluate(task, model, valid), evaluate(task, baseline, valid)
        eval_seconds = time.perf_counter() - started
        name, greater = primary_metric(task)
        ratio = ours[name] / theirs[name] if theirs[name] else float("nan")
        best, median = _latency_ms(task, model, valid)
        print(f"{task.value:<11}{len(train):>9,}{len(valid):>8,}{fit_seconds:>8.1f}"
              f"{eval_seconds:>8.1f}  {name:<9}{ours[name]:>8.4f}{theirs[name]:>9.4f}"
              f"{ratio:>7.2f}{best:>9.3f}{median:>8.3f}")
        print(f"{'':<11}model roc_auc {ours.get('roc_auc', float('nan')):.4f} vs "
              f"{theirs.get('roc_auc', float('nan')):.4f}, log_loss {ours['log_loss']:.4f} vs "
              f"{theirs['log_loss']:.4f}, ece {ours['ece']:.4f} vs {theirs['ece']:.4f}"
              + ("" if greater else " (lower is better)"))
    elapsed = time.perf_counter() - wall
    print(f"data sets + fitting all four: {build_seconds + fit_total:.1f}s "
          f"(total with evaluation {elapsed:.1f}s, CPU {_cpu_seconds() - cpu:.1f}s on a shared "
          "machine: wall time also counts waiting for a core)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB")


if __name__ == "__main__":
    main()
