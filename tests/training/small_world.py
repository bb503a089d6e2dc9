"""One small seeded simulation and its four data sets, shared by the dataset and model tests
(built once per test session)."""

from __future__ import annotations

from functools import lru_cache

from features.contract import Col
from features.definitions import FeatureSpec
from features.io import Journeys
from tests.features.simulated import simulation
from training.datasets import DatasetConfig, MaxRows, TaskDataset, build_datasets
from training.tasks import Task

#: 2,000 customers over 60 days; snapshots every 4 days after a 3-week warm-up so that even the
#: churn task (a 21-day window here) has several snapshot times to train and validate on; the
#: channel and send-time rows capped so that fitting and scoring stay fast.
SIZE = (2000, 60, 3)
CONFIG = DatasetConfig(
    snapshot_every_days=4, snapshot_warmup_days=21, churn_window_days=21,
    max_rows=MaxRows(channel=8000, sendtime=6000),
)


def journeys() -> Journeys:
    return simulation(*SIZE).journeys


@lru_cache(maxsize=1)
def spec() -> FeatureSpec:
    world = journeys()
    return FeatureSpec.from_customers(world.customers,
                                      message_ids=list(world.catalog[Col.MESSAGE_ID]))


@lru_cache(maxsize=1)
def datasets() -> dict[Task, TaskDataset]:
    return build_datasets(list(Task), journeys(), spec(), CONFIG)
