"""Small, contract-valid journey frames built by hand for feature and outcome tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.contract import (
    CHANNELS,
    CONSENT_COLUMNS,
    EVENT_TYPES,
    REQUIRED_COLUMNS,
    Col,
    EventType,
    Table,
)
from features.io import parse_table
from features.schemas import TS_DTYPE

MESSAGES = ("welcome", "cart_nudge", "winback")
#: The catalog category of each of MESSAGES ("" = none) and the product categories of events.
MESSAGE_CATEGORIES = ("", "home", "beauty")
CATEGORIES = ("home", "beauty", "toys")
CATEGORY_EVENTS = (EventType.PRODUCT_VIEW, EventType.ADD_TO_CART, EventType.CHECKOUT,
                   EventType.PURCHASE)
T0 = pd.Timestamp("2024-03-01T00:00:00Z")
MESSAGE_EVENTS = (EventType.MESSAGE_DELIVERED, EventType.MESSAGE_OPEN, EventType.MESSAGE_CLICK)


def ts(days: float = 0.0, hours: float = 0.0) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days, hours=hours)


def customers_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Validated customers; each row needs ``customer_id`` and may override anything."""
    base: dict[str, Any] = {Col.TIMEZONE: "UTC", Col.SIGNUP_TS: ts(-100).isoformat()}
    base |= {c: "true" for c in CONSENT_COLUMNS}
    records = [base | {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v)
                       for k, v in row.items()} for row in rows]
    raw = pd.DataFrame(records).astype(object)
    raw = raw.where(raw.notna(), None)
    return parse_table(raw, Table.CUSTOMERS, "customers.csv")


def events_frame(rows: Sequence[tuple[Any, ...]], validate: bool = True) -> pd.DataFrame:
    """Events from ``(customer_id, ts, event_type, channel, message_id, value[, decision_id[,
    category]]])`` tuples; validated by the contract's loader unless ``validate`` is False (fast
    path for property tests, which build hundreds of frames). The optional ``category`` column
    is there when some row has a category."""
    records = []
    categories = []
    for i, row in enumerate(rows):
        customer, when, event_type, channel, message, value, *rest = row
        categories.append(rest[1] if len(rest) > 1 else None)
        records.append({
            Col.EVENT_ID: f"e{i}",
            Col.CUSTOMER_ID: customer,
            Col.TS: when,
            Col.EVENT_TYPE: str(event_type),
            Col.CHANNEL: None if channel is None else str(channel),
            Col.MESSAGE_ID: message,
            Col.DECISION_ID: rest[0] if rest else None,
            Col.VALUE: 0.0 if value is None else float(value),
        })
    columns = [Col.EVENT_ID, Col.CUSTOMER_ID, Col.TS, Col.EVENT_TYPE, Col.CHANNEL,
               Col.MESSAGE_ID, Col.DECISION_ID, Col.VALUE]
    frame = pd.DataFrame(records, columns=columns)
    if any(c is not None for c in categories):
        frame[Col.CATEGORY] = pd.Series(categories, dtype="str")
    frame[Col.TS] = pd.to_datetime(frame[Col.TS], utc=True).astype(TS_DTYPE)
    if not validate or frame.empty:  # pandera cannot infer string columns of an empty frame
        return frame
    raw = frame.astype({Col.TS: str, Col.VALUE: str}).astype(object)
    return parse_table(raw.where(frame.notna(), None), Table.EVENTS, "events.csv")


def random_event_rows(
    rng: np.random.Generator, customers: Sequence[str], n: int, days: float = 120.0
) -> list[tuple[Any, ...]]:
    """Plausible random events in the ``days`` before T0 + 30 d, on whole seconds; product
    events carry one of CATEGORIES (or none, as a real feed may)."""
    rows = []
    for _ in range(n):
        event_type = EVENT_TYPES[int(rng.integers(len(EVENT_TYPES)))]
        channel = CHANNELS[int(rng.integers(len(CHANNELS)))]
        message = None
        if event_type in MESSAGE_EVENTS:
            message = MESSAGES[int(rng.integers(len(MESSAGES)))]
        value = 0.0
        if event_type in (EventType.PURCHASE, EventType.ADD_TO_CART):
            value = round(float(rng.gamma(2.0, 20.0)), 2)
        when = T0 + pd.Timedelta(seconds=int(rng.integers(int((30 - days) * 86400), 30 * 86400)))
        pick = int(rng.integers(len(CATEGORIES) + 1))
        category = (CATEGORIES[pick] if event_type in CATEGORY_EVENTS and pick < len(CATEGORIES)
                    else None)
        rows.append((customers[int(rng.integers(len(customers)))], when, event_type,
                     channel, message, value, None, category))
    return rows


def decisions_frame(rows: Sequence[tuple[Any, ...]]) -> pd.DataFrame:
    """Validated decisions from ``(decision_id, customer_id, ts, message_id, channel,
    send_at)`` tuples (``None`` message and channel: no_action)."""
    records = [{
        Col.DECISION_ID: decision, Col.CUSTOMER_ID: customer, Col.TS: when.isoformat(),
        Col.MESSAGE_ID: message, Col.CHANNEL: None if channel is None else str(channel),
        Col.SEND_AT: None if send_at is None else send_at.isoformat(),
        Col.PROPENSITY: "0.5", Col.POLICY: "test",
    } for decision, customer, when, message, channel, send_at in rows]
    raw = pd.DataFrame(records, columns=list(REQUIRED_COLUMNS[Table.DECISIONS])).astype(object)
    return parse_table(raw.where(raw.notna(), None), Table.DECISIONS, "decisions.csv")
