"""The recommend path: customer state from the store, decisions from the ``Decider``, a logged,
JSON-ready answer.

``Recommender`` reads each customer's profile and packed event history (viewed as the
one-customer ``EventLog`` the feature layer reads, in catalog message codes, with the events'
product categories), takes the model set
being served once per call, lets the decider decide for every customer of the call at once, logs
each decision with the record that replays it (``Decision.to_log_record()``) in one write, and
shapes the answers as plain dicts in the ``Recommendation`` schema (serialised once, by orjson,
without a second validation pass).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from features.contract import Table
from features.eventlog import EventLog
from features.io import parse_table
from models.policy import Action, Decision
from serving.customer_features import CustomerState
from serving.decision import Decider, DecisionContext
from serving.metrics import ServingMetrics
from serving.model_follower import ModelFollower, ModelSet
from serving.schemas.recommend import RecommendRequest
from serving.settings import Settings
from serving.stores.base import DecisionLogEntry, Store

logger = logging.getLogger(__name__)

#: Builds the decider once at start from the catalog (validated contract frame, in ``EventLog``
#: message-code order) and the settings; ``None`` when there is nothing to decide with.
DeciderFactory = Callable[[pd.DataFrame, Settings], Decider | None]


class ModelsUnavailableError(RuntimeError):
    """No complete, checked model set is loaded yet."""


class EngineUnavailableError(RuntimeError):
    """No decision engine is wired into this service."""


class UnknownMessageError(ValueError):
    """A request names a message the catalog does not hold (``index``: its place in a batch)."""

    def __init__(self, index: int, message_id: str, catalog: Sequence[str]) -> None:
        super().__init__(
            f"unknown message_id {message_id!r}: expected ids of the catalog ({', '.join(catalog)})"
        )
        self.index = index


def load_catalog(store: Store) -> pd.DataFrame:
    """The stored catalog as a validated contract frame (empty when nothing was seeded)."""
    records = store.catalog()
    if not records:
        return pd.DataFrame()
    return parse_table(pd.DataFrame.from_records(records), Table.CATALOG, "store catalog")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _action(action: Action | None, timezone: str) -> dict[str, Any]:
    if action is None:
        return {"type": "no_action"}
    return {
        "type": "send",
        "message_id": action.message_id,
        "channel": action.channel.value,
        "send_at_utc": _iso(action.send_at),
        "send_at_local": action.send_at_local,
        "timezone": timezone,
    }


def recommendation_payload(decision: Decision) -> dict[str, Any]:
    """A decision as the JSON body of ``serving.schemas.recommend.Recommendation``."""
    scores = decision.scores
    return {
        "decision_id": decision.decision_id,
        "customer_id": decision.customer_id,
        "decided_at": _iso(decision.decided_at),
        "action": _action(decision.action, decision.request.timezone),
        "expected_value": decision.expected_value,
        "propensity": decision.propensity,
        "scores": {
            "conversion": scores.conversion_with_action,
            "conversion_without_action": scores.conversion_without_action,
            "uplift": scores.uplift,
            "churn_risk": scores.churn_risk,
            "channel_preference": scores.channel_preference,
            "send_time": scores.send_time_score,
        },
        "reasons": [r.value for r in decision.reasons],
        "alternatives": [
            {
                "message_id": alt.message_id,
                "channel": None if alt.channel is None else alt.channel.value,
                "send_at_utc": None if alt.send_at is None else _iso(alt.send_at),
                "expected_value": alt.expected_value,
                "reasons": [alt.reason.value],
            }
            for alt in decision.alternatives
        ],
        "model_versions": dict(decision.model_versions),
        "n_candidates": decision.n_candidates,
        "cold_start": decision.cold_start,
    }


def log_entry(decision: Decision) -> DecisionLogEntry:
    """The decision log row: the contract's decision columns and the full replay record."""
    action = decision.action
    return DecisionLogEntry(
        decision_id=decision.decision_id,
        customer_id=decision.customer_id,
        ts=decision.decided_at,
        message_id=None if action is None else action.message_id,
        channel=None if action is None else action.channel,
        send_at=None if action is None else action.send_at,
        propensity=decision.propensity,
        policy=decision.policy_name,
        campaign=decision.campaign,
        record=decision.to_log_record(),
    )


def context_of(request: RecommendRequest, now: datetime) -> DecisionContext:
    """The request's constraints; ``now`` is the server clock unless the caller gives one."""
    ctx = request.context
    return DecisionContext(
        now=(ctx.now or now).astimezone(UTC),
        channels=None if ctx.channels is None else tuple(ctx.channels),
        message_ids=None if ctx.message_ids is None else tuple(ctx.message_ids),
        top_k=ctx.top_k,
        campaign=ctx.campaign,
    )


