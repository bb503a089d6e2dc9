"""``nextbest features``: a user's data folder in, a feature file out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from features.contract import COST_COLUMNS, REQUIRED_COLUMNS, Col, EventType, Table
from features.io import Journeys, parse_table, write_journeys
from tests.features.builders import MESSAGES, customers_frame, decisions_frame, events_frame, ts
from training.cli import app


def _catalog() -> pd.DataFrame:
    rows = [{Col.MESSAGE_ID: m, Col.OBJECTIVE: "welcome", Col.CATEGORY: "general",
             Col.CHANNELS: "email|sms", Col.VALUE: "10", Col.ELIGIBLE_STAGES: "*",
             Col.REQUIRES_CART: "false", Col.COOLDOWN_HOURS: "24",
             **{c: "0.01" for c in COST_COLUMNS}} for m in MESSAGES]
    raw = pd.DataFrame(rows, columns=list(REQUIRED_COLUMNS[Table.CATALOG])).astype(object)
    return parse_table(raw, Table.CATALOG, "catalog.csv")


def test_features_command_writes_every_customer_at_each_time(tmp_path: Path) -> None:
    journeys = Journeys(
        events=events_frame([("a", ts(-1), EventType.PURCHASE, "web", None, 12.5),
                             ("b", ts(-2), EventType.MESSAGE_DELIVERED, "email", "welcome", 0)]),
        customers=customers_frame([{Col.CUSTOMER_ID: "a", "tier": "gold"},
                                   {Col.CUSTOMER_ID: "b", "tier": "silver"}]),
        catalog=_catalog(),
        decisions=decisions_frame([("d1", "b", ts(-2), "welcome", "email", ts(-2))]),
    )
    data = write_journeys(journeys, tmp_path / "data", fmt="csv")
    out = tmp_path / "features.csv"
    runner = CliRunner()
    result = runner.invoke(app, ["features", "--data", str(data), "--out", str(out),
                                 "--as-of", str(ts(0).isoformat()), "--as-of", "2024-02-28"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert len(frame) == 4 and frame.columns[:2].tolist() == [Col.CUSTOMER_ID, "as_of"]
    assert frame["purchase_value_total"].tolist() == [12.5, 0.0, 0.0, 0.0]
    assert frame["hours_since_send_msg_welcome"].iloc[1] == 48.0
    assert "attr_tier" in frame.columns

    bad = runner.invoke(app, ["features", "--data", str(data), "--out", str(out),
                              "--as-of", "soon"])
    assert bad.exit_code == 2 and "--as-of: expected an ISO-8601 time" in bad.output
