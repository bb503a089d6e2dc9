"""Fit a task's model, or its baseline, on a training data set.

``TaskConfig`` is the validated ``models.<task>`` section of a training configuration: the
LightGBM hyper-parameters, calibration and seed. The data set supplies what is data, not choice:
feature names, the feature spec, and for channel and send time the "enough history" rule.
"""

from __future__ import annotations

import logging
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from features.definitions import FeatureGroup
from models.action_context import ActionContextConversionModel
from models.baselines import (
    ConversionRateBaseline,
    MostActiveHourBaseline,
    OpenRateChannelBaseline,
    RecencyChurnBaseline,
)
from models.channel import ChannelModel
from models.churn import ChurnModel
from models.sendtime import SendTimeModel
from training.datasets import TaskDataset
from training.tasks import Task

logger = logging.getLogger(__name__)

#: Customer features the send-time model reads next to the hour-of-week profile: when and how
#: much the customer is active. The profile carries the signal; a hundred more columns per
#: (customer, hour) pair would multiply training time for little.
SENDTIME_FEATURE_GROUPS: Final = (
    FeatureGroup.RECENCY, FeatureGroup.ACTIVITY_TIME, FeatureGroup.JOURNEY,
)


class TaskConfig(BaseModel):
    """How one task's model is trained (LightGBM underneath)."""

    model_config = ConfigDict(extra="forbid")

    n_estimators: int = Field(default=300, ge=1, description="Maximum number of boosting rounds.")
    num_leaves: int = Field(default=31, ge=2, description="Leaves per tree.")
    learning_rate: float = Field(default=0.1, gt=0.0, le=1.0, description="Shrinkage per round.")
    min_child_samples: int = Field(default=50, ge=1, description="Minimum rows in a leaf.")
    subsample: float = Field(default=0.8, gt=0.0, le=1.0, description="Row share bagged per round.")
    colsample_bytree: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Feature share per tree."
    )
    reg_lambda: float = Field(default=1.0, ge=0.0, description="L2 regularisation of leaf values.")
    early_stopping_rounds: int | None = Field(
        default=30, ge=1,
        description="Stop when the latest slice's log loss has not improved for this many rounds "
        "(null: always grow n_estimators trees).",
    )
    calibration: Literal["sigmoid", "isotonic", "none"] = Field(
        default="sigmoid",
        description="Calibration fit on the latest slice of the training window: sigmoid keeps "
        "scores strictly ordered (uplift between actions survives); isotonic is free-form.",
    )
    calibration_fraction: float = Field(
        default=0.2, ge=0.0, lt=1.0,
        description="Share of the training rows, the latest by as-of time, used for early "
        "stopping and calibration instead of growing trees.",
    )
    n_jobs: int = Field(
        default=2, ge=1, description="Training threads (scoring one customer uses 1)."
    )
    negative_hours: int = Field(
        default=12, ge=1, le=167,
        description="Send time only: hours without engagement sampled per training row.",
    )
    random_state: int = Field(default=0, ge=0, description="Seed of LightGBM and of every sample.")

    def estimator_params(self) -> dict[str, Any]:
        """Keyword arguments shared by the four estimators."""
        return self.model_dump(exclude={"negative_hours"})


#: Where a task learns best with other settings than the common defaults. They apply to the
#: settings a configuration leaves unset: churn labels drift with the length of history seen, so
#: smaller, more regularised trees generalise better to the later window.
TASK_DEFAULTS: Final[dict[Task, dict[str, Any]]] = {
    Task.CONVERSION: {},
    Task.CHURN: {"num_leaves": 15, "min_child_samples": 300, "learning_rate": 0.05},
    Task.CHANNEL: {},
    Task.SENDTIME: {},
}


def effective_task_config(task: Task | str, config: TaskConfig) -> TaskConfig:
    """``config`` with the task's defaults (:data:`TASK_DEFAULTS`) in the settings it left
    unset: what ``fit_task`` actually trains with (log this one)."""
    overrides = {
        name: value for name, value in TASK_DEFAULTS[Task(task)].items()
        if name not in config.model_fields_set
    }
    return config.model_copy(update=overrides) if overrides else config


def fit_task(task: Task | str, train: TaskDataset, config: TaskConfig) -> Any:
    """A fitted model for ``task`` on the training rows ``train`` (with the task's defaults for
    unset settings, see :func:`effective_task_config`)."""
    task = Task(task)
    config = effective_task_config(task, config)
    params = config.estimator_params()
    common: dict[str, Any] = {
        "ts_ns": train.ts_ns, "feature_names": train.feature_names, "spec": train.spec,
    }
    logger.info("fitting the %s model on %d rows", task.value, len(train.y))
    if task is Task.CONVERSION:
        return ActionContextConversionModel(**params).fit(train.X, train.y, **common)
    if task is Task.CHURN:
        return ChurnModel(**params).fit(train.X, train.y, **common)
    if task is Task.CHANNEL:
        return ChannelModel(
            **params, history_feature=train.history_feature,
            min_history_events=train.min_history_events,
        ).fit(train.X, train.y, **common)
    return SendTimeModel(
        **params, negative_hours=config.negative_hours,
        min_history_events=train.min_history_events,
        customer_features=sendtime_customer_features(train),
    ).fit(train.X, train.y, hour_profile=train.require_hour_profile(), **common)


def sendtime_customer_features(train: TaskDataset) -> list[str] | None:
    """The :data:`SENDTIME_FEATURE_GROUPS` features of the data set's spec (all without one)."""
    if train.spec is None:
        return None
    return [d.name for d in train.spec.definitions if d.group in SENDTIME_FEATURE_GROUPS]


def fit_baseline(task: Task | str, train: TaskDataset) -> Any:
    """The task's simple baseline, fit on the same training rows as the model."""
    task = Task(task)
    names = train.feature_names
    if task is Task.CONVERSION:
        return ConversionRateBaseline().fit(train.X, train.y, feature_names=names)
    if task is Task.CHURN:
        return RecencyChurnBaseline().fit(train.X, train.y, feature_names=names)
    if task is Task.CHANNEL:
        return OpenRateChannelBaseline(
            history_feature=train.history_feature, min_history_events=train.min_history_events
        ).fit(train.X, train.y, feature_names=names)
    return MostActiveHourBaseline().fit(
        train.X, train.y, hour_profile=train.require_hour_profile(), feature_names=names
    )
