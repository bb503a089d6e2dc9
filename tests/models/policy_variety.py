"""A seeded, varied population of decision requests and engine set-ups for equivalence tests:
histories with sends (past and scheduled), opens, purchases and unsubscribes, every stage, partial
consents and channel / message restrictions, campaigns with holdouts, cold starts, timezones
across DST changes, exploration and a global control group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from features.contract import CHANNELS, EventType, Stage
from features.eventlog import CHANNEL_CODE, EVENT_CODE, EventLog
from models.policy import DecisionEngine, DecisionRequest
from models.policy.slots import to_ns
from tests.models.policy_support import (
    MESSAGE_IDS,
    N_FEATURES,
    TableConversion,
    arbitration,
    contact_policy,
    make_catalog,
    make_models,
)

TIMEZONES = ("Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "UTC",
             "America/Los_Angeles", "Asia/Tokyo")
#: Request times near DST changes (Europe, US) and in ordinary weeks.
STARTS = (
    datetime(2024, 3, 30, 12, tzinfo=UTC), datetime(2024, 3, 9, 18, tzinfo=UTC),
    datetime(2024, 5, 6, 10, 15, tzinfo=UTC), datetime(2024, 10, 26, 20, tzinfo=UTC),
)
KINDS = (EventType.MESSAGE_DELIVERED, EventType.MESSAGE_OPEN, EventType.MESSAGE_CLICK,
         EventType.PURCHASE, EventType.PAGE_VIEW, EventType.UNSUBSCRIBE)


def varied_engines(seed: int = 11) -> list[DecisionEngine]:
    """Engines over the shipped contact policy (quiet hours shift), a drop-rule variant with a
    closed channel, and a catalog where every message fits every channel and stage."""
    explore = arbitration(
        exploration={"epsilon": 0.3},
        control_groups={"global_share": 0.15, "salt": "variety",
                         "campaign_holdouts": {"spring": 0.3}, "default_campaign_holdout": 0.1},
    )
    drop = contact_policy(
        quiet_hours={"start": "22:00", "end": "07:30", "rule": "drop",
                     "channels": ["email", "sms", "push", "web"]},
        frequency_caps={"per_channel": {"sms": {"max_sends": 0, "window_hours": 24},
                                        "email": {"max_sends": 2, "window_hours": 72}},
                        "all_channels": [{"max_sends": 3, "window_hours": 48}]},
    )
    models = make_models(TableConversion(
        base_from_features=True,
        lift=np.linspace(-0.01, 0.03, len(MESSAGE_IDS)).tolist(),
        hour_lift=np.linspace(0.0, 0.004, 24).tolist(),
    ))
    return [
        DecisionEngine(make_catalog(), contact_policy(), explore, models, seed=seed,
                       deterministic_ids=True),
        DecisionEngine(make_catalog(), drop, explore, models, seed=seed + 1,
                       deterministic_ids=True),
        DecisionEngine(make_catalog(every_channel=True, every_stage=True), contact_policy(),
                       arbitration(send_time={"horizon_hours": 30, "slots_per_pair": 2,
                                              "include_immediate": True},
                                   exploration={"epsilon": 0.1}),
                       models, seed=seed + 2, deterministic_ids=True),
    ]


def _history(customer_id: str, now: datetime, rng: np.random.Generator) -> EventLog | None:
    n = int(rng.integers(0, 14))
    if n == 0 and rng.random() < 0.5:
        return None
    now_ns = to_ns(now)
    # mostly the last three weeks, a few scheduled sends up to two days ahead
    ts = np.sort(now_ns + rng.integers(-21 * 86_400, 2 * 86_400, n) * 10**9)
    kinds = rng.choice(len(KINDS), n, p=[0.45, 0.15, 0.05, 0.1, 0.2, 0.05])
    event = np.array([EVENT_CODE[KINDS[k]] for k in kinds], dtype=np.int16)
    channel = rng.integers(-1 if rng.random() < 0.2 else 0, len(CHANNELS), n).astype(np.int16)
    is_message = np.isin(kinds, [0, 1, 2])
    channel[is_message & (channel < 0)] = CHANNEL_CODE["email"]
    message = np.where(is_message, rng.integers(0, len(MESSAGE_IDS), n), -1).astype(np.int16)
    if rng.random() < 0.7:  # most customers send without an unsubscribe
        keep = kinds != 5
        ts, event, channel, message = ts[keep], event[keep], channel[keep], message[keep]
    return EventLog.from_arrays(customer_id, ts, event, channel, message,
                                np.zeros(ts.shape[0]), MESSAGE_IDS)


def varied_requests(n: int, seed: int = 5) -> list[DecisionRequest]:
    rng = np.random.default_rng(seed)
    stages = list(Stage)
    requests = []
    for i in range(n):
        customer_id = f"v-{seed}-{i}"
        now = STARTS[i % len(STARTS)] + timedelta(minutes=int(rng.integers(0, 3 * 24 * 60)),
                                                   microseconds=int(rng.integers(0, 10**6)))
        consents = {c: bool(rng.random() < 0.85) for c in CHANNELS}
        if rng.random() < 0.1:
            del consents[CHANNELS[int(rng.integers(0, len(CHANNELS)))]]
        features = rng.random((1, N_FEATURES))
        features[0, 0] = rng.uniform(0.0, 0.12)
        allowed = None
        if rng.random() < 0.2:
            allowed = tuple(c for c in CHANNELS if rng.random() < 0.6)
        candidates = None
        if rng.random() < 0.2:
            candidates = tuple(m for m in MESSAGE_IDS if rng.random() < 0.5)
        requests.append(DecisionRequest(
            customer_id=customer_id,
            now=now,
            timezone=TIMEZONES[int(rng.integers(0, len(TIMEZONES)))],
            consents=consents,
            stage=stages[int(rng.integers(0, len(stages)))],
            has_open_cart=bool(rng.random() < 0.4),
            features=features,
            hour_profile=rng.poisson(0.4, (1, 168)).astype(float),
            history=_history(customer_id, now, rng),
            allowed_channels=allowed,
            candidate_message_ids=candidates,
            top_k=int(rng.integers(0, 6)),
            campaign=(None, "spring", "autumn")[int(rng.integers(0, 3))],
            cold_start=bool(rng.random() < 0.1),
        ))
    return requests
