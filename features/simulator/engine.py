"""``simulate``: the day loop, vectorised over customers, and the tables it produces.

Each simulated day is every customer's own local day. In order: pending changes before the day
take effect; churn is drawn from the daily hazard; organic sessions are drawn; due decision
points are taken (seeing exactly the activity before them); support contacts are drawn; the
day's activity is recorded. DataFrames are built once, at the end.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import pyarrow as pa
from rich.progress import track

from features.contract import CHANNELS, STAGES, Col
from features.io import Journeys
from features.simulator.catalog import CatalogArrays, default_catalog
from features.simulator.clock import SECONDS_PER_DAY, to_timestamps, utc_offsets
from features.simulator.config import SimulationConfig
from features.simulator.decisions import decide, first_partial_windows
from features.simulator.events import digits, fixed_width_ids
from features.simulator.oracle import Oracle
from features.simulator.organic import draw_sessions, draw_support_contacts, history_events
from features.simulator.population import draw_population
from features.simulator.truth import GroundTruth, Simulation
from features.simulator.vocab import lookup, to_str_series
from features.simulator.world import Snapshot, World, states_frame

logger = logging.getLogger(__name__)

#: Days of UTC offsets kept beyond the horizon (sends and windows reach past the last day).
_OFFSET_MARGIN_DAYS = 3


def _empty_states(config: SimulationConfig, catalog: CatalogArrays) -> pd.DataFrame:
    return states_frame(config.start, pd.Series([], dtype="str"), np.empty(0),
                        Snapshot.empty(len(CHANNELS), catalog.n_messages), catalog.message_ids)


def _step(world: World, day: int) -> None:
    config, pop, rng = world.config, world.pop, world.rng
    start = world.day_start(day)
    world.apply_pending(slice(None), start)
    stage = world.stage_at(slice(None), start)

    alive = (world.churn_at > start) & (pop.signup <= start)
    hazard_by_stage = np.array([config.behaviour.churn_hazard[s] for s in STAGES])
    contact = (world.hazard_from <= start) & (start < world.hazard_until)
    hazard = (hazard_by_stage[stage] * np.exp(pop.churn_propensity) * config.churn_scale
              * np.where(contact, world.hazard_ratio, 1.0))
    churns = np.flatnonzero(alive & (rng.random(pop.size) < -np.expm1(-hazard)))
    if len(churns):
        # a customer with a purchase or an engagement still to come churns after it
        churn_time = start[churns] + rng.uniform(0.0, SECONDS_PER_DAY, len(churns))
        world.churn_at[churns] = np.maximum(churn_time, world.latest_pending(churns))

    weekday = (config.start.weekday() + day) % 7
    events = draw_sessions(pop, config.behaviour, start, weekday, stage, world.churn_at,
                           world.buffer, rng)
    due = np.flatnonzero((world.next_decision < start + SECONDS_PER_DAY)
                         & (world.next_decision < world.horizon_end))
    if len(due):
        decide(world, due, world.next_decision[due], events)
    alive = (world.churn_at > start + SECONDS_PER_DAY) & (pop.signup <= start)
    draw_support_contacts(pop, config.behaviour, start, alive,
                          world.recently_contacted(start, 3.0), world.buffer, rng)
    world.apply_day_events(events)


def _decisions_frame(world: World, order: np.ndarray, decision_ids: pa.Array,
                     customer_ids: pa.Array) -> tuple[pd.DataFrame, pd.DataFrame]:
    log, config = world.log, world.config

    def column(chunks: list[np.ndarray], dtype: type) -> np.ndarray:
        return (np.concatenate(chunks) if chunks else np.empty(0, dtype=dtype))[order]

    customer = column(log.customer, np.int64)
    ts = column(log.ts, np.float64)
    message = column(log.message, np.int64)
    channel = column(log.channel, np.int64)
    decisions = pd.DataFrame(
        {
            Col.DECISION_ID: to_str_series(decision_ids),
            Col.CUSTOMER_ID: to_str_series(customer_ids.take(pa.array(customer))),
            Col.TS: to_timestamps(config.start, ts),
            Col.MESSAGE_ID: lookup(world.catalog.message_ids, message),
            Col.CHANNEL: lookup([c.value for c in CHANNELS], channel),
            Col.SEND_AT: to_timestamps(config.start, column(log.send_at, np.float64)),
            Col.PROPENSITY: column(log.propensity, np.float64),
            Col.POLICY: pd.Series(np.full(len(order), config.policy_name, dtype=object),
                                  dtype="str"),
        }
    )
    snapshot = Snapshot.concat(log.states, len(CHANNELS), world.catalog.n_messages).take(order)
    states = states_frame(config.start, decisions[Col.CUSTOMER_ID], ts, snapshot,
                          world.catalog.message_ids)
    states.insert(0, Col.DECISION_ID, decisions[Col.DECISION_ID])
    return decisions, states


def _finish(world: World, catalog: pd.DataFrame, latent: pd.DataFrame) -> Simulation:
    log, config = world.log, world.config
    ts = np.concatenate(log.ts) if log.ts else np.empty(0)
    order = np.argsort(ts, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    decision_ids = fixed_width_ids("d", np.arange(len(order)), digits(len(order)))
    customer_ids = pa.array(world.pop.customer_ids.tolist(), type=pa.string())
    decisions, states = _decisions_frame(world, order, decision_ids, customer_ids)
    events = world.buffer.to_frame(config.start, customer_ids, world.catalog.message_ids,
                                   decision_ids, rank, world.horizon_end)
    journeys = Journeys(events=events, customers=world.pop.customers_frame(config),
                        catalog=catalog, decisions=decisions)
    return Simulation(journeys=journeys,
                      truth=GroundTruth(latent=latent, decision_states=states, config=config))


def simulate(config: SimulationConfig | None = None, progress: bool = True) -> Simulation:
    """Simulate ``config.n_customers`` customers over ``config.days`` days (deterministic)."""
    config = config or SimulationConfig()
    began = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    catalog = default_catalog()
    offsets = utc_offsets(tuple(config.timezones), config.start,
                          config.days + _OFFSET_MARGIN_DAYS)
    pop = draw_population(config, rng, offsets[:, 0])
    latent = pop.latent_frame()
    arrays = CatalogArrays.from_frame(catalog)
    oracle = Oracle(GroundTruth(latent=latent, decision_states=_empty_states(config, arrays),
                                config=config), catalog)
    world = World(config=config, catalog=arrays, pop=pop, offsets=offsets, oracle=oracle, rng=rng)
    history_events(pop, config.response.organic_order_value, config.response.order_value_shape,
                   world.buffer, rng)
    first_partial_windows(world)
    days = track(range(config.days), description="simulating days", disable=not progress,
                 transient=True)
    for day in days:
        _step(world, day)
    simulation = _finish(world, catalog, latent)
    if simulation.journeys.decisions.empty:
        logger.warning(
            "no decision window of %d h fits in %d days: nothing was logged (a decision point "
            "comes every %d h; simulate at least %d days)", config.attribution_hours, config.days,
            config.decision_interval_hours,
            -(-(config.decision_interval_hours + config.attribution_hours) // 24),
        )
    logger.info(
        "simulated %d customers x %d days in %.1fs: %d events, %d decisions",
        config.n_customers, config.days, time.perf_counter() - began,
        len(simulation.journeys.events), len(simulation.journeys.decisions),
    )
    return simulation
