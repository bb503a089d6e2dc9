"""docs/models.md documents every setting and metric name the code has."""

from __future__ import annotations

from pathlib import Path

from training.datasets import DatasetConfig, MaxRows
from training.fit import TaskConfig
from training.metrics import primary_metric
from training.tasks import Task

DOC = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    for model in (DatasetConfig, TaskConfig):
        for name in model.model_fields:
            assert f"`{name}`" in DOC, f"{model.__name__}.{name} missing from docs/models.md"
    assert "max_rows.<task>" in DOC and all(task in MaxRows.model_fields for task in Task)


def test_every_metric_name_and_primary_metric_is_documented() -> None:
    for name in ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "hit_at_1", "hit_at_3",
                 "coverage", "n_rows", "positive_rate", "mean_prediction"):
        assert f"`{name}`" in DOC, name
    for task in Task:
        assert f"`{primary_metric(task)[0]}`" in DOC
