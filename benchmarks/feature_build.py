"""Benchmark: point-in-time features in batch (training) and for one customer (serving).

Builds a synthetic but plausible event log in numpy (default ~10 M events over 100 k customers,
90 days, several timezones, deliveries followed by opens and clicks, carts and purchases with
values), then times ``compute_features`` for 1.2 M (customer, as-of) queries in one call, and
the serving path (``EventLog.from_arrays`` + ``CustomerTable.from_profile`` +
``compute_features`` for one customer with ~200 events) over 2,000 calls.

It also times ``attribute_outcomes`` for 1.2 M decisions over the same events (as frames).

Run: ``.venv/bin/python benchmarks/feature_build.py [--customers N] [--events-per-customer K]``.
Targets: batch < 60 s; single customer p50 < 300 us. The CPU may be shared: the script prints
the load average and the cost of one small numpy operation on this machine right now, so the
figures can be read against it (on a quiet machine that operation takes about 1 us).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.contract import CHANNELS, CONSENT_COLUMNS, EVENT_TYPES, Col, EventType  # noqa: E402
from features.customers import CustomerTable  # noqa: E402
from features.definitions import FeatureSpec  # noqa: E402
from features.eventlog import CHANNEL_CODE, EVENT_CODE, NS_PER_DAY, EventLog  # noqa: E402
from features.outcomes import attribute_outcomes  # noqa: E402
from features.pointintime import compute_features, hour_profile  # noqa: E402
from features.scan import EventScan, Queries, feature_plan  # noqa: E402
from features.stage import derive_stage  # noqa: E402

START = pd.Timestamp("2024-01-01T00:00:00Z").value
TIMEZONES = ("UTC", "Europe/Paris", "America/New_York", "America/Los_Angeles", "Asia/Tokyo",
             "Australia/Sydney", "Asia/Kolkata", "America/Sao_Paulo")
MESSAGES = tuple(f"msg_{i:02d}" for i in range(12))
#: Organic event mix (the rest of the log are deliveries and their responses).
ORGANIC = {
    EventType.PAGE_VIEW: 0.50, EventType.PRODUCT_VIEW: 0.28, EventType.ADD_TO_CART: 0.10,
    EventType.CHECKOUT: 0.04, EventType.PURCHASE: 0.04, EventType.SUPPORT_CONTACT: 0.02,
    EventType.UNSUBSCRIBE: 0.02,
}


def synthetic_log(n_customers: int, per_customer: float, days: int, seed: int) -> EventLog:
    rng = np.random.default_rng(seed)
    rate = rng.lognormal(0.0, 0.8, n_customers)
    counts = rng.poisson(rate / rate.mean() * per_customer)
    n = int(counts.sum())
    customer = np.repeat(np.arange(n_customers, dtype=np.int32), counts)
    ts = START + (rng.random(n) * days * NS_PER_DAY).astype(np.int64)
    is_send = rng.random(n) < 0.35
    organic_types = np.array([EVENT_CODE[e] for e in ORGANIC], dtype=np.int16)
    organic_p = np.array(list(ORGANIC.values()))
    event_type = organic_types[rng.choice(len(organic_types), n, p=organic_p / organic_p.sum())]
    event_type[is_send] = EVENT_CODE[EventType.MESSAGE_DELIVERED]
    channel = rng.integers(0, len(CHANNELS), n).astype(np.int16)
    channel[~is_send & np.isin(event_type, organic_types[:5])] = CHANNEL_CODE["web"]
    message = np.where(is_send, rng.integers(0, len(MESSAGES), n), -1).astype(np.int16)
    # Responses: some deliveries get an open an hour or so later, some opens a click.
    sends = np.flatnonzero(is_send)
    opened = sends[rng.random(sends.size) < 0.25]
    clicked = opened[rng.random(opened.size) < 0.3]
    extra = np.concatenate([opened, clicked])
    lag = (rng.exponential(2.0, extra.size) * 3_600e9).astype(np.int64)
    customer = np.concatenate([customer, customer[extra]])
    ts = np.concatenate([ts, ts[extra] + lag])
    event_type = np.concatenate([
        event_type,
        np.full(opened.size, EVENT_CODE[EventType.MESSAGE_OPEN], np.int16),
        np.full(clicked.size, EVENT_CODE[EventType.MESSAGE_CLICK], np.int16)])
    channel = np.concatenate([channel, channel[extra]])
    message = np.concatenate([message, message[extra]])
    value = np.zeros(customer.size)
    money = np.isin(event_type, [EVENT_CODE[EventType.PURCHASE], EVENT_CODE[EventType.ADD_TO_CART]])
    value[money] = np.round(rng.gamma(2.0, 30.0, int(money.sum())), 2)
    order = np.lexsort((ts, customer))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(customer, minlength=n_customers))])
    return EventLog(
        customer_ids=np.array([f"c{i:07d}" for i in range(n_customers)], dtype=object),
        offsets=offsets.astype(np.int64), customer=customer[order], ts_ns=ts[order],
        event_type=event_type[order], channel=channel[order], message=message[order],
        value=value[order], message_ids=MESSAGES)


def synthetic_customers(log: EventLog, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    n = log.customer_ids.shape[0]
    frame = pd.DataFrame({
        Col.CUSTOMER_ID: log.customer_ids,
        Col.TIMEZONE: np.array(TIMEZONES)[rng.integers(0, len(TIMEZONES), n)],
        Col.SIGNUP_TS: pd.to_datetime(
            np.asarray(START - rng.integers(0, 400, n) * NS_PER_DAY), utc=True),
        "segment": np.array(["value", "mass", "young", "vip"])[rng.integers(0, 4, n)],
        "age": rng.integers(18, 80, n).astype(float),
    })
    for column in CONSENT_COLUMNS:
        frame[column] = rng.random(n) < 0.8
    return frame


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def numpy_op_micros() -> float:
    """Median cost of one small numpy operation (add, gather, search on 200 elements)."""
    values = np.arange(200, dtype=np.int64)
    index = np.arange(0, 200, 3)
    samples = []
    for _ in range(200):
        started = time.perf_counter()
        for _ in range(20):
            values + 1
            values[index]
            np.searchsorted(values, 77)
        samples.append((time.perf_counter() - started) / 60)
    return float(np.median(samples)) * 1e6


def machine_note() -> str:
    load = os.getloadavg()[0]
    return (f"load average {load:.1f} on {os.cpu_count()} CPUs; one small numpy op "
            f"{numpy_op_micros():.2f} us now")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events-per-customer", type=float, default=90.0)
    parser.add_argument("--queries", type=int, default=1_200_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(machine_note())
    started = time.perf_counter()
    log = synthetic_log(args.customers, args.events_per_customer, args.days, args.seed)
    customers = synthetic_customers(log, args.seed)
    spec = FeatureSpec.from_customers(customers, MESSAGES)
    table = CustomerTable.from_frame(customers, spec)
    print(f"synthetic data: {log.n_events:,} events, {args.customers:,} customers, "
          f"{len(spec.names)} features ({time.perf_counter() - started:.1f} s to generate)")

    rng = np.random.default_rng(args.seed + 2)
    codes = rng.integers(0, args.customers, args.queries)
    as_of = START + rng.integers(14 * NS_PER_DAY, args.days * NS_PER_DAY, args.queries)
    started = time.perf_counter()
    matrix = compute_features(log, table, spec, codes, as_of)
    batch = time.perf_counter() - started
    print(f"batch compute_features: {args.queries:,} queries in {batch:.1f} s — "
          f"{args.queries / batch:,.0f} queries/s, {log.n_events / batch:,.0f} events/s; "
          f"peak RSS {peak_rss_gib():.2f} GiB; matrix {matrix.shape}")
    del matrix

    snapshot = rng.choice(args.customers, min(args.customers, 100_000), replace=False)
    snapshot_at = np.full(snapshot.shape, START + args.days * NS_PER_DAY)
    started = time.perf_counter()
    profile = hour_profile(log, table, snapshot, snapshot_at)
    stages = derive_stage(log, table, snapshot, snapshot_at)
    print(f"hour_profile + derive_stage for {snapshot.size:,} customers: "
          f"{time.perf_counter() - started:.1f} s ({profile.sum():,.0f} engagement events, "
          f"stage counts {np.bincount(stages, minlength=6).tolist()})")

    _single_customer(log, customers, spec, args.calls)
    _outcomes(log, args.queries, args.seed)
    print(f"peak RSS {peak_rss_gib():.2f} GiB; {machine_note()}")


def _outcomes(log: EventLog, n_decisions: int, seed: int) -> None:
    """attribute_outcomes on frames: the log's events and random decisions (70 % sends)."""
    rng = np.random.default_rng(seed + 3)
    channel_names = np.array([c.value for c in CHANNELS] + [None], dtype=object)
    message_names = np.array([*MESSAGES, None], dtype=object)
    events = pd.DataFrame({
        Col.EVENT_ID: pd.Series(np.arange(log.n_events).astype(str), dtype="str"),
        Col.CUSTOMER_ID: pd.Series(log.customer_ids[log.customer], dtype="str"),
        Col.TS: pd.to_datetime(log.ts_ns, utc=True),
        Col.EVENT_TYPE: pd.Series(np.array([e.value for e in EVENT_TYPES])[log.event_type],
                                  dtype="str"),
        Col.CHANNEL: pd.Series(channel_names[log.channel], dtype="str"),
        Col.MESSAGE_ID: pd.Series(message_names[log.message], dtype="str"),
        Col.DECISION_ID: pd.Series([None] * log.n_events, dtype="str"),
        Col.VALUE: log.value,
    })
    at = START + rng.integers(0, 80 * NS_PER_DAY, n_decisions)
    send = rng.random(n_decisions) < 0.7
    decisions = pd.DataFrame({
        Col.DECISION_ID: pd.Series(np.arange(n_decisions).astype(str), dtype="str"),
        Col.CUSTOMER_ID: pd.Series(
            log.customer_ids[rng.integers(0, log.customer_ids.shape[0], n_decisions)],
            dtype="str"),
        Col.TS: pd.to_datetime(at, utc=True),
        Col.MESSAGE_ID: pd.Series(message_names[np.where(
            send, rng.integers(0, len(MESSAGES), n_decisions), -1)], dtype="str"),
        Col.CHANNEL: pd.Series(channel_names[np.where(
            send, rng.integers(0, len(CHANNELS), n_decisions), -1)], dtype="str"),
        Col.SEND_AT: pd.to_datetime(at, utc=True).where(send),
        Col.PROPENSITY: 0.5,
        Col.POLICY: "benchmark",
    })
    started = time.perf_counter()
    outcomes = attribute_outcomes(decisions, events)
    elapsed = time.perf_counter() - started
    rates = ", ".join(f"{c} {outcomes[c].mean():.3f}" for c in outcomes.columns[1:])
    print(f"attribute_outcomes: {n_decisions:,} decisions x {log.n_events:,} events in "
          f"{elapsed:.1f} s ({rates})")


