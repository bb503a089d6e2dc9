"""``/v1/feedback``: outcomes of decisions, joined to the decision log."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from serving.deps import MetricsDep, StoreDep
from serving.schemas.common import error_responses
from serving.schemas.feedback import FeedbackIn, FeedbackResult
from serving.security import ApiScope
from serving.stores.base import OutcomeRecord, UnknownDecisionError

router = APIRouter(
    prefix="/v1/feedback", tags=["feedback"], responses=error_responses(401, 404, 413, 422)
)


@router.post("", response_model=FeedbackResult, summary="Report an outcome of a decision")
def record_feedback(
    body: FeedbackIn, store: StoreDep, metrics: MetricsDep, _: ApiScope
) -> FeedbackResult:
    """Joins the outcome to its decision for evaluation and the next training run. Reporting
    the same outcome twice (same decision, type and time) records it once."""
    try:
        recorded = store.record_outcome(
            OutcomeRecord(
                decision_id=body.decision_id, outcome=body.outcome, ts=body.ts, revenue=body.revenue
            )
        )
    except UnknownDecisionError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    if recorded:
        metrics.feedback.labels(outcome=body.outcome.value).inc()
    return FeedbackResult(decision_id=body.decision_id, outcome=body.outcome, recorded=recorded)
