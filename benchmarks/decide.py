"""Latency of DecisionEngine.decide() without model time: the policy's own overhead per request.

8 messages x 5 channels x 3 slots per pair (120 scored candidates + no_action), realistic
histories (sends, opens, purchases), customers spread over timezones and a week of request
times. The scorers are trivial numpy functions; the time spent inside them is measured and
subtracted, so the figures are the policy's cost (candidates, contact rules, arbitration,
building the Decision). Target: p50 < 0.5 ms.

    .venv/bin/python benchmarks/decide.py [--calls 5000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

# the repository root first, so the packages import from a checkout that is not installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.contract import CHANNELS, Col, EventType, Objective, Stage, cost_column  # noqa: E402
from features.eventlog import CHANNEL_CODE, EVENT_CODE, EventLog  # noqa: E402
from models.policy import (  # noqa: E402
    DecisionEngine,
    DecisionRequest,
    ModelSet,
    load_arbitration,
    load_contact_policy,
)

N_FEATURES = 40
TIMEZONES = ["Europe/Paris", "America/New_York", "Asia/Kolkata", "America/Los_Angeles",
             "Europe/London", "Australia/Sydney", "Asia/Tokyo", "America/Sao_Paulo"]
MODEL_SECONDS = [0.0]


def _timed(method):  # type: ignore[no-untyped-def]
    def wrapper(*args):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        result = method(*args)
        MODEL_SECONDS[0] += time.perf_counter() - start
        return result
    return wrapper


class Conversion:
    def __init__(self, rng: np.random.Generator) -> None:
        self.message_lift = rng.uniform(-0.01, 0.04, 8)
        self.channel_lift = rng.uniform(-0.005, 0.01, len(CHANNELS))
        self.hour_lift = rng.uniform(0, 0.005, 24)

    @_timed
    def predict_conversion(self, features, message, channel, local_hour):  # type: ignore[no-untyped-def]
        act = message >= 0
        p = 0.03 + 0.01 * features[:, 0]
        lift = self.message_lift[message] + self.channel_lift[channel] + self.hour_lift[local_hour]
        return np.clip(p + np.where(act, lift, 0.0), 0.0, 1.0)


class Churn:
    @_timed
    def predict_churn(self, features):  # type: ignore[no-untyped-def]
        return np.clip(0.2 + 0.1 * features[:, 1], 0, 1)


class Channels:
    @_timed
    def predict_channels(self, features):  # type: ignore[no-untyped-def]
        return np.full((features.shape[0], len(CHANNELS)), 0.3)


class SendTime:
    def __init__(self, rng: np.random.Generator) -> None:
        self.profile = rng.random(168)

    @_timed
    def predict_hours(self, features, hour_profile):  # type: ignore[no-untyped-def]
        return np.broadcast_to(self.profile, (features.shape[0], 168)) + 0.01 * hour_profile


def catalog() -> pd.DataFrame:
    costs = {"email": 0.01, "sms": 0.08, "push": 0.005, "in_app": 0.0, "web": 0.0}
    rows = []
    for i, objective in enumerate(Objective):
        rows.append({
            Col.MESSAGE_ID: f"m{i}_{objective.value}", Col.OBJECTIVE: objective.value,
            Col.CATEGORY: "general", Col.CHANNELS: "|".join(CHANNELS), Col.VALUE: 20.0 + 5 * i,
            Col.ELIGIBLE_STAGES: "*", Col.REQUIRES_CART: False, Col.COOLDOWN_HOURS: 48,
            **{cost_column(c): costs[c.value] for c in CHANNELS},
        })
    return pd.DataFrame(rows)


def requests(n: int, message_ids: tuple[str, ...], rng: np.random.Generator) -> list:
    start = datetime(2024, 5, 6, tzinfo=UTC)
    built = []
    for i in range(n):
        now = start + timedelta(seconds=int(rng.integers(0, 7 * 86_400)))
        now_ns = int(now.timestamp()) * 10**9
        n_events = int(rng.integers(5, 30))
        ts = now_ns - rng.integers(1, 21 * 86_400, n_events) * 10**9
        kinds = rng.choice([EventType.MESSAGE_DELIVERED, EventType.MESSAGE_OPEN,
                            EventType.PAGE_VIEW, EventType.PURCHASE], n_events,
                           p=[0.3, 0.15, 0.5, 0.05])
        channel = rng.integers(0, len(CHANNELS), n_events)
        message = np.where(np.isin(kinds, [EventType.MESSAGE_DELIVERED, EventType.MESSAGE_OPEN]),
                           rng.integers(0, len(message_ids), n_events), -1)
        log = EventLog.from_arrays(
            f"c{i}", ts, np.array([EVENT_CODE[k] for k in kinds]),
            np.where(kinds == EventType.PURCHASE, CHANNEL_CODE["web"], channel),
            message, np.zeros(n_events), message_ids,
        )
        built.append(DecisionRequest(
            customer_id=f"c{i}", now=now, timezone=TIMEZONES[i % len(TIMEZONES)],
            consents=dict.fromkeys(CHANNELS, True), stage=Stage.CUSTOMER,
            has_open_cart=bool(i % 3 == 0), features=rng.random((1, N_FEATURES)),
            hour_profile=rng.poisson(0.3, (1, 168)).astype(float), history=log,
        ))
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    models = ModelSet(Conversion(rng), Churn(), Channels(), SendTime(rng))
    arbitration = load_arbitration()
    engine = DecisionEngine(catalog(), load_contact_policy(), arbitration, models, seed=1)
    batch = requests(args.calls, engine.message_ids, rng)
    for request in batch[:300]:  # warm-up: imports, caches
        engine.decide(request)
    gc.collect()
    gc.freeze()

    total, policy, cpu, candidates = [], [], [], []
    actions = 0
    for request in batch:
        MODEL_SECONDS[0] = 0.0
        cpu_start = time.process_time()
        start = time.perf_counter()
        decision = engine.decide(request)
        elapsed = time.perf_counter() - start
        cpu.append(time.process_time() - cpu_start)
        total.append(elapsed)
        policy.append(elapsed - MODEL_SECONDS[0])
        candidates.append(decision.n_candidates)
        actions += decision.action is not None

    MODEL_SECONDS[0] = 0.0
    start, cpu_start = time.perf_counter(), time.process_time()
    engine.decide_many(batch[:1000])
    batch_seconds = time.perf_counter() - start
    batch_cpu = time.process_time() - cpu_start
    batch_policy = batch_seconds - MODEL_SECONDS[0]

    ms = 1000.0
    p50, p99 = np.percentile(policy, [50, 99]) * ms
    print("decide() latency, model predict time EXCLUDED (trivial numpy scorers, timed apart)")
    print(f"  calls {args.calls}, scored candidates per call: median {np.median(candidates):.0f}"
          f" (min {min(candidates)}), actions {actions / args.calls:.0%}, "
          f"epsilon {arbitration.exploration.epsilon}, "
          f"control share {arbitration.control_groups.global_share}")
    mean = np.mean(policy) * ms
    print(f"  policy time   p50 {p50:.3f} ms   p99 {p99:.3f} ms   mean {mean:.3f} ms")
    t50, t99 = np.percentile(total, [50, 99]) * ms
    print(f"  incl. models  p50 {t50:.3f} ms   p99 {t99:.3f} ms")
    c50 = np.percentile(cpu, 50) * ms
    print(f"  process CPU   p50 {c50:.3f} ms   mean {np.mean(cpu) * ms:.3f} ms per call "
          "(models included)")
    print(f"  target p50 < 0.5 ms: {'met' if p50 < 0.5 else 'NOT met'} "
          f"(p50 / target = {p50 / 0.5:.2f})")
    print(f"decide_many(1,000): {batch_seconds:.3f} s, {1000 / batch_seconds:,.0f} customers/s "
          f"({batch_policy / 1000 * ms:.3f} ms policy time per customer, "
          f"{batch_cpu / 1000 * ms:.3f} ms CPU per customer with models)")
    print("Note: the CPU is shared with other jobs; figures are pessimistic.")


if __name__ == "__main__":
    main()
