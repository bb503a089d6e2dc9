"""Point-in-time training data sets of the four tasks, and the split by time.

Every row is a (customer, as-of time) query. Its features come from ``features.pointintime``
(only events strictly before the as-of time), its label from what happened after it
(``training.labels``). Rows are ordered by as-of time; ``time_split`` holds out the latest ones.

- conversion: one row per logged decision (sends and ``no_action``), as of the decision time;
  features + the action (message code in catalog order, channel code in ``CHANNELS`` order, local
  send hour; ``-1`` for ``no_action``); label: a purchase within ``attribution_hours``.
- churn: snapshots every ``snapshot_every_days`` of every customer active (any activity event) in
  the ``churn_window_days`` before; label: no activity event in the next ``churn_window_days``
  (an active customer lapsing — customers already inactive for a whole window are churned, not
  at risk).
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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from features.contract import DEFAULT_ATTRIBUTION_HOURS
from features.definitions import ACTIVITY_PROFILE_DAYS, FeatureSpec
from features.io import Journeys
from features.pointintime import compute_features
from training.task_rows import TaskRows, prepare, task_rows
from training.tasks import Task

logger = logging.getLogger(__name__)

#: The feature counting a customer's recent engagement: the "enough history" rule reads it.
HISTORY_FEATURE: Final = f"engagements_{ACTIVITY_PROFILE_DAYS}d"
#: Row-aligned array fields of ``TaskDataset`` (split and subsampled together).
_ROW_FIELDS: Final = ("X", "y", "ts_ns", "customer_ids", "hour_profile", "propensity")


class MaxRows(BaseModel):
    """Most rows kept per task (a seeded uniform subsample); null keeps every row."""

    model_config = ConfigDict(extra="forbid")

    conversion: int | None = Field(default=200_000, ge=100)
    churn: int | None = Field(default=150_000, ge=100)
    channel: int | None = Field(default=60_000, ge=100)
    sendtime: int | None = Field(default=20_000, ge=100)


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
    snapshot_warmup_days: int = Field(
        default=28, ge=0,
        description="Days of event log before the first snapshot, so that windowed features "
        "(events in the last 1/7/30 days) describe complete windows.",
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


#: Data sets made by the last ``build_datasets``, handed out once each by ``build_dataset`` for
#: the same journeys, spec and configuration (so a pipeline that asks task by task after
#: building them together does not pay twice).
_built: dict[tuple[tuple[object, ...], Task], TaskDataset] = {}


def _build_key(journeys: Journeys, spec: FeatureSpec, config: DatasetConfig) -> tuple[object, ...]:
    return (id(journeys), id(journeys.events), id(journeys.decisions), id(spec),
            config.model_dump_json())


def build_datasets(
    tasks: Iterable[Task | str], journeys: Journeys, spec: FeatureSpec, config: DatasetConfig
) -> dict[Task, TaskDataset]:
    """The point-in-time data sets of several tasks, their features computed in one pass.

    Cheaper than one ``build_dataset`` per task: feature computation scans the whole event log
    once per call, whatever the number of rows.
    """
    _built.clear()
    datasets = _build(tasks, journeys, spec, config)
    key = _build_key(journeys, spec, config)
    _built.update({(key, task): dataset for task, dataset in datasets.items()})
    return datasets


def _build(
    tasks: Iterable[Task | str], journeys: Journeys, spec: FeatureSpec, config: DatasetConfig
) -> dict[Task, TaskDataset]:
    chosen = list(dict.fromkeys(Task(t) for t in tasks))
    prepared = prepare(journeys, spec)
    drafts = [task_rows(task, journeys, prepared, config) for task in chosen]
    codes = np.concatenate([d.codes for d in drafts]) if drafts else np.empty(0, np.int64)
    as_of = np.concatenate([d.as_of for d in drafts]) if drafts else np.empty(0, np.int64)
    features = compute_features(prepared.log, prepared.customers, spec, codes, as_of)
    datasets: dict[Task, TaskDataset] = {}
    start = 0
    for draft in drafts:
        stop = start + draft.codes.shape[0]
        datasets[draft.task] = _assemble(draft, features[start:stop], prepared.log.customer_ids,
                                         spec, config)
        start = stop
        logger.info("%s data set: %d rows x %d features", draft.task.value,
                    len(datasets[draft.task]), datasets[draft.task].X.shape[1])
    return datasets


def _assemble(
    draft: TaskRows, features: np.ndarray, customer_ids: np.ndarray, spec: FeatureSpec,
    config: DatasetConfig,
) -> TaskDataset:
    names = list(spec.names)
    X = features
    if draft.columns is not None:
        X = np.hstack([features, draft.columns])
        names += list(draft.column_names)
    return TaskDataset(
        task=draft.task, X=np.ascontiguousarray(X), y=draft.y, ts_ns=draft.as_of,
        feature_names=names, customer_ids=customer_ids[draft.codes], spec=spec,
        hour_profile=draft.extras.get("hour_profile"), propensity=draft.extras.get("propensity"),
        min_history_events=config.min_history_events,
    )


def build_dataset(
    task: Task | str, journeys: Journeys, spec: FeatureSpec, config: DatasetConfig
) -> TaskDataset:
    """The point-in-time data set of ``task`` from validated journeys (taken from the last
    ``build_datasets`` call when it built this task from the same inputs)."""
    task = Task(task)
    ready = _built.pop((_build_key(journeys, spec, config), task), None)
    if ready is not None:
        return ready
    return _build([task], journeys, spec, config)[task]
