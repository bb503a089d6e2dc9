"""Point-in-time training data sets of the four tasks, and the split by time.

Every row is a (customer, as-of time) query. Its features come from ``features.pointintime``
(only events strictly before the as-of time), its label from what happened after it
(``training.labels``). Rows are ordered by as-of time; ``time_split`` holds out the latest ones.

- conversion: one row per logged decision (sends and ``no_action``), as of the decision time;
  features + the action (message code in catalog order, channel code in ``CHANNELS`` order, local
  send hour; ``-1`` for ``no_action``); label: a purchase within ``attribution_hours``.
- churn: snapshots every ``snapshot_every_days`` of every signed-up customer; label: no activity
  event in the next ``churn_window_days``.
- channel: same snapshots; label (rows x channels): an engagement event on the channel within
  ``channel_horizon_days``.
- sendtime: same snapshots; label (rows x 168): the local hours of the week with an engagement
  event within ``sendtime_horizon_days``; plus the customer's hour-of-week profile.

Snapshots whose label window would run past the end of the data are not made (their labels
would be truncated); neither are decisions whose attribution window would.
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from features.contract import DEFAULT_ATTRIBUTION_HOURS, Col
from features.customers import CustomerTable
from features.definitions import ACTIVITY_PROFILE_DAYS, FeatureSpec
from features.eventlog import CHANNEL_CODE, NS_PER_DAY, NS_PER_HOUR, EventLog, ts_to_ns
from features.io import DataValidationError, Journeys, Problem
from features.pointintime import compute_features, hour_profile
from features.timezones import local_ns
from models.conversion import ACTION_COLUMNS, NO_ACTION_CODE
from training.labels import activity_counts, channel_engagement, engaged_hours, purchase_counts
from training.tasks import Task

logger = logging.getLogger(__name__)

#: The feature counting a customer's recent engagement: the "enough history" rule reads it.
HISTORY_FEATURE: Final = f"engagements_{ACTIVITY_PROFILE_DAYS}d"
#: The event log counts as dense from the first day whose trailing-week mean reaches this share
#: of the busiest week's: sparse back-filled history before it makes no snapshots.
DENSE_SHARE: Final = 0.1
#: Row-aligned array fields of ``TaskDataset`` (split and subsampled together).
_ROW_FIELDS: Final = ("X", "y", "ts_ns", "customer_ids", "hour_profile", "propensity")


class MaxRows(BaseModel):
    """Most rows kept per task (a seeded uniform subsample); null keeps every row."""

    model_config = ConfigDict(extra="forbid")

    conversion: int | None = Field(default=300_000, ge=100)
    churn: int | None = Field(default=150_000, ge=100)
    channel: int | None = Field(default=150_000, ge=100)
    sendtime: int | None = Field(default=40_000, ge=100)


class DatasetConfig(BaseModel):
    """How the four data sets are cut from the journeys."""

    model_config = ConfigDict(extra="forbid")

    attribution_hours: int = Field(
        default=DEFAULT_ATTRIBUTION_HOURS, ge=1,
        description="A purchase this many hours after a decision counts as its conversion.",
    )
    churn_window_days: int = Field(
        default=30, ge=1, description="Churn = no activity for this long."
    )
    snapshot_every_days: int = Field(
        default=7, ge=1, description="Days between snapshot as-of times."
    )
    channel_horizon_days: int = Field(default=14, ge=1, description="Channel label window.")
    sendtime_horizon_days: int = Field(default=7, ge=1, description="Send-time label window.")
    min_history_events: int = Field(
        default=3, ge=0,
        description=f"Fewer {HISTORY_FEATURE} than this: channel says 'not enough data' and "
        "send time falls back to the population profile.",
    )
    snapshot_start: datetime | None = Field(
        default=None,
        description="First day snapshots may start from; null: where the event log becomes "
        "dense (see docs/models.md).",
    )
    max_rows: MaxRows = Field(default_factory=MaxRows)
    seed: int = Field(default=0, ge=0, description="Seed of the row subsample.")


@dataclass
class TaskDataset:
    """Rows of one task, ordered by as-of time; ``X`` columns are ``feature_names``."""

    task: Task
    X: np.ndarray  # (n, d) float64
    y: np.ndarray  # (n,) or (n, channels) or (n, 168) float64 0/1
    ts_ns: np.ndarray  # (n,) int64 as-of time (UTC ns)
    feature_names: list[str]
    customer_ids: np.ndarray  # (n,) object
    spec: FeatureSpec | None = None
    hour_profile: np.ndarray | None = None  # sendtime: (n, 168) engagement counts before as-of
    propensity: np.ndarray | None = None  # conversion: logging policy's propensity per decision
    history_feature: str | None = HISTORY_FEATURE
    min_history_events: int = 3

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def subset(self, rows: np.ndarray) -> TaskDataset:
        """The data set restricted to ``rows`` (indices or a boolean mask)."""
        changes = {
            name: getattr(self, name)[rows]
            for name in _ROW_FIELDS if getattr(self, name) is not None
        }
        return dataclasses.replace(self, **changes)

    def require_hour_profile(self) -> np.ndarray:
        if self.hour_profile is None:
            raise ValueError(f"the {self.task.value} data set has no hour_profile")
        return self.hour_profile


def time_split(dataset: TaskDataset, valid_fraction: float) -> tuple[TaskDataset, TaskDataset]:
    """(train, valid): valid holds the latest as-of times (about ``valid_fraction`` of rows),
    train every row strictly earlier — never a random split.

    Rows sharing the cut-off time all go to valid; when every row shares one time, train is
    empty.
    """
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be between 0 and 1, got {valid_fraction}")
    if len(dataset) == 0:
        return dataset, dataset
    cutoff = np.quantile(dataset.ts_ns, 1.0 - valid_fraction, method="higher")
    valid = dataset.ts_ns >= cutoff
    return dataset.subset(~valid), dataset.subset(valid)


@dataclass(frozen=True)
class _Prepared:
    """Arrays every task reads, built once per journeys object."""

    log: EventLog
    customers: CustomerTable
    spec: FeatureSpec
    message_ids: tuple[str, ...]
    dense_ns: int
    last_ns: int


_cache: dict[str, tuple[weakref.ref[Journeys], tuple[int, ...], _Prepared]] = {}


def _prepare(journeys: Journeys, spec: FeatureSpec) -> _Prepared:
    """The event log of the journeys, reused while the same journeys and spec are passed."""
    identity = (id(journeys.events), id(journeys.customers), id(journeys.catalog),
                id(journeys.decisions), id(spec))
    cached = _cache.get("last")
    if cached is not None and cached[0]() is journeys and cached[1] == identity:
        return cached[2]
    message_ids = tuple(str(m) for m in journeys.catalog[Col.MESSAGE_ID])
    customers = CustomerTable.from_frame(journeys.customers, spec)
    log = EventLog.from_frame(
        journeys.events, message_ids, customer_ids=list(customers.customer_ids)
    )
    times = [log.ts_ns]
    if len(journeys.decisions):
        times.append(ts_to_ns(journeys.decisions[Col.TS]))
    every = np.concatenate(times)
    if every.size == 0:
        raise DataValidationError([Problem("events", Col.TS, "at least one event or decision")])
    prepared = _Prepared(log, customers, spec, message_ids, dense_start(log.ts_ns),
                         int(every.max()))
    _cache["last"] = (weakref.ref(journeys), identity, prepared)
    logger.info("event log: %d events of %d customers", log.n_events, len(customers))
    return prepared


def dense_start(ts_ns: np.ndarray) -> int:
    """Start (UTC midnight) of the first day whose trailing 7-day mean of events reaches
    :data:`DENSE_SHARE` of the busiest 7 days' mean.

    Exports and the simulator often carry a thin back-filled history (a customer's last
    purchase, months before the log proper starts); snapshots there would describe customers by
    what is missing from the export, not by what they did.
    """
    if ts_ns.size == 0:
        return 0
    day0 = int(ts_ns.min()) // NS_PER_DAY
    daily = np.bincount(ts_ns // NS_PER_DAY - day0).astype(np.float64)
    weekly = np.convolve(daily, np.ones(7) / 7.0)[: daily.size]
    first = int(np.argmax(weekly >= DENSE_SHARE * weekly.max()))
    return (day0 + first) * NS_PER_DAY


def _subsample(n_rows: int, max_rows: int | None, seed: int) -> np.ndarray:
    if max_rows is None or n_rows <= max_rows:
        return np.arange(n_rows)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=max_rows, replace=False))


def snapshot_queries(
    prepared: _Prepared, horizon_days: int, config: DatasetConfig, max_rows: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(customer codes, as-of ns) of every signed-up customer at every snapshot time whose
    ``horizon_days`` label window ends inside the data, subsampled to ``max_rows``."""
    day0 = prepared.dense_ns
    if config.snapshot_start is not None:
        day0 = (ts_to_ns(pd.DatetimeIndex([pd.Timestamp(config.snapshot_start)]))[0]
                // NS_PER_DAY) * NS_PER_DAY
    step = config.snapshot_every_days * NS_PER_DAY
    last_start = prepared.last_ns - horizon_days * NS_PER_DAY
    times = np.arange(day0 + step, last_start + 1, step, dtype=np.int64)
    signup = prepared.customers.signup_ns
    per_time = [np.flatnonzero(signup < t) for t in times]
    codes = np.concatenate(per_time) if per_time else np.empty(0, np.int64)
    as_of = np.repeat(times, [len(c) for c in per_time]).astype(np.int64)
    keep = _subsample(codes.shape[0], max_rows, config.seed)
    logger.info("%d snapshot times, %d (customer, time) rows, %d kept",
                times.size, codes.shape[0], keep.size)
    return codes[keep].astype(np.int64), as_of[keep]


def _dataset(
    task: Task, prepared: _Prepared, codes: np.ndarray, as_of: np.ndarray, y: np.ndarray,
    config: DatasetConfig, **extras: object,
) -> TaskDataset:
    X = compute_features(prepared.log, prepared.customers, prepared.spec, codes, as_of)
    return TaskDataset(
        task=task, X=X, y=y, ts_ns=as_of, feature_names=list(prepared.spec.names),
        customer_ids=prepared.log.customer_ids[codes], spec=prepared.spec,
        min_history_events=config.min_history_events, **extras,  # type: ignore[arg-type]
    )


def _window_end(as_of: np.ndarray, days: int) -> np.ndarray:
    return as_of + days * NS_PER_DAY


def _action_codes(
    prepared: _Prepared, decisions: pd.DataFrame, codes: np.ndarray
) -> np.ndarray:
    """(n, 3) message code, channel code and local send hour; -1 throughout for no_action."""
    message_code = {m: i for i, m in enumerate(prepared.message_ids)}
    message = np.array(decisions[Col.MESSAGE_ID].map(message_code).fillna(NO_ACTION_CODE),
                       dtype=np.float64)
    channel = np.array(decisions[Col.CHANNEL].map(CHANNEL_CODE).fillna(NO_ACTION_CODE),
                       dtype=np.float64)
    send_at = decisions[Col.SEND_AT].fillna(decisions[Col.TS])
    tables = prepared.customers
    local = local_ns(ts_to_ns(send_at), tables.timezone[codes], tables.timezones)
    hour = ((local // NS_PER_HOUR) % 24).astype(np.float64)
    no_action = (message < 0) | (channel < 0)
    hour[no_action] = NO_ACTION_CODE
    message[no_action] = NO_ACTION_CODE
    channel[no_action] = NO_ACTION_CODE
    return np.column_stack([message, channel, hour])


def _conversion(journeys: Journeys, prepared: _Prepared, config: DatasetConfig) -> TaskDataset:
    decisions = journeys.decisions
    as_of_all = ts_to_ns(decisions[Col.TS])
    window = config.attribution_hours * NS_PER_HOUR
    complete = np.flatnonzero(as_of_all + window <= prepared.last_ns)
    order = complete[np.argsort(as_of_all[complete], kind="stable")]
    keep = order[_subsample(order.size, config.max_rows.conversion, config.seed)]
    frame = decisions.iloc[keep]
    codes = pd.Index(prepared.log.customer_ids).get_indexer(frame[Col.CUSTOMER_ID].astype(str))
    as_of = as_of_all[keep]
    y = (purchase_counts(prepared.log, codes, as_of, as_of + window) > 0).astype(np.float64)
    dataset = _dataset(Task.CONVERSION, prepared, codes, as_of, y, config,
                       propensity=frame[Col.PROPENSITY].to_numpy(dtype=np.float64))
    dataset.X = np.hstack([dataset.X, _action_codes(prepared, frame, codes)])
    dataset.feature_names = [*dataset.feature_names, *ACTION_COLUMNS]
    logger.info("conversion: %d decisions (of %d with a complete window), conversion rate %.4f",
                keep.size, complete.size, float(y.mean()) if y.size else float("nan"))
    return dataset


def _churn(prepared: _Prepared, config: DatasetConfig) -> TaskDataset:
    days = config.churn_window_days
    codes, as_of = snapshot_queries(prepared, days, config, config.max_rows.churn)
    active = activity_counts(prepared.log, codes, as_of, _window_end(as_of, days))
    return _dataset(Task.CHURN, prepared, codes, as_of, (active == 0).astype(np.float64), config)


def _channel(prepared: _Prepared, config: DatasetConfig) -> TaskDataset:
    days = config.channel_horizon_days
    codes, as_of = snapshot_queries(prepared, days, config, config.max_rows.channel)
    y = channel_engagement(prepared.log, codes, as_of, _window_end(as_of, days))
    return _dataset(Task.CHANNEL, prepared, codes, as_of, y, config)


def _sendtime(prepared: _Prepared, config: DatasetConfig) -> TaskDataset:
    days = config.sendtime_horizon_days
    codes, as_of = snapshot_queries(prepared, days, config, config.max_rows.sendtime)
    y = engaged_hours(prepared.log, prepared.customers, codes, as_of, _window_end(as_of, days))
    profile = hour_profile(prepared.log, prepared.customers, codes, as_of)
    return _dataset(Task.SENDTIME, prepared, codes, as_of, y, config, hour_profile=profile)


def build_dataset(
    task: Task | str, journeys: Journeys, spec: FeatureSpec, config: DatasetConfig
) -> TaskDataset:
    """The point-in-time data set of ``task`` from validated journeys."""
    task = Task(task)
    prepared = _prepare(journeys, spec)
    if task is Task.CONVERSION:
        dataset = _conversion(journeys, prepared, config)
    elif task is Task.CHURN:
        dataset = _churn(prepared, config)
    elif task is Task.CHANNEL:
        dataset = _channel(prepared, config)
    else:
        dataset = _sendtime(prepared, config)
    logger.info("%s data set: %d rows x %d features", task.value, len(dataset),
                dataset.X.shape[1])
    return dataset
