"""The vectorised kernel against a direct, one-query-at-a-time reading of the definitions."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from features.contract import ACTIVITY_EVENT_TYPES, CHANNELS, ENGAGEMENT_EVENT_TYPES, Col
from features.contract import EventType as E
from features.definitions import (
    AS_OF,
    CLICK_RATE_PRIOR,
    DAY_PARTS,
    OPEN_RATE_PRIOR,
    RATE_PRIOR_WEIGHT,
    FeatureSpec,
)
from features.pointintime import build_feature_frame
from tests.features.builders import MESSAGES, customers_frame, events_frame, random_event_rows, ts

DAY, HOUR = pd.Timedelta(days=1), pd.Timedelta(hours=1)
ZONES = {"a": "America/New_York", "b": "Asia/Tokyo", "c": "Europe/London"}


def expected_features(events: pd.DataFrame, customer: str, as_of: pd.Timestamp,
                      signup: pd.Timestamp, consent: dict[str, bool]) -> dict[str, float]:
    seen = events[(events[Col.CUSTOMER_ID] == customer) & (events[Col.TS] < as_of)]
    kind, channel = seen[Col.EVENT_TYPE], seen[Col.CHANNEL]

    def within(days: float) -> pd.Series:
        return seen[Col.TS] >= as_of - days * DAY

    def since(mask: pd.Series, unit: pd.Timedelta) -> float:
        return (as_of - seen.loc[mask, Col.TS].max()) / unit if mask.any() else np.nan

    out: dict[str, float] = {
        "days_since_activity": since(kind.isin(list(ACTIVITY_EVENT_TYPES)), DAY),
        "days_since_purchase": since(kind == E.PURCHASE, DAY),
        "days_since_cart": since(kind == E.ADD_TO_CART, DAY),
        "days_since_open": since(kind == E.MESSAGE_OPEN, DAY),
        "days_since_click": since(kind == E.MESSAGE_CLICK, DAY),
        "purchases_total": float((kind == E.PURCHASE).sum()),
        "purchase_value_total": seen.loc[kind == E.PURCHASE, Col.VALUE].sum(),
        "unsubscribes_total": float((kind == E.UNSUBSCRIBE).sum()),
        "support_contacts_30d": float(((kind == E.SUPPORT_CONTACT) & within(30)).sum()),
        "tenure_days": (as_of - signup) / DAY,
        "hours_since_send": since(kind == E.MESSAGE_DELIVERED, HOUR),
    }
    for name, event in (("page_views", E.PAGE_VIEW), ("product_views", E.PRODUCT_VIEW),
                        ("carts", E.ADD_TO_CART), ("purchases", E.PURCHASE)):
        for days in (1, 7, 30, 90):
            out[f"{name}_{days}d"] = float(((kind == event) & within(days)).sum())
    for days in (30, 90):
        out[f"purchase_value_{days}d"] = seen.loc[(kind == E.PURCHASE) & within(days),
                                                  Col.VALUE].sum()
    orders = out["purchases_90d"]
    out["avg_order_value_90d"] = out["purchase_value_90d"] / orders if orders else np.nan
    for days in (1, 7):
        out[f"sends_{days}d"] = float(((kind == E.MESSAGE_DELIVERED) & within(days)).sum())
    for ch in CHANNELS:
        on = channel == ch
        out[f"deliveries_90d_{ch}"] = float(((kind == E.MESSAGE_DELIVERED) & on & within(90)).sum())
        out[f"opens_90d_{ch}"] = float(((kind == E.MESSAGE_OPEN) & on & within(90)).sum())
        out[f"clicks_90d_{ch}"] = float(((kind == E.MESSAGE_CLICK) & on & within(90)).sum())
        trials = out[f"deliveries_90d_{ch}"] + RATE_PRIOR_WEIGHT
        out[f"open_rate_{ch}"] = (out[f"opens_90d_{ch}"]
                                  + OPEN_RATE_PRIOR * RATE_PRIOR_WEIGHT) / trials
        out[f"click_rate_{ch}"] = (out[f"clicks_90d_{ch}"]
                                   + CLICK_RATE_PRIOR * RATE_PRIOR_WEIGHT) / trials
        out[f"days_since_engagement_{ch}"] = since(
            kind.isin(list(ENGAGEMENT_EVENT_TYPES)) & on, DAY)
        out[f"hours_since_send_{ch}"] = since((kind == E.MESSAGE_DELIVERED) & on, HOUR)
        for days in (1, 7):
            out[f"sends_{days}d_{ch}"] = float(
                ((kind == E.MESSAGE_DELIVERED) & on & within(days)).sum())
        unsubscribed = ((kind == E.UNSUBSCRIBE) & on).any()
        out[f"consent_live_{ch}"] = float(consent[ch] and not unsubscribed)
    for message in MESSAGES:
        out[f"hours_since_send_msg_{message}"] = since(
            (kind == E.MESSAGE_DELIVERED) & (seen[Col.MESSAGE_ID] == message), HOUR)
    engaged = seen[kind.isin(list(ENGAGEMENT_EVENT_TYPES)) & within(90)]
    zone = ZoneInfo(ZONES[customer])
    local = [datetime.fromtimestamp(t.timestamp(), zone) for t in engaged[Col.TS]]
    out["engagements_90d"] = float(len(local))
    for i, part in enumerate(DAY_PARTS):
        hits = sum(1 for t in local if i * 4 <= t.hour < i * 4 + 4)
        out[f"share_{part}"] = hits / len(local) if local else np.nan
    out["share_weekend"] = (sum(1 for t in local if t.weekday() >= 5) / len(local)
                            if local else np.nan)
    return out


def test_kernel_matches_a_direct_reading_of_every_definition() -> None:
    rng = np.random.default_rng(2024)
    customers = customers_frame([
        {Col.CUSTOMER_ID: c, Col.TIMEZONE: z, Col.SIGNUP_TS: ts(-150 + 20 * i),
         "consent_sms": "false" if c == "b" else "true"}
        for i, (c, z) in enumerate(ZONES.items())])
    events = events_frame(random_event_rows(rng, list(ZONES), 900, days=200))
    spec = FeatureSpec.from_customers(customers, MESSAGES)
    who = [list(ZONES)[int(i)] for i in rng.integers(0, 3, 36)]
    # Random instants, plus window edges that land exactly on events.
    when = [ts(float(d)) for d in rng.uniform(-120, 35, 30)]
    picks = events.sample(6, random_state=1)
    when += [t + k * DAY for t, k in zip(picks[Col.TS], (0, 1, 7, 30, 90, 1), strict=True)]
    who[-6:] = picks[Col.CUSTOMER_ID].tolist()
    frame = build_feature_frame(events, customers, spec,
                                pd.DataFrame({Col.CUSTOMER_ID: who, AS_OF: when}))
    profiles = customers.set_index(Col.CUSTOMER_ID)
    checked = 0
    for i, (customer, as_of) in enumerate(zip(who, when, strict=True)):
        profile = profiles.loc[customer]
        consent = {ch: bool(profile[f"consent_{ch}"]) for ch in CHANNELS}
        expected = expected_features(events, customer, as_of, profile[Col.SIGNUP_TS], consent)
        for name, value in expected.items():
            assert frame.iloc[i][name] == pytest.approx(value, rel=1e-9, abs=1e-9, nan_ok=True), (
                name, customer, as_of)
            checked += 1
    assert checked == 36 * 93  # every base feature but stage and cart (see the behaviour tests)
