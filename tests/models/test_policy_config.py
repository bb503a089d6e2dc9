"""The policy's YAML configs: shipped defaults load, bad files name the key that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from features.contract import Col
from features.io import DataValidationError
from models.policy import (
    DEFAULT_ARBITRATION_PATH,
    DEFAULT_CONTACT_POLICY_PATH,
    PolicyConfigError,
    load_arbitration,
    load_contact_policy,
)
from models.policy.config import QuietHoursRule, ValueMode
from tests.models.policy_support import arbitration, contact_policy, make_catalog, make_engine


def test_shipped_defaults_load_with_documented_values() -> None:
    policy = load_contact_policy()
    assert policy.frequency_caps.per_channel["email"].max_sends == 3
    assert policy.frequency_caps.per_channel["sms"].max_sends == 1
    assert policy.frequency_caps.all_channels[0].max_sends == 5
    assert policy.quiet_hours is not None and policy.quiet_hours.rule is QuietHoursRule.SHIFT
    config = load_arbitration()
    assert config.value_mode is ValueMode.INCREMENTAL
    assert config.send_time.slots_per_pair == 3
    assert 0 < config.control_groups.global_share < 0.5


def _write(tmp_path: Path, default: Path, change: dict[str, object]) -> Path:
    data = yaml.safe_load(default.read_text())
    data.update(change)
    path = tmp_path / default.name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"quiet_hour": {"start": "21:00", "end": "08:00"}}, "quiet_hour"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "21:00", "end": "8"}}, "quiet_hours.end"),
        (
            {"frequency_caps": {"per_channel": {"email": {"max_sends": -1, "window_hours": 24}}}},
            "frequency_caps.per_channel.email.max_sends",
        ),
        (
            {"frequency_caps": {"per_channel": {"fax": {"max_sends": 1, "window_hours": 24}}}},
            "frequency_caps.per_channel.fax",
        ),
        ({"suppression": {"exempt_objectives": ["upsell"]}}, "suppression.exempt_objectives.0"),
    ],
)
def test_bad_contact_policy_names_the_key(
    tmp_path: Path, change: dict[str, object], key: str
) -> None:
    path = _write(tmp_path, DEFAULT_CONTACT_POLICY_PATH, change)
    with pytest.raises(PolicyConfigError) as error:
        load_contact_policy(path)
    message = str(error.value)
    assert str(path) in message
    assert f"- {key}:" in message


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"value_mode": "relative"}, "value_mode"),
        ({"exploration": {"epsilon": 1.5}}, "exploration.epsilon"),
        ({"control_groups": {"global_share": 0.05, "salt": ""}}, "control_groups.salt"),
        ({"objective_weights": {"welcome": -1}}, "objective_weights"),
        ({"send_time": {"horizon_hours": 500}}, "send_time.horizon_hours"),
    ],
)
def test_bad_arbitration_names_the_key(
    tmp_path: Path, change: dict[str, object], key: str
) -> None:
    path = _write(tmp_path, DEFAULT_ARBITRATION_PATH, change)
    with pytest.raises(PolicyConfigError, match=rf"- {key}[:.]"):
        load_arbitration(path)


def test_unreadable_files_are_reported_with_their_path(tmp_path: Path) -> None:
    broken = tmp_path / "policy.yaml"
    broken.write_text("frequency_caps: [unclosed\n")
    with pytest.raises(PolicyConfigError, match="not valid YAML"):
        load_contact_policy(broken)
    with pytest.raises(PolicyConfigError, match="cannot read"):
        load_arbitration(tmp_path / "missing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(PolicyConfigError, match="mapping"):
        load_arbitration(listing)


def test_config_naming_an_unknown_message_fails_at_engine_construction() -> None:
    with pytest.raises(PolicyConfigError, match=r"cooldown_hours\.welcome_sereis"):
        make_engine(policy=contact_policy(cooldown_hours={"welcome_sereis": 12}))
    with pytest.raises(PolicyConfigError, match=r"message_weights\.nope"):
        make_engine(config=arbitration(message_weights={"nope": 2.0}))


def test_invalid_catalog_is_a_data_validation_error() -> None:
    catalog = make_catalog()
    catalog.loc[2, Col.CHANNELS] = "email|pigeon"
    from models.policy import DecisionEngine
    from tests.models.policy_support import make_models

    with pytest.raises(DataValidationError, match="channels"):
        DecisionEngine(catalog, contact_policy(), arbitration(), make_models())


def test_config_hash_changes_with_the_config() -> None:
    base = make_engine()
    assert base.config_hash_ == make_engine().config_hash_
    changed = make_engine(config=arbitration(no_action_margin=0.5))
    assert changed.config_hash_ != base.config_hash_
