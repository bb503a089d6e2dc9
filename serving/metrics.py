"""Prometheus metrics of one app instance, on its own registry.

A registry per app (not prometheus_client's global default) keeps apps built in the same process
(tests, embedded use) from sharing counters. With several worker processes each worker exposes
its own figures: scrape each worker, or run one worker per process behind the balancer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Sub-millisecond resolution where the recommend goals are (p50 2 ms, p99 5 ms).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
UNMATCHED_ROUTE = "<unmatched>"


class ServingMetrics:
    """Every metric the service exports."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_latency = Histogram(
            "nextbest_request_duration_seconds",
            "Time to answer a request, by route template, method and status code.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "nextbest_decisions_total",
            "Decisions made, by action (send or no_action) and channel.",
            ["action", "channel", "cold_start"],
            registry=self.registry,
        )
        self.errors = Counter(
            "nextbest_errors_total",
            "Error responses by type (validation, auth, not_found, too_large, unavailable, "
            "internal...).",
            ["type"],
            registry=self.registry,
        )
        self.events = Counter(
            "nextbest_events_total",
            "Events received, by result (accepted or duplicate).",
            ["result"],
            registry=self.registry,
        )
        self.feedback = Counter(
            "nextbest_feedback_total",
            "Outcomes joined to decisions, by outcome type.",
            ["outcome"],
            registry=self.registry,
        )
        self.model_version = Gauge(
            "nextbest_model_version_info",
            "1 for each (task, version) in the model set being served.",
            ["task", "version", "alias"],
            registry=self.registry,
        )
        self.models_loaded = Gauge(
            "nextbest_models_loaded",
            "1 when a complete, checked model set is loaded.",
            registry=self.registry,
        )
        self.model_load_failures = Counter(
            "nextbest_model_load_failures_total",
            "Model versions that failed to load or failed the smoke check, by task.",
            ["task"],
            registry=self.registry,
        )
        self.model_reload_error = Gauge(
            "nextbest_model_reload_error",
            "1 when the last attempt to load the aliased versions failed (the previous set, if "
            "any, is still served).",
            registry=self.registry,
        )

    def set_model_versions(self, versions: Mapping[str, str], alias: str) -> None:
        self.model_version.clear()
        for task, version in versions.items():
            self.model_version.labels(task=task, version=version, alias=alias).set(1)
        self.models_loaded.set(1)
        self.model_reload_error.set(0)

    def record_model_failure(self, task: str | None) -> None:
        self.model_load_failures.labels(task=task or "all").inc()
        self.model_reload_error.set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class LatencyMiddleware:
    """Pure ASGI middleware timing every HTTP request under its route template (so
    ``/admin/customers/{customer_id}`` is one series, and unknown paths share one label)."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            self.metrics.request_latency.labels(
                route=template, method=scope["method"], status=str(status)
            ).observe(time.perf_counter() - start)
