"""The simulator's ground truth: latent customer traits, per-decision states, global parameters.

On disk a simulation is the four contract tables plus ``truth/``: ``latent``, ``decision_states``
(same format as the tables) and ``params.json`` (the full ``SimulationConfig``). Column names of
the truth tables are defined here once.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd

from features.contract import CHANNELS, Channel, Col
from features.io import DataValidationError, Journeys, Problem, write_journeys
from features.schemas import to_utc
from features.simulator.catalog import CATEGORIES
from features.simulator.config import SimulationConfig

logger = logging.getLogger(__name__)

TRUTH_DIR: Final = "truth"
LATENT_FILE: Final = "latent"
STATES_FILE: Final = "decision_states"
PARAMS_FILE: Final = "params.json"


class Latent:
    """Columns of the latent table (one row per customer)."""

    NEGATIVE_RESPONDER: Final = "negative_responder"
    RESPONSIVENESS: Final = "responsiveness"
    CONTACT_AVERSION: Final = "contact_aversion"
    FATIGUE_SENSITIVITY: Final = "fatigue_sensitivity"
    BASE_PROPENSITY: Final = "base_propensity"
    BASKET_SCALE: Final = "basket_scale"
    VISIT_RATE: Final = "visit_rate"
    WEEKEND_FACTOR: Final = "weekend_factor"
    PEAK_HOUR: Final = "peak_hour"
    HOUR_WIDTH: Final = "hour_width"
    CHURN_PROPENSITY: Final = "churn_propensity"
    REPLENISH_CYCLE_DAYS: Final = "replenish_cycle_days"


def channel_affinity_column(channel: Channel | str) -> str:
    return f"affinity_{Channel(channel).value}"


def category_affinity_column(category: str) -> str:
    return f"category_affinity_{category}"


CHANNEL_AFFINITY_COLUMNS: Final = tuple(channel_affinity_column(c) for c in CHANNELS)
CATEGORY_AFFINITY_COLUMNS: Final = tuple(category_affinity_column(c) for c in CATEGORIES)


class State:
    """Columns of ``decision_states`` (one row per logged decision, at its ``ts``)."""

    STAGE: Final = "stage"
    CHURNED: Final = "churned"
    CART_OPEN: Final = "cart_open"
    DAYS_SINCE_PURCHASE: Final = "days_since_purchase"
    DAYS_SINCE_ACTIVITY: Final = "days_since_activity"
    TENURE_DAYS: Final = "tenure_days"
    SENDS_7D: Final = "sends_7d"
    SENDS_28D: Final = "sends_28d"


def live_consent_column(channel: Channel | str) -> str:
    """Consent at decision time: given at signup and not withdrawn by an unsubscribe since."""
    return f"consent_live_{Channel(channel).value}"


def cooldown_column(message_id: str) -> str:
    """True when the message was sent within its cooldown before the decision."""
    return f"in_cooldown_{message_id}"


LIVE_CONSENT_COLUMNS: Final = tuple(live_consent_column(c) for c in CHANNELS)
_STATE_BOOL = (State.CHURNED, State.CART_OPEN, *LIVE_CONSENT_COLUMNS)


class Attribute:
    """Extra customer columns the simulator writes, as a user would bring them."""

    SEGMENT: Final = "segment"
    AGE_BAND: Final = "age_band"
    LOYALTY_POINTS: Final = "loyalty_points"


@dataclass
class GroundTruth:
    """What the simulator knows and a learned policy does not."""

    latent: pd.DataFrame
    decision_states: pd.DataFrame
    config: SimulationConfig

    @property
    def params(self) -> dict[str, object]:
        """The global parameters as plain JSON-ready values (what ``params.json`` holds)."""
        return self.config.model_dump(mode="json")


@dataclass
class Simulation:
    """A simulated data set: the contract's four tables and their ground truth."""

    journeys: Journeys
    truth: GroundTruth


def write_simulation(sim: Simulation, out_dir: Path | str, fmt: str = "parquet") -> Path:
    """Write the four tables and ``truth/`` into ``out_dir`` (replacing it atomically)."""
    out = Path(out_dir)
    extra = {
        f"{TRUTH_DIR}/{LATENT_FILE}": sim.truth.latent,
        f"{TRUTH_DIR}/{STATES_FILE}": sim.truth.decision_states,
    }
    write_journeys(sim.journeys, out, fmt=fmt, extra=extra)
    # write_journeys only writes frames: params.json follows, itself written atomically.
    params = out / TRUTH_DIR / PARAMS_FILE
    handle, staging = tempfile.mkstemp(prefix=".params.", dir=params.parent)
    with os.fdopen(handle, "w") as stream:
        json.dump(sim.truth.params, stream, indent=2, sort_keys=True)
    os.replace(staging, params)
    logger.info("wrote simulation (%s) with ground truth to %s", fmt, out)
    return out


def _read_frame(directory: Path, name: str) -> pd.DataFrame:
    for suffix in (".parquet", ".csv"):
        path = directory / f"{name}{suffix}"
        if path.exists():
            if suffix == ".parquet":
                return pd.read_parquet(path)
            return pd.read_csv(path, keep_default_na=True)
    raise DataValidationError(
        [Problem(str(directory), None, f"a file {name}.parquet or {name}.csv (simulator truth)")]
    )


def _as_bool(series: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series
    return series.astype(str).str.strip().str.lower().isin({"true", "1"})


def load_simulation_truth(out_dir: Path | str) -> GroundTruth:
    """Read ``truth/`` written by ``write_simulation`` (Parquet or CSV)."""
    directory = Path(out_dir) / TRUTH_DIR
    params = directory / PARAMS_FILE
    if not params.exists():
        raise DataValidationError([Problem(str(params), None, "the simulator's params.json")])
    config = SimulationConfig.model_validate(json.loads(params.read_text()))
    latent = _read_frame(directory, LATENT_FILE)
    latent[Latent.NEGATIVE_RESPONDER] = _as_bool(latent[Latent.NEGATIVE_RESPONDER])
    states = _read_frame(directory, STATES_FILE)
    states[Col.TS] = to_utc(states[Col.TS])
    for column in states.columns:
        if column in _STATE_BOOL or column.startswith(cooldown_column("")):
            states[column] = _as_bool(states[column])
    for frame in (latent, states):
        for column in (Col.CUSTOMER_ID, Col.DECISION_ID, Col.TIMEZONE, State.STAGE):
            if column in frame.columns:
                frame[column] = frame[column].astype("str")
    return GroundTruth(latent=latent, decision_states=states, config=config)
