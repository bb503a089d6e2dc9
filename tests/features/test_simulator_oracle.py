"""The simulator is honest: its outcomes agree with the oracle, its propensities are exact, its
stages and traits leave observable traces, and the oracle's best action clearly beats rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import ACTIVITY_EVENT_TYPES, DEFAULT_ATTRIBUTION_HOURS, Col, EventType
from features.simulator import Oracle, Outcome, local_hour, logging_propensity
from features.simulator.policy import eligible_actions, logging_distribution, state_arrays
from features.simulator.stages import journey_stage
from tests.features.simulated import simulation

WINDOW = pd.Timedelta(hours=DEFAULT_ATTRIBUTION_HOURS)
#: Two-sided z bound: a false alarm about once in 15,000 runs per check.
Z = 4.0


@pytest.fixture(scope="module")
def world() -> dict[str, object]:
    sim = simulation()
    journeys, truth = sim.journeys, sim.truth
    oracle = Oracle(truth, journeys.catalog)
    decisions = journeys.decisions
    outcome = oracle.expected_outcome(truth.decision_states, decisions[Col.MESSAGE_ID],
                                      decisions[Col.CHANNEL], decisions[Col.SEND_AT])
    return {"sim": sim, "oracle": oracle, "outcome": outcome, "labels": _labels(sim)}


def _labels(sim: object) -> pd.DataFrame:
    """Per logged decision: purchases and revenue within its attribution window."""
    decisions, events = sim.journeys.decisions, sim.journeys.events  # type: ignore[attr-defined]
    purchases = events.loc[events[Col.EVENT_TYPE] == EventType.PURCHASE,
                           [Col.CUSTOMER_ID, Col.TS, Col.VALUE]]
    pairs = decisions[[Col.DECISION_ID, Col.CUSTOMER_ID, Col.TS]].merge(
        purchases, on=Col.CUSTOMER_ID, suffixes=("", "_purchase"))
    bought = pairs["ts_purchase"]
    inside = (bought >= pairs[Col.TS]) & (bought < pairs[Col.TS] + WINDOW)
    per_decision = pairs[inside].groupby(Col.DECISION_ID)[Col.VALUE].agg(["size", "sum"])
    labels = per_decision.reindex(decisions[Col.DECISION_ID], fill_value=0)
    return labels.rename(columns={"size": "purchases", "sum": "revenue"}).reset_index(drop=True)


def _z(observed: np.ndarray, p: np.ndarray) -> float:
    return float((observed.sum() - p.sum()) / np.sqrt((p * (1 - p)).sum()))


def test_oracle_agrees_with_simulated_conversions(world: dict) -> None:
    decisions = world["sim"].journeys.decisions
    outcome, labels = world["outcome"], world["labels"]
    converted = (labels["purchases"] > 0).to_numpy()
    p = outcome[Outcome.P_CONVERSION].to_numpy()
    arms = {
        "all": np.ones(len(p), dtype=bool),
        "no_action": decisions[Col.MESSAGE_ID].isna().to_numpy(),
        "send": decisions[Col.MESSAGE_ID].notna().to_numpy(),
        **{f"channel {c}": (decisions[Col.CHANNEL] == c).to_numpy()
           for c in decisions[Col.CHANNEL].dropna().unique()},
    }
    for arm, mask in arms.items():
        assert abs(_z(converted[mask], p[mask])) < Z, arm
    # revenue: mean within a few standard errors of the expected revenue
    revenue = labels["revenue"].to_numpy()
    expected = outcome[Outcome.EXPECTED_REVENUE].to_numpy()
    assert abs(revenue.mean() - expected.mean()) < Z * revenue.std() / np.sqrt(len(revenue))
    assert labels["purchases"].max() == 1  # a window's purchases all come from its one draw


def test_opens_clicks_and_unsubscribes_agree_with_the_oracle(world: dict) -> None:
    events = world["sim"].journeys.events
    decisions = world["sim"].journeys.decisions
    sent = decisions[Col.MESSAGE_ID].notna().to_numpy()
    outcome = world["outcome"][sent]
    for event, column in ((EventType.MESSAGE_OPEN, Outcome.P_OPEN),
                          (EventType.MESSAGE_CLICK, Outcome.P_CLICK),
                          (EventType.UNSUBSCRIBE, Outcome.P_UNSUBSCRIBE)):
        happened = decisions.loc[sent, Col.DECISION_ID].isin(
            events.loc[events[Col.EVENT_TYPE] == event, Col.DECISION_ID])
        assert abs(_z(happened.to_numpy(), outcome[column].to_numpy())) < Z, event


def test_customers_open_more_on_channels_they_like(world: dict) -> None:
    sim = world["sim"]
    events, latent = sim.journeys.events, sim.truth.latent.set_index(Col.CUSTOMER_ID)
    delivered = events[events[Col.EVENT_TYPE] == EventType.MESSAGE_DELIVERED]
    opened = delivered[Col.DECISION_ID].isin(
        events.loc[events[Col.EVENT_TYPE] == EventType.MESSAGE_OPEN, Col.DECISION_ID])
    rows = latent.index.get_indexer(delivered[Col.CUSTOMER_ID])
    affinity = np.array([latent[f"affinity_{c}"].to_numpy()[r]
                         for r, c in zip(rows, delivered[Col.CHANNEL], strict=True)])
    low, high = affinity < np.quantile(affinity, 0.25), affinity > np.quantile(affinity, 0.75)
    assert opened[high].mean() > 1.8 * opened[low].mean()


def test_negative_responders_exist_and_show_it(world: dict) -> None:
    sim, oracle = world["sim"], world["oracle"]
    latent = sim.truth.latent.set_index(Col.CUSTOMER_ID)
    states = sim.truth.decision_states
    alive = states[~states["churned"]]
    # best action by conversion among all actions, feasible or not: no_action means every
    # message lowers this customer's chance to buy right now
    best = oracle.best_action(alive, objective="conversion", feasible_only=False)
    hurt_by_all = best[Col.MESSAGE_ID].isna().to_numpy()
    negative = latent.loc[alive[Col.CUSTOMER_ID], "negative_responder"].to_numpy()
    assert 0.1 < hurt_by_all.mean() < 0.35
    assert hurt_by_all[negative].mean() > 0.95
    # the logged sends to negative responders have a true uplift below zero
    sent = sim.journeys.decisions[Col.MESSAGE_ID].notna().to_numpy()
    uplift = world["outcome"][Outcome.UPLIFT].to_numpy()
    negative_all = latent.loc[states[Col.CUSTOMER_ID], "negative_responder"].to_numpy()
    assert uplift[sent & negative_all & ~states["churned"].to_numpy()].max() < 0
    # observable traces: more support contacts and unsubscribes, fewer opens
    events = sim.journeys.events
    per_customer = events.groupby([Col.CUSTOMER_ID, Col.EVENT_TYPE]).size().unstack(fill_value=0)
    per_customer = per_customer.reindex(latent.index, fill_value=0)
    is_negative = latent["negative_responder"]
    for event in (EventType.SUPPORT_CONTACT, EventType.UNSUBSCRIBE):
        assert per_customer.loc[is_negative, event].mean() > 2 * per_customer.loc[
            ~is_negative, event].mean()


def test_logged_propensities_are_exact(world: dict) -> None:
    sim, oracle = world["sim"], world["oracle"]
    states, decisions = sim.truth.decision_states, sim.journeys.decisions
    zones = sim.truth.latent.set_index(Col.CUSTOMER_ID).loc[decisions[Col.CUSTOMER_ID],
                                                            Col.TIMEZONE].to_numpy()
    rebuilt = logging_propensity(states, decisions, oracle.catalog, sim.truth.config, zones)
    np.testing.assert_allclose(rebuilt, decisions[Col.PROPENSITY].to_numpy(), rtol=1e-12)
    # the reconstructed distribution over the whole action set sums to one
    stage, cart, consent, cooldown = state_arrays(states, oracle.catalog)
    eligible = eligible_actions(oracle.catalog, stage, cart, consent, cooldown)
    distribution = logging_distribution(oracle.catalog, sim.truth.config, stage, eligible)
    per_slot = distribution.pair / distribution.n_slots
    total = distribution.no_action + per_slot.sum(axis=(1, 2)) * distribution.n_slots
    np.testing.assert_allclose(total, 1.0, rtol=1e-12)
    assert (per_slot[eligible] > 0).all() and (per_slot[~eligible] == 0).all()
    no_action = decisions[Col.MESSAGE_ID].isna().to_numpy()
    assert abs(_z(no_action, distribution.no_action)) < Z


def test_sends_respect_consent_unsubscribes_and_the_send_hours(world: dict) -> None:
    sim = world["sim"]
    events, customers = sim.journeys.events, sim.journeys.customers.set_index(Col.CUSTOMER_ID)
    delivered = events[events[Col.EVENT_TYPE] == EventType.MESSAGE_DELIVERED]
    consent = np.array([customers.at[c, f"consent_{ch}"] for c, ch in
                        zip(delivered[Col.CUSTOMER_ID], delivered[Col.CHANNEL], strict=True)])
    assert consent.all()
    unsubscribes = events[events[Col.EVENT_TYPE] == EventType.UNSUBSCRIBE]
    assert len(unsubscribes) > 0
    later = delivered.merge(unsubscribes, on=[Col.CUSTOMER_ID, Col.CHANNEL], suffixes=("", "_u"))
    assert not (later[Col.TS] > later["ts_u"]).any()

    decisions = sim.journeys.decisions.dropna(subset=[Col.SEND_AT])
    zones = customers.loc[decisions[Col.CUSTOMER_ID], Col.TIMEZONE].to_numpy()
    hours = local_hour(decisions[Col.SEND_AT], zones)
    assert set(hours) <= set(sim.truth.config.send_hours)
    delay = decisions[Col.SEND_AT] - decisions[Col.TS]
    # the first slot at least 24 h later: within a day of that, or 25 h when clocks fall back
    assert delay.min() >= pd.Timedelta(hours=24) and delay.max() < pd.Timedelta(hours=49)


def test_stage_is_a_function_of_the_observable_history(world: dict) -> None:
    """A feature pipeline can rebuild every logged stage from events and signups alone."""
    sim = world["sim"]
    events, decisions = sim.journeys.events, sim.journeys.decisions
    start = pd.Timestamp(sim.truth.config.start)

    def last_before(kinds: set[str]) -> np.ndarray:
        history = events.loc[events[Col.EVENT_TYPE].isin(kinds), [Col.CUSTOMER_ID, Col.TS]]
        history = history.rename(columns={Col.TS: "last"}).sort_values("last")
        asof = pd.merge_asof(decisions[[Col.CUSTOMER_ID, Col.TS]].reset_index().sort_values(Col.TS),
                             history, left_on=Col.TS, right_on="last", by=Col.CUSTOMER_ID,
                             allow_exact_matches=False).set_index("index").sort_index()
        return ((asof["last"] - start).dt.total_seconds()).fillna(-np.inf).to_numpy()

    signup = decisions[Col.CUSTOMER_ID].map(
        sim.journeys.customers.set_index(Col.CUSTOMER_ID)[Col.SIGNUP_TS])
    codes = journey_stage(
        ((decisions[Col.TS] - start).dt.total_seconds()).to_numpy(),
        ((signup - start).dt.total_seconds()).to_numpy(),
        last_before({e.value for e in ACTIVITY_EVENT_TYPES}),
        last_before({EventType.PURCHASE.value}),
        last_before({EventType.ADD_TO_CART.value}),
        sim.truth.config.stage_rules,
    )
    names = np.array(["new", "browsing", "carted", "customer", "lapsing", "churned"])[codes]
    assert (names == sim.truth.decision_states["stage"].to_numpy()).all()


def test_oracle_best_action_clearly_beats_random_and_hand_made_rules(world: dict) -> None:
    sim, oracle = world["sim"], world["oracle"]
    states = sim.truth.decision_states.sample(3000, random_state=0)
    best = oracle.best_action(states)[Outcome.EXPECTED_REVENUE].to_numpy()
    nothing = oracle.expected_outcome(states)[Outcome.EXPECTED_REVENUE].to_numpy()
    stage, cart, consent, cooldown = state_arrays(states, oracle.catalog)
    eligible = eligible_actions(oracle.catalog, stage, cart, consent, cooldown)
    channels = ["email", "sms", "push", "in_app", "web"]
    rows, zones, n = oracle.rows(states), oracle.timezones(states), len(states)
    local = {h: local_hour(oracle.send_times(states, h), zones)
             for h in sim.truth.config.send_hours}

    values: dict[tuple[str, str, int], np.ndarray] = {}  # infeasible rows send nothing
    random_total, random_count = np.zeros(n), np.zeros(n)
    for m, message in enumerate(oracle.catalog.message_ids):
        for c in np.flatnonzero(oracle.catalog.allowed_channel[m]):
            for hour, local_hours in local.items():
                # what expected_outcome computes, without re-parsing the states each time
                revenue = oracle.model.evaluate(rows, np.full(n, m), np.full(n, c), local_hours)[
                    Outcome.EXPECTED_REVENUE]
                ok = eligible[:, m, c]
                values[(message, channels[c], hour)] = np.where(ok, revenue, nothing)
                assert (best >= values[(message, channels[c], hour)] - 1e-12).all()
                random_total += np.where(ok, revenue, 0.0)
                random_count += ok
    v_random = np.where(random_count > 0, random_total / np.maximum(random_count, 1), nothing)
    v_static = max(v.mean() for v in values.values())  # one action for all, best in hindsight

    # journeys by stage at 10:00 on the customer's best-liked eligible channel (optimistic)
    affinity = sim.truth.latent.set_index(Col.CUSTOMER_ID).loc[
        states[Col.CUSTOMER_ID], [f"affinity_{c}" for c in channels]].to_numpy()
    journey = {"new": "welcome_series", "browsing": "browse_reminder", "carted": "cart_reminder",
               "lapsing": "win_back_offer", "churned": "win_back_offer"}
    v_journey = nothing.copy()
    for stage_name, message in journey.items():
        m = oracle.catalog.message_ids.index(message)
        liked = np.where(eligible[:, m, :], affinity, -1.0).argmax(axis=1)
        for code, channel in enumerate(channels):
            rows = ((states["stage"] == stage_name).to_numpy() & (liked == code)
                    & eligible[:, m, code])
            if rows.any():
                v_journey[rows] = values[(message, channel, 10)][rows]

    lift = best.mean() - v_random.mean()
    assert lift > 0.5 * v_random.mean()  # the best action is worth much more than chance
    assert v_static - v_random.mean() < 0.3 * lift
    assert v_journey.mean() - v_random.mean() < 0.3 * lift


def test_best_action_only_picks_eligible_actions_and_nothing_for_the_churned(world: dict) -> None:
    sim, oracle = world["sim"], world["oracle"]
    states = sim.truth.decision_states.sample(2000, random_state=1)
    best = oracle.best_action(states, objective="net_value")
    stage, cart, consent, cooldown = state_arrays(states, oracle.catalog)
    eligible = eligible_actions(oracle.catalog, stage, cart, consent, cooldown)
    sends = best[Col.MESSAGE_ID].notna().to_numpy()
    m = [oracle.catalog.message_ids.index(x) for x in best.loc[sends, Col.MESSAGE_ID]]
    c = [["email", "sms", "push", "in_app", "web"].index(x) for x in best.loc[sends, Col.CHANNEL]]
    assert eligible[np.flatnonzero(sends), m, c].all()
    assert not sends[states["churned"].to_numpy()].any()
    assert (best["expected_value"] >= oracle.expected_outcome(states)[
        Outcome.EXPECTED_REVENUE] - 1e-12).all()  # never worse than sending nothing
    again = oracle.expected_outcome(states, best[Col.MESSAGE_ID], best[Col.CHANNEL],
                                    best[Col.SEND_AT])
    np.testing.assert_allclose(again.to_numpy(), best[list(again.columns)].to_numpy())


def test_oracle_rejects_bad_requests_with_a_clear_message(world: dict) -> None:
    sim, oracle = world["sim"], world["oracle"]
    states = sim.truth.decision_states.head(3)
    with pytest.raises(ValueError, match="message_id not in the catalog: spam"):
        oracle.expected_outcome(states, "spam", "email", states[Col.TS])
    with pytest.raises(ValueError, match="send_at is required"):
        oracle.expected_outcome(states, "cart_reminder", "email")
    with pytest.raises(ValueError, match="channel: expected one of"):
        oracle.expected_outcome(states, "cart_reminder", "fax", states[Col.TS])
    with pytest.raises(ValueError, match="lack column.*stage"):
        oracle.expected_outcome(states.drop(columns="stage"))
    unknown = states.assign(customer_id="nobody")
    with pytest.raises(ValueError, match="customer_id not in the ground truth: nobody"):
        oracle.expected_outcome(unknown)


@pytest.mark.parametrize(
    ("decided", "hour", "expected"),
    [
        ("2024-03-09T12:00:00Z", 8, "2024-03-10T12:00:00Z"),  # 08:00 EDT, the day clocks change
        ("2024-03-09T03:00:00Z", 2, "2024-03-10T07:00:00Z"),  # 02:00 does not exist: 03:00 EDT
        ("2024-11-02T04:00:00Z", 1, "2024-11-03T05:00:00Z"),  # 01:00 happens twice: the first
        ("2024-01-10T20:00:00Z", 9, "2024-01-12T14:00:00Z"),  # 24 h later is 15:00: next 09:00
    ],
)
def test_sends_land_on_the_local_hour_across_daylight_saving(
    decided: str, hour: int, expected: str
) -> None:
    from features.simulator import schedule_send_at

    at = schedule_send_at(pd.DatetimeIndex([pd.Timestamp(decided)]),
                          np.array(["America/New_York"]), np.array([hour]), 24)
    assert at[0] == pd.Timestamp(expected)
