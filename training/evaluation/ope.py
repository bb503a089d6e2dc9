"""Off-policy evaluation: what a target policy would have earned, estimated from logged decisions.

A decision log records, per row, the action taken, the probability the logging policy had of
taking it (its propensity) and the reward that followed. Reweighting rows by
``w = pi(a|x) / mu(a|x)`` (target over logging probability of the logged action) gives:

- **IPS** (inverse propensity scoring): ``mean(w * r)``; unbiased whenever the logging policy
  gave every action the target takes a positive probability, but noisy when weights are large.
- **SNIPS** (self-normalised IPS): ``sum(w * r) / sum(w)``; slightly biased, much steadier.
- **DR** (doubly robust): ``mean(sum_a pi(a|x) q(x, a) + w * (r - q(x, a_logged)))`` with a
  reward model ``q``; unbiased if either the propensities or the model are right, and the
  better the model, the smaller the variance.
- **DM** (direct method): ``mean(sum_a pi(a|x) q(x, a))``; model only, for diagnostics.

Confidence intervals are percentile bootstraps over rows (``training.evaluation.bootstrap``);
every policy and estimator evaluated in one call shares the same resamples, so differences
between policies get paired intervals. The effective sample size ``(sum w)^2 / sum(w^2)`` says
how many logged rows the estimate is really worth.

Inputs are plain numpy arrays, so the same code serves the simulator's logs, the service's
decision log and a user's own logs: action codes ``0..K-1`` with a target given as one action per
row or as a ``(n, K)`` probability matrix; or, when the action space is too large to enumerate,
the target's probability of each logged action directly (:func:`evaluate_weights`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from training.evaluation.bootstrap import bootstrap_ratios, percentile_interval

IPS = "ips"
SNIPS = "snips"
DR = "dr"
DM = "dm"
METHODS: tuple[str, ...] = (IPS, SNIPS, DR, DM)
_MODEL_METHODS = frozenset({DR, DM})
_PROBABILITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class PolicyEstimate:
    """An estimate of a policy's value (mean reward per decision) with its bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float
    ess: float
    n: int
    method: str

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


@dataclass(frozen=True)
class LoggedDecisions:
    """A log of decisions over ``n_actions`` discrete actions (codes ``0..n_actions-1``)."""

    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    n_actions: int

    def __post_init__(self) -> None:
        actions = np.asarray(self.actions)
        rewards = np.asarray(self.rewards, dtype=np.float64)
        propensities = np.asarray(self.propensities, dtype=np.float64)
        n = actions.shape[0] if actions.ndim == 1 else -1
        if n < 1 or rewards.shape != (n,) or propensities.shape != (n,):
            raise ValueError(
                "actions, rewards and propensities must be 1-D arrays of the same non-zero "
                f"length, got shapes {actions.shape}, {rewards.shape}, {propensities.shape}"
            )
        if not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be integer codes, got dtype {actions.dtype}")
        _check_rows(actions, (actions >= 0) & (actions < self.n_actions),
                    f"actions must be codes in 0..{self.n_actions - 1}")
        _check_rows(rewards, np.isfinite(rewards), "rewards must be finite numbers")
        _check_rows(propensities, (propensities > 0) & (propensities <= 1),
                    "propensities must be in (0, 1]")
        object.__setattr__(self, "actions", actions.astype(np.int64))
        object.__setattr__(self, "rewards", rewards)
        object.__setattr__(self, "propensities", propensities)

    @property
    def n(self) -> int:
        return int(self.actions.shape[0])


@dataclass(frozen=True)
class PolicyComparison:
    """Estimates of several policies from one log, on shared bootstrap resamples.

    ``estimates[policy][method]`` is the policy's value; ``differences[policy][method]`` is
    ``policy - baseline`` with a paired interval (empty without a baseline).
    """

    estimates: dict[str, dict[str, PolicyEstimate]]
    differences: dict[str, dict[str, PolicyEstimate]] = field(default_factory=dict)
    baseline: str | None = None


def _check_rows(values: np.ndarray, ok: np.ndarray, message: str) -> None:
    bad = np.flatnonzero(~ok)
    if bad.size:
        shown = ", ".join(f"index {i} ({values[i].item()!r})" for i in bad[:5])
        more = f" and {bad.size - 5} more" if bad.size > 5 else ""
        raise ValueError(f"{message}: {shown}{more}")


