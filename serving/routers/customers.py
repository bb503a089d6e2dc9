"""``/v1/customers``: create, replace and read customer profiles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from serving.deps import StoreDep
from serving.schemas.common import Identifier, error_responses
from serving.schemas.customers import CustomerIn, CustomerOut
from serving.security import ApiScope
from serving.stores.base import CustomerProfile

router = APIRouter(
    prefix="/v1/customers", tags=["customers"], responses=error_responses(401, 413, 422)
)

CustomerId = Annotated[Identifier, Path(description="The customer's id.")]


def _out(profile: CustomerProfile) -> CustomerOut:
    return CustomerOut(
        customer_id=profile.customer_id,
        timezone=profile.timezone,
        signup_ts=profile.signup_ts,
        consents=dict(profile.consents),
        attributes=dict(profile.attributes),
    )


@router.put("/{customer_id}", response_model=CustomerOut, summary="Create or replace a profile")
def put_customer(
    customer_id: CustomerId, body: CustomerIn, store: StoreDep, _: ApiScope
) -> CustomerOut:
    """A profile makes later decisions personal (timezone for send times and quiet hours,
    consents); until then the customer gets cold-start decisions."""
    profile = CustomerProfile(
        customer_id=customer_id,
        timezone=body.timezone,
        signup_ts=body.signup_ts,
        consents=dict(body.consents),
        attributes=dict(body.attributes),
    )
    store.upsert_customers([profile])
    return _out(profile)


@router.get(
    "/{customer_id}", response_model=CustomerOut, responses=error_responses(404), summary="Read"
)
def get_customer(customer_id: CustomerId, store: StoreDep, _: ApiScope) -> CustomerOut:
    profile = store.get_customer(customer_id)
    if profile is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id!r}")
    return _out(profile)
