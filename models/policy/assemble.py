"""Turning the arrays of one arbitration into a ``Decision``: action, reasons, alternatives and
aggregated exclusions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.contract import CHANNELS
from models.policy.arbitration import Arbitration, Choice, choose
from models.policy.batch import Candidates
from models.policy.randomisation import decision_id, exploration_draw
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
_NO_DRAW = (1.0, 0.0)  # an exploration draw that never explores
_CONTROL_REASON = {
    Assignment.GLOBAL_CONTROL: R.GLOBAL_CONTROL,
    Assignment.CAMPAIGN_HOLDOUT: R.CAMPAIGN_HOLDOUT,
}


@dataclass(slots=True)
class BatchParts:
    """Everything computed for a batch of requests, by index into its candidate rows."""

    requests: Sequence[DecisionRequest]
    now_ns: list[int]
    assignments: list[Assignment]
    grids: list[SlotGrid]
    candidates: Candidates
    arbitration: Arbitration
    churn_risk: list[float]
    channel_scores: np.ndarray  # (B, C)
    exclusions: list[tuple[Exclusion, ...]]


def _finite(value: float) -> float | None:
    return None if value != value else float(value)  # NaN is the only value unequal to itself


class _Request:
    """Reads one request's rows out of the batch arrays."""

    __slots__ = ("engine", "parts", "index", "grid", "start", "timezone")

    def __init__(self, engine: DecisionEngine, parts: BatchParts, index: int) -> None:
        self.engine, self.parts, self.index = engine, parts, index
        self.grid = parts.grids[index]
        self.start = int(parts.arbitration.option_start[index])
        self.timezone = parts.requests[index].timezone

    def row(self, option: int) -> int:
        return int(self.parts.arbitration.options[self.start + option])

    def action(self, option: int, local: bool = True) -> Action:
        catalog, candidates = self.engine.catalog_, self.parts.candidates
        row = self.row(option)
        pair = candidates.pair[row]
        send_ns = int(self.grid.send_ns[candidates.grid_row[row], candidates.slot[row]])
        return Action(
            message_id=catalog.message_ids[catalog.pair_message[pair]],
            channel=CHANNELS[catalog.pair_channel[pair]],
            send_at=from_ns(send_ns),
            send_at_local=local_send_time(send_ns, self.timezone) if local else "",
        )


def assemble_decisions(engine: DecisionEngine, parts: BatchParts) -> list[Decision]:
    arbitration = parts.arbitration
    epsilon = engine.arbitration.exploration.epsilon
    n_options = arbitration.n_options.tolist()
    greedy = arbitration.greedy.tolist()
    decisions = []
    for i, request in enumerate(parts.requests):
        treated = parts.assignments[i] is Assignment.TREATED
        explore = epsilon if treated else 0.0
        draws = (
            exploration_draw(engine.seed, request.customer_id, parts.now_ns[i])
            if explore > 0 else _NO_DRAW
        )
        choice = choose(n_options[i], greedy[i], explore, draws)
        decisions.append(_decision(engine, parts, i, choice, treated))
    return decisions


