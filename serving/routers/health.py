"""``/health``, ``/ready`` and ``/metrics``: for probes and Prometheus, without API keys."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from serving.deps import FollowerDep, MetricsDep, StoreDep
from serving.schemas.health import Health, ModelStatus, Readiness
from serving.stores.base import StoreError

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Alive")
async def health() -> Health:
    """The process answers (says nothing about models or the store: see /ready)."""
    return Health()


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready; the body says why"}},
    summary="Ready to decide",
)
def ready(request: Request, store: StoreDep, follower: FollowerDep) -> JSONResponse:
    """200 when the store answers, a checked model set is loaded and a decision engine is
    wired in; 503 otherwise, with the reason (e.g. ``last_reload_error``)."""
    try:
        store.ping()
        store_status = "ok"
    except StoreError as exc:
        store_status = str(exc)
    current = follower.current
    models = ModelStatus(
        loaded=current is not None,
        alias=follower.alias,
        versions=dict(current.versions) if current is not None else {},
        loaded_at=None if current is None else current.loaded_at,
        last_checked_at=follower.last_checked_at,
        last_reload_error=follower.last_reload_error,
    )
    engine = request.app.state.recommender.decider is not None
    body = Readiness(
        ready=store_status == "ok" and current is not None and engine,
        store=store_status,
        models=models,
        decision_engine=engine,
    )
    code = status.HTTP_200_OK if body.ready else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body.model_dump(mode="json"), status_code=code)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics",
)
def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=metrics.content_type)
