"""Seed the store from a journey data folder (customers, catalog and, if present, events).

The folder is validated with ``features.io`` exactly like training data. A fingerprint of the
files (names, sizes, modification times) is kept in the store, so restarts and extra worker
processes skip the work unless the files changed; re-seeding is safe anyway, since profiles and
the catalog are replaced and events are idempotent by ``event_id``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from features.contract import CHANNELS, CONSENT_COLUMNS, Col, EventType, Table, consent_column
from features.io import DataValidationError, find_table_file, load_table
from serving.stores.base import CustomerProfile, EventRecord, Store

logger = logging.getLogger(__name__)

SEED_FINGERPRINT_KEY = "seed_fingerprint"
_EVENT_CHUNK = 50_000


@dataclass(frozen=True)
class SeedReport:
    customers: int
    messages: int
    events_accepted: int
    events_duplicate: int


def _optional_table(directory: Path, table: Table) -> Path | None:
    try:
        return find_table_file(directory, table)
    except DataValidationError:
        return None


def _fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def json_safe(value: Any) -> Any:
    """A frame cell as a JSON value (timestamps as ISO strings, NaN/NaT as null)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating) and math.isnan(float(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): json_safe(v) for k, v in row.items()} for row in frame.to_dict("records")]


def profiles_from_frame(customers: pd.DataFrame) -> Iterator[CustomerProfile]:
    """Profiles from a validated customers frame; extra columns become attributes."""
    fixed = {Col.CUSTOMER_ID, Col.TIMEZONE, Col.SIGNUP_TS, *CONSENT_COLUMNS}
    extra = [c for c in customers.columns if c not in fixed]
    for row in customers.to_dict("records"):
        yield CustomerProfile(
            customer_id=str(row[Col.CUSTOMER_ID]),
            timezone=str(row[Col.TIMEZONE]),
            signup_ts=pd.Timestamp(row[Col.SIGNUP_TS]).to_pydatetime(warn=False),
            consents={c: bool(row[consent_column(c)]) for c in CHANNELS},
            attributes={c: json_safe(row[c]) for c in extra},
        )


def _properties(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {"raw": value}
        return parsed if isinstance(parsed, dict) else None
    return None


def _category(value: Any) -> str | None:
    """The optional category cell as the store keeps it: missing or empty means none."""
    value = json_safe(value)
    return None if value is None or str(value) == "" else str(value)


def events_from_frame(events: pd.DataFrame) -> Iterator[EventRecord]:
    """Event records from a validated events frame."""
    has_properties = Col.PROPERTIES in events.columns
    has_category = Col.CATEGORY in events.columns
    for row in events.to_dict("records"):
        channel = row[Col.CHANNEL]
        yield EventRecord(
            event_id=str(row[Col.EVENT_ID]),
            customer_id=str(row[Col.CUSTOMER_ID]),
            # the store keeps microseconds, like every event posted to /v1/events
            ts=pd.Timestamp(row[Col.TS]).to_pydatetime(warn=False),
            event_type=EventType(row[Col.EVENT_TYPE]),
            channel=None if channel is None or channel is np.nan else channel,
            message_id=json_safe(row[Col.MESSAGE_ID]),
            decision_id=json_safe(row[Col.DECISION_ID]),
            value=float(row[Col.VALUE]),
            properties=_properties(row[Col.PROPERTIES]) if has_properties else None,
            category=_category(row[Col.CATEGORY]) if has_category else None,
        )


def seed_store(store: Store, data_dir: Path) -> SeedReport | None:
    """Load the folder into the store unless this exact folder content was seeded before.

    Raises ``DataValidationError`` (naming file, row and column) for invalid data.
    """
    customers_path = find_table_file(data_dir, Table.CUSTOMERS)
    catalog_path = find_table_file(data_dir, Table.CATALOG)
    events_path = _optional_table(data_dir, Table.EVENTS)
    paths = [p for p in (customers_path, catalog_path, events_path) if p is not None]
    fingerprint = _fingerprint(paths)
    if store.get_meta(SEED_FINGERPRINT_KEY) == fingerprint:
        logger.info("store already seeded from %s", data_dir)
        return None
    catalog = load_table(catalog_path, Table.CATALOG)
    customers = load_table(customers_path, Table.CUSTOMERS)
    store.replace_catalog(_records(catalog))
    n_customers = store.upsert_customers(profiles_from_frame(customers))
    accepted = duplicates = 0
    if events_path is not None:
        events = load_table(events_path, Table.EVENTS)
        batch: list[EventRecord] = []
        for record in events_from_frame(events):
            batch.append(record)
            if len(batch) >= _EVENT_CHUNK:
                result = store.append_events(batch)
                accepted, duplicates = accepted + result.accepted, duplicates + result.duplicates
                batch = []
        result = store.append_events(batch)
        accepted, duplicates = accepted + result.accepted, duplicates + result.duplicates
    store.set_meta(SEED_FINGERPRINT_KEY, fingerprint)
    report = SeedReport(n_customers, len(catalog), accepted, duplicates)
    logger.info("seeded the store from %s: %s", data_dir, report)
    return report
