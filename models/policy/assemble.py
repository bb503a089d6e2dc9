"""Turning the arrays of one arbitration into a ``Decision``: action, reasons, alternatives and
aggregated exclusions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.contract import CHANNELS
from models.policy.arbitration import Choice, Valuation
from models.policy.rules import EXCLUSION_ORDER, N_CODES
from models.policy.slots import SlotGrid, from_ns, local_send_time
from models.policy.types import (
    POLICY_VERSION,
    Action,
    Alternative,
    Assignment,
    Decision,
    DecisionRequest,
    Exclusion,
    ReasonCode,
    Scores,
)

if TYPE_CHECKING:
    from models.policy.engine import DecisionEngine

R = ReasonCode
_CONTROL_REASON = {
    Assignment.GLOBAL_CONTROL: R.GLOBAL_CONTROL,
    Assignment.CAMPAIGN_HOLDOUT: R.CAMPAIGN_HOLDOUT,
}


@dataclass(slots=True)
class DecisionParts:
    """Everything computed for one request, by index into its candidate rows."""

    decision_id: str
    request: DecisionRequest
    now_ns: int
    assignment: Assignment
    grid: SlotGrid
    reasons: np.ndarray  # (P, S) exclusion codes, 0 = scored candidate
    pair_index: np.ndarray  # (N,) candidate rows
    slot_index: np.ndarray  # (N,)
    slot_score: np.ndarray  # (2, S)
    p_conversion: np.ndarray  # (N + 1,), the last row is no_action
    valuation: Valuation
    options: np.ndarray  # (n_options,) best row of each pair
    choice: Choice
    churn_risk: float
    channel_scores: np.ndarray  # (C,)


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def assemble_decision(engine: DecisionEngine, parts: DecisionParts) -> Decision:
    catalog, request = engine.catalog_, parts.request
    rows_of_channel = engine.policy_.grid_row_of_channel
    valuation, options, choice = parts.valuation, parts.options, parts.choice
    n_options = int(options.shape[0])
    treated = parts.assignment is Assignment.TREATED
    chosen = choice.chosen if treated else n_options

    def action(option: int, local: bool = True) -> Action:
        row = options[option]
        pair, slot = parts.pair_index[row], parts.slot_index[row]
        channel = int(catalog.pair_channel[pair])
        send_ns = int(parts.grid.send_ns[rows_of_channel[channel], slot])
        return Action(
            message_id=catalog.message_ids[catalog.pair_message[pair]],
            channel=CHANNELS[channel],
            send_at=from_ns(send_ns),
            send_at_local=local_send_time(send_ns, request.timezone) if local else "",
        )

    reasons: list[ReasonCode] = []
    chosen_action: Action | None = None
    p_no_action = float(parts.p_conversion[-1])
    scores = Scores(None, p_no_action, None, parts.churn_risk, None, None)
    expected_value = 0.0
    if not treated:
        reasons.append(_CONTROL_REASON[parts.assignment])
    elif chosen < n_options:
        row = options[chosen]
        pair, slot = parts.pair_index[row], parts.slot_index[row]
        channel = int(catalog.pair_channel[pair])
        grid_row = rows_of_channel[channel]
        chosen_action = action(chosen)
        expected_value = float(valuation.expected_value[row])
        explored_away = choice.explored and chosen != choice.greedy
        reasons.append(R.EXPLORATION if explored_away else R.HIGHEST_EXPECTED_VALUE)
        if parts.grid.shifted[grid_row, slot]:
            reasons.append(R.QUIET_HOURS_SHIFTED)
        scores = Scores(
            conversion_with_action=float(parts.p_conversion[row]),
            conversion_without_action=p_no_action,
            uplift=float(valuation.uplift[row]),
            churn_risk=parts.churn_risk,
            channel_preference=_finite(parts.channel_scores[channel]),
            send_time_score=float(parts.slot_score[grid_row, slot]),
        )
    elif choice.explored and choice.greedy != n_options:
        reasons.append(R.EXPLORATION)
    else:
        reasons.append(R.NO_CANDIDATES if n_options == 0 else R.BELOW_NO_ACTION)
    if request.cold_start:
        reasons.append(R.COLD_START)

    counterfactual = None
    if not treated and choice.greedy < n_options:
        counterfactual = action(choice.greedy)

    return Decision(
        decision_id=parts.decision_id,
        customer_id=request.customer_id,
        decided_at=request.now,
        action=chosen_action,
        expected_value=expected_value,
        propensity=choice.propensity if treated else 1.0,
        explored=choice.explored and treated,
        scores=scores,
        reasons=tuple(reasons),
        alternatives=_alternatives(parts, chosen, treated, action),
        exclusions=engine.exclusion_rows_(parts.reasons),
        model_versions=dict(engine.models.versions),
        cold_start=bool(request.cold_start),
        assignment=parts.assignment,
        campaign=request.campaign,
        policy_name=engine.arbitration.policy_name,
        policy_version=POLICY_VERSION,
        config_hash=engine.config_hash_,
        seed=engine.seed,
        n_candidates=int(parts.pair_index.shape[0]),
        counterfactual=counterfactual,
        request=request,
    )


def _alternatives(
    parts: DecisionParts, chosen: int, treated: bool, action: Callable[[int, bool], Action]
) -> tuple[Alternative, ...]:
    """The best ``top_k`` options that were not chosen (no_action included), each with the
    reason it lost."""
    top_k = parts.request.top_k
    options, valuation, choice = parts.options, parts.valuation, parts.choice
    n_options = int(options.shape[0])
    if top_k == 0:
        return ()
    values = np.append(valuation.expected_value[options], 0.0)
    alternatives: list[Alternative] = []
    for option in np.argsort(-values, kind="stable"):
        if option == chosen:
            continue
        if option == choice.greedy:
            lost = R.EXPLORATION if treated else _CONTROL_REASON[parts.assignment]
        elif option == n_options or valuation.beats_no_action[options[option]]:
            lost = R.LOWER_EXPECTED_VALUE
        else:
            lost = R.BELOW_NO_ACTION
        if option == n_options:
            alternatives.append(Alternative(None, None, None, 0.0, None, lost))
        else:
            sent = action(int(option), False)
            alternatives.append(
                Alternative(
                    sent.message_id, sent.channel, sent.send_at,
                    float(values[option]), float(valuation.uplift[options[option]]), lost,
                )
            )
        if len(alternatives) == top_k:
            break
    return tuple(alternatives)


class ExclusionRows:
    """Builds the aggregated exclusion rows of a reason matrix.

    Customers in the same situation (stage, consents, caps reached, quiet hours) get the same
    rows, so the immutable tuples are cached by their content: building some forty dataclasses
    was the largest single cost of a decision. Both caches are bounded.
    """

    def __init__(self, message_ids: tuple[str, ...], pair_message: np.ndarray,
                 pair_channel: np.ndarray, max_cached: int = 20_000) -> None:
        self._pair_message_id = [message_ids[m] for m in pair_message.tolist()]
        self._pair_channel = [CHANNELS[c] for c in pair_channel.tolist()]
        self._key_offset = np.arange(len(self._pair_channel))[:, None] * N_CODES
        self._cache: dict[tuple[int, int], Exclusion] = {}
        self._tuples: dict[bytes, tuple[Exclusion, ...]] = {}
        self._max_cached = max_cached

    def __call__(self, reasons: np.ndarray) -> tuple[Exclusion, ...]:
        n_pairs = reasons.shape[0]
        keys = (self._key_offset + reasons).ravel()
        counts = np.bincount(keys, minlength=n_pairs * N_CODES)
        counts[::N_CODES] = 0  # code 0: scored candidates, not exclusions
        present = np.flatnonzero(counts)
        present_counts = counts[present]
        signature = present.tobytes() + present_counts.tobytes()
        known = self._tuples.get(signature)
        if known is not None:
            return known
        cache, rows = self._cache, []
        for key, count in zip(present.tolist(), present_counts.tolist(), strict=True):
            row = cache.get((key, count))
            if row is None:
                pair, code = divmod(key, N_CODES)
                reason = EXCLUSION_ORDER[code - 1]
                message_id, channel = self._pair_message_id[pair], self._pair_channel[pair]
                row = Exclusion(message_id, channel, reason, count)
                if len(cache) < self._max_cached:
                    cache[(key, count)] = row
            rows.append(row)
        result = tuple(rows)
        if len(self._tuples) < self._max_cached:
            self._tuples[signature] = result
        return result
