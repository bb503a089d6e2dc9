"""The Hillstrom policy benchmark with timings: the learned policy per outcome against the
single arms (IPS/SNIPS/DR, bootstrap CIs), uplift metrics, and the time of each stage.

Usage: .venv/bin/python benchmarks/hillstrom.py [--seeds 0,1,2] [--folds 5] [--bootstrap 1000]

With several seeds (fold assignments), the first seed's full tables are printed and then one
line per seed and outcome, to show how much the verdict depends on the folds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console

# Run as a script, benchmarks/ comes first on sys.path, where a module could shadow a project
# package: put the repository root first so imports resolve to the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.evaluation.hillstrom_benchmark import LEARNED, BenchmarkConfig, run_benchmark  # noqa: E402
from training.evaluation.hillstrom_report import REFERENCE_UPLIFT_AT_30, tables  # noqa: E402
from training.hillstrom import ARMS, MENS, OUTCOMES, read_hillstrom  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="0", help="Comma-separated fold/model seeds.")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=1_000)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    console = Console()

    started = time.perf_counter()
    frame = read_hillstrom()
    read_seconds = time.perf_counter() - started
    print(f"read {len(frame):,} customers in {read_seconds:.2f} s")

    verdicts = []
    for i, seed in enumerate(seeds):
        config = BenchmarkConfig(folds=args.folds, seed=seed, n_bootstrap=args.bootstrap)
        result = run_benchmark(frame, config)
        if i == 0:
            for table in tables(result):
                console.print(table)
            print(f"uplift@30 % (Womens vs none, visit): {result.uplift.uplift_at_k:.4f} "
                  f"(published reference {REFERENCE_UPLIFT_AT_30:.3f})")
        print(f"seed {seed}: benchmark {result.seconds:.1f} s ({args.folds} folds, "
              f"{args.bootstrap:,} resamples; shared CPU, figures are pessimistic)")
        for outcome in OUTCOMES:
            found = result.outcomes[outcome]
            ips = found.estimates[LEARNED]["ips"]
            mens = found.arm_means[ARMS[MENS]]
            gain = found.versus_mens["ips"]
            verdict = ips.value > mens
            verdicts.append(verdict)
            print(f"  {outcome:>10}: learned IPS {ips.value:.5f} [{ips.ci_low:.5f}, "
                  f"{ips.ci_high:.5f}] vs all-Mens {mens:.5f} ({ips.value / mens - 1:+.2%}); "
                  f"gain CI [{gain.ci_low:+.5f}, {gain.ci_high:+.5f}]; "
                  f"above all-Mens: {verdict}")
    print(f"learned policy above all-Mens (IPS point estimate): {sum(verdicts)} of "
          f"{len(verdicts)} (seed x outcome)")
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
