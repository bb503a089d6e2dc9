"""Who the simulated customers are: observable attributes, latent traits, and their history so far.

Traits are drawn so that every one that drives the value of an action leaves observable traces:
segment and age band correlate with negative response, channel affinities and active hours;
consents follow channel affinity; loyalty points follow purchase propensity and tenure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import CHANNELS, CONSENT_COLUMNS, Col
from features.simulator.catalog import CATEGORIES
from features.simulator.clock import SECONDS_PER_DAY, SECONDS_PER_HOUR, to_timestamps
from features.simulator.config import SimulationConfig
from features.simulator.events import digits, fixed_width_ids
from features.simulator.truth import (
    CATEGORY_AFFINITY_COLUMNS,
    CHANNEL_AFFINITY_COLUMNS,
    Attribute,
    Latent,
)

SEGMENTS = ("deal_seeker", "premium", "loyalist", "casual", "privacy_first")
DEAL, PREMIUM, LOYALIST, CASUAL, PRIVACY = range(len(SEGMENTS))
#: Segment shares among negative responders and among everyone else.
_SEGMENT_GIVEN_NEGATIVE = np.array([0.07, 0.06, 0.07, 0.2, 0.6])
_SEGMENT_GIVEN_POSITIVE = np.array([0.3, 0.18, 0.24, 0.24, 0.04])
_SEGMENT_PROPENSITY = np.array([0.0, 0.2, 0.6, -0.5, -0.2])
_SEGMENT_BASKET = np.array([0.8, 1.6, 1.1, 0.9, 1.0])
_SEGMENT_RESPONSIVENESS = np.array([1.4, 1.0, 0.8, 0.9, 0.7])
_SEGMENT_VISITS = np.array([1.2, 1.1, 1.3, 0.5, 0.8])
_SEGMENT_CHURN = np.array([0.0, 0.0, -0.3, 0.3, 0.2])
#: Category tilt by segment (home, fashion, electronics, beauty, grocery).
_SEGMENT_CATEGORY_TILT = np.array(
    [[1.0, 1.0, 0.7, 1.5, 2.0], [1.0, 1.5, 2.0, 1.0, 0.7], [1.5, 1.0, 1.0, 1.0, 1.0],
     [1.0, 1.2, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]]
)

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
_AGE_GIVEN_NEGATIVE = np.array([0.06, 0.14, 0.18, 0.2, 0.22, 0.2])
_AGE_GIVEN_POSITIVE = np.array([0.14, 0.24, 0.21, 0.17, 0.13, 0.11])
#: Mean logit channel affinity by age band (email, sms, push, in_app, web).
_AGE_CHANNEL = np.array(
    [[-0.8, 0.3, 0.6, 0.8, 0.0], [-0.3, 0.2, 0.5, 0.5, 0.1], [0.2, 0.0, 0.1, 0.0, 0.2],
     [0.5, 0.0, -0.2, -0.3, 0.2], [0.8, 0.1, -0.6, -0.7, 0.0], [0.9, 0.0, -0.9, -1.0, -0.2]]
)
#: Two modes of the active hour by age band and the weight of the first.
_AGE_PEAKS = np.array(
    [[21.0, 13.0, 0.7], [12.5, 20.5, 0.5], [8.0, 20.0, 0.5], [9.0, 19.0, 0.5], [10.0, 18.0, 0.7],
     [10.0, 15.0, 0.7]]
)
_BASE_CONSENT = np.array([0.88, 0.35, 0.5, 0.6, 0.85])
_HISTORY_DAYS = (15.0, 730.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _categorical(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One draw per row of a (n, k) probability matrix (or k-vector repeated n times)."""
    cumulative = np.cumsum(probabilities, axis=-1)
    draws = rng.random(cumulative.shape[:-1] + (1,))
    return np.minimum((draws > cumulative).sum(axis=-1), probabilities.shape[-1] - 1)


