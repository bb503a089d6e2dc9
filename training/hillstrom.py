"""Kevin Hillstrom's MineThatData e-mail experiment, turned into nextbest's journey data contract.

64,000 customers were randomly sent a Mens e-mail, a Womens e-mail or nothing (1/3 each) and
followed for two weeks (visit, conversion, spend). The data has no timestamps, timezones or ids,
so the adapter adds documented conventions (``docs/hillstrom.md``): one campaign time for every
decision, one default timezone, a signup date derived from ``recency`` and ``newbie``, and outcome
events placed at seeded random times inside the 14-day window. Counts and amounts are kept
exactly; only the times are invented.

Two views of the same rows:
- :func:`read_hillstrom` gives the flat frame (attributes, ``arm``, ``visit``, ``conversion``,
  ``spend``) that the policy benchmark learns from;
- :func:`to_journeys` gives the four contract tables that every other nextbest tool reads.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from features.contract import (
    ALL_STAGES,
    CONSENT_COLUMNS,
    COST_COLUMNS,
    REQUIRED_COLUMNS,
    Channel,
    Col,
    EventType,
    Objective,
    Table,
    consent_column,
    cost_column,
)
from features.io import DataValidationError, Journeys, Problem, write_journeys

logger = logging.getLogger(__name__)

#: Where the vendored copy lives inside the installed package.
DATA_PACKAGE: Final = "training.data"
DATA_FILE: Final = "hillstrom.csv.gz"

#: The experiment's arms in action-code order (0, 1, 2): the order every array of this module
#: and of the benchmark uses.
ARMS: Final[tuple[str, ...]] = ("none", "mens", "womens")
NO_EMAIL, MENS, WOMENS = range(3)
#: Values of the raw ``segment`` column, by arm.
RAW_SEGMENTS: Final[dict[str, str]] = {
    "No E-Mail": "none",
    "Mens E-Mail": "mens",
    "Womens E-Mail": "womens",
}
#: Catalog message of each mailed arm.
ARM_MESSAGES: Final[dict[str, str]] = {"mens": "mens_email", "womens": "womens_email"}
OUTCOMES: Final[tuple[str, ...]] = ("visit", "conversion", "spend")

#: The three arms were assigned uniformly at random: every logged decision has this propensity.
ARM_PROPENSITY: Final = 1.0 / 3.0
POLICY_NAME: Final = "hillstrom_random"
CAMPAIGN_NAME: Final = "hillstrom_2008"
#: The data has no date; the challenge was published in March 2008. 15:00 UTC is 10:00 in New
#: York, a usual morning send for a US retailer.
DEFAULT_CAMPAIGN_TS: Final = pd.Timestamp("2008-03-03T15:00:00Z")
#: The data has no location beyond urban/suburban/rural; the retailer is American.
DEFAULT_TIMEZONE: Final = "America/New_York"
#: Outcomes were measured over the two weeks after the campaign.
OUTCOME_WINDOW: Final = pd.Timedelta(days=14)
#: A send is delivered this long after the decision.
DELIVERY_DELAY: Final = pd.Timedelta(minutes=1)
#: Cost of one e-mail send in the catalog (an assumption: the data has no cost).
EMAIL_COST: Final = 0.01
_DAYS_PER_MONTH: Final = 365.25 / 12


class HillstromCol:
    """Names of the Hillstrom attribute and outcome columns (raw and as customer attributes)."""

    RECENCY: Final = "recency"
    HISTORY_SEGMENT: Final = "history_segment"
    HISTORY: Final = "history"
    MENS: Final = "mens"
    WOMENS: Final = "womens"
    ZIP_CODE: Final = "zip_code"
    NEWBIE: Final = "newbie"
    #: Raw ``channel`` (where the customer bought last year): renamed so that it cannot be
    #: confused with the contract's ``channel`` column.
    RAW_CHANNEL: Final = "channel"
    PURCHASE_CHANNEL: Final = "purchase_channel"
    SEGMENT: Final = "segment"
    ARM: Final = "arm"
    VISIT: Final = "visit"
    CONVERSION: Final = "conversion"
    SPEND: Final = "spend"


H = HillstromCol
#: Customer attributes kept as extra customer columns (after renaming ``channel``).
ATTRIBUTES: Final[tuple[str, ...]] = (
    H.RECENCY, H.HISTORY_SEGMENT, H.HISTORY, H.MENS, H.WOMENS, H.ZIP_CODE, H.NEWBIE,
    H.PURCHASE_CHANNEL,
)
_RAW_COLUMNS: Final[tuple[str, ...]] = (
    H.RECENCY, H.HISTORY_SEGMENT, H.HISTORY, H.MENS, H.WOMENS, H.ZIP_CODE, H.NEWBIE,
    H.RAW_CHANNEL, H.SEGMENT, H.VISIT, H.CONVERSION, H.SPEND,
)
_BINARY: Final = (H.MENS, H.WOMENS, H.NEWBIE, H.VISIT, H.CONVERSION)
_CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    H.ZIP_CODE: ("Urban", "Surburban", "Rural"),
    H.RAW_CHANNEL: ("Phone", "Web", "Multichannel"),
    H.SEGMENT: tuple(RAW_SEGMENTS),
}


def vendored_path() -> Path:
    """Path of the copy shipped inside the package (``training/data/hillstrom.csv.gz``)."""
    return Path(str(resources.files(DATA_PACKAGE).joinpath(DATA_FILE)))


def read_hillstrom(path: Path | str | None = None) -> pd.DataFrame:
    """The experiment as one flat frame: the attributes, ``arm`` (``none``/``mens``/``womens``),
    ``visit``, ``conversion`` and ``spend``, in file order.

    ``path`` defaults to the vendored copy; any other file in the original format works. Every
    problem (missing column, non-numeric cell, unknown category, inconsistent outcome) is reported
    with file, rows, column and what was expected.
    """
    source = Path(path) if path is not None else vendored_path()
    try:
        raw = pd.read_csv(source, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataValidationError(
            [Problem(str(source), None, f"a readable Hillstrom CSV file ({exc})")]
        ) from exc
    frame = _parse(raw, source.name)
    logger.info("read %d Hillstrom customers from %s", len(frame), source)
    return frame


def _utc(index: pd.DatetimeIndex) -> pd.Series:
    """Timestamps as the contract stores them: tz-aware UTC at nanosecond resolution."""
    return pd.Series(index.tz_convert("UTC").as_unit("ns"))


def _rows(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) + 1 for i in np.flatnonzero(mask))


def _parse(raw: pd.DataFrame, file: str) -> pd.DataFrame:
    missing = [c for c in _RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError(
            [Problem(file, c, f"a column '{c}' (Hillstrom format)") for c in missing]
        )
    problems: list[Problem] = []
    numbers: dict[str, pd.Series] = {}
    for column in (H.RECENCY, H.HISTORY, H.SPEND, *_BINARY):
        values = pd.to_numeric(raw[column].str.strip(), errors="coerce")
        if column in _BINARY:
            invalid = ~values.isin([0, 1])
            expected = "0 or 1"
        elif column == H.RECENCY:
            invalid = values.isna() | (values < 0) | (values != values.round())
            expected = "a whole number of months >= 0"
        else:
            invalid = values.isna() | (values < 0)
            expected = "a number >= 0"
        bad = invalid.to_numpy()
        if bad.any():
            problems.append(
                Problem(file, column, expected, _rows(bad), tuple(raw.loc[bad, column].head(5)))
            )
        numbers[column] = values
    for column, allowed in _CATEGORIES.items():
        bad = ~raw[column].isin(allowed).to_numpy()
        if bad.any():
            problems.append(
                Problem(file, column, "one of " + ", ".join(allowed), _rows(bad),
                        tuple(raw.loc[bad, column].head(5)))
            )
    if problems:
        raise DataValidationError(problems)
    inconsistent = (
        (numbers[H.CONVERSION] == 1) & (numbers[H.VISIT] == 0)
        | ((numbers[H.SPEND] > 0) != (numbers[H.CONVERSION] == 1))
    ).to_numpy()
    if inconsistent.any():
        raise DataValidationError(
            [Problem(file, H.CONVERSION, "a conversion only after a visit, and spend > 0 exactly "
                     "when conversion is 1", _rows(inconsistent))]
        )
    return pd.DataFrame(
        {
            H.RECENCY: numbers[H.RECENCY].astype("int64"),
            H.HISTORY_SEGMENT: raw[H.HISTORY_SEGMENT].astype(str),
            H.HISTORY: numbers[H.HISTORY].astype("float64"),
            H.MENS: numbers[H.MENS].astype("int64"),
            H.WOMENS: numbers[H.WOMENS].astype("int64"),
            H.ZIP_CODE: raw[H.ZIP_CODE].astype(str),
            H.NEWBIE: numbers[H.NEWBIE].astype("int64"),
            H.PURCHASE_CHANNEL: raw[H.RAW_CHANNEL].astype(str),
            H.ARM: raw[H.SEGMENT].map(RAW_SEGMENTS).astype(str),
            H.VISIT: numbers[H.VISIT].astype("int64"),
            H.CONVERSION: numbers[H.CONVERSION].astype("int64"),
            H.SPEND: numbers[H.SPEND].astype("float64"),
        }
    )


def arm_codes(frame: pd.DataFrame) -> np.ndarray:
    """The arm of each row as an action code (index into :data:`ARMS`)."""
    codes = pd.Categorical(frame[H.ARM], categories=list(ARMS)).codes
    if (codes < 0).any():
        raise ValueError(f"column '{H.ARM}' must hold only {', '.join(ARMS)}")
    return np.asarray(codes, dtype=np.int64)


def customer_ids(n: int) -> np.ndarray:
    """Ids of the customers, from the 1-based row number of the file."""
    return np.asarray([f"hillstrom-{i:05d}" for i in range(1, n + 1)], dtype=object)


def to_journeys(
    frame: pd.DataFrame,
    campaign_ts: pd.Timestamp = DEFAULT_CAMPAIGN_TS,
    timezone: str = DEFAULT_TIMEZONE,
    seed: int = 0,
) -> Journeys:
    """The four contract tables of the experiment (``frame`` as from :func:`read_hillstrom`).

    One decision per customer at ``campaign_ts`` with propensity 1/3 and policy
    ``hillstrom_random``; a ``message_delivered`` e-mail event per mailed customer; a web
    ``page_view`` per visit and a ``purchase`` (value = spend) per conversion, at times drawn with
    ``seed`` inside the 14-day outcome window (the purchase follows the visit).
    """
    campaign_ts = pd.Timestamp(campaign_ts)
    campaign_ts = (
        campaign_ts.tz_localize("UTC") if campaign_ts.tzinfo is None
        else campaign_ts.tz_convert("UTC")
    )
    ids = customer_ids(len(frame))
    customers = _customers(frame, ids, campaign_ts, timezone)
    decisions = _decisions(frame, ids, campaign_ts)
    events = _events(frame, ids, decisions, campaign_ts, np.random.default_rng(seed))
    return Journeys(events=events, customers=customers, catalog=catalog(frame),
                    decisions=decisions)


def _customers(
    frame: pd.DataFrame, ids: np.ndarray, campaign_ts: pd.Timestamp, timezone: str
) -> pd.DataFrame:
    # The data has no signup date. A customer signed up no later than their last purchase
    # (``recency`` months ago), and an established (non-newbie) customer more than a year ago:
    # newbies get recency months, others a year more, so tenure orders customers as the data does.
    months = frame[H.RECENCY].to_numpy() + 12 * (1 - frame[H.NEWBIE].to_numpy())
    signup = campaign_ts - pd.to_timedelta(np.round(months * _DAYS_PER_MONTH), unit="D")
    customers = pd.DataFrame(
        {
            Col.CUSTOMER_ID: ids,
            Col.TIMEZONE: timezone,
            Col.SIGNUP_TS: _utc(pd.DatetimeIndex(signup)),
        }
    )
    for column in CONSENT_COLUMNS:
        customers[column] = column == consent_column(Channel.EMAIL)
    for column in ATTRIBUTES:
        customers[column] = frame[column].to_numpy()
    return customers


def catalog(frame: pd.DataFrame) -> pd.DataFrame:
    """The two campaign messages, e-mail only. ``value`` is the data's average order value
    (spend per conversion), the revenue a conversion brings; ``cost_email`` is
    :data:`EMAIL_COST`."""
    conversions = float(frame[H.CONVERSION].sum())
    order_value = float(frame[H.SPEND].sum()) / conversions if conversions else 0.0
    rows = []
    for arm, message in ARM_MESSAGES.items():
        row: dict[str, object] = {
            Col.MESSAGE_ID: message,
            Col.OBJECTIVE: Objective.CROSS_SELL.value,
            Col.CATEGORY: arm,
            Col.CHANNELS: Channel.EMAIL.value,
            Col.VALUE: round(order_value, 2),
            Col.ELIGIBLE_STAGES: ALL_STAGES,
            Col.REQUIRES_CART: False,
            # One campaign a week at most, as the retailer's cadence suggests.
            Col.COOLDOWN_HOURS: 168,
        }
        row.update({c: EMAIL_COST if c == cost_column(Channel.EMAIL) else 0.0
                    for c in COST_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows, columns=list(REQUIRED_COLUMNS[Table.CATALOG]))


def _decisions(frame: pd.DataFrame, ids: np.ndarray, campaign_ts: pd.Timestamp) -> pd.DataFrame:
    n = len(frame)
    arms = frame[H.ARM].to_numpy()
    mailed = arms != ARMS[NO_EMAIL]
    decided_at = _utc(pd.DatetimeIndex([campaign_ts] * n))
    return pd.DataFrame(
        {
            Col.DECISION_ID: [f"hillstrom-d-{i:05d}" for i in range(1, n + 1)],
            Col.CUSTOMER_ID: ids,
            Col.TS: decided_at,
            Col.MESSAGE_ID: [ARM_MESSAGES.get(arm) for arm in arms],
            Col.CHANNEL: [Channel.EMAIL.value if sent else None for sent in mailed],
            Col.SEND_AT: decided_at.where(pd.Series(mailed)),
            Col.PROPENSITY: ARM_PROPENSITY,
            Col.POLICY: POLICY_NAME,
            Col.CAMPAIGN: CAMPAIGN_NAME,
        }
    )


def _events(
    frame: pd.DataFrame,
    ids: np.ndarray,
    decisions: pd.DataFrame,
    campaign_ts: pd.Timestamp,
    rng: np.random.Generator,
) -> pd.DataFrame:
    n = len(frame)
    # Drawn for every row, so one customer's times do not depend on the other customers' outcomes.
    window_s = OUTCOME_WINDOW.total_seconds()
    visit_offset_s = rng.uniform(DELIVERY_DELAY.total_seconds() * 2, window_s - 3_600, size=n)
    purchase_delay_s = rng.uniform(120, 3_600 - 60, size=n)
    visit_ts = campaign_ts + pd.to_timedelta(np.round(visit_offset_s), unit="s")
    purchase_ts = visit_ts + pd.to_timedelta(np.round(purchase_delay_s), unit="s")

    mailed = decisions[Col.MESSAGE_ID].notna().to_numpy()
    visited = frame[H.VISIT].to_numpy() == 1
    converted = frame[H.CONVERSION].to_numpy() == 1
    parts = [
        pd.DataFrame(
            {
                Col.CUSTOMER_ID: ids[mailed],
                Col.TS: campaign_ts + DELIVERY_DELAY,
                Col.EVENT_TYPE: EventType.MESSAGE_DELIVERED.value,
                Col.CHANNEL: Channel.EMAIL.value,
                Col.MESSAGE_ID: decisions[Col.MESSAGE_ID].to_numpy()[mailed],
                Col.DECISION_ID: decisions[Col.DECISION_ID].to_numpy()[mailed],
                Col.VALUE: 0.0,
            }
        ),
        pd.DataFrame(
            {
                Col.CUSTOMER_ID: ids[visited],
                Col.TS: visit_ts[visited],
                Col.EVENT_TYPE: EventType.PAGE_VIEW.value,
                Col.CHANNEL: Channel.WEB.value,
                Col.VALUE: 0.0,
            }
        ),
        pd.DataFrame(
            {
                Col.CUSTOMER_ID: ids[converted],
                Col.TS: purchase_ts[converted],
                Col.EVENT_TYPE: EventType.PURCHASE.value,
                Col.CHANNEL: Channel.WEB.value,
                Col.VALUE: frame[H.SPEND].to_numpy()[converted],
            }
        ),
    ]
    events = pd.concat(parts, ignore_index=True)
    events[Col.TS] = _utc(pd.DatetimeIndex(events[Col.TS]))
    events = events.sort_values([Col.CUSTOMER_ID, Col.TS], kind="stable", ignore_index=True)
    for column in (Col.MESSAGE_ID, Col.DECISION_ID):
        events[column] = events[column].astype(object).where(events[column].notna(), None)
    events.insert(0, Col.EVENT_ID, [f"hillstrom-e-{i:06d}" for i in range(1, len(events) + 1)])
    return events[list(REQUIRED_COLUMNS[Table.EVENTS])]


def export_journeys(
    out: Path | str,
    fmt: str = "parquet",
    source: Path | str | None = None,
    campaign_ts: pd.Timestamp = DEFAULT_CAMPAIGN_TS,
    seed: int = 0,
) -> Journeys:
    """Read the experiment (the vendored copy unless ``source``), convert it and write the four
    tables into ``out`` atomically. Returns what was written."""
    journeys = to_journeys(read_hillstrom(source), campaign_ts=campaign_ts, seed=seed)
    write_journeys(journeys, out, fmt=fmt)
    return journeys
