"""The recommend path: customer state from the store, a decision from the engine, a logged answer.

``Recommender`` does everything around the decision itself: it reads the profile and the event
history (as the one-customer ``EventLog`` the feature layer reads), takes the model set being
served, calls a ``DecisionFunction`` (the seam where ``models.policy``'s decision engine plugs
in), logs every decision with the record that makes it reproducible, and shapes the response.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from features.contract import Channel, Table
from features.eventlog import EventLog
from features.io import parse_table
from serving.metrics import ServingMetrics
from serving.model_follower import ModelFollower, ModelSet
from serving.schemas.recommend import (
    Alternative,
    NoAction,
    Recommendation,
    RecommendRequest,
    Scores,
    SendAction,
)
from serving.settings import Settings
from serving.stores.base import CustomerProfile, DecisionLogEntry, Store

logger = logging.getLogger(__name__)


class ModelsUnavailableError(RuntimeError):
    """No complete, checked model set is loaded yet."""


class EngineUnavailableError(RuntimeError):
    """No decision engine is wired into this service."""


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """The caller's constraints, normalised (``now`` in UTC)."""

    now: datetime
    channels: tuple[Channel, ...] | None = None
    message_ids: tuple[str, ...] | None = None
    top_k: int = 3
    campaign: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerState:
    """What the store knows about a customer at decision time."""

    customer_id: str
    profile: CustomerProfile | None
    events: EventLog

    @property
    def cold_start(self) -> bool:
        return self.profile is None


@dataclass(frozen=True, slots=True)
class ChosenAction:
    message_id: str
    channel: Channel
    send_at: datetime


