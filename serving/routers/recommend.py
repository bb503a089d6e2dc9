"""``/v1/recommend``: what to send next, on which channel and when, or nothing.

The single-customer route decides inline on the event loop: a decision is about a millisecond of
CPU, less than a hop to the thread pool and back. It then awaits its decision-log commit, which
the store's writer thread makes for every decision waiting at that moment, so concurrent requests
share a transaction and the answer still leaves only once its decision is logged. A batch can
take much longer, so it runs (and waits for its commit) in the thread pool and the loop keeps
answering probes meanwhile. Both return the recommender's JSON
body directly (orjson), so the response is not validated a second time: the ``Recommendation``
schema documents it and the tests hold the two together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from serving.deps import RecommenderDep, SettingsDep
from serving.recommender import (
    EngineUnavailableError,
    ModelsUnavailableError,
    Recommender,
    UnknownMessageError,
)
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


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _decide(
    recommender: Recommender, requests: Sequence[RecommendRequest], batch: bool
) -> tuple[list[dict[str, Any]], Future[None]]:
    try:
        return recommender.decide_and_log(requests)
    except (ModelsUnavailableError, EngineUnavailableError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc), headers=_RETRY
        ) from exc
    except UnknownMessageError as exc:
        where = ("body", "requests", exc.index, "context", "message_ids") if batch else (
            "body", "context", "message_ids"
        )
        problem = {"type": "value_error", "loc": where, "msg": str(exc)}
        raise RequestValidationError([problem]) from exc


def _decide_logged(
    recommender: Recommender, requests: Sequence[RecommendRequest]
) -> list[dict[str, Any]]:
    answers, logged = _decide(recommender, requests, batch=True)
    logged.result()
    return answers


@router.post("", response_model=Recommendation, summary="Decide for one customer")
async def recommend(body: RecommendRequest, recommender: RecommenderDep, _: ApiScope) -> Response:
    """One decision: a message, channel and send time, or ``no_action``. A customer the store
    does not know gets a cold-start decision (``cold_start: true``), not an error."""
    answers, logged = _decide(recommender, [body], batch=False)
    # The loop serves other requests while the decision is committed (with theirs).
    await asyncio.wrap_future(logged)
    return _json(answers[0])


@router.post("/batch", response_model=RecommendBatchResponse, summary="Decide for many customers")
async def recommend_batch(
    body: RecommendBatchRequest,
    recommender: RecommenderDep,
    settings: SettingsDep,
    _: ApiScope,
) -> Response:
    """Up to ``NEXTBEST_BATCH_MAX`` (1,000) requests, answered in order; the models score all
    customers of the batch in one call each."""
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
    decisions = await run_in_threadpool(_decide_logged, recommender, body.requests)
    return _json({"decisions": decisions})
