"""Configuration of the journey simulator: the run's size and the parameters of the world.

Every number the generative model uses lives here, so a run is fully described by its config
(written to ``truth/params.json``) and the oracle can be rebuilt from that file alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Self
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.contract import (
    CHANNELS,
    DEFAULT_ATTRIBUTION_HOURS,
    OBJECTIVES,
    STAGES,
    Channel,
    Objective,
    Stage,
)

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]

#: Where simulated customers live, with their share of the population.
DEFAULT_TIMEZONES: dict[str, float] = {
    "America/Los_Angeles": 0.12,
    "America/Chicago": 0.08,
    "America/New_York": 0.15,
    "America/Sao_Paulo": 0.07,
    "Europe/London": 0.12,
    "Europe/Paris": 0.10,
    "Europe/Berlin": 0.08,
    "Asia/Kolkata": 0.08,
    "Asia/Singapore": 0.06,
    "Asia/Tokyo": 0.07,
    "Australia/Sydney": 0.07,
}

def _per_stage(*values: float) -> dict[Stage, float]:
    return dict(zip(STAGES, values, strict=True))


def _per_channel(*values: float) -> dict[Channel, float]:
    return dict(zip(CHANNELS, values, strict=True))


def _complete(mapping: dict, keys: tuple, what: str) -> None:  # type: ignore[type-arg]
    missing = [str(k) for k in keys if k not in mapping]
    if missing:
        raise ValueError(f"{what} needs a value for every key; missing: {', '.join(missing)}")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageRules(_Frozen):
    """How the observable journey stage follows from a customer's history (see docs)."""

    new_days: PositiveFloat = 14.0
    customer_days: PositiveFloat = 45.0
    lapsing_inactive_days: PositiveFloat = 21.0
    churned_inactive_days: PositiveFloat = 60.0
    cart_ttl_hours: PositiveFloat = 96.0

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.churned_inactive_days <= self.lapsing_inactive_days:
            raise ValueError("churned_inactive_days must exceed lapsing_inactive_days")
        return self


