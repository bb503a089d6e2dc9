"""``PUT /v1/customers/{customer_id}``: create or replace a customer profile."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, Field, JsonValue

from features.contract import Channel
from serving.schemas.common import RequestModel, ResponseModel, Timestamp

_TIMEZONES = frozenset(available_timezones())


def _known_timezone(value: str) -> str:
    if value not in _TIMEZONES:
        raise ValueError("expected an IANA timezone such as Europe/Paris")
    return value


class CustomerIn(RequestModel):
    timezone: Annotated[str, Field(examples=["Europe/Paris"]), AfterValidator(_known_timezone)]
    signup_ts: Timestamp
    consents: dict[Annotated[Channel, Field(strict=False)], bool] = Field(
        default_factory=dict, description="Consent per channel; a channel left out means no."
    )
    attributes: dict[str, JsonValue] = Field(
        default_factory=dict, description="Any other profile attributes (segment, ...)."
    )


class CustomerOut(ResponseModel):
    customer_id: str
    timezone: str
    signup_ts: datetime
    consents: dict[Channel, bool]
    attributes: dict[str, JsonValue]
