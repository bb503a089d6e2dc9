"""One small simulated world for the evaluation tests, built once per test session: a seeded
simulation written to disk, and the four models trained by the pipeline on its early window
into a fresh MLflow store (champion aliases set), so the later window is held out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.simulator import Simulation

#: Long enough for every task's windows (snapshot warm-up, 30-day churn labels) before the cut.
N_CUSTOMERS, DAYS, SEED = 500, 91, 10
HELD_OUT_SHARE = 0.25


@dataclass(frozen=True)
class EvaluationWorld:
    simulation: Simulation
    data_dir: Path
    tracking_uri: str
    cutoff: pd.Timestamp


_world: EvaluationWorld | None = None


def evaluation_world(root: Path) -> EvaluationWorld:
    """The shared world (``root`` is only used by the first caller)."""
    global _world
    if _world is not None:
        return _world
    from features.contract import Col
    from features.io import Journeys
    from features.simulator import SimulationConfig, simulate, write_simulation
    from training.config import load_config
    from training.pipeline import train

    config = SimulationConfig(n_customers=N_CUSTOMERS, days=DAYS, seed=SEED)
    simulation = simulate(config, progress=False)
    data_dir = write_simulation(simulation, root / "sim")
    journeys = simulation.journeys
    ts = pd.DatetimeIndex(journeys.decisions[Col.TS])
    cutoff = ts.min() + (ts.max() - ts.min()) * (1 - HELD_OUT_SHARE)
    early = Journeys(
        events=journeys.events[pd.DatetimeIndex(journeys.events[Col.TS]) < cutoff]
        .reset_index(drop=True),
        customers=journeys.customers, catalog=journeys.catalog,
        decisions=journeys.decisions[ts < cutoff].reset_index(drop=True),
    )
    uri = f"sqlite:///{root / 'mlflow.db'}"
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    train(early, load_config("fast"), tracking_uri=uri, progress=False,
          data_source=f"{data_dir} before {cutoff}")
    _world = EvaluationWorld(simulation, data_dir, uri, cutoff)
    return _world
