"""The point-in-time rule and the one-code-path promise: batch and single customer agree."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.contract import CHANNELS, CONSENT_COLUMNS, EVENT_TYPES, Col
from features.customers import CustomerTable
from features.definitions import FeatureSpec
from features.eventlog import CHANNEL_CODE, EVENT_CODE, EventLog, encode
from features.pointintime import compute_features, hour_profile
from features.stage import derive_journey_state
from tests.features.builders import (
    CATEGORIES,
    CATEGORY_EVENTS,
    MESSAGE_CATEGORIES,
    MESSAGE_EVENTS,
    MESSAGES,
    T0,
    customers_frame,
    events_frame,
    random_event_rows,
    ts,
)

CUSTOMERS: list[dict[str, Any]] = [
    {Col.CUSTOMER_ID: "ana", Col.TIMEZONE: "America/New_York", "segment": "vip", "age": "31",
     "first_order": "2023-11-02"},
    {Col.CUSTOMER_ID: "bo", Col.TIMEZONE: "Asia/Tokyo", "segment": "mass", "age": "45",
     "first_order": None, "consent_sms": "false"},
    {Col.CUSTOMER_ID: "cy", Col.TIMEZONE: "Europe/Paris", "segment": None, "age": None,
     "first_order": "2024-01-15", Col.SIGNUP_TS: ts(-5)},
    {Col.CUSTOMER_ID: "di", Col.TIMEZONE: "Australia/Lord_Howe", "segment": "young",
     "age": "22", "first_order": None},
]
IDS = [c[Col.CUSTOMER_ID] for c in CUSTOMERS]


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return customers_frame(CUSTOMERS)


@pytest.fixture(scope="module")
def spec(customers: pd.DataFrame) -> FeatureSpec:
    return FeatureSpec.from_customers(customers, MESSAGES, message_categories=MESSAGE_CATEGORIES)


def _log(events: pd.DataFrame) -> EventLog:
    return EventLog.from_frame(events, MESSAGES, customer_ids=IDS)


def _profile(customers: pd.DataFrame, customer_id: str) -> dict[str, Any]:
    """The profile as serving would hold it: raw attribute values, booleans, a timestamp."""
    record = customers.set_index(Col.CUSTOMER_ID).loc[customer_id]
    profile: dict[str, Any] = {str(k): (None if pd.isna(v) else v)
                               for k, v in record.items()}
    profile |= {c: bool(record[c]) for c in CONSENT_COLUMNS}
    return profile


def _single_customer_log(events: pd.DataFrame, customer_id: str) -> EventLog:
    """One customer's events as serving's store would hand them over: codes, unsorted."""
    own = events[events[Col.CUSTOMER_ID] == customer_id].sample(frac=1.0, random_state=3)
    message_code = {m: i for i, m in enumerate(MESSAGES)}
    # the store's own category vocabulary, in another order than the batch log's
    vocabulary = tuple(reversed(CATEGORIES))
    return EventLog.from_arrays(
        customer_id,
        pd.DatetimeIndex(own[Col.TS]).as_unit("ns").asi8,
        encode(own[Col.EVENT_TYPE], EVENT_CODE),
        encode(own[Col.CHANNEL], CHANNEL_CODE),
        encode(own[Col.MESSAGE_ID], message_code),
        own[Col.VALUE].to_numpy(dtype=np.float64),
        MESSAGES,
        category=encode(own[Col.CATEGORY], {c: i for i, c in enumerate(vocabulary)}),
        category_ids=vocabulary,
    )


def test_batch_and_single_customer_paths_agree(customers: pd.DataFrame, spec: FeatureSpec) -> None:
    rng = np.random.default_rng(11)
    events = events_frame(random_event_rows(rng, IDS[:3], 400))  # "di" has no events at all
    log = _log(events)
    table = CustomerTable.from_frame(customers, spec)
    # As-of times: random, exactly at an event, before anything, after everything.
    at_event = events[Col.TS].iloc[:6].tolist()
    as_of = [ts(float(d)) for d in rng.uniform(-100, 40, 30)] + at_event + [ts(-400), ts(90)]
    who = [IDS[int(i)] for i in rng.integers(0, 4, 30)] + events[Col.CUSTOMER_ID].iloc[:6].tolist()
    who += ["ana", "di"]
    codes = np.array([log.customer_code(c) for c in who])
    as_of_ns = pd.DatetimeIndex(as_of).as_unit("ns").asi8

    batch = compute_features(log, table, spec, codes, as_of_ns)
    batch_profile = hour_profile(log, table, codes, as_of_ns)
    batch_state = derive_journey_state(log, table, codes, as_of_ns)
    assert batch.shape == (len(who), len(spec.names))

    for i, customer_id in enumerate(who):
        one = _single_customer_log(events, customer_id)
        profile = CustomerTable.from_profile(customer_id, _profile(customers, customer_id), spec)
        query = (np.zeros(1, dtype=np.int64), as_of_ns[i : i + 1])
        single = compute_features(one, profile, spec, *query)
        np.testing.assert_array_equal(single, batch[i : i + 1])
        np.testing.assert_array_equal(hour_profile(one, profile, *query), batch_profile[i : i + 1])
        state = derive_journey_state(one, profile, *query)
        assert state.stage[0] == batch_state.stage[i]
        np.testing.assert_array_equal(state.consent[:, 0], batch_state.consent[:, i])
        assert state.cart_value[0] == batch_state.cart_value[i]


def test_query_order_does_not_matter(customers: pd.DataFrame, spec: FeatureSpec) -> None:
    rng = np.random.default_rng(5)
    log = _log(events_frame(random_event_rows(rng, IDS, 300), validate=False))
    table = CustomerTable.from_frame(customers, spec)
    codes = rng.integers(0, 4, 50)
    as_of = pd.DatetimeIndex([ts(float(d)) for d in rng.uniform(-60, 30, 50)]).as_unit("ns").asi8
    shuffle = rng.permutation(50)
    full = compute_features(log, table, spec, codes, as_of)
    np.testing.assert_array_equal(
        compute_features(log, table, spec, codes[shuffle], as_of[shuffle]), full[shuffle])


_event = st.tuples(
    st.integers(0, len(IDS) - 1),
    st.integers(-130 * 24 * 60, 20 * 24 * 60),  # minutes around T0
    st.sampled_from(EVENT_TYPES),
    st.sampled_from(CHANNELS),
    st.integers(0, len(MESSAGES) - 1),
    st.sampled_from([0.0, 9.99, 25.5, 120.0]),
    st.sampled_from(CATEGORIES),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.lists(_event, max_size=60),
    after=st.lists(_event, max_size=30),
    as_of_minutes=st.integers(-100 * 24 * 60, 10 * 24 * 60),
    query_minutes=st.lists(st.integers(-400 * 24 * 60, 0), min_size=1, max_size=4),
)
def test_features_ignore_events_at_or_after_as_of(
    customers: pd.DataFrame,
    spec: FeatureSpec,
    before: list[tuple[Any, ...]],
    after: list[tuple[Any, ...]],
    as_of_minutes: int,
    query_minutes: list[int],
) -> None:
    """Adding or removing events at or after t never changes features as of t (or earlier)."""
    cut = T0 + pd.Timedelta(minutes=as_of_minutes)

    def rows(events: list[tuple[Any, ...]], shift: bool) -> list[tuple[Any, ...]]:
        out = []
        for customer, minutes, event_type, channel, message, value, category in events:
            when = T0 + pd.Timedelta(minutes=minutes)
            if shift:  # move the event to t or later
                when = cut + pd.Timedelta(minutes=abs(minutes) % (30 * 24 * 60))
            out.append((IDS[customer], when, event_type, channel,
                        MESSAGES[message] if event_type in MESSAGE_EVENTS else None, value,
                        None, category if event_type in CATEGORY_EVENTS else None))
        return out

    past = [r for r in rows(before, shift=False) if r[1] < cut]
    future = rows(after, shift=True)
    table = CustomerTable.from_frame(customers, spec)
    queries_at = [cut] + [cut + pd.Timedelta(minutes=m) for m in query_minutes]
    codes = np.arange(len(queries_at)) % len(IDS)
    as_of = pd.DatetimeIndex(queries_at).as_unit("ns").asi8
    logs = [_log(events_frame(past, validate=False)),
            _log(events_frame(past + future, validate=False))]
    results = [
        (compute_features(log, table, spec, codes, as_of), hour_profile(log, table, codes, as_of),
         derive_journey_state(log, table, codes, as_of).stage)
        for log in logs
    ]
    for without, with_future in zip(results[0], results[1], strict=True):
        np.testing.assert_array_equal(without, with_future)


def test_memory_budgets_do_not_change_results(
    customers: pd.DataFrame, spec: FeatureSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Big inputs are processed in category blocks and row chunks; tiny budgets force those
    splits here, and the answers must not move."""
    import features.pointintime as pointintime
    import features.scan as scan_module
    from features.kernel import scan

    rng = np.random.default_rng(8)
    log = _log(events_frame(random_event_rows(rng, IDS, 500), validate=False))
    table = CustomerTable.from_frame(customers, spec)
    codes = rng.integers(0, 4, 40)
    as_of = pd.DatetimeIndex([ts(float(d)) for d in rng.uniform(-90, 30, 40)]).as_unit("ns").asi8
    whole = (compute_features(log, table, spec, codes, as_of),
             hour_profile(log, table, codes, as_of))
    monkeypatch.setattr(scan_module, "scan",
                        lambda *args, **kwargs: scan(*args, **{**kwargs, "cell_budget": 300}))
    monkeypatch.setattr(pointintime, "_ASSEMBLY_ROWS", 7)
    monkeypatch.setattr(pointintime, "_PROFILE_CHUNK", 50)
    split = (compute_features(log, table, spec, codes, as_of),
             hour_profile(log, table, codes, as_of))
    for a, b in zip(whole, split, strict=True):
        np.testing.assert_array_equal(a, b)
