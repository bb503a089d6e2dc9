"""``/v1/events``: journey events, idempotent by ``event_id`` and durable once acknowledged."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from serving.deps import MetricsDep, SettingsDep, StoreDep
from serving.schemas.common import error_responses
from serving.schemas.events import EventBatch, EventBatchResult
from serving.security import ApiScope
from serving.stores.base import EventRecord

router = APIRouter(prefix="/v1/events", tags=["events"], responses=error_responses(401, 413, 422))


@router.post("", response_model=EventBatchResult, summary="Record journey events")
def ingest_events(
    body: EventBatch, store: StoreDep, metrics: MetricsDep, settings: SettingsDep, _: ApiScope
) -> EventBatchResult:
    """Stores a batch of events. An ``event_id`` received before is ignored and counted as a
    duplicate, so retries are safe. When this returns, the events are on disk and the next
    ``/v1/recommend`` for the customer sees them (an unsubscribe applies at once)."""
    if len(body.events) > settings.events_batch_max:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "events"),
                    "msg": f"at most {settings.events_batch_max} events per call",
                }
            ]
        )
    result = store.append_events(
        [
            EventRecord(
                event_id=e.event_id,
                customer_id=e.customer_id,
                ts=e.ts,
                event_type=e.event_type,
                channel=e.channel,
                message_id=e.message_id,
                decision_id=e.decision_id,
                value=e.value,
                properties=e.properties,
                category=e.category,
            )
            for e in body.events
        ]
    )
    metrics.events.labels(result="accepted").inc(result.accepted)
    metrics.events.labels(result="duplicate").inc(result.duplicates)
    return EventBatchResult(accepted=result.accepted, duplicates=result.duplicates)
