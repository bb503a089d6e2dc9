"""The service's decision function: ``models.policy``'s decision engine on the champion models,
fed with the point-in-time features of each customer's stored history.

``Decider`` is built once at start from the catalog and the policy files; everything
catalog-derived lives in its engine. Each model set the follower serves is *prepared* once
(feature spec read from the estimators and checked against the catalog, the engine re-bound to
the models) and the preparation is reused by every request on that set. ``smoke_check`` is the
follower's gate: a model set that cannot score a fixed customer row with probabilities in
[0, 1], or cannot decide for it, never replaces the served one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import pandas as pd

from features.contract import CHANNELS, Channel, Col
from features.definitions import FeatureSpec
from features.eventlog import EventLog
from models.policy import (
    DEFAULT_ARBITRATION_PATH,
    DEFAULT_CONTACT_POLICY_PATH,
    ArbitrationConfig,
    ContactPolicy,
    Decision,
    DecisionEngine,
    DecisionRequest,
    load_arbitration,
    load_contact_policy,
)
from models.policy import ModelSet as PolicyModels
from serving.customer_features import CustomerState, FeatureBuilder, to_ns
from serving.model_follower import HOURS_OF_WEEK, ModelSet, check_probabilities
from serving.settings import Settings

logger = logging.getLogger(__name__)

#: The engine's name for each registry task.
ENGINE_MODEL: Final = {
    "conversion": "conversion",
    "churn": "churn",
    "channel": "channel",
    "sendtime": "send_time",
}
#: The fixed moment and customer of the smoke check.
SMOKE_NOW: Final = datetime(2024, 1, 1, 12, tzinfo=UTC)
SMOKE_CUSTOMER: Final = "nextbest-smoke-check"


class ModelSetMismatch(ValueError):
    """The models cannot serve this catalog (no feature spec, specs differ, other messages)."""


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """The caller's constraints for one decision, normalised (``now`` in UTC)."""

    now: datetime
    channels: tuple[Channel, ...] | None = None
    message_ids: tuple[str, ...] | None = None
    top_k: int = 3
    campaign: str | None = None


@dataclass(frozen=True)
class PreparedModels:
    """A served model set ready to decide: its feature builder and its engine."""

    models: ModelSet
    features: FeatureBuilder
    engine: DecisionEngine


def policy_files(settings: Settings) -> tuple[ContactPolicy, ArbitrationConfig]:
    """The contact policy and arbitration levers of the settings (packaged files by default),
    with the settings' exploration and control-group shares applied when they are set.

    Raises ``models.policy.PolicyConfigError`` naming the file, key and problem."""
    contact = load_contact_policy(settings.contact_policy_path or DEFAULT_CONTACT_POLICY_PATH)
    arbitration = load_arbitration(settings.arbitration_path or DEFAULT_ARBITRATION_PATH)
    if settings.exploration_epsilon is not None:
        exploration = arbitration.exploration.model_copy(
            update={"epsilon": settings.exploration_epsilon}
        )
        arbitration = arbitration.model_copy(update={"exploration": exploration})
    if settings.control_share is not None:
        control = arbitration.control_groups.model_copy(
            update={"global_share": settings.control_share}
        )
        arbitration = arbitration.model_copy(update={"control_groups": control})
    return contact, arbitration


def feature_spec_of(models: ModelSet) -> FeatureSpec:
    """The feature spec every estimator of the set was trained with (they must agree)."""
    specs: dict[str, Mapping[str, Any]] = {}
    for task, estimator in models.estimators.items():
        spec = getattr(estimator, "spec_", None)
        if not isinstance(spec, Mapping) or not spec:
            raise ModelSetMismatch(
                f"{task} version {models.versions.get(task)}: the estimator carries no feature "
                "spec (spec_); retrain it with the nextbest training pipeline"
            )
        specs[task] = spec
    first_task, first = next(iter(specs.items()))
    for task, spec in specs.items():
        if dict(spec) != dict(first):
            raise ModelSetMismatch(
                f"{task} and {first_task} were trained on different feature specs; promote "
                "models of one training run together"
            )
    try:
        return FeatureSpec.from_dict(first)
    except ValueError as exc:
        raise ModelSetMismatch(f"feature spec of the models: {exc}") from exc


