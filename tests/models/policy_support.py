"""Shared fixtures of the decision-policy tests: a small catalog, deterministic scorers that
implement the model protocols, and request/history builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from features.contract import CHANNELS, Channel, Col, EventType, Stage, cost_column
from features.eventlog import CHANNEL_CODE, EVENT_CODE, EventLog
from models.policy import (
    ArbitrationConfig,
    ContactPolicy,
    DecisionEngine,
    DecisionRequest,
    ModelSet,
    load_arbitration,
    load_contact_policy,
)
from models.policy.slots import to_ns

N_FEATURES = 6
CHANNEL_COST = {"email": 0.01, "sms": 0.08, "push": 0.005, "in_app": 0.0, "web": 0.0}

#: message_id, objective, channels, value, eligible stages, requires cart, cooldown hours
MESSAGES = (
    ("welcome_series", "welcome", "email|push|in_app", 20.0, "new", False, 72),
    ("browse_reminder", "browse_abandon", "email|push|sms|in_app|web", 30.0, "browsing", False, 48),
    ("cart_reminder", "cart_recovery", "email|sms|push|in_app|web", 60.0, "carted", True, 24),
    ("cross_sell_pick", "cross_sell", "email|push|in_app|web", 35.0, "customer", False, 96),
    ("replenish_nudge", "replenish", "email|sms|push", 40.0, "customer", False, 168),
    ("loyalty_points", "loyalty", "email|in_app|web", 25.0, "customer|lapsing", False, 168),
    ("win_back_offer", "win_back", "email|sms|push", 50.0, "lapsing|churned", False, 168),
    ("retention_discount", "retention_offer", "email|sms|push|in_app|web", 45.0, "*", False, 168),
)
MESSAGE_IDS = tuple(m[0] for m in MESSAGES)


def make_catalog(every_channel: bool = False, every_stage: bool = False) -> pd.DataFrame:
    """The catalog as a CSV would hold it (strings); the engine validates and parses it."""
    rows = []
    for message_id, objective, channels, value, stages, cart, cooldown in MESSAGES:
        row = {
            Col.MESSAGE_ID: message_id,
            Col.OBJECTIVE: objective,
            Col.CATEGORY: "general",
            Col.CHANNELS: "|".join(CHANNELS) if every_channel else channels,
            Col.VALUE: str(value),
            Col.ELIGIBLE_STAGES: "*" if every_stage else stages,
            Col.REQUIRES_CART: str(cart and not every_stage).lower(),
            Col.COOLDOWN_HOURS: str(cooldown),
        }
        row.update({cost_column(c): str(CHANNEL_COST[c.value]) for c in CHANNELS})
        rows.append(row)
    return pd.DataFrame(rows)


class TableConversion:
    """P(conversion) = base (no_action) or base + lift[message] + channel_lift[channel]
    + hour_lift[local hour], clipped to [0, 1]; ``base`` may come from feature column 0."""

    def __init__(
        self,
        base: float = 0.05,
        lift: float | Sequence[float] = 0.02,
        channel_lift: Sequence[float] | None = None,
        hour_lift: Sequence[float] | None = None,
        base_from_features: bool = False,
    ) -> None:
        self.base = base
        self.lift = np.asarray(lift, dtype=float)  # a scalar applies to any catalog
        self.channel_lift = np.zeros(len(CHANNELS)) if channel_lift is None else np.asarray(
            channel_lift, dtype=float
        )
        self.hour_lift = np.zeros(24) if hour_lift is None else np.asarray(hour_lift, float)
        self.base_from_features = base_from_features
        self.calls = 0

    def predict_conversion(
        self, features: np.ndarray, message: np.ndarray, channel: np.ndarray,
        local_hour: np.ndarray,
    ) -> np.ndarray:
        self.calls += 1
        base = features[:, 0] if self.base_from_features else np.full(len(message), self.base)
        act = message >= 0
        p = base.astype(float).copy()
        lift = self.lift if self.lift.ndim == 0 else self.lift[message[act]]
        p[act] += lift + self.channel_lift[channel[act]] + self.hour_lift[local_hour[act]]
        return np.clip(p, 0.0, 1.0)


class ConstantChurn:
    def __init__(self, risk: float = 0.2) -> None:
        self.risk = risk

    def predict_churn(self, features: np.ndarray) -> np.ndarray:
        return np.full(features.shape[0], self.risk)


class FlatChannels:
    def predict_channels(self, features: np.ndarray) -> np.ndarray:
        return np.tile(np.linspace(0.5, 0.1, len(CHANNELS)), (features.shape[0], 1))


class PeakHours:
    """Engagement peaks at ``peak_hours`` (local hour of day) every day of the week."""

    def __init__(self, peak_hours: Sequence[int] = (22, 23, 7)) -> None:
        scores = np.full(168, 0.01)
        for day in range(7):
            for rank, hour in enumerate(peak_hours):
                scores[day * 24 + hour] = 0.9 - 0.1 * rank
        self.scores = scores

    def predict_hours(self, features: np.ndarray, hour_profile: np.ndarray) -> np.ndarray:
        return np.tile(self.scores, (features.shape[0], 1))


def make_models(conversion: object | None = None, churn: float = 0.2) -> ModelSet:
    return ModelSet(
        conversion=conversion or TableConversion(),  # type: ignore[arg-type]
        churn=ConstantChurn(churn),
        channel=FlatChannels(),
        send_time=PeakHours(),
        versions={"conversion": "3", "churn": "2", "channel": "1", "sendtime": "1"},
    )


def contact_policy(**overrides: object) -> ContactPolicy:
    data = load_contact_policy().model_dump(mode="json")
    data.update(overrides)
    return ContactPolicy.model_validate(data)


def arbitration(**overrides: object) -> ArbitrationConfig:
    """The shipped arbitration defaults without exploration or control group unless asked."""
    data = load_arbitration().model_dump(mode="json")
    data["exploration"] = {"epsilon": 0.0}
    data["control_groups"] = {**data["control_groups"], "global_share": 0.0}
    data.update(overrides)
    return ArbitrationConfig.model_validate(data)


def make_engine(
    models: ModelSet | None = None,
    policy: ContactPolicy | None = None,
    config: ArbitrationConfig | None = None,
    seed: int = 7,
    **catalog_options: bool,
) -> DecisionEngine:
    return DecisionEngine(
        make_catalog(**catalog_options),
        policy or contact_policy(),
        config or arbitration(),
        models or make_models(),
        seed=seed,
        deterministic_ids=True,
    )


def history(
    customer_id: str,
    events: Sequence[tuple[datetime, EventType, Channel | None, str | None]] = (),
) -> EventLog:
    """A one-customer EventLog from (ts, event_type, channel, message_id) tuples."""
    return EventLog.from_arrays(
        customer_id,
        np.array([to_ns(ts) for ts, *_ in events], dtype=np.int64),
        np.array([EVENT_CODE[e[1]] for e in events], dtype=np.int16),
        np.array([CHANNEL_CODE[e[2]] if e[2] else -1 for e in events], dtype=np.int16),
        np.array([MESSAGE_IDS.index(e[3]) if e[3] else -1 for e in events], dtype=np.int16),
        np.zeros(len(events)),
        MESSAGE_IDS,
    )


def make_request(
    customer_id: str = "c-1",
    now: datetime | None = None,
    timezone: str = "Europe/Paris",
    stage: Stage = Stage.CUSTOMER,
    consents: Mapping[Channel, bool] | None = None,
    log: EventLog | None = None,
    base: float = 0.05,
    **options: object,
) -> DecisionRequest:
    features = np.zeros((1, N_FEATURES))
    features[0, 0] = base
    return DecisionRequest(
        customer_id=customer_id,
        now=now or datetime.fromisoformat("2024-05-06T10:15:00+00:00"),
        timezone=timezone,
        consents=consents if consents is not None else dict.fromkeys(CHANNELS, True),
        stage=stage,
        has_open_cart=bool(options.pop("has_open_cart", False)),
        features=features,
        hour_profile=np.zeros((1, 168)),
        history=log,
        **options,  # type: ignore[arg-type]
    )
