"""Organic behaviour: site and app sessions, browsing, carts, abandonment and support contacts.

Sessions follow each customer's visit rate, weekday pattern and active hours, and their stage;
product views follow category affinity; the session's channel (``web`` or ``in_app``) follows
the customer's affinity for the two. Purchases are not organic here: every purchase comes from a
decision window's draw (see ``features.simulator.decisions``), so conversions and the oracle agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract import CHANNELS, STAGES, Channel
from features.simulator.clock import SECONDS_PER_DAY, SECONDS_PER_HOUR
from features.simulator.config import BehaviourParams
from features.simulator.events import (
    ADD_TO_CART,
    CHECKOUT,
    PAGE_VIEW,
    PRODUCT_VIEW,
    PURCHASE,
    SUPPORT,
    EventBuffer,
)
from features.simulator.population import Population

WEB, IN_APP = CHANNELS.index(Channel.WEB), CHANNELS.index(Channel.IN_APP)
#: Spread of sessions outside the peak: uniform over these local hours.
_OFF_PEAK_HOURS = (7.0, 23.0)


@dataclass(frozen=True)
class DayEvents:
    """One day's organic events, in arrays (already added to the event buffer)."""

    customer: np.ndarray
    ts: np.ndarray
    is_cart: np.ndarray


