"""Off-policy estimates on a simulated contextual bandit whose true policy values are known."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from training.evaluation.ope import (
    DM,
    DR,
    IPS,
    SNIPS,
    LoggedDecisions,
    effective_sample_size,
    evaluate_policies,
    evaluate_policy,
    evaluate_weights,
    importance_weights,
)

N_ROWS = 20_000
N_ACTIONS = 3
N_BOOTSTRAP = 400


@dataclass(frozen=True)
class Bandit:
    log: LoggedDecisions
    reward_probability: np.ndarray  # (n, K) true P(reward | x, a)
    logging: np.ndarray  # (n, K) the logging policy's probabilities


def simulate_bandit(seed: int = 0, n: int = N_ROWS, amounts: bool = False) -> Bandit:
    """Contexts, known expected rewards per action and a random (context-dependent) logging
    policy that gives every action at least a 10 % chance. Rewards are conversions (0/1), or
    with ``amounts`` revenue-like amounts (expected value x 100 plus noise)."""
    rng = np.random.default_rng(seed)
    contexts = rng.normal(size=(n, 4))
    coefficients = rng.normal(size=(4, N_ACTIONS))
    reward_probability = 1.0 / (1.0 + np.exp(-(contexts @ coefficients - 1.0)))
    logits = rng.normal(size=(n, N_ACTIONS))
    logging = 0.1 + 0.7 * np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    actions = (logging.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    rows = np.arange(n)
    rewards = (rng.random(n) < reward_probability[rows, actions]).astype(float)
    if amounts:
        reward_probability = 100.0 * reward_probability
        rewards = reward_probability[rows, actions] + rng.normal(0.0, 5.0, n)
    log = LoggedDecisions(actions, rewards, logging[rows, actions], N_ACTIONS)
    return Bandit(log, reward_probability, logging)


def true_value(bandit: Bandit, target: np.ndarray) -> float:
    """Expected reward of a deterministic target on these contexts."""
    return float(bandit.reward_probability[np.arange(bandit.log.n), target].mean())


@pytest.fixture(scope="module")
def bandit() -> Bandit:
    return simulate_bandit()


def test_every_estimator_covers_the_true_value(bandit: Bandit) -> None:
    target = bandit.reward_probability.argmax(axis=1)  # the best policy, far from the logging one
    noisy_model = np.clip(
        bandit.reward_probability + np.random.default_rng(1).normal(0, 0.1, (N_ROWS, 3)), 0, 1
    )
    estimates = evaluate_policy(
        bandit.log, target, noisy_model, methods=(IPS, SNIPS, DR), n_bootstrap=N_BOOTSTRAP
    )
    truth = true_value(bandit, target)
    for method, estimate in estimates.items():
        assert estimate.method == method and estimate.n == N_ROWS
        assert estimate.ci_low <= truth <= estimate.ci_high, (method, estimate, truth)
        assert estimate.ci_low < estimate.value < estimate.ci_high


@pytest.mark.parametrize("amounts", [False, True])
def test_doubly_robust_is_tighter_than_ips_with_a_good_reward_model(amounts: bool) -> None:
    bandit = simulate_bandit(seed=4, amounts=amounts)
    target = bandit.reward_probability.argmax(axis=1)
    good_model = bandit.reward_probability * (
        1 + np.random.default_rng(2).normal(0, 0.05, (N_ROWS, 3))
    )
    estimates = evaluate_policy(bandit.log, target, good_model, n_bootstrap=N_BOOTSTRAP)
    width = {m: e.ci_high - e.ci_low for m, e in estimates.items()}
    # With 0/1 conversions the outcome noise stays (DR removes only the model-explained part);
    # with amounts whose noise is small next to the effect, DR is several times tighter.
    assert width[DR] < (0.3 if amounts else 0.8) * width[IPS], width
    assert estimates[DR].ci_low <= true_value(bandit, target) <= estimates[DR].ci_high


def test_ess_is_n_and_ips_is_the_mean_reward_when_target_is_the_logging_policy(
    bandit: Bandit,
) -> None:
    estimates = evaluate_policy(bandit.log, bandit.logging, n_bootstrap=50)
    assert estimates[IPS].ess == pytest.approx(N_ROWS)
    assert estimates[IPS].value == pytest.approx(bandit.log.rewards.mean())
    assert estimates[SNIPS].value == pytest.approx(bandit.log.rewards.mean())


def test_a_deterministic_target_is_worth_fewer_rows(bandit: Bandit) -> None:
    weights = importance_weights(bandit.log, np.zeros(N_ROWS, dtype=int))
    # Only rows that logged action 0 count, each reweighted by 1 / propensity.
    assert 0 < effective_sample_size(weights) < (bandit.log.actions == 0).sum()
    assert effective_sample_size(np.zeros(5)) == 0.0


def test_paired_differences_cover_the_true_gain_and_vanish_against_itself(
    bandit: Bandit,
) -> None:
    best = bandit.reward_probability.argmax(axis=1)
    always_first = np.zeros(N_ROWS, dtype=int)
    comparison = evaluate_policies(
        bandit.log,
        {"first": always_first, "best": best, "first again": always_first.copy()},
        baseline="first",
        n_bootstrap=N_BOOTSTRAP,
    )
    gain = true_value(bandit, best) - true_value(bandit, always_first)
    for method in (IPS, SNIPS):
        difference = comparison.differences["best"][method]
        assert difference.ci_low <= gain <= difference.ci_high
        assert difference.ci_low > 0  # the best policy is clearly better than a constant one
        same = comparison.differences["first again"][method]
        assert same.value == same.ci_low == same.ci_high == 0.0
    assert "first" not in comparison.differences


def test_estimates_are_reproducible_with_a_seed(bandit: Bandit) -> None:
    target = np.ones(N_ROWS, dtype=int)
    first = evaluate_policy(bandit.log, target, n_bootstrap=100, seed=7)
    again = evaluate_policy(bandit.log, target, n_bootstrap=100, seed=7)
    assert first == again


def test_per_row_entry_point_agrees_with_the_action_level_one(bandit: Bandit) -> None:
    target = bandit.reward_probability.argmax(axis=1)
    model = bandit.reward_probability
    rows = np.arange(N_ROWS)
    by_action = evaluate_policy(
        bandit.log, target, model, methods=(IPS, SNIPS, DR, DM), n_bootstrap=100, seed=3
    )
    by_row = evaluate_weights(
        bandit.log.rewards,
        importance_weights(bandit.log, target),
        direct=model[rows, target],
        logged_prediction=model[rows, bandit.log.actions],
        methods=(IPS, SNIPS, DR, DM),
        n_bootstrap=100,
        seed=3,
    )
    assert by_row == by_action


def test_bad_logs_name_the_offending_rows() -> None:
    with pytest.raises(ValueError, match=r"propensities must be in \(0, 1\]: index 1 \(0.0\)"):
        LoggedDecisions(np.array([0, 1]), np.array([1.0, 0.0]), np.array([0.5, 0.0]), 2)
    with pytest.raises(ValueError, match=r"codes in 0..1: index 0"):
        LoggedDecisions(np.array([2, 1]), np.array([1.0, 0.0]), np.array([0.5, 0.5]), 2)
    with pytest.raises(ValueError, match="same non-zero length"):
        LoggedDecisions(np.array([0, 1]), np.array([1.0]), np.array([0.5, 0.5]), 2)


def test_bad_targets_and_models_are_clear_errors(bandit: Bandit) -> None:
    with pytest.raises(ValueError, match="summing to 1"):
        evaluate_policy(bandit.log, np.full((N_ROWS, 3), 0.5))
    with pytest.raises(ValueError, match=r"reward_model must be a \(20000, 3\) matrix"):
        evaluate_policy(bandit.log, np.zeros(N_ROWS, dtype=int), np.zeros((N_ROWS, 2)))
    with pytest.raises(ValueError, match="need reward-model predictions"):
        evaluate_policy(bandit.log, np.zeros(N_ROWS, dtype=int), methods=(DR,))
