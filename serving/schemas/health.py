"""Liveness and readiness."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from serving.schemas.common import ResponseModel


class Health(ResponseModel):
    status: Literal["ok"] = "ok"


class ModelStatus(ResponseModel):
    loaded: bool
    alias: str
    versions: dict[str, str] = Field(default_factory=dict)
    loaded_at: datetime | None = None
    last_checked_at: datetime | None = None
    last_reload_error: str | None = Field(
        default=None, description="Why the newest aliased versions are not served, if they are not."
    )


class Readiness(ResponseModel):
    ready: bool
    store: str = Field(description="'ok' or why the store is unavailable.")
    models: ModelStatus
    decision_engine: bool = Field(description="Whether a decision engine is wired in.")
