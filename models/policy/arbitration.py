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

from models.policy.batch import Candidates
from models.policy.catalog import CatalogArrays
from models.policy.config import ArbitrationConfig, ValueMode


@dataclass(slots=True)
class Arbitration:
    """Values of the candidate rows, each pair's best row (the options) and the greedy option."""

    p_action: np.ndarray  # (N,)
    p_no_action: np.ndarray  # (B,)
    expected_value: np.ndarray  # (N,)
    uplift: np.ndarray  # (N,)
    beats_no_action: np.ndarray  # (N,)
    send_time_score: np.ndarray  # (N,) send-time score of each row's slot
    options: np.ndarray  # (O,) candidate row of each option, request-major, pair order
    option_start: np.ndarray  # (B,) first option of each request
    n_options: np.ndarray  # (B,)
    greedy: np.ndarray  # (B,) option index within the request; n_options = no_action


def arbitrate(
    catalog: CatalogArrays,
    config: ArbitrationConfig,
    candidates: Candidates,
    p_conversion: np.ndarray,
    churn: np.ndarray,
    slot_score: np.ndarray,
) -> Arbitration:
    """Incremental (or absolute) expected values, each pair's best row and the greedy option.

    EV = weight x (P(conv | action) - P(conv | no_action)) x value - cost, weight = objective
    weight x message weight x (1 + churn strength x churn risk); see docs/decision-policy.md.
    """
    request, pair = candidates.request, candidates.pair
    p_action = p_conversion[candidates.model_row]
    p_no_action = p_conversion[candidates.no_action_row]
    uplift = p_action - p_no_action[request]
    weight = catalog.pair_weight[pair] * (1.0 + catalog.pair_churn_strength[pair] * churn[request])
    incremental = config.value_mode is ValueMode.INCREMENTAL
    basis = uplift if incremental else p_action
    expected = weight * basis * catalog.pair_value[pair] - catalog.pair_cost[pair]
    beats = expected > config.no_action_margin
    if incremental:
        beats &= uplift >= config.min_uplift
    send_time = slot_score[request, candidates.grid_row, candidates.slot]

    n_requests = candidates.per_request.shape[0]
    if n_requests == 1:
        # one request (the serving path): a sort and an argmax cost fewer numpy calls
        options = _best_rows_by_sort(pair, expected, send_time)
        n_options = np.array([options.shape[0]])
        option_start = np.zeros(1, dtype=np.intp)
        greedy = np.array([_greedy_option(expected[options], beats[options])])
    else:
        options, n_options, option_start, greedy = _best_rows_by_segments(
            request, pair, catalog.n_pairs, expected, send_time, beats, n_requests
        )
    return Arbitration(
        p_action=p_action, p_no_action=p_no_action, expected_value=expected, uplift=uplift,
        beats_no_action=beats, send_time_score=send_time, options=options,
        option_start=option_start, n_options=n_options, greedy=greedy,
    )


@dataclass(frozen=True, slots=True)
class Choice:
    """Indices into the options (``n_options`` = no_action) and the chosen one's propensity."""

    chosen: int
    greedy: int
    propensity: float
    explored: bool


def choose(
    n_options: int, greedy: int, epsilon: float, draws: tuple[float, float]
) -> Choice:
    """Epsilon-greedy over the options and no_action, with the exact propensity: ``1 - eps +
    eps/K`` for the greedy option, ``eps/K`` for every other (K options, no_action included;
    ``randomisation.epsilon_greedy_probabilities``)."""
    k = n_options + 1
    explore_draw, pick_draw = draws
    explored = epsilon > 0 and explore_draw < epsilon
    chosen = min(int(pick_draw * k), k - 1) if explored else greedy
    propensity = epsilon / k + (1.0 - epsilon) if chosen == greedy else epsilon / k
    return Choice(chosen=chosen, greedy=greedy, propensity=propensity, explored=explored)


def _best_rows_by_sort(
    pair: np.ndarray, expected: np.ndarray, send_time: np.ndarray
) -> np.ndarray:
    """One request's best row of each pair: highest EV, then best send-time score, then the
    earliest row."""
    order = np.lexsort((-send_time, -expected, pair))
    first = np.ones(order.shape[0], dtype=bool)
    grouped = pair[order]
    first[1:] = grouped[1:] != grouped[:-1]
    return order[first]


def _greedy_option(option_value: np.ndarray, option_beats: np.ndarray) -> int:
    """The best option that beats no_action; no_action (index ``len``) when none does."""
    if not option_beats.any():
        return int(option_value.shape[0])
    return int(np.argmax(np.where(option_beats, option_value, -np.inf)))


def _best_rows_by_segments(
    request: np.ndarray, pair: np.ndarray, n_pairs: int, expected: np.ndarray,
    send_time: np.ndarray, beats: np.ndarray, n_requests: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``_best_rows_by_sort`` and ``_greedy_option`` for every request of a batch at once:
    rows come grouped by (request, pair), slots in order, so segmented maxima find the best
    row of each group and the greedy option of each request without sorting."""
    starts = _segment_starts(request * n_pairs + pair)
    options = _first_best_in_segments(expected, send_time, starts)
    n_options = np.bincount(request[options], minlength=n_requests)
    option_start = np.cumsum(n_options) - n_options
    # greedy: the first best option that beats no_action, else no_action (index n_options)
    option_beats = beats[options]
    greedy = n_options
    if options.shape[0]:
        masked = np.where(option_beats, expected[options], -np.inf)
        with_options = np.flatnonzero(n_options)
        best = _first_best_in_segments(masked, None, option_start[with_options])
        wins = option_beats[best]
        greedy = n_options.copy()
        greedy[with_options[wins]] = best[wins] - option_start[with_options[wins]]
    return options, n_options, option_start, greedy


def _segment_starts(keys: np.ndarray) -> np.ndarray:
    """Start of each run of equal consecutive ``keys``."""
    if keys.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    return np.concatenate(([0], change))


def _first_best_in_segments(
    value: np.ndarray, tie_break: np.ndarray | None, starts: np.ndarray
) -> np.ndarray:
    """Per segment (non-empty, given by ``starts``), the index of the first element with the
    highest ``value``, ties broken by the highest ``tie_break``: what a stable sort by
    (-value, -tie_break) would put first, without sorting."""
    if starts.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)
    segment = np.zeros(value.shape[0], dtype=np.intp)
    segment[starts[1:]] = 1
    segment = np.cumsum(segment)
    best = value == np.maximum.reduceat(value, starts)[segment]
    if tie_break is not None:
        second = np.where(best, tie_break, -np.inf)
        best &= second == np.maximum.reduceat(second, starts)[segment]
    hits = np.flatnonzero(best)
    first = np.ones(hits.shape[0], dtype=bool)
    first[1:] = segment[hits][1:] != segment[hits][:-1]
    return hits[first]
