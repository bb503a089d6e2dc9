"""Benchmark: the whole training pipeline on 100,000 simulated customers x 90 days.

Target (issue 3): building the features of all four data sets, fitting all four models and their
baselines, evaluating them, logging everything to MLflow and registering (with the promotion
gate) in <= 5 minutes, with peak RSS <= 6 GB, on this 2-core machine. Loading and validating the
files (``features.io.load_journeys``, which ``nextbest train`` also runs) is timed and shown
separately.

The simulation is made first in a child process (timed, not counted, its memory not counted) and
kept in ``--data`` for the next run. The training is ``training.pipeline.train`` with
``training/configs/default.yaml``, into a fresh temporary MLflow SQLite store. Prints the time
of every stage, feature-building throughput (events/s), each model's primary metric next to its
baseline's, the process CPU time (on a shared machine wall time also counts waiting for a core),
and PASS/FAIL per target.

    .venv/bin/python benchmarks/train.py [--customers N] [--days D] [--data DIR] [--config NAME]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# A script's folder comes first on sys.path, and benchmarks/ holds scripts named like the
# packages (features.py): drop it so the imports below find the installed packages.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from features.io import load_journeys  # noqa: E402
from training.config import load_config  # noqa: E402
from training.pipeline import STAGES, train  # noqa: E402
from training.runner import quiet_mlflow  # noqa: E402

TARGET_SECONDS = 300.0
TARGET_RSS_GB = 6.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def _same_simulation(data: Path, customers: int, days: int, seed: int) -> bool:
    params = data / "truth" / "params.json"
    if not params.exists():
        return False
    saved = json.loads(params.read_text())
    return (saved.get("n_customers"), saved.get("days"), saved.get("seed")) == (
        customers, days, seed
    )


def simulate_once(data: Path, customers: int, days: int, seed: int) -> float | None:
    """Simulate into ``data`` in a child process unless it is already there; its seconds."""
    if _same_simulation(data, customers, days, seed):
        return None
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "training.cli", "simulate", "--customers", str(customers),
         "--days", str(days), "--seed", str(seed), "--out", str(data), "--no-progress"],
        check=True,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=Path("benchmarks/out/sim-train"),
                        help="simulation folder, reused when its parameters match")
    parser.add_argument("--config", default="default", help="training configuration")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    print(f"nextbest training benchmark: {args.customers:,} customers x {args.days} days, "
          f"config {args.config}, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    sim_seconds = simulate_once(args.data, args.customers, args.days, args.seed)
    print("simulation (not counted): "
          + ("reused " + str(args.data) if sim_seconds is None else f"{sim_seconds:.1f} s"))

    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    journeys = load_journeys(args.data)
    load_seconds, load_cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    n_events = len(journeys.events)
    config = load_config(args.config)
    cpu1, wall1 = _cpu_seconds(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nextbest-bench-") as store, quiet_mlflow():
        summary = train(journeys, config, tracking_uri=f"sqlite:///{store}/mlflow.db",
                        progress=False, data_source=str(args.data))
    total, cpu = time.perf_counter() - wall1, _cpu_seconds() - cpu1
    peak = _peak_rss_gb()

    print(f"\ndata: {n_events:,} events, {len(journeys.customers):,} customers, "
          f"{len(journeys.decisions):,} decisions")
    print(f"load + validate the files (not counted): {load_seconds:.1f} s wall, "
          f"{load_cpu:.1f} s CPU")
    header = f"{'task':<11}" + "".join(f"{s:>10}" for s in STAGES) + f"{'rows':>10}"
    print("\nseconds per stage\n" + header)
    for result in summary.results:
        print(f"{result.task.value:<11}"
              + "".join(f"{result.seconds.get(s, 0.0):>10.1f}" for s in STAGES)
              + f"{result.rows['train'] + result.rows['valid']:>10,}")
    other = total - summary.feature_seconds - sum(sum(r.seconds.values()) for r in summary.results)
    print(f"(set-up: tracking store, feature spec, parent run: {other:.1f} s)")
    rows = sum(r.rows["train"] + r.rows["valid"] for r in summary.results)
    print(f"\nfeature building (the four data sets, one pass): {summary.feature_seconds:.1f} s — "
          f"{n_events / summary.feature_seconds:,.0f} events/s over {n_events:,} events, "
          f"{rows / summary.feature_seconds:,.0f} rows/s")

    print(f"\n{'task':<11}{'metric':<10}{'model':>9}{'baseline':>10}  beats baseline")
    for result in summary.results:
        metric = result.primary_metric
        print(f"{result.task.value:<11}{metric:<10}{result.metrics[metric]:>9.4f}"
              f"{result.baseline_metrics[metric]:>10.4f}  "
              f"{'yes' if result.beats_baseline else 'NO'}"
              f"{'' if result.greater_is_better else ' (lower is better)'}")

    time_ok, rss_ok = total <= TARGET_SECONDS, peak <= TARGET_RSS_GB
    print(f"\nfeatures + 4 models + baselines + MLflow + registry: {total:.1f} s wall, "
          f"{cpu:.1f} s CPU — target <= {TARGET_SECONDS:.0f} s: {'PASS' if time_ok else 'FAIL'}")
    print(f"with loading the files: {total + load_seconds:.1f} s wall, "
          f"{cpu + load_cpu:.1f} s CPU")
    print(f"peak RSS: {peak:.2f} GB — target <= {TARGET_RSS_GB:.0f} GB: "
          f"{'PASS' if rss_ok else 'FAIL'}")
    return 0 if time_ok and rss_ok else 1


if __name__ == "__main__":
    sys.exit(main())
