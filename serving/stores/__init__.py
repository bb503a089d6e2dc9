"""Online stores: the ``Store`` interface and its backends, chosen by URL."""

from __future__ import annotations

from serving.stores.base import (
    AppendResult,
    CustomerProfile,
    DecisionLogEntry,
    DeletionReport,
    EventArrays,
    EventRecord,
    OutcomeRecord,
    OutcomeType,
    Store,
    StoreError,
    UnknownDecisionError,
)

__all__ = [
    "AppendResult",
    "CustomerProfile",
    "DecisionLogEntry",
    "DeletionReport",
    "EventArrays",
    "EventRecord",
    "OutcomeRecord",
    "OutcomeType",
    "Store",
    "StoreError",
    "UnknownDecisionError",
    "open_store",
]


def open_store(url: str) -> Store:
    """A store for ``url`` (not yet opened). Only ``sqlite:///`` ships today; a PostgreSQL
    backend would register ``postgresql://`` here."""
    if url.startswith("sqlite:///"):
        from serving.stores.sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    scheme = url.split(":", 1)[0]
    raise ValueError(
        f"unsupported store URL scheme {scheme!r} in NEXTBEST_STORE_URL: use sqlite:///<path>"
    )
