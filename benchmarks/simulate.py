"""Benchmark: simulate 100,000 customers x 90 days, then write them as Parquet.

Targets (issue 2): simulation <= 60 s and peak RSS <= 4 GB on a 2-core machine. Prints the
simulate and write times separately, rows/s for events and for all rows, the process CPU time
(on a shared machine wall time also counts waiting for a core), and PASS/FAIL per target.

    .venv/bin/python benchmarks/simulate.py [--customers N] [--days D] [--seed S] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

# a script's folder comes first on sys.path, and benchmarks/ has scripts named like the packages
# (features.py): drop it so the imports below find the installed packages
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from features.simulator import SimulationConfig, simulate, write_simulation  # noqa: E402

TARGET_SECONDS = 60.0
TARGET_RSS_GB = 4.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the output here")
    args = parser.parse_args()
    config = SimulationConfig(n_customers=args.customers, days=args.days, seed=args.seed)

    load = os.getloadavg()[0]
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    sim = simulate(config, progress=False)
    simulate_wall, simulate_cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    rss_after_simulate = _peak_rss_gb()

    j = sim.journeys
    n_events = len(j.events)
    n_rows = (n_events + len(j.customers) + len(j.catalog) + len(j.decisions)
              + len(sim.truth.latent) + len(sim.truth.decision_states))
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "journeys"
        cpu1, wall1 = _cpu_seconds(), time.perf_counter()
        write_simulation(sim, out, fmt="parquet")
        write_wall, write_cpu = time.perf_counter() - wall1, _cpu_seconds() - cpu1
        size_mb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1024**2
    peak = _peak_rss_gb()

    print(f"simulate {args.customers:,} customers x {args.days} days (seed {args.seed}), "
          f"load average before start {load:.1f} on {os.cpu_count()} cores")
    print(f"  events            {n_events:>12,}")
    print(f"  decisions         {len(j.decisions):>12,}")
    print(f"  all rows          {n_rows:>12,}  (4 tables + latent + decision_states)")
    print(f"  simulate          {simulate_wall:8.1f} s wall  {simulate_cpu:8.1f} s cpu   "
          f"{n_events / simulate_wall:>12,.0f} events/s  {n_rows / simulate_wall:>12,.0f} rows/s")
    print(f"  write parquet     {write_wall:8.1f} s wall  {write_cpu:8.1f} s cpu   "
          f"{n_events / write_wall:>12,.0f} events/s  {size_mb:8.0f} MB on disk")
    print(f"  peak RSS          {peak:8.2f} GB (after simulate {rss_after_simulate:.2f} GB)")
    time_ok = simulate_wall <= TARGET_SECONDS
    rss_ok = peak <= TARGET_RSS_GB
    print(f"  simulate <= {TARGET_SECONDS:.0f} s : {'PASS' if time_ok else 'FAIL'} "
          f"({simulate_wall / TARGET_SECONDS:.2f} of the budget)")
    print(f"  peak RSS <= {TARGET_RSS_GB:.0f} GB: {'PASS' if rss_ok else 'FAIL'} "
          f"({peak / TARGET_RSS_GB:.2f} of the budget)")


if __name__ == "__main__":
    main()