class ResponseParams(_Frozen):
    """How customers respond to an action: the oracle's whole model (docs/simulator.md)."""

    #: Logit of converting within the attribution window with no message, by stage.
    stage_logit: dict[Stage, float] = _per_stage(-2.8, -3.2, -1.6, -2.2, -3.4, -4.2)
    #: How well a message objective fits each stage (0..1); scales the uplift.
    objective_fit: dict[Objective, dict[Stage, float]] = {
        Objective.WELCOME: _per_stage(1.0, 0.35, 0.2, 0.05, 0.05, 0.05),
        Objective.BROWSE_ABANDON: _per_stage(0.5, 0.9, 0.5, 0.25, 0.2, 0.1),
        Objective.CART_RECOVERY: _per_stage(0.6, 0.6, 1.0, 0.5, 0.4, 0.2),
        Objective.CROSS_SELL: _per_stage(0.2, 0.45, 0.3, 0.85, 0.3, 0.1),
        Objective.REPLENISH: _per_stage(0.05, 0.1, 0.1, 1.0, 0.8, 0.3),
        Objective.LOYALTY: _per_stage(0.05, 0.2, 0.2, 0.7, 0.35, 0.1),
        Objective.WIN_BACK: _per_stage(0.05, 0.2, 0.1, 0.15, 1.0, 0.8),
        Objective.RETENTION_OFFER: _per_stage(0.1, 0.2, 0.2, 0.45, 0.9, 0.6),
    }
    #: Logit uplift of a perfectly matched message for a customer of responsiveness 1.
    uplift_scale: PositiveFloat = 0.8
    #: Channel multiplier = floor + span * affinity (affinity in 0..1).
    channel_floor: float = 0.1
    channel_span: float = 1.4
    #: Send-hour multiplier = floor + (1 - floor) * closeness to the customer's active hours.
    hour_floor: Probability = 0.3
    #: Category multiplier = (n_categories * affinity) ** exponent; 1 for general messages.
    category_exponent: float = 0.6
    #: Replenish timing: share of the fit kept far from the cycle, and the width (x cycle).
    replenish_floor: Probability = 0.15
    replenish_width: PositiveFloat = 0.3
    #: Logit lost per send in the last 28 days, times the customer's fatigue sensitivity.
    fatigue_per_send: float = 0.08
    #: Extra aversion of negative responders per send in the last 28 days (x aversion).
    aversion_fatigue: float = 0.25
    #: Mean order value (x the customer's basket scale) of a conversion no message caused.
    organic_order_value: PositiveFloat = 45.0
    #: Gamma shape of order values (mean fixed by the basket and message value).
    order_value_shape: PositiveFloat = 3.0
    #: Logit of opening a delivered message at neutral affinity, by channel.
    open_logit: dict[Channel, float] = _per_channel(-1.0, 0.0, -1.2, -0.5, -1.6)
    #: Logit of clicking an opened message at neutral affinity, by channel.
    click_logit: dict[Channel, float] = _per_channel(-1.6, -1.4, -1.3, -1.1, -1.0)
    #: Open logit: per unit of (affinity - 0.5), of (hour closeness - 0.5), of log category
    #: multiplier, of log relative responsiveness; per recent send; for negative responders.
    open_affinity: float = 2.5
    open_hour: float = 1.2
    open_category: float = 0.5
    open_responsiveness: float = 0.6
    open_fatigue: float = 0.12
    open_negative: float = 1.2
    #: Click-given-open logit, the same way (fit = the objective's fit to the stage).
    click_affinity: float = 1.5
    click_fit: float = 1.0
    click_category: float = 0.5
    click_responsiveness: float = 0.5
    click_negative: float = 0.8
    #: Logit of unsubscribing from the channel after one send, and its drivers.
    unsubscribe_logit: float = -6.4
    unsubscribe_fatigue: float = 0.3
    unsubscribe_affinity: float = 1.0
    #: Negative responders: added to the unsubscribe logit, and to the log churn hazard
    #: in the weeks after a send.
    negative_unsubscribe: float = 2.4
    negative_churn: float = 1.0
    #: Log churn-hazard change per send in the last 28 days (x fatigue sensitivity).
    fatigue_churn: float = 0.2
    #: Log churn-hazard reduction by a win-back/retention message for a fully responsive
    #: customer in a stage it fits.
    retention_churn: float = 1.2
    #: How long a send changes the churn hazard.
    contact_churn_days: PositiveFloat = 14.0

    @field_validator("stage_logit")
    @classmethod
    def _stages(cls, value: dict[Stage, float]) -> dict[Stage, float]:
        _complete(value, STAGES, "stage_logit")
        return value

    @field_validator("open_logit", "click_logit")
    @classmethod
    def _channels(cls, value: dict[Channel, float]) -> dict[Channel, float]:
        _complete(value, CHANNELS, "open_logit/click_logit")
        return value

    @field_validator("objective_fit")
    @classmethod
    def _fits(
        cls, value: dict[Objective, dict[Stage, float]]
    ) -> dict[Objective, dict[Stage, float]]:
        _complete(value, OBJECTIVES, "objective_fit")
        for objective, per_stage in value.items():
            _complete(per_stage, STAGES, f"objective_fit[{objective}]")
        return value


