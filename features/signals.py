"""Per-event keys and sums behind the category, contact-response, visit-hour and replenish
features.

Each is a property of an event computed from that event and the customer's *earlier* events
only (a purchase "follows a send" when a delivery precedes it within ``AFTER_SEND_HOURS``), so
the scan's point-in-time rule (``ts < as_of``) still decides what a query sees, and one
customer's history gives the same keys as the whole log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from features.contract import EventType
from features.eventlog import EVENT_CODE, NS_PER_HOUR, EventLog
from features.kernel import SortedGroups
from features.signal_definitions import (
    AFTER_SEND_HOURS,
    HOUR_HARMONICS,
)

_DELIVERED: Final = EVENT_CODE[EventType.MESSAGE_DELIVERED]
_PURCHASE: Final = EVENT_CODE[EventType.PURCHASE]
_SUPPORT: Final = EVENT_CODE[EventType.SUPPORT_CONTACT]
_PRODUCT_VIEW: Final = EVENT_CODE[EventType.PRODUCT_VIEW]
_PAGE_VIEW: Final = EVENT_CODE[EventType.PAGE_VIEW]

#: Keys of the after-send family (0: any other event).
PURCHASE_AFTER_SEND: Final = 1
PURCHASE_ORGANIC: Final = 2
SUPPORT_AFTER_SEND: Final = 3
AFTER_SEND_FAMILY_SIZE: Final = 4

#: Harmonic values in integer millionths per local hour of day, rows (cos k, sin k) for each
#: harmonic k: integer sums are exact, so a window's sum does not depend on how many other
#: customers' events the prefix sum ran over (batch and single customer agree to the bit).
_ANGLES: Final = 2.0 * np.pi * np.arange(24) / 24.0
HARMONIC_MICROS: Final = np.rint(np.vstack([
    f(k * _ANGLES) for k in HOUR_HARMONICS for f in (np.cos, np.sin)
]) * 1e6).astype(np.int64)  # (2 * len(HOUR_HARMONICS), 24)


def category_family_size(n_categories: int) -> int:
    return 1 + 2 * n_categories


def category_keys(log: EventLog, categories: Sequence[str]) -> np.ndarray:
    """Per event: 1 + c for a product view of category ``categories[c]``, 1 + K + c for a
    purchase of it, 0 otherwise (no category, another event type, an unknown category)."""
    keys = np.zeros(log.n_events, dtype=np.int32)
    if log.category is None or not categories or log.n_events == 0:
        return keys
    position = {c: i for i, c in enumerate(categories)}
    remap = np.array([-1, *(position.get(c, -1) for c in log.category_ids)], dtype=np.int32)
    code = remap[log.category.astype(np.int32) + 1]
    known = code >= 0
    keys[known & (log.event_type == _PRODUCT_VIEW)] = 1
    keys[known & (log.event_type == _PURCHASE)] = 1 + len(categories)
    return np.where(keys > 0, keys + code, 0).astype(np.int32)


def after_send_keys(log: EventLog) -> np.ndarray:
    """Per event: whether a purchase or support contact came within ``AFTER_SEND_HOURS`` after
    the customer's latest delivery strictly before it (keys of this module), 0 for other
    events. Strictly before, so events at the same instant give the same answer in any order.
    """
    keys = np.zeros(log.n_events, dtype=np.int32)
    purchase = log.event_type == _PURCHASE
    targets = np.flatnonzero(purchase | (log.event_type == _SUPPORT))
    if targets.size == 0:
        return keys
    deliveries = np.flatnonzero(log.event_type == _DELIVERED)
    after = np.zeros(targets.size, dtype=bool)
    if deliveries.size:
        owner = log.customer[deliveries]
        offsets = np.searchsorted(owner, np.arange(log.customer_ids.shape[0] + 1))
        groups = SortedGroups.build(owner, log.ts_ns[deliveries], offsets)
        customer = log.customer[targets].astype(np.int64)
        found = groups.positions(customer, log.ts_ns[targets]) - 1
        has = found >= offsets[customer]
        gap = log.ts_ns[targets] - log.ts_ns[deliveries[np.maximum(found, 0)]]
        after = has & (gap <= AFTER_SEND_HOURS * NS_PER_HOUR)
    is_purchase = purchase[targets]
    keys[targets] = np.where(is_purchase, np.where(after, PURCHASE_AFTER_SEND, PURCHASE_ORGANIC),
                             np.where(after, SUPPORT_AFTER_SEND, 0))
    return keys


def visit_hour_prefix(log: EventLog, engaged: np.ndarray, hour_of_week: np.ndarray) -> np.ndarray:
    """(2 * len(HOUR_HARMONICS), n_events + 1) prefix sums of the harmonics of site visits'
    local hour (integer millionths); ``hour_of_week`` is that of the ``engaged`` events."""
    values = np.zeros((HARMONIC_MICROS.shape[0], log.n_events + 1), dtype=np.int64)
    visits = log.event_type[engaged] == _PAGE_VIEW
    rows = engaged[visits]
    values[:, rows + 1] = HARMONIC_MICROS[:, hour_of_week[visits] % 24]
    np.cumsum(values[:, 1:], axis=1, out=values[:, 1:])
    return values


def first_purchase_ns(log: EventLog, codes: np.ndarray) -> np.ndarray:
    """Time of each customer's first purchase in the log (meaningless where it has none: the
    caller knows from the purchase count whether one precedes the query)."""
    out = np.zeros(codes.shape[0], dtype=np.int64)
    purchases = np.flatnonzero(log.event_type == _PURCHASE)
    if purchases.size == 0:
        return out
    # events are sorted by customer, then time: a customer's first purchase opens its run
    owner = log.customer[purchases]
    first = np.ones(owner.shape[0], dtype=bool)
    first[1:] = owner[1:] != owner[:-1]
    by_customer = np.zeros(log.customer_ids.shape[0], dtype=np.int64)
    by_customer[owner[first]] = log.ts_ns[purchases[first]]
    return by_customer[codes]


def harmonic_density(means: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """Smoothed visit density relative to a flat day at local ``hours`` from the harmonic means
    (rows as :data:`HARMONIC_MICROS`, columns broadcast with ``hours``): 1 + 2 sum_k
    (C_k cos(k theta) + S_k sin(k theta)); NaN where the means are NaN."""
    theta = 2.0 * np.pi * np.asarray(hours, dtype=np.float64) / 24.0
    density = np.ones(np.broadcast_shapes(theta.shape, means.shape[1:]))
    for j, k in enumerate(HOUR_HARMONICS):
        density = density + 2.0 * (means[2 * j] * np.cos(k * theta)
                                   + means[2 * j + 1] * np.sin(k * theta))
    return density


def peak_of_density(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(peak local hour 0-23, density there) of each column of harmonic means; NaN where the
    means are NaN (no visits)."""
    grid = harmonic_density(means[:, None, :], np.arange(24)[:, None])  # (24, n)
    unknown = np.isnan(means[0])
    grid[:, unknown] = -np.inf
    peak = np.argmax(grid, axis=0)
    strength = grid[peak, np.arange(grid.shape[1])]
    return (np.where(unknown, np.nan, peak.astype(np.float64)),
            np.where(unknown, np.nan, strength))
