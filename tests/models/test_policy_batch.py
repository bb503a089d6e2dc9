"""A batch decides exactly like one request at a time, across every rule and arm."""

from __future__ import annotations

from collections import Counter

import pytest

from models.policy import Assignment, ReasonCode
from tests.models.policy_variety import varied_engines, varied_requests

REQUESTS = varied_requests(160)


@pytest.mark.parametrize("engine_index", [0, 1, 2])
def test_decide_many_equals_deciding_each_request_alone(engine_index: int) -> None:
    engine = varied_engines()[engine_index]
    batch = engine.decide_many(REQUESTS)
    singles = [engine.decide(r) for r in REQUESTS]
    assert [repr(d) for d in batch] == [repr(d) for d in singles]
    assert [d.to_log_record() for d in batch] == [d.to_log_record() for d in singles]
    # split batches too: a request's decision does not depend on its neighbours
    halves = engine.decide_many(REQUESTS[:57]) + engine.decide_many(REQUESTS[57:])
    assert [repr(d) for d in halves] == [repr(d) for d in batch]


def test_the_varied_requests_exercise_every_arm_and_the_contact_rules() -> None:
    reasons: Counter[ReasonCode] = Counter()
    arms: Counter[Assignment] = Counter()
    explored = 0
    for engine in varied_engines()[:2]:
        for decision in engine.decide_many(REQUESTS):
            reasons.update(decision.reasons)
            reasons.update(e.reason for e in decision.exclusions)
            arms[decision.assignment] += 1
            explored += decision.explored
    assert explored > 0 and set(arms) == set(Assignment)
    for reason in (ReasonCode.CAP_CHANNEL, ReasonCode.COOLDOWN, ReasonCode.UNSUBSCRIBED,
                   ReasonCode.NO_CONSENT, ReasonCode.QUIET_HOURS, ReasonCode.QUIET_HOURS_SHIFTED,
                   ReasonCode.SUPPRESSED_AFTER_CONVERSION, ReasonCode.EXPLORATION,
                   ReasonCode.NO_CANDIDATES, ReasonCode.BELOW_NO_ACTION):
        assert reasons[reason] > 0, reason
