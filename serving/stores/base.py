"""The online store behind the service: what it keeps and the interface every backend implements.

One store holds the customer profiles, the message catalog, every journey event (idempotent by
``event_id``), the decision log and the outcomes joined to it. The SQLite backend
(``serving.stores.sqlite``) is the embedded default; a PostgreSQL backend fits the same interface
(see docs/serving.md: the same tables, ``INSERT ... ON CONFLICT DO NOTHING`` for idempotency, a
connection pool instead of per-thread connections).

Events are kept as integer codes (``EVENT_TYPES`` / ``CHANNELS`` order, and the store's own
message and category dictionaries) so that one customer's history lands directly in numpy arrays for
``features.eventlog.EventLog.from_arrays``, without per-event Python work on the request path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np

from features.contract import Channel, EventType


class OutcomeType(StrEnum):
    """What an orchestration system reports back about a decision."""

    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    CONVERTED = "converted"
    UNSUBSCRIBED = "unsubscribed"


class StoreError(RuntimeError):
    """The store cannot serve the request (unreachable, corrupt, or of another vocabulary)."""


class UnknownDecisionError(KeyError):
    """Feedback names a decision the log does not hold."""

    def __init__(self, decision_id: str) -> None:
        super().__init__(decision_id)
        self.decision_id = decision_id

    def __str__(self) -> str:
        return f"no decision with decision_id {self.decision_id!r} in the decision log"


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """A customer's profile: timezone, signup time (UTC), consent per channel, other attributes."""

    customer_id: str
    timezone: str
    signup_ts: datetime
    consents: Mapping[Channel, bool]
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One journey event in the contract's fields, as the store receives it."""

    event_id: str
    customer_id: str
    ts: datetime
    event_type: EventType
    channel: Channel | None = None
    message_id: str | None = None
    decision_id: str | None = None
    value: float = 0.0
    properties: Mapping[str, Any] | None = None
    #: Product category (the catalog's ``category`` vocabulary), when the source knows it.
    category: str | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """How many events of a batch were new and how many had been received before."""

    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class EventArrays:
    """One customer's events as parallel arrays sorted by time.

    ``event_type`` and ``channel`` index the contract's ``EVENT_TYPES`` and ``CHANNELS``;
    ``message`` indexes ``message_ids`` (the store's message dictionary at read time) and
    ``category`` indexes ``category_ids`` (its category dictionary; ``None``: a backend that
    keeps no categories); ``-1`` means empty.
    """

    ts_ns: np.ndarray
    event_type: np.ndarray
    channel: np.ndarray
    message: np.ndarray
    value: np.ndarray
    message_ids: tuple[str, ...]
    category: np.ndarray | None = None
    category_ids: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])


@dataclass(frozen=True, slots=True)
class DecisionLogEntry:
    """One decision as logged: the contract's decision columns plus the full JSON record
    (inputs, scores, reasons, model versions) that makes it reproducible."""

    decision_id: str
    customer_id: str
    ts: datetime
    message_id: str | None
    channel: Channel | None
    send_at: datetime | None
    propensity: float
    policy: str
    record: Mapping[str, Any]
    campaign: str | None = None


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """An outcome reported for a logged decision."""

    decision_id: str
    outcome: OutcomeType
    ts: datetime
    revenue: float = 0.0


@dataclass(frozen=True, slots=True)
class DeletionReport:
    """Rows removed for one customer, per table."""

    customers: int
    events: int
    decisions: int
    outcomes: int

    @property
    def total(self) -> int:
        return self.customers + self.events + self.decisions + self.outcomes


class Store(ABC):
    """The service's persistent state. Implementations are safe to call from several threads
    and from several processes sharing the same database."""

    @abstractmethod
    def open(self) -> None:
        """Connect and create the schema if it does not exist (idempotent)."""

    @abstractmethod
    def close(self) -> None:
        """Release every connection."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ``StoreError`` when the store cannot answer a query."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None:
        """A small piece of service state (e.g. the fingerprint of the last seed)."""

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    def upsert_customers(self, profiles: Iterable[CustomerProfile]) -> int:
        """Insert or replace profiles; returns how many were written."""

    @abstractmethod
    def get_customer(self, customer_id: str) -> CustomerProfile | None:
        """The profile, or ``None`` for a customer the store has never seen."""

    @abstractmethod
    def replace_catalog(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Replace the message catalog (rows in the contract's catalog columns, in order)."""

    @abstractmethod
    def catalog(self) -> list[dict[str, Any]]:
        """The catalog rows in their stored order."""

    @abstractmethod
    def message_ids(self) -> tuple[str, ...]:
        """The message dictionary: ``message_ids()[code]`` is the id behind an event's code."""

    @abstractmethod
    def append_events(self, events: Sequence[EventRecord]) -> AppendResult:
        """Store events, ignoring any ``event_id`` already stored (also within the batch).
        Returns only after the batch is durable."""

    @abstractmethod
    def customer_events(self, customer_id: str) -> EventArrays:
        """All events of one customer, sorted by time (empty arrays for an unknown one)."""

    @abstractmethod
    def log_decisions(self, entries: Sequence[DecisionLogEntry]) -> None:
        """Append decisions to the decision log (committed when this returns)."""

    def submit_decisions(self, entries: Sequence[DecisionLogEntry]) -> Future[None]:
        """Append decisions to the decision log; the future resolves once they are committed
        (a backend may commit several submissions in one transaction meanwhile)."""
        future: Future[None] = Future()
        try:
            self.log_decisions(entries)
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(None)
        return future

    @abstractmethod
    def get_decision(self, decision_id: str) -> DecisionLogEntry | None: ...

    @abstractmethod
    def record_outcome(self, outcome: OutcomeRecord) -> bool:
        """Join an outcome to its decision; ``False`` when the same outcome (decision, type,
        time) was already recorded. Raises ``UnknownDecisionError`` for an unknown decision."""

    @abstractmethod
    def outcomes(self, decision_id: str) -> list[OutcomeRecord]:
        """Outcomes recorded for a decision, oldest first."""

    @abstractmethod
    def delete_customer(self, customer_id: str) -> DeletionReport:
        """Remove everything about a customer (profile, events, decisions, outcomes)."""
