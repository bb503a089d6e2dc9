"""The simulator's mutable state: one array per fact, one row per customer.

Everything that happens later than "now" (a purchase a decision has drawn, an open, a click, an
unsubscribe) waits as a *pending* time and only changes the state once the clock passes it, so a
customer's state at any decision time is exactly what its event history up to then implies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from features.contract import STAGES, Col
from features.simulator.catalog import CatalogArrays
from features.simulator.clock import SECONDS_PER_DAY, SECONDS_PER_HOUR, to_timestamps
from features.simulator.config import SimulationConfig
from features.simulator.events import EventBuffer
from features.simulator.oracle import Oracle
from features.simulator.organic import DayEvents
from features.simulator.population import Population
from features.simulator.stages import cart_is_open, journey_stage
from features.simulator.truth import LIVE_CONSENT_COLUMNS, State, cooldown_column
from features.simulator.vocab import lookup

_STAGE_NAMES = tuple(s.value for s in STAGES)
_WEEK, _FOUR_WEEKS = 7 * SECONDS_PER_DAY, 28 * SECONDS_PER_DAY


@dataclass
class Snapshot:
    """The state of some customers at their decision times (the ``decision_states`` row)."""

    stage: np.ndarray
    churned: np.ndarray
    cart_open: np.ndarray
    days_since_purchase: np.ndarray
    days_since_activity: np.ndarray
    tenure_days: np.ndarray
    sends_7d: np.ndarray
    sends_28d: np.ndarray
    consent_live: np.ndarray  # (k, n_channels)
    in_cooldown: np.ndarray  # (k, n_messages)

    def take(self, rows: np.ndarray) -> Snapshot:
        return Snapshot(**{k: v[rows] for k, v in vars(self).items()})

    @classmethod
    def concat(cls, parts: list[Snapshot], n_channels: int, n_messages: int) -> Snapshot:
        if not parts:
            return cls.empty(n_channels, n_messages)
        return cls(**{k: np.concatenate([vars(p)[k] for p in parts]) for k in vars(parts[0])})

    @classmethod
    def empty(cls, n_channels: int, n_messages: int) -> Snapshot:
        floats = np.empty(0, dtype=np.float64)
        return cls(
            stage=np.empty(0, dtype=np.int8), churned=np.empty(0, dtype=bool),
            cart_open=np.empty(0, dtype=bool), days_since_purchase=floats,
            days_since_activity=floats, tenure_days=floats,
            sends_7d=np.empty(0, dtype=np.int64), sends_28d=np.empty(0, dtype=np.int64),
            consent_live=np.empty((0, n_channels), dtype=bool),
            in_cooldown=np.empty((0, n_messages), dtype=bool),
        )


def states_frame(
    start: datetime, customer_ids: pd.Series, ts: np.ndarray, snapshot: Snapshot,
    message_ids: tuple[str, ...],
) -> pd.DataFrame:
    """A ``decision_states`` frame (without decision ids) from arrays."""
    columns: dict[str, object] = {
        Col.CUSTOMER_ID: customer_ids.reset_index(drop=True),
        Col.TS: to_timestamps(start, ts),
        State.STAGE: lookup(_STAGE_NAMES, snapshot.stage),
        State.CHURNED: snapshot.churned,
        State.CART_OPEN: snapshot.cart_open,
        State.DAYS_SINCE_PURCHASE: snapshot.days_since_purchase,
        State.DAYS_SINCE_ACTIVITY: snapshot.days_since_activity,
        State.TENURE_DAYS: snapshot.tenure_days,
        State.SENDS_7D: snapshot.sends_7d,
        State.SENDS_28D: snapshot.sends_28d,
    }
    for c, column in enumerate(LIVE_CONSENT_COLUMNS):
        columns[column] = snapshot.consent_live[:, c]
    for m, message_id in enumerate(message_ids):
        columns[cooldown_column(message_id)] = snapshot.in_cooldown[:, m]
    return pd.DataFrame(columns)


@dataclass
class DecisionLog:
    """Logged decisions as array chunks (internal numbers in logging order)."""

    customer: list[np.ndarray] = field(default_factory=list)
    ts: list[np.ndarray] = field(default_factory=list)
    message: list[np.ndarray] = field(default_factory=list)
    channel: list[np.ndarray] = field(default_factory=list)
    send_at: list[np.ndarray] = field(default_factory=list)
    propensity: list[np.ndarray] = field(default_factory=list)
    states: list[Snapshot] = field(default_factory=list)
    count: int = 0


@dataclass
class World:
    config: SimulationConfig
    catalog: CatalogArrays
    pop: Population
    offsets: np.ndarray  # (n_zones, n_days) UTC offsets in seconds at local noon
    oracle: Oracle
    rng: np.random.Generator
    buffer: EventBuffer = field(default_factory=EventBuffer)
    log: DecisionLog = field(default_factory=DecisionLog)

    def __post_init__(self) -> None:
        n, pop = self.pop.size, self.pop
        self.customer_series = pd.Series(pop.customer_ids, dtype="str")
        self.timezone = np.asarray(pop.zone_names, dtype=object)[pop.zone]
        self.last_purchase = pop.last_purchase.copy()
        self.last_activity = pop.last_activity.copy()
        self.last_cart = pop.last_cart.copy()
        self.churn_at = pop.churn_at.copy()
        self.consent_live = pop.consent.copy()
        interval = self.config.decision_interval_hours * SECONDS_PER_HOUR
        self.interval = float(interval)
        self.window = float(self.config.attribution_hours * SECONDS_PER_HOUR)
        self.send_times = np.full((n, math.ceil(_FOUR_WEEKS / interval) + 1), -np.inf)
        self.send_slot = np.zeros(n, dtype=np.int64)
        self.last_sent = np.full((n, self.catalog.n_messages), -np.inf)
        self.pending_purchase = np.full(n, np.inf)
        self.pending_open = np.full(n, np.inf)
        self.pending_click = np.full(n, np.inf)
        self.pending_unsubscribe = np.full(n, np.inf)
        self.pending_unsubscribe_channel = np.zeros(n, dtype=np.int64)
        self.hazard_ratio = np.ones(n)
        self.hazard_from = np.full(n, np.inf)
        self.hazard_until = np.full(n, -np.inf)
        days = self.config.days
        self.horizon_end = days * SECONDS_PER_DAY - self.offsets[pop.zone, days - 1]
        day0_start = -self.offsets[pop.zone, 0]
        existing = pop.signup < day0_start
        self.next_decision = np.where(
            existing,
            day0_start + self.rng.uniform(0.0, interval, n),
            pop.signup + self.rng.uniform(0.5, 12.0, n) * SECONDS_PER_HOUR,
        )

    def day_start(self, day: int) -> np.ndarray:
        """UTC seconds of each customer's local midnight starting simulated day ``day``."""
        return day * SECONDS_PER_DAY - self.offsets[self.pop.zone, day]

    def apply_pending(self, rows: np.ndarray | slice, limit: np.ndarray) -> None:
        """Let every pending change of ``rows`` that happened before ``limit`` take effect."""
        index = np.arange(self.pop.size)[rows]
        purchase = self.pending_purchase[index]
        hit = purchase < limit
        if hit.any():
            who, when = index[hit], purchase[hit]
            self.last_purchase[who] = when
            self.last_activity[who] = np.maximum(self.last_activity[who], when)
            self.pending_purchase[who] = np.inf
        for pending in (self.pending_open, self.pending_click):
            times = pending[index]
            hit = times < limit
            if hit.any():
                who = index[hit]
                self.last_activity[who] = np.maximum(self.last_activity[who], times[hit])
                pending[who] = np.inf
        hit = self.pending_unsubscribe[index] < limit
        if hit.any():
            who = index[hit]
            self.consent_live[who, self.pending_unsubscribe_channel[who]] = False
            self.pending_unsubscribe[who] = np.inf

    def latest_pending(self, rows: np.ndarray) -> np.ndarray:
        """The last pending event time of each row (-inf when nothing is pending)."""
        times = np.stack([self.pending_purchase[rows], self.pending_open[rows],
                          self.pending_click[rows], self.pending_unsubscribe[rows]])
        return np.where(np.isfinite(times), times, -np.inf).max(axis=0)

    def apply_day_events(self, day: DayEvents, rows: np.ndarray | None = None,
                         before: np.ndarray | None = None) -> None:
        """Record today's organic activity: all of it, or that of ``rows`` before ``before``."""
        mask = np.ones(len(day.ts), dtype=bool)
        if rows is not None and before is not None:
            limit = np.full(self.pop.size, -np.inf)
            limit[rows] = before
            mask = day.ts < limit[day.customer]
        np.maximum.at(self.last_activity, day.customer[mask], day.ts[mask])
        cart = mask & day.is_cart
        np.maximum.at(self.last_cart, day.customer[cart], day.ts[cart])

    def stage_at(self, rows: np.ndarray | slice, t: np.ndarray) -> np.ndarray:
        return journey_stage(t, self.pop.signup[rows], self.last_activity[rows],
                             self.last_purchase[rows], self.last_cart[rows],
                             self.config.stage_rules)

    def snapshot(self, rows: np.ndarray, ts: np.ndarray) -> Snapshot:
        purchase, activity = self.last_purchase[rows], self.last_activity[rows]
        sends = self.send_times[rows]
        recent = sends < ts[:, None]
        return Snapshot(
            stage=self.stage_at(rows, ts),
            churned=self.churn_at[rows] <= ts,
            cart_open=cart_is_open(ts, self.last_cart[rows], purchase, self.config.stage_rules),
            days_since_purchase=np.where(np.isfinite(purchase),
                                         (ts - purchase) / SECONDS_PER_DAY, np.nan),
            days_since_activity=np.where(np.isfinite(activity),
                                         (ts - activity) / SECONDS_PER_DAY, np.nan),
            tenure_days=(ts - self.pop.signup[rows]) / SECONDS_PER_DAY,
            sends_7d=(recent & (sends >= (ts - _WEEK)[:, None])).sum(axis=1),
            sends_28d=(recent & (sends >= (ts - _FOUR_WEEKS)[:, None])).sum(axis=1),
            consent_live=self.consent_live[rows].copy(),
            in_cooldown=(ts[:, None] - self.last_sent[rows]) < self.catalog.cooldown_seconds,
        )

    def record_sends(self, rows: np.ndarray, message: np.ndarray, send_at: np.ndarray) -> None:
        slot = self.send_slot[rows]
        self.send_times[rows, slot] = send_at
        self.send_slot[rows] = (slot + 1) % self.send_times.shape[1]
        self.last_sent[rows, message] = send_at

    def recently_contacted(self, t: np.ndarray, days: float) -> np.ndarray:
        """Whether each customer received a send in the ``days`` before ``t``."""
        sends = self.send_times
        window = (sends < t[:, None]) & (sends >= (t - days * SECONDS_PER_DAY)[:, None])
        return np.asarray(window.any(axis=1))

