"""Online store figures: what the recommend path pays to read a customer, and ingestion rates.

Plain script (not run by pytest): ``python benchmarks/store.py [--customers N]``. It builds a
SQLite store in a temporary folder with N customers x ~60 events, then times

- reading one customer's history into numpy arrays (``Store.customer_events``) and building the
  one-customer ``EventLog`` the features read, for a typical and a long history;
- reading a profile;
- logging a decision (synchronous=NORMAL) and recording an outcome (synchronous=FULL);
- ingesting event batches (synchronous=FULL: durable when acknowledged), as events/s.

The CPU is shared with other work while this runs: treat figures as pessimistic.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

# The repository root first, so the packages import from a checkout that is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.contract import CHANNELS, EVENT_TYPES, Channel, EventType  # noqa: E402
from features.eventlog import EventLog  # noqa: E402
from serving.stores.base import (
    CustomerProfile,
    DecisionLogEntry,
    EventRecord,
    OutcomeRecord,
    OutcomeType,
)
from serving.stores.sqlite import SQLiteStore  # noqa: E402

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MESSAGES = tuple(f"m{i}" for i in range(20))


def _events(rng: np.random.Generator, customer: str, n: int, prefix: str) -> list[EventRecord]:
    minutes = np.sort(rng.integers(0, 60 * 24 * 120, size=n))
    kinds = rng.integers(0, len(EVENT_TYPES), size=n)
    out = []
    for i, (minute, kind) in enumerate(zip(minutes, kinds, strict=True)):
        event_type = EVENT_TYPES[int(kind)]
        message = event_type in (EventType.MESSAGE_DELIVERED, EventType.MESSAGE_OPEN)
        out.append(
            EventRecord(
                event_id=f"{prefix}{customer}-{i}",
                customer_id=customer,
                ts=T0 + timedelta(minutes=int(minute)),
                event_type=event_type,
                channel=CHANNELS[int(kind) % len(CHANNELS)],
                message_id=MESSAGES[i % len(MESSAGES)] if message else None,
                value=float(rng.gamma(2.0, 10.0)) if event_type is EventType.PURCHASE else 0.0,
            )
        )
    return out


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """p50 and p99 in microseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db")
        store.open()
        store.replace_catalog([{"message_id": m} for m in MESSAGES])
        store.upsert_customers(
            CustomerProfile(f"c{i}", "Europe/Paris", T0, {c: True for c in CHANNELS})
            for i in range(args.customers)
        )
        start = time.perf_counter()
        seeded = 0
        for i in range(0, args.customers, 100):
            batch = [e for c in range(i, i + 100) for e in _events(rng, f"c{c}", 60, "s")]
            seeded += store.append_events(batch).accepted
        seed_rate = seeded / (time.perf_counter() - start)
        store.append_events(_events(rng, "heavy", 2_000, "h"))

        rows = [("operation", "p50 µs", "p99 µs")]

        def read(customer: str) -> EventLog:
            a = store.customer_events(customer)
            return EventLog.from_arrays(
                customer, a.ts_ns, a.event_type, a.channel, a.message, a.value, a.message_ids
            )

        ids = [f"c{i}" for i in rng.integers(0, args.customers, size=2_000)]
        it = iter(ids)
        rows.append(("events -> EventLog, 60 events", *_time(lambda: read(next(it)), 2_000)))
        rows.append(("events -> EventLog, 2,000 events", *_time(lambda: read("heavy"), 300)))
        it = iter(ids)
        rows.append(("profile read", *_time(lambda: store.get_customer(next(it)), 2_000)))

        counter = iter(range(10**9))

        def log_decision() -> None:
            n = next(counter)
            store.log_decisions(
                [
                    DecisionLogEntry(
                        f"d{n}", "c1", T0, "m1", Channel.EMAIL, T0, 0.9, "bench",
                        {"scores": {"conversion": 0.1}, "reasons": ["best_expected_value"]},
                    )
                ]
            )  # fmt: skip

        rows.append(("decision log write (NORMAL)", *_time(log_decision, 1_000)))
        outcomes = iter(range(10**9))
        rows.append(
            (
                "outcome write (FULL, durable)",
                *_time(
                    lambda: store.record_outcome(
                        OutcomeRecord(
                            "d0", OutcomeType.OPENED, T0 + timedelta(seconds=next(outcomes))
                        )
                    ),
                    300,
                ),
            )
        )
        rates = []
        for size in (1, 100, 1_000):
            batches = [_events(rng, f"new{size}-{b}", size, "n") for b in range(20)]
            start = time.perf_counter()
            for batch in batches:
                store.append_events(batch)
            rates.append((size, 20 * size / (time.perf_counter() - start)))
        store.close()

    print(f"SQLite store, {args.customers} customers x 60 events (shared CPU: pessimistic)")
    for name, p50, p99 in rows:
        print(
            f"  {name:<34} {p50:>10} {p99:>10}"
            if isinstance(p50, str)
            else f"  {name:<34} {p50:>10.1f} {p99:>10.1f}"
        )
    print(f"  seeding (100 customers per batch):  {seed_rate:,.0f} events/s")
    for size, rate in rates:
        print(f"  /v1/events-sized batches of {size:>5}:  {rate:,.0f} events/s (durable)")


if __name__ == "__main__":
    main()
