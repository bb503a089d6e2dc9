"""Lift report: treated vs control from the decision log and purchase events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import Col, EventType
from features.io import DataValidationError
from models.policy import Assignment, LogField
from models.policy.lift import lift_report, read_decision_log
from tests.models.policy_support import arbitration, make_engine, make_request

START = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


def _experiment(
    n: int, p_treated: float, p_control: float, seed: int = 5
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    customers = [f"c{i}" for i in range(n)]
    control = rng.random(n) < 0.2
    log = pd.DataFrame({
        Col.CUSTOMER_ID: np.repeat(customers, 2),
        Col.TS: [START + timedelta(days=7 * k) for _ in range(n) for k in range(2)],
        LogField.ASSIGNMENT: np.repeat(
            np.where(control, Assignment.GLOBAL_CONTROL.value, Assignment.TREATED.value), 2
        ),
    })
    converts = rng.random(n) < np.where(control, p_control, p_treated)
    buyers = np.flatnonzero(converts)
    events = pd.DataFrame({
        Col.CUSTOMER_ID: [customers[i] for i in buyers] + ["c0"],
        Col.TS: [START + timedelta(days=3)] * len(buyers) + [START - timedelta(days=30)],
        Col.EVENT_TYPE: [EventType.PURCHASE.value] * (len(buyers) + 1),
        Col.VALUE: [50.0] * len(buyers) + [999.0],  # the last one predates the experiment
    })
    return log, events


def test_lift_report_recovers_a_known_effect_with_a_covering_interval() -> None:
    log, events = _experiment(6000, p_treated=0.30, p_control=0.22)
    report = lift_report(log, events).set_index("metric")
    conversion = report.loc["conversion_rate"]
    assert conversion["n_treated"] + conversion["n_control"] == 6000
    assert conversion["ci_low"] < 0.08 < conversion["ci_high"]
    assert conversion["ci_low"] > 0  # the effect is visible at this size
    revenue = report.loc["revenue_per_customer"]
    assert revenue["difference"] == pytest.approx(50 * conversion["difference"])
    assert revenue["relative_lift"] == pytest.approx(conversion["relative_lift"])


def test_lift_report_on_engine_log_records_with_a_campaign_holdout(tmp_path: Path) -> None:
    config = arbitration(control_groups={"global_share": 0.2,
                                         "campaign_holdouts": {"spring": 0.3}})
    engine = make_engine(config=config)
    decisions = engine.decide_many([
        make_request(f"c{i}", START + timedelta(minutes=i), campaign="spring")
        for i in range(300)
    ])
    path = tmp_path / "decisions.jsonl"
    path.write_text("\n".join(json.dumps(d.to_log_record()) for d in decisions))
    log = read_decision_log(path)
    events = pd.DataFrame({
        Col.CUSTOMER_ID: [d.customer_id for d in decisions if d.action is not None],
        Col.TS: [START + timedelta(days=1)] * sum(d.action is not None for d in decisions),
        Col.EVENT_TYPE: EventType.PURCHASE.value,
        Col.VALUE: 20.0,
    })
    report = lift_report(log, events)
    assert list(report["comparison"].unique()) == ["global_control", "campaign:spring"]
    overall = report.set_index(["comparison", "metric"]).loc[("global_control",
                                                              "conversion_rate")]
    n_control = sum(d.assignment is Assignment.GLOBAL_CONTROL for d in decisions)
    assert overall["n_control"] == n_control and overall["control"] == 0.0
    campaign = report.set_index(["comparison", "metric"]).loc[("campaign:spring",
                                                               "conversion_rate")]
    n_holdout = sum(d.assignment is Assignment.CAMPAIGN_HOLDOUT for d in decisions)
    assert campaign["n_control"] == n_holdout
    assert campaign["n_treated"] == 300 - n_control - n_holdout


def test_lift_report_names_missing_columns() -> None:
    log, events = _experiment(50, 0.3, 0.2)
    with pytest.raises(DataValidationError, match="decision log, column 'assignment'"):
        lift_report(log.drop(columns=[LogField.ASSIGNMENT]), events)
    with pytest.raises(DataValidationError, match="outcomes, column 'value'"):
        lift_report(log, events.drop(columns=[Col.VALUE]))
    log.loc[0, LogField.ASSIGNMENT] = "placebo"
    with pytest.raises(DataValidationError, match="placebo"):
        lift_report(log, events)
