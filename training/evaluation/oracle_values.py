"""True values of decision policies on simulated decision states, straight from the oracle.

Every policy is judged on the same rows (customer states at decision times) and chooses from the
same **candidate set**: each (message, channel) pair the simulator deems eligible for the row
(the message may go on that channel, the channel's consent is live, the stage fits the message,
an open cart if it needs one, the message is out of its cooldown) at each local send hour the
simulator allows (``SimulationConfig.send_hours``), plus ``no_action``. An action outside that
set (a learned policy working from its own reading of the events may propose one) is replaced by
``no_action`` and counted, so no policy gains from an action the others could not take.

Values are expectations, not draws: conversions (``p_conversion``), revenue
(``expected_revenue``) and net value (revenue minus send costs), per 1,000 rows. Random, the
oracle's best action and every static rule are computed exactly by one pass over all candidate
actions (:meth:`OracleValues.scan`), using the same response-model factors as
``Oracle.best_action``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Final, Literal, TypeVar

import numpy as np
import pandas as pd

from features.contract import CHANNELS, Col
from features.simulator import Oracle
from features.simulator.clock import local_hour, schedule_send_at
from features.simulator.policy import eligible_actions
from features.simulator.response import Outcome, StateRows

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

logger = logging.getLogger(__name__)

CONVERSIONS: Final = "conversions"
REVENUE: Final = "revenue"
NET_VALUE: Final = "net_value"
METRICS: Final = (CONVERSIONS, REVENUE, NET_VALUE)
#: What the oracle (and the hindsight static rule) maximise.
Objective = Literal["net_value", "revenue", "conversions"]
PER: Final = 1_000.0
_Terms = TypeVar("_Terms", bound="DataclassInstance")


@dataclass(frozen=True)
class PolicyActions:
    """One action per evaluation row, as codes: message (catalog order), channel (``CHANNELS``
    order) and local send hour; ``-1`` in all three is ``no_action``."""

    message: np.ndarray
    channel: np.ndarray
    hour: np.ndarray

    def __post_init__(self) -> None:
        shapes = {np.shape(self.message), np.shape(self.channel), np.shape(self.hour)}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"message, channel and hour must be 1-D of one length: {shapes}")

    @classmethod
    def no_action(cls, n: int) -> PolicyActions:
        none = np.full(n, -1, dtype=np.int64)
        return cls(none, none.copy(), none.copy())

    def __len__(self) -> int:
        return int(np.shape(self.message)[0])

    @property
    def sends(self) -> np.ndarray:
        return np.asarray(self.message) >= 0


@dataclass(frozen=True)
class PolicyValue:
    """A policy's true expected value per 1,000 evaluation rows."""

    policy: str
    conversions: float
    revenue: float
    net_value: float
    send_cost: float
    send_share: float
    outside_candidates: int
    n: int

    def metric(self, name: str) -> float:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; expected one of {', '.join(METRICS)}")
        return float(getattr(self, name))

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


@dataclass(frozen=True)
class CandidateScan:
    """What one pass over every candidate action yields."""

    random: PolicyValue
    oracle: PolicyValue
    oracle_actions: PolicyActions
    static_rule: PolicyValue
    static_action: tuple[str, str, int]  # (message_id, channel, local hour)
    n_candidates_mean: float


def _value(name: str, p: np.ndarray, revenue: np.ndarray, cost: np.ndarray, sends: np.ndarray,
           outside: int = 0) -> PolicyValue:
    n = max(len(p), 1)
    return PolicyValue(
        policy=name,
        conversions=float(p.sum()) * PER / n,
        revenue=float(revenue.sum()) * PER / n,
        net_value=float((revenue - cost).sum()) * PER / n,
        send_cost=float(cost.sum()) * PER / n,
        send_share=float(np.mean(sends)) if len(p) else 0.0,
        outside_candidates=int(outside),
        n=len(p),
    )