class Recommender:
    """Answers recommend requests; safe to call from many threads."""

    def __init__(
        self,
        store: Store,
        follower: ModelFollower,
        decider: Decider | None,
        metrics: ServingMetrics,
    ) -> None:
        self.store = store
        self.follower = follower
        self.decider = decider
        self.metrics = metrics
        self.message_ids: tuple[str, ...] = () if decider is None else decider.message_ids
        self._catalog_code = {m: i for i, m in enumerate(self.message_ids)}
        self._remap = np.empty(0, dtype=np.int16)

    def _catalog_codes(self, store_codes: np.ndarray, store_ids: tuple[str, ...]) -> np.ndarray:
        """Translate the store's message codes to catalog positions (``-1``: not in catalog)."""
        if len(self._remap) != len(store_ids) + 1:  # the store dictionary only ever grows
            # Slot 0 answers the store's -1 (no message), so one lookup does every event.
            self._remap = np.asarray(
                [-1, *(self._catalog_code.get(m, -1) for m in store_ids)], dtype=np.int16
            )
        return self._remap[store_codes.astype(np.intp) + 1]

    def customer_state(self, customer_id: str) -> CustomerState:
        profile = self.store.get_customer(customer_id)
        arrays = self.store.customer_events(customer_id)
        n_events = len(arrays.ts_ns)
        # The store keeps each history sorted by time (``Store.customer_events``), so the
        # arrays are the one-customer log as they are (``EventLog.from_arrays`` would sort).
        events = EventLog(
            customer_ids=np.asarray([customer_id], dtype=object),
            offsets=np.asarray([0, n_events], dtype=np.int64),
            customer=np.zeros(n_events, dtype=np.int32),
            ts_ns=np.asarray(arrays.ts_ns, dtype=np.int64),
            event_type=np.asarray(arrays.event_type, dtype=np.int16),
            channel=np.asarray(arrays.channel, dtype=np.int16),
            message=self._catalog_codes(arrays.message, arrays.message_ids),
            value=np.asarray(arrays.value, dtype=np.float64),
            message_ids=self.message_ids,
            # In the store's category codes; the feature builder maps them to the served
            # model spec's categories (which may change with the models).
            category=arrays.category,
            category_ids=arrays.category_ids,
        )
        return CustomerState(customer_id=customer_id, profile=profile, events=events)

    def _ready(self) -> tuple[Decider, ModelSet]:
        models = self.follower.current
        if models is None:
            raise ModelsUnavailableError(
                "models not loaded: " + (self.follower.last_reload_error or "loading")
            )
        if self.decider is None:
            raise EngineUnavailableError(
                "no decision engine is configured in this service (no catalog in the store)"
            )
        return self.decider, models

    def _check_messages(self, contexts: Sequence[DecisionContext]) -> None:
        for index, context in enumerate(contexts):
            for message_id in context.message_ids or ():
                if message_id not in self._catalog_code:
                    raise UnknownMessageError(index, message_id, self.message_ids)

    def recommend(self, request: RecommendRequest) -> dict[str, Any]:
        return self.recommend_many([request])[0]

    def recommend_many(self, requests: Sequence[RecommendRequest]) -> list[dict[str, Any]]:
        """Decide for every request with one model set and one set of model calls, log the
        decisions, and return the answers in request order once the log holds them."""
        answers, logged = self.decide_and_log(requests)
        logged.result()
        return answers

    def decide_and_log(
        self, requests: Sequence[RecommendRequest]
    ) -> tuple[list[dict[str, Any]], Future[None]]:
        """The answers, and the future of their decision-log commit: an answer must not be sent
        before it resolves (the store may commit it together with other requests' decisions)."""
        decider, models = self._ready()
        now = datetime.now(UTC)
        contexts = [context_of(r, now) for r in requests]
        self._check_messages(contexts)
        states = [self.customer_state(r.customer_id) for r in requests]
        decisions = decider.decide_many(states, contexts, models)
        logged = self.store.submit_decisions([log_entry(d) for d in decisions])
        counter = self.metrics.decisions
        for decision in decisions:
            action = decision.action
            counter.labels(
                action="no_action" if action is None else "send",
                channel="none" if action is None else action.channel.value,
                cold_start="true" if decision.cold_start else "false",
            ).inc()
        return [recommendation_payload(d) for d in decisions], logged
