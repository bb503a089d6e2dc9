"""Off-policy estimates from the simulator's own decision log, validated against the oracle:
each interval must cover the true value of the same policy on the same logged decisions."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from features.contract import Col
from features.simulator import Oracle, Simulation, SimulationConfig, simulate
from training.evaluation.logged_ope import (
    DecisionLogData,
    OpeResult,
    TargetPolicy,
    action_costs,
    agreement,
    estimate_policies,
    load_decision_log,
)
from training.evaluation.nextbest_policy import ObservedJourneys
from training.evaluation.ope import DR, IPS, SNIPS
from training.evaluation.oracle_values import (
    CONVERSIONS,
    METRICS,
    NET_VALUE,
    OracleValues,
    PolicyActions,
)
from training.evaluation.rule_policies import channel_usage, journey_actions


@lru_cache(maxsize=1)
def _setup() -> tuple[Simulation, OracleValues, DecisionLogData]:
    sim = simulate(SimulationConfig(n_customers=2500, days=35, seed=6), progress=False)
    journeys = sim.journeys
    states = sim.truth.decision_states
    assert (states[Col.DECISION_ID].to_numpy() == journeys.decisions[Col.DECISION_ID]).all()
    values = OracleValues(Oracle(sim.truth, journeys.catalog), states)
    log = load_decision_log(journeys.decisions, journeys.events, journeys.catalog,
                            values.rows_.timezone, sim.truth.config.attribution_hours)
    return sim, values, log


def _targets(sim: Simulation, values: OracleValues, log: DecisionLogData) -> dict[str, object]:
    from features.definitions import FeatureSpec
    from features.eventlog import ts_to_ns

    journeys = sim.journeys
    spec = FeatureSpec.from_customers(journeys.customers,
                                      [str(m) for m in journeys.catalog[Col.MESSAGE_ID]])
    observed = ObservedJourneys(journeys, spec)
    codes = observed.codes(journeys.decisions[Col.CUSTOMER_ID])
    usage = channel_usage(observed.log, codes, ts_to_ns(journeys.decisions[Col.TS]))
    n = len(log)
    catalog = values.oracle.catalog
    m = catalog.message_ids.index("cross_sell_electronics")
    reach = values.eligible_[:, m, 0]  # by e-mail
    static = PolicyActions(np.where(reach, m, -1), np.where(reach, 0, -1),
                           np.where(reach, 10, -1))
    n_pairs = values.eligible_.reshape(n, -1).sum(axis=1)
    in_set = np.ones(n, dtype=bool)  # the logging policy only takes candidate actions
    return {
        "no_contact": PolicyActions.no_action(n),
        "journeys": journey_actions(catalog, values.rows_.stage, values.eligible_, usage),
        "static_rule": static,
        "random": in_set / (1.0 + n_pairs * len(values.send_hours)),
    }


@lru_cache(maxsize=2)
def _estimates(reward_model: str) -> tuple[OpeResult, dict[str, dict[str, float]]]:
    sim, values, log = _setup()
    targets, truth = [], {}
    for name, target in _targets(sim, values, log).items():
        if isinstance(target, PolicyActions):
            targets.append(TargetPolicy.deterministic(name, target, log))
            truth[name] = {k: values.value(name, target).metric(k) for k in METRICS}
        else:
            targets.append(TargetPolicy(name, np.asarray(target)))
            truth[name] = {k: values.scan().random.metric(k) for k in METRICS}
    targets.append(TargetPolicy("logging", log.propensity.copy()))
    logged = values.logged_value("logging", sim.journeys.decisions)
    truth["logging"] = {k: logged.metric(k) for k in METRICS}

    def oracle_model(actions: PolicyActions) -> np.ndarray:
        return values.row_values(actions)[0][CONVERSIONS]

    def constant_model(actions: PolicyActions) -> np.ndarray:
        return np.full(len(actions), 0.05)

    predict = oracle_model if reward_model == "oracle" else constant_model
    # 99 % intervals: the test checks ninety of them, and at 95 % a correct estimator would
    # miss about one in twenty
    result = estimate_policies(log, targets, predict, action_costs(sim.journeys.catalog),
                               n_bootstrap=600, confidence=0.99, seed=1)
    return result, truth


@pytest.mark.parametrize("reward_model", ["oracle", "constant"])
@pytest.mark.parametrize("policy", ["no_contact", "journeys", "static_rule", "random", "logging"])
def test_every_interval_covers_the_true_value_of_the_same_decisions(
    policy: str, reward_model: str
) -> None:
    result, truth = _estimates(reward_model)
    for metric in METRICS:
        for method, estimate in result.estimates[policy][metric].items():
            assert estimate.ci_low <= truth[policy][metric] <= estimate.ci_high, (metric, method)


def test_doubly_robust_with_a_perfect_reward_model_is_tighter_than_ips() -> None:
    # the oracle reward model is exact for conversions (revenue is modelled as conversions x
    # the log's revenue per conversion, so only conversions test a perfect model)
    result, truth = _estimates("oracle")
    for policy in ("journeys", "static_rule"):
        estimates = result.estimates[policy][CONVERSIONS]
        dr, ips = estimates[DR], estimates[IPS]
        # a rare binary outcome keeps most of its noise (p(1 - p) per row) even under a perfect
        # model, so the gain is real but modest
        assert dr.ci_high - dr.ci_low < 0.95 * (ips.ci_high - ips.ci_low)
        assert dr.ci_low <= truth[policy][CONVERSIONS] <= dr.ci_high


def test_stochastic_targets_get_ips_and_snips_only_and_the_log_is_on_policy() -> None:
    result, _ = _estimates("constant")
    assert set(result.estimates["random"][NET_VALUE]) == {IPS, SNIPS}
    _, _, log = _setup()
    logging = result.estimates["logging"][CONVERSIONS]
    assert logging[IPS].value == pytest.approx(log.rewards[CONVERSIONS].mean() * 1000)
    assert result.ess["logging"] == pytest.approx(len(log))


def test_agreement_needs_the_same_message_channel_and_hour() -> None:
    logged = PolicyActions(np.array([0, 0, 0, -1, -1]), np.array([1, 1, 1, -1, -1]),
                           np.array([9, 9, 9, -1, -1]))
    target = PolicyActions(np.array([0, 0, 1, -1, 2]), np.array([1, 1, 1, -1, 0]),
                           np.array([9, 10, 9, -1, 9]))
    assert agreement(target, logged).tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
