"""Valuing candidates and choosing one: incremental expected value, then epsilon-greedy.

    EV(action) = weight x (P(conv | action) - P(conv | no_action)) x value - cost     (incremental)
    EV(action) = weight x  P(conv | action)                        x value - cost     (absolute)
    weight     = objective weight x message weight x (1 + churn strength x churn risk)

``no_action`` has EV 0 by definition. An action "beats no_action" when its EV exceeds the margin
and (incremental mode) its uplift reaches ``min_uplift``. The options are each scored
(message, channel) pair at its best send time, plus no_action; the greedy option is the best
action that beats no_action, else no_action.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.policy.catalog import CatalogArrays
from models.policy.config import ArbitrationConfig, ValueMode
from models.policy.randomisation import epsilon_greedy_probabilities


@dataclass(frozen=True, slots=True)
class Valuation:
    """Per scored candidate row (N,): value, uplift and whether it beats no_action."""

    expected_value: np.ndarray
    uplift: np.ndarray
    beats_no_action: np.ndarray


def value_candidates(
    catalog: CatalogArrays,
    config: ArbitrationConfig,
    pair_index: np.ndarray,
    p_action: np.ndarray,
    p_no_action: float,
    churn_risk: float,
) -> Valuation:
    uplift = p_action - p_no_action
    weight = catalog.pair_weight[pair_index] * (
        1.0 + catalog.pair_churn_strength[pair_index] * churn_risk
    )
    incremental = config.value_mode is ValueMode.INCREMENTAL
    basis = uplift if incremental else p_action
    expected = weight * basis * catalog.pair_value[pair_index] - catalog.pair_cost[pair_index]
    beats = expected > config.no_action_margin
    if incremental:
        beats &= uplift >= config.min_uplift
    return Valuation(expected, uplift, beats)


def best_row_per_pair(
    pair_index: np.ndarray, expected_value: np.ndarray, send_time_score: np.ndarray
) -> np.ndarray:
    """Index of the highest-EV row of each pair present, in pair order; among equal EVs the
    better send-time score, then the earliest row (the earliest send time)."""
    if pair_index.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)
    order = np.lexsort((-send_time_score, -expected_value, pair_index))
    grouped = pair_index[order]
    first = np.ones(grouped.shape[0], dtype=bool)
    first[1:] = grouped[1:] != grouped[:-1]
    return order[first]


@dataclass(frozen=True, slots=True)
class Choice:
    """Indices into the options (``n_options`` = no_action) and the chosen one's propensity."""

    chosen: int
    greedy: int
    propensity: float
    explored: bool


def greedy_option(option_value: np.ndarray, option_beats: np.ndarray) -> int:
    """The best option that beats no_action; no_action (index ``len``) when none does."""
    if not option_beats.any():
        return int(option_value.shape[0])
    return int(np.argmax(np.where(option_beats, option_value, -np.inf)))


def choose(
    option_value: np.ndarray,
    option_beats: np.ndarray,
    epsilon: float,
    draws: tuple[float, float],
) -> Choice:
    """Epsilon-greedy over the options and no_action, with the exact propensity."""
    n_actions = int(option_value.shape[0])
    greedy = greedy_option(option_value, option_beats)
    k = n_actions + 1
    explore_draw, pick_draw = draws
    explored = epsilon > 0 and explore_draw < epsilon
    chosen = min(int(pick_draw * k), k - 1) if explored else greedy
    propensity = float(epsilon_greedy_probabilities(k, greedy, epsilon)[chosen])
    return Choice(chosen=chosen, greedy=greedy, propensity=propensity, explored=explored)
