"""The rows of each task's data set — (customer, as-of time) queries with their labels — before
any feature is computed.

``training.datasets`` gathers the rows of every task it is asked for and computes all their
features in one ``compute_features`` pass (its cost is dominated by one scan of the whole event
log, however many queries ride on it).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from features.contract import Col
from features.customers import CustomerTable
from features.definitions import FeatureSpec
from features.eventlog import CHANNEL_CODE, NS_PER_DAY, NS_PER_HOUR, EventLog, ts_to_ns
from features.io import DataValidationError, Journeys, Problem
from features.pointintime import hour_profile
from features.timezones import local_ns
from models.conversion import ACTION_COLUMNS, NO_ACTION_CODE
from training.labels import activity_counts, channel_engagement, engaged_hours, purchase_counts
from training.tasks import Task

if TYPE_CHECKING:
    from training.datasets import DatasetConfig

logger = logging.getLogger(__name__)

#: The event log counts as dense from the first day whose trailing-week mean reaches this share
#: of the busiest week's: sparse back-filled history before it makes no snapshots.
DENSE_SHARE: Final = 0.1


@dataclass(frozen=True)
class Prepared:
    """Arrays every task reads, built once per journeys object."""

    log: EventLog
    customers: CustomerTable
    spec: FeatureSpec
    message_ids: tuple[str, ...]
    dense_ns: int
    last_ns: int


@dataclass
class TaskRows:
    """One task's queries and labels; ``columns`` (named ``column_names``) follow the features."""

    task: Task
    codes: np.ndarray
    as_of: np.ndarray
    y: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    columns: np.ndarray | None = None
    column_names: tuple[str, ...] = ()


_cache: dict[str, tuple[weakref.ref[Journeys], tuple[int, ...], Prepared]] = {}


def prepare(journeys: Journeys, spec: FeatureSpec) -> Prepared:
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
    prepared = Prepared(log, customers, spec, message_ids, dense_start(log.ts_ns),
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
    prepared: Prepared,
    horizon_days: int,
    config: DatasetConfig,
    max_rows: int | None,
    eligible: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(customer codes, as-of ns) of every signed-up customer at every snapshot time whose
    ``horizon_days`` label window ends inside the data (and, if given, for whom ``eligible``
    is true), subsampled to ``max_rows``; ordered by as-of time."""
    day0 = prepared.dense_ns
    if config.snapshot_start is not None:
        start = pd.Timestamp(config.snapshot_start)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        day0 = (int(start.value) // NS_PER_DAY) * NS_PER_DAY
    step = config.snapshot_every_days * NS_PER_DAY
    first = day0 + max(config.snapshot_warmup_days * NS_PER_DAY, step)
    last_start = prepared.last_ns - horizon_days * NS_PER_DAY
    times = np.arange(first, last_start + 1, step, dtype=np.int64)
    signup = prepared.customers.signup_ns
    per_time = [np.flatnonzero(signup < t) for t in times]
    codes = np.concatenate(per_time) if per_time else np.empty(0, np.int64)
    as_of = np.repeat(times, [len(c) for c in per_time]).astype(np.int64)
    if eligible is not None and codes.size:
        chosen = eligible(codes, as_of)
        codes, as_of = codes[chosen], as_of[chosen]
    keep = _subsample(codes.shape[0], max_rows, config.seed)
    logger.info("%d snapshot times, %d (customer, time) rows, %d kept",
                times.size, codes.shape[0], keep.size)
    return codes[keep].astype(np.int64), as_of[keep]


def _window_end(as_of: np.ndarray, days: int) -> np.ndarray:
    return as_of + days * NS_PER_DAY


def action_codes(prepared: Prepared, decisions: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
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


def conversion_rows(journeys: Journeys, prepared: Prepared, config: DatasetConfig) -> TaskRows:
    """One row per logged decision whose attribution window ends inside the data."""
    decisions = journeys.decisions
    as_of_all = ts_to_ns(decisions[Col.TS])
    window = config.attribution_hours * NS_PER_HOUR
    complete = np.flatnonzero(as_of_all + window <= prepared.last_ns)
    order = complete[np.argsort(as_of_all[complete], kind="stable")]
    keep = order[_subsample(order.size, config.max_rows.conversion, config.seed)]
    frame = decisions.iloc[keep]
    codes = pd.Index(prepared.log.customer_ids).get_indexer(frame[Col.CUSTOMER_ID].astype(str))
    codes = codes.astype(np.int64)
    as_of = as_of_all[keep]
    y = (purchase_counts(prepared.log, codes, as_of, as_of + window) > 0).astype(np.float64)
    logger.info("conversion: %d decisions (of %d with a complete window), conversion rate %.4f",
                keep.size, complete.size, float(y.mean()) if y.size else float("nan"))
    return TaskRows(
        Task.CONVERSION, codes, as_of, y,
        extras={"propensity": frame[Col.PROPENSITY].to_numpy(dtype=np.float64)},
        columns=action_codes(prepared, frame, codes), column_names=ACTION_COLUMNS,
    )


def churn_rows(prepared: Prepared, config: DatasetConfig) -> TaskRows:
    """Snapshots of customers active in the previous window; 1 = inactive the next one."""
    days = config.churn_window_days

    def active_before(codes: np.ndarray, as_of: np.ndarray) -> np.ndarray:
        return activity_counts(prepared.log, codes, _window_end(as_of, -days), as_of) > 0

    codes, as_of = snapshot_queries(prepared, days, config, config.max_rows.churn, active_before)
    active = activity_counts(prepared.log, codes, as_of, _window_end(as_of, days))
    return TaskRows(Task.CHURN, codes, as_of, (active == 0).astype(np.float64))


def channel_rows(prepared: Prepared, config: DatasetConfig) -> TaskRows:
    """Snapshots; (rows, channels) 1 = engaged on the channel within the horizon."""
    days = config.channel_horizon_days
    codes, as_of = snapshot_queries(prepared, days, config, config.max_rows.channel)
    y = channel_engagement(prepared.log, codes, as_of, _window_end(as_of, days))
    return TaskRows(Task.CHANNEL, codes, as_of, y)


def sendtime_rows(prepared: Prepared, config: DatasetConfig) -> TaskRows:
    """Snapshots; (rows, 168) 1 = engaged in that local hour of the week within the horizon,
    plus the hour-of-week profile of the history before."""
    days = config.sendtime_horizon_days
    codes, as_of = snapshot_queries(prepared, days, config, config.max_rows.sendtime)
    y = engaged_hours(prepared.log, prepared.customers, codes, as_of, _window_end(as_of, days))
    profile = hour_profile(prepared.log, prepared.customers, codes, as_of)
    return TaskRows(Task.SENDTIME, codes, as_of, y, extras={"hour_profile": profile})


def task_rows(
    task: Task, journeys: Journeys, prepared: Prepared, config: DatasetConfig
) -> TaskRows:
    if task is Task.CONVERSION:
        return conversion_rows(journeys, prepared, config)
    if task is Task.CHURN:
        return churn_rows(prepared, config)
    if task is Task.CHANNEL:
        return channel_rows(prepared, config)
    return sendtime_rows(prepared, config)
