"""The decision log and its outcomes in the SQLite store (``serving.stores.sqlite``).

Decisions are written by a group-commit thread (``synchronous=NORMAL``: durable across a process
crash, no fsync on the recommend path); outcomes are acknowledged writes (``FULL``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from features.contract import Channel
from serving.stores.base import (
    DecisionLogEntry,
    OutcomeRecord,
    OutcomeType,
    UnknownDecisionError,
)
from serving.stores.group_commit import GroupCommitter
from serving.stores.sqlite_schema import dumps, from_ns, to_ns

#: Opens one write transaction with the given ``synchronous`` level.
WriteTransaction = Callable[[Literal["FULL", "NORMAL"]], AbstractContextManager[sqlite3.Connection]]


class SQLiteDecisionLog:
    """Decision log rows and the outcomes joined to them, on the store's connections."""

    def __init__(
        self, connection: Callable[[], sqlite3.Connection], write: WriteTransaction
    ) -> None:
        self._connection = connection
        self._write = write
        self._writer = self._new_writer()

    def _new_writer(self) -> GroupCommitter[tuple[Any, ...]]:
        return GroupCommitter(self._insert, name="decision-log-writer")

    def close(self) -> None:
        """Commit the decisions still waiting for their group; later submissions get a new
        writer (the store may be opened again)."""
        self._writer.close()
        self._writer = self._new_writer()

    def submit(self, entries: Sequence[DecisionLogEntry]) -> Future[None]:
        """Group commit: the writer thread inserts everything submitted since its last
        transaction in one."""
        rows = [
            (
                d.decision_id,
                d.customer_id,
                to_ns(d.ts),
                d.message_id,
                None if d.channel is None else str(d.channel),
                None if d.send_at is None else to_ns(d.send_at),
                float(d.propensity),
                d.policy,
                d.campaign,
                dumps(dict(d.record)),
            )
            for d in entries
        ]
        return self._writer.submit(rows)

    def _insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._write("NORMAL") as tx:
            tx.executemany("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def get(self, decision_id: str) -> DecisionLogEntry | None:
        row = (
            self._connection()
            .execute(
                "SELECT customer_id, ts_ns, message_id, channel, send_at_ns, propensity, policy, "
                "campaign, record FROM decisions WHERE decision_id = ?",
                (decision_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return DecisionLogEntry(
            decision_id=decision_id,
            customer_id=row[0],
            ts=from_ns(row[1]),
            message_id=row[2],
            channel=None if row[3] is None else Channel(row[3]),
            send_at=None if row[4] is None else from_ns(row[4]),
            propensity=row[5],
            policy=row[6],
            campaign=row[7],
            record=orjson.loads(row[8]),
        )

    def record_outcome(self, outcome: OutcomeRecord) -> bool:
        received = to_ns(datetime.now(UTC))
        with self._write("FULL") as tx:
            known = tx.execute(
                "SELECT 1 FROM decisions WHERE decision_id = ?", (outcome.decision_id,)
            ).fetchone()
            if known is None:
                raise UnknownDecisionError(outcome.decision_id)
            cursor = tx.execute(
                "INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?, ?, ?)",
                (
                    outcome.decision_id,
                    str(outcome.outcome),
                    to_ns(outcome.ts),
                    float(outcome.revenue),
                    received,
                ),
            )
            return cursor.rowcount == 1

    def outcomes(self, decision_id: str) -> list[OutcomeRecord]:
        rows = (
            self._connection()
            .execute(
                "SELECT outcome, ts_ns, revenue FROM outcomes WHERE decision_id = ? ORDER BY ts_ns",
                (decision_id,),
            )
            .fetchall()
        )
        return [
            OutcomeRecord(decision_id, OutcomeType(r[0]), from_ns(r[1]), float(r[2])) for r in rows
        ]
