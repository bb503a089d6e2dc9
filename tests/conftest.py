"""Fixtures shared across test packages.

``trained_store``: a small simulation trained once per session with ``training/configs/fast.yaml``
into a temporary MLflow SQLite store — every task registered as ``nextbest-<task>`` with aliases
``challenger`` and ``champion``. Tests that only read it (pipeline checks, pyfunc loading, the
analyst notebook, serving end to end) share it; tests that move aliases build their own store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Big enough for every task to have both classes in both windows, small enough for seconds.
SMALL_SIMULATION = {"n_customers": 600, "days": 56, "seed": 11}


@dataclass(frozen=True)
class TrainedStore:
    """A data folder and the MLflow store trained on it (``summary``: what ``train`` returned)."""

    data_dir: Path
    tracking_uri: str
    summary: object  # training.pipeline.TrainSummary; typed loosely to keep imports lazy


@pytest.fixture(scope="session")
def small_simulation_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded simulation written in the contract's layout (Parquet)."""
    from features.simulator import SimulationConfig, simulate, write_simulation

    simulation = simulate(SimulationConfig(**SMALL_SIMULATION), progress=False)
    return write_simulation(simulation, tmp_path_factory.mktemp("journeys") / "sim")


@pytest.fixture(scope="session")
def trained_store(
    small_simulation_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> TrainedStore:
    """Every task trained once on ``small_simulation_dir`` into a fresh SQLite store."""
    from features.io import load_journeys
    from training.config import load_config
    from training.pipeline import train

    store = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    summary = train(
        load_journeys(small_simulation_dir), load_config("fast"), tracking_uri=uri,
        progress=False, data_source=str(small_simulation_dir),
    )
    return TrainedStore(data_dir=small_simulation_dir, tracking_uri=uri, summary=summary)
