"""Synthetic customer journeys with a ground-truth oracle (docs/simulator.md).

``simulate(config)`` returns the contract's four tables and the ground truth behind them;
``Oracle(truth, catalog)`` gives the true expected outcome of any action in any logged state.
"""

from features.simulator.catalog import CATEGORIES, default_catalog
from features.simulator.clock import local_hour, schedule_send_at
from features.simulator.config import (
    BehaviourParams,
    ResponseParams,
    SimulationConfig,
    StageRules,
)
from features.simulator.engine import simulate
from features.simulator.oracle import OUTCOME_COLUMNS, Oracle, Outcome
from features.simulator.policy import logging_propensity
from features.simulator.truth import (
    GroundTruth,
    Latent,
    Simulation,
    State,
    load_simulation_truth,
    write_simulation,
)

__all__ = [
    "CATEGORIES",
    "OUTCOME_COLUMNS",
    "BehaviourParams",
    "GroundTruth",
    "Latent",
    "Oracle",
    "Outcome",
    "ResponseParams",
    "Simulation",
    "SimulationConfig",
    "StageRules",
    "State",
    "default_catalog",
    "load_simulation_truth",
    "local_hour",
    "logging_propensity",
    "schedule_send_at",
    "simulate",
    "write_simulation",
]
