"""``/v1/recommend``: what to send next, on which channel and when, or nothing."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.exceptions import RequestValidationError

from serving.deps import RecommenderDep, SettingsDep
from serving.recommender import EngineUnavailableError, ModelsUnavailableError
from serving.schemas.common import error_responses
from serving.schemas.recommend import (
    Recommendation,
    RecommendBatchRequest,
    RecommendBatchResponse,
    RecommendRequest,
)
from serving.security import ApiScope

router = APIRouter(
    prefix="/v1/recommend", tags=["recommend"], responses=error_responses(401, 413, 422, 503)
)

_RETRY = {"Retry-After": "5"}


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc), headers=_RETRY)


@router.post("", response_model=Recommendation, summary="Decide for one customer")
def recommend(body: RecommendRequest, recommender: RecommenderDep, _: ApiScope) -> Recommendation:
    """One decision: a message, channel and send time, or ``no_action``. A customer the store
    does not know gets a cold-start decision (``cold_start: true``), not an error."""
    try:
        return recommender.recommend(body)
    except (ModelsUnavailableError, EngineUnavailableError) as exc:
        raise _unavailable(exc) from exc


@router.post("/batch", response_model=RecommendBatchResponse, summary="Decide for many customers")
def recommend_batch(
    body: RecommendBatchRequest,
    recommender: RecommenderDep,
    settings: SettingsDep,
    _: ApiScope,
) -> RecommendBatchResponse:
    """Up to ``NEXTBEST_BATCH_MAX`` (1,000) requests, answered in order."""
    if len(body.requests) > settings.batch_max:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "requests"),
                    "msg": f"at most {settings.batch_max} requests per batch",
                }
            ]
        )
    try:
        return RecommendBatchResponse(decisions=recommender.recommend_many(body.requests))
    except (ModelsUnavailableError, EngineUnavailableError) as exc:
        raise _unavailable(exc) from exc