@dataclass(frozen=True, slots=True)
class AlternativeOutcome:
    message_id: str | None
    channel: Channel | None
    send_at: datetime | None
    expected_value: float | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    """What a decision function decided (``action=None`` is ``no_action``).

    ``scores`` uses the keys of ``serving.schemas.recommend.Scores``; ``details`` is anything
    JSON-serialisable the engine wants in the decision log (features, candidate counts...);
    ``decision_id`` is the engine's own id when it draws one (else the service makes a UUID).
    """

    action: ChosenAction | None
    expected_value: float
    propensity: float
    policy: str
    scores: Mapping[str, float | None] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    alternatives: tuple[AlternativeOutcome, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    decision_id: str | None = None


class DecisionFunction(Protocol):
    """Decides for one customer with the given model set (pure: no I/O, no global state)."""

    def __call__(
        self, state: CustomerState, context: DecisionContext, models: ModelSet
    ) -> DecisionOutcome: ...


#: Builds the decision function once at start, from the catalog (validated contract frame, in
#: ``EventLog`` message-code order) and the settings (policy YAML paths, seed, exploration).
DecisionFactory = Callable[[pd.DataFrame, Settings], DecisionFunction | None]


def default_decision_factory(catalog: pd.DataFrame, settings: Settings) -> DecisionFunction | None:
    """The engine the service runs unless told otherwise. ``models.policy``'s decision engine is
    wired in here; until then there is none and /v1/recommend answers 503."""
    return None


def load_catalog(store: Store) -> pd.DataFrame:
    """The stored catalog as a validated contract frame (empty when nothing was seeded)."""
    records = store.catalog()
    if not records:
        return pd.DataFrame()
    return parse_table(pd.DataFrame.from_records(records), Table.CATALOG, "store catalog")


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class Recommender:
    """Answers recommend requests; safe to call from many threads."""

    def __init__(
        self,
        store: Store,
        follower: ModelFollower,
        decide: DecisionFunction | None,
        message_ids: Sequence[str],
        settings: Settings,
        metrics: ServingMetrics,
    ) -> None:
        self.store = store
        self.follower = follower
        self.decide = decide
        self.message_ids = tuple(message_ids)
        self.settings = settings
        self.metrics = metrics
        self._catalog_code = {m: i for i, m in enumerate(self.message_ids)}
        self._remap = np.empty(0, dtype=np.int16)

    def _catalog_codes(self, store_codes: np.ndarray, store_ids: tuple[str, ...]) -> np.ndarray:
        """Translate the store's message codes to catalog positions (``-1``: not in catalog)."""
        if len(self._remap) != len(store_ids):  # the store dictionary only ever grows
            self._remap = np.asarray(
                [self._catalog_code.get(m, -1) for m in store_ids], dtype=np.int16
            )
        remap = self._remap
        return np.where(store_codes >= 0, remap[np.maximum(store_codes, 0)], -1).astype(np.int16)

    def customer_state(self, customer_id: str) -> CustomerState:
        profile = self.store.get_customer(customer_id)
        arrays = self.store.customer_events(customer_id)
        events = EventLog.from_arrays(
            customer_id,
            arrays.ts_ns,
            arrays.event_type,
            arrays.channel,
            self._catalog_codes(arrays.message, arrays.message_ids),
            arrays.value,
            self.message_ids,
        )
        return CustomerState(customer_id=customer_id, profile=profile, events=events)

    def _ready(self) -> tuple[DecisionFunction, ModelSet]:
        models = self.follower.current
        if models is None:
            raise ModelsUnavailableError(
                "models not loaded: " + (self.follower.last_reload_error or "loading")
            )
        if self.decide is None:
            raise EngineUnavailableError("no decision engine is configured in this service")
        return self.decide, models

    def recommend(self, request: RecommendRequest) -> Recommendation:
        return self.recommend_many([request])[0]

    def recommend_many(self, requests: Sequence[RecommendRequest]) -> list[Recommendation]:
        """Decide for each request with one model set, then log them all in one write."""
        decide, models = self._ready()
        answers: list[Recommendation] = []
        entries: list[DecisionLogEntry] = []
        for request in requests:
            context = _context(request)
            state = self.customer_state(request.customer_id)
            outcome = decide(state, context, models)
            answer = _recommendation(state, context, outcome, models)
            answers.append(answer)
            entries.append(self._log_entry(state, context, outcome, answer))
        self.store.log_decisions(entries)
        for answer in answers:
            action = answer.action
            channel = action.channel.value if isinstance(action, SendAction) else "none"
            self.metrics.decisions.labels(
                action=action.type, channel=channel, cold_start=str(answer.cold_start).lower()
            ).inc()
        return answers

    def _log_entry(
        self,
        state: CustomerState,
        context: DecisionContext,
        outcome: DecisionOutcome,
        answer: Recommendation,
    ) -> DecisionLogEntry:
        events = state.events
        record = {
            "response": answer.model_dump(mode="json"),
            "context": {**asdict(context), "now": context.now.isoformat()},
            "state": {
                "n_events": events.n_events,
                "last_event_ns": int(events.ts_ns[-1]) if events.n_events else None,
                "profile": None if state.profile is None else _profile_record(state.profile),
            },
            "policy": {
                "name": outcome.policy,
                "seed": self.settings.seed,
                "exploration_epsilon": self.settings.exploration_epsilon,
                "control_share": self.settings.control_share,
            },
            "details": dict(outcome.details),
        }
        action = outcome.action
        return DecisionLogEntry(
            decision_id=answer.decision_id,
            customer_id=state.customer_id,
            ts=context.now,
            message_id=None if action is None else action.message_id,
            channel=None if action is None else action.channel,
            send_at=None if action is None else action.send_at,
            propensity=outcome.propensity,
            policy=outcome.policy,
            campaign=context.campaign,
            record=record,
        )


def _context(request: RecommendRequest) -> DecisionContext:
    ctx = request.context
    return DecisionContext(
        now=(ctx.now or datetime.now(UTC)).astimezone(UTC),
        channels=None if ctx.channels is None else tuple(ctx.channels),
        message_ids=None if ctx.message_ids is None else tuple(ctx.message_ids),
        top_k=ctx.top_k,
        campaign=ctx.campaign,
    )


def _profile_record(profile: CustomerProfile) -> dict[str, Any]:
    return {
        "timezone": profile.timezone,
        "signup_ts": profile.signup_ts.isoformat(),
        "consents": {str(k): v for k, v in profile.consents.items()},
        "attributes": dict(profile.attributes),
    }


def _recommendation(
    state: CustomerState, context: DecisionContext, outcome: DecisionOutcome, models: ModelSet
) -> Recommendation:
    timezone = state.profile.timezone if state.profile is not None else "UTC"
    chosen = outcome.action
    action: SendAction | NoAction
    if chosen is None:
        action = NoAction()
    else:
        send_at = chosen.send_at.astimezone(UTC)
        action = SendAction(
            message_id=chosen.message_id,
            channel=chosen.channel,
            send_at_utc=send_at,
            send_at_local=send_at.astimezone(_zone(timezone)),
            timezone=timezone,
        )
    return Recommendation(
        decision_id=outcome.decision_id or str(uuid.uuid4()),
        customer_id=state.customer_id,
        decided_at=context.now,
        action=action,
        expected_value=outcome.expected_value,
        propensity=outcome.propensity,
        scores=Scores(**dict(outcome.scores)),
        reasons=list(outcome.reasons),
        alternatives=[
            Alternative(
                message_id=alt.message_id,
                channel=alt.channel,
                send_at_utc=None if alt.send_at is None else alt.send_at.astimezone(UTC),
                expected_value=alt.expected_value,
                reasons=list(alt.reasons),
            )
            for alt in outcome.alternatives[: context.top_k]
        ],
        model_versions=dict(models.versions),
        cold_start=state.cold_start,
    )
