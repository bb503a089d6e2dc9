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
from models.interfaces import SelectiveSendTimeScorer
from models.policy.arbitration import arbitrate
from models.policy.assemble import BatchParts, ExclusionRows, assemble_decisions
from models.policy.batch import build_reasons, model_inputs, select_slots, stacked
from models.policy.catalog import STAGE_INDEX, CatalogArrays, build_catalog_arrays
from models.policy.config import ArbitrationConfig, ContactPolicy, config_digest
from models.policy.history import ContactHistory, MessageCodeMap, read_history
from models.policy.randomisation import assign
from models.policy.rules import CompiledContactPolicy, pair_reasons, slot_reasons
from models.policy.slots import SlotGrid, build_slot_grid, quiet_key, to_ns, zone
from models.policy.types import (
    Assignment,
    Decision,
    DecisionInputError,
    DecisionRequest,
    ModelSet,
    ScoringError,
)

logger = logging.getLogger(__name__)

N_CHANNELS = len(CHANNELS)
HOURS_PER_WEEK = 168
MAX_TOP_K = 100
MAX_CACHED_STATES = 4096


@dataclass(slots=True)
class _Prepared:
    """A batch after the model-free, per-request steps (1-3)."""

    now_ns: list[int]
    assignments: list[Assignment]
    grids: list[SlotGrid]
    pair_reasons: list[np.ndarray]  # (P,) int8 each
    slot_reasons: dict[int, np.ndarray]  # (P, S) int8, requests whose history excludes slots


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
        caps = contact_policy.frequency_caps
        # a cap of zero sends excludes slots even without any history
        self._closed_cap = any(
            rule.max_sends <= 0 for rule in (*caps.per_channel.values(), *caps.all_channels)
        )
        self._quiet_key = quiet_key(contact_policy.quiet_hours)
        catalog_ = self.catalog_
        self.pair_message_id_ = np.array(
            [catalog_.message_ids[m] for m in catalog_.pair_message.tolist()], dtype=object
        )
        self.pair_channel_enum_ = np.array(
            [CHANNELS[c] for c in catalog_.pair_channel.tolist()], dtype=object
        )
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
        prepared = self._prepare(requests)
        features = self._stack([r.features for r in requests], "features")
        profiles = self._stack([r.hour_profile for r in requests], "hour_profile")
        n = len(requests)
        models = self.models
        churn = np.asarray(models.churn.predict_churn(features))
        _check_output("churn model", churn, (n,), probability=True)
        channel_scores = np.asarray(models.channel.predict_channels(features))
        _check_output("channel model", channel_scores, (n, N_CHANNELS), probability=False)
        grids = prepared.grids
        slot_hours = stacked([g.hour_of_week for g in grids])
        slot_score = self._slot_scores(features, profiles, slot_hours)
        reasons = build_reasons(
            prepared.pair_reasons, prepared.slot_reasons,
            stacked([g.blocked for g in grids]), self._pair_grid_row, self.policy_.quiet_code,
        )
        candidates = select_slots(
            reasons, slot_score, self._pair_grid_row, self.arbitration.send_time.slots_per_pair
        )
        message, channel, local_hour, sizes = model_inputs(
            self.catalog_, candidates, stacked([g.local_hour for g in grids])
        )
        p_conversion = np.asarray(models.conversion.predict_conversion(
            np.repeat(features, sizes, axis=0), message, channel, local_hour
        ))
        _check_output("conversion model", p_conversion, (message.shape[0],), probability=True)
        arbitration = arbitrate(
            self.catalog_, self.arbitration, candidates, p_conversion, churn, slot_score
        )
        parts = BatchParts(
            requests=requests, now_ns=prepared.now_ns, assignments=prepared.assignments,
            grids=grids, candidates=candidates, arbitration=arbitration,
            churn_risk=churn.astype(np.float64).tolist(), channel_scores=channel_scores,
            exclusions=self.exclusion_rows_.many(reasons),
        )
        return assemble_decisions(self, parts)

    # ------------------------------------------------------------------ steps

    def _slot_scores(
        self, features: np.ndarray, profiles: np.ndarray, slot_hours: np.ndarray
    ) -> np.ndarray:
        """The send-time score of every slot, (B, 2, S), from the hours of the week the slots
        fall in (``slot_hours``). A scorer that can score some hours only is asked for those
        (at most ~50 of the 168 per customer): the same scores at a third of the cost."""
        n = features.shape[0]
        at_request = np.arange(n)[:, None, None]
        send_time = self.models.send_time
        if isinstance(send_time, SelectiveSendTimeScorer):
            wanted = np.zeros((n, HOURS_PER_WEEK), dtype=bool)
            wanted[at_request, slot_hours] = True
            hours = np.asarray(send_time.predict_hours_at(features, profiles, wanted))
        else:
            hours = np.asarray(send_time.predict_hours(features, profiles))
        _check_output("send-time model", hours, (n, HOURS_PER_WEEK), probability=False)
        slot_score = hours[at_request, slot_hours]
        # a NaN score (no opinion) ranks like the lowest possible one
        if np.isnan(slot_score).any():
            slot_score = np.nan_to_num(slot_score, nan=0.0)
        return slot_score


    def _prepare(self, requests: Sequence[DecisionRequest]) -> _Prepared:
        """Validation, assignment, slot grid and exclusion rules of each request."""
        prepared = _Prepared([], [], [], [], {})
        send_time, quiet = self.arbitration.send_time, self._quiet_key
        control = self.arbitration.control_groups
        for i, request in enumerate(requests):
            now_ns = self._validate(request)
            history = read_history(
                request.history, request.customer_id, self.message_codes_, now_ns
            )
            grid = build_slot_grid(now_ns, request.timezone, send_time, quiet)
            prepared.now_ns.append(now_ns)
            prepared.assignments.append(assign(request.customer_id, request.campaign, control))
            prepared.grids.append(grid)
            prepared.pair_reasons.append(self._pair_reasons(request, history))
            if self._history_matters(history, now_ns):
                prepared.slot_reasons[i] = slot_reasons(
                    self.catalog_, self.policy_, history, grid, now_ns
                )
        return prepared

    def _history_matters(self, history: ContactHistory, now_ns: int) -> bool:
        """Whether the send-time rules can exclude more than quiet hours do: only with sends,
        a recent purchase or a cap that allows no send at all."""
        if self._closed_cap or history.send_ns.shape[0]:
            return True
        last = history.last_purchase_ns
        after = self.policy_.after_conversion_ns
        return last is not None and after > 0 and last + after > now_ns

    def _pair_reasons(self, request: DecisionRequest, history: ContactHistory) -> np.ndarray:
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
                self.catalog_,
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
        return per_pair

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

