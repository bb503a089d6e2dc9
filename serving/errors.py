"""Every error answers with the same concise JSON body (``schemas.common.ErrorResponse``).

Bad input gets a 4xx naming each field and its problem; a request body over the limit gets 413
before it is read; a real bug gets a generic 500 (logged with its traceback on the server, never
sent to the client).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.metrics import ServingMetrics
from serving.schemas.common import ErrorResponse, FieldProblem

logger = logging.getLogger(__name__)

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}
_LOCATIONS = {"query", "path", "header", "cookie"}


def error_body(status: int, message: str, problems: Sequence[FieldProblem] = ()) -> bytes:
    code = ERROR_CODES.get(status, "error" if status < 500 else "internal_error")
    body = ErrorResponse(error=code, message=message, problems=list(problems))
    return body.model_dump_json().encode()


def error_response(
    status: int,
    message: str,
    problems: Sequence[FieldProblem] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    response = JSONResponse(status_code=status, content=None, headers=headers)
    response.body = error_body(status, message, problems)
    response.headers["content-length"] = str(len(response.body))
    return response


def field_path(loc: Sequence[str | int]) -> str:
    """``("body", "events", 3, "event_type")`` -> ``events[3].event_type``."""
    parts = list(loc)
    prefix = ""
    if parts and parts[0] == "body":
        parts = parts[1:]
    elif parts and parts[0] in _LOCATIONS:
        prefix = f"{parts[0]}."
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return prefix + (path or "body")


def _problem(error: dict[str, Any]) -> FieldProblem:
    kind = error.get("type", "")
    loc = tuple(error.get("loc", ()))
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if kind == "json_invalid":
        detail = (error.get("ctx") or {}).get("error", "")
        position = loc[1] if len(loc) > 1 else "?"
        return FieldProblem(field="body", problem=f"invalid JSON at character {position}: {detail}")
    if kind == "missing" and loc == ("body",):
        return FieldProblem(field="body", problem="a JSON request body is required")
    if kind == "missing":
        message = "this field is required"
    elif kind == "extra_forbidden":
        message = "unknown field (not part of the schema)"
    return FieldProblem(field=field_path(loc), problem=message)


def _metrics(request: Request) -> ServingMetrics | None:
    return getattr(request.app.state, "metrics", None)


def _count(request: Request, kind: str) -> None:
    metrics = _metrics(request)
    if metrics is not None:
        metrics.errors.labels(type=kind).inc()


async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_problem(e) for e in exc.errors()]
    _count(request, "validation")
    noun = "problem" if len(problems) == 1 else "problems"
    return error_response(422, f"invalid request: {len(problems)} {noun}", problems)


def route_methods(routers: Iterable[APIRouter]) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """Path pattern and methods of every API route, for the ``Allow`` header of a 405."""
    return [
        (route.path_regex, frozenset(route.methods or ()))
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    ]


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    table: list[tuple[re.Pattern[str], frozenset[str]]] = getattr(
        request.app.state, "route_methods", []
    )
    path = request.url.path
    methods = set().union(*(m for pattern, m in table if pattern.match(path)))
    return ", ".join(sorted(methods))


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        _count(request, "validation")
        problem = FieldProblem(field="body", problem="the body is not UTF-8 encoded JSON")
        return error_response(422, "invalid request: 1 problem", [problem])
    _count(request, ERROR_CODES.get(exc.status_code, str(exc.status_code)))
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(exc.status_code, str(exc.detail), headers=headers or None)


async def internal_error_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    _count(request, "internal")
    return error_response(500, "internal error: the server could not answer this request")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)


class RequestTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodySizeLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413: at once from ``Content-Length``, or while
    reading a chunked body (before the app parses anything)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(scope, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLargeError(self.max_bytes)
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestTooLargeError:
            # Raised while a route without a handler in between was reading the body.
            if started:
                raise
            await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        response = error_response(413, f"request body larger than {self.max_bytes} bytes")
        response.headers["connection"] = "close"
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
