"""Arbitration: incremental value, "send nothing" when nothing beats it, levers, and the
explanations (alternatives, exclusions) that come with each decision."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from features.contract import CHANNELS, Channel, Stage
from models.policy import ReasonCode
from models.policy.slots import to_ns
from tests.models.policy_support import (
    MESSAGE_IDS,
    MESSAGES,
    TableConversion,
    arbitration,
    make_engine,
    make_models,
    make_request,
)

NOW = datetime(2024, 5, 6, 10, 15, tzinfo=UTC)


def test_negative_responders_are_left_alone() -> None:
    engine = make_engine(models=make_models(TableConversion(base=0.1, lift=-0.02)))
    decision = engine.decide(make_request(now=NOW, top_k=5))
    assert decision.action is None
    assert decision.reasons == (ReasonCode.BELOW_NO_ACTION,)
    assert decision.expected_value == 0.0 and decision.propensity == 1.0
    assert decision.scores.conversion_without_action == pytest.approx(0.1)
    assert len(decision.alternatives) == 5
    assert all(a.reason is ReasonCode.BELOW_NO_ACTION for a in decision.alternatives)
    assert all(a.expected_value < 0 and a.uplift is not None and a.uplift < 0
               for a in decision.alternatives)


def test_uplift_that_does_not_pay_for_the_send_loses_to_no_action() -> None:
    # +0.0001 conversion x value 45 is worth less than a cent: only free channels could pay,
    # and those are excluded here
    engine = make_engine(models=make_models(TableConversion(base=0.1, lift=0.0001)))
    decision = engine.decide(
        make_request(now=NOW, allowed_channels=(Channel.EMAIL, Channel.SMS))
    )
    assert decision.action is None
    assert decision.reasons == (ReasonCode.BELOW_NO_ACTION,)


def test_sure_things_are_left_alone_in_incremental_mode_but_not_in_absolute_mode() -> None:
    sure_thing = make_models(TableConversion(base=0.9, lift=0.0))
    incremental = make_engine(models=sure_thing).decide(make_request(now=NOW))
    assert incremental.action is None
    absolute = make_engine(models=sure_thing, config=arbitration(value_mode="absolute"))
    decision = absolute.decide(make_request(now=NOW))
    assert decision.action is not None
    assert decision.expected_value > 30  # 0.9 x 45 - cost: the response, not the effect
    assert decision.scores.uplift == pytest.approx(0.0)


def test_incremental_mode_picks_the_persuadable_offer_absolute_mode_the_big_ticket() -> None:
    # cross_sell (value 35) barely moves conversion; loyalty (value 25) moves it a lot
    lift = np.zeros(len(MESSAGE_IDS))
    lift[MESSAGE_IDS.index("cross_sell_pick")] = 0.001
    lift[MESSAGE_IDS.index("loyalty_points")] = 0.04
    models = make_models(TableConversion(base=0.5, lift=lift))
    request = make_request(now=NOW, candidate_message_ids=("cross_sell_pick", "loyalty_points"))
    incremental = make_engine(models=models).decide(request)
    absolute = make_engine(models=models, config=arbitration(value_mode="absolute")).decide(
        request
    )
    assert incremental.action is not None and absolute.action is not None
    assert incremental.action.message_id == "loyalty_points"
    assert absolute.action.message_id == "cross_sell_pick"


def test_churn_lever_favours_retention_for_customers_at_risk() -> None:
    lift = np.full(len(MESSAGE_IDS), 0.02)
    lift[MESSAGE_IDS.index("retention_discount")] = 0.012  # value 45 -> 0.54 before the lever
    lift[MESSAGE_IDS.index("loyalty_points")] = 0.03  # value 25 -> 0.75
    request = make_request(now=NOW, stage=Stage.LAPSING,
                           candidate_message_ids=("retention_discount", "loyalty_points"))
    calm = make_engine(models=make_models(TableConversion(lift=lift), churn=0.05))
    at_risk = make_engine(models=make_models(TableConversion(lift=lift), churn=0.9))
    no_lever = make_engine(models=make_models(TableConversion(lift=lift), churn=0.9),
                           config=arbitration(churn_lever=None))
    assert calm.decide(request).action.message_id == "loyalty_points"  # type: ignore[union-attr]
    chosen = at_risk.decide(request)
    assert chosen.action is not None and chosen.action.message_id == "retention_discount"
    assert chosen.scores.churn_risk == pytest.approx(0.9)
    assert no_lever.decide(request).action.message_id == "loyalty_points"  # type: ignore[union-attr]


def test_weights_and_margin_are_levers() -> None:
    models = make_models(TableConversion(base=0.05, lift=0.02))
    request = make_request(now=NOW)
    default = make_engine(models=models).decide(request)
    assert default.action is not None and default.action.message_id == "retention_discount"
    boosted = make_engine(models=models, config=arbitration(message_weights={
        "loyalty_points": 3.0
    })).decide(request)
    assert boosted.action is not None and boosted.action.message_id == "loyalty_points"
    demanding = make_engine(models=models, config=arbitration(no_action_margin=5.0))
    decision = demanding.decide(request)
    assert decision.action is None and decision.reasons == (ReasonCode.BELOW_NO_ACTION,)


def test_expected_value_formula() -> None:
    models = make_models(TableConversion(base=0.05, lift=0.03), churn=0.4)
    decision = make_engine(models=models).decide(
        make_request(now=NOW, candidate_message_ids=("retention_discount",),
                     allowed_channels=(Channel.SMS,))
    )
    assert decision.action is not None
    # weight 1 x (1 + 1.0 x churn 0.4) x uplift 0.03 x value 45 - sms cost 0.08
    assert decision.expected_value == pytest.approx(1.4 * 0.03 * 45 - 0.08)
    assert decision.scores.conversion_with_action == pytest.approx(0.08)
    assert decision.scores.conversion_without_action == pytest.approx(0.05)
    assert decision.scores.channel_preference == pytest.approx(
        np.linspace(0.5, 0.1, len(CHANNELS))[CHANNELS.index(Channel.SMS)]
    )


def test_every_candidate_is_scored_or_excluded_with_a_reason() -> None:
    engine = make_engine()
    decision = engine.decide(make_request(now=NOW, stage=Stage.CUSTOMER, top_k=100))
    n_slots = 1 + engine.arbitration.send_time.horizon_hours
    excluded: dict[tuple[str, str], int] = {}
    for exclusion in decision.exclusions:
        assert isinstance(exclusion.reason, ReasonCode)
        assert exclusion.slots > 0
        key = (exclusion.message_id, exclusion.channel)
        excluded[key] = excluded.get(key, 0) + exclusion.slots
    pairs = [(m[0], c) for m in MESSAGES for c in m[2].split("|")]
    for pair in pairs:
        scored = excluded.get(pair, 0)
        assert scored in (n_slots, n_slots - engine.arbitration.send_time.slots_per_pair)
    rows = [(e.message_id, e.channel, e.reason) for e in decision.exclusions]
    assert len(rows) == len(set(rows))  # aggregated: one row per (message, channel, reason)
    assert decision.n_candidates >= 3 * sum(1 for p in pairs if excluded[p] < n_slots)


def test_alternatives_are_sorted_and_say_why_they_lost() -> None:
    engine = make_engine()
    decision = engine.decide(make_request(now=NOW, top_k=100))
    assert decision.action is not None
    values = [a.expected_value for a in decision.alternatives]
    assert values == sorted(values, reverse=True)
    chosen = (decision.action.message_id, decision.action.channel)
    assert all((a.message_id, a.channel) != chosen for a in decision.alternatives)
    no_action = [a for a in decision.alternatives if a.message_id is None]
    assert len(no_action) == 1 and no_action[0].reason is ReasonCode.LOWER_EXPECTED_VALUE
    for alternative in decision.alternatives:
        assert alternative.expected_value <= decision.expected_value
        expected = (ReasonCode.LOWER_EXPECTED_VALUE if alternative.expected_value > 0
                    or alternative.message_id is None else ReasonCode.BELOW_NO_ACTION)
        assert alternative.reason is expected
        if alternative.send_at is not None:
            assert to_ns(alternative.send_at) >= to_ns(NOW)
    top3 = engine.decide(make_request(now=NOW, top_k=3))
    assert top3.alternatives == decision.alternatives[:3]
    assert engine.decide(make_request(now=NOW, top_k=0)).alternatives == ()
