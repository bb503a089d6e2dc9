"""Real data through the same pipeline: a subsample of the Hillstrom experiment, exported to the
journey contract, trains the conversion model with ``training/configs/hillstrom.yaml``."""

from __future__ import annotations

import math
from pathlib import Path

from features.io import write_journeys
from tests.training.conftest import json_summary, run_cli
from training.hillstrom import read_hillstrom, to_journeys

N_CUSTOMERS = 6_000


def test_hillstrom_subsample_trains_conversion(tmp_path: Path, scratch_tracking_uri: str) -> None:
    frame = read_hillstrom().sample(n=N_CUSTOMERS, random_state=3).reset_index(drop=True)
    data = write_journeys(to_journeys(frame, seed=3), tmp_path / "hillstrom")

    summary = json_summary(run_cli(
        "train", "conversion", "--data", data, "--config", "hillstrom",
        "--tracking-uri", scratch_tracking_uri, "--json",
    ))

    assert summary["experiment"] == "nextbest-hillstrom"
    result = summary["tasks"]["conversion"]
    # Its own registered model: it never competes with the simulated world's champion.
    assert result["model_name"] == "nextbest-hillstrom-conversion"
    # One campaign at one moment: validation holds out 30 % of the customers, not a time window.
    assert result["rows"]["valid"] == round(0.3 * N_CUSTOMERS)
    assert result["rows"]["train"] + result["rows"]["valid"] == N_CUSTOMERS
    assert all(math.isfinite(result["metrics"][m]) for m in ("roc_auc", "log_loss", "brier"))
    assert result["promotion"]["promoted"] is True
