"""Loaders: valid files load; each kind of bad input is rejected with file, row, column and
expectation; writing is atomic."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.contract import CONSENT_COLUMNS, COST_COLUMNS, Col, Table
from features.io import DataValidationError, Journeys, load_journeys, load_table, write_journeys

CUSTOMERS = pd.DataFrame(
    {
        Col.CUSTOMER_ID: ["c1", "c2"],
        Col.TIMEZONE: ["Europe/Paris", "America/New_York"],
        Col.SIGNUP_TS: ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"],
        **{c: ["true", "false"] for c in CONSENT_COLUMNS},
        "segment": ["gold", "silver"],
    }
)
CATALOG = pd.DataFrame(
    {
        Col.MESSAGE_ID: ["welcome_1", "cart_1"],
        Col.OBJECTIVE: ["welcome", "cart_recovery"],
        Col.CATEGORY: ["general", "general"],
        Col.CHANNELS: ["email|push", "email|sms"],
        Col.VALUE: ["20", "35.5"],
        **{c: ["0.01", "0.05"] for c in COST_COLUMNS},
        Col.ELIGIBLE_STAGES: ["new", "carted"],
        Col.REQUIRES_CART: ["false", "true"],
        Col.COOLDOWN_HOURS: ["72", "24"],
    }
)
EVENTS = pd.DataFrame(
    {
        Col.EVENT_ID: ["e1", "e2", "e3"],
        Col.CUSTOMER_ID: ["c1", "c1", "c2"],
        Col.TS: ["2024-02-01T10:00:00Z", "2024-02-01T11:00:00+01:00", "2024-02-02T09:00:00Z"],
        Col.EVENT_TYPE: ["page_view", "message_delivered", "purchase"],
        Col.CHANNEL: ["web", "email", "web"],
        Col.MESSAGE_ID: [None, "welcome_1", None],
        Col.DECISION_ID: [None, "d1", None],
        Col.VALUE: [None, None, "42.0"],
    }
)
DECISIONS = pd.DataFrame(
    {
        Col.DECISION_ID: ["d1", "d2"],
        Col.CUSTOMER_ID: ["c1", "c2"],
        Col.TS: ["2024-02-01T08:00:00Z", "2024-02-01T08:00:00Z"],
        Col.MESSAGE_ID: ["welcome_1", None],
        Col.CHANNEL: ["email", None],
        Col.SEND_AT: ["2024-02-01T10:00:00Z", None],
        Col.PROPENSITY: ["0.25", "0.5"],
        Col.POLICY: ["logging", "logging"],
    }
)
TABLES = {
    Table.EVENTS: EVENTS,
    Table.CUSTOMERS: CUSTOMERS,
    Table.CATALOG: CATALOG,
    Table.DECISIONS: DECISIONS,
}


def write_folder(folder: Path, **changes: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for table, frame in TABLES.items():
        changes.get(table.value, frame).to_csv(folder / f"{table.value}.csv", index=False)
    return folder


def problems_of(folder: Path) -> str:
    with pytest.raises(DataValidationError) as info:
        load_journeys(folder)
    return str(info.value)


def test_valid_folder_loads_with_types(tmp_path: Path) -> None:
    journeys = load_journeys(write_folder(tmp_path))
    assert str(journeys.events[Col.TS].dtype) == "datetime64[ns, UTC]"
    # an offset timestamp is converted to UTC, not dropped
    assert journeys.events[Col.TS].iloc[1] == pd.Timestamp("2024-02-01T10:00:00Z")
    assert journeys.events[Col.VALUE].tolist() == [0.0, 0.0, 42.0]
    assert journeys.customers["consent_email"].tolist() == [True, False]
    assert "segment" in journeys.customers.columns  # user attributes are kept
    assert journeys.catalog[Col.COOLDOWN_HOURS].dtype == "int64"


def test_parquet_round_trip_is_atomic_and_identical(tmp_path: Path) -> None:
    journeys = load_journeys(write_folder(tmp_path / "csv"))
    out = write_journeys(journeys, tmp_path / "pq", fmt="parquet")
    again = load_journeys(out)
    pd.testing.assert_frame_equal(again.events, journeys.events, check_dtype=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t.value}.parquet" for t in Table)


def test_failed_write_leaves_previous_data_untouched(tmp_path: Path) -> None:
    journeys = load_journeys(write_folder(tmp_path / "csv"))
    out = write_journeys(journeys, tmp_path / "pq")
    broken = Journeys(
        events=journeys.events.assign(bad=[object(), object(), object()]),
        customers=journeys.customers,
        catalog=journeys.catalog,
        decisions=journeys.decisions,
    )
    with pytest.raises(Exception):  # noqa: B017 - pyarrow refuses arbitrary objects
        write_journeys(broken, out)
    assert len(load_journeys(out).events) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pq")]


@pytest.mark.parametrize(
    ("table", "column", "bad", "expected"),
    [
        ("events", Col.EVENT_TYPE, "teleport", "a known event_type"),
        ("events", Col.TS, "yesterday-ish", "ISO-8601 timestamp"),
        ("events", Col.CHANNEL, "fax", "a known channel"),
        ("events", Col.VALUE, "ten", "a number"),
        ("customers", Col.TIMEZONE, "Mars/Olympus", "an IANA timezone"),
        ("customers", "consent_sms", "maybe", "true or false"),
        ("catalog", Col.CHANNELS, "email|pigeon", "'|'-separated list"),
        ("catalog", Col.OBJECTIVE, "world_domination", "a known objective"),
        ("catalog", Col.COOLDOWN_HOURS, "1.5", "an integer"),
        ("decisions", Col.PROPENSITY, "1.5", "a propensity <= 1"),
    ],
)
def test_bad_cell_names_file_row_column_and_expectation(
    tmp_path: Path, table: str, column: str, bad: str, expected: str
) -> None:
    frame = TABLES[Table(table)].copy()
    frame[column] = frame[column].astype(object)
    frame.loc[1, column] = bad
    message = problems_of(write_folder(tmp_path, **{table: frame}))
    assert f"{table}.csv, row 2, column '{column}'" in message
    assert expected in message
    assert repr(bad) in message or bad in message


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    message = problems_of(write_folder(tmp_path, events=EVENTS.drop(columns=[Col.EVENT_TYPE])))
    assert "events.csv, column 'event_type'" in message


def test_duplicate_ids_are_reported(tmp_path: Path) -> None:
    events = EVENTS.assign(**{Col.EVENT_ID: ["e1", "e1", "e3"]})
    message = problems_of(write_folder(tmp_path, events=events))
    assert "rows 1, 2, column 'event_id'" in message and "unique" in message


def test_decision_for_unknown_customer_is_rejected(tmp_path: Path) -> None:
    decisions = DECISIONS.assign(**{Col.CUSTOMER_ID: ["c1", "ghost"]})
    message = problems_of(write_folder(tmp_path, decisions=decisions))
    assert "decisions.csv, row 2, column 'customer_id'" in message and "'ghost'" in message


def test_unknown_message_is_rejected(tmp_path: Path) -> None:
    decisions = DECISIONS.assign(**{Col.MESSAGE_ID: ["nope", None]})
    message = problems_of(write_folder(tmp_path, decisions=decisions))
    assert "message_id in the catalog" in message


def test_send_before_decision_is_out_of_order(tmp_path: Path) -> None:
    decisions = DECISIONS.assign(**{Col.SEND_AT: ["2024-01-31T10:00:00Z", None]})
    message = problems_of(write_folder(tmp_path, decisions=decisions))
    assert "decisions.csv, row 1, column 'send_at'" in message and "at or after ts" in message


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    events = EVENTS.assign(**{Col.EVENT_TYPE: ["page_view", "oops", "purchase"]})
    customers = CUSTOMERS.assign(**{Col.TIMEZONE: ["Nowhere", "UTC"]})
    message = problems_of(write_folder(tmp_path, events=events, customers=customers))
    assert "events.csv, row 2" in message and "customers.csv, row 1" in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "catalog.csv").unlink()
    assert "catalog.parquet or catalog.csv" in problems_of(folder)


def test_single_table_load(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    frame = load_table(folder / "catalog.csv", Table.CATALOG)
    assert frame[Col.VALUE].tolist() == [20.0, 35.5]


def test_empty_decision_log_is_valid(tmp_path: Path) -> None:
    journeys = load_journeys(write_folder(tmp_path, decisions=DECISIONS.iloc[:0]))
    assert journeys.decisions.empty
