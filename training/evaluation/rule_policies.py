"""The hand-built policies nextbest is compared with: rule-based journeys of the kind marketers
build (welcome series for new customers, cart recovery for carted ones, win-back for lapsing
ones, each on the customer's most-used channel at 10:00 local, nothing otherwise).

The static rule (one message, channel and hour for everyone) is found with hindsight by the
oracle scan (``OracleValues.scan``); random and the oracle's best action come from there too.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from features.contract import CHANNELS, ENGAGEMENT_EVENT_TYPES, Objective, Stage
from features.eventlog import EVENT_CODE, EventLog
from features.simulator.catalog import CatalogArrays
from features.simulator.policy import STAGE_INDEX
from training.evaluation.oracle_values import PolicyActions

#: Which objective's message a journey sends in which stage.
JOURNEY_RULES: Final[dict[Stage, Objective]] = {
    Stage.NEW: Objective.WELCOME,
    Stage.CARTED: Objective.CART_RECOVERY,
    Stage.LAPSING: Objective.WIN_BACK,
}
#: Local hour every journey message goes out at.
JOURNEY_HOUR: Final = 10
_OBJECTIVE_CODE: Final = {o: i for i, o in enumerate(Objective)}


def channel_usage(log: EventLog, customer_codes: np.ndarray, as_of_ns: np.ndarray) -> np.ndarray:
    """(n, channels) engagement events (opens, clicks, page and product views) of each customer
    on each channel strictly before its as-of time: what "most-used channel" means here."""
    codes = np.asarray(customer_codes, dtype=np.int64)
    as_of = np.asarray(as_of_ns, dtype=np.int64)
    engaged = np.isin(log.event_type, [EVENT_CODE[e] for e in ENGAGEMENT_EVENT_TYPES])
    engaged &= log.channel >= 0
    usage = np.zeros((codes.shape[0], len(CHANNELS)), dtype=np.float64)
    for c in range(len(CHANNELS)):
        picked = np.flatnonzero(engaged & (log.channel == c))
        usage[:, c] = _counts_before(log.customer[picked], log.ts_ns[picked], codes, as_of)
    return usage


def _counts_before(
    event_customer: np.ndarray, event_ts: np.ndarray, codes: np.ndarray, as_of: np.ndarray
) -> np.ndarray:
    """Per query, the events of its customer strictly before its as-of time (exact, no loop).

    Queries and events are sorted together by (customer, time, query first on ties); a running
    count of events then gives each query's count once its customer's earlier total is removed.
    """
    customer = np.concatenate([codes, event_customer.astype(np.int64)])
    ts = np.concatenate([as_of, event_ts.astype(np.int64)])
    is_event = np.concatenate([np.zeros(codes.shape[0], np.int8),
                               np.ones(event_customer.shape[0], np.int8)])
    order = np.lexsort((is_event, ts, customer))
    running = np.cumsum(is_event[order])
    position = np.empty(order.shape[0], dtype=np.int64)
    position[order] = np.arange(order.shape[0])
    sorted_customer = customer[order]
    start = np.searchsorted(sorted_customer, codes, side="left")
    earlier = np.where(start > 0, running[np.maximum(start - 1, 0)], 0)
    return (running[position[: codes.shape[0]]] - earlier).astype(np.float64)


def journey_actions(
    catalog: CatalogArrays,
    stage: np.ndarray,
    eligible: np.ndarray,
    usage: np.ndarray,
    hour: int = JOURNEY_HOUR,
) -> PolicyActions:
    """The journey policy's action per row.

    ``stage``: stage codes (``STAGES`` order); ``eligible``: (n, messages, channels) candidate
    pairs; ``usage``: (n, channels) engagement counts. The message is the catalog's first one
    with the stage's objective; the channel the most-used among those it may go on for the row
    (ties and customers without engagement: the first in ``CHANNELS`` order). Rows whose stage
    has no journey, or whose message is not eligible on any channel, get no_action.
    """
    n = stage.shape[0]
    message = np.full(n, -1, dtype=np.int64)
    channel = np.full(n, -1, dtype=np.int64)
    for journey_stage, objective in JOURNEY_RULES.items():
        candidates = np.flatnonzero(catalog.objective == _OBJECTIVE_CODE[objective])
        if not candidates.size:
            continue
        m = int(candidates[0])
        rows = np.flatnonzero(stage == STAGE_INDEX[journey_stage.value])
        allowed = eligible[rows, m, :]
        reachable = allowed.any(axis=1)
        # most-used allowed channel; a small bonus for earlier channels breaks ties in order
        tie_break = -np.arange(len(CHANNELS)) * 1e-6
        score = np.where(allowed, usage[rows] + tie_break, -np.inf)
        best = np.argmax(score, axis=1)
        message[rows[reachable]] = m
        channel[rows[reachable]] = best[reachable]
    return PolicyActions(message, channel, np.where(message >= 0, hour, -1))
