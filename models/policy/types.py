"""What goes into a decision and what comes out: small typed, immutable dataclasses.

They are plain dataclasses rather than pydantic models because ``decide()`` builds them on the
request path (a few microseconds matter there); serving maps them to its own pydantic response
schemas. ``Decision.to_log_record()`` is the flat, JSON-able form written to the decision log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import numpy as np

from features.contract import Channel, Stage
from features.eventlog import EventLog
from models.interfaces import ChannelScorer, ChurnScorer, ConversionScorer, SendTimeScorer

#: Version of the decision logic itself (not of its configuration, which is hashed separately).
POLICY_VERSION: Final = "1.0"

#: Model tasks: the keys of ``ModelSet.versions``, as in the registry's ``nextbest-<task>``.
MODEL_TASKS: Final = ("conversion", "churn", "channel", "sendtime")


class ReasonCode(StrEnum):
    """Why a candidate was excluded, why an option lost, why the decision is what it is.

    The vocabulary is documented (with the order in which exclusion rules apply) in
    docs/decision-policy.md; a test keeps the two in agreement.
    """

    # exclusions, in the order the rules are checked (the first failing rule is reported)
    MESSAGE_NOT_REQUESTED = "message_not_requested"
    CHANNEL_NOT_ALLOWED = "channel_not_allowed"
    STAGE_NOT_ELIGIBLE = "stage_not_eligible"
    REQUIRES_CART = "requires_cart"
    UNSUBSCRIBED = "unsubscribed"
    NO_CONSENT = "no_consent"
    QUIET_HOURS = "quiet_hours"
    QUIET_HOURS_SHIFTED = "quiet_hours_shifted"
    SUPPRESSED_AFTER_CONVERSION = "suppressed_after_conversion"
    SUPPRESSED_NON_RESPONSE = "suppressed_non_response"
    COOLDOWN = "cooldown"
    CAP_CHANNEL = "cap_channel"
    CAP_GLOBAL = "cap_global"
    LOWER_SEND_TIME_SCORE = "lower_send_time_score"
    # arbitration outcomes
    HIGHEST_EXPECTED_VALUE = "highest_expected_value"
    LOWER_EXPECTED_VALUE = "lower_expected_value"
    BELOW_NO_ACTION = "below_no_action"
    NO_CANDIDATES = "no_candidates"
    EXPLORATION = "exploration"
    # assignment and context
    GLOBAL_CONTROL = "global_control"
    CAMPAIGN_HOLDOUT = "campaign_holdout"
    COLD_START = "cold_start"


class Assignment(StrEnum):
    """Which arm of the experiment design a customer is in for a decision."""

    TREATED = "treated"
    GLOBAL_CONTROL = "global_control"
    CAMPAIGN_HOLDOUT = "campaign_holdout"


class DecisionInputError(ValueError):
    """A decision request is malformed; the message names the field and what was expected."""


class ScoringError(RuntimeError):
    """A model returned something unusable (wrong shape, NaN, outside [0, 1])."""


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """Everything the engine needs to decide for one customer at ``now``.

    ``consents`` holds the live consent per channel (a channel missing from it counts as no
    consent). ``history`` is the customer's contact history: sends (``message_delivered``),
    opens, clicks, purchases and unsubscribes are read from it, including sends scheduled after
    ``now`` by earlier decisions. ``features`` is the customer's feature row, shape
    ``(1, n_features)``; ``hour_profile`` the engagement counts per local hour of the week,
    shape ``(1, 168)``.
    """

    customer_id: str
    now: datetime
    timezone: str
    consents: Mapping[Channel, bool]
    stage: Stage
    has_open_cart: bool
    features: np.ndarray
    hour_profile: np.ndarray
    history: EventLog | None = None
    allowed_channels: tuple[Channel, ...] | None = None
    candidate_message_ids: tuple[str, ...] | None = None
    top_k: int = 3
    campaign: str | None = None
    cold_start: bool = False


@dataclass(frozen=True)
class ModelSet:
    """The four scorers a decision uses and their versions (task -> version string)."""

    conversion: ConversionScorer
    churn: ChurnScorer
    channel: ChannelScorer
    send_time: SendTimeScorer
    versions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        expected = {
            "conversion": (ConversionScorer, "predict_conversion"),
            "churn": (ChurnScorer, "predict_churn"),
            "channel": (ChannelScorer, "predict_channels"),
            "send_time": (SendTimeScorer, "predict_hours"),
        }
        for name, (protocol, method) in expected.items():
            if not isinstance(getattr(self, name), protocol):
                raise TypeError(f"ModelSet.{name}: expected an object with a {method}() method")


@dataclass(frozen=True, slots=True)
class Action:
    """A send: which message, on which channel, when (UTC, and in the customer's local time)."""

    message_id: str
    channel: Channel
    send_at: datetime
    send_at_local: str


@dataclass(frozen=True, slots=True)
class Scores:
    """The model outputs behind a decision; action-specific ones are ``None`` for no_action."""

    conversion_with_action: float | None
    conversion_without_action: float
    uplift: float | None
    churn_risk: float
    channel_preference: float | None
    send_time_score: float | None


@dataclass(frozen=True, slots=True)
class Alternative:
    """An option that was not chosen (``message_id`` ``None`` = no_action) and why it lost."""

    message_id: str | None
    channel: Channel | None
    send_at: datetime | None
    expected_value: float
    uplift: float | None
    reason: ReasonCode


@dataclass(frozen=True, slots=True)
class Exclusion:
    """``slots`` candidate send times of (message, channel) excluded for ``reason``."""

    message_id: str
    channel: Channel
    reason: ReasonCode
    slots: int


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of ``DecisionEngine.decide``: an action or no_action, and why.

    ``propensity`` is the exact probability that this option was chosen given the request, the
    assignment and the configured exploration. ``counterfactual`` is what the policy would have
    sent to a control-group or holdout customer (``None`` otherwise, or if it would have sent
    nothing).
    """

    decision_id: str
    customer_id: str
    decided_at: datetime
    action: Action | None
    expected_value: float
    propensity: float
    explored: bool
    scores: Scores
    reasons: tuple[ReasonCode, ...]
    alternatives: tuple[Alternative, ...]
    exclusions: tuple[Exclusion, ...]
    model_versions: Mapping[str, str]
    cold_start: bool
    assignment: Assignment
    campaign: str | None
    policy_name: str
    policy_version: str
    config_hash: str
    seed: int
    n_candidates: int
    counterfactual: Action | None
    request: DecisionRequest = field(repr=False)

    @property
    def is_no_action(self) -> bool:
        return self.action is None

    def to_log_record(self) -> dict[str, Any]:
        """A flat JSON-able dict with the decision and every input needed to replay it."""
        from models.policy.logrecord import decision_to_log_record

        return decision_to_log_record(self)
