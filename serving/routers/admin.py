"""``/admin``: model reload and privacy deletion (admin scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from serving.deps import FollowerDep, StoreDep
from serving.schemas.admin import CustomerDeleted, DeletedRows, ReloadResult
from serving.schemas.common import Identifier, error_responses
from serving.security import AdminScope

router = APIRouter(prefix="/admin", tags=["admin"], responses=error_responses(401, 403, 422))


@router.post("/reload", response_model=ReloadResult, summary="Check the model alias now")
def reload_models(
    follower: FollowerDep,
    _: AdminScope,
    force: Annotated[
        bool, Query(description="Retry versions that failed before, even if unchanged.")
    ] = False,
) -> ReloadResult:
    """Resolves the alias now and, if it moved, loads, checks and swaps in the new versions
    (the same as the periodic poll). A rejected version leaves the served set untouched."""
    result = follower.refresh(force=force)
    current = follower.current
    return ReloadResult(
        status=result.status,
        versions=None if result.versions is None else dict(result.versions),
        serving=None if current is None else dict(current.versions),
        error=result.error,
    )


@router.delete(
    "/customers/{customer_id}", response_model=CustomerDeleted, summary="Forget a customer"
)
def delete_customer(
    customer_id: Annotated[Identifier, Path(description="The customer to erase.")],
    store: StoreDep,
    _: AdminScope,
) -> CustomerDeleted:
    """Deletes the profile, events, decisions and outcomes of a customer (privacy request).
    Idempotent: deleting an unknown customer removes nothing and succeeds."""
    report = store.delete_customer(customer_id)
    return CustomerDeleted(
        customer_id=customer_id,
        deleted=DeletedRows(
            customers=report.customers,
            events=report.events,
            decisions=report.decisions,
            outcomes=report.outcomes,
        ),
    )
