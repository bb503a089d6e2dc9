"""Fixtures of the training tests that change a registry (so they keep off ``trained_store``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from training.cli import app


def run_cli(*args: str) -> Result:
    """Invoke ``nextbest`` in-process, as a user would from the shell."""
    return CliRunner().invoke(app, [str(a) for a in args])


def json_summary(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.fixture(scope="session")
def scratch_tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh MLflow store shared by the tests that move aliases or train odd data."""
    return f"sqlite:///{tmp_path_factory.mktemp('scratch-mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def crippled_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fast.yaml with a churn model too weak to beat any decent champion: one stump."""
    path = tmp_path_factory.mktemp("configs") / "crippled.yaml"
    path.write_text(
        "seed: 7\nvalid_fraction: 0.25\n"
        "dataset:\n  max_rows:\n    churn: 20000\n"
        "models:\n  churn:\n    n_estimators: 1\n    num_leaves: 2\n    colsample_bytree: 0.05\n"
        "    early_stopping_rounds: null\n",
        encoding="utf-8",
    )
    return path
