"""The decision log's group commit: concurrent decisions share transactions, each caller learns
when its own rows are committed, a bad submission fails alone, and closing commits what waits."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from features.contract import Channel
from serving.stores.base import DecisionLogEntry
from serving.stores.group_commit import GroupCommitter, WriterClosedError
from serving.stores.sqlite import SQLiteStore

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def _decision(decision_id: str) -> DecisionLogEntry:
    return DecisionLogEntry(
        decision_id=decision_id, customer_id="c1", ts=T0, message_id="m1",
        channel=Channel.EMAIL, send_at=T0, propensity=1.0, policy="p", record={"n": 1},
    )  # fmt: skip


def test_a_submitted_decision_is_readable_once_its_future_resolves(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "nextbest.db")
    store.open()
    try:
        store.submit_decisions([_decision("d1")]).result(timeout=10)
        logged = store.get_decision("d1")
        assert logged is not None and logged.record == {"n": 1}
    finally:
        store.close()


def test_concurrent_submissions_share_transactions(tmp_path: Path) -> None:
    gate = threading.Event()
    groups: list[int] = []

    def commit(rows: Sequence[int]) -> None:
        gate.wait(10)  # hold the first transaction so the others queue up behind it
        groups.append(len(rows))

    writer: GroupCommitter[int] = GroupCommitter(commit)
    futures = [writer.submit([i]) for i in range(20)]
    gate.set()
    for future in futures:
        future.result(timeout=10)
    writer.close()
    assert sum(groups) == 20
    assert len(groups) < 20  # grouped: fewer transactions than submissions


def test_a_failing_submission_fails_alone() -> None:
    committed: list[int] = []
    gate = threading.Event()

    def commit(rows: Sequence[int]) -> None:
        gate.wait(10)
        if -1 in rows:
            raise ValueError("bad row")
        committed.extend(rows)

    writer: GroupCommitter[int] = GroupCommitter(commit)
    good, bad, other = writer.submit([1]), writer.submit([-1]), writer.submit([2, 3])
    gate.set()
    good.result(timeout=10)
    other.result(timeout=10)
    with pytest.raises(ValueError, match="bad row"):
        bad.result(timeout=10)
    writer.close()
    assert sorted(committed) == [1, 2, 3]


def test_close_commits_what_is_pending_then_refuses(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "nextbest.db")
    store.open()
    futures = [store.submit_decisions([_decision(f"d{i}")]) for i in range(50)]
    store.close()
    assert all(f.done() and f.exception() is None for f in futures)
    reopened = SQLiteStore(tmp_path / "nextbest.db")
    reopened.open()
    try:
        assert all(reopened.get_decision(f"d{i}") is not None for i in range(50))
    finally:
        reopened.close()
    writer: GroupCommitter[int] = GroupCommitter(lambda rows: None)
    writer.close()
    with pytest.raises(WriterClosedError):
        writer.submit([1])
