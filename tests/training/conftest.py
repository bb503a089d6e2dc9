"""Fixtures of the training tests that change a registry or train odd data.

They work in the session's ``trained_store`` (one MLflow store is cheaper than two) but under
their own experiment and registered-model names (``gatetest-<task>``), so the ``nextbest-<task>``
champions other tests rely on never move.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from tests.conftest import TrainedStore
from training.cli import app
from training.config import packaged_config_path

GATE_PREFIX = "gatetest"


def run_cli(*args: object) -> Result:
    """Invoke ``nextbest`` in-process, as a user would from the shell."""
    return CliRunner().invoke(app, [str(a) for a in args])


def json_summary(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = (
            _merge(merged.get(key, {}), value) if isinstance(value, dict) else value
        )
    return merged


def fast_variant(path: Path, changes: dict[str, Any]) -> Path:
    """``training/configs/fast.yaml`` with ``changes`` merged in, written to ``path``."""
    base = yaml.safe_load(packaged_config_path("fast").read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump(_merge(base, changes)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def scratch_tracking_uri(trained_store: TrainedStore) -> str:
    return trained_store.tracking_uri


@pytest.fixture(scope="session")
def gate_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fast.yaml registering ``gatetest-<task>`` in experiment ``gatetest``."""
    return fast_variant(tmp_path_factory.mktemp("configs") / "gate.yaml",
                        {"experiment": GATE_PREFIX, "registry_prefix": GATE_PREFIX})


@pytest.fixture(scope="session")
def crippled_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``gate_config`` with a churn model too weak to beat any decent champion: one stump."""
    stump = {"n_estimators": 1, "num_leaves": 2, "colsample_bytree": 0.05,
             "early_stopping_rounds": None}
    return fast_variant(
        tmp_path_factory.mktemp("configs") / "crippled.yaml",
        {"experiment": GATE_PREFIX, "registry_prefix": GATE_PREFIX, "models": {"churn": stump}},
    )
