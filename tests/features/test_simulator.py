"""The simulator's output: valid contract tables on disk (Parquet and CSV), ground truth that
round-trips, determinism by seed, the world's make-up, the CLI, and clear errors on bad config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from features.contract import (
    CHANNELS,
    OBJECTIVES,
    Col,
    EventType,
    consent_column,
)
from features.io import load_journeys
from features.simulator import (
    Oracle,
    SimulationConfig,
    load_simulation_truth,
    simulate,
    write_simulation,
)
from features.simulator.truth import Attribute
from tests.features.simulated import simulation, tiny
from training.cli import app


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_written_output_validates_and_truth_round_trips(tmp_path: Path, fmt: str) -> None:
    sim = tiny()
    out = write_simulation(sim, tmp_path / "sim", fmt=fmt)

    journeys = load_journeys(out)
    for table in ("events", "customers", "catalog", "decisions"):
        assert len(getattr(journeys, table)) == len(getattr(sim.journeys, table))
    truth = load_simulation_truth(out)
    assert truth.config == sim.truth.config
    assert len(truth.decision_states) == len(journeys.decisions)
    # the oracle rebuilt from disk says exactly what the in-memory one says
    decisions = journeys.decisions
    args = (decisions[Col.MESSAGE_ID], decisions[Col.CHANNEL], decisions[Col.SEND_AT])
    from_disk = Oracle(truth, journeys.catalog).expected_outcome(truth.decision_states, *args)
    in_memory = Oracle(sim.truth, sim.journeys.catalog).expected_outcome(
        sim.truth.decision_states, *args
    )
    np.testing.assert_allclose(from_disk.to_numpy(), in_memory.to_numpy(), rtol=1e-12)


def test_in_memory_tables_pass_the_contract_too(tmp_path: Path) -> None:
    from features.contract import Table
    from features.io import parse_table

    sim = tiny()
    for table in Table:
        parse_table(sim.journeys.table(table), table, f"{table.value} (in memory)")


def test_same_seed_same_data_other_seed_other_data() -> None:
    first = simulate(SimulationConfig(n_customers=200, days=10, seed=21), progress=False)
    again = simulate(SimulationConfig(n_customers=200, days=10, seed=21), progress=False)
    other = simulate(SimulationConfig(n_customers=200, days=10, seed=22), progress=False)
    for table in ("events", "customers", "catalog", "decisions"):
        pd.testing.assert_frame_equal(getattr(first.journeys, table),
                                      getattr(again.journeys, table))
    pd.testing.assert_frame_equal(first.truth.latent, again.truth.latent)
    pd.testing.assert_frame_equal(first.truth.decision_states, again.truth.decision_states)
    assert not first.journeys.events[Col.TS].equals(other.journeys.events[Col.TS])
    assert not first.truth.latent.equals(other.truth.latent)


def test_world_has_every_channel_objective_and_a_varied_population() -> None:
    sim = simulation()
    catalog, customers, events = sim.journeys.catalog, sim.journeys.customers, sim.journeys.events
    assert set(catalog[Col.OBJECTIVE]) == {o.value for o in OBJECTIVES}
    assert set(sim.journeys.decisions[Col.CHANNEL].dropna()) == {c.value for c in CHANNELS}
    cost = catalog[[f"cost_{c.value}" for c in CHANNELS]].mean()
    assert cost.idxmax() == "cost_sms"

    regions = {tz.split("/")[0] for tz in customers[Col.TIMEZONE]}
    assert {"America", "Europe", "Asia"} <= regions
    start = pd.Timestamp(sim.truth.config.start)
    signed_up_during = (customers[Col.SIGNUP_TS] >= start).mean()
    assert 0.1 < signed_up_during < 0.3
    assert customers[consent_column("email")].mean() > 0.7
    assert customers[consent_column("sms")].mean() < customers[consent_column("email")].mean()
    for column in (Attribute.SEGMENT, Attribute.AGE_BAND, Attribute.LOYALTY_POINTS):
        assert customers[column].notna().all()
    assert set(events[Col.EVENT_TYPE]) == {e.value for e in EventType}
    views = events[events[Col.EVENT_TYPE] == EventType.PRODUCT_VIEW]
    assert views[Col.CATEGORY].notna().all()
    assert set(sim.truth.decision_states["stage"]) == {
        "new", "browsing", "carted", "customer", "lapsing", "churned"
    }


def test_visits_cluster_around_each_customers_own_active_hours() -> None:
    from features.simulator import local_hour

    sim = simulation()
    events, latent = sim.journeys.events, sim.truth.latent.set_index(Col.CUSTOMER_ID)
    visits = events[events[Col.EVENT_TYPE] == EventType.PAGE_VIEW]
    traits = latent.loc[visits[Col.CUSTOMER_ID]]
    hour = local_hour(visits[Col.TS], traits[Col.TIMEZONE].to_numpy()) + 0.5
    distance = np.abs(hour - traits["peak_hour"].to_numpy()) % 24
    distance = np.minimum(distance, 24 - distance)
    assert (distance < 2).mean() > 0.4  # 4 hours of 24: 0.17 if visits ignored the customer
    by_hour = np.bincount(hour.astype(int), minlength=24) / len(hour)
    assert by_hour[2:6].sum() < 0.08  # people sleep


def test_cli_simulate_writes_a_valid_folder(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["simulate", "--customers", "150", "--days", "8", "--seed", "1", "--out", str(out),
              "--format", "csv", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert "150 customers" in result.output
    assert len(load_journeys(out).customers) == 150
    assert (out / "truth" / "params.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customers", "0"], "--customers"),
        (["--days", "-3"], "--days"),
        (["--format", "xml"], "parquet or csv"),
    ],
)
def test_cli_simulate_rejects_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_config_errors_say_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="n_custmers"):
        SimulationConfig.model_validate({"n_custmers": 10})
    with pytest.raises(ValidationError, match="do not overlap"):
        SimulationConfig(decision_interval_hours=24)
    with pytest.raises(ValidationError, match="Mars/Olympus"):
        SimulationConfig(timezones={"Mars/Olympus": 1.0})
    with pytest.raises(ValidationError, match="send_hours"):
        SimulationConfig(send_hours=(8, 25))