class Decider:
    """Decides for customers with a served model set; safe to call from many threads."""

    def __init__(
        self,
        catalog: pd.DataFrame,
        contact_policy: ContactPolicy,
        arbitration: ArbitrationConfig,
        *,
        seed: int = 0,
        cold_start_channels: Sequence[Channel] = (),
    ) -> None:
        self.catalog = catalog
        self.contact_policy = contact_policy
        self.arbitration = arbitration
        self.seed = seed
        self.cold_start_channels = tuple(cold_start_channels)
        self.message_ids: tuple[str, ...] = tuple(str(m) for m in catalog[Col.MESSAGE_ID])
        # The engine needs models to exist; it is built with the first set and re-bound after.
        self._engine: DecisionEngine | None = None
        self._prepared: dict[int, PreparedModels] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, catalog: pd.DataFrame, settings: Settings) -> Decider:
        contact, arbitration = policy_files(settings)
        return cls(
            catalog,
            contact,
            arbitration,
            seed=settings.seed,
            cold_start_channels=settings.cold_start_channels,
        )

    # ------------------------------------------------------------------ model sets

    def prepare(self, models: ModelSet) -> PreparedModels:
        """The model set ready to decide (built once per set; raises ``ModelSetMismatch``)."""
        prepared = self._prepared.get(id(models))
        if prepared is not None and prepared.models is models:
            return prepared
        with self._lock:
            prepared = self._prepared.get(id(models))
            if prepared is None or prepared.models is not models:
                prepared = self._build(models)
                # Keep the served set and the one being checked; older ones are gone.
                kept = list(self._prepared.items())[-1:]
                self._prepared = dict([*kept, (id(models), prepared)])
            return prepared

    def _build(self, models: ModelSet) -> PreparedModels:
        spec = feature_spec_of(models)
        if spec.message_ids != self.message_ids:
            raise ModelSetMismatch(
                f"the models were trained for the catalog messages {list(spec.message_ids)} but "
                f"the service's catalog holds {list(self.message_ids)}: serve the catalog they "
                "were trained with, or retrain"
            )
        missing = [task for task in ENGINE_MODEL if task not in models.estimators]
        if missing:
            raise ModelSetMismatch(f"the model set lacks {', '.join(missing)}")
        scorers = PolicyModels(
            **{ENGINE_MODEL[task]: models[task] for task in ENGINE_MODEL},
            versions=dict(models.versions),
        )
        if self._engine is None:
            self._engine = DecisionEngine(
                self.catalog, self.contact_policy, self.arbitration, scorers, self.seed
            )
            engine = self._engine
        else:
            engine = self._engine.with_models(scorers)
        return PreparedModels(models, FeatureBuilder(spec, self.cold_start_channels), engine)

    def smoke_check(self, models: ModelSet) -> None:
        """Score a fixed customer row with every model and decide for it; raises with what is
        wrong (the follower then keeps the current set)."""
        prepared = self.prepare(models)
        no_codes = np.zeros(0, dtype=np.int16)
        empty = EventLog.from_arrays(
            SMOKE_CUSTOMER, np.zeros(0, dtype=np.int64), no_codes, no_codes, no_codes,
            np.zeros(0), self.message_ids,
        )  # fmt: skip
        state = CustomerState(SMOKE_CUSTOMER, None, empty)
        inputs = prepared.features.build([state], np.array([to_ns(SMOKE_NOW)]))
        row, profile = inputs.features, inputs.hour_profile
        check_probabilities("churn", models["churn"].predict_churn(row), (1,), allow_nan=False)
        check_probabilities(
            "channel", models["channel"].predict_channels(row), (1, len(CHANNELS)), allow_nan=True
        )
        check_probabilities(
            "sendtime",
            models["sendtime"].predict_hours(row, profile),
            (1, HOURS_OF_WEEK),
            allow_nan=False,
        )
        n = len(self.message_ids) * len(CHANNELS)
        message = np.append(np.repeat(np.arange(len(self.message_ids)), len(CHANNELS)), -1)
        channel = np.append(np.tile(np.arange(len(CHANNELS)), len(self.message_ids)), -1)
        hour = np.append(np.full(n, 9), -1)
        conversion = models["conversion"].predict_conversion(row, message, channel, hour)
        check_probabilities("conversion", conversion, (n + 1,), allow_nan=False)
        context = DecisionContext(now=SMOKE_NOW)
        self.decide_many([state], [context], models)

    # ------------------------------------------------------------------ decisions

    def decide_many(
        self,
        states: Sequence[CustomerState],
        contexts: Sequence[DecisionContext],
        models: ModelSet,
    ) -> list[Decision]:
        """One decision per (state, context), the models called once for all of them."""
        if not states:
            return []
        prepared = self.prepare(models)
        now_ns = np.array([to_ns(c.now) for c in contexts], dtype=np.int64)
        inputs = prepared.features.build(states, now_ns)
        requests = []
        for i, (state, context) in enumerate(zip(states, contexts, strict=True)):
            consent = inputs.consent[i].tolist()
            requests.append(
                DecisionRequest(
                    customer_id=state.customer_id,
                    now=context.now,
                    timezone=inputs.timezones[i],
                    consents=dict(zip(CHANNELS, consent, strict=True)),
                    stage=inputs.stages[i],
                    has_open_cart=bool(inputs.open_cart[i]),
                    features=inputs.features[i : i + 1],
                    hour_profile=inputs.hour_profile[i : i + 1],
                    history=state.events,
                    allowed_channels=context.channels,
                    candidate_message_ids=context.message_ids,
                    top_k=context.top_k,
                    campaign=context.campaign,
                    cold_start=state.cold_start,
                )
            )
        return prepared.engine.decide_many(requests)


def default_decider(catalog: pd.DataFrame, settings: Settings) -> Decider | None:
    """The service's decider, or ``None`` while the store holds no catalog (nothing to send)."""
    if catalog.empty:
        logger.warning("the store holds no catalog: /v1/recommend answers 503 until one is seeded")
        return None
    return Decider.from_settings(catalog, settings)
