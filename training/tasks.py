"""The four learning tasks of nextbest, named once for datasets, models, metrics and MLflow."""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    """A model nextbest trains; the value is its name in configs, MLflow and the CLI."""

    CONVERSION = "conversion"
    CHURN = "churn"
    CHANNEL = "channel"
    SENDTIME = "sendtime"


TASKS: tuple[Task, ...] = tuple(Task)
