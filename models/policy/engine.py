"""``DecisionEngine``: one customer's request in, one decision out (or a batch of them).

The pipeline per request (docs/decision-policy.md):

1. assignment: global control group / campaign holdout by stable hash;
2. candidates: catalog (message, channel) pairs x send slots in the customer's timezone;
3. exclusions: eligibility, consent, contact policy -> a reason code per (pair, slot);
4. send time: per pair, the ``slots_per_pair`` allowed slots with the best send-time score;
5. scores: the conversion model on every candidate row and on the no_action row;
6. arbitration: incremental expected value, no_action unless beaten, epsilon-greedy;
7. the ``Decision`` with propensity, reasons, alternatives and aggregated exclusions.

Models are called once per batch (``decide_many`` stacks all customers' rows), so a batch of
1,000 customers costs four predict calls, not four thousand.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from features.contract import CHANNELS, Channel, Stage
from models.policy.arbitration import best_row_per_pair, choose, value_candidates
from models.policy.assemble import DecisionParts, ExclusionRows, assemble_decision
from models.policy.catalog import STAGE_INDEX, CatalogArrays, build_catalog_arrays
from models.policy.config import ArbitrationConfig, ContactPolicy, config_digest
from models.policy.history import MessageCodeMap, read_history
from models.policy.randomisation import assign, decision_id, exploration_draw
from models.policy.rules import (
    CODE,
    CompiledContactPolicy,
    pair_reasons,
    slot_reasons,
)
from models.policy.slots import SlotGrid, build_slot_grid, quiet_key, to_ns, zone
from models.policy.types import (
    Assignment,
    Decision,
    DecisionInputError,
    DecisionRequest,
    ModelSet,
    ReasonCode,
    ScoringError,
)

logger = logging.getLogger(__name__)

N_CHANNELS = len(CHANNELS)
MAX_TOP_K = 100
MAX_CACHED_STATES = 4096
_NO_DRAW = (1.0, 0.0)  # an exploration draw that never explores


@dataclass(slots=True)
class _Prepared:
    """A request after the model-free steps (1-3)."""

    request: DecisionRequest
    now_ns: int
    assignment: Assignment
    grid: SlotGrid
    reasons: np.ndarray  # (P, S) int8


@dataclass(slots=True)
class _Candidates:
    """Rows to score for one request (step 4): candidate rows then the no_action row."""

    pair_index: np.ndarray  # (N,)
    slot_index: np.ndarray  # (N,)
    slot_score: np.ndarray  # (2, S)


def _check_output(name: str, values: object, shape: tuple[int, ...], probability: bool) -> None:
    if not isinstance(values, np.ndarray) or values.shape != shape:
        found = getattr(values, "shape", type(values).__name__)
        raise ScoringError(f"{name}: expected an array of shape {shape}, got {found}")
    # NaN fails both comparisons, so two reductions check finiteness and range at once
    if probability and values.size and not (values.min() >= 0.0 and values.max() <= 1.0):
        raise ScoringError(f"{name}: expected finite probabilities in [0, 1]")


class DecisionEngine:
    """Decides, for one customer at a time, what to send, on which channel and when — or nothing.

    Everything derived from the catalog and the configs is computed here, once; ``decide`` then
    works on small numpy arrays. ``seed`` drives exploration draws (with the customer and the
    time, so replays reproduce them); ``deterministic_ids`` derives decision ids from the same
    inputs instead of uuid4 (for simulations and replays).
    """

    def __init__(
        self,
        catalog: pd.DataFrame,
        contact_policy: ContactPolicy,
        arbitration: ArbitrationConfig,
        models: ModelSet,
        seed: int = 0,
        *,
        deterministic_ids: bool = False,
    ) -> None:
        self.contact_policy = contact_policy
        self.arbitration = arbitration
        self.models = models
        self.seed = int(seed)
        self.deterministic_ids = deterministic_ids
        self.catalog_: CatalogArrays = build_catalog_arrays(catalog, contact_policy, arbitration)
        self.policy_ = CompiledContactPolicy.compile(contact_policy)
        self.message_codes_ = MessageCodeMap(self.catalog_.message_ids)
        self.config_hash_ = config_digest(
            contact_policy.model_dump(mode="json"),
            arbitration.model_dump(mode="json"),
            self.catalog_.fingerprint(),
        )
        self._all_messages = np.ones(self.catalog_.n_messages, dtype=bool)
        self._all_channels = np.ones(N_CHANNELS, dtype=bool)
        self._pair_reasons_cache: dict[tuple[object, ...], np.ndarray] = {}
        self._pair_grid_row = self.policy_.grid_row_of_channel[self.catalog_.pair_channel]
        self._grid_rows = np.arange(2)[:, None]
        self._quiet_key = quiet_key(contact_policy.quiet_hours)
        self.exclusion_rows_ = ExclusionRows(
            self.catalog_.message_ids, self.catalog_.pair_message, self.catalog_.pair_channel
        )
        logger.info(
            "decision engine: %d messages, %d (message, channel) pairs, config %s",
            self.catalog_.n_messages, self.catalog_.n_pairs, self.config_hash_,
        )

    @property
    def message_ids(self) -> tuple[str, ...]:
        """Message codes used by the models and the contact history: the catalog's row order."""
        return self.catalog_.message_ids

    def with_models(self, models: ModelSet) -> DecisionEngine:
        """The same engine on another model set (a hot reload), sharing everything else."""
        engine = object.__new__(DecisionEngine)
        engine.__dict__.update(self.__dict__)
        engine.models = models
        return engine

    # ------------------------------------------------------------------ public API

    def decide(self, request: DecisionRequest) -> Decision:
        return self.decide_many([request])[0]

    def decide_many(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        if not requests:
            return []
        prepared = [self._prepare(r) for r in requests]
        features = self._stack([p.request.features for p in prepared], "features")
        profiles = self._stack([p.request.hour_profile for p in prepared], "hour_profile")
        n = len(prepared)
        models = self.models
        churn = np.asarray(models.churn.predict_churn(features))
        _check_output("churn model", churn, (n,), probability=True)
        channel_scores = np.asarray(models.channel.predict_channels(features))
        _check_output("channel model", channel_scores, (n, N_CHANNELS), probability=False)
        hours = np.asarray(models.send_time.predict_hours(features, profiles))
        _check_output("send-time model", hours, (n, 168), probability=False)
        if np.isnan(hours).any():
            hours = np.nan_to_num(hours, nan=0.0)

        candidates = [self._select_slots(p, hours[i]) for i, p in enumerate(prepared)]
        sizes = np.array([c.pair_index.shape[0] + 1 for c in candidates])
        p_conversion = self._score_conversion(features, prepared, candidates, sizes)
        ends = np.cumsum(sizes)
        return [
            self._finish(p, c, p_conversion[end - size : end], float(churn[i]), channel_scores[i])
            for i, (p, c, size, end) in enumerate(
                zip(prepared, candidates, sizes.tolist(), ends.tolist(), strict=True)
            )
        ]

    # ------------------------------------------------------------------ steps

    def _prepare(self, request: DecisionRequest) -> _Prepared:
        now_ns = self._validate(request)
        catalog = self.catalog_
        history = read_history(request.history, request.customer_id, self.message_codes_, now_ns)
        consents = request.consents
        consent = tuple(bool(consents.get(c, False)) for c in CHANNELS)
        # the pair rules depend on a small state that repeats across customers: cache them
        state = (
            request.candidate_message_ids, request.allowed_channels, request.stage,
            bool(request.has_open_cart), consent, history.unsubscribed.tobytes(),
        )
        per_pair = self._pair_reasons_cache.get(state)
        if per_pair is None:
            per_pair = pair_reasons(
                catalog,
                self._requested_messages(request.candidate_message_ids),
                self._allowed_channels(request.allowed_channels),
                STAGE_INDEX[request.stage],
                state[3],
                np.array(consent, dtype=bool),
                history.unsubscribed,
            )
            per_pair.flags.writeable = False  # shared by every request in this state
            if len(self._pair_reasons_cache) >= MAX_CACHED_STATES:
                self._pair_reasons_cache.clear()
            self._pair_reasons_cache[state] = per_pair
        grid = build_slot_grid(
            now_ns, request.timezone, self.arbitration.send_time, self._quiet_key
        )
        per_slot = slot_reasons(catalog, self.policy_, history, grid, now_ns)
        reasons = np.where(per_pair[:, None] > 0, per_pair[:, None], per_slot)
        assignment = assign(request.customer_id, request.campaign, self.arbitration.control_groups)
        return _Prepared(request, now_ns, assignment, grid, reasons)

    def _select_slots(self, prepared: _Prepared, hours: np.ndarray) -> _Candidates:
        grid = prepared.grid
        slot_score = hours[grid.hour_of_week]  # (2, S)
        n_slots = slot_score.shape[1]
        # rank of each slot by send-time score (ties to the earliest), shared by all pairs of a
        # grid row; a pair keeps its k best-ranked allowed slots
        order = np.argsort(-slot_score, axis=1, kind="stable")
        rank = np.empty_like(order)
        rank[self._grid_rows, order] = np.arange(n_slots)
        reasons = prepared.reasons
        allowed = reasons == 0
        ranked = np.where(allowed, rank[self._pair_grid_row], n_slots)
        k = self.arbitration.send_time.slots_per_pair
        if k < n_slots:
            kth_best = np.partition(ranked, k - 1, axis=1)[:, k - 1 : k]
            keep = ranked <= kth_best
            keep &= allowed
        else:
            keep = allowed
        reasons[allowed] = CODE[ReasonCode.LOWER_SEND_TIME_SCORE]
        reasons[keep] = 0
        pair_index, slot_index = np.nonzero(keep)
        return _Candidates(pair_index, slot_index, slot_score)

    def _score_conversion(
        self,
        features: np.ndarray,
        prepared: list[_Prepared],
        candidates: list[_Candidates],
        sizes: np.ndarray,
    ) -> np.ndarray:
        catalog, grid_row = self.catalog_, self._pair_grid_row
        total = int(sizes.sum())
        # one row per candidate, then the request's no_action row (-1 in all three)
        message = np.full(total, -1, dtype=np.int64)
        channel = np.full(total, -1, dtype=np.int64)
        local_hour = np.full(total, -1, dtype=np.int64)
        start = 0
        for p, c, size in zip(prepared, candidates, sizes.tolist(), strict=True):
            rows = slice(start, start + size - 1)
            message[rows] = catalog.pair_message[c.pair_index]
            channel[rows] = catalog.pair_channel[c.pair_index]
            local_hour[rows] = p.grid.local_hour[grid_row[c.pair_index], c.slot_index]
            start += size
        tiled = np.repeat(features, sizes, axis=0)
        p_conversion = np.asarray(
            self.models.conversion.predict_conversion(tiled, message, channel, local_hour)
        )
        _check_output("conversion model", p_conversion, (total,), probability=True)
        return p_conversion

    def _finish(
        self,
        prepared: _Prepared,
        candidates: _Candidates,
        p_conversion: np.ndarray,
        churn_risk: float,
        channel_scores: np.ndarray,
    ) -> Decision:
        request, arbitration = prepared.request, self.arbitration
        n = candidates.pair_index.shape[0]
        valuation = value_candidates(
            self.catalog_, arbitration, candidates.pair_index, p_conversion[:n],
            float(p_conversion[n]), churn_risk,
        )
        grid_row = self._pair_grid_row[candidates.pair_index]
        row_send_time = candidates.slot_score[grid_row, candidates.slot_index]
        options = best_row_per_pair(
            candidates.pair_index, valuation.expected_value, row_send_time
        )
        treated = prepared.assignment is Assignment.TREATED
        epsilon = arbitration.exploration.epsilon if treated else 0.0
        draws = (
            exploration_draw(self.seed, request.customer_id, prepared.now_ns)
            if epsilon > 0 else _NO_DRAW
        )
        choice = choose(
            valuation.expected_value[options], valuation.beats_no_action[options], epsilon, draws
        )
        parts = DecisionParts(
            decision_id=decision_id(
                self.seed, request.customer_id, prepared.now_ns, request.campaign,
                self.deterministic_ids,
            ),
            request=request,
            now_ns=prepared.now_ns,
            assignment=prepared.assignment,
            grid=prepared.grid,
            reasons=prepared.reasons,
            pair_index=candidates.pair_index,
            slot_index=candidates.slot_index,
            slot_score=candidates.slot_score,
            p_conversion=p_conversion,
            valuation=valuation,
            options=options,
            choice=choice,
            churn_risk=churn_risk,
            channel_scores=channel_scores,
        )
        return assemble_decision(self, parts)

    # ------------------------------------------------------------------ input checks

    def _validate(self, request: DecisionRequest) -> int:
        if not isinstance(request.customer_id, str) or not request.customer_id:
            raise DecisionInputError("customer_id: expected a non-empty string")
        now = request.now
        if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
            raise DecisionInputError(
                f"now: expected a timezone-aware datetime (UTC), got {now!r}"
            )
        zone(request.timezone)
        if request.stage not in STAGE_INDEX:
            raise DecisionInputError(
                f"stage: expected one of {', '.join(Stage)}, got {request.stage!r}"
            )
        features = request.features
        if not isinstance(features, np.ndarray) or features.ndim != 2 or features.shape[0] != 1:
            raise DecisionInputError(
                f"features: expected an array of shape (1, n_features), "
                f"got {getattr(features, 'shape', type(features).__name__)}"
            )
        profile = request.hour_profile
        if not isinstance(profile, np.ndarray) or profile.shape != (1, 168):
            raise DecisionInputError(
                f"hour_profile: expected an array of shape (1, 168), "
                f"got {getattr(profile, 'shape', type(profile).__name__)}"
            )
        if not isinstance(request.consents, Mapping):
            raise DecisionInputError("consents: expected a mapping of channel to bool")
        if not 0 <= request.top_k <= MAX_TOP_K:
            raise DecisionInputError(
                f"top_k: expected 0 to {MAX_TOP_K}, got {request.top_k}"
            )
        return to_ns(now)

    def _requested_messages(self, message_ids: tuple[str, ...] | None) -> np.ndarray:
        if message_ids is None:
            return self._all_messages
        index = self.catalog_.message_index
        unknown = [m for m in message_ids if m not in index]
        if unknown:
            raise DecisionInputError(
                f"candidate_message_ids: expected message ids of the catalog "
                f"({', '.join(self.catalog_.message_ids)}), got unknown {unknown[0]!r}"
            )
        requested = np.zeros(self.catalog_.n_messages, dtype=bool)
        requested[[index[m] for m in message_ids]] = True
        return requested

    def _allowed_channels(self, channels: tuple[Channel, ...] | None) -> np.ndarray:
        if channels is None:
            return self._all_channels
        allowed = np.zeros(N_CHANNELS, dtype=bool)
        for channel in channels:
            try:
                allowed[CHANNELS.index(Channel(channel))] = True
            except ValueError as exc:
                raise DecisionInputError(
                    f"allowed_channels: expected channels among {', '.join(CHANNELS)}, "
                    f"got {channel!r}"
                ) from exc
        return allowed

    @staticmethod
    def _stack(arrays: list[np.ndarray], field: str) -> np.ndarray:
        if len(arrays) == 1:
            return np.ascontiguousarray(arrays[0], dtype=np.float64)  # no copy if already so
        widths = {a.shape[1] for a in arrays}
        if len(widths) > 1:
            raise DecisionInputError(
                f"{field}: every request of a batch needs the same number of columns, "
                f"got {sorted(widths)}"
            )
        return np.ascontiguousarray(np.concatenate(arrays, axis=0), dtype=np.float64)

