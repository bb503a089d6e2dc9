"""Category shares, response to past contact, purchase rhythm and visit hours, checked by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.contract import Col, EventType
from features.customers import CustomerTable
from features.definitions import AS_OF, FeatureSpec
from features.eventlog import EventLog
from features.pointintime import build_feature_frame, compute_features
from tests.features.builders import (
    MESSAGE_CATEGORIES,
    MESSAGES,
    customers_frame,
    events_frame,
    random_event_rows,
    ts,
)

E = EventType
NOW = ts(0)


def features_at(rows: list[tuple[Any, ...]], timezone: str = "UTC") -> pd.Series:
    customers = customers_frame([{Col.CUSTOMER_ID: "c", Col.TIMEZONE: timezone}])
    spec = FeatureSpec.from_customers(customers, MESSAGES, message_categories=MESSAGE_CATEGORIES)
    queries = pd.DataFrame({Col.CUSTOMER_ID: ["c"], AS_OF: [NOW]})
    return build_feature_frame(events_frame(rows), customers, spec, queries).iloc[0]


def _event(days: float, event_type: EventType, category: str | None = None,
           channel: str | None = "web", message: str | None = None,
           value: float = 0.0) -> tuple[Any, ...]:
    return ("c", ts(days), event_type, channel, message, value, None, category)


def test_category_shares_count_views_and_purchases_of_each_catalog_category() -> None:
    rows = [_event(-d, E.PRODUCT_VIEW, "home") for d in (1, 2, 3)]
    rows += [_event(-4, E.PRODUCT_VIEW, "beauty"), _event(-5, E.PRODUCT_VIEW, "toys"),
             _event(-6, E.PRODUCT_VIEW, None),
             _event(-200, E.PRODUCT_VIEW, "beauty"),  # outside the 90-day view window
             _event(-7, E.PURCHASE, "beauty", value=20.0)]
    row = features_at(rows)
    # toys is not a catalog category: it counts toward no share but is a view
    assert row["view_share_home"] == pytest.approx(0.75)
    assert row["view_share_beauty"] == pytest.approx(0.25)
    assert (row["purchase_share_beauty"], row["purchase_share_home"]) == (1.0, 0.0)
    assert "view_share_toys" not in row.index


def test_categories_are_unknown_without_views_or_event_categories() -> None:
    row = features_at([_event(-1, E.PAGE_VIEW)])
    assert pd.isna(row["view_share_home"]) and pd.isna(row["purchase_share_home"])


def test_purchases_and_support_after_a_delivery_are_told_from_organic_ones() -> None:
    rows = [_event(-30, E.MESSAGE_DELIVERED, channel="email", message="winback"),
            _event(-28, E.PURCHASE, "home", value=30.0),  # 2 days after the send
            _event(-29, E.SUPPORT_CONTACT, channel=None),  # 1 day after the send
            _event(-10, E.PURCHASE, "home", value=30.0),  # 20 days after: organic
            _event(-1, E.MESSAGE_DELIVERED, channel="sms", message="welcome")]
    row = features_at(rows)
    assert row["deliveries_total"] == 2
    assert (row["purchases_after_send_total"], row["organic_purchases_total"]) == (1, 1)
    assert row["purchases_after_send_rate"] == pytest.approx(0.5)
    assert row["support_after_send_total"] == 1
    assert row["open_rate_all"] == pytest.approx((0 + 0.2 * 4) / (2 + 4))


def test_purchase_rhythm_is_the_mean_gap_and_where_the_customer_is_in_it() -> None:
    rows = [_event(-d, E.PURCHASE, "home", value=10.0) for d in (35, 25, 15, 5)]
    row = features_at(rows)
    assert row["purchase_interval_days"] == pytest.approx(10.0)
    assert row["purchase_cycle_position"] == pytest.approx(0.5)
    assert pd.isna(features_at(rows[:1])["purchase_interval_days"])


def test_visit_peak_hour_is_the_customers_local_evening() -> None:
    # page views at 20:00-22:00 local time in Tokyo (UTC+9) = 11:00-13:00 UTC
    rows = [("c", pd.Timestamp(f"2024-02-{day:02d}T{hour}:30Z"), E.PAGE_VIEW, "web", None, 0.0)
            for day in range(1, 21) for hour in (11, 12)]
    row = features_at(rows, timezone="Asia/Tokyo")
    assert row["visit_peak_hour"] in (20.0, 21.0)
    assert row["visit_peak_strength"] > 3.0
    assert pd.isna(features_at([_event(-1, E.PURCHASE, "home", value=5.0)])["visit_peak_hour"])


def test_events_without_categories_give_what_uncategorised_events_give() -> None:
    """A history without the category column (serving's store) skips the category families
    of the scan; every feature equals that of the same events with empty categories."""
    customers = customers_frame([{Col.CUSTOMER_ID: "c"}, {Col.CUSTOMER_ID: "d"}])
    spec = FeatureSpec.from_customers(customers, MESSAGES, message_categories=MESSAGE_CATEGORIES)
    rows = [row[:6] for row in random_event_rows(np.random.default_rng(2), ["c", "d"], 300)]
    plain = events_frame(rows, validate=False)
    empty = plain.assign(**{Col.CATEGORY: pd.Series([None] * len(plain), dtype="str")})
    table = CustomerTable.from_frame(customers, spec)
    codes = np.array([0, 1, 0])
    as_of = pd.DatetimeIndex([ts(-10), ts(0), ts(20)]).as_unit("ns").asi8
    logs = [EventLog.from_frame(frame, MESSAGES, customer_ids=["c", "d"])
            for frame in (plain, empty)]
    assert logs[0].category is None and logs[1].category is not None
    without, with_empty = (compute_features(log, table, spec, codes, as_of) for log in logs)
    np.testing.assert_array_equal(without, with_empty)
    assert np.isnan(without[:, spec.index("view_share_home")]).all()
