"""Turning the arrays of one arbitration into a ``Decision``: action, reasons, alternatives and
aggregated exclusions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.contract import CHANNELS
from models.policy.arbitration import Arbitration, Choice, choose
from models.policy.batch import Candidates, Reasons
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


class _Options:
    """Reads options (by index into the batch's options) out of the batch arrays.

    A decision reads a few options (the chosen one, its alternatives), so fields are read as
    scalars on demand rather than converting every option of the batch."""

    def __init__(self, engine: DecisionEngine, parts: BatchParts) -> None:
        self.engine, self.parts = engine, parts
        arbitration = parts.arbitration
        self.rows = arbitration.options
        self.start: list[int] = arbitration.option_start.tolist()
        self.count: list[int] = arbitration.n_options.tolist()
        self.by_value: list[int] = []
        self.non_negative: list[int] = []
        if any(r.top_k for r in parts.requests):
            # by decreasing EV within each request (stable: ties keep pair order); no_action
            # (EV 0) ranks after every option whose EV is >= 0, as a stable sort of the values
            # with 0 appended would put it
            value = arbitration.expected_value[self.rows]
            request = parts.candidates.request[self.rows]
            self.by_value = np.lexsort((-value, request)).tolist()
            self.non_negative = np.bincount(
                request[value >= 0], minlength=len(self.start)
            ).tolist()

    def row(self, option: int) -> int:
        return int(self.rows[option])

    def value(self, option: int) -> float:
        return float(self.parts.arbitration.expected_value[self.rows[option]])

    def uplift(self, option: int) -> float:
        return float(self.parts.arbitration.uplift[self.rows[option]])

    def beats(self, option: int) -> bool:
        return bool(self.parts.arbitration.beats_no_action[self.rows[option]])

    def action(self, index: int, option: int, timezone: str | None) -> Action:
        """Option ``option`` of request ``index`` as an action; ``send_at_local`` only when a
        ``timezone`` is given."""
        candidates, row = self.parts.candidates, self.row(option)
        pair = candidates.pair[row]
        send_ns = int(self.parts.grids[index].send_ns[candidates.grid_row[row],
                                                      candidates.slot[row]])
        return Action(
            message_id=self.engine.pair_message_id_[pair],
            channel=self.engine.pair_channel_enum_[pair],
            send_at=from_ns(send_ns),
            send_at_local="" if timezone is None else local_send_time(send_ns, timezone),
        )


def assemble_decisions(engine: DecisionEngine, parts: BatchParts) -> list[Decision]:
    epsilon = engine.arbitration.exploration.epsilon
    options = _Options(engine, parts)
    greedy = parts.arbitration.greedy.tolist()
    p_no_action = parts.arbitration.p_no_action.tolist()
    n_candidates = parts.candidates.per_request.tolist()
    decisions = []
    for i, request in enumerate(parts.requests):
        treated = parts.assignments[i] is Assignment.TREATED
        explore = epsilon if treated else 0.0
        draws = (
            exploration_draw(engine.seed, request.customer_id, parts.now_ns[i])
            if explore > 0 else _NO_DRAW
        )
        choice = choose(options.count[i], greedy[i], explore, draws)
        decisions.append(_decision(
            engine, parts, options, i, choice, treated, p_no_action[i], n_candidates[i]
        ))
    return decisions


def _decision(
    engine: DecisionEngine, parts: BatchParts, options: _Options, index: int, choice: Choice,
    treated: bool, p_no_action: float, n_candidates: int,
) -> Decision:
    request = parts.requests[index]
    start, n_options = options.start[index], options.count[index]
    chosen = choice.chosen if treated else n_options
    assignment = parts.assignments[index]
    reasons: list[ReasonCode] = []
    chosen_action: Action | None = None
    churn_risk = parts.churn_risk[index]
    scores = Scores(None, p_no_action, None, churn_risk, None, None)
    expected_value = 0.0
    if not treated:
        reasons.append(_CONTROL_REASON[assignment])
    elif chosen < n_options:
        option = start + chosen
        row = options.row(option)
        arbitration, candidates = parts.arbitration, parts.candidates
        chosen_action = options.action(index, option, request.timezone)
        expected_value = float(arbitration.expected_value[row])
        explored_away = choice.explored and chosen != choice.greedy
        reasons.append(R.EXPLORATION if explored_away else R.HIGHEST_EXPECTED_VALUE)
        if parts.grids[index].shifted[candidates.grid_row[row], candidates.slot[row]]:
            reasons.append(R.QUIET_HOURS_SHIFTED)
        channel = engine.catalog_.pair_channel[candidates.pair[row]]
        preference = float(parts.channel_scores[index, channel])
        scores = Scores(
            conversion_with_action=float(arbitration.p_action[row]),
            conversion_without_action=p_no_action,
            uplift=float(arbitration.uplift[row]),
            churn_risk=churn_risk,
            channel_preference=None if preference != preference else preference,  # NaN
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
        counterfactual = options.action(index, start + choice.greedy, request.timezone)

    alternatives: tuple[Alternative, ...] = ()
    if request.top_k:
        lost_greedy = R.EXPLORATION if treated else _CONTROL_REASON[assignment]
        alternatives = _alternatives(options, index, request.top_k, chosen, choice.greedy,
                                     lost_greedy)
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
        alternatives=alternatives,
        exclusions=parts.exclusions[index],
        model_versions=dict(engine.models.versions),
        cold_start=bool(request.cold_start),
        assignment=assignment,
        campaign=request.campaign,
        policy_name=engine.arbitration.policy_name,
        policy_version=POLICY_VERSION,
        config_hash=engine.config_hash_,
        seed=engine.seed,
        n_candidates=n_candidates,
        counterfactual=counterfactual,
        request=request,
    )


def _alternatives(
    options: _Options, index: int, top_k: int, chosen: int, greedy: int, lost_greedy: ReasonCode
) -> tuple[Alternative, ...]:
    """The best ``top_k`` options that were not chosen (no_action included), each with the
    reason it lost; option indices are local to the request (``n_options`` = no_action)."""
    start, n_options = options.start[index], options.count[index]
    ranked = [o - start for o in options.by_value[start : start + n_options]]
    ranked.insert(options.non_negative[index], n_options)
    alternatives: list[Alternative] = []
    for option in ranked:
        if option == chosen:
            continue
        if option == greedy:
            lost = lost_greedy
        elif option == n_options or options.beats(start + option):
            lost = R.LOWER_EXPECTED_VALUE
        else:
            lost = R.BELOW_NO_ACTION
        if option == n_options:
            alternatives.append(Alternative(None, None, None, 0.0, None, lost))
        else:
            sent = options.action(index, start + option, None)
            alternatives.append(Alternative(
                sent.message_id, sent.channel, sent.send_at, options.value(start + option),
                options.uplift(start + option), lost,
            ))
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
        self._cache: dict[tuple[int, int], Exclusion] = {}
        self._tuples: dict[bytes, tuple[Exclusion, ...]] = {}
        self._max_cached = max_cached

    def many(self, reasons: Reasons) -> list[tuple[Exclusion, ...]]:
        """The rows of each request of a batch."""
        n_requests, n_pairs = reasons.pair.shape
        n_slots = reasons.slot.shape[1]
        width = n_pairs * N_CODES
        # open rows: one count per slot; closed pairs: all slots under the pair rule's code
        row_key = (reasons.request * n_pairs + reasons.pair_of_row) * N_CODES
        counts = np.bincount(
            (row_key[:, None] + reasons.slot).ravel(), minlength=n_requests * width
        )
        closed_request, closed_pair = np.nonzero(reasons.pair)
        closed_key = (closed_request * n_pairs + closed_pair) * N_CODES + reasons.pair[
            closed_request, closed_pair]
        counts[closed_key] += n_slots
        counts = counts.reshape(n_requests, width)
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