class BehaviourParams(_Frozen):
    """Organic behaviour and churn: what customers do when nobody writes to them."""

    #: Mean sessions (site or app visits) a day of an active customer.
    visit_rate: PositiveFloat = 0.35
    #: Visit-rate multiplier by stage.
    stage_visits: dict[Stage, float] = _per_stage(1.5, 1.0, 1.3, 1.0, 0.45, 0.25)
    #: Share of a customer's sessions drawn around its peak hour (the rest spread over 7-23h).
    peak_share: Probability = 0.75
    product_views_per_session: PositiveFloat = 1.3
    add_to_cart_rate: Probability = 0.08
    checkout_given_cart: Probability = 0.35
    #: Daily chance of contacting support; negative responders and recent sends raise it.
    support_rate: Probability = 0.0015
    support_negative_factor: float = 4.0
    support_after_send_factor: float = 2.0
    #: Daily churn hazard by stage (customers who churn go quiet for good).
    churn_hazard: dict[Stage, float] = _per_stage(0.001, 0.002, 0.001, 0.0005, 0.004, 0.01)
    #: Mean delay (hours) from delivery to open by channel, stretched away from active hours.
    open_delay_hours: dict[Channel, float] = _per_channel(3.0, 0.3, 0.5, 2.0, 1.0)
    #: Mean delay (hours) from send to the purchase of a converted decision.
    purchase_delay_hours: PositiveFloat = 30.0

    @field_validator("stage_visits", "churn_hazard")
    @classmethod
    def _stages(cls, value: dict[Stage, float]) -> dict[Stage, float]:
        _complete(value, STAGES, "stage_visits/churn_hazard")
        return value

    @field_validator("open_delay_hours")
    @classmethod
    def _channels(cls, value: dict[Channel, float]) -> dict[Channel, float]:
        _complete(value, CHANNELS, "open_delay_hours")
        return value


class SimulationConfig(_Frozen):
    """One simulation run. Unknown keys are errors; every field has a documented default."""

    n_customers: int = Field(default=10_000, ge=1, le=50_000_000)
    days: int = Field(default=90, ge=1, le=3_650)
    seed: int = 0
    #: First simulated day (UTC midnight); each customer's day 0 starts at its local midnight.
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    timezones: dict[str, PositiveFloat] = Field(default_factory=lambda: dict(DEFAULT_TIMEZONES))
    #: Share of customers who sign up during the simulated window (the rest existed before).
    new_customer_share: Probability = 0.2
    negative_responder_share: Probability = 0.17

    #: One logged decision per customer every this many hours (windows must not overlap).
    decision_interval_hours: int = Field(default=168, ge=1)
    attribution_hours: int = Field(default=DEFAULT_ATTRIBUTION_HOURS, ge=1)
    #: Local hours a message may be sent at, and the minimum delay from decision to send.
    send_hours: tuple[int, ...] = tuple(range(8, 21))
    min_send_delay_hours: int = Field(default=24, ge=0, le=72)

    #: Logging policy: share of no_action, softmax temperature, preference for messages
    #: whose objective fits the stage (0 = uniform over eligible actions).
    no_action_share: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.25
    temperature: PositiveFloat = 1.0
    stage_preference: float = Field(default=2.0, ge=0.0)
    policy_name: str = Field(default="simulator_logging", min_length=1)

    #: Multipliers on the unsubscribe odds and on every churn hazard.
    unsubscribe_scale: PositiveFloat = 1.0
    churn_scale: PositiveFloat = 1.0

    stage_rules: StageRules = StageRules()
    response: ResponseParams = ResponseParams()
    behaviour: BehaviourParams = BehaviourParams()

    @field_validator("start")
    @classmethod
    def _utc_midnight(cls, value: datetime) -> datetime:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(hour=0, minute=0, second=0, microsecond=0)

    @field_validator("timezones")
    @classmethod
    def _known_zones(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one timezone is needed")
        unknown = sorted(set(value) - available_timezones())
        if unknown:
            raise ValueError(f"unknown IANA timezone(s): {', '.join(unknown)}")
        return value

    @field_validator("send_hours")
    @classmethod
    def _hours(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(not 0 <= h <= 23 for h in value) or len(set(value)) != len(value):
            raise ValueError("send_hours must be distinct local hours between 0 and 23")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _windows_do_not_overlap(self) -> Self:
        if self.decision_interval_hours < self.attribution_hours:
            raise ValueError(
                f"decision_interval_hours ({self.decision_interval_hours}) must be at least "
                f"attribution_hours ({self.attribution_hours}) so attribution windows do not "
                "overlap and every purchase belongs to one decision"
            )
        if self.min_send_delay_hours + 24 >= self.attribution_hours:
            raise ValueError("a send must fall well inside the attribution window")
        return self
