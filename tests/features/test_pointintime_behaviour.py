"""Feature values a user would check by hand: windows, consent, local time, stage, cart."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.contract import STAGES, Col, EventType, Stage
from features.customers import CustomerTable
from features.definitions import AS_OF, FeatureSpec
from features.eventlog import EventLog
from features.io import DataValidationError
from features.pointintime import build_feature_frame, cart_state, hour_profile, live_consent
from features.stage import derive_stage
from tests.features.builders import MESSAGES, customers_frame, events_frame, ts

E = EventType
NOW = ts(0)


def features_at(
    rows: list[tuple[Any, ...]],
    as_of: pd.Timestamp | list[pd.Timestamp] = NOW,
    customers: list[dict[str, Any]] | None = None,
) -> pd.DataFrame:
    customer_rows = customers or [{Col.CUSTOMER_ID: "c"}]
    frame = customers_frame(customer_rows)
    spec = FeatureSpec.from_customers(frame, MESSAGES)
    times = as_of if isinstance(as_of, list) else [as_of]
    ids = [customer_rows[0][Col.CUSTOMER_ID]] * len(times)
    queries = pd.DataFrame({Col.CUSTOMER_ID: ids, AS_OF: times})
    return build_feature_frame(events_frame(rows), frame, spec, queries)


def test_windows_are_half_open_and_exact() -> None:
    rows = [("c", NOW - pd.Timedelta(days=7), E.PAGE_VIEW, "web", None, 0),
            ("c", NOW - pd.Timedelta(days=7, seconds=1), E.PAGE_VIEW, "web", None, 0),
            ("c", NOW - pd.Timedelta(seconds=1), E.PAGE_VIEW, "web", None, 0),
            ("c", NOW, E.PAGE_VIEW, "web", None, 0)]  # at as-of: not yet known
    row = features_at(rows).iloc[0]
    assert (row["page_views_1d"], row["page_views_7d"], row["page_views_30d"]) == (1, 2, 3)
    assert row["days_since_activity"] == pytest.approx(1 / 86400)


def test_unsubscribe_before_as_of_withdraws_consent_on_that_channel_only() -> None:
    unsubscribed_at = ts(-1)
    rows = [("c", unsubscribed_at, E.UNSUBSCRIBE, "email", None, 0)]
    customer = [{Col.CUSTOMER_ID: "c", "consent_push": "false"}]
    frame = features_at(rows, [unsubscribed_at, unsubscribed_at + pd.Timedelta(1, "ns")],
                        customer)
    assert frame["consent_live_email"].tolist() == [1.0, 0.0]
    assert frame["consent_live_sms"].tolist() == [1.0, 1.0]
    assert frame["consent_live_push"].tolist() == [0.0, 0.0]  # never consented
    assert frame["unsubscribes_total"].tolist() == [0.0, 1.0]


def test_local_hours_follow_each_customers_timezone_across_dst() -> None:
    # 14:00 UTC on Saturday 9 March 2024 and Monday 11 March 2024; New York moved to
    # daylight time in between (UTC-5 -> UTC-4), Tokyo has no DST (UTC+9).
    saturday, monday = pd.Timestamp("2024-03-09T14:00Z"), pd.Timestamp("2024-03-11T14:00Z")
    customers = customers_frame([{Col.CUSTOMER_ID: "ny", Col.TIMEZONE: "America/New_York"},
                                 {Col.CUSTOMER_ID: "tokyo", Col.TIMEZONE: "Asia/Tokyo"}])
    spec = FeatureSpec.from_customers(customers)
    events = events_frame([(who, when, E.PAGE_VIEW, "web", None, 0)
                           for who in ("ny", "tokyo") for when in (saturday, monday)])
    log = EventLog.from_frame(events, (), customer_ids=["ny", "tokyo"])
    table = CustomerTable.from_frame(customers, spec)
    as_of = np.full(2, pd.Timestamp("2024-03-12T00:00Z").value)
    profile = hour_profile(log, table, np.array([0, 1]), as_of)
    ny_saturday_9, ny_monday_10 = 5 * 24 + 9, 10
    tokyo_saturday_23, tokyo_monday_23 = 5 * 24 + 23, 23
    assert np.flatnonzero(profile[0]).tolist() == [ny_monday_10, ny_saturday_9]
    assert np.flatnonzero(profile[1]).tolist() == [tokyo_monday_23, tokyo_saturday_23]
    frame = build_feature_frame(events, customers, spec, pd.DataFrame(
        {Col.CUSTOMER_ID: ["ny", "tokyo"], AS_OF: [pd.Timestamp("2024-03-12T00:00Z")] * 2}))
    assert frame["share_early_morning"].tolist() == [0.0, 0.0]
    assert frame["share_morning"].tolist() == [1.0, 0.0]  # 09:00 and 10:00 in New York
    assert frame["share_late_evening"].tolist() == [0.0, 1.0]  # 23:00 twice in Tokyo
    assert frame["share_weekend"].tolist() == [0.5, 0.5]


def test_profile_counts_only_engagement_in_the_lookback() -> None:
    rows = [("c", ts(-1), E.MESSAGE_OPEN, "email", "welcome", 0),
            ("c", ts(-2), E.PURCHASE, "web", None, 10.0),  # not engagement
            ("c", ts(-91), E.PAGE_VIEW, "web", None, 0)]  # older than 90 days
    customers = customers_frame([{Col.CUSTOMER_ID: "c"}])
    log = EventLog.from_frame(events_frame(rows), MESSAGES)
    table = CustomerTable.from_frame(customers, FeatureSpec.from_customers(customers))
    assert hour_profile(log, table, np.array([0]), np.array([NOW.value])).sum() == 1


def test_stage_rule() -> None:
    old, recent = {Col.SIGNUP_TS: ts(-300)}, {Col.SIGNUP_TS: ts(-3)}
    cases: list[tuple[Stage, dict[str, Any], list[tuple[Any, ...]]]] = [
        (Stage.NEW, recent, [(ts(-1), E.PAGE_VIEW, "web", None, 0)]),
        (Stage.CARTED, recent, [(ts(0, -2), E.ADD_TO_CART, "web", None, 20.0)]),
        (Stage.BROWSING, old, [(ts(0, -80), E.ADD_TO_CART, "web", None, 20.0)]),  # cart expired
        (Stage.BROWSING, old, [(ts(0, -3), E.ADD_TO_CART, "web", None, 20.0),
                               (ts(0, -2), E.CHECKOUT, "web", None, 0)]),
        (Stage.CUSTOMER, old, [(ts(-50), E.PURCHASE, "web", None, 30.0),
                               (ts(-2), E.PAGE_VIEW, "web", None, 0)]),
        (Stage.LAPSING, old, [(ts(-40), E.PURCHASE, "web", None, 30.0)]),
        (Stage.CHURNED, old, [(ts(-70), E.MESSAGE_CLICK, "email", "welcome", 0),
                              (ts(-1), E.MESSAGE_DELIVERED, "email", "welcome", 0)]),
        (Stage.LAPSING, {Col.SIGNUP_TS: ts(-45)}, []),  # signed up, never seen since
    ]
    ids = [f"x{i}" for i in range(len(cases))]
    customers = customers_frame([{Col.CUSTOMER_ID: c, **profile}
                                 for c, (_, profile, _) in zip(ids, cases, strict=True)])
    events = events_frame([(c, *row) for c, (_, _, rows) in zip(ids, cases, strict=True)
                           for row in rows])
    table = CustomerTable.from_frame(customers, FeatureSpec())
    log = EventLog.from_frame(events, MESSAGES, customer_ids=ids)
    codes = np.arange(len(ids))
    stages = derive_stage(log, table, codes, np.full(len(ids), NOW.value))
    assert [STAGES[s] for s in stages] == [expected for expected, _, _ in cases]
    frame = build_feature_frame(events, customers, FeatureSpec(), pd.DataFrame(
        {Col.CUSTOMER_ID: ids, AS_OF: [NOW] * len(ids)}))
    assert frame["stage"].tolist() == stages.tolist()


def test_open_cart_value_counts_carts_since_the_last_checkout_within_72_hours() -> None:
    rows = [("c", ts(0, -90), E.ADD_TO_CART, "web", None, 5.0),  # expired
            ("c", ts(0, -10), E.ADD_TO_CART, "web", None, 7.0),
            ("c", ts(0, -9), E.PURCHASE, "web", None, 7.0),  # closes that cart
            ("c", ts(0, -4), E.ADD_TO_CART, "web", None, 10.0),
            ("c", ts(0, -3), E.ADD_TO_CART, "web", None, 20.25)]
    customers = customers_frame([{Col.CUSTOMER_ID: "c"}])
    log = EventLog.from_frame(events_frame(rows), MESSAGES)
    table = CustomerTable.from_frame(customers, FeatureSpec())
    times = np.array([ts(0).value, ts(0, -9).value, ts(0, -8).value, ts(0, 70).value])
    open_cart, value = cart_state(log, table, np.zeros(4, dtype=np.int64), times)
    assert open_cart.tolist() == [True, True, False, False]
    assert value.tolist() == [30.25, 7.0, 0.0, 0.0]


def test_message_history_and_contact_pressure() -> None:
    rows = [("c", ts(0, -5), E.MESSAGE_DELIVERED, "email", "welcome", 0),
            ("c", ts(0, -30), E.MESSAGE_DELIVERED, "sms", "welcome", 0),
            ("c", ts(0, -29), E.MESSAGE_OPEN, "sms", "welcome", 0),
            ("c", ts(-3), E.MESSAGE_DELIVERED, "sms", "winback", 0)]
    row = features_at(rows).iloc[0]
    assert row["hours_since_send_msg_welcome"] == pytest.approx(5)
    assert row["hours_since_send_msg_winback"] == pytest.approx(72)
    assert np.isnan(row["hours_since_send_msg_cart_nudge"])
    assert row["hours_since_send_sms"] == pytest.approx(30)
    assert (row["sends_1d"], row["sends_7d"], row["sends_7d_sms"], row["sends_1d_sms"]) == (
        1, 3, 2, 0)
    assert row["open_rate_sms"] == pytest.approx((1 + 0.2 * 4) / (2 + 4))
    assert row["open_rate_push"] == pytest.approx(0.2)  # no history: the prior


def test_customer_attributes_become_features_and_unseen_categories_are_handled() -> None:
    training = customers_frame([
        {Col.CUSTOMER_ID: "a", "segment": "vip", "age": "30", "club": "true",
         "first_order": "2024-02-20"},
        {Col.CUSTOMER_ID: "b", "segment": "mass", "age": "41.5", "club": "false",
         "first_order": None},
    ])
    spec = FeatureSpec.from_customers(training)
    assert spec.names[-4:] == ("attr_segment", "attr_age", "attr_club", "attr_first_order")
    assert "attr_segment" in spec.categorical_names
    # Scoring a new customers file: an unseen segment and a missing one.
    scoring = customers_frame([
        {Col.CUSTOMER_ID: "c", "segment": "student", "age": "22", "club": "true",
         "first_order": "2024-02-29"},
        {Col.CUSTOMER_ID: "d", "segment": None, "age": None, "club": None, "first_order": None},
        {Col.CUSTOMER_ID: "e", "segment": "vip", "age": "50", "club": "false",
         "first_order": None},
    ])
    queries = pd.DataFrame({Col.CUSTOMER_ID: ["c", "d", "e"], AS_OF: [NOW] * 3})
    frame = build_feature_frame(events_frame([]), scoring, spec, queries)
    attrs = frame[["attr_segment", "attr_age", "attr_club", "attr_first_order"]].to_numpy()
    np.testing.assert_array_equal(attrs, [[-1.0, 22.0, 1.0, 1.0],
                                          [np.nan, np.nan, np.nan, np.nan],
                                          [1.0, 50.0, 0.0, np.nan]])  # vocabulary: mass, vip
    # Serving encodes a profile the same way.
    one = CustomerTable.from_profile("c", {Col.TIMEZONE: "UTC", Col.SIGNUP_TS: "2024-01-01",
                                           "segment": "student", "age": 22, "club": True}, spec)
    np.testing.assert_array_equal(one.attributes, [[-1.0, 22.0, 1.0, np.nan]])


def test_spec_survives_json_and_rejects_foreign_specs() -> None:
    customers = customers_frame([{Col.CUSTOMER_ID: "a", "segment": "vip", "age": "3"}])
    spec = FeatureSpec.from_customers(customers, MESSAGES)
    again = FeatureSpec.from_json(spec.to_json())
    assert again == spec and again.names == spec.names
    data = spec.to_dict()
    with pytest.raises(ValueError, match="version"):
        FeatureSpec.from_dict(data | {"version": 999})
    with pytest.raises(ValueError, match="extra"):
        FeatureSpec.from_dict(data | {"colour": "red"})
    with pytest.raises(ValueError, match="names do not match"):
        FeatureSpec.from_dict(data | {"names": data["names"][:-1]})


def test_high_cardinality_attributes_keep_the_most_frequent_values() -> None:
    rows = [{Col.CUSTOMER_ID: f"c{i}", "city": f"city{i % 7 if i < 60 else i}"}
            for i in range(80)]
    spec = FeatureSpec.from_customers(customers_frame(rows), max_categories=7)
    assert spec.attributes[0].vocabulary == tuple(sorted(f"city{i}" for i in range(7)))


def test_bad_inputs_get_clear_errors() -> None:
    customers = customers_frame([{Col.CUSTOMER_ID: "a", "age": "30"}])
    spec = FeatureSpec.from_customers(customers)
    queries = pd.DataFrame({Col.CUSTOMER_ID: ["a", "zed"], AS_OF: [NOW, "not a time"]})
    with pytest.raises(DataValidationError) as error:
        build_feature_frame(events_frame([]), customers, spec, queries)
    message = str(error.value)
    assert "queries, row 2, column 'customer_id': expected a customer_id in customers" in message
    assert "queries, row 2, column 'as_of': expected a timestamp" in message
    with pytest.raises(DataValidationError, match="column 'as_of'"):
        build_feature_frame(events_frame([]), customers, spec, queries[[Col.CUSTOMER_ID]])
    text_age = customers_frame([{Col.CUSTOMER_ID: "b", "age": "thirty"}])
    with pytest.raises(DataValidationError, match="row 1, column 'age': expected a number"):
        CustomerTable.from_frame(text_age, spec)
    with pytest.raises(ValueError, match="expected an IANA timezone"):
        CustomerTable.from_profile("a", {Col.TIMEZONE: "Mars/Base", Col.SIGNUP_TS: 0}, spec)
    with pytest.raises(ValueError, match="attribute 'age': expected a number"):
        CustomerTable.from_profile("a", {Col.TIMEZONE: "UTC", Col.SIGNUP_TS: 0, "age": "old"},
                                   spec)
    log = EventLog.from_frame(events_frame([]), (), customer_ids=["a"])
    table = CustomerTable.from_frame(customers, spec)
    with pytest.raises(ValueError, match=r"customer codes \[3\] are outside"):
        live_consent(log, table, np.array([3]), np.array([NOW.value]))
