"""Events' product categories reach the served features exactly as in the batch feature path,
and store files written before categories were kept still open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import Col, Table
from features.customers import CustomerTable
from features.definitions import FeatureSpec
from features.eventlog import EventLog
from features.io import find_table_file, load_table, parse_table
from features.pointintime import compute_features
from features.signal_definitions import category_purchase_share_name, category_view_share_name
from serving.seed import seed_store
from serving.stores.base import EventRecord
from serving.stores.sqlite import SQLiteStore
from serving.stores.sqlite_schema import EVENT_ROW, EVENT_ROW_V2
from tests.serving.conftest import API, NOW, event, write_data_dir

ASK = {"customer_id": "c1", "context": {"now": "2024-05-01T12:00:00Z"}}

#: c1's new events: views of both catalog categories, of one no model knows, without category,
#: and a categorised purchase.
POSTED = [
    event("v1", event_type="product_view", category="cart", ts="2024-04-28T10:00:00Z"),
    event("v2", event_type="product_view", category="cart", ts="2024-04-29T10:00:00Z"),
    event("v3", event_type="product_view", category="general", ts="2024-04-29T11:00:00Z"),
    event("v4", event_type="product_view", category="garden", ts="2024-04-29T12:00:00Z"),
    event("v5", event_type="product_view", ts="2024-04-29T13:00:00Z"),
    event("p1", event_type="purchase", category="general", value=12.5, ts="2024-04-30T09:00:00Z"),
]


def _batch_features(data_dir: Path, spec: FeatureSpec, posted: list[dict]) -> np.ndarray:
    """c1's feature row from the batch path: the data folder's events plus the posted ones."""
    seeded = load_table(find_table_file(data_dir, Table.EVENTS), Table.EVENTS)
    extra = pd.DataFrame(posted).reindex(columns=[*seeded.columns, Col.CATEGORY])
    events = parse_table(
        pd.concat([seeded.assign(**{Col.CATEGORY: None}), extra], ignore_index=True),
        Table.EVENTS,
        "events",
    )
    customers = load_table(find_table_file(data_dir, Table.CUSTOMERS), Table.CUSTOMERS)
    log = EventLog.from_frame(events, spec.message_ids, customers[Col.CUSTOMER_ID].tolist())
    table = CustomerTable.from_frame(customers, spec)
    as_of = np.array([pd.Timestamp(NOW).value], dtype=np.int64)
    return compute_features(log, table, spec, np.array([log.customer_code("c1")]), as_of)[0]


def _served_features(client) -> np.ndarray:
    decision = client.post("/v1/recommend", json=ASK, headers=API).json()
    record = client.app.state.store.get_decision(decision["decision_id"]).record
    return np.array([np.nan if v is None else v for v in record["features"]], dtype=np.float64)


def test_served_category_shares_equal_the_batch_features(client, data_dir, spec):
    assert spec.categories == ("general", "cart")
    response = client.post("/v1/events", json={"events": POSTED}, headers=API)
    assert response.status_code == 200 and response.json()["accepted"] == len(POSTED)

    served = _served_features(client)
    batch = _batch_features(data_dir, spec, POSTED)

    view_cart = spec.index(category_view_share_name("cart"))
    purchase_general = spec.index(category_purchase_share_name("general"))
    # 2 of the 3 views in a category the models know are of "cart" ("garden" and none don't count)
    assert served[view_cart] == batch[view_cart] == 2 / 3
    assert served[purchase_general] == batch[purchase_general] == 1.0
    np.testing.assert_array_equal(served, batch)  # the whole row, NaN where both are NaN


def test_a_batch_call_serves_each_customer_its_own_category_shares(client, data_dir, spec):
    other = [{**e, "event_id": f"c2-{e['event_id']}", "customer_id": "c2"} for e in POSTED[3:]]
    assert (
        client.post("/v1/events", json={"events": POSTED + other}, headers=API).status_code == 200
    )
    asks = [ASK, {**ASK, "customer_id": "c2"}, {**ASK, "customer_id": "c3"}]
    answers = client.post("/v1/recommend/batch", json={"requests": asks}, headers=API).json()
    store = client.app.state.store
    records = [store.get_decision(a["decision_id"]).record for a in answers["decisions"]]
    served = np.array([[np.nan if v is None else v for v in r["features"]] for r in records])
    np.testing.assert_array_equal(served[0], _batch_features(data_dir, spec, POSTED))
    purchase_general = spec.index(category_purchase_share_name("general"))
    view_cart = spec.index(category_view_share_name("cart"))
    # c2 bought "general" and viewed only a category no model knows
    assert served[1, purchase_general] == 1.0 and np.isnan(served[1, view_cart])
    assert np.isnan(served[2, view_cart])  # c3: no categorised views


def test_events_without_category_leave_the_shares_unknown(client, data_dir, spec):
    plain = [{k: v for k, v in e.items() if k != "category"} for e in POSTED]
    assert client.post("/v1/events", json={"events": plain}, headers=API).status_code == 200
    served = _served_features(client)
    shares = [spec.index(category_view_share_name(c)) for c in spec.categories]
    assert np.isnan(served[shares]).all()
    np.testing.assert_array_equal(served, _batch_features(data_dir, spec, plain))


def test_a_category_must_be_a_non_empty_string(client):
    for bad in (3, "", None):
        body = {"events": [event("b1", event_type="product_view", category=bad)]}
        response = client.post("/v1/events", json=body, headers=API)
        if bad is None:  # explicit null: no category
            assert response.status_code == 200
        else:
            assert response.status_code == 422
            problems = {p["field"]: p["problem"] for p in response.json()["problems"]}
            assert list(problems) == ["events[0].category"]


def _v2_store(path: Path) -> None:
    """A store file as schema version 2 wrote it: no category column, shorter history rows."""
    store = SQLiteStore(path)
    store.open()
    store.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        DROP TABLE events;
        DROP TABLE categories;
        CREATE TABLE events (
            customer_id TEXT NOT NULL, ts_ns INTEGER NOT NULL, event_id TEXT NOT NULL,
            event_type INTEGER NOT NULL, channel INTEGER NOT NULL, message INTEGER NOT NULL,
            value REAL NOT NULL, decision_id TEXT, properties TEXT,
            PRIMARY KEY (customer_id, ts_ns, event_id)
        ) WITHOUT ROWID;
        UPDATE meta SET value = '2' WHERE key = 'schema_version';
        """
    )
    old = np.array([(1_700_000_000_000_000_000, 1, -1, -1, 0.0)], dtype=EVENT_ROW_V2)
    conn.execute(
        "INSERT INTO events VALUES ('c1', ?, 'old', 1, -1, -1, 0.0, NULL, NULL)",
        (int(old["ts_ns"][0]),),
    )
    conn.execute("INSERT INTO histories VALUES ('c1', ?)", (old.tobytes(),))
    conn.commit()
    conn.close()