def target_distribution(target: np.ndarray, n_rows: int, n_actions: int) -> np.ndarray:
    """The target policy as an ``(n, K)`` probability matrix.

    ``target`` is either one action code per row (a deterministic policy) or already an
    ``(n, K)`` matrix whose rows are probability distributions.
    """
    target = np.asarray(target)
    if target.ndim == 1:
        if target.shape[0] != n_rows or not np.issubdtype(target.dtype, np.integer):
            raise ValueError(
                f"a deterministic target must be {n_rows} integer action codes, "
                f"got shape {target.shape} and dtype {target.dtype}"
            )
        _check_rows(target, (target >= 0) & (target < n_actions),
                    f"target actions must be codes in 0..{n_actions - 1}")
        matrix = np.zeros((n_rows, n_actions), dtype=np.float64)
        matrix[np.arange(n_rows), target] = 1.0
        return matrix
    if target.shape != (n_rows, n_actions):
        raise ValueError(
            f"a stochastic target must be a ({n_rows}, {n_actions}) probability matrix, "
            f"got shape {target.shape}"
        )
    matrix = target.astype(np.float64)
    valid = (
        np.all((matrix >= 0) & (matrix <= 1), axis=1)
        & (np.abs(matrix.sum(axis=1) - 1.0) <= _PROBABILITY_TOLERANCE)
    )
    _check_rows(matrix.sum(axis=1), valid,
                "each row of the target must be probabilities summing to 1 (row sums shown)")
    return matrix


def importance_weights(log: LoggedDecisions, target: np.ndarray) -> np.ndarray:
    """``pi(a_i | x_i) / mu(a_i | x_i)`` for each logged row."""
    matrix = target_distribution(target, log.n, log.n_actions)
    return np.asarray(matrix[np.arange(log.n), log.actions] / log.propensities)


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum(w^2)``; ``n`` when all weights are equal,
    0 when the target never agrees with the log."""
    weights = np.asarray(weights, dtype=np.float64)
    squares = float(np.square(weights).sum())
    return float(weights.sum()) ** 2 / squares if squares > 0 else 0.0


def _terms(
    rewards: np.ndarray,
    weights: np.ndarray,
    direct: np.ndarray | None,
    logged_prediction: np.ndarray | None,
    methods: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row numerator and denominator columns, one pair per method (in ``methods`` order)."""
    ones = np.ones_like(rewards)
    numerators, denominators = [], []
    for method in methods:
        if method == IPS:
            numerators.append(weights * rewards)
            denominators.append(ones)
        elif method == SNIPS:
            numerators.append(weights * rewards)
            denominators.append(weights)
        elif method == DR and direct is not None and logged_prediction is not None:
            numerators.append(direct + weights * (rewards - logged_prediction))
            denominators.append(ones)
        elif method == DM and direct is not None:
            numerators.append(direct)
            denominators.append(ones)
        else:
            raise ValueError(f"unknown method {method!r} or no reward model for it")
    return np.column_stack(numerators), np.column_stack(denominators)


def _check_methods(methods: Sequence[str], has_model: bool) -> tuple[str, ...]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose among {list(METHODS)}")
    needs_model = [m for m in methods if m in _MODEL_METHODS]
    if needs_model and not has_model:
        raise ValueError(f"method(s) {needs_model} need reward-model predictions")
    return tuple(methods)


