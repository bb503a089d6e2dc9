"""Off-policy estimates of any policy's value from a decision log and its observed outcomes.

The log is the contract's ``decisions`` table (each row with the propensity its policy chose it
with) and the outcomes that followed within the attribution window, attributed from the events
(``features.outcomes``): the simulator's logs, the service's decision log exported to the
contract, or a user's. Rewards per decision: ``conversions`` (converted 0/1), ``revenue`` and
``net_value`` (revenue minus the send cost of the logged action).

An action is (message, channel, local send hour) or ``no_action``. A deterministic target
policy gives one action per logged row (``PolicyActions``); its probability of the logged action
is 1 when they agree and 0 otherwise. A stochastic one gives that probability directly. The
estimators are those of ``training.evaluation.ope`` — IPS, SNIPS and, with a reward model, DR —
computed for every (policy, metric) at once on shared bootstrap resamples, so the intervals of
different policies are paired.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from features.contract import CHANNELS, Col, cost_column
from features.eventlog import CHANNEL_CODE
from features.outcomes import OutcomeCol, attribute_outcomes
from features.simulator.clock import local_hour
from training.evaluation.bootstrap import bootstrap_ratios, percentile_interval
from training.evaluation.ope import DR, IPS, SNIPS, PolicyEstimate, effective_sample_size
from training.evaluation.oracle_values import (
    CONVERSIONS,
    METRICS,
    NET_VALUE,
    PER,
    REVENUE,
    PolicyActions,
)

logger = logging.getLogger(__name__)

#: P(conversion | row, action) for the logged rows: the DR reward model's core.
ConversionPredictor = Callable[[PolicyActions], np.ndarray]
OPE_METHODS: Final = (IPS, SNIPS, DR)


class DecisionLogError(ValueError):
    """The decision log cannot be evaluated; the message names the column and the problem."""


@dataclass(frozen=True)
class DecisionLogData:
    """Logged decisions as arrays: the logged action, its propensity and the rewards."""

    decisions: pd.DataFrame
    actions: PolicyActions
    propensity: np.ndarray
    rewards: Mapping[str, np.ndarray]
    send_cost: np.ndarray

    def __len__(self) -> int:
        return len(self.decisions)


def load_decision_log(
    decisions: pd.DataFrame,
    events: pd.DataFrame,
    catalog: pd.DataFrame,
    timezones: pd.Series | np.ndarray,
    attribution_hours: float,
) -> DecisionLogData:
    """Decisions (contract table) with their outcomes and the logged actions as codes.

    ``timezones`` gives each decision's customer timezone (the send hour is local). Rows with a
    missing or non-positive propensity cannot be reweighted: a clear error names them.
    """
    if len(decisions) == 0:
        raise DecisionLogError("decisions: the log is empty, there is nothing to evaluate")
    propensity = decisions[Col.PROPENSITY].to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(propensity) & (propensity > 0) & (propensity <= 1)))
    if bad.size:
        rows = ", ".join(str(int(i) + 1) for i in bad[:5])
        raise DecisionLogError(
            f"decisions: {Col.PROPENSITY} must be in (0, 1] for off-policy evaluation; "
            f"row(s) {rows}{' ...' if bad.size > 5 else ''} are not"
        )
    message_index = {str(m): i for i, m in enumerate(catalog[Col.MESSAGE_ID])}
    message = decisions[Col.MESSAGE_ID].map(message_index)
    unknown = decisions[Col.MESSAGE_ID].notna() & message.isna()
    if unknown.any():
        found = decisions.loc[unknown, Col.MESSAGE_ID].astype(str).unique()[:5]
        raise DecisionLogError(f"decisions: {Col.MESSAGE_ID} not in the catalog: "
                               f"{', '.join(found)}")
    message_code = message.fillna(-1).to_numpy(dtype=np.int64)
    channel = decisions[Col.CHANNEL].map(CHANNEL_CODE).fillna(-1).to_numpy(dtype=np.int64)
    sends = (message_code >= 0) & (channel >= 0)
    hour = np.where(sends, local_hour(pd.DatetimeIndex(decisions[Col.SEND_AT]),
                                      np.asarray(timezones, dtype=object)), -1)
    actions = PolicyActions(np.where(sends, message_code, -1), np.where(sends, channel, -1), hour)
    costs = np.column_stack([catalog[cost_column(c)].to_numpy(dtype=np.float64)
                             for c in CHANNELS])
    send_cost = np.where(sends, costs[np.maximum(message_code, 0), np.maximum(channel, 0)], 0.0)
    outcomes = attribute_outcomes(decisions, events, attribution_hours)
    converted = outcomes[OutcomeCol.CONVERTED].to_numpy(dtype=np.float64)
    revenue = outcomes[OutcomeCol.REVENUE].to_numpy(dtype=np.float64)
    rewards = {CONVERSIONS: converted, REVENUE: revenue, NET_VALUE: revenue - send_cost}
    return DecisionLogData(decisions.reset_index(drop=True), actions, propensity, rewards,
                           send_cost)


def agreement(target: PolicyActions, logged: PolicyActions) -> np.ndarray:
    """1 where a deterministic target takes the logged action (same message, channel and local
    hour, or both no_action), else 0: the target's probability of the logged action."""
    target_send = np.asarray(target.message) >= 0
    logged_send = np.asarray(logged.message) >= 0
    same_send = ((np.asarray(target.message) == np.asarray(logged.message))
                 & (np.asarray(target.channel) == np.asarray(logged.channel))
                 & (np.asarray(target.hour) == np.asarray(logged.hour)))
    return np.where(target_send | logged_send, same_send & target_send & logged_send,
                    True).astype(np.float64)


