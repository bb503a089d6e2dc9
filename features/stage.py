"""Journey state as of a time: stage, cart and live consent, derived from events.

Used as features and, for one customer now, by serving's eligibility and contact rules — the
same functions in both places.

Stage rule (first match wins; "seen" is the later of the last activity event and signup):

1. ``churned``  — not seen for ``CHURNED_DAYS`` (60) days or more;
2. ``carted``   — an open cart: an add_to_cart in the last ``CART_HOURS`` (72) hours not
   followed by a checkout or purchase;
3. ``new``      — signed up less than ``NEW_DAYS`` (14) days ago and never purchased;
4. ``lapsing``  — not seen for ``LAPSING_DAYS`` (30) days or more;
5. ``customer`` — purchased within the last ``CUSTOMER_DAYS`` (60) days;
6. ``browsing`` — everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from features.contract import CHANNELS, STAGES, Stage
from features.customers import CustomerTable
from features.eventlog import NS_PER_DAY, EventLog
from features.kernel import from_micros
from features.scan import LIFETIME, EventScan, Queries, state_plan

NEW_DAYS: Final = 14
LAPSING_DAYS: Final = 30
CHURNED_DAYS: Final = 60
CUSTOMER_DAYS: Final = 60

STAGE_CODE: Final = {stage: i for i, stage in enumerate(STAGES)}


def stage_codes(
    days_since_seen: np.ndarray,
    tenure_days: np.ndarray,
    purchases_total: np.ndarray,
    days_since_purchase: np.ndarray,
    open_cart: np.ndarray,
) -> np.ndarray:
    """The stage rule on arrays; returns int8 indices into ``STAGES``."""
    codes = np.full(days_since_seen.shape, STAGE_CODE[Stage.BROWSING], dtype=np.int8)
    # Lowest priority first, so each later assignment overrides: the rule's order reversed.
    # (NaN compares False: never purchased is not "customer".)
    codes[days_since_purchase < CUSTOMER_DAYS] = STAGE_CODE[Stage.CUSTOMER]
    codes[days_since_seen >= LAPSING_DAYS] = STAGE_CODE[Stage.LAPSING]
    codes[(tenure_days < NEW_DAYS) & (purchases_total == 0)] = STAGE_CODE[Stage.NEW]
    codes[open_cart] = STAGE_CODE[Stage.CARTED]
    codes[days_since_seen >= CHURNED_DAYS] = STAGE_CODE[Stage.CHURNED]
    return codes


@dataclass(frozen=True)
class JourneyState:
    """Per query: stage code, cart state and consent as of the query time."""

    stage: np.ndarray  # (n,) int8 index into STAGES
    open_cart: np.ndarray  # (n,) bool
    cart_value: np.ndarray  # (n,) float64, 0 without an open cart
    consent: np.ndarray  # (len(CHANNELS), n) bool: profile consent and no unsubscribe since
    tenure_days: np.ndarray  # (n,) float64

    def stages(self) -> list[Stage]:
        return [STAGES[int(code)] for code in self.stage]


_UNSUBSCRIBES: Final = tuple(f"unsubscribe_{c}" for c in CHANNELS)


def journey_state(
    scan: EventScan, customers: CustomerTable, rows: slice = slice(None)
) -> JourneyState:
    """The state of queries ``rows`` (in the scan's sorted order) of a scan whose plan includes
    ``state_plan``'s categories."""
    queries = scan.queries
    as_of, codes = queries.as_of[rows], queries.codes[rows]
    last_activity, last_purchase = scan.last(("activity", "purchase"))[:, rows]
    signup = customers.signup_ns[codes]
    # Seen: the later of the last activity and signup (an event-free log has no positions).
    activity_ts = scan.event_ts(last_activity)
    seen = np.where(last_activity >= 0, np.maximum(activity_ts, signup), signup)
    days_since_seen = (as_of - seen) / NS_PER_DAY
    tenure = (as_of - signup) / NS_PER_DAY
    days_since_purchase = scan.elapsed_ns(last_purchase, as_of) / NS_PER_DAY
    open_cart = scan.open_cart[rows]
    stage = stage_codes(days_since_seen, tenure, scan.count("purchase", LIFETIME)[rows],
                        days_since_purchase, open_cart)
    unsubscribed = scan.counts(_UNSUBSCRIBES, LIFETIME)[:, rows]
    consent = customers.consent[codes].T & (unsubscribed == 0)
    return JourneyState(stage, open_cart, from_micros(scan.cart_value[rows]), consent, tenure)


def derive_journey_state(
    log: EventLog, customers: CustomerTable, customer_codes: np.ndarray, as_of_ns: np.ndarray
) -> JourneyState:
    """Stage, cart and live consent of (customer code, as-of) queries over ``log``, in the
    order given. ``customers`` is aligned to the log's customers if it is not already."""
    if not customers.is_aligned(log):
        customers = customers.aligned_to(log.customer_ids)
    queries = Queries.resolve(log, customer_codes, as_of_ns)
    state = journey_state(EventScan.run(log, queries, state_plan()), customers)
    return JourneyState(
        stage=queries.unsort(state.stage),
        open_cart=queries.unsort(state.open_cart),
        cart_value=queries.unsort(state.cart_value),
        consent=queries.unsort(state.consent),
        tenure_days=queries.unsort(state.tenure_days),
    )


def derive_stage(
    log: EventLog, customers: CustomerTable, customer_codes: np.ndarray, as_of_ns: np.ndarray
) -> np.ndarray:
    """Journey stage of each query as int8 indices into ``features.contract.STAGES``."""
    return derive_journey_state(log, customers, customer_codes, as_of_ns).stage
