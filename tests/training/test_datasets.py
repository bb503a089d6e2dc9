"""Point-in-time data sets: labels that say what happened next, features that only know the
past, and splits by time."""

from __future__ import annotations

import dataclasses
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from features.contract import (
    ACTIVITY_EVENT_TYPES,
    CHANNELS,
    ENGAGEMENT_EVENT_TYPES,
    Col,
    EventType,
)
from features.eventlog import ts_to_ns
from features.io import Journeys
from features.outcomes import OutcomeCol, attribute_outcomes
from models.conversion import ACTION_COLUMNS
from tests.training import small_world
from training.datasets import (
    HISTORY_FEATURE,
    DatasetConfig,
    MaxRows,
    TaskDataset,
    build_dataset,
    build_datasets,
    time_split,
)
from training.task_rows import dense_start
from training.tasks import Task

DAY = pd.Timedelta(days=1)
CHECKED_ROWS = 40


def _events() -> pd.DataFrame:
    return small_world.journeys().events


def _sample(dataset: TaskDataset, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice(len(dataset), size=min(CHECKED_ROWS, len(dataset)), replace=False)


def _window(customer: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    events = _events()
    mine = events[events[Col.CUSTOMER_ID] == customer]
    return mine[(mine[Col.TS] >= start) & (mine[Col.TS] < end)]


def _stamp(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC")


def test_churn_label_is_no_activity_in_the_next_window() -> None:
    dataset = small_world.datasets()[Task.CHURN]
    days = small_world.CONFIG.churn_window_days
    activity = {e.value for e in ACTIVITY_EVENT_TYPES}
    for row in _sample(dataset):
        as_of = _stamp(dataset.ts_ns[row])
        customer = str(dataset.customer_ids[row])
        after = _window(customer, as_of, as_of + days * DAY)
        before = _window(customer, as_of - days * DAY, as_of)
        assert dataset.y[row] == float(not after[Col.EVENT_TYPE].isin(activity).any())
        # rows are customers active in the window before: at risk, not already gone
        assert before[Col.EVENT_TYPE].isin(activity).any()


def test_channel_label_is_engagement_on_each_channel_in_the_horizon() -> None:
    dataset = small_world.datasets()[Task.CHANNEL]
    days = small_world.CONFIG.channel_horizon_days
    engagement = {e.value for e in ENGAGEMENT_EVENT_TYPES}
    for row in _sample(dataset):
        as_of = _stamp(dataset.ts_ns[row])
        after = _window(str(dataset.customer_ids[row]), as_of, as_of + days * DAY)
        engaged = set(after.loc[after[Col.EVENT_TYPE].isin(engagement), Col.CHANNEL])
        expected = [float(c.value in engaged) for c in CHANNELS]
        assert dataset.y[row].tolist() == expected


def test_sendtime_label_is_the_local_hours_of_week_engaged_in() -> None:
    dataset = small_world.datasets()[Task.SENDTIME]
    days = small_world.CONFIG.sendtime_horizon_days
    customers = small_world.journeys().customers.set_index(Col.CUSTOMER_ID)
    engagement = {e.value for e in ENGAGEMENT_EVENT_TYPES}
    for row in _sample(dataset):
        customer = str(dataset.customer_ids[row])
        as_of = _stamp(dataset.ts_ns[row])
        after = _window(customer, as_of, as_of + days * DAY)
        zone = ZoneInfo(customers.loc[customer, Col.TIMEZONE])
        local = [t.astimezone(zone) for t in after.loc[after[Col.EVENT_TYPE].isin(engagement),
                                                       Col.TS]]
        expected = np.zeros(168)
        expected[[t.weekday() * 24 + t.hour for t in local]] = 1.0
        assert np.array_equal(dataset.y[row], expected)
    profile = dataset.require_hour_profile()
    assert profile.shape == (len(dataset), 168)
    # the profile counts the same kind of events as the history feature, over the same 90 days
    history = dataset.X[:, dataset.feature_names.index(HISTORY_FEATURE)]
    assert np.array_equal(profile.sum(axis=1), history)


def test_conversion_rows_carry_the_action_and_a_purchase_label() -> None:
    dataset = small_world.datasets()[Task.CONVERSION]
    world = small_world.journeys()
    assert dataset.feature_names[-3:] == list(ACTION_COLUMNS)
    decisions = world.decisions.set_index([Col.CUSTOMER_ID, Col.TS])
    customers = world.customers.set_index(Col.CUSTOMER_ID)
    messages = list(world.catalog[Col.MESSAGE_ID])
    hours = small_world.CONFIG.attribution_hours
    for row in _sample(dataset):
        customer, as_of = str(dataset.customer_ids[row]), _stamp(dataset.ts_ns[row])
        decision = decisions.loc[(customer, as_of)]
        message, channel, local_hour = dataset.X[row, -3:]
        if pd.isna(decision[Col.MESSAGE_ID]):
            assert (message, channel, local_hour) == (-1, -1, -1)
        else:
            assert messages[int(message)] == decision[Col.MESSAGE_ID]
            assert CHANNELS[int(channel)].value == decision[Col.CHANNEL]
            zone = ZoneInfo(customers.loc[customer, Col.TIMEZONE])
            assert int(local_hour) == decision[Col.SEND_AT].astimezone(zone).hour
        after = _window(customer, as_of, as_of + pd.Timedelta(hours=hours))
        assert dataset.y[row] == float((after[Col.EVENT_TYPE] == EventType.PURCHASE).any())
    assert dataset.propensity is not None
    assert ((dataset.propensity > 0) & (dataset.propensity <= 1)).all()
    # the same label as the outcome attribution of the decision log, for every row
    outcomes = attribute_outcomes(world.decisions, world.events, hours)
    outcomes.index = pd.MultiIndex.from_arrays([world.decisions[Col.CUSTOMER_ID],
                                                ts_to_ns(world.decisions[Col.TS])])
    rows = pd.MultiIndex.from_arrays([dataset.customer_ids.astype(str), dataset.ts_ns])
    converted = outcomes[OutcomeCol.CONVERTED].reindex(rows).to_numpy(dtype=float)
    assert np.array_equal(dataset.y, converted)


def _truncated(journeys: Journeys, cutoff: pd.Timestamp) -> Journeys:
    events = journeys.events
    return dataclasses.replace(journeys, events=events[events[Col.TS] < cutoff].copy())


@pytest.mark.parametrize("task", [Task.CONVERSION, Task.SENDTIME])
def test_features_of_a_row_ignore_everything_after_its_time(task: Task) -> None:
    """Adding the events after t to the log changes no feature of a row as of t."""
    world, spec = small_world.journeys(), small_world.spec()
    config = small_world.CONFIG.model_copy(update={"max_rows": MaxRows(
        conversion=None, churn=None, channel=None, sendtime=None)})
    cutoff = world.events[Col.TS].quantile(0.7)
    full = build_dataset(task, world, spec, config)
    past_only = build_dataset(task, _truncated(world, cutoff), spec, config)
    keys = pd.MultiIndex.from_arrays([full.customer_ids, full.ts_ns])
    shared = pd.MultiIndex.from_arrays([past_only.customer_ids, past_only.ts_ns])
    rows_full = keys.get_indexer(shared)
    usable = (rows_full >= 0) & (past_only.ts_ns <= cutoff.value)
    assert usable.sum() > 100
    assert np.array_equal(full.X[rows_full[usable]], past_only.X[usable], equal_nan=True)
    if task is Task.SENDTIME:
        assert np.array_equal(full.require_hour_profile()[rows_full[usable]],
                              past_only.require_hour_profile()[usable])


def test_time_split_holds_out_the_latest_rows() -> None:
    dataset = small_world.datasets()[Task.CHANNEL]
    train, valid = time_split(dataset, 0.25)
    assert len(train) + len(valid) == len(dataset)
    assert train.ts_ns.max() < valid.ts_ns.min()
    assert 0.1 < len(valid) / len(dataset) < 0.5
    assert train.y.shape == (len(train), len(CHANNELS))
    with pytest.raises(ValueError, match="valid_fraction"):
        time_split(dataset, 1.0)
    one_time = dataset.subset(dataset.ts_ns == dataset.ts_ns[0])
    train, valid = time_split(one_time, 0.2)
    assert len(train) == 0 and len(valid) == len(one_time)


def test_row_subsample_is_seeded_and_capped() -> None:
    world, spec = small_world.journeys(), small_world.spec()

    def rows(seed: int) -> TaskDataset:
        config = small_world.CONFIG.model_copy(
            update={"seed": seed, "max_rows": MaxRows(churn=500)})
        return build_dataset(Task.CHURN, world, spec, config)

    first, again, other = rows(1), rows(1), rows(2)
    assert len(first) == 500
    assert np.array_equal(first.X, again.X, equal_nan=True)
    assert not np.array_equal(first.customer_ids, other.customer_ids)
    assert (np.diff(first.ts_ns) >= 0).all()  # still in time order


def test_one_pass_for_all_tasks_equals_one_task_at_a_time() -> None:
    world, spec = small_world.journeys(), small_world.spec()
    together = small_world.datasets()
    alone = build_dataset(Task.SENDTIME, world, spec, small_world.CONFIG)
    assert np.array_equal(together[Task.SENDTIME].X, alone.X, equal_nan=True)
    assert np.array_equal(together[Task.SENDTIME].y, alone.y)
    # a pipeline asking task by task after build_datasets gets the built set, not a rebuild
    built = build_datasets([Task.CHURN], world, spec, small_world.CONFIG)
    assert build_dataset(Task.CHURN, world, spec, small_world.CONFIG) is built[Task.CHURN]


def test_snapshots_start_where_the_event_log_becomes_dense() -> None:
    day = 86_400 * 10**9
    start = 1_700_006_400 * 10**9 // day * day
    sparse = start - np.arange(1, 200) * 3 * day  # one event every 3 days for 600 days
    dense = start + np.repeat(np.arange(60), 500) * day + 3_600 * 10**9
    assert dense_start(np.sort(np.concatenate([sparse, dense]))) == start
    datasets = small_world.datasets()
    first_snapshot = min(int(datasets[t].ts_ns.min()) for t in (Task.CHURN, Task.SENDTIME))
    log_start = int(small_world.journeys().events[Col.TS].min().value)
    assert first_snapshot >= log_start + small_world.CONFIG.snapshot_warmup_days * day


def test_unknown_config_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="extra"):
        DatasetConfig.model_validate({"churn_window": 30})
    with pytest.raises(ValueError, match="extra"):
        DatasetConfig.model_validate({"max_rows": {"churns": 10}})
