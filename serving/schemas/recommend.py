"""``POST /v1/recommend`` and ``/v1/recommend/batch``: one decision per customer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from features.contract import Channel
from serving.schemas.common import Identifier, RequestModel, ResponseModel, Timestamp

#: Schema-level ceiling; ``NEXTBEST_BATCH_MAX`` may set a lower one.
RECOMMEND_BATCH_LIMIT = 1_000
MAX_ALTERNATIVES = 20


class RecommendContext(RequestModel):
    """Optional constraints of the calling journey."""

    now: Timestamp | None = Field(
        default=None, description="Decision time; default the server's clock (UTC)."
    )
    channels: list[Annotated[Channel, Field(strict=False)]] | None = Field(
        default=None,
        min_length=1,
        description="Only these channels (default: all).",
        json_schema_extra={"uniqueItems": True},
    )
    message_ids: list[Identifier] | None = Field(
        default=None,
        min_length=1,
        max_length=1_000,
        description="Only these catalog messages (default: the whole catalog).",
        json_schema_extra={"uniqueItems": True},
    )
    top_k: int = Field(
        default=3, ge=0, le=MAX_ALTERNATIVES, description="How many alternatives to return."
    )
    campaign: Identifier | None = Field(default=None, description="Logged with the decision.")

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        if self.channels is not None and len(set(self.channels)) != len(self.channels):
            raise ValueError("channels lists a channel more than once")
        if self.message_ids is not None and len(set(self.message_ids)) != len(self.message_ids):
            raise ValueError("message_ids lists a message more than once")
        return self


class RecommendRequest(RequestModel):
    customer_id: Identifier
    context: RecommendContext = Field(default_factory=RecommendContext)


class RecommendBatchRequest(RequestModel):
    requests: list[RecommendRequest] = Field(min_length=1, max_length=RECOMMEND_BATCH_LIMIT)


class SendAction(ResponseModel):
    type: Literal["send"] = "send"
    message_id: str
    channel: Channel
    send_at_utc: datetime
    send_at_local: datetime = Field(description="The same instant in the customer's timezone.")
    timezone: str = Field(description="The customer's IANA timezone (UTC when unknown).")


class NoAction(ResponseModel):
    type: Literal["no_action"] = "no_action"


class Scores(ResponseModel):
    """Model scores behind the chosen action (``None`` where a model does not apply)."""

    conversion: float | None = Field(default=None, description="P(conversion | action).")
    conversion_without_action: float | None = Field(
        default=None, description="P(conversion | no_action)."
    )
    uplift: float | None = Field(default=None, description="conversion - conversion_without_action")
    churn_risk: float | None = Field(default=None, description="P(no activity ahead).")
    channel_preference: float | None = Field(
        default=None, description="P(engagement on the chosen channel)."
    )
    send_time: float | None = Field(default=None, description="Score of the chosen send hour.")


class Alternative(ResponseModel):
    """A candidate that was not chosen, with the reason codes of why it lost."""

    message_id: str | None
    channel: Channel | None
    send_at_utc: datetime | None
    expected_value: float | None
    reasons: list[str]


class Recommendation(ResponseModel):
    decision_id: str
    customer_id: str
    decided_at: datetime
    action: SendAction | NoAction = Field(discriminator="type")
    expected_value: float
    propensity: float = Field(gt=0, le=1, description="Probability the policy chose this action.")
    scores: Scores
    reasons: list[str] = Field(description="Reason codes of the decision.")
    alternatives: list[Alternative]
    model_versions: dict[str, str]
    n_candidates: int = Field(
        ge=0, description="Candidate (message, channel, send time) rows the models scored."
    )
    cold_start: bool = Field(description="True for a customer the store does not know.")


class RecommendBatchResponse(ResponseModel):
    decisions: list[Recommendation]