@dataclass(frozen=True)
class TargetPolicy:
    """A policy to evaluate on the log: its probability of each logged action and, for DR,
    its action per row (deterministic targets only)."""

    name: str
    probability: np.ndarray
    actions: PolicyActions | None = None

    @classmethod
    def deterministic(cls, name: str, actions: PolicyActions, log: DecisionLogData) -> TargetPolicy:
        return cls(name, agreement(actions, log.actions), actions)


@dataclass(frozen=True)
class OpeResult:
    """``estimates[policy][metric][method]`` (values per 1,000 decisions) and the ESS."""

    estimates: dict[str, dict[str, dict[str, PolicyEstimate]]]
    ess: dict[str, float]
    n: int
    n_bootstrap: int

    def as_dict(self) -> dict[str, object]:
        return {
            "n_decisions": self.n,
            "n_bootstrap": self.n_bootstrap,
            "per": PER,
            "ess": self.ess,
            "estimates": {
                policy: {metric: {method: e.as_dict() for method, e in by_method.items()}
                         for metric, by_method in by_metric.items()}
                for policy, by_metric in self.estimates.items()
            },
        }


def _reward_model(
    predict: ConversionPredictor, log: DecisionLogData
) -> Callable[[PolicyActions, np.ndarray], dict[str, np.ndarray]]:
    """q(x, a) per metric: P(conversion) from the model, revenue as that times the log's mean
    revenue per conversion, net value as revenue minus the action's send cost."""
    converted = log.rewards[CONVERSIONS] > 0
    per_conversion = float(log.rewards[REVENUE][converted].mean()) if converted.any() else 0.0

    def q(actions: PolicyActions, cost: np.ndarray) -> dict[str, np.ndarray]:
        p = np.asarray(predict(actions), dtype=np.float64)
        revenue = p * per_conversion
        return {CONVERSIONS: p, REVENUE: revenue, NET_VALUE: revenue - cost}

    return q


def estimate_policies(
    log: DecisionLogData,
    targets: list[TargetPolicy],
    predict: ConversionPredictor | None = None,
    cost_of: Callable[[PolicyActions], np.ndarray] | None = None,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> OpeResult:
    """IPS, SNIPS and (with ``predict``, for deterministic targets) DR estimates of every target
    and metric, per 1,000 decisions, on one set of shared bootstrap resamples."""
    if not targets:
        raise ValueError("give at least one target policy")
    n = len(log)
    q = _reward_model(predict, log) if predict is not None and cost_of is not None else None
    logged_q = q(log.actions, log.send_cost) if q is not None else None
    numerators: list[np.ndarray] = []
    denominators: list[np.ndarray] = []
    labels: list[tuple[str, str, str]] = []
    ess: dict[str, float] = {}
    ones = np.ones(n)
    for target in targets:
        probability = np.asarray(target.probability, dtype=np.float64)
        if probability.shape != (n,):
            raise ValueError(f"{target.name}: expected {n} probabilities, got {probability.shape}")
        weights = probability / log.propensity
        ess[target.name] = effective_sample_size(weights)
        direct = None
        if q is not None and cost_of is not None and target.actions is not None:
            direct = q(target.actions, cost_of(target.actions))
        for metric in METRICS:
            reward = log.rewards[metric]
            numerators += [weights * reward, weights * reward]
            denominators += [ones, weights]
            labels += [(target.name, metric, IPS), (target.name, metric, SNIPS)]
            if direct is not None and logged_q is not None:
                numerators.append(direct[metric] + weights * (reward - logged_q[metric]))
                denominators.append(ones)
                labels.append((target.name, metric, DR))
    num = np.column_stack(numerators) * PER
    den = np.column_stack(denominators)
    with np.errstate(divide="ignore", invalid="ignore"):
        points = num.sum(axis=0) / den.sum(axis=0)
    samples = bootstrap_ratios(num, den, n_bootstrap, seed)
    low, high = percentile_interval(samples, confidence)
    estimates: dict[str, dict[str, dict[str, PolicyEstimate]]] = {}
    for j, (policy, metric, method) in enumerate(labels):
        estimates.setdefault(policy, {}).setdefault(metric, {})[method] = PolicyEstimate(
            float(points[j]), float(low[j]), float(high[j]), ess[policy], n, method
        )
    logger.info("off-policy estimates of %d policies on %d decisions (%d resamples)",
                len(targets), n, n_bootstrap)
    return OpeResult(estimates, ess, n, n_bootstrap)


def action_costs(catalog: pd.DataFrame) -> Callable[[PolicyActions], np.ndarray]:
    """Send cost of each action (0 for no_action) from the catalog's ``cost_<channel>``."""
    costs = np.column_stack([catalog[cost_column(c)].to_numpy(dtype=np.float64)
                             for c in CHANNELS])

    def cost(actions: PolicyActions) -> np.ndarray:
        message = np.asarray(actions.message)
        channel = np.asarray(actions.channel)
        sends = (message >= 0) & (channel >= 0)
        return np.where(sends, costs[np.maximum(message, 0), np.maximum(channel, 0)], 0.0)

    return cost
