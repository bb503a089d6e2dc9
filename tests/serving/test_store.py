"""The SQLite store: idempotent, durable events; fast per-customer arrays; the decision log and
its outcomes; deletion everywhere; several processes on one file."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest

from features.contract import CHANNELS, EVENT_TYPES, Channel, EventType
from serving.stores import open_store
from serving.stores.base import (
    CustomerProfile,
    DecisionLogEntry,
    EventRecord,
    OutcomeRecord,
    OutcomeType,
    StoreError,
    UnknownDecisionError,
)
from serving.stores.sqlite import SQLiteStore

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def _event(event_id: str, customer: str = "c1", minutes: int = 0, **kw) -> EventRecord:
    fields = {"event_type": EventType.PAGE_VIEW, "channel": Channel.WEB} | kw
    return EventRecord(event_id, customer, T0 + timedelta(minutes=minutes), **fields)


@pytest.fixture
def store(tmp_path: Path):
    store = SQLiteStore(tmp_path / "db" / "nextbest.db")
    store.open()
    yield store
    store.close()


def _decision(decision_id: str, customer: str = "c1") -> DecisionLogEntry:
    return DecisionLogEntry(
        decision_id=decision_id,
        customer_id=customer,
        ts=T0,
        message_id="m1",
        channel=Channel.EMAIL,
        send_at=T0 + timedelta(hours=2),
        propensity=0.9,
        policy="p",
        record={"why": ["best"]},
    )


def test_events_are_idempotent_by_event_id_within_and_across_batches(store):
    first = store.append_events([_event("e1"), _event("e2", minutes=1), _event("e1")])
    again = store.append_events([_event("e2", minutes=5), _event("e3", minutes=2)])
    assert (first.accepted, first.duplicates) == (2, 1)
    assert (again.accepted, again.duplicates) == (1, 1)
    assert len(store.customer_events("c1")) == 3


def test_acknowledged_events_survive_closing_and_reopening(tmp_path):
    path = tmp_path / "s.db"
    writer = SQLiteStore(path)
    writer.open()
    writer.append_events([_event("e1", event_type=EventType.UNSUBSCRIBE, channel=Channel.SMS)])
    writer.close()
    reader = SQLiteStore(path)
    reader.open()
    arrays = reader.customer_events("c1")
    assert EVENT_TYPES[arrays.event_type[0]] is EventType.UNSUBSCRIBE
    assert CHANNELS[arrays.channel[0]] is Channel.SMS
    reader.close()


def test_customer_events_come_back_as_sorted_coded_arrays(store):
    store.replace_catalog([{"message_id": "m1"}, {"message_id": "m2"}])
    store.append_events(
        [
            _event("late", minutes=30, event_type=EventType.PURCHASE, value=12.5),
            _event(
                "early",
                minutes=-30,
                event_type=EventType.MESSAGE_OPEN,
                channel=Channel.EMAIL,
                message_id="m2",
            ),
            _event("other-customer", customer="c2"),
            _event(
                "outside-catalog",
                minutes=1,
                event_type=EventType.MESSAGE_DELIVERED,
                channel=Channel.SMS,
                message_id="partner-campaign",
            ),
        ]
    )
    arrays = store.customer_events("c1")
    assert arrays.ts_ns.dtype == np.int64 and np.all(np.diff(arrays.ts_ns) > 0)
    assert [EVENT_TYPES[c] for c in arrays.event_type] == [
        EventType.MESSAGE_OPEN,
        EventType.MESSAGE_DELIVERED,
        EventType.PURCHASE,
    ]
    assert [arrays.message_ids[c] if c >= 0 else None for c in arrays.message] == [
        "m2",
        "partner-campaign",
        None,
    ]
    assert arrays.value.tolist() == [0.0, 0.0, 12.5]
    assert arrays.ts_ns[0] == int((T0 - timedelta(minutes=30)).timestamp()) * 10**9
    assert len(store.customer_events("nobody")) == 0


def test_a_late_arriving_older_event_is_merged_in_time_order(store):
    store.append_events([_event("b", minutes=10), _event("c", minutes=20)])
    store.append_events([_event("a", minutes=-5), _event("d", minutes=15)])
    arrays = store.customer_events("c1")
    minutes = (arrays.ts_ns - arrays.ts_ns[0]) // (60 * 10**9)
    assert minutes.tolist() == [0, 15, 20, 25]


def test_profiles_round_trip_and_unknown_customer_is_none(store):
    profile = CustomerProfile(
        "c1",
        "Asia/Tokyo",
        T0,
        {Channel.EMAIL: True, Channel.SMS: False},
        {"segment": "gold", "ltv": 120.5},
    )
    store.upsert_customers([profile])
    assert store.get_customer("c1") == profile
    assert store.get_customer("c2") is None


def test_outcomes_join_the_decision_log_once_and_unknown_decisions_are_refused(store):
    store.log_decisions([_decision("d1")])
    outcome = OutcomeRecord("d1", OutcomeType.CONVERTED, T0 + timedelta(hours=3), 30.0)
    assert store.record_outcome(outcome) is True
    assert store.record_outcome(outcome) is False
    assert store.outcomes("d1") == [outcome]
    assert store.get_decision("d1").record == {"why": ["best"]}
    with pytest.raises(UnknownDecisionError, match="no decision with decision_id 'nope'"):
        store.record_outcome(OutcomeRecord("nope", OutcomeType.OPENED, T0))


def test_deleting_a_customer_removes_it_from_every_table(store, tmp_path):
    for customer in ("c1", "c2"):
        store.upsert_customers([CustomerProfile(customer, "UTC", T0, {Channel.EMAIL: True})])
        store.append_events([_event(f"{customer}-e", customer=customer)])
        store.log_decisions([_decision(f"{customer}-d", customer=customer)])
        store.record_outcome(OutcomeRecord(f"{customer}-d", OutcomeType.OPENED, T0))
    report = store.delete_customer("c1")
    assert (report.customers, report.events, report.decisions, report.outcomes) == (1, 1, 1, 1)
    with sqlite3.connect(store.path) as raw:
        for table, column in (
            ("customers", "customer_id"),
            ("events", "customer_id"),
            ("decisions", "customer_id"),
        ):
            rows = raw.execute(f"SELECT {column} FROM {table}").fetchall()
            assert rows == [("c2",)], table
        assert raw.execute("SELECT decision_id FROM outcomes").fetchall() == [("c2-d",)]
    assert store.delete_customer("c1").total == 0


def test_a_store_of_another_vocabulary_is_refused(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    store.open()
    store.set_meta("channels", "email|fax")
    store.close()
    with pytest.raises(StoreError, match="written with channels 'email|fax'"):
        SQLiteStore(tmp_path / "s.db").open()


def test_unknown_store_url_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="unsupported store URL scheme 'redis'"):
        open_store("redis://localhost/0")


def test_concurrent_threads_write_without_losing_events(store):
    def write(worker: int) -> None:
        for i in range(20):
            store.append_events([_event(f"w{worker}-{i}", minutes=i), _event("shared")])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.customer_events("c1")) == 4 * 20 + 1


def _process_writer(path: str, worker: int) -> tuple[int, int]:
    store = SQLiteStore(path)
    store.open()
    accepted = duplicates = 0
    for i in range(25):
        result = store.append_events(
            [
                _event(
                    f"p{worker}-{i}",
                    minutes=i,
                    event_type=EventType.MESSAGE_DELIVERED,
                    channel=Channel.EMAIL,
                    message_id=f"msg-{i % 7}",
                ),
                _event(f"shared-{i}"),
            ]
        )
        accepted, duplicates = accepted + result.accepted, duplicates + result.duplicates
    store.close()
    return accepted, duplicates


def test_several_processes_share_one_file(tmp_path):
    path = str(tmp_path / "shared.db")
    SQLiteStore(path).open()
    with ProcessPoolExecutor(3, mp_context=get_context("fork")) as pool:
        results = list(pool.map(_process_writer, [path] * 3, range(3)))
    assert sum(a for a, _ in results) == 3 * 25 + 25
    assert sum(d for _, d in results) == 2 * 25
    reader = SQLiteStore(path)
    reader.open()
    arrays = reader.customer_events("c1")
    named = {arrays.message_ids[c] for c in arrays.message if c >= 0}
    assert named == {f"msg-{i}" for i in range(7)}
    assert len(set(reader.message_ids())) == len(reader.message_ids()) == 7
