"""Types shared by the request and response schemas, and the one error body every 4xx/5xx uses.

Request models are strict (no silent coercion: ``"3"`` is not a number, ``1`` is not a string)
and forbid unknown fields; timestamps must be ISO-8601 strings with a timezone; enums take the
contract's values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

#: Timestamps must fit int64 nanoseconds (the store and EventLog unit) with room to spare.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class RequestModel(BaseModel):
    """Base of every request body: strict types, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _iso_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("expected an ISO-8601 timestamp string such as 2024-05-01T09:30:00Z")
    return value


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError("expected a timestamp between 1970-01-01 and 2200-01-01")
    return value.astimezone(UTC)


#: An aware ISO-8601 timestamp, normalised to UTC.
Timestamp = Annotated[
    AwareDatetime,
    Field(strict=False, examples=["2024-05-01T09:30:00Z"]),
    BeforeValidator(_iso_string),
    AfterValidator(_in_range),
]

#: An identifier: 1-128 visible characters, no whitespace or control characters.
Identifier = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f\x7f]+$", examples=["c-0001"])
]


class FieldProblem(ResponseModel):
    """One thing wrong with a request: where (``events[3].event_type``) and what."""

    field: str
    problem: str


class ErrorResponse(ResponseModel):
    """The body of every error response."""

    error: str = Field(description="A stable code: invalid_request, unauthorized, forbidden, ...")
    message: str = Field(description="What went wrong, for a person.")
    problems: list[FieldProblem] = Field(default_factory=list)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the error statuses a route can answer with."""
    descriptions = {
        401: "Missing or unknown API key",
        403: "The key lacks the admin scope",
        404: "Not found",
        413: "Request body too large",
        422: "Invalid request: every problem names its field",
        503: "Not ready (models not loaded or store unavailable)",
    }
    return {
        code: {"model": ErrorResponse, "description": descriptions.get(code, "Error")}
        for code in codes
    }
