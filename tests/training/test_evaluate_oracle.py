"""Oracle evaluation: exact values of every reference policy on a small seeded simulation."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from features.contract import CHANNELS, Col, Stage
from features.eventlog import EventLog, ts_to_ns
from features.simulator import Oracle, Simulation, SimulationConfig, simulate
from features.simulator.policy import STAGE_INDEX
from training.evaluation.nextbest_policy import quiet_hours_outside
from training.evaluation.oracle_values import (
    CONVERSIONS,
    METRICS,
    NET_VALUE,
    REVENUE,
    OracleValues,
    PolicyActions,
    lift_share,
)
from training.evaluation.rule_policies import JOURNEY_HOUR, channel_usage, journey_actions


@lru_cache(maxsize=1)
def _simulation() -> Simulation:
    return simulate(SimulationConfig(n_customers=300, days=21, seed=4), progress=False)


@lru_cache(maxsize=1)
def _values() -> OracleValues:
    sim = _simulation()
    states = sim.truth.decision_states.head(150)
    return OracleValues(Oracle(sim.truth, sim.journeys.catalog), states)


def _all_actions(values: OracleValues) -> list[tuple[int, int, int]]:
    catalog = values.oracle.catalog
    return [(m, int(c), h) for m in range(catalog.n_messages)
            for c in np.flatnonzero(catalog.allowed_channel[m]) for h in values.send_hours]


def _constant(values: OracleValues, m: int, c: int, h: int) -> PolicyActions:
    n = len(values)
    return PolicyActions(np.full(n, m), np.full(n, c), np.full(n, h))


@lru_cache(maxsize=1)
def _brute_force() -> dict[str, np.ndarray]:
    """Per row and metric: the sum over eligible candidates and the best net value, by
    evaluating every candidate action for every row."""
    values = _values()
    none, _ = values.row_values(PolicyActions.no_action(len(values)))
    total = {m: none[m].copy() for m in METRICS}
    count = np.ones(len(values))
    best = none[NET_VALUE].copy()
    statics = {}
    for m, c, h in _all_actions(values):
        rows, outside = values.row_values(_constant(values, m, c, h))
        eligible = ~outside
        for metric in METRICS:
            total[metric] += np.where(eligible, rows[metric], 0.0)
        count += eligible
        best = np.maximum(best, np.where(eligible, rows[NET_VALUE], -np.inf))
        statics[(m, c, h)] = rows[NET_VALUE].sum()
    return {**{m: total[m] / count for m in METRICS}, "best": best,
            "static": np.array([max(statics.values())])}


def test_a_policy_that_always_takes_the_oracles_action_captures_all_of_its_lift() -> None:
    values = _values()
    scan = values.scan()
    replay = values.value("replay", scan.oracle_actions)
    for metric in METRICS:
        assert replay.metric(metric) == pytest.approx(scan.oracle.metric(metric), rel=1e-12)
    assert lift_share(replay.net_value, scan.random.net_value, scan.oracle.net_value) == 1.0
    assert lift_share(scan.random.net_value, scan.random.net_value,
                      scan.oracle.net_value) == 0.0
    assert scan.oracle.net_value > scan.random.net_value


def test_random_oracle_and_static_rule_equal_brute_force_over_every_candidate() -> None:
    values = _values()
    scan = values.scan()
    brute = _brute_force()
    for metric in METRICS:
        assert scan.random.metric(metric) == pytest.approx(brute[metric].mean() * 1000, rel=1e-9)
    assert scan.oracle.net_value == pytest.approx(brute["best"].mean() * 1000, rel=1e-9)
    assert scan.static_rule.net_value == pytest.approx(brute["static"][0] / len(values) * 1000,
                                                       rel=1e-9)


def test_oracle_scan_agrees_with_the_simulators_own_best_action() -> None:
    values = _values()
    best = values.oracle.best_action(values.states, objective="net_value")
    assert values.scan().oracle.net_value == pytest.approx(
        best["expected_value"].mean() * 1000, rel=1e-9)


def test_actions_outside_the_candidate_set_count_as_no_action() -> None:
    values = _values()
    n = len(values)
    ineligible = ~values.eligible_[:, 0, 0]  # welcome_series by e-mail: only new customers
    assert ineligible.any()
    actions = PolicyActions(np.zeros(n, int), np.zeros(n, int), np.full(n, 3))  # 03:00 local
    result = values.value("night owl", actions)
    assert result.outside_candidates == n  # 03:00 is outside the allowed send hours anyway
    assert result.send_share == 0.0
    none = values.value("none", PolicyActions.no_action(n))
    assert result.net_value == pytest.approx(none.net_value)
    restricted, outside = values.restrict(PolicyActions(np.zeros(n, int), np.zeros(n, int),
                                                        np.full(n, 10)))
    assert np.array_equal(outside, ineligible)
    assert np.array_equal(restricted.message >= 0, ~ineligible)


def test_metrics_are_per_thousand_and_net_value_subtracts_send_costs() -> None:
    values = _values()
    m, c, h = _all_actions(values)[0]
    rows, _ = values.row_values(_constant(values, m, c, h))
    value = values.value("rule", _constant(values, m, c, h))
    assert value.conversions == pytest.approx(rows[CONVERSIONS].mean() * 1000)
    assert value.revenue - value.net_value == pytest.approx(value.send_cost)
    assert value.net_value == pytest.approx(rows[REVENUE].mean() * 1000 - value.send_cost)


def test_journeys_send_the_stage_message_on_the_most_used_eligible_channel_at_ten() -> None:
    values = _values()
    catalog = values.oracle.catalog
    usage = np.zeros((len(values), len(CHANNELS)))
    usage[:, CHANNELS.index("push")] = 5.0  # push is most used, e-mail never
    actions = journey_actions(catalog, values.rows_.stage, values.eligible_, usage)
    stage = values.rows_.stage
    welcome = catalog.message_ids.index("welcome_series")
    new = stage == STAGE_INDEX[Stage.NEW.value]
    sent = actions.message >= 0
    assert np.all(actions.message[new & sent] == welcome)
    assert np.all(actions.hour[sent] == JOURNEY_HOUR)
    push_ok = values.eligible_[np.arange(len(values)), np.maximum(actions.message, 0),
                               CHANNELS.index("push")]
    assert np.all(actions.channel[sent & push_ok] == CHANNELS.index("push"))
    customer = stage == STAGE_INDEX[Stage.CUSTOMER.value]
    assert not sent[customer].any()  # no journey for customers in the "customer" stage
    assert values.value("journeys", actions).outside_candidates == 0


def test_channel_usage_counts_engagement_strictly_before_the_as_of_time() -> None:
    events = pd.DataFrame({
        Col.CUSTOMER_ID: ["a", "a", "a", "b", "b"],
        Col.TS: pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01",
                                "2024-01-05"], utc=True),
        Col.EVENT_TYPE: ["page_view", "message_open", "page_view", "message_delivered",
                         "message_click"],
        Col.CHANNEL: ["web", "email", "web", "email", "email"],
        Col.MESSAGE_ID: [None, "m", None, "m", "m"],
        Col.VALUE: [0.0] * 5,
    })
    log = EventLog.from_frame(events, ["m"], customer_ids=["a", "b"])
    as_of = ts_to_ns(pd.Series(pd.to_datetime(["2024-01-03", "2024-01-06", "2024-01-05"],
                                              utc=True)))
    usage = channel_usage(log, np.array([0, 1, 1]), as_of)
    web, email = CHANNELS.index("web"), CHANNELS.index("email")
    assert usage[0, web] == 1 and usage[0, email] == 1  # the 01-03 view is not before 01-03
    assert usage[1, email] == 1  # deliveries are not engagement
    assert usage[2, email] == 0


@pytest.mark.parametrize(
    ("hours", "expected"),
    [(range(8, 21), ("21:00", "08:00")), ((22, 23, 0, 1), ("02:00", "22:00"))],
)
def test_quiet_hours_cover_exactly_the_hours_outside_the_send_window(
    hours: range | tuple[int, ...], expected: tuple[str, str]
) -> None:
    quiet = quiet_hours_outside(tuple(hours))
    assert quiet is not None and (quiet.start, quiet.end) == expected
    assert set(quiet.channels) == set(CHANNELS)
    assert quiet_hours_outside(range(24)) is None
    with pytest.raises(ValueError, match="contiguous"):
        quiet_hours_outside((8, 9, 14, 15))
