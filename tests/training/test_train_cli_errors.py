"""``nextbest train`` refuses bad input with a message naming the file, key or value, and no
traceback."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.contract import Col
from tests.training.conftest import run_cli


def test_missing_data_folder(tmp_path: Path) -> None:
    result = run_cli("train", "churn", "--data", tmp_path / "nowhere", "--config", "fast")
    assert result.exit_code == 2
    assert "no such data folder" in result.stderr and "Traceback" not in result.output


def test_unknown_task_and_config_key(tmp_path: Path, small_simulation_dir: Path) -> None:
    result = run_cli("train", "upsell", "--data", small_simulation_dir)
    assert result.exit_code == 2 and "unknown task 'upsell'" in result.stderr
    config = tmp_path / "bad.yaml"
    config.write_text("models:\n  churn:\n    num_leafs: 3\n", encoding="utf-8")
    result = run_cli("train", "churn", "--data", small_simulation_dir, "--config", config)
    assert result.exit_code == 2
    assert f"{config}: models.churn.num_leafs: unknown key" in result.stderr


def test_invalid_data_names_file_row_and_column(tmp_path: Path, small_simulation_dir: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for table in ("customers", "catalog", "decisions"):
        pd.read_parquet(small_simulation_dir / f"{table}.parquet").to_parquet(
            data / f"{table}.parquet"
        )
    events = pd.read_parquet(small_simulation_dir / "events.parquet").head(50)
    events[Col.EVENT_TYPE] = events[Col.EVENT_TYPE].astype(str)
    events.loc[3, Col.EVENT_TYPE] = "teleport"
    events.to_csv(data / "events.csv", index=False)
    result = run_cli("train", "churn", "--data", data, "--config", "fast")
    assert result.exit_code == 2
    assert "events.csv, row 4, column 'event_type'" in result.stderr
    assert "teleport" in result.stderr
