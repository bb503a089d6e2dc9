"""The engine as serving uses it: batches, bad requests, broken models, hot model swaps."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from features.contract import Channel
from models.policy import DecisionInputError, ModelSet, ReasonCode, ScoringError
from tests.models.policy_support import (
    ConstantChurn,
    FlatChannels,
    PeakHours,
    TableConversion,
    arbitration,
    make_engine,
    make_models,
    make_request,
)

NOW = datetime(2024, 5, 6, 10, 15, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "decision-policy.md"


def test_a_batch_decides_like_single_calls_with_one_conversion_call() -> None:
    conversion = TableConversion(base_from_features=True)
    engine = make_engine(models=make_models(conversion),
                         config=arbitration(exploration={"epsilon": 0.2}))
    requests = [
        make_request(f"b-{i}", NOW + timedelta(hours=i), base=0.01 * (i % 7), stage=stage)
        for i, stage in enumerate(["customer", "new", "lapsing", "browsing"] * 5)
    ]
    batch = engine.decide_many(requests)
    assert conversion.calls == 1
    singles = [engine.decide(r) for r in requests]
    assert [d.to_log_record() for d in batch] == [d.to_log_record() for d in singles]
    assert engine.decide_many([]) == []


def test_typical_customer_gets_more_than_a_hundred_scored_candidates() -> None:
    engine = make_engine(every_channel=True, every_stage=True)
    decision = engine.decide(make_request(now=NOW))
    assert decision.n_candidates >= 100


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"now": datetime(2024, 5, 6, 10, 15)}, "now"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"features": np.zeros(6)}, "features"),
        ({"hour_profile": np.zeros((1, 24))}, "hour_profile"),
        ({"candidate_message_ids": ("welcome_series", "nope")}, "candidate_message_ids"),
        ({"allowed_channels": ("email", "fax")}, "allowed_channels"),
        ({"top_k": -1}, "top_k"),
        ({"customer_id": ""}, "customer_id"),
        ({"stage": "sleeping"}, "stage"),
    ],
)
def test_bad_requests_name_the_field(change: dict[str, object], field: str) -> None:
    request = replace(make_request(now=NOW), **change)  # type: ignore[arg-type]
    with pytest.raises(DecisionInputError, match=rf"^{field}: expected"):
        make_engine().decide(request)


def test_a_batch_with_mismatched_feature_widths_is_rejected() -> None:
    wide = replace(make_request("w", NOW), features=np.zeros((1, 9)))
    with pytest.raises(DecisionInputError, match="features"):
        make_engine().decide_many([make_request("n", NOW), wide])


class _NanConversion(TableConversion):
    def predict_conversion(self, features, message, channel, local_hour):  # type: ignore[no-untyped-def]
        p = super().predict_conversion(features, message, channel, local_hour)
        p[0] = np.nan
        return p


class _ShortChurn(ConstantChurn):
    def predict_churn(self, features: np.ndarray) -> np.ndarray:
        return np.zeros(0)


def test_broken_model_outputs_raise_a_scoring_error_naming_the_model() -> None:
    with pytest.raises(ScoringError, match="conversion model"):
        make_engine(models=make_models(_NanConversion())).decide(make_request(now=NOW))
    broken_churn = ModelSet(TableConversion(), _ShortChurn(), FlatChannels(), PeakHours())
    with pytest.raises(ScoringError, match="churn model: expected an array of shape"):
        make_engine(models=broken_churn).decide(make_request(now=NOW))


def test_model_set_rejects_objects_without_the_protocol_method() -> None:
    with pytest.raises(TypeError, match=r"ModelSet\.churn: expected an object with a "
                                        r"predict_churn\(\) method"):
        ModelSet(TableConversion(), object(), FlatChannels(), PeakHours())  # type: ignore[arg-type]


def test_with_models_swaps_models_and_versions_without_rebuilding() -> None:
    engine = make_engine()
    negative = ModelSet(TableConversion(lift=-0.01), ConstantChurn(), FlatChannels(),
                        PeakHours(), versions={"conversion": "4"})
    swapped = engine.with_models(negative)
    assert swapped.catalog_ is engine.catalog_
    decision = swapped.decide(make_request(now=NOW))
    assert decision.action is None and decision.model_versions == {"conversion": "4"}
    assert engine.decide(make_request(now=NOW)).action is not None


def test_cold_start_is_flagged_not_an_error() -> None:
    decision = make_engine().decide(make_request("unknown", NOW, cold_start=True))
    assert decision.cold_start
    assert decision.reasons[-1] is ReasonCode.COLD_START
    assert decision.action is not None


def test_nan_channel_preference_is_reported_as_unknown() -> None:
    class _Thin(FlatChannels):
        def predict_channels(self, features: np.ndarray) -> np.ndarray:
            return np.full((features.shape[0], 5), np.nan)

    models = ModelSet(TableConversion(), ConstantChurn(), _Thin(), PeakHours())
    decision = make_engine(models=models).decide(
        make_request(now=NOW, allowed_channels=(Channel.EMAIL,))
    )
    assert decision.action is not None and decision.scores.channel_preference is None


def test_every_reason_code_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    assert {r.value for r in ReasonCode} <= documented
