"""``POST /v1/events``: journey events in the data contract's fields."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, JsonValue, model_validator

from features.contract import MESSAGE_EVENT_TYPES, Channel, EventType
from serving.schemas.common import Identifier, RequestModel, ResponseModel, Timestamp

#: Schema-level ceiling; ``NEXTBEST_EVENTS_BATCH_MAX`` may set a lower one.
EVENTS_BATCH_LIMIT = 10_000


class EventIn(RequestModel):
    """One event, as in ``events.csv`` of the data contract. Message events (delivered, open,
    click) name their ``message_id`` and ``channel``; an unsubscribe names its ``channel``."""

    event_id: Identifier = Field(description="Unique id: a repeated id is ignored (idempotency).")
    customer_id: Identifier
    ts: Timestamp = Field(description="When it happened (ISO-8601 with timezone).")
    event_type: Annotated[EventType, Field(strict=False)]
    channel: Annotated[Channel | None, Field(strict=False)] = None
    message_id: Identifier | None = None
    decision_id: Identifier | None = Field(
        default=None, description="The decision behind a message event, when known."
    )
    value: float = Field(default=0.0, ge=0, allow_inf_nan=False, description="Revenue, if any.")
    properties: dict[str, JsonValue] | None = Field(
        default=None, description="Free properties, kept as given."
    )
    category: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description=(
            "Optional product category of the event (the catalog's `category` values, e.g. of "
            "a product_view or purchase), as the optional `category` column of events.csv. "
            "Product views and purchases with a category feed the per-category view and "
            "purchase shares the models read; a category the served models do not know, or "
            "none, counts as uncategorised, as in training."
        ),
        examples=["shoes"],
    )

    @model_validator(mode="after")
    def _message_events_name_their_message(self) -> Self:
        if self.event_type in MESSAGE_EVENT_TYPES:
            if self.message_id is None:
                raise ValueError(f"a {self.event_type.value} event needs message_id")
            if self.channel is None:
                raise ValueError(f"a {self.event_type.value} event needs channel")
        if self.event_type is EventType.UNSUBSCRIBE and self.channel is None:
            raise ValueError("an unsubscribe event needs the channel the customer opted out of")
        return self


class EventBatch(RequestModel):
    events: list[EventIn] = Field(min_length=1, max_length=EVENTS_BATCH_LIMIT)


class EventBatchResult(ResponseModel):
    """Counts of the batch: ``accepted`` were new; ``duplicates`` had been received before
    (or repeat within the batch) and were ignored. Both are durable when this is returned."""

    accepted: int = Field(ge=0)
    duplicates: int = Field(ge=0)