class OracleValues:
    """True values of policies on ``states`` (rows of the simulator's ``decision_states``)."""

    def __init__(
        self,
        oracle: Oracle,
        states: pd.DataFrame,
        send_hours: Sequence[int] | None = None,
        objective: Objective = "net_value",
    ) -> None:
        if objective not in METRICS:
            raise ValueError(f"objective must be one of {', '.join(METRICS)}, got {objective!r}")
        self.oracle = oracle
        self.states = states.reset_index(drop=True)
        self.objective: Objective = objective
        self.send_hours = tuple(int(h) for h in (send_hours or oracle.config.send_hours))
        self.rows_: StateRows = oracle.rows(self.states)
        rows = self.rows_
        #: (n, n_messages, n_channels): eligible (message, channel) pairs of each row
        self.eligible_: np.ndarray = eligible_actions(
            oracle.catalog, rows.stage, rows.cart_open, rows.consent_live, rows.in_cooldown
        )
        n = len(self.states)
        self._send_at = {
            h: schedule_send_at(rows.ts, rows.timezone, np.full(n, h),
                                oracle.config.min_send_delay_hours)
            for h in self.send_hours
        }
        self._local = {h: local_hour(at, rows.timezone) for h, at in self._send_at.items()}

    def __len__(self) -> int:
        return len(self.states)

    # ------------------------------------------------------------------ candidate set

    def restrict(self, actions: PolicyActions) -> tuple[PolicyActions, np.ndarray]:
        """``actions`` with every action outside the candidate set turned into no_action, and
        the mask of the rows that were changed."""
        if len(actions) != len(self):
            raise ValueError(f"expected {len(self)} actions (one per row), got {len(actions)}")
        message = np.asarray(actions.message, dtype=np.int64)
        channel = np.asarray(actions.channel, dtype=np.int64)
        hour = np.asarray(actions.hour, dtype=np.int64)
        sends = (message >= 0) | (channel >= 0)
        n_messages = self.oracle.catalog.n_messages
        known = (message >= 0) & (message < n_messages) & (channel >= 0) & (channel < len(CHANNELS))
        pair_ok = np.zeros(len(self), dtype=bool)
        rows = np.flatnonzero(known)
        pair_ok[rows] = self.eligible_[rows, message[rows], channel[rows]]
        inside = pair_ok & np.isin(hour, self.send_hours)
        outside = sends & ~inside
        if outside.any():
            logger.info("%d of %d actions are outside the candidate set: counted as no_action",
                        int(outside.sum()), len(self))
        keep = sends & inside
        return PolicyActions(
            np.where(keep, message, -1), np.where(keep, channel, -1), np.where(keep, hour, -1)
        ), outside

    # ------------------------------------------------------------------ values

    def row_values(self, actions: PolicyActions) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per-row true expectations of each metric (outside-the-set actions: no_action), and
        the mask of rows whose action was outside the candidate set."""
        inside, outside = self.restrict(actions)
        local = np.full(len(self), -1, dtype=np.int64)
        for h, hours in self._local.items():
            pick = inside.hour == h
            local[pick] = hours[pick]
        outcome = self.oracle.model.evaluate(self.rows_, inside.message, inside.channel, local)
        revenue = outcome[Outcome.EXPECTED_REVENUE]
        return {
            CONVERSIONS: outcome[Outcome.P_CONVERSION],
            REVENUE: revenue,
            NET_VALUE: revenue - outcome[Outcome.COST],
            "send": inside.sends.astype(np.float64),
            "cost": outcome[Outcome.COST],
        }, outside

    def value(self, name: str, actions: PolicyActions) -> PolicyValue:
        """True expected value of one action per row (outside-the-set actions: no_action)."""
        rows, outside = self.row_values(actions)
        return _value(name, rows[CONVERSIONS], rows[REVENUE], rows["cost"], rows["send"] > 0,
                      int(outside.sum()))

    def logged_value(self, name: str, decisions: pd.DataFrame) -> PolicyValue:
        """True expected value of the logged actions themselves (rows aligned with the states),
        at their logged ``send_at``, exactly as the simulator drew their outcomes."""
        outcome = self.oracle.expected_outcome(
            self.states, decisions[Col.MESSAGE_ID].to_numpy(dtype=object),
            decisions[Col.CHANNEL].to_numpy(dtype=object), decisions[Col.SEND_AT],
        )
        sends = decisions[Col.MESSAGE_ID].notna().to_numpy()
        return _value(name, outcome[Outcome.P_CONVERSION].to_numpy(),
                      outcome[Outcome.EXPECTED_REVENUE].to_numpy(),
                      outcome[Outcome.COST].to_numpy(), sends)

    def _score(self, p: np.ndarray, revenue: np.ndarray, cost: np.ndarray) -> np.ndarray:
        if self.objective == CONVERSIONS:
            return p
        if self.objective == REVENUE:
            return revenue
        return revenue - cost

    def scan(self) -> CandidateScan:
        """Random, the oracle's best action and the best static rule, in one exact pass."""
        oracle, rows, model = self.oracle, self.rows_, self.oracle.model
        catalog, n = oracle.catalog, len(self)
        terms = model.row_terms(rows)
        affinity = model.traits.channel_affinity[rows.customer]
        by_hour = {h: model.hour_factor(model.closeness(rows, lh)) for h, lh in self._local.items()}
        nothing = np.zeros(n, dtype=bool)
        p0, revenue0 = model.conversion(terms, nothing, np.zeros(n), 0)
        cost0 = np.zeros(n)
        score0 = self._score(p0, revenue0, cost0)

        best_score, best_p, best_revenue = score0.copy(), p0.copy(), revenue0.copy()
        best_cost = cost0.copy()
        best_action = np.full((n, 3), -1, dtype=np.int64)
        random_sum = np.column_stack([p0, revenue0, cost0])
        count = np.ones(n)
        statics: list[tuple[int, int, int, np.ndarray]] = []  # (m, ch, h, [p, revenue, cost] sums)
        base_sums = np.array([p0.sum(), revenue0.sum(), 0.0])
        for m in range(catalog.n_messages):
            factor = model.fit(rows, np.full(n, m)) * model.category_factor(rows, np.full(n, m))
            for ch in np.flatnonzero(catalog.allowed_channel[m]):
                ok = np.flatnonzero(self.eligible_[:, m, ch])
                if not ok.size:
                    continue
                # only the rows the action is eligible for count: every response factor is
                # per row, so scoring just those rows gives the same values (and sums) exactly
                eligible_terms = _subset(terms, ok)
                channel_term = (terms.scale * factor * model.channel_factor(affinity[:, ch]))[ok]
                delivered = rows.consent_live[ok, ch]
                cost = np.where(delivered, catalog.cost[m, ch], 0.0)
                no_send = np.array([p0[ok].sum(), revenue0[ok].sum(), 0.0])
                count[ok] += len(self.send_hours)
                for h in self.send_hours:
                    p, revenue = model.conversion(
                        eligible_terms, delivered, channel_term * by_hour[h][ok], m
                    )
                    triple = np.column_stack([p, revenue, cost])
                    random_sum[ok] += triple
                    statics.append((m, int(ch), h, base_sums + (triple.sum(axis=0) - no_send)))
                    score = self._score(p, revenue, cost)
                    better = score > best_score[ok]
                    if better.any():
                        at = ok[better]
                        best_score[at] = score[better]
                        best_p[at] = p[better]
                        best_revenue[at] = revenue[better]
                        best_cost[at] = cost[better]
                        best_action[at] = (m, ch, h)
        mean = random_sum / count[:, None]
        random = _value("random", mean[:, 0], mean[:, 1], mean[:, 2], np.zeros(n))
        random = dataclasses.replace(random, send_share=float(np.mean(1.0 - 1.0 / count)))
        oracle_actions = PolicyActions(best_action[:, 0], best_action[:, 1], best_action[:, 2])
        oracle_value = _value("oracle", best_p, best_revenue, best_cost, oracle_actions.sends)
        static_rule, static_action = self._best_static(statics, p0, revenue0)
        return CandidateScan(random, oracle_value, oracle_actions, static_rule, static_action,
                             float(count.mean() - 1.0))

    def _best_static(
        self, statics: list[tuple[int, int, int, np.ndarray]], p0: np.ndarray,
        revenue0: np.ndarray,
    ) -> tuple[PolicyValue, tuple[str, str, int]]:
        """The static rule with the best objective; rows it cannot serve get no_action."""
        n = len(self)
        if not statics:
            return _value("static_rule", p0, revenue0, np.zeros(n), np.zeros(n, bool)), ("", "", -1)
        column = {CONVERSIONS: 0, REVENUE: 1}
        sums = np.array([rule for *_, rule in statics])
        if self.objective == NET_VALUE:
            scores = sums[:, 1] - sums[:, 2]
        else:
            scores = sums[:, column[self.objective]]
        m, ch, h, _ = statics[int(np.argmax(scores))]
        reach = self.eligible_[:, m, ch]
        actions = PolicyActions(np.where(reach, m, -1), np.where(reach, ch, -1),
                                np.where(reach, h, -1))
        value = self.value("static_rule", actions)
        return value, (self.oracle.catalog.message_ids[m], CHANNELS[ch].value, h)


def _subset(terms: _Terms, rows: np.ndarray) -> _Terms:
    """The per-row terms (a dataclass of row-aligned arrays) of ``rows`` only."""
    return dataclasses.replace(
        terms, **{f.name: getattr(terms, f.name)[rows] for f in dataclasses.fields(terms)}
    )


def lift_share(policy: float, random: float, oracle: float) -> float:
    """(V_policy - V_random) / (V_oracle - V_random); NaN when the oracle does not beat random."""
    span = oracle - random
    return (policy - random) / span if span > 0 else float("nan")