def test_a_store_file_without_categories_opens_and_keeps_its_history(tmp_path):
    path = tmp_path / "old.db"
    _v2_store(path)
    store = SQLiteStore(path)
    store.open()
    try:
        assert store.get_meta("schema_version") == "3"
        before = store.customer_events("c1")
        assert len(before) == 1 and before.category is not None and before.category[0] == -1
        store.append_events(
            [
                EventRecord(
                    "new", "c1", pd.Timestamp("2024-01-01", tz="UTC").to_pydatetime(),
                    POSTED[0]["event_type"], category="cart",
                )
            ]
        )  # fmt: skip
        after = store.customer_events("c1")
        assert after.category is not None
        assert after.ts_ns.dtype == EVENT_ROW["ts_ns"] and len(after) == 2
        assert [after.category_ids[c] if c >= 0 else None for c in after.category] == [
            None,
            "cart",
        ]
    finally:
        store.close()
    reopened = SQLiteStore(path)  # upgraded once: opens again as a current file
    reopened.open()
    assert len(reopened.customer_events("c1")) == 2
    reopened.close()


def test_seeding_keeps_the_events_category_column(tmp_path):
    data = write_data_dir(tmp_path / "data")
    events = pd.read_csv(data / "events.csv")
    events[Col.CATEGORY] = ["cart", None, "general"]
    events.to_csv(data / "events.csv", index=False)
    store = SQLiteStore(tmp_path / "s.db")
    store.open()
    try:
        seed_store(store, data)
        c1, c2 = store.customer_events("c1"), store.customer_events("c2")
        assert c1.category is not None and c2.category is not None
        assert [c1.category_ids[c] if c >= 0 else None for c in c1.category] == ["cart", None]
        assert [c2.category_ids[c] for c in c2.category] == ["general"]
    finally:
        store.close()
