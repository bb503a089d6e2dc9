"""The observable journey stage: a function of a customer's history only.

The simulator computes every stage from the same facts a learned policy can read off the events
(signup, last activity, last purchase, last add-to-cart), so a feature pipeline can rebuild it
exactly. Latent churn is separate: a churned customer keeps the stage its history shows until the
silence makes it ``churned`` (``StageRules.churned_inactive_days``).

Rules, first match wins, at time ``t``:

1. ``churned``: no activity for ``churned_inactive_days`` (since signup if never active);
2. ``carted``: an add-to-cart in the last ``cart_ttl_hours`` and no purchase since;
3. ``new``: signed up less than ``new_days`` ago and never purchased;
4. ``customer``: a purchase in the last ``customer_days``;
5. ``lapsing``: purchased before (but not recently), or no activity for ``lapsing_inactive_days``;
6. ``browsing``: everyone else.
"""

from __future__ import annotations

import numpy as np

from features.contract import STAGES, Stage
from features.simulator.clock import SECONDS_PER_DAY, SECONDS_PER_HOUR
from features.simulator.config import StageRules

STAGE_CODE: dict[Stage, int] = {s: i for i, s in enumerate(STAGES)}
NEW, BROWSING, CARTED, CUSTOMER, LAPSING, CHURNED = (
    STAGE_CODE[s]
    for s in (Stage.NEW, Stage.BROWSING, Stage.CARTED, Stage.CUSTOMER, Stage.LAPSING,
              Stage.CHURNED)
)


def cart_is_open(
    t: np.ndarray, last_cart: np.ndarray, last_purchase: np.ndarray, rules: StageRules
) -> np.ndarray:
    """An add-to-cart within the cart lifetime and no purchase after it."""
    return (last_cart > last_purchase) & (t - last_cart < rules.cart_ttl_hours * SECONDS_PER_HOUR)


def journey_stage(
    t: np.ndarray,
    signup: np.ndarray,
    last_activity: np.ndarray,
    last_purchase: np.ndarray,
    last_cart: np.ndarray,
    rules: StageRules,
) -> np.ndarray:
    """Stage codes (index into ``STAGES``) at times ``t``; times in seconds, -inf = never."""
    active_since = np.maximum(last_activity, signup)
    inactive_days = (t - active_since) / SECONDS_PER_DAY
    purchased = np.isfinite(last_purchase)
    days_since_purchase = np.where(purchased, (t - last_purchase) / SECONDS_PER_DAY, np.inf)
    tenure_days = (t - signup) / SECONDS_PER_DAY

    stage = np.full(t.shape, BROWSING, dtype=np.int8)
    lapsing = purchased | (inactive_days >= rules.lapsing_inactive_days)
    stage[lapsing] = LAPSING
    stage[days_since_purchase < rules.customer_days] = CUSTOMER
    stage[(tenure_days < rules.new_days) & ~purchased] = NEW
    stage[cart_is_open(t, last_cart, last_purchase, rules)] = CARTED
    stage[inactive_days >= rules.churned_inactive_days] = CHURNED
    return stage
