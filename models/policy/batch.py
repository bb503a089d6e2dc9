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


def stack_reasons(
    per_pair: list[np.ndarray],
    per_slot: dict[int, np.ndarray],
    blocked: np.ndarray,
    pair_grid_row: np.ndarray,
    quiet_code: int,
) -> np.ndarray:
    """(B, P, S) exclusion codes: the pair rules first, then the slot rules.

    ``per_slot`` holds the slot rules of requests whose history can exclude something; every
    other request is excluded by the quiet hours of its grid alone (``blocked``, (B, 2, S)).
    """
    pair = stacked(per_pair)[:, :, None]
    if len(per_slot) == blocked.shape[0]:  # typically one request with a contact history
        slot = stacked(list(per_slot.values()))
    else:
        slot = np.where(blocked[:, pair_grid_row, :], np.int8(quiet_code), np.int8(0))
        for i, reasons in per_slot.items():
            slot[i] = reasons
    return np.where(pair > 0, pair, slot)


def stacked(arrays: list[np.ndarray]) -> np.ndarray:
    """``np.stack(arrays)``, without its Python overhead for a batch of one."""
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)


def select_slots(
    reasons: np.ndarray, slot_score: np.ndarray, pair_grid_row: np.ndarray, slots_per_pair: int
) -> Candidates:
    """Keep, per pair, the ``slots_per_pair`` allowed slots with the best send-time score (ties
    to the earliest); the other allowed slots get ``lower_send_time_score`` (in ``reasons``)."""
    n_requests, _, n_slots = reasons.shape
    # rank of each slot by send-time score, shared by the pairs of a grid row
    # (ranks fit int16: the partition below runs over every pair of every request)
    rank = (-slot_score).argsort(axis=2, kind="stable").argsort(axis=2).astype(np.int16)
    allowed = reasons == 0
    ranked = np.where(allowed, rank[:, pair_grid_row, :], np.int16(n_slots))
    if slots_per_pair < n_slots:
        kth_best = np.partition(ranked, slots_per_pair - 1, axis=2)[
            :, :, slots_per_pair - 1 : slots_per_pair
        ]
        keep = (ranked <= kth_best) & allowed
    else:
        keep = allowed
    reasons[allowed & ~keep] = LOWER_SEND_TIME_SCORE
    request, pair, slot = np.nonzero(keep)
    per_request = np.bincount(request, minlength=n_requests)
    # each request's rows are followed by its no_action row in the model's input
    no_action_row = np.cumsum(per_request + 1) - 1
    return Candidates(
        request=request, pair=pair, slot=slot, grid_row=pair_grid_row[pair],
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
