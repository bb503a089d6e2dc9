"""Training configurations: packaged files load, mistakes are reported with file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import (
    ConfigError,
    TrainConfig,
    load_config,
    packaged_config_names,
    parse_config,
)
from training.tasks import Task


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["default", "fast", "hillstrom"])
def test_packaged_configurations_load(name: str) -> None:
    config = load_config(name)
    assert config.tasks
    assert name in packaged_config_names()


def test_unknown_top_level_key_names_file_key_and_allowed_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "experiment: x\nvalid_fractoin: 0.3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert "valid_fractoin: unknown key" in message
    assert "valid_fraction" in message  # the allowed keys are listed, so the typo is obvious


def test_unknown_nested_key_names_its_full_path(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  churn:\n    n_trees: 10\n")
    with pytest.raises(ConfigError, match=r"models\.churn\.n_trees: unknown key") as caught:
        load_config(path)
    assert "n_estimators" in str(caught.value)


def test_unknown_key_in_dataset_section(tmp_path: Path) -> None:
    path = write(tmp_path, "dataset:\n  max_rows:\n    churnn: 10\n")
    with pytest.raises(ConfigError, match=r"dataset\.max_rows\.churnn: unknown key"):
        load_config(path)


def test_bad_values_name_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "valid_fraction: 1.5\ntasks: [churn, upsell]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "valid_fraction" in message and "1.5" in message
    assert "tasks.1" in message and "upsell" in message


def test_yaml_syntax_error_and_missing_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "models: [unclosed\n"))
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_config(["a", "list"], "list.yaml")


def test_global_seed_fills_every_unset_seed_but_keeps_explicit_ones() -> None:
    config = parse_config({"seed": 42, "models": {"churn": {"random_state": 5}}})
    assert config.dataset.seed == 42
    assert config.models.conversion.random_state == 42
    assert config.models.churn.random_state == 5


def test_model_names_follow_the_registry_prefix() -> None:
    assert TrainConfig().model_name(Task.CHURN) == "nextbest-churn"
    config = parse_config({"registry_prefix": "acme", "tasks": ["churn", "churn"]})
    assert config.model_name(Task.CONVERSION) == "acme-conversion"
    assert config.tasks == [Task.CHURN]
