"""Off-policy evaluation speed: IPS, SNIPS and DR with 1,000 bootstrap resamples on 100,000
synthetic logged decisions (target: <= 60 s for everything, on 2 cores).

Usage: .venv/bin/python benchmarks/ope.py [--rows 100000] [--actions 10] [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# Run as a script, benchmarks/ comes first on sys.path, where a module could shadow a project
# package: put the repository root first so imports resolve to the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.evaluation.ope import DR, IPS, SNIPS, LoggedDecisions, evaluate_policies  # noqa: E402

TARGET_SECONDS = 60.0


def synthetic_log(
    n: int, n_actions: int, seed: int
) -> tuple[LoggedDecisions, np.ndarray, np.ndarray]:
    """A randomised log with known reward probabilities; returns (log, truth, a reward model)."""
    rng = np.random.default_rng(seed)
    contexts = rng.normal(size=(n, 8))
    truth = 1.0 / (1.0 + np.exp(-(contexts @ rng.normal(size=(8, n_actions)) * 0.5 - 2.0)))
    logits = rng.normal(size=(n, n_actions))
    logging = 0.05 + 0.95 * np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    logging /= logging.sum(axis=1, keepdims=True)
    actions = (logging.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    actions = np.minimum(actions, n_actions - 1)
    rows = np.arange(n)
    rewards = (rng.random(n) < truth[rows, actions]).astype(float)
    model = np.clip(truth + rng.normal(0.0, 0.03, truth.shape), 0.0, 1.0)
    return LoggedDecisions(actions, rewards, logging[rows, actions], n_actions), truth, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--actions", type=int, default=10)
    parser.add_argument("--bootstrap", type=int, default=1_000)
    args = parser.parse_args()

    log, truth, model = synthetic_log(args.rows, args.actions, seed=0)
    target = model.argmax(axis=1)
    true_value = truth[np.arange(args.rows), target].mean()
    print(f"{args.rows:,} logged decisions, {args.actions} actions, "
          f"{args.bootstrap:,} bootstrap resamples; true value of the target {true_value:.4f}")

    timings: dict[str, float] = {}
    for methods in ((IPS,), (SNIPS,), (DR,), (IPS, SNIPS, DR)):
        started = time.perf_counter()
        comparison = evaluate_policies(log, {"target": target}, model, methods=methods,
                                       n_bootstrap=args.bootstrap)
        seconds = time.perf_counter() - started
        label = "+".join(methods)
        timings[label] = seconds
        for method, estimate in comparison.estimates["target"].items():
            covered = estimate.ci_low <= true_value <= estimate.ci_high
            print(f"  [{label:>12}] {method:>5}: {estimate.value:.4f} "
                  f"[{estimate.ci_low:.4f}, {estimate.ci_high:.4f}] ESS {estimate.ess:,.0f} "
                  f"covers truth: {covered}")
        print(f"  [{label:>12}] {seconds:.2f} s")

    # Several policies at once share the resamples (paired differences come free).
    policies = {"target": target, "uniform": np.full((args.rows, args.actions), 1 / args.actions),
                "first": np.zeros(args.rows, dtype=np.int64)}
    started = time.perf_counter()
    evaluate_policies(log, policies, model, baseline="uniform", n_bootstrap=args.bootstrap)
    timings["3 policies x 3 methods"] = time.perf_counter() - started
    print(f"3 policies x IPS/SNIPS/DR with paired differences: "
          f"{timings['3 policies x 3 methods']:.2f} s")
    total = timings["ips+snips+dr"]
    print(f"IPS+SNIPS+DR, {args.bootstrap:,} resamples, {args.rows:,} rows: {total:.2f} s "
          f"(target <= {TARGET_SECONDS:.0f} s: {'met' if total <= TARGET_SECONDS else 'MISSED'}; "
          f"{TARGET_SECONDS / total:.0f}x under it)")


if __name__ == "__main__":
    main()
