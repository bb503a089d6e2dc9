"""The Hillstrom adapter: the vendored experiment as valid journey data, nothing lost."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contract import Col, EventType
from features.io import DataValidationError, load_journeys
from training.cli import app
from training.hillstrom import (
    ARM_MESSAGES,
    ARM_PROPENSITY,
    ARMS,
    DEFAULT_CAMPAIGN_TS,
    OUTCOME_WINDOW,
    POLICY_NAME,
    HillstromCol,
    read_hillstrom,
    to_journeys,
    vendored_path,
)

H = HillstromCol


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return read_hillstrom()


@pytest.fixture()
def small_source(tmp_path: Path) -> Path:
    """The first 600 customers of the vendored file, in the original format."""
    with gzip.open(vendored_path(), "rt") as source:
        lines = [next(source) for _ in range(601)]
    path = tmp_path / "hillstrom_small.csv"
    path.write_text("".join(lines))
    return path


def test_vendored_data_is_the_whole_experiment_with_its_published_arm_values(
    frame: pd.DataFrame,
) -> None:
    assert len(frame) == 64_000
    means = frame.groupby(H.ARM)[[H.VISIT, H.CONVERSION, H.SPEND]].mean()
    assert np.round(means.loc["mens"].to_numpy(), 5).tolist() == [0.18276, 0.01253, 1.42262]
    assert np.round(means.loc["womens"].to_numpy(), 5).tolist() == [0.1514, 0.00884, 1.0772]
    assert np.round(means.loc["none"].to_numpy(), 5).tolist() == [0.10617, 0.00573, 0.65279]
    shares = frame[H.ARM].value_counts(normalize=True)
    assert set(shares.index) == set(ARMS)
    assert np.allclose(shares.to_numpy(), 1 / 3, atol=0.005)


def test_journeys_keep_every_outcome_exactly(frame: pd.DataFrame) -> None:
    journeys = to_journeys(frame, seed=3)
    events = journeys.events
    purchases = events[events[Col.EVENT_TYPE] == EventType.PURCHASE.value]
    assert (events[Col.EVENT_TYPE] == EventType.PAGE_VIEW.value).sum() == frame[H.VISIT].sum()
    assert len(purchases) == frame[H.CONVERSION].sum()
    assert math.fsum(purchases[Col.VALUE]) == math.fsum(frame[H.SPEND])
    mailed = frame[H.ARM] != "none"
    delivered = events[events[Col.EVENT_TYPE] == EventType.MESSAGE_DELIVERED.value]
    assert len(delivered) == mailed.sum()
    assert set(delivered[Col.MESSAGE_ID]) == set(ARM_MESSAGES.values())

    decisions = journeys.decisions
    assert len(decisions) == len(frame) == len(journeys.customers)
    assert (decisions[Col.PROPENSITY] == ARM_PROPENSITY).all()
    assert (decisions[Col.POLICY] == POLICY_NAME).all()
    assert decisions[Col.MESSAGE_ID].isna().sum() == (~mailed).sum()
    # Outcomes fall inside the two weeks after the campaign; a purchase follows its visit.
    assert events[Col.TS].min() > DEFAULT_CAMPAIGN_TS
    assert events[Col.TS].max() < DEFAULT_CAMPAIGN_TS + OUTCOME_WINDOW
    first_view = events[events[Col.EVENT_TYPE] == EventType.PAGE_VIEW.value].set_index(
        Col.CUSTOMER_ID)[Col.TS]
    assert (purchases.set_index(Col.CUSTOMER_ID)[Col.TS] > first_view.loc[
        purchases[Col.CUSTOMER_ID]]).all()


def test_attributes_become_customer_columns(frame: pd.DataFrame) -> None:
    customers = to_journeys(frame.head(50)).customers
    assert customers[H.PURCHASE_CHANNEL].tolist() == frame[H.PURCHASE_CHANNEL].head(50).tolist()
    assert customers[H.HISTORY].tolist() == frame[H.HISTORY].head(50).tolist()
    assert customers["consent_email"].all() and not customers["consent_sms"].any()
    # Established customers signed up over a year before the campaign, newbies within it.
    tenure = DEFAULT_CAMPAIGN_TS - customers[Col.SIGNUP_TS]
    newbie = frame[H.NEWBIE].head(50).to_numpy() == 1
    assert (tenure[newbie] <= pd.Timedelta(days=366)).all()
    assert (tenure[~newbie] > pd.Timedelta(days=366)).all()


def test_event_times_are_reproducible_with_a_seed(frame: pd.DataFrame) -> None:
    part = frame.head(2_000)
    first, again, other = (to_journeys(part, seed=s).events for s in (1, 1, 2))
    pd.testing.assert_frame_equal(first, again)
    assert not first[Col.TS].equals(other[Col.TS])
    assert len(first) == len(other)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_command_writes_data_that_validates(
    small_source: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "hillstrom"
    result = CliRunner().invoke(
        app, ["hillstrom", "export", "--out", str(out), "--format", fmt,
              "--source", str(small_source)]
    )
    assert result.exit_code == 0, result.output
    assert "600 customers" in result.output
    journeys = load_journeys(out)
    expected = read_hillstrom(small_source)
    assert len(journeys.customers) == 600
    assert math.fsum(journeys.events[Col.VALUE]) == math.fsum(expected[H.SPEND])
    assert journeys.customers[H.RECENCY].astype(int).tolist() == expected[H.RECENCY].tolist()


def test_bad_source_rows_are_named(small_source: Path, tmp_path: Path) -> None:
    lines = small_source.read_text().splitlines()
    lines[3] = lines[3].replace("Web", "Fax", 1) if "Web" in lines[3] else lines[3] + "x"
    lines[5] = "ten" + lines[5][lines[5].index(","):]
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as error:
        read_hillstrom(broken)
    message = str(error.value)
    assert "broken.csv, row 5, column 'recency': expected a whole number of months" in message
    result = CliRunner().invoke(
        app, ["hillstrom", "export", "--out", str(tmp_path / "out"), "--source", str(broken)]
    )
    assert result.exit_code == 2
    assert "row 5" in result.output and not (tmp_path / "out").exists()


def test_missing_columns_and_files_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "not_hillstrom.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataValidationError, match="column 'recency': expected a column"):
        read_hillstrom(path)
    with pytest.raises(DataValidationError, match="readable Hillstrom CSV"):
        read_hillstrom(tmp_path / "absent.csv")