def _estimates(
    numerators: np.ndarray,
    denominators: np.ndarray,
    labels: Sequence[tuple[str, str]],
    ess: Mapping[str, float],
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> tuple[dict[str, dict[str, PolicyEstimate]], np.ndarray]:
    """Point values, bootstrap samples and intervals of every (policy, method) column."""
    with np.errstate(divide="ignore", invalid="ignore"):
        points = numerators.sum(axis=0) / denominators.sum(axis=0)
    samples = bootstrap_ratios(numerators, denominators, n_bootstrap, seed)
    low, high = percentile_interval(samples, confidence)
    n = numerators.shape[0]
    result: dict[str, dict[str, PolicyEstimate]] = {}
    for j, (policy, method) in enumerate(labels):
        result.setdefault(policy, {})[method] = PolicyEstimate(
            float(points[j]), float(low[j]), float(high[j]), ess[policy], n, method
        )
    return result, samples


def evaluate_weights(
    rewards: np.ndarray,
    weights: np.ndarray,
    *,
    direct: np.ndarray | None = None,
    logged_prediction: np.ndarray | None = None,
    methods: Sequence[str] = (IPS, SNIPS),
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, PolicyEstimate]:
    """Estimates from per-row quantities, for logs whose action space is not enumerated.

    ``weights`` are ``pi(a_i|x_i) / mu(a_i|x_i)``; for DR and DM, ``direct`` is the reward
    model's expected reward under the target policy, ``sum_a pi(a|x_i) q(x_i, a)``, and
    ``logged_prediction`` its prediction for the logged action ``q(x_i, a_i)``.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    n = rewards.shape[0]
    for name, array in (("weights", weights), ("direct", direct),
                        ("logged_prediction", logged_prediction)):
        if array is not None and np.shape(array) != (n,):
            raise ValueError(f"{name} must have shape ({n},) like rewards, got {np.shape(array)}")
    _check_rows(weights, np.isfinite(weights) & (weights >= 0), "weights must be finite and >= 0")
    methods = _check_methods(methods, direct is not None and logged_prediction is not None)
    numerators, denominators = _terms(
        rewards, weights,
        None if direct is None else np.asarray(direct, dtype=np.float64),
        None if logged_prediction is None else np.asarray(logged_prediction, dtype=np.float64),
        methods,
    )
    labels = [("policy", m) for m in methods]
    ess = {"policy": effective_sample_size(weights)}
    estimates, _ = _estimates(numerators, denominators, labels, ess, n_bootstrap, confidence, seed)
    return estimates["policy"]


def evaluate_policies(
    log: LoggedDecisions,
    targets: Mapping[str, np.ndarray],
    reward_model: np.ndarray | None = None,
    *,
    methods: Sequence[str] | None = None,
    baseline: str | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PolicyComparison:
    """Estimate each named target policy's value from ``log`` with shared bootstrap resamples.

    ``targets`` maps a name to one action code per row or an ``(n, K)`` probability matrix.
    ``reward_model`` is an ``(n, K)`` matrix of predicted rewards per action (fitted on other
    rows than these, e.g. cross-fitted, to keep DR honest). ``methods`` defaults to IPS and
    SNIPS, plus DR when a reward model is given. With ``baseline`` (one of the names), each
    other policy also gets ``policy - baseline`` with a paired interval.
    """
    if not targets:
        raise ValueError("give at least one target policy")
    if baseline is not None and baseline not in targets:
        raise ValueError(f"baseline {baseline!r} is not one of the targets {list(targets)}")
    q: np.ndarray | None = None
    if reward_model is not None:
        q = np.asarray(reward_model, dtype=np.float64)
        if q.shape != (log.n, log.n_actions):
            raise ValueError(
                f"reward_model must be a ({log.n}, {log.n_actions}) matrix of predicted rewards "
                f"per action, got shape {q.shape}"
            )
        _check_rows(q.sum(axis=1), np.isfinite(q).all(axis=1),
                    "reward_model predictions must be finite (row sums shown)")
    if methods is None:
        methods = (IPS, SNIPS, DR) if q is not None else (IPS, SNIPS)
    methods = _check_methods(methods, q is not None)

    numerator_blocks, denominator_blocks = [], []
    labels: list[tuple[str, str]] = []
    ess: dict[str, float] = {}
    rows = np.arange(log.n)
    for name, target in targets.items():
        matrix = target_distribution(target, log.n, log.n_actions)
        weights = matrix[rows, log.actions] / log.propensities
        ess[name] = effective_sample_size(weights)
        direct = None if q is None else np.einsum("ij,ij->i", matrix, q)
        logged = None if q is None else q[rows, log.actions]
        num, den = _terms(log.rewards, weights, direct, logged, methods)
        numerator_blocks.append(num)
        denominator_blocks.append(den)
        labels.extend((name, m) for m in methods)
    numerators = np.hstack(numerator_blocks)
    denominators = np.hstack(denominator_blocks)
    estimates, samples = _estimates(
        numerators, denominators, labels, ess, n_bootstrap, confidence, seed
    )
    differences: dict[str, dict[str, PolicyEstimate]] = {}
    if baseline is not None:
        column = {label: j for j, label in enumerate(labels)}
        for name in targets:
            if name == baseline:
                continue
            for method in methods:
                paired = samples[:, column[(name, method)]] - samples[:, column[(baseline, method)]]
                low, high = percentile_interval(paired[:, None], confidence)
                point = estimates[name][method].value - estimates[baseline][method].value
                differences.setdefault(name, {})[method] = PolicyEstimate(
                    point, float(low[0]), float(high[0]), ess[name], log.n, method
                )
    return PolicyComparison(estimates=estimates, differences=differences, baseline=baseline)


def evaluate_policy(
    log: LoggedDecisions,
    target: np.ndarray,
    reward_model: np.ndarray | None = None,
    *,
    methods: Sequence[str] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, PolicyEstimate]:
    """Estimate one target policy's value from ``log``: ``{method: PolicyEstimate}``.

    See :func:`evaluate_policies` for the arguments.
    """
    comparison = evaluate_policies(
        log, {"policy": target}, reward_model, methods=methods,
        n_bootstrap=n_bootstrap, confidence=confidence, seed=seed,
    )
    return comparison.estimates["policy"]
