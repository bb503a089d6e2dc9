"""The engine asks the send-time model only for the hours its slots fall in, and decides exactly
as with all 168 hours scored."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.interfaces import SelectiveSendTimeScorer
from models.policy import DecisionEngine, DecisionRequest
from models.sendtime import HOURS_PER_WEEK, SendTimeModel
from tests.models.policy_support import N_FEATURES
from tests.models.policy_variety import varied_engines, varied_requests


class AllHoursOnly:
    """The same model seen through the 168-hour method alone (what a plain scorer offers)."""

    def __init__(self, model: SendTimeModel) -> None:
        self.model = model

    def predict_hours(self, features: np.ndarray, hour_profile: np.ndarray) -> np.ndarray:
        return self.model.predict_hours(features, hour_profile)


class CountingSelective:
    """Records how many (customer, hour) cells the engine asked for."""

    def __init__(self, model: SendTimeModel) -> None:
        self.model = model
        self.asked: list[int] = []

    def predict_hours(self, features: np.ndarray, hour_profile: np.ndarray) -> np.ndarray:
        return self.model.predict_hours(features, hour_profile)

    def predict_hours_at(
        self, features: np.ndarray, hour_profile: np.ndarray, wanted: np.ndarray
    ) -> np.ndarray:
        self.asked.append(int(wanted.sum()))
        return self.model.predict_hours_at(features, hour_profile, wanted)


@pytest.fixture(scope="module")
def model() -> SendTimeModel:
    rng = np.random.default_rng(3)
    n = 600
    profile = rng.poisson(0.4, (n, HOURS_PER_WEEK)).astype(float)
    profile[:60] = 0.0  # thin histories get the population profile
    engaged = rng.random((n, HOURS_PER_WEEK)) < 0.02 + 0.2 * (profile > 0)
    return SendTimeModel(n_estimators=15, num_leaves=7, min_child_samples=20,
                         early_stopping_rounds=None, n_jobs=1, random_state=0).fit(
        rng.random((n, N_FEATURES)), engaged.astype(float), hour_profile=profile)


def _requests(n: int) -> list[DecisionRequest]:
    requests = varied_requests(n, seed=9)
    # a few new customers: their hours come from the population profile
    return [dataclasses.replace(r, hour_profile=np.zeros((1, HOURS_PER_WEEK))) if i % 7 == 0
            else r for i, r in enumerate(requests)]


def test_scores_only_the_wanted_hours_and_exactly_the_full_scores(model) -> None:
    rng = np.random.default_rng(4)
    features = rng.random((40, N_FEATURES))
    profile = rng.poisson(0.4, (40, HOURS_PER_WEEK)).astype(float)
    profile[:5] = 0.0
    wanted = rng.random((40, HOURS_PER_WEEK)) < 0.3
    wanted[7] = False  # a customer with no hour asked for
    full = model.predict_hours(features, profile)
    some = model.predict_hours_at(features, profile, wanted)
    assert np.array_equal(some[wanted], full[wanted])  # bit for bit
    assert np.isnan(some[~wanted]).all()
    assert np.array_equal(some[0][wanted[0]], model.population_rate_[wanted[0]])
    assert isinstance(model, SelectiveSendTimeScorer)
    with pytest.raises(ValueError, match="wanted"):
        model.predict_hours_at(features, profile, wanted[:, :24])


@pytest.mark.parametrize("engine_index", [0, 1, 2])
def test_decisions_equal_those_with_every_hour_scored(model, engine_index: int) -> None:
    base = varied_engines()[engine_index]
    counting = CountingSelective(model)
    selective = base.with_models(dataclasses.replace(base.models, send_time=counting))
    everything = base.with_models(dataclasses.replace(base.models, send_time=AllHoursOnly(model)))
    requests = _requests(120)
    ours, theirs = selective.decide_many(requests), everything.decide_many(requests)
    assert [d.to_log_record() for d in ours] == [d.to_log_record() for d in theirs]
    assert [repr(d) for d in ours] == [repr(d) for d in theirs]
    # and well under a third of the week was scored
    assert counting.asked[0] < 0.35 * HOURS_PER_WEEK * len(requests)


def test_a_single_request_asks_only_for_its_slot_hours(model) -> None:
    base: DecisionEngine = varied_engines()[0]
    counting = CountingSelective(model)
    engine = base.with_models(dataclasses.replace(base.models, send_time=counting))
    request = _requests(3)[1]
    engine.decide(request)
    horizon = engine.arbitration.send_time.horizon_hours
    assert 0 < counting.asked[0] <= horizon + 1 + 8  # the slots, plus a few shifted ones