@dataclass
class Population:
    """Arrays over customers (index = customer code)."""

    customer_ids: np.ndarray  # object
    zone_names: tuple[str, ...]
    zone: np.ndarray  # int, index into zone_names
    signup: np.ndarray  # float seconds since start
    consent: np.ndarray  # (n, n_channels) bool
    segment: np.ndarray
    age_band: np.ndarray
    loyalty_points: np.ndarray
    negative: np.ndarray  # bool
    responsiveness: np.ndarray
    aversion: np.ndarray
    fatigue_sensitivity: np.ndarray
    base_propensity: np.ndarray
    basket_scale: np.ndarray
    visit_rate: np.ndarray
    weekend_factor: np.ndarray
    peak_hour: np.ndarray
    hour_width: np.ndarray
    churn_propensity: np.ndarray
    replenish_cycle: np.ndarray
    channel_affinity: np.ndarray  # (n, n_channels) in (0, 1)
    category_affinity: np.ndarray  # (n, n_categories), rows sum to 1
    # history before the first simulated day (seconds; -inf = never, +inf = not churned)
    last_purchase: np.ndarray
    last_activity: np.ndarray
    last_cart: np.ndarray
    churn_at: np.ndarray

    @property
    def size(self) -> int:
        return len(self.customer_ids)

    def customers_frame(self, config: SimulationConfig) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                Col.CUSTOMER_ID: pd.Series(self.customer_ids, dtype="str"),
                Col.TIMEZONE: pd.Series(np.asarray(self.zone_names, dtype=object)[self.zone],
                                        dtype="str"),
                Col.SIGNUP_TS: to_timestamps(config.start, self.signup),
            }
        )
        for c, column in enumerate(CONSENT_COLUMNS):
            frame[column] = self.consent[:, c]
        frame[Attribute.SEGMENT] = pd.Series(np.asarray(SEGMENTS, dtype=object)[self.segment],
                                             dtype="str")
        frame[Attribute.AGE_BAND] = pd.Series(np.asarray(AGE_BANDS, dtype=object)[self.age_band],
                                              dtype="str")
        frame[Attribute.LOYALTY_POINTS] = self.loyalty_points
        return frame

    def latent_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                Col.CUSTOMER_ID: pd.Series(self.customer_ids, dtype="str"),
                Col.TIMEZONE: pd.Series(np.asarray(self.zone_names, dtype=object)[self.zone],
                                        dtype="str"),
                Latent.NEGATIVE_RESPONDER: self.negative,
                Latent.RESPONSIVENESS: self.responsiveness,
                Latent.CONTACT_AVERSION: self.aversion,
                Latent.FATIGUE_SENSITIVITY: self.fatigue_sensitivity,
                Latent.BASE_PROPENSITY: self.base_propensity,
                Latent.BASKET_SCALE: self.basket_scale,
                Latent.VISIT_RATE: self.visit_rate,
                Latent.WEEKEND_FACTOR: self.weekend_factor,
                Latent.PEAK_HOUR: self.peak_hour,
                Latent.HOUR_WIDTH: self.hour_width,
                Latent.CHURN_PROPENSITY: self.churn_propensity,
                Latent.REPLENISH_CYCLE_DAYS: self.replenish_cycle,
            }
        )
        for c, column in enumerate(CHANNEL_AFFINITY_COLUMNS):
            frame[column] = self.channel_affinity[:, c]
        for k, column in enumerate(CATEGORY_AFFINITY_COLUMNS):
            frame[column] = self.category_affinity[:, k]
        return frame


