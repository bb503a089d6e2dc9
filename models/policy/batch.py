"""The vectorised steps of a batch of decisions: one numpy pass over every candidate of every
request, whatever the batch size.

Python code runs per request only where the inputs are per request by nature (hashes, time
zones, histories); everything from the reason matrices to the greedy option is a fixed number of
array operations on the stacked batch, shape ``(B, P, S)`` for B requests, P (message, channel)
pairs and S send slots. The results are identical, bit for bit, to deciding each request alone:
every reduction is done per request (per row of a stacked axis or per group of a stable sort).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.policy.catalog import CatalogArrays
from models.policy.rules import CODE
from models.policy.types import ReasonCode

LOWER_SEND_TIME_SCORE = CODE[ReasonCode.LOWER_SEND_TIME_SCORE]


@dataclass(slots=True)
class Candidates:
    """The scored candidate rows of a batch (N rows, request-major, then pair, then slot) and
    the layout of the conversion model's input (each request's rows, then its no_action row)."""

    request: np.ndarray  # (N,) request of each row
    pair: np.ndarray  # (N,)
    slot: np.ndarray  # (N,)
    grid_row: np.ndarray  # (N,) 1 where the channel observes quiet hours
    per_request: np.ndarray  # (B,) candidate rows of each request
    model_row: np.ndarray  # (N,) position of each row in the model's input
    no_action_row: np.ndarray  # (B,) position of each request's no_action row in it


@dataclass(slots=True)
class Reasons:
    """Exclusion codes of a batch: per (request, pair) for the pair rules, and per slot only for
    the (request, pair) rows those rules let through (the "open" rows), where slots matter."""

    pair: np.ndarray  # (B, P) int8, 0 = the pair passes
    request: np.ndarray  # (A,) request of each open row, ascending
    pair_of_row: np.ndarray  # (A,) pair of each open row
    slot: np.ndarray  # (A, S) int8, 0 = allowed (then: scored) candidate


def build_reasons(
    per_pair: list[np.ndarray],
    per_slot: dict[int, np.ndarray],
    blocked: np.ndarray,
    pair_grid_row: np.ndarray,
    quiet_code: int,
) -> Reasons:
    """The pair rules first, then the slot rules of the open rows.

    ``per_slot`` holds the (P, S) slot rules of requests whose history can exclude something;
    every other request is excluded by the quiet hours of its grid alone (``blocked``, (B, 2, S)).
    """
    pair = stacked(per_pair)
    request, pair_of_row = np.nonzero(pair == 0)
    slot = np.where(
        blocked[request, pair_grid_row[pair_of_row], :], np.int8(quiet_code), np.int8(0)
    )
    if per_slot:
        bounds = np.searchsorted(request, np.arange(pair.shape[0] + 1)).tolist()
        for i, reasons in per_slot.items():
            rows = slice(bounds[i], bounds[i + 1])
            slot[rows] = reasons[pair_of_row[rows]]
    return Reasons(pair, request, pair_of_row, slot)


def stacked(arrays: list[np.ndarray]) -> np.ndarray:
    """``np.stack(arrays)``, without its Python overhead for a batch of one."""
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)


def select_slots(
    reasons: Reasons, slot_score: np.ndarray, pair_grid_row: np.ndarray, slots_per_pair: int
) -> Candidates:
    """Keep, per pair, the ``slots_per_pair`` allowed slots with the best send-time score (ties
    to the earliest); the other allowed slots get ``lower_send_time_score`` (in ``reasons``)."""
    n_requests, n_slots = reasons.pair.shape[0], slot_score.shape[2]
    # rank of each slot by send-time score, shared by the pairs of a grid row
    # (ranks fit int16: the partition below runs over every open row)
    rank = (-slot_score).argsort(axis=2, kind="stable").argsort(axis=2).astype(np.int16)
    open_grid_row = pair_grid_row[reasons.pair_of_row]
    allowed = reasons.slot == 0
    ranked = np.where(allowed, rank[reasons.request, open_grid_row, :], np.int16(n_slots))
    if slots_per_pair < n_slots:
        kth_best = np.partition(ranked, slots_per_pair - 1, axis=1)[
            :, slots_per_pair - 1 : slots_per_pair
        ]
        keep = (ranked <= kth_best) & allowed
    else:
        keep = allowed
    reasons.slot[allowed & ~keep] = LOWER_SEND_TIME_SCORE
    row, slot = np.nonzero(keep)
    request = reasons.request[row]
    per_request = np.bincount(request, minlength=n_requests)
    # each request's rows are followed by its no_action row in the model's input
    no_action_row = np.cumsum(per_request + 1) - 1
    return Candidates(
        request=request, pair=reasons.pair_of_row[row], slot=slot, grid_row=open_grid_row[row],
        per_request=per_request, model_row=np.arange(request.shape[0]) + request,
        no_action_row=no_action_row,
    )


def model_inputs(
    catalog: CatalogArrays, candidates: Candidates, local_hour: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(message, channel, local hour) codes of every model row (-1 for no_action) and the
    number of model rows of each request."""
    total = int(candidates.no_action_row[-1]) + 1 if candidates.no_action_row.shape[0] else 0
    rows = candidates.model_row
    message = np.full(total, -1, dtype=np.int64)
    channel = np.full(total, -1, dtype=np.int64)
    hour = np.full(total, -1, dtype=np.int64)
    message[rows] = catalog.pair_message[candidates.pair]
    channel[rows] = catalog.pair_channel[candidates.pair]
    hour[rows] = local_hour[candidates.request, candidates.grid_row, candidates.slot]
    return message, channel, hour, candidates.per_request + 1
