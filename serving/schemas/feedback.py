"""``POST /v1/feedback``: an outcome of a logged decision."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from serving.schemas.common import Identifier, RequestModel, ResponseModel, Timestamp
from serving.stores.base import OutcomeType


class FeedbackIn(RequestModel):
    decision_id: Identifier = Field(description="The decision_id /v1/recommend returned.")
    outcome: Annotated[OutcomeType, Field(strict=False)]
    ts: Timestamp = Field(description="When the outcome happened.")
    revenue: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="Revenue of a conversion."
    )

    @model_validator(mode="after")
    def _revenue_only_for_conversions(self) -> Self:
        if self.revenue > 0 and self.outcome is not OutcomeType.CONVERTED:
            raise ValueError("revenue is only reported with outcome 'converted'")
        return self


class FeedbackResult(ResponseModel):
    decision_id: str
    outcome: OutcomeType
    recorded: bool = Field(description="False when this exact outcome was already recorded.")