def _decision(
    engine: DecisionEngine, parts: BatchParts, index: int, choice: Choice, treated: bool
) -> Decision:
    request, arbitration = parts.requests[index], parts.arbitration
    view = _Request(engine, parts, index)
    n_options = int(arbitration.n_options[index])
    chosen = choice.chosen if treated else n_options
    assignment = parts.assignments[index]
    reasons: list[ReasonCode] = []
    chosen_action: Action | None = None
    p_no_action = float(arbitration.p_no_action[index])
    churn_risk = parts.churn_risk[index]
    scores = Scores(None, p_no_action, None, churn_risk, None, None)
    expected_value = 0.0
    if not treated:
        reasons.append(_CONTROL_REASON[assignment])
    elif chosen < n_options:
        row = view.row(chosen)
        candidates = parts.candidates
        channel = int(engine.catalog_.pair_channel[candidates.pair[row]])
        chosen_action = view.action(chosen)
        expected_value = float(arbitration.expected_value[row])
        explored_away = choice.explored and chosen != choice.greedy
        reasons.append(R.EXPLORATION if explored_away else R.HIGHEST_EXPECTED_VALUE)
        if view.grid.shifted[candidates.grid_row[row], candidates.slot[row]]:
            reasons.append(R.QUIET_HOURS_SHIFTED)
        scores = Scores(
            conversion_with_action=float(arbitration.p_action[row]),
            conversion_without_action=p_no_action,
            uplift=float(arbitration.uplift[row]),
            churn_risk=churn_risk,
            channel_preference=_finite(float(parts.channel_scores[index, channel])),
            send_time_score=float(arbitration.send_time_score[row]),
        )
    elif choice.explored and choice.greedy != n_options:
        reasons.append(R.EXPLORATION)
    else:
        reasons.append(R.NO_CANDIDATES if n_options == 0 else R.BELOW_NO_ACTION)
    if request.cold_start:
        reasons.append(R.COLD_START)

    counterfactual = None
    if not treated and choice.greedy < n_options:
        counterfactual = view.action(choice.greedy)

    return Decision(
        decision_id=decision_id(
            engine.seed, request.customer_id, parts.now_ns[index], request.campaign,
            engine.deterministic_ids,
        ),
        customer_id=request.customer_id,
        decided_at=request.now,
        action=chosen_action,
        expected_value=expected_value,
        propensity=choice.propensity if treated else 1.0,
        explored=choice.explored and treated,
        scores=scores,
        reasons=tuple(reasons),
        alternatives=_alternatives(view, n_options, chosen, choice, treated, assignment),
        exclusions=parts.exclusions[index],
        model_versions=dict(engine.models.versions),
        cold_start=bool(request.cold_start),
        assignment=assignment,
        campaign=request.campaign,
        policy_name=engine.arbitration.policy_name,
        policy_version=POLICY_VERSION,
        config_hash=engine.config_hash_,
        seed=engine.seed,
        n_candidates=int(parts.candidates.per_request[index]),
        counterfactual=counterfactual,
        request=request,
    )


def _alternatives(
    view: _Request, n_options: int, chosen: int, choice: Choice, treated: bool,
    assignment: Assignment,
) -> tuple[Alternative, ...]:
    """The best ``top_k`` options that were not chosen (no_action included), each with the
    reason it lost."""
    top_k = view.parts.requests[view.index].top_k
    if top_k == 0:
        return ()
    arbitration = view.parts.arbitration
    rows = arbitration.options[view.start : view.start + n_options]
    values = np.append(arbitration.expected_value[rows], 0.0)
    beats = arbitration.beats_no_action[rows].tolist()
    alternatives: list[Alternative] = []
    for option in np.argsort(-values, kind="stable").tolist():
        if option == chosen:
            continue
        if option == choice.greedy:
            lost = R.EXPLORATION if treated else _CONTROL_REASON[assignment]
        elif option == n_options or beats[option]:
            lost = R.LOWER_EXPECTED_VALUE
        else:
            lost = R.BELOW_NO_ACTION
        if option == n_options:
            alternatives.append(Alternative(None, None, None, 0.0, None, lost))
        else:
            sent = view.action(option, False)
            alternatives.append(
                Alternative(
                    sent.message_id, sent.channel, sent.send_at,
                    float(values[option]), float(arbitration.uplift[rows[option]]), lost,
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
        """The rows of one request's (P, S) reason matrix."""
        return self.many(reasons[None])[0]

    def many(self, reasons: np.ndarray) -> list[tuple[Exclusion, ...]]:
        """The rows of each request of a (B, P, S) batch of reason matrices."""
        n_requests, n_pairs = reasons.shape[:2]
        width = n_pairs * N_CODES
        keys = (self._key_offset[None] + reasons).reshape(n_requests, -1)
        keys += (np.arange(n_requests) * width)[:, None]
        counts = np.bincount(keys.ravel(), minlength=n_requests * width).reshape(n_requests, width)
        counts[:, ::N_CODES] = 0  # code 0: scored candidates, not exclusions
        # slot counts fit int16; the row's bytes identify the customer's situation
        signatures = counts.astype(np.int16)
        known, results = self._tuples, []
        for i in range(n_requests):
            signature = signatures[i].tobytes()
            rows = known.get(signature)
            if rows is None:
                rows = self._build(counts[i])
                if len(known) < self._max_cached:
                    known[signature] = rows
            results.append(rows)
        return results

    def _build(self, counts: np.ndarray) -> tuple[Exclusion, ...]:
        present = np.flatnonzero(counts)
        cache, rows = self._cache, []
        for key, count in zip(present.tolist(), counts[present].tolist(), strict=True):
            row = cache.get((key, count))
            if row is None:
                pair, code = divmod(key, N_CODES)
                reason = EXCLUSION_ORDER[code - 1]
                message_id, channel = self._pair_message_id[pair], self._pair_channel[pair]
                row = Exclusion(message_id, channel, reason, count)
                if len(cache) < self._max_cached:
                    cache[(key, count)] = row
            rows.append(row)
        return tuple(rows)
