"""Admin responses: model reload and customer deletion."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from serving.schemas.common import ResponseModel


class ReloadResult(ResponseModel):
    status: Literal["loaded", "unchanged", "skipped", "failed"] = Field(
        description="loaded: a new model set is served; unchanged: the alias did not move; "
        "failed: the new versions were rejected and the previous set is still served."
    )
    versions: dict[str, str] | None = Field(description="The versions the alias points at.")
    serving: dict[str, str] | None = Field(description="The versions served after the reload.")
    error: str | None = None


class DeletedRows(ResponseModel):
    customers: int = Field(ge=0)
    events: int = Field(ge=0)
    decisions: int = Field(ge=0)
    outcomes: int = Field(ge=0)


class CustomerDeleted(ResponseModel):
    customer_id: str
    deleted: DeletedRows
