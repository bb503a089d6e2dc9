"""The service's decider on its own: the features it builds for the engine, and the smoke check
that keeps a model set the service cannot use from ever being served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contract import CHANNELS, Channel, Col, EventType, Table
from features.customers import CustomerTable
from features.definitions import FeatureSpec
from features.eventlog import EVENT_CODE, EventLog
from features.io import find_table_file, load_table
from features.pointintime import compute_features
from models.registry import TASKS
from serving.customer_features import CustomerState, FeatureBuilder, to_ns
from serving.decision import Decider, DecisionContext, ModelSetMismatch
from serving.model_follower import ModelSet
from serving.settings import Settings, get_settings
from serving.stores.base import CustomerProfile
from tests.serving.conftest import NOW
from tests.serving.tiny_models import tiny_scorer
from training.cli import app

UNSUBSCRIBE = EVENT_CODE[EventType.UNSUBSCRIBE]


@pytest.fixture
def catalog(data_dir) -> pd.DataFrame:
    return load_table(find_table_file(data_dir, Table.CATALOG), Table.CATALOG)


def _models(spec: FeatureSpec | None, **per_task: object) -> ModelSet:
    estimators = {t: per_task.get(t, tiny_scorer(seed=1, spec=spec)) for t in TASKS}
    return ModelSet("champion", dict.fromkeys(TASKS, "1"), estimators)


def _history(customer_id: str, message_ids: tuple[str, ...], n: int = 6) -> EventLog:
    rng = np.random.default_rng(len(customer_id))
    ts = to_ns(NOW) - rng.integers(1, 40 * 86_400, n).astype(np.int64) * 1_000_000_000
    return EventLog.from_arrays(
        customer_id, ts, rng.integers(0, 8, n).astype(np.int16),
        rng.integers(0, len(CHANNELS), n).astype(np.int16),
        rng.integers(-1, len(message_ids), n).astype(np.int16), rng.random(n) * 10, message_ids,
    )  # fmt: skip


def _profile(customer_id: str, timezone: str, **attributes: object) -> CustomerProfile:
    return CustomerProfile(
        customer_id, timezone, datetime(2024, 1, 1, tzinfo=UTC),
        {Channel.EMAIL: True, Channel.SMS: False}, attributes,
    )  # fmt: skip


def test_a_batch_gets_exactly_the_features_of_single_customers(spec):
    builder = FeatureBuilder(spec, cold_start_channels=[Channel.WEB])
    states = [
        CustomerState("a", _profile("a", "Europe/Paris", segment="gold"),
                      _history("a", spec.message_ids)),
        CustomerState("b", None, _history("b", spec.message_ids, 3)),
        CustomerState("a", _profile("a", "Asia/Tokyo"), _history("a", spec.message_ids)),
    ]  # fmt: skip
    now = np.array([to_ns(NOW), to_ns(NOW + timedelta(hours=5)), to_ns(NOW)])
    batch = builder.build(states, now)
    for i, state in enumerate(states):
        single = builder.build([state], now[i : i + 1])
        np.testing.assert_array_equal(batch.features[i], single.features[0])
        np.testing.assert_array_equal(batch.hour_profile[i], single.hour_profile[0])
        assert batch.stages[i] == single.stages[0] and batch.timezones[i] == single.timezones[0]
    # and the single-customer path is the feature layer's own function
    table = CustomerTable.from_profile("a", {Col.TIMEZONE: "Europe/Paris",
                                             Col.SIGNUP_TS: to_ns(datetime(2024, 1, 1, tzinfo=UTC)),
                                             "consent_email": True, "segment": "gold"}, spec)
    expected = compute_features(states[0].events, table, spec, np.zeros(1, np.int64), now[:1])
    np.testing.assert_array_equal(batch.features[0], expected[0])


def test_live_consent_is_the_profile_minus_unsubscribes_and_cold_start_uses_the_setting(spec):
    builder = FeatureBuilder(spec, cold_start_channels=[Channel.IN_APP, Channel.WEB])
    unsubscribed = EventLog.from_arrays(
        "a", np.array([to_ns(NOW) - 10**9]), np.array([UNSUBSCRIBE], np.int16),
        np.array([CHANNELS.index(Channel.EMAIL)], np.int16), np.array([-1], np.int16),
        np.zeros(1), spec.message_ids,
    )  # fmt: skip
    states = [CustomerState("a", _profile("a", "UTC"), unsubscribed),
              CustomerState("z", None, _history("z", spec.message_ids, 0))]  # fmt: skip
    inputs = builder.build(states, np.array([to_ns(NOW)] * 2))
    assert not inputs.consent[0].any()  # e-mail consent withdrawn, SMS never given
    assert dict(zip(CHANNELS, inputs.consent[1].tolist(), strict=True)) == {
        Channel.EMAIL: False, Channel.SMS: False, Channel.PUSH: False,
        Channel.IN_APP: True, Channel.WEB: True,
    }  # fmt: skip
    assert inputs.stages[1] == "new" and inputs.timezones[1] == "UTC"


def test_a_stored_attribute_the_models_cannot_read_counts_as_missing(spec):
    numeric = FeatureSpec.from_customers(
        pd.DataFrame({Col.CUSTOMER_ID: ["a"], Col.TIMEZONE: ["UTC"],
                      Col.SIGNUP_TS: [pd.Timestamp("2024-01-01", tz="UTC")],
                      **{f"consent_{c.value}": [True] for c in CHANNELS},
                      "score": [1.5]}), spec.message_ids,
    )  # fmt: skip
    builder = FeatureBuilder(numeric, cold_start_channels=[])
    profile = _profile("a", "UTC", score="not a number")
    state = CustomerState("a", profile, _history("a", numeric.message_ids))
    inputs = builder.build([state], np.array([to_ns(NOW)]))
    assert np.isnan(inputs.features[0, numeric.index("attr_score")])


def test_the_smoke_check_decides_for_a_fixed_customer_with_sound_models(catalog, spec):
    decider = Decider.from_settings(catalog, Settings(auth_disabled=True))
    models = _models(spec)
    decider.smoke_check(models)
    assert decider.prepare(models) is decider.prepare(models)  # prepared once per model set
    state = CustomerState("x", None, _history("x", spec.message_ids, 0))
    (decision,) = decider.decide_many([state], [DecisionContext(now=NOW)], models)
    assert decision.cold_start and decision.model_versions == dict.fromkeys(TASKS, "1")


def test_the_smoke_check_refuses_what_the_service_cannot_use(catalog, spec):
    decider = Decider.from_settings(catalog, Settings(auth_disabled=True))
    with pytest.raises(ModelSetMismatch, match="churn version 1: the estimator carries no "):
        decider.smoke_check(_models(spec, churn=tiny_scorer(seed=2)))
    other = FeatureSpec(message_ids=("something-else",))
    with pytest.raises(ModelSetMismatch, match="different feature specs"):
        decider.smoke_check(_models(spec, channel=tiny_scorer(seed=2, spec=other)))
    with pytest.raises(ModelSetMismatch, match=r"trained for the catalog messages \['something"):
        decider.smoke_check(_models(other))
    with pytest.raises(ValueError, match=r"churn: probabilities outside \[0, 1\]"):
        decider.smoke_check(_models(spec, churn=tiny_scorer(seed=2, scale=40.0, spec=spec)))


def test_a_bad_policy_file_stops_serve_with_a_message_naming_the_key(tmp_path, monkeypatch):
    policy = tmp_path / "contact_policy.yaml"
    policy.write_text("version: 1\nfrequency_caps:\n  per_channel:\n    email: {max_send: 3}\n")
    monkeypatch.setenv("NEXTBEST_AUTH_DISABLED", "true")
    monkeypatch.setenv("NEXTBEST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NEXTBEST_CONTACT_POLICY_PATH", str(policy))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--port", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "cannot start" in result.output and "max_send" in result.output
    assert str(policy) in result.output
