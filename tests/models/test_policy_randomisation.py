"""Determinism, exploration with exact propensities, control groups, and replay from the log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from features.contract import Col, EventType
from models.policy import Assignment, ReasonCode, request_from_log_record
from models.policy.randomisation import assign, epsilon_greedy_probabilities
from tests.models.policy_support import (
    MESSAGE_IDS,
    arbitration,
    history,
    make_engine,
    make_request,
)

NOW = datetime(2024, 5, 6, 10, 15, tzinfo=UTC)


def _requests(n: int, **options: object) -> list:
    return [
        make_request(f"cust-{i}", NOW + timedelta(minutes=13 * i), **options) for i in range(n)
    ]


def test_same_state_and_seed_give_the_same_decision() -> None:
    config = arbitration(exploration={"epsilon": 0.2}, control_groups={"global_share": 0.1})
    first = [d.to_log_record() for d in make_engine(config=config, seed=11).decide_many(
        _requests(80)
    )]
    again = [d.to_log_record() for d in make_engine(config=config, seed=11).decide_many(
        _requests(80)
    )]
    assert first == again
    other_seed = make_engine(config=config, seed=12).decide_many(_requests(80))
    assert [r[Col.MESSAGE_ID] for r in first] != [d.action and d.action.message_id
                                                 for d in other_seed]


def test_exploration_propensities_are_exact_and_sum_to_one() -> None:
    epsilon = 0.3
    engine = make_engine(config=arbitration(exploration={"epsilon": epsilon}))
    greedy_engine = make_engine()
    requests = _requests(400, top_k=100)
    explored = 0
    for decision, greedy in zip(engine.decide_many(requests),
                                greedy_engine.decide_many(requests), strict=True):
        k = len(decision.alternatives) + 1  # every option is either chosen or an alternative
        probabilities = epsilon_greedy_probabilities(k, 0, epsilon)
        assert probabilities.sum() == pytest.approx(1.0)
        same = (decision.action == greedy.action)
        expected = 1 - epsilon + epsilon / k if same else epsilon / k
        assert decision.propensity == pytest.approx(expected)
        explored += decision.explored
        if not same:
            assert ReasonCode.EXPLORATION in decision.reasons
            lost = [a for a in decision.alternatives if a.reason is ReasonCode.EXPLORATION]
            assert len(lost) == 1  # the greedy option lost to the draw
    assert explored / 400 == pytest.approx(epsilon, abs=0.07)


def test_exploration_frequencies_match_the_logged_propensities() -> None:
    epsilon = 0.5
    engine = make_engine(config=arbitration(exploration={"epsilon": epsilon}))
    # one customer state, many independent draws (the draw hashes customer and time)
    n = 1500
    decisions = engine.decide_many(
        [make_request("same", NOW + timedelta(seconds=i), top_k=100) for i in range(n)]
    )
    k = len(decisions[0].alternatives) + 1
    chosen = [(d.action.message_id, d.action.channel) if d.action else None for d in decisions]
    options, counts = np.unique(np.array([str(c) for c in chosen]), return_counts=True)
    logged = {str(c): d.propensity for c, d in zip(chosen, decisions, strict=True)}
    assert len(options) == k  # every option, no_action included, gets explored
    for option, count in zip(options, counts, strict=True):
        p = logged[option]
        assert abs(count / n - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-3


def test_global_control_share_is_as_configured_and_stable() -> None:
    config = arbitration(control_groups={"global_share": 0.1, "salt": "s1"})
    groups = config.control_groups
    population = [f"customer-{i}" for i in range(20_000)]
    in_control = [assign(c, None, groups) is Assignment.GLOBAL_CONTROL for c in population]
    assert np.mean(in_control) == pytest.approx(0.1, abs=0.006)  # 3 standard errors

    engine = make_engine(config=config)
    decisions = engine.decide_many(_requests(400))
    control = {d.customer_id for d in decisions if d.assignment is Assignment.GLOBAL_CONTROL}
    assert 20 <= len(control) <= 65
    later = make_engine(config=config, seed=99).decide_many(
        [make_request(f"cust-{i}", NOW + timedelta(days=3)) for i in range(400)]
    )
    assert {d.customer_id for d in later if d.assignment is Assignment.GLOBAL_CONTROL} == control
    for decision in decisions:
        if decision.customer_id in control:
            assert decision.action is None
            assert decision.reasons == (ReasonCode.GLOBAL_CONTROL,)
            assert decision.propensity == 1.0 and not decision.explored
            assert decision.counterfactual is not None  # what the policy would have sent
            assert decision.alternatives[0].reason is ReasonCode.GLOBAL_CONTROL
    reshuffled = {f"cust-{i}" for i in range(400)
                  if assign(f"cust-{i}", None, config.control_groups.model_copy(
                      update={"salt": "s2"})) is Assignment.GLOBAL_CONTROL}
    assert reshuffled != control


def test_campaign_holdouts_are_per_campaign() -> None:
    config = arbitration(control_groups={
        "global_share": 0.05, "campaign_holdouts": {"spring": 0.2}
    })
    population = [f"customer-{i}" for i in range(20_000)]
    arms = [assign(c, "spring", config.control_groups) for c in population]
    treatable = [a for a in arms if a is not Assignment.GLOBAL_CONTROL]
    share = np.mean([a is Assignment.CAMPAIGN_HOLDOUT for a in treatable])
    assert share == pytest.approx(0.2, abs=0.01)

    engine = make_engine(config=config)
    spring = engine.decide_many(_requests(400, campaign="spring"))
    summer = engine.decide_many(_requests(400, campaign="summer"))
    none = engine.decide_many(_requests(400))
    holdout = [d for d in spring if d.assignment is Assignment.CAMPAIGN_HOLDOUT]
    assert len(holdout) > 40
    assert all(d.action is None and d.reasons == (ReasonCode.CAMPAIGN_HOLDOUT,)
               for d in holdout)
    assert not any(d.assignment is Assignment.CAMPAIGN_HOLDOUT for d in summer + none)
    assert {d.customer_id for d in spring if d.assignment is Assignment.GLOBAL_CONTROL} == {
        d.customer_id for d in none if d.assignment is Assignment.GLOBAL_CONTROL
    }


def test_log_record_is_json_and_replays_to_the_same_decision() -> None:
    engine = make_engine(config=arbitration(exploration={"epsilon": 0.4}))
    log = history("c-7", [
        (NOW - timedelta(days=2), EventType.MESSAGE_DELIVERED, "email", "loyalty_points"),
        (NOW - timedelta(days=1), EventType.MESSAGE_OPEN, "email", "loyalty_points"),
        (NOW - timedelta(hours=5), EventType.PAGE_VIEW, "web", None),
        (NOW - timedelta(hours=3), EventType.PURCHASE, "web", None),
    ])
    for i in range(30):
        request = make_request("c-7", NOW + timedelta(minutes=37 * i), log=log,
                               campaign="spring" if i % 2 else None, cold_start=i == 3)
        decision = engine.decide(request)
        record = json.loads(json.dumps(decision.to_log_record(), allow_nan=False))
        assert record["features"][0] == pytest.approx(0.05)
        assert len(record["history"]["ts_ns"]) == 3  # page views cannot change a decision
        replayed = engine.decide(request_from_log_record(record, MESSAGE_IDS))
        assert replayed.to_log_record() == decision.to_log_record()
        assert replayed.propensity == record[Col.PROPENSITY]
        if i == 3:
            assert ReasonCode.COLD_START in decision.reasons and record["cold_start"]
