"""In-place upgrades of SQLite store files written by earlier schema versions.

``SQLiteStore.open`` runs them inside its opening write transaction, so a file is either fully
upgraded or left as it was; every process opening the file afterwards sees the new version.
"""

from __future__ import annotations

import logging
import sqlite3

import numpy as np

from serving.stores.sqlite_schema import EVENT_ROW, EVENT_ROW_V2

logger = logging.getLogger(__name__)


def upgrade(conn: sqlite3.Connection, version: str) -> None:
    """Bring a store of schema ``version`` to the current one (inside the caller's transaction)."""
    if version == "2":
        _add_event_categories(conn)
    else:
        raise ValueError(f"no upgrade from store schema version {version!r}")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")


def _add_event_categories(conn: sqlite3.Connection) -> None:
    """Version 3 keeps each event's optional product category: a nullable ``category`` column
    on ``events`` and a category code in the packed histories (``-1``: none, as every event
    stored before had)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if "category" not in columns:
        conn.execute("ALTER TABLE events ADD COLUMN category TEXT")
    histories = conn.execute("SELECT customer_id, data FROM histories").fetchall()
    for customer_id, data in histories:
        old = np.frombuffer(data, dtype=EVENT_ROW_V2)
        new = np.empty(old.shape[0], dtype=EVENT_ROW)
        for name in EVENT_ROW_V2.names or ():
            new[name] = old[name]
        new["category"] = -1
        conn.execute(
            "UPDATE histories SET data = ? WHERE customer_id = ?", (new.tobytes(), customer_id)
        )
    logger.info("store upgraded to schema 3: event categories (%d histories)", len(histories))