def draw_population(
    config: SimulationConfig, rng: np.random.Generator, day0_offset: np.ndarray
) -> Population:
    """Draw ``config.n_customers`` customers; ``day0_offset`` is each timezone's UTC offset
    (seconds) on the first day, whose local midnight anchors the history drawn."""
    n = config.n_customers
    zone_names = tuple(config.timezones)
    weights = np.array([config.timezones[z] for z in zone_names])
    zone = _categorical(rng, np.broadcast_to(weights / weights.sum(), (n, len(weights))))

    negative = rng.random(n) < config.negative_responder_share
    segment = _categorical(
        rng, np.where(negative[:, None], _SEGMENT_GIVEN_NEGATIVE, _SEGMENT_GIVEN_POSITIVE)
    )
    age_band = _categorical(
        rng, np.where(negative[:, None], _AGE_GIVEN_NEGATIVE, _AGE_GIVEN_POSITIVE)
    )

    channel_affinity = _sigmoid(_AGE_CHANNEL[age_band] + rng.normal(0.0, 1.0, (n, len(CHANNELS))))
    tilt = _SEGMENT_CATEGORY_TILT[segment]
    raw_category = rng.dirichlet(np.full(len(CATEGORIES), 0.6), n) * tilt
    category_affinity = raw_category / raw_category.sum(axis=1, keepdims=True)

    modes = _AGE_PEAKS[age_band]
    first_mode = rng.random(n) < modes[:, 2]
    peak_hour = np.clip(np.where(first_mode, modes[:, 0], modes[:, 1]) + rng.normal(0, 1.2, n),
                        6.0, 23.0)
    hour_width = rng.uniform(1.5, 3.5, n)

    responsiveness = np.where(
        negative, 0.0, rng.gamma(2.0, 0.45, n) * _SEGMENT_RESPONSIVENESS[segment]
    )
    aversion = np.where(negative, rng.uniform(0.3, 1.0, n), 0.0)
    fatigue_sensitivity = rng.gamma(2.0, 0.5, n) * np.where(negative, 1.5, 1.0)
    base_propensity = _SEGMENT_PROPENSITY[segment] + rng.normal(0.0, 0.5, n)
    basket = rng.lognormal(-0.5 * 0.35**2, 0.35, n) * _SEGMENT_BASKET[segment]
    visit_rate = (config.behaviour.visit_rate * _SEGMENT_VISITS[segment]
                  * rng.lognormal(-0.5 * 0.5**2, 0.5, n))
    weekend_factor = rng.lognormal(0.0, 0.4, n)
    churn_propensity = _SEGMENT_CHURN[segment] + 0.5 * negative + rng.normal(0.0, 0.4, n)
    replenish_cycle = rng.uniform(14.0, 42.0, n)

    consent_p = np.clip(_BASE_CONSENT + 0.35 * (channel_affinity - 0.5), 0.02, 0.99)
    consent_p = consent_p * np.where(segment == PRIVACY, 0.6, 1.0)[:, None]
    consent = rng.random((n, len(CHANNELS))) < consent_p

    is_new = rng.random(n) < config.new_customer_share
    horizon = config.days * SECONDS_PER_DAY
    signup = np.where(
        is_new,
        rng.uniform(0.0, max(horizon - SECONDS_PER_DAY, 1.0), n),
        -rng.uniform(*_HISTORY_DAYS, n) * SECONDS_PER_DAY,
    )
    tenure_years = np.maximum(-signup, 0.0) / (365.0 * SECONDS_PER_DAY)
    loyalty_points = np.where(
        is_new, 0, rng.poisson(150.0 * np.exp(base_propensity) * (0.2 + tenure_years))
    ).astype(np.int64)

    population = Population(
        customer_ids=np.asarray(
            fixed_width_ids("c", np.arange(n), digits(n)).to_pylist(), dtype=object
        ),
        zone_names=zone_names,
        zone=zone,
        signup=signup,
        consent=consent,
        segment=segment,
        age_band=age_band,
        loyalty_points=loyalty_points,
        negative=negative,
        responsiveness=responsiveness,
        aversion=aversion,
        fatigue_sensitivity=fatigue_sensitivity,
        base_propensity=base_propensity,
        basket_scale=basket,
        visit_rate=visit_rate,
        weekend_factor=weekend_factor,
        peak_hour=peak_hour,
        hour_width=hour_width,
        churn_propensity=churn_propensity,
        replenish_cycle=replenish_cycle,
        channel_affinity=channel_affinity,
        category_affinity=category_affinity,
        last_purchase=np.full(n, -np.inf),
        last_activity=np.full(n, -np.inf),
        last_cart=np.full(n, -np.inf),
        churn_at=np.full(n, np.inf),
    )
    _draw_history(population, ~is_new, rng, -day0_offset[zone])
    return population


def _draw_history(
    pop: Population, existing: np.ndarray, rng: np.random.Generator, day0_start: np.ndarray
) -> None:
    """Recency of customers who signed up before the window, as of their local day 0."""
    n = pop.size
    tenure_days = np.maximum((day0_start - pop.signup) / SECONDS_PER_DAY, 0.0)
    churned = existing & (rng.random(n) < 0.05 + 0.05 * pop.negative)
    purchased = existing & (rng.random(n) < _sigmoid(1.0 + pop.base_propensity))
    since_purchase = np.minimum(rng.exponential(40.0 * np.exp(-0.5 * pop.base_propensity)),
                                tenure_days)
    since_activity = np.where(
        churned, 25.0 + rng.exponential(40.0, n), rng.exponential(1.0 / pop.visit_rate)
    )
    since_activity = np.minimum(since_activity, tenure_days)
    since_activity = np.where(purchased, np.minimum(since_activity, since_purchase), since_activity)
    pop.last_purchase = np.where(purchased, day0_start - since_purchase * SECONDS_PER_DAY, -np.inf)
    pop.last_activity = np.where(existing, day0_start - since_activity * SECONDS_PER_DAY, -np.inf)
    carted = existing & ~churned & (rng.random(n) < 0.05)
    cart_time = day0_start - rng.uniform(1.0, 72.0, n) * SECONDS_PER_HOUR
    pop.last_cart = np.where(carted, cart_time, -np.inf)
    pop.last_activity = np.maximum(pop.last_activity, pop.last_cart)
    pop.churn_at = np.where(churned, -np.inf, np.inf)
