"""Outcome attribution: what followed each decision within its window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import CHANNELS, Col, EventType
from features.io import DataValidationError
from features.outcomes import OutcomeCol, attribute_outcomes
from tests.features.builders import (
    MESSAGES,
    decisions_frame,
    events_frame,
    random_event_rows,
    ts,
)

E = EventType
T = ts(0)
H = pd.Timedelta(hours=1)


def test_purchases_count_only_inside_the_half_open_window() -> None:
    decisions = decisions_frame([("d1", "a", T, "welcome", "email", T),
                                 ("d2", "b", T, None, None, None)])
    events = events_frame([
        ("a", T - pd.Timedelta(seconds=1), E.PURCHASE, "web", None, 1.0),  # before: no
        ("a", T, E.PURCHASE, "web", None, 10.0),
        ("a", T + 167 * H, E.PURCHASE, "web", None, 5.25),
        ("a", T + 168 * H, E.PURCHASE, "web", None, 100.0),  # window end: no
        ("b", T + 169 * H, E.PURCHASE, "web", None, 7.0),
    ])
    out = attribute_outcomes(decisions, events)
    assert out[Col.DECISION_ID].tolist() == ["d1", "d2"]
    assert out[OutcomeCol.CONVERTED].tolist() == [True, False]
    assert out[OutcomeCol.REVENUE].tolist() == [15.25, 0.0]
    wider = attribute_outcomes(decisions, events, window_hours=200)
    assert wider[OutcomeCol.REVENUE].tolist() == [115.25, 7.0]


def test_responses_go_to_their_own_decision() -> None:
    second = T + 48 * H
    decisions = decisions_frame([
        ("d1", "a", T, "welcome", "email", T + H),
        ("d2", "a", second, "welcome", "email", second),
        ("d3", "a", T, "winback", "sms", T),
        ("d4", "a", T, None, None, None),
    ])
    events = events_frame([
        ("a", T + 2 * H, E.MESSAGE_DELIVERED, "email", "welcome", 0, "d1"),
        ("a", T + 30 * H, E.MESSAGE_OPEN, "email", "welcome", 0),  # untagged: latest send, d1
        ("a", second + H, E.MESSAGE_DELIVERED, "email", "welcome", 0),  # d2
        ("a", second + 2 * H, E.MESSAGE_CLICK, "email", "welcome", 0),  # d2
        ("a", T + H, E.MESSAGE_OPEN, "sms", "welcome", 0),  # no decision sent welcome by sms
        ("a", T + 200 * H, E.MESSAGE_OPEN, "sms", "winback", 0, "d3"),  # tagged, too late
        ("a", T + 3 * H, E.UNSUBSCRIBE, "sms", None, 0),
    ])
    out = attribute_outcomes(decisions, events).set_index(Col.DECISION_ID)
    flags = out[[OutcomeCol.DELIVERED, OutcomeCol.OPENED, OutcomeCol.CLICKED]]
    assert flags.loc["d1"].tolist() == [True, True, False]
    assert flags.loc["d2"].tolist() == [True, False, True]
    assert flags.loc["d3"].tolist() == [False, False, False]
    assert flags.loc["d4"].tolist() == [False, False, False]
    assert out[OutcomeCol.UNSUBSCRIBED].tolist() == [False, False, True, False]
    assert out[OutcomeCol.UNSUBSCRIBED_ANY].tolist() == [True, False, True, True]


def test_an_untagged_response_before_the_send_is_not_attributed() -> None:
    decisions = decisions_frame([("d1", "a", T, "welcome", "push", T + 10 * H)])
    events = events_frame([("a", T + 5 * H, E.MESSAGE_OPEN, "push", "welcome", 0)])
    assert not attribute_outcomes(decisions, events)[OutcomeCol.OPENED].iloc[0]


def test_matches_a_direct_count_on_random_logs() -> None:
    rng = np.random.default_rng(4)
    customers = [f"c{i}" for i in range(12)]
    events = events_frame(random_event_rows(rng, customers, 1500))
    rows = []
    for i in range(150):
        when = ts(float(rng.uniform(-60, 25)))
        send = rng.random() < 0.8
        rows.append((f"d{i}", customers[int(rng.integers(12))], when,
                     MESSAGES[int(rng.integers(3))] if send else None,
                     CHANNELS[int(rng.integers(5))] if send else None, when if send else None))
    decisions = decisions_frame(rows)
    out = attribute_outcomes(decisions, events, window_hours=72)
    for i, decision in decisions.iterrows():
        own = events[(events[Col.CUSTOMER_ID] == decision[Col.CUSTOMER_ID])
                     & (events[Col.TS] >= decision[Col.TS])
                     & (events[Col.TS] < decision[Col.TS] + 72 * H)]
        purchases = own[own[Col.EVENT_TYPE] == E.PURCHASE]
        unsubscribes = own[own[Col.EVENT_TYPE] == E.UNSUBSCRIBE]
        assert out.loc[i, OutcomeCol.CONVERTED] == (len(purchases) > 0)
        assert out.loc[i, OutcomeCol.REVENUE] == pytest.approx(purchases[Col.VALUE].sum())
        assert out.loc[i, OutcomeCol.UNSUBSCRIBED] == bool(
            (unsubscribes[Col.CHANNEL] == decision[Col.CHANNEL]).any())
        assert out.loc[i, OutcomeCol.UNSUBSCRIBED_ANY] == (len(unsubscribes) > 0)


def test_bad_input_is_named() -> None:
    decisions = decisions_frame([("d1", "a", T, None, None, None)])
    with pytest.raises(DataValidationError, match="decisions, column 'send_at'"):
        attribute_outcomes(decisions.drop(columns=[Col.SEND_AT]), events_frame([]))
    twice = pd.concat([decisions, decisions], ignore_index=True)
    with pytest.raises(DataValidationError, match="row 2, column 'decision_id'"):
        attribute_outcomes(twice, events_frame([]))
    with pytest.raises(ValueError, match="window_hours"):
        attribute_outcomes(decisions, events_frame([]), window_hours=0)
