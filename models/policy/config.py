"""The two YAML configurations of the decision policy, validated with pydantic.

``contact_policy.yaml`` says what may be sent and when (caps, cooldowns, suppressions, quiet
hours); ``arbitration.yaml`` says how the allowed candidates are valued and chosen (weights,
value mode, send slots, exploration, control groups). Both ship with documented defaults next to
this module. A bad file never surfaces as a traceback: :class:`PolicyConfigError` names the file,
the YAML key (dotted path) and what was expected.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.contract import Channel, Objective

DEFAULT_CONTACT_POLICY_PATH = Path(__file__).with_name("contact_policy.yaml")
DEFAULT_ARBITRATION_PATH = Path(__file__).with_name("arbitration.yaml")


class PolicyConfigError(ValueError):
    """A policy configuration is unreadable or invalid; the message names file, key and problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_clock(value: object) -> int:
    """``"HH:MM"`` local wall-clock time to seconds after midnight."""
    if not isinstance(value, str):
        raise ValueError("expected a time of day as a quoted 'HH:MM' string, e.g. '21:00'")
    hours, sep, minutes = value.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"expected 'HH:MM', e.g. '21:00', got {value!r}")
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValueError(f"expected a time between 00:00 and 23:59, got {value!r}")
    return h * 3600 + m * 60


# --------------------------------------------------------------------------- contact policy


class CapRule(_Strict):
    """At most ``max_sends`` messages in any rolling window of ``window_hours``."""

    max_sends: int = Field(ge=0, description="0 closes the channel entirely")
    window_hours: float = Field(gt=0)


class GlobalCapRule(CapRule):
    """A cap across channels; ``channels`` limits which channels count (default: all)."""

    channels: tuple[Channel, ...] | None = None


class FrequencyCaps(_Strict):
    per_channel: dict[Channel, CapRule] = Field(default_factory=dict)
    all_channels: tuple[GlobalCapRule, ...] = ()


class NonResponseSuppression(_Strict):
    """After ``max_consecutive_sends`` sends on a channel with no open or click on it since, the
    channel is suppressed until ``suppress_hours`` after the last of those sends."""

    max_consecutive_sends: int = Field(ge=1)
    suppress_hours: float = Field(gt=0)


class Suppression(_Strict):
    after_conversion_hours: float = Field(default=0.0, ge=0)
    exempt_objectives: tuple[Objective, ...] = ()
    non_response: NonResponseSuppression | None = None


class QuietHoursRule(StrEnum):
    SHIFT = "shift"
    DROP = "drop"


class QuietHours(_Strict):
    """A nightly window in the customer's own timezone, ``start`` inclusive, ``end`` exclusive."""

    start: str
    end: str
    rule: QuietHoursRule = QuietHoursRule.SHIFT
    channels: tuple[Channel, ...] = (Channel.EMAIL, Channel.SMS, Channel.PUSH)

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        _parse_clock(value)
        return value

    @model_validator(mode="after")
    def _non_empty(self) -> Self:
        if self.start_seconds == self.end_seconds:
            raise ValueError("start and end must differ (remove the section to disable)")
        return self

    @property
    def start_seconds(self) -> int:
        return _parse_clock(self.start)

    @property
    def end_seconds(self) -> int:
        return _parse_clock(self.end)


class ContactPolicy(_Strict):
    """What may be sent and when. See docs/decision-policy.md for every key."""

    version: int = 1
    frequency_caps: FrequencyCaps = Field(default_factory=FrequencyCaps)
    cooldown_hours: dict[str, float] = Field(
        default_factory=dict,
        description="per message_id, overrides the catalog's cooldown_hours",
    )
    suppression: Suppression = Field(default_factory=Suppression)
    quiet_hours: QuietHours | None = None

    @field_validator("cooldown_hours")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for message_id, hours in value.items():
            if hours < 0:
                raise ValueError(f"{message_id}: expected hours >= 0, got {hours}")
        return value


# --------------------------------------------------------------------------- arbitration


class ValueMode(StrEnum):
    """``incremental``: value the uplift over sending nothing (the default, issue 5);
    ``absolute``: the classic response-model rule, kept to show what incrementality changes."""

    INCREMENTAL = "incremental"
    ABSOLUTE = "absolute"