def _single_customer(log: EventLog, customers: pd.DataFrame, spec: FeatureSpec, calls: int) -> None:
    """The serving path for one customer with ~200 events, wall and CPU time, and where the
    CPU time goes (CPU time leaves out waiting for a core on a shared machine)."""
    sizes = np.diff(log.offsets)
    code = int(np.argmin(np.abs(sizes - 200)))
    rows = slice(int(log.offsets[code]), int(log.offsets[code + 1]))
    arrays = (log.ts_ns[rows].copy(), log.event_type[rows].copy(), log.channel[rows].copy(),
              log.message[rows].copy(), log.value[rows].copy())
    record = customers.iloc[code]
    profile = {Col.TIMEZONE: record[Col.TIMEZONE], Col.SIGNUP_TS: int(record[Col.SIGNUP_TS].value),
               "segment": record["segment"], "age": float(record["age"]),
               **{c: bool(record[c]) for c in CONSENT_COLUMNS}}
    customer_id = str(log.customer_ids[code])
    now = np.array([START + 91 * NS_PER_DAY], dtype=np.int64)
    zero = np.zeros(1, dtype=np.int64)
    one = EventLog.from_arrays(customer_id, *arrays, MESSAGES)
    table = CustomerTable.from_profile(customer_id, profile, spec)
    queries = Queries.resolve(one, zero, now)
    plan = feature_plan(len(MESSAGES))
    stages = {
        "EventLog.from_arrays": lambda: EventLog.from_arrays(customer_id, *arrays, MESSAGES),
        "CustomerTable.from_profile": lambda: CustomerTable.from_profile(customer_id, profile,
                                                                         spec),
        "compute_features": lambda: compute_features(one, table, spec, zero, now),
        "  resolve queries (searches)": lambda: Queries.resolve(one, zero, now),
        "  scan (keys, counts, last)": lambda: EventScan.run(one, queries, plan, table, MESSAGES),
    }

    def once() -> np.ndarray:
        fresh = EventLog.from_arrays(customer_id, *arrays, MESSAGES)
        profile_table = CustomerTable.from_profile(customer_id, profile, spec)
        return compute_features(fresh, profile_table, spec, zero, now)

    for _ in range(200):
        once()
    wall, cpu = np.empty(calls), np.empty(calls)
    for i in range(calls):
        started, started_cpu = time.perf_counter(), time.process_time()
        once()
        wall[i] = time.perf_counter() - started
        cpu[i] = time.process_time() - started_cpu
    print(f"single customer ({rows.stop - rows.start} events; from_arrays + from_profile + "
          f"compute_features) over {calls:,} calls: wall p50 {np.percentile(wall, 50) * 1e6:.0f} "
          f"us, p99 {np.percentile(wall, 99) * 1e6:.0f} us; CPU mean {cpu.mean() * 1e6:.0f} us")
    for name, call in stages.items():
        started = time.process_time()
        for _ in range(calls):
            call()
        print(f"  {name:32s} {(time.process_time() - started) / calls * 1e6:7.1f} us CPU")


if __name__ == "__main__":
    main()
