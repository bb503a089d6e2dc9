"""Contact rules a customer would notice: opt-outs, caps, cooldowns, suppressions, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from features.contract import CHANNELS, Channel, EventType, Stage
from models.policy import Decision, ReasonCode, with_send
from models.policy.rules import rolling_cap_reached
from models.policy.slots import to_ns
from tests.models.policy_support import (
    MESSAGE_IDS,
    TableConversion,
    arbitration,
    contact_policy,
    history,
    make_engine,
    make_models,
    make_request,
)

START = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
SMS_LOVER = TableConversion(base=0.02, lift=0.03, channel_lift=[0.0, 0.2, 0.0, 0.0, 0.0])
QUIET_CHANNELS = {Channel.EMAIL, Channel.SMS, Channel.PUSH}


def _sends(decisions: list[Decision]) -> list[Decision]:
    return [d for d in decisions if d.action is not None]


def test_sms_consent_withdrawn_means_no_sms_ever() -> None:
    engine = make_engine(models=make_models(SMS_LOVER), config=arbitration(
        exploration={"epsilon": 0.3}
    ))
    consents = dict.fromkeys(CHANNELS, True) | {Channel.SMS: False}
    decisions = [
        engine.decide(make_request(f"c-{i}", START + timedelta(hours=7 * i), consents=consents))
        for i in range(60)
    ]
    assert all(d.action is None or d.action.channel != Channel.SMS for d in decisions)
    assert all(a.channel != Channel.SMS for d in decisions for a in d.alternatives)
    assert any(d.action is not None for d in decisions)
    sms_exclusions = {e.reason for d in decisions for e in d.exclusions if e.channel == "sms"}
    assert ReasonCode.NO_CONSENT in sms_exclusions


def test_sms_unsubscribe_event_wins_over_a_stale_consent_flag() -> None:
    engine = make_engine(models=make_models(SMS_LOVER), config=arbitration(
        exploration={"epsilon": 0.3}
    ))
    unsubscribed = history("c-1", [(START - timedelta(days=3), EventType.UNSUBSCRIBE,
                                    Channel.SMS, None)])
    log = unsubscribed
    decisions = []
    for i in range(40):
        decision = engine.decide(make_request("c-1", START + timedelta(hours=5 * i), log=log))
        decisions.append(decision)
        log = with_send(log, decision, MESSAGE_IDS)
    assert all(d.action is None or d.action.channel != Channel.SMS for d in decisions)
    assert len(_sends(decisions)) > 5  # other channels still get messages
    first = decisions[0]
    sms = {e.reason for e in first.exclusions if e.channel == Channel.SMS}
    assert ReasonCode.UNSUBSCRIBED in sms
    assert sms <= {ReasonCode.UNSUBSCRIBED, ReasonCode.STAGE_NOT_ELIGIBLE, ReasonCode.REQUIRES_CART}


def test_unsubscribe_without_channel_silences_every_channel() -> None:
    engine = make_engine()
    log = history("c-1", [(START - timedelta(hours=1), EventType.UNSUBSCRIBE, None, None)])
    decision = engine.decide(make_request("c-1", START, log=log))
    assert decision.action is None
    assert decision.reasons == (ReasonCode.NO_CANDIDATES,)
    assert {e.reason for e in decision.exclusions} <= {
        ReasonCode.UNSUBSCRIBED, ReasonCode.STAGE_NOT_ELIGIBLE, ReasonCode.REQUIRES_CART
    }


def _max_in_window(times: list[datetime], window: timedelta) -> int:
    ordered = sorted(times)
    return max(
        (sum(1 for u in ordered if t - window < u <= t) for t in ordered), default=0
    )


@pytest.mark.parametrize("epsilon", [0.0, 0.25])
def test_caps_and_cooldowns_hold_over_a_sequence_of_decisions(epsilon: float) -> None:
    keen = TableConversion(base=0.02, lift=0.05, channel_lift=[0.01, 0.02, 0.0, 0.0, -0.04])
    engine = make_engine(
        models=make_models(keen),
        config=arbitration(exploration={"epsilon": epsilon}),
    )
    policy = contact_policy()
    log = history("c-9")
    decisions = []
    for step in range(48):  # 12 days, a decision every 6 hours
        now = START + timedelta(hours=6 * step)
        decision = engine.decide(make_request("c-9", now, log=log))
        decisions.append(decision)
        log = with_send(log, decision, MESSAGE_IDS)
    sends = [d.action for d in _sends(decisions) if d.action is not None]
    assert len(sends) >= 10
    for channel, rule in policy.frequency_caps.per_channel.items():
        times = [a.send_at for a in sends if a.channel == channel]
        assert _max_in_window(times, timedelta(hours=rule.window_hours)) <= rule.max_sends
    for rule in policy.frequency_caps.all_channels:
        counted = [a.send_at for a in sends if rule.channels is None or a.channel in rule.channels]
        assert _max_in_window(counted, timedelta(hours=rule.window_hours)) <= rule.max_sends
    cooldown = {m: timedelta(hours=h[6]) for m, *h in [(m[0], *m) for m in _catalog_rows()]}
    for message_id in MESSAGE_IDS:
        times = sorted(a.send_at for a in sends if a.message_id == message_id)
        assert all(b - a >= cooldown[message_id] for a, b in zip(times, times[1:], strict=False))
    reasons = {e.reason for d in decisions for e in d.exclusions}
    assert {ReasonCode.CAP_CHANNEL, ReasonCode.COOLDOWN} <= reasons


def _catalog_rows() -> tuple[tuple[object, ...], ...]:
    from tests.models.policy_support import MESSAGES

    return MESSAGES


def test_rolling_cap_matches_brute_force_on_integer_times() -> None:
    rng = np.random.default_rng(3)
    window = 10
    for _ in range(200):
        sends = np.sort(rng.integers(0, 60, size=rng.integers(0, 8)))
        candidates = np.arange(0, 60)
        max_sends = int(rng.integers(0, 4))
        fast = rolling_cap_reached(sends, candidates, window, max_sends)
        for t, reached in zip(candidates.tolist(), fast.tolist(), strict=True):
            # every window (x, x + window] that contains t, on the integer grid
            points = np.append(sends, t)
            starts = np.arange(t - window, t)[:, None]
            worst = int(((points > starts) & (points <= starts + window)).sum(axis=1).max())
            assert reached == (worst > max_sends), (sends, t, max_sends)


def test_non_response_rests_the_channel_until_engagement() -> None:
    engine = make_engine()
    sent = [
        (START - timedelta(days=12 - 2 * i), EventType.MESSAGE_DELIVERED, Channel.EMAIL,
         "loyalty_points")
        for i in range(5)
    ]
    silent = engine.decide(make_request("c-1", START, log=history("c-1", sent)))
    email = {e.reason for e in silent.exclusions if e.channel == Channel.EMAIL}
    assert ReasonCode.SUPPRESSED_NON_RESPONSE in email
    assert silent.action is None or silent.action.channel != Channel.EMAIL

    opened = [*sent, (START - timedelta(days=5), EventType.MESSAGE_OPEN, Channel.EMAIL,
                      "loyalty_points")]
    engaged = engine.decide(make_request("c-1", START, log=history("c-1", opened)))
    email = {e.reason for e in engaged.exclusions if e.channel == Channel.EMAIL}
    assert ReasonCode.SUPPRESSED_NON_RESPONSE not in email


def test_purchase_suppresses_all_but_exempt_objectives_for_the_configured_hours() -> None:
    engine = make_engine(config=arbitration(send_time={"horizon_hours": 72}))
    purchase = START - timedelta(hours=10)
    log = history("c-1", [(purchase, EventType.PURCHASE, Channel.WEB, None)])
    decision = engine.decide(make_request("c-1", START, log=log))
    assert decision.action is not None
    suppressed = {e.message_id for e in decision.exclusions
                  if e.reason is ReasonCode.SUPPRESSED_AFTER_CONVERSION}
    assert "loyalty_points" in suppressed and "retention_discount" in suppressed
    assert "cross_sell_pick" not in suppressed  # exempt objective
    until = purchase + timedelta(hours=48)
    if decision.action.message_id not in {"cross_sell_pick", "replenish_nudge"}:
        assert decision.action.send_at >= until


TIMEZONES_AND_DAYS = [
    ("America/New_York", datetime(2024, 3, 9, 12, 0, tzinfo=UTC)),  # spring forward 03-10
    ("Europe/Paris", datetime(2024, 10, 26, 15, 0, tzinfo=UTC)),  # fall back 10-27
    ("Europe/Paris", datetime(2024, 3, 30, 16, 0, tzinfo=UTC)),  # spring forward 03-31
    ("Asia/Kolkata", datetime(2024, 5, 6, 14, 0, tzinfo=UTC)),  # +05:30
    ("Australia/Lord_Howe", datetime(2024, 4, 6, 10, 0, tzinfo=UTC)),  # 30-minute DST change
    ("Pacific/Chatham", datetime(2024, 5, 6, 6, 0, tzinfo=UTC)),  # +12:45
]


def _in_quiet_hours(moment: datetime, timezone: str) -> bool:
    local = moment.astimezone(ZoneInfo(timezone))
    minutes = local.hour * 60 + local.minute
    return minutes >= 21 * 60 or minutes < 8 * 60


@pytest.mark.parametrize(("timezone", "start"), TIMEZONES_AND_DAYS)
def test_no_send_inside_quiet_hours_in_the_customer_timezone(
    timezone: str, start: datetime
) -> None:
    # the send-time model loves 22:00 and 23:00 local: the rule must win over it
    engine = make_engine(config=arbitration(exploration={"epsilon": 0.3}))
    shifted = 0
    for step in range(24):
        now = start + timedelta(minutes=97 * step)
        decision = engine.decide(
            make_request(f"q-{step}", now, timezone=timezone, top_k=20,
                         allowed_channels=(Channel.EMAIL, Channel.SMS, Channel.PUSH))
        )
        options = [decision.action] if decision.action else []
        for option in (*options, *decision.alternatives):
            if option is not None and option.send_at is not None:
                assert not _in_quiet_hours(option.send_at, timezone), (now, option)
                assert option.send_at >= now
        if decision.action is not None:
            local = decision.action.send_at.astimezone(ZoneInfo(timezone))
            assert decision.action.send_at_local == local.isoformat(timespec="seconds")
            if ReasonCode.QUIET_HOURS_SHIFTED in decision.reasons:
                shifted += 1
                assert (local.hour, local.minute) == (8, 0)
    assert shifted > 0


def test_in_app_and_web_are_not_bound_by_quiet_hours() -> None:
    engine = make_engine()
    now = datetime(2024, 5, 6, 19, 30, tzinfo=UTC)  # 21:30 in Paris
    decision = engine.decide(make_request("c-1", now, allowed_channels=(Channel.IN_APP,)))
    assert decision.action is not None and decision.action.channel == Channel.IN_APP
    # the send-time model's favourite hour, 22:00, stays available for in-app messages
    assert _in_quiet_hours(decision.action.send_at, "Europe/Paris")


def test_drop_rule_excludes_quiet_slots_with_their_reason() -> None:
    policy = contact_policy(quiet_hours={"start": "21:00", "end": "08:00", "rule": "drop"})
    engine = make_engine(policy=policy)
    now = datetime(2024, 5, 6, 20, 0, tzinfo=UTC)  # 22:00 in Paris
    decision = engine.decide(make_request("c-1", now, allowed_channels=(Channel.EMAIL,)))
    assert decision.action is not None
    assert not _in_quiet_hours(decision.action.send_at, "Europe/Paris")
    assert ReasonCode.QUIET_HOURS_SHIFTED not in decision.reasons
    assert ReasonCode.QUIET_HOURS in {e.reason for e in decision.exclusions}


def test_stage_cart_channel_and_message_filters_carry_their_reasons() -> None:
    engine = make_engine()
    decision = engine.decide(
        make_request("c-1", START, stage=Stage.CARTED, allowed_channels=(Channel.EMAIL,),
                     candidate_message_ids=("cart_reminder", "retention_discount"), top_k=10)
    )
    by_pair = {(e.message_id, e.channel): e.reason for e in decision.exclusions}
    assert by_pair[("cart_reminder", Channel.EMAIL)] is ReasonCode.REQUIRES_CART
    assert by_pair[("cart_reminder", Channel.SMS)] is ReasonCode.CHANNEL_NOT_ALLOWED
    assert by_pair[("loyalty_points", Channel.EMAIL)] is ReasonCode.MESSAGE_NOT_REQUESTED
    assert decision.action is not None
    assert decision.action.message_id == "retention_discount"
    with_cart = engine.decide(
        make_request("c-1", START, stage=Stage.CARTED, has_open_cart=True,
                     allowed_channels=(Channel.EMAIL,))
    )
    assert with_cart.action is not None and with_cart.action.message_id == "cart_reminder"
    new = engine.decide(make_request("c-1", START, stage=Stage.NEW))
    by_pair = {(e.message_id, e.channel): e.reason for e in new.exclusions}
    assert by_pair[("loyalty_points", Channel.EMAIL)] is ReasonCode.STAGE_NOT_ELIGIBLE


def test_scheduled_future_sends_count_against_caps() -> None:
    engine = make_engine()
    tomorrow = START + timedelta(hours=30)
    log = history("c-1", [(tomorrow, EventType.MESSAGE_DELIVERED, Channel.SMS, "win_back_offer")])
    decision = engine.decide(make_request("c-1", START, log=log, top_k=50))
    assert decision.action is None or decision.action.channel != Channel.SMS
    sms = {e.reason for e in decision.exclusions if e.channel == Channel.SMS}
    assert ReasonCode.CAP_CHANNEL in sms
    assert to_ns(tomorrow) > to_ns(START)
