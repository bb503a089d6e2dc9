"""docs/features.md documents every feature the code computes, and the stage thresholds."""

from __future__ import annotations

from pathlib import Path

from features import stage
from features.contract import CHANNELS
from features.definitions import FeatureSpec

DOC = (Path(__file__).resolve().parents[2] / "docs" / "features.md").read_text()


def test_every_base_feature_is_in_the_feature_table() -> None:
    pairs = {"visit_hour_cos_1": "visit_hour_cos_1`, `visit_hour_sin_1",
             "visit_hour_cos_2": "visit_hour_cos_2`, `visit_hour_sin_2"}
    spec = FeatureSpec(message_ids=("m",), message_categories=("toys",))
    for name in spec.names:
        if name in ("visit_hour_sin_1", "visit_hour_sin_2"):
            continue
        pattern = pairs.get(name, name).replace("_toys", "_<category>")
        for channel in CHANNELS:
            if name.endswith(f"_{channel}"):
                pattern = name[: -len(channel)] + "<channel>"
        if name == "hours_since_send_msg_m":
            pattern = "hours_since_send_msg_<message>"
        assert f"| `{pattern}` |" in DOC, name


def test_the_documented_stage_rule_uses_the_codes_thresholds() -> None:
    assert f"not seen for {stage.CHURNED_DAYS} days or more" in DOC
    assert f"not seen for {stage.LAPSING_DAYS} days or more" in DOC
    assert f"less than {stage.NEW_DAYS} days ago and never purchased" in DOC
    assert f"purchased within the last {stage.CUSTOMER_DAYS} days" in DOC