class ChurnLever(_Strict):
    """Weight of ``objectives`` multiplied by ``1 + strength x churn_risk``."""

    objectives: tuple[Objective, ...] = (Objective.RETENTION_OFFER, Objective.WIN_BACK)
    strength: float = Field(default=1.0, ge=0)


class SendTime(_Strict):
    horizon_hours: int = Field(default=48, ge=1, le=168)
    slots_per_pair: int = Field(default=3, ge=1, le=168)
    include_immediate: bool = True


class Exploration(_Strict):
    epsilon: float = Field(default=0.0, ge=0, le=1)


class ControlGroups(_Strict):
    global_share: float = Field(default=0.0, ge=0, lt=1)
    salt: str = Field(default="nextbest-control", min_length=1)
    campaign_holdouts: dict[str, float] = Field(default_factory=dict)
    default_campaign_holdout: float = Field(default=0.0, ge=0, lt=1)

    @field_validator("campaign_holdouts")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        for campaign, share in value.items():
            if not 0 <= share < 1:
                raise ValueError(f"{campaign}: expected a share in [0, 1), got {share}")
        return value

    def holdout_share(self, campaign: str) -> float:
        return self.campaign_holdouts.get(campaign, self.default_campaign_holdout)


class ArbitrationConfig(_Strict):
    """How allowed candidates are valued and chosen. See docs/decision-policy.md."""

    policy_name: str = Field(default="nextbest", min_length=1)
    value_mode: ValueMode = ValueMode.INCREMENTAL
    objective_weights: dict[Objective, float] = Field(default_factory=dict)
    message_weights: dict[str, float] = Field(default_factory=dict)
    churn_lever: ChurnLever | None = Field(default_factory=ChurnLever)
    no_action_margin: float = Field(default=0.0, ge=0)
    min_uplift: float = Field(default=0.0, ge=-1, le=1)
    send_time: SendTime = Field(default_factory=SendTime)
    exploration: Exploration = Field(default_factory=Exploration)
    control_groups: ControlGroups = Field(default_factory=ControlGroups)

    @field_validator("objective_weights", "message_weights")
    @classmethod
    def _weights(cls, value: dict[Any, float]) -> dict[Any, float]:
        for key, weight in value.items():
            if weight < 0:
                raise ValueError(f"{key}: expected a weight >= 0, got {weight}")
        return value


# --------------------------------------------------------------------------- loading


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        parts = [str(part) for part in error["loc"]]
        message = error["msg"]
        if "[key]" in parts:  # pydantic marks a bad mapping key this way
            parts.remove("[key]")
            message = f"not an allowed key: {message}"
        key = ".".join(parts) or "(top level)"
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see docs/decision-policy.md)"
        lines.append(f"  - {key}: {message}")
    return f"{source}: invalid configuration:\n" + "\n".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyConfigError(f"{path}: cannot read the file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyConfigError(f"{path}: not valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def parse_contact_policy(data: dict[str, Any], source: str = "contact policy") -> ContactPolicy:
    try:
        return ContactPolicy.model_validate(data)
    except ValidationError as exc:
        raise PolicyConfigError(_format_errors(source, exc)) from exc


def parse_arbitration(data: dict[str, Any], source: str = "arbitration") -> ArbitrationConfig:
    try:
        return ArbitrationConfig.model_validate(data)
    except ValidationError as exc:
        raise PolicyConfigError(_format_errors(source, exc)) from exc


def load_contact_policy(path: Path | str = DEFAULT_CONTACT_POLICY_PATH) -> ContactPolicy:
    """Read and validate a contact-policy YAML file (the shipped default without argument)."""
    path = Path(path)
    return parse_contact_policy(_read_yaml(path), str(path))


def load_arbitration(path: Path | str = DEFAULT_ARBITRATION_PATH) -> ArbitrationConfig:
    """Read and validate an arbitration YAML file (the shipped default without argument)."""
    path = Path(path)
    return parse_arbitration(_read_yaml(path), str(path))


def config_digest(*parts: object) -> str:
    """A short stable hash of configurations and catalog arrays, logged with every decision."""
    payload = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
