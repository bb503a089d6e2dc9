"""One seeded simulation shared by the simulator's test modules (built once per test session)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from features.simulator import Simulation, SimulationConfig, simulate

#: Big enough for tight statistical checks (~13k logged decisions), small enough for seconds;
#: its seven weeks span the spring daylight-saving changes of America, Europe and Australia.
STATS_SIZE = (2500, 49, 3)
STATS_START = datetime(2024, 2, 26, tzinfo=UTC)


@lru_cache(maxsize=4)
def simulation(n_customers: int = STATS_SIZE[0], days: int = STATS_SIZE[1],
               seed: int = STATS_SIZE[2], start: datetime = STATS_START) -> Simulation:
    config = SimulationConfig(n_customers=n_customers, days=days, seed=seed, start=start)
    return simulate(config, progress=False)


def tiny(seed: int = 5) -> Simulation:
    """A few hundred customers over two weeks: for format and determinism checks."""
    return simulation(300, 14, seed)
