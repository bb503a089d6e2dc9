"""Decision points: the logging policy acts, the oracle says what follows, the draws make it happen.

Every customer has a decision point every ``decision_interval_hours``. Points whose attribution
window ends inside the simulated horizon are logged (a ``decisions`` row and a
``decision_states`` row); the last, truncated ones and a customer's first, partial window before
its first decision are unlogged ``no_action`` windows, so purchases keep their organic rate there.
A window's purchase (at most one: "conversion" is at least one purchase) is drawn with the
oracle's ``p_conversion``; its value with mean such that ``E[revenue]`` is the oracle's
``expected_revenue``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import CHANNELS
from features.simulator.clock import (
    SECONDS_PER_HOUR,
    schedule_send_at,
    to_seconds,
    to_timestamps,
)
from features.simulator.events import CLICK, DELIVERED, OPEN, UNSUBSCRIBE
from features.simulator.oracle import Outcome
from features.simulator.organic import DayEvents, draw_category, purchase_funnel
from features.simulator.policy import eligible_actions, logging_distribution, sample_actions
from features.simulator.world import World, states_frame

_CHANNEL_NAMES = np.asarray([c.value for c in CHANNELS] + [None], dtype=object)
#: A purchase's product view comes 10 minutes before it: keep the funnel after the decision.
_FUNNEL_LEAD = 900.0
_MAX_ENGAGEMENT_DELAY = 48 * SECONDS_PER_HOUR


def _truncated_exponential(
    rng: np.random.Generator, mean: float, upper: np.ndarray
) -> np.ndarray:
    """Exponential delays with the given mean, conditioned to fall below ``upper``."""
    mass = -np.expm1(-np.maximum(upper, 0.0) / mean)
    return -mean * np.log1p(-rng.random(len(upper)) * mass)


def _hour_closeness(world: World, rows: np.ndarray, hour: np.ndarray) -> np.ndarray:
    distance = np.abs(hour - world.pop.peak_hour[rows]) % 24.0
    distance = np.minimum(distance, 24.0 - distance)
    return np.exp(-0.5 * (distance / world.pop.hour_width[rows]) ** 2)


def draw_window_purchases(
    world: World,
    rows: np.ndarray,
    outcome: pd.DataFrame,
    message: np.ndarray,
    earliest: np.ndarray,
    latest: np.ndarray,
    sent: np.ndarray,
    chance: np.ndarray | float = 1.0,
) -> None:
    """Draw each window's conversion and schedule its purchase in ``[earliest, latest)``.

    ``chance`` thins the probability (used for partial, unlogged windows only).
    """
    rng, response = world.rng, world.config.response
    p = outcome[Outcome.P_CONVERSION].to_numpy() * chance
    p_without = p - outcome[Outcome.UPLIFT].to_numpy() * chance
    converted = rng.random(len(rows)) < p
    # P(the purchase would have happened anyway | converted) = min(1, p0 / p)
    organic = rng.random(len(rows)) * p < p_without
    span = latest - earliest
    delay = np.where(
        sent,
        _truncated_exponential(rng, world.config.behaviour.purchase_delay_hours * 3600.0, span),
        rng.uniform(0.0, 1.0, len(rows)) * span,
    )
    by_message = sent & ~organic
    value = world.pop.basket_scale[rows] * np.where(
        by_message, world.catalog.value[np.maximum(message, 0)], response.organic_order_value
    )
    value = rng.gamma(response.order_value_shape, value / response.order_value_shape)
    message_category = world.catalog.category[np.maximum(message, 0)]
    category = np.where(by_message & (message_category >= 0), message_category,
                        draw_category(world.pop, rows, rng))
    who = converted & (span > 0)
    customers, when = rows[who], (earliest + delay)[who]
    world.pending_purchase[customers] = when
    purchase_funnel(world.pop, customers.astype(np.int32), when, value[who], category[who],
                    world.buffer, rng)


def first_partial_windows(world: World) -> None:
    """Purchases of existing customers before their first decision (an unlogged window)."""
    pop = world.pop
    day0 = world.day_start(0)
    rows = np.flatnonzero(pop.signup < day0)
    if not len(rows):
        return
    ts = day0[rows]
    snapshot = world.snapshot(rows, ts)
    states = states_frame(world.config.start, world.customer_series.iloc[rows], ts, snapshot,
                          world.catalog.message_ids)
    outcome = world.oracle.expected_outcome(states)
    earliest = ts + _FUNNEL_LEAD
    latest = world.next_decision[rows]
    share = np.clip((latest - ts) / world.interval, 0.0, 1.0)
    draw_window_purchases(world, rows, outcome, np.full(len(rows), -1), earliest, latest,
                          np.zeros(len(rows), dtype=bool), chance=share)


def decide(world: World, rows: np.ndarray, ts: np.ndarray, day: DayEvents) -> None:
    """One decision point for each of ``rows`` at times ``ts`` (all within today)."""
    config, catalog, rng = world.config, world.catalog, world.rng
    world.apply_pending(rows, ts)
    world.apply_day_events(day, rows, ts)
    snapshot = world.snapshot(rows, ts)
    k = len(rows)
    logged = np.flatnonzero(ts + world.window <= world.horizon_end[rows])

    message = np.full(k, -1, dtype=np.int64)
    channel = np.full(k, -1, dtype=np.int64)
    hour = np.full(k, -1, dtype=np.int64)
    propensity = np.ones(k)
    if len(logged):
        state = snapshot.take(logged)
        eligible = eligible_actions(catalog, state.stage, state.cart_open, state.consent_live,
                                    state.in_cooldown)
        distribution = logging_distribution(catalog, config, state.stage, eligible)
        m, c, h, p = sample_actions(distribution, config.send_hours, rng)
        message[logged], channel[logged], hour[logged], propensity[logged] = m, c, h, p

    sent = message >= 0
    send_seconds = np.full(k, np.nan)
    if sent.any():
        scheduled = schedule_send_at(to_timestamps(config.start, ts[sent]),
                                     world.timezone[rows[sent]], hour[sent],
                                     config.min_send_delay_hours)
        send_seconds[sent] = to_seconds(config.start, scheduled)

    states = states_frame(config.start, world.customer_series.iloc[rows], ts, snapshot,
                          catalog.message_ids)
    message_ids = np.asarray(catalog.message_ids + (None,), dtype=object)[message]
    outcome = world.oracle.expected_outcome(
        states, message_ids, _CHANNEL_NAMES[channel], to_timestamps(config.start, send_seconds)
    )
    draw_window_purchases(world, rows, outcome, message,
                          np.where(sent, send_seconds, ts + _FUNNEL_LEAD), ts + world.window, sent)

    numbers = np.full(k, -1, dtype=np.int64)
    numbers[logged] = world.log.count + np.arange(len(logged))
    _deliver(world, rows[sent], message[sent], channel[sent], hour[sent], send_seconds[sent],
             numbers[sent], outcome[sent])

    log = world.log
    log.customer.append(rows[logged])
    log.ts.append(ts[logged])
    log.message.append(message[logged])
    log.channel.append(channel[logged])
    log.send_at.append(send_seconds[logged])
    log.propensity.append(propensity[logged])
    log.states.append(snapshot.take(logged))
    log.count += len(logged)
    world.next_decision[rows] = ts + world.interval


def _deliver(
    world: World, rows: np.ndarray, message: np.ndarray, channel: np.ndarray, hour: np.ndarray,
    send_at: np.ndarray, decision: np.ndarray, outcome: pd.DataFrame,
) -> None:
    """Deliveries with their opens, clicks and unsubscribes, and their effect on the state."""
    if not len(rows):
        return
    rng, behaviour, buffer = world.rng, world.config.behaviour, world.buffer
    customers = rows.astype(np.int32)
    k = len(rows)
    buffer.add(customers, send_at, DELIVERED, channel, message, decision)

    p_open = outcome[Outcome.P_OPEN].to_numpy()
    opened = rng.random(k) < p_open
    base_delay = np.array([behaviour.open_delay_hours[c] for c in CHANNELS])[channel]
    # far from the customer's active hours a message waits longer to be seen
    mean_delay = base_delay * (1.0 + 3.0 * (1.0 - _hour_closeness(world, rows, hour)))
    open_delay = np.minimum(rng.exponential(mean_delay * SECONDS_PER_HOUR), _MAX_ENGAGEMENT_DELAY)
    open_at = send_at + open_delay
    click_given_open = outcome[Outcome.P_CLICK].to_numpy() / np.maximum(p_open, 1e-300)
    clicked = opened & (rng.random(k) < click_given_open)
    click_at = open_at + rng.exponential(180.0, k)
    unsubscribed = rng.random(k) < outcome[Outcome.P_UNSUBSCRIBE].to_numpy()
    unsubscribe_at = np.where(
        opened, open_at + 60.0,
        send_at + np.minimum(rng.exponential(4 * SECONDS_PER_HOUR, k), _MAX_ENGAGEMENT_DELAY),
    )
    for mask, times, event in ((opened, open_at, OPEN), (clicked, click_at, CLICK),
                               (unsubscribed, unsubscribe_at, UNSUBSCRIBE)):
        buffer.add(customers[mask], times[mask], event, channel[mask], message[mask],
                   decision[mask])
    world.pending_open[rows] = np.where(opened, open_at, np.inf)
    world.pending_click[rows] = np.where(clicked, click_at, np.inf)
    world.pending_unsubscribe[rows] = np.where(unsubscribed, unsubscribe_at, np.inf)
    world.pending_unsubscribe_channel[rows] = channel
    world.record_sends(rows, message, send_at)
    world.hazard_ratio[rows] = outcome[Outcome.CHURN_HAZARD_RATIO].to_numpy()
    world.hazard_from[rows] = send_at
    world.hazard_until[rows] = send_at + world.config.response.contact_churn_days * 86_400.0
