"""The response model: how a customer in a given state responds to (message, channel, send hour).

This is the oracle's whole model; the simulator draws outcomes from it through the oracle. The
uplift of a delivered message is a product of factors, one per dimension of the action, so that
getting one dimension wrong (the wrong channel, an hour the customer is asleep, a category it
does not buy) spoils the whole action:

    uplift = responsiveness x uplift_scale x fit(objective, stage) x channel(affinity)
             x hour(closeness to active hours) x category(affinity)
             - aversion x (1 + aversion_fatigue x sends_28d)
             - fatigue_per_send x fatigue_sensitivity x sends_28d

``logit p = stage_logit[stage] + base_propensity + uplift`` (uplift only when delivered);
``p = 0`` for a churned customer. See docs/simulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from features.contract import CHANNELS, STAGES, Objective
from features.simulator.catalog import CATEGORIES, CatalogArrays
from features.simulator.config import SimulationConfig
from features.simulator.policy import fit_matrix
from features.simulator.truth import CATEGORY_AFFINITY_COLUMNS, CHANNEL_AFFINITY_COLUMNS, Latent

_OBJECTIVES = tuple(Objective)


class Outcome:
    """Columns of ``Oracle.expected_outcome``: per-decision probabilities and expectations."""

    P_CONVERSION: Final = "p_conversion"
    EXPECTED_REVENUE: Final = "expected_revenue"
    COST: Final = "cost"
    UPLIFT: Final = "uplift"
    P_OPEN: Final = "p_open"
    P_CLICK: Final = "p_click"
    P_UNSUBSCRIBE: Final = "p_unsubscribe"
    CHURN_HAZARD_RATIO: Final = "churn_hazard_ratio"


OUTCOME_COLUMNS: Final = (
    Outcome.P_CONVERSION, Outcome.EXPECTED_REVENUE, Outcome.COST, Outcome.UPLIFT,
    Outcome.P_OPEN, Outcome.P_CLICK, Outcome.P_UNSUBSCRIBE, Outcome.CHURN_HAZARD_RATIO,
)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class Traits:
    """Latent traits as arrays, one row per customer of the latent table."""

    negative: np.ndarray
    responsiveness: np.ndarray
    aversion: np.ndarray
    fatigue: np.ndarray
    propensity: np.ndarray
    basket: np.ndarray
    peak: np.ndarray
    width: np.ndarray
    cycle: np.ndarray
    channel_affinity: np.ndarray  # (n, n_channels)
    category_affinity: np.ndarray  # (n, n_categories)

    @classmethod
    def from_frame(cls, latent: pd.DataFrame) -> Traits:
        def trait(column: str) -> np.ndarray:
            return latent[column].to_numpy(dtype=np.float64)

        return cls(
            negative=latent[Latent.NEGATIVE_RESPONDER].to_numpy(dtype=bool),
            responsiveness=trait(Latent.RESPONSIVENESS),
            aversion=trait(Latent.CONTACT_AVERSION),
            fatigue=trait(Latent.FATIGUE_SENSITIVITY),
            propensity=trait(Latent.BASE_PROPENSITY),
            basket=trait(Latent.BASKET_SCALE),
            peak=trait(Latent.PEAK_HOUR),
            width=trait(Latent.HOUR_WIDTH),
            cycle=trait(Latent.REPLENISH_CYCLE_DAYS),
            channel_affinity=np.column_stack(
                [trait(c) for c in CHANNEL_AFFINITY_COLUMNS]).reshape(len(latent), -1),
            category_affinity=np.column_stack(
                [trait(c) for c in CATEGORY_AFFINITY_COLUMNS]).reshape(len(latent), -1),
        )


@dataclass(frozen=True)
class StateRows:
    """Customer states (rows of ``decision_states``) as arrays; ``customer`` indexes Traits."""

    customer: np.ndarray
    stage: np.ndarray
    churned: np.ndarray
    cart_open: np.ndarray
    days_since_purchase: np.ndarray
    sends_28d: np.ndarray
    consent_live: np.ndarray  # (n, n_channels)
    in_cooldown: np.ndarray | None  # (n, n_messages)
    ts: pd.DatetimeIndex
    timezone: np.ndarray


@dataclass(frozen=True)
class _RowTerms:
    """Everything that depends on the row only."""

    base: np.ndarray
    p0: np.ndarray
    alive: np.ndarray
    scale: np.ndarray  # responsiveness x uplift_scale
    penalty: np.ndarray  # aversion and fatigue, subtracted from a delivered message's uplift
    basket: np.ndarray


class ResponseModel:
    """The outcome of any action for any state, vectorised over rows."""

    def __init__(self, config: SimulationConfig, catalog: CatalogArrays, traits: Traits) -> None:
        self.config, self.catalog, self.traits = config, catalog, traits
        r = config.response
        self._fit = fit_matrix(config)
        self._stage_logit = np.array([r.stage_logit[s] for s in STAGES])
        self._open_logit = np.array([r.open_logit[c] for c in CHANNELS])
        self._click_logit = np.array([r.click_logit[c] for c in CHANNELS])
        objective = catalog.objective
        self._is_replenish = objective == _OBJECTIVES.index(Objective.REPLENISH)
        self._is_retention = np.isin(objective, [_OBJECTIVES.index(Objective.WIN_BACK),
                                                 _OBJECTIVES.index(Objective.RETENTION_OFFER)])

    # -- factors (shared by evaluate and by the fast scoring of many candidates) --------------

    def row_terms(self, rows: StateRows) -> _RowTerms:
        r, t, c = self.config.response, self.traits, rows.customer
        base = self._stage_logit[rows.stage] + t.propensity[c]
        alive = ~rows.churned
        sends = rows.sends_28d
        penalty = (t.aversion[c] * (1.0 + r.aversion_fatigue * sends)
                   + r.fatigue_per_send * t.fatigue[c] * sends)
        return _RowTerms(base=base, p0=np.where(alive, sigmoid(base), 0.0), alive=alive,
                         scale=r.uplift_scale * t.responsiveness[c], penalty=penalty,
                         basket=t.basket[c])

    def channel_factor(self, affinity: np.ndarray) -> np.ndarray:
        r = self.config.response
        return r.channel_floor + r.channel_span * affinity

    def closeness(self, rows: StateRows, hour: np.ndarray) -> np.ndarray:
        """1 at the customer's peak hour, falling off with its width (circular in 24 h)."""
        c = rows.customer
        distance = np.abs(hour - self.traits.peak[c]) % 24.0
        distance = np.minimum(distance, 24.0 - distance)
        return np.exp(-0.5 * (distance / self.traits.width[c]) ** 2)

    def hour_factor(self, closeness: np.ndarray) -> np.ndarray:
        floor = self.config.response.hour_floor
        return floor + (1.0 - floor) * closeness

    def category_factor(self, rows: StateRows, message: np.ndarray) -> np.ndarray:
        category = self.catalog.category[message]
        share = (self.traits.category_affinity[rows.customer, np.maximum(category, 0)]
                 * len(CATEGORIES))
        return np.where(category >= 0, share ** self.config.response.category_exponent, 1.0)

    def fit(self, rows: StateRows, message: np.ndarray) -> np.ndarray:
        """Fit of the message's objective to the stage; replenishment also to the timing."""
        r = self.config.response
        fit = self._fit[self.catalog.objective[message], rows.stage]
        cycle = self.traits.cycle[rows.customer]
        timing = np.exp(-0.5 * ((rows.days_since_purchase - cycle)
                                / (r.replenish_width * cycle)) ** 2)
        timing = r.replenish_floor + (1.0 - r.replenish_floor) * np.nan_to_num(timing, nan=0.0)
        return np.where(self._is_replenish[message], fit * timing, fit)

    def conversion(self, terms: _RowTerms, delivered: np.ndarray, uplift: np.ndarray,
                   message: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """(p_conversion, expected revenue) given the positive uplift of a delivered message.

        Conversions no message caused are worth the organic basket, the incremental ones the
        message's value.
        """
        r = self.config.response
        logit = terms.base + np.where(delivered, uplift - terms.penalty, 0.0)
        p = np.where(terms.alive, sigmoid(logit), 0.0)
        revenue = terms.basket * (np.minimum(p, terms.p0) * r.organic_order_value
                                  + np.maximum(p - terms.p0, 0.0) * self.catalog.value[message])
        return p, revenue

    # -- the full outcome ---------------------------------------------------------------------

    def evaluate(self, rows: StateRows, message: np.ndarray, channel: np.ndarray,
                 hour: np.ndarray) -> dict[str, np.ndarray]:
        """Outcome arrays of (message, channel, local hour) per row; message -1 = no_action."""
        r, t, c = self.config.response, self.traits, rows.customer
        n = len(c)
        m, ch = np.maximum(message, 0), np.maximum(channel, 0)
        delivered = (message >= 0) & (channel >= 0) & rows.consent_live[np.arange(n), ch]
        terms = self.row_terms(rows)
        affinity = t.channel_affinity[c, ch]
        closeness = self.closeness(rows, hour)
        category = self.category_factor(rows, m)
        fit = self.fit(rows, m)
        uplift = (terms.scale * fit * self.channel_factor(affinity) * self.hour_factor(closeness)
                  * category)
        p, revenue = self.conversion(terms, delivered, uplift, m)

        engaged = delivered & terms.alive
        sends = rows.sends_28d
        neg = t.negative[c].astype(np.float64)
        relative_response = np.log((t.responsiveness[c] + 0.2) / 1.1)
        log_category = np.log(category)
        open_logit = (
            self._open_logit[ch] + r.open_affinity * (affinity - 0.5)
            + r.open_hour * (closeness - 0.5) + r.open_category * log_category
            + r.open_responsiveness * relative_response - r.open_fatigue * sends
            - r.open_negative * neg
        )
        click_logit = (
            self._click_logit[ch] + r.click_affinity * (affinity - 0.5)
            + r.click_fit * (fit - 0.5) + r.click_category * log_category
            + r.click_responsiveness * relative_response - r.click_negative * neg
        )
        unsubscribe_logit = (
            r.unsubscribe_logit + np.log(self.config.unsubscribe_scale)
            + r.negative_unsubscribe * neg + r.unsubscribe_fatigue * t.fatigue[c] * sends
            + r.unsubscribe_affinity * (0.5 - affinity)
        )
        retention = (np.where(self._is_retention[m], fit, 0.0)
                     * np.minimum(t.responsiveness[c], 1.5) / 1.5)
        churn_log_ratio = (r.negative_churn * neg + r.fatigue_churn * t.fatigue[c] * sends
                           - r.retention_churn * retention)
        p_open = np.where(engaged, sigmoid(open_logit), 0.0)
        return {
            Outcome.P_CONVERSION: p,
            Outcome.EXPECTED_REVENUE: revenue,
            Outcome.COST: np.where(delivered, self.catalog.cost[m, ch], 0.0),
            Outcome.UPLIFT: p - terms.p0,
            Outcome.P_OPEN: p_open,
            Outcome.P_CLICK: p_open * sigmoid(click_logit),
            Outcome.P_UNSUBSCRIBE: np.where(engaged, sigmoid(unsubscribe_logit), 0.0),
            Outcome.CHURN_HAZARD_RATIO: np.where(engaged, np.exp(churn_log_ratio), 1.0),
        }