def draw_category(pop: Population, customer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A product category per row, by the customer's category affinity."""
    cumulative = np.cumsum(pop.category_affinity[customer], axis=1)
    draws = rng.random((len(customer), 1))
    return np.minimum((draws > cumulative).sum(axis=1), cumulative.shape[1] - 1).astype(np.int8)


def draw_site_channel(
    pop: Population, customer: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``in_app`` or ``web`` by the customer's relative affinity for the two."""
    app = pop.channel_affinity[customer, IN_APP]
    web = pop.channel_affinity[customer, WEB]
    return np.where(rng.random(len(customer)) < app / (app + web), IN_APP, WEB).astype(np.int8)


def weekday_factor(pop: Population, weekday: int) -> np.ndarray:
    """Visit multiplier of each customer on a local weekday (0 = Monday), mean 1 over a week."""
    weekend = pop.weekend_factor
    norm = (5.0 + 2.0 * weekend) / 7.0
    return (weekend if weekday >= 5 else np.ones_like(weekend)) / norm


def draw_sessions(
    pop: Population,
    behaviour: BehaviourParams,
    day_start: np.ndarray,
    weekday: int,
    stage: np.ndarray,
    churn_at: np.ndarray,
    buffer: EventBuffer,
    rng: np.random.Generator,
) -> DayEvents:
    """Sessions of one local day for every customer, written to ``buffer``."""
    n = pop.size
    day_end = day_start + SECONDS_PER_DAY
    stage_visits = np.array([behaviour.stage_visits[s] for s in STAGES])
    rate = pop.visit_rate * weekday_factor(pop, weekday) * stage_visits[stage]
    rate = np.where((churn_at > day_start) & (pop.signup < day_end), rate, 0.0)
    counts = rng.poisson(rate)
    signs_up = (pop.signup >= day_start) & (pop.signup < day_end)
    counts += signs_up
    customer = np.repeat(np.arange(n, dtype=np.int32), counts)

    peak = rng.random(len(customer)) < behaviour.peak_share
    hour = np.where(
        peak,
        rng.normal(pop.peak_hour[customer], pop.hour_width[customer]) % 24.0,
        rng.uniform(*_OFF_PEAK_HOURS, len(customer)),
    )
    start = day_start[customer] + hour * SECONDS_PER_HOUR
    # the first session of a signup day is the signup visit itself
    first = np.ones(len(customer), dtype=bool)
    first[1:] = customer[1:] != customer[:-1]
    start = np.where(first & signs_up[customer], pop.signup[customer], start)
    valid = ((start >= pop.signup[customer]) & (start < churn_at[customer])
             & (start < day_end[customer]))
    customer, start = customer[valid], start[valid]

    channel = draw_site_channel(pop, customer, rng)
    views = rng.poisson(behaviour.product_views_per_session, len(customer))
    carts = rng.random(len(customer)) < behaviour.add_to_cart_rate
    checkouts = carts & (rng.random(len(customer)) < behaviour.checkout_given_cart)
    buffer.add(customer, start, PAGE_VIEW, channel=channel)

    # product views one to two minutes apart; the cart (and checkout) after the last view
    view_session = np.repeat(np.arange(len(customer)), views)
    view_rank = np.arange(len(view_session)) - np.repeat(np.cumsum(views) - views, views)
    view_customer = customer[view_session]
    view_ts = start[view_session] + (view_rank + 1) * rng.uniform(60.0, 120.0, len(view_session))
    view_category = draw_category(pop, view_customer, rng)
    buffer.add(view_customer, view_ts, PRODUCT_VIEW, channel=channel[view_session],
               category=view_category)
    cart_ts = start + (views + 1) * 120.0 + 30.0
    cart_category = draw_category(pop, customer, rng)
    buffer.add(customer[carts], cart_ts[carts], ADD_TO_CART, channel=channel[carts],
               category=cart_category[carts])
    buffer.add(customer[checkouts], cart_ts[checkouts] + 90.0, CHECKOUT,
               channel=channel[checkouts], category=cart_category[checkouts])

    event_customer = np.concatenate([customer, view_customer, customer[carts],
                                     customer[checkouts]])
    event_ts = np.concatenate([start, view_ts, cart_ts[carts], cart_ts[checkouts] + 90.0])
    is_cart = np.zeros(len(event_ts), dtype=bool)
    first_cart = len(customer) + len(view_customer)
    is_cart[first_cart: first_cart + int(carts.sum())] = True
    return DayEvents(customer=event_customer, ts=event_ts, is_cart=is_cart)


def draw_support_contacts(
    pop: Population,
    behaviour: BehaviourParams,
    day_start: np.ndarray,
    alive: np.ndarray,
    recently_contacted: np.ndarray,
    buffer: EventBuffer,
    rng: np.random.Generator,
) -> None:
    """Support contacts of one day: rarer than visits, more frequent after sends and among
    negative responders (one of their observable traces)."""
    rate = behaviour.support_rate * np.where(pop.negative, behaviour.support_negative_factor, 1.0)
    rate = rate * np.where(recently_contacted, behaviour.support_after_send_factor, 1.0)
    contact = alive & (rng.random(pop.size) < rate)
    customer = np.flatnonzero(contact).astype(np.int32)
    ts = day_start[customer] + rng.uniform(8.0, 20.0, len(customer)) * SECONDS_PER_HOUR
    ts = np.maximum(ts, pop.signup[customer])
    buffer.add(customer, ts, SUPPORT)


def purchase_funnel(
    pop: Population,
    customer: np.ndarray,
    ts: np.ndarray,
    value: np.ndarray,
    category: np.ndarray,
    buffer: EventBuffer,
    rng: np.random.Generator,
) -> None:
    """A purchase at ``ts`` with the product view, add-to-cart and checkout just before it."""
    channel = draw_site_channel(pop, customer, rng)
    buffer.add(customer, ts - 600.0, PRODUCT_VIEW, channel=channel, category=category)
    buffer.add(customer, ts - 360.0, ADD_TO_CART, channel=channel, category=category)
    buffer.add(customer, ts - 120.0, CHECKOUT, channel=channel, category=category)
    buffer.add(customer, ts, PURCHASE, channel=channel, value=value, category=category)


def history_events(
    pop: Population, order_value: float, value_shape: float, buffer: EventBuffer,
    rng: np.random.Generator,
) -> None:
    """The last purchase, visit and open cart before the window, so stages are observable."""
    bought = np.flatnonzero(np.isfinite(pop.last_purchase)).astype(np.int32)
    values = pop.basket_scale[bought] * rng.gamma(value_shape, order_value / value_shape,
                                                   len(bought))
    purchase_funnel(pop, bought, pop.last_purchase[bought], values,
                    draw_category(pop, bought, rng), buffer, rng)
    visited = np.flatnonzero(np.isfinite(pop.last_activity)
                             & (pop.last_activity > pop.last_purchase)
                             & (pop.last_activity > pop.last_cart)).astype(np.int32)
    buffer.add(visited, pop.last_activity[visited], PAGE_VIEW,
               channel=draw_site_channel(pop, visited, rng))
    carted = np.flatnonzero(np.isfinite(pop.last_cart)).astype(np.int32)
    buffer.add(carted, pop.last_cart[carted], ADD_TO_CART,
               channel=draw_site_channel(pop, carted, rng),
               category=draw_category(pop, carted, rng))
