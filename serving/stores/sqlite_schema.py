"""Table layout and encodings of the SQLite store (see ``serving.stores.sqlite``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson

from features.contract import CHANNELS, EVENT_TYPES
from serving.stores.base import EventRecord

SCHEMA_VERSION = "3"
#: Versions ``open`` upgrades in place (``serving.stores.sqlite_migrations``).
MIGRATABLE_VERSIONS = ("2",)
#: Bound parameters per statement (SQLite's limit is 32,766 since 3.32).
SQL_VARIABLES = 900
#: Event message and category codes are int16 in ``features.eventlog.EventLog``.
MAX_MESSAGE_CODES = int(np.iinfo(np.int16).max)
MAX_CATEGORY_CODES = int(np.iinfo(np.int16).max)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EVENT_CODE = {e: i for i, e in enumerate(EVENT_TYPES)}
CHANNEL_CODE = {c: i for i, c in enumerate(CHANNELS)}
EVENT_ROW = np.dtype(
    [
        ("ts_ns", "i8"),
        ("event_type", "i2"),
        ("channel", "i2"),
        ("message", "i2"),
        ("value", "f8"),
        ("category", "i2"),
    ]
)
#: The packed history row of schema version 2 (no category).
EVENT_ROW_V2 = np.dtype(
    [("ts_ns", "i8"), ("event_type", "i2"), ("channel", "i2"), ("message", "i2"), ("value", "f8")]
)
#: The integer codes stored for events are only meaningful with this vocabulary.
VOCABULARY = {
    "event_types": "|".join(e.value for e in EVENT_TYPES),
    "channels": "|".join(c.value for c in CHANNELS),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    timezone TEXT NOT NULL,
    signup_ns INTEGER NOT NULL,
    consents TEXT NOT NULL,
    attributes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS catalog (
    position INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    code INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS categories (
    code INTEGER PRIMARY KEY,
    category TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS events (
    customer_id TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_type INTEGER NOT NULL,
    channel INTEGER NOT NULL,
    message INTEGER NOT NULL,
    value REAL NOT NULL,
    decision_id TEXT,
    properties TEXT,
    category TEXT,
    PRIMARY KEY (customer_id, ts_ns, event_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (event_id);
CREATE TABLE IF NOT EXISTS histories (
    customer_id TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    message_id TEXT,
    channel TEXT,
    send_at_ns INTEGER,
    propensity REAL NOT NULL,
    policy TEXT NOT NULL,
    campaign TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_customer_ts ON decisions (customer_id, ts_ns);
CREATE TABLE IF NOT EXISTS outcomes (
    decision_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    revenue REAL NOT NULL,
    received_ns INTEGER NOT NULL,
    PRIMARY KEY (decision_id, outcome, ts_ns)
);
"""


def to_ns(ts: datetime) -> int:
    """Exact UTC nanoseconds of an aware datetime (naive ones are taken as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - EPOCH) // timedelta(microseconds=1) * 1_000


def from_ns(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ns // 1_000)


def first_occurrences(events: Sequence[EventRecord], known: set[str]) -> list[EventRecord]:
    """Events whose id is neither stored nor repeated earlier in the batch."""
    seen = set(known)
    new = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            new.append(event)
    return new


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()
