"""The FastAPI application: ``create_app(settings)`` builds it; the lifespan opens the store,
seeds it, loads the models and starts following the registry alias.

Run it with ``nextbest serve`` or ``uvicorn serving.app:create_app --factory``. Nothing happens
at import time.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from serving.decision import default_decider
from serving.errors import BodySizeLimitMiddleware, install_error_handlers, route_methods
from serving.metrics import LatencyMiddleware, ServingMetrics
from serving.model_follower import (
    ModelFollower,
    ModelSet,
    protocol_smoke_check,
    registry_follower,
)
from serving.recommender import DeciderFactory, Recommender, load_catalog
from serving.routers import admin, customers, events, feedback, health, recommend
from serving.security import KeyRing
from serving.seed import seed_store
from serving.settings import Settings, get_settings
from serving.stores import Store, open_store

logger = logging.getLogger(__name__)

API_VERSION = "1.0.0"


@dataclass
class Overrides:
    """Parts of the service a caller (tests, an embedding app) supplies instead of building them
    from settings."""

    store: Store | None = None
    follower: ModelFollower | None = None
    decider_factory: DeciderFactory | None = None


def _follow_with_metrics(follower: ModelFollower, metrics: ServingMetrics) -> None:
    def on_swap(model_set: ModelSet) -> None:
        metrics.set_model_versions(model_set.versions, model_set.alias)
        # Long-lived model objects would otherwise be rescanned by every full GC pass.
        gc.freeze()

    def on_failure(task: str | None, error: str) -> None:
        metrics.record_model_failure(task)

    follower.subscribe(on_swap, on_failure)


def _lifespan(
    settings: Settings, overrides: Overrides
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics: ServingMetrics = app.state.metrics
        store = overrides.store or open_store(settings.resolved_store_url())
        store.open()
        if settings.data_dir is not None:
            seed_store(store, settings.data_dir)
        factory = overrides.decider_factory or default_decider
        decider = factory(load_catalog(store), settings)
        follower = overrides.follower
        if follower is None:
            # The decider's check is the real one: it decides for a fixed customer with the
            # candidate models, so a set that cannot serve this catalog is never swapped in.
            follower = registry_follower(
                settings.resolved_tracking_uri(),
                settings.model_alias,
                settings.poll_interval_seconds,
                protocol_smoke_check if decider is None else decider.smoke_check,
            )
        _follow_with_metrics(follower, metrics)
        result = follower.start()
        logger.info("models at start: %s %s", result.status, result.error or "")
        app.state.store = store
        app.state.follower = follower
        app.state.recommender = Recommender(store, follower, decider, metrics)
        # Everything loaded so far lives as long as the process: keep the collector off it.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            follower.stop()
            store.close()

    return lifespan


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    follower: ModelFollower | None = None,
    decider_factory: DeciderFactory | None = None,
) -> FastAPI:
    """Build the app. Without arguments it reads ``NEXTBEST_*`` settings from the environment
    (``get_settings()``); the keyword arguments replace the parts built from settings."""
    settings = settings or get_settings()
    overrides = Overrides(store=store, follower=follower, decider_factory=decider_factory)
    app = FastAPI(
        title="nextbest",
        version=API_VERSION,
        summary="Next-best-action decisions for customer-journey orchestration.",
        lifespan=_lifespan(settings, overrides),
    )
    metrics = ServingMetrics()
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.keys = KeyRing.from_settings(settings)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(LatencyMiddleware, metrics=metrics)
    routers = [m.router for m in (recommend, events, feedback, customers, admin, health)]
    for router in routers:
        app.include_router(router)
    app.state.route_methods = route_methods(routers)
    return app
