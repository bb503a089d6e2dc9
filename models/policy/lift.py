"""Lift report: treated customers vs the control groups, from the decision log and the events.

The comparison is intention-to-treat at the customer level, which is what the hash-based
assignment randomises: every customer of the log is in exactly one arm for the whole period (the
global control group is stable by construction). A customer's outcome window runs from their
first logged decision to ``attribution_hours`` after their last one; conversion means at least one
purchase in it, revenue is the sum of purchase values in it. Differences come with a normal
(Welch) confidence interval, which is adequate for the thousands of customers a control group of
a few percent holds; with fewer, read the interval as indicative.

Rows: one comparison of everyone treated by the policy against the global control group, then
one per campaign with a holdout (campaign-treated vs campaign holdout, global control excluded).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
from rich.table import Table

from features.contract import DEFAULT_ATTRIBUTION_HOURS, Col, EventType
from features.io import DataValidationError, Problem, read_raw
from features.schemas import to_utc
from models.policy.logrecord import LogField
from models.policy.types import Assignment

logger = logging.getLogger(__name__)

GLOBAL_COMPARISON = "global_control"
CONVERSION_RATE = "conversion_rate"
REVENUE_PER_CUSTOMER = "revenue_per_customer"
LIFT_COLUMNS = (
    "comparison", "metric", "n_treated", "n_control", "treated", "control",
    "difference", "ci_low", "ci_high", "relative_lift",
)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            [Problem(source, c, f"a column '{c}'") for c in missing]
        )


def read_decision_log(path: Path | str) -> pd.DataFrame:
    """A decision log as a frame: JSON lines of ``Decision.to_log_record()`` (``.jsonl``), or a
    CSV/Parquet table with at least customer_id, ts and assignment."""
    path = Path(path)
    if path.suffix in {".jsonl", ".ndjson"}:
        try:
            with path.open(encoding="utf-8") as lines:
                records = [json.loads(line) for line in lines if line.strip()]
        except (OSError, json.JSONDecodeError) as exc:
            raise DataValidationError(
                [Problem(str(path), None, f"one JSON decision record per line ({exc})")]
            ) from exc
        return pd.DataFrame.from_records(records)
    return read_raw(path)


def _windows(decisions: pd.DataFrame, attribution_hours: float) -> pd.DataFrame:
    grouped = decisions.groupby(Col.CUSTOMER_ID, sort=False)
    windows = grouped.agg(start=(Col.TS, "min"), end=(Col.TS, "max"), arm=("_control", "max"))
    windows["end"] = windows["end"] + pd.Timedelta(hours=attribution_hours)
    return windows


def _outcomes(windows: pd.DataFrame, purchases: pd.DataFrame) -> pd.DataFrame:
    joined = purchases.merge(windows, left_on=Col.CUSTOMER_ID, right_index=True, how="inner")
    inside = joined[(joined[Col.TS] >= joined["start"]) & (joined[Col.TS] <= joined["end"])]
    revenue = inside.groupby(Col.CUSTOMER_ID)[Col.VALUE].sum()
    result = windows[["arm"]].copy()
    result["revenue"] = revenue.reindex(result.index, fill_value=0.0).astype(float)
    result["converted"] = result.index.isin(revenue.index).astype(float)
    return result


def _compare(name: str, per_customer: pd.DataFrame, z: float) -> list[dict[str, object]]:
    treated = per_customer[~per_customer["arm"]]
    control = per_customer[per_customer["arm"]]
    rows: list[dict[str, object]] = []
    for metric, column in ((CONVERSION_RATE, "converted"), (REVENUE_PER_CUSTOMER, "revenue")):
        a, b = treated[column].to_numpy(), control[column].to_numpy()
        mean_a = float(a.mean()) if a.size else float("nan")
        mean_b = float(b.mean()) if b.size else float("nan")
        difference = mean_a - mean_b
        if a.size > 1 and b.size > 1:
            half = z * float(np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))
        else:
            half = float("nan")
        rows.append(
            {
                "comparison": name,
                "metric": metric,
                "n_treated": int(a.size),
                "n_control": int(b.size),
                "treated": mean_a,
                "control": mean_b,
                "difference": difference,
                "ci_low": difference - half,
                "ci_high": difference + half,
                "relative_lift": difference / mean_b if mean_b else float("nan"),
            }
        )
    return rows


def lift_report(
    decision_log: pd.DataFrame,
    outcomes: pd.DataFrame,
    attribution_hours: float = DEFAULT_ATTRIBUTION_HOURS,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Treated vs control conversion rate and revenue per customer, with confidence intervals.

    ``decision_log``: customer_id, ts, assignment (and campaign for holdout rows), e.g. the
    records of ``Decision.to_log_record()``. ``outcomes``: events in the contract (customer_id,
    ts, event_type, value); purchases are the outcome.
    """
    _require(decision_log, (Col.CUSTOMER_ID, Col.TS, LogField.ASSIGNMENT), "decision log")
    _require(outcomes, (Col.CUSTOMER_ID, Col.TS, Col.EVENT_TYPE, Col.VALUE), "outcomes")
    known = {a.value for a in Assignment}
    unknown = sorted(set(decision_log[LogField.ASSIGNMENT].astype(str)) - known)
    if unknown:
        raise DataValidationError(
            [Problem("decision log", LogField.ASSIGNMENT, f"one of {sorted(known)}",
                     found=tuple(unknown))]
        )
    log = decision_log.copy()
    log[Col.TS] = to_utc(log[Col.TS])
    purchases = outcomes[outcomes[Col.EVENT_TYPE] == EventType.PURCHASE.value].copy()
    purchases[Col.TS] = to_utc(purchases[Col.TS])
    purchases[Col.VALUE] = pd.to_numeric(purchases[Col.VALUE]).fillna(0.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)

    log["_control"] = log[LogField.ASSIGNMENT] == Assignment.GLOBAL_CONTROL.value
    rows = _compare(GLOBAL_COMPARISON, _outcomes(_windows(log, attribution_hours), purchases), z)

    if Col.CAMPAIGN in log.columns:
        in_campaign = log[log[Col.CAMPAIGN].notna() & ~log["_control"]].copy()
        in_campaign["_control"] = (
            in_campaign[LogField.ASSIGNMENT] == Assignment.CAMPAIGN_HOLDOUT.value
        )
        for campaign, decisions in in_campaign.groupby(Col.CAMPAIGN, sort=True):
            if not decisions["_control"].any():
                continue
            windows = _windows(decisions, attribution_hours)
            rows += _compare(f"campaign:{campaign}", _outcomes(windows, purchases), z)
    report = pd.DataFrame(rows, columns=list(LIFT_COLUMNS))
    logger.info("lift report: %d comparisons over %d customers", len(report) // 2,
                log[Col.CUSTOMER_ID].nunique())
    return report


def lift_table(report: pd.DataFrame) -> Table:
    """The report as a rich table for the terminal."""
    table = Table(title="Policy lift: treated vs control (intention to treat, per customer)")
    for column in ("comparison", "metric", "treated", "control", "difference", "95% CI",
                   "relative", "n treated / control"):
        table.add_column(column, justify="left" if column in {"comparison", "metric"} else "right")
    for row in report.itertuples(index=False):
        money = row.metric == REVENUE_PER_CUSTOMER
        value = "{:.3f}".format if money else "{:.2%}".format
        table.add_row(
            str(row.comparison), str(row.metric), value(row.treated), value(row.control),
            value(row.difference), f"[{value(row.ci_low)}, {value(row.ci_high)}]",
            f"{row.relative_lift:+.1%}", f"{row.n_treated} / {row.n_control}",
        )
    return table
