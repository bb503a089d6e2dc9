"""Which actions are eligible, and the simulator's randomised logging policy (known propensities).

An action (message, channel) is eligible for a customer state when the message may go on that
channel, the channel's consent is live, the stage is among the message's eligible stages, the
cart is open if the message needs one, and the message is out of its cooldown.

The logging policy picks ``no_action`` with a fixed share; otherwise a softmax over eligible
(message, channel) pairs whose logits favour objectives that fit the stage
(``stage_preference x fit / temperature``), times a uniform send-hour slot. The propensity of a
send is ``(1 - no_action_share) x softmax(pair) / n_slots``; with no eligible pair, ``no_action``
has propensity 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import CHANNELS, OBJECTIVES, STAGES, Col
from features.simulator.catalog import CatalogArrays
from features.simulator.clock import local_hour
from features.simulator.config import SimulationConfig
from features.simulator.truth import LIVE_CONSENT_COLUMNS, State, cooldown_column
from features.simulator.vocab import encode

STAGE_INDEX = {s.value: i for i, s in enumerate(STAGES)}
CHANNEL_INDEX = {c.value: i for i, c in enumerate(CHANNELS)}


def stage_codes(stages: pd.Series | np.ndarray) -> np.ndarray:
    """Codes of stage names (index into ``STAGES``); unknown or empty names raise."""
    codes, _ = encode(stages, tuple(STAGE_INDEX))
    if (codes < 0).any():
        bad = sorted({str(v) for v in np.asarray(stages, dtype=object)[codes < 0]})[:5]
        raise ValueError(f"{State.STAGE}: expected one of {', '.join(STAGE_INDEX)}, found {bad}")
    return codes


def channel_codes(channels: pd.Series | np.ndarray) -> np.ndarray:
    """Codes of channel names (index into ``CHANNELS``); empty -> -1; unknown names raise."""
    codes, missing = encode(channels, tuple(CHANNEL_INDEX))
    unknown = (codes < 0) & ~missing
    if unknown.any():
        bad = sorted({str(v) for v in np.asarray(channels, dtype=object)[unknown]})[:5]
        raise ValueError(f"{Col.CHANNEL}: expected one of {', '.join(CHANNEL_INDEX)}, found {bad}")
    return codes


def fit_matrix(config: SimulationConfig) -> np.ndarray:
    """(n_objectives, n_stages) fit of each objective to each stage, contract order."""
    fits = config.response.objective_fit
    return np.array([[fits[o][s] for s in STAGES] for o in OBJECTIVES], dtype=np.float64)


def eligible_actions(
    catalog: CatalogArrays,
    stage: np.ndarray,
    cart_open: np.ndarray,
    consent_live: np.ndarray,
    in_cooldown: np.ndarray | None,
) -> np.ndarray:
    """(n, n_messages, n_channels) bool: which (message, channel) each row may receive."""
    message_ok = catalog.eligible_stage[:, stage].T & (
        ~catalog.requires_cart[None, :] | cart_open[:, None]
    )
    if in_cooldown is not None:
        message_ok &= ~in_cooldown
    return message_ok[:, :, None] & catalog.allowed_channel[None, :, :] & consent_live[:, None, :]


@dataclass(frozen=True)
class LoggingDistribution:
    """The logging policy's probabilities for each row (slot probabilities are uniform)."""

    no_action: np.ndarray  # (n,)
    pair: np.ndarray  # (n, n_messages, n_channels): probability of the pair over all slots
    n_slots: int

    def send_propensity(self, message: np.ndarray, channel: np.ndarray) -> np.ndarray:
        """Propensity of (message, channel, one slot) per row; ``no_action`` where message<0."""
        rows = np.arange(len(message))
        pair = self.pair[rows, np.maximum(message, 0), np.maximum(channel, 0)] / self.n_slots
        return np.where(message < 0, self.no_action, pair)


def logging_distribution(
    catalog: CatalogArrays, config: SimulationConfig, stage: np.ndarray, eligible: np.ndarray
) -> LoggingDistribution:
    logits = config.stage_preference * fit_matrix(config)[catalog.objective][:, stage].T
    logits = logits / config.temperature
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))[:, :, None] * eligible
    total = weights.sum(axis=(1, 2))
    has_action = total > 0
    share = config.no_action_share
    pair = (1.0 - share) * weights / np.where(has_action, total, 1.0)[:, None, None]
    return LoggingDistribution(
        no_action=np.where(has_action, share, 1.0), pair=pair, n_slots=len(config.send_hours)
    )


def sample_actions(
    distribution: LoggingDistribution, send_hours: tuple[int, ...], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw (message, channel, local hour, propensity) per row; message -1 = no_action."""
    n, n_messages, n_channels = distribution.pair.shape
    send = rng.random(n) >= distribution.no_action
    flat = distribution.pair.reshape(n, -1)
    cumulative = np.cumsum(flat, axis=1) / np.maximum(flat.sum(axis=1, keepdims=True), 1e-300)
    choice = np.minimum((rng.random((n, 1)) > cumulative).sum(axis=1), flat.shape[1] - 1)
    # rounding can push a draw past the last pair with probability > 0: take that pair
    last_positive = flat.shape[1] - 1 - np.argmax((flat > 0)[:, ::-1], axis=1)
    choice = np.minimum(choice, last_positive)
    message = np.where(send, choice // n_channels, -1)
    channel = np.where(send, choice % n_channels, -1)
    hours = np.asarray(send_hours)[rng.integers(0, len(send_hours), n)]
    hour = np.where(send, hours, -1)
    return message, channel, hour, distribution.send_propensity(message, channel)


def state_arrays(
    states: pd.DataFrame, catalog: CatalogArrays
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(stage, cart_open, consent_live, in_cooldown or None) from a ``decision_states`` frame."""
    stage = stage_codes(states[State.STAGE])
    cart_open = states[State.CART_OPEN].to_numpy(dtype=bool)
    consent_live = _bool_matrix(states, LIVE_CONSENT_COLUMNS)
    cooldown_columns = [cooldown_column(m) for m in catalog.message_ids]
    in_cooldown = None
    if all(c in states.columns for c in cooldown_columns):
        in_cooldown = _bool_matrix(states, cooldown_columns)
    return stage, cart_open, consent_live, in_cooldown


def _bool_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    # column by column: selecting a list of columns copies the frame first, ~50x slower
    return np.column_stack([frame[c].to_numpy(dtype=bool) for c in columns]).reshape(
        len(frame), len(columns)
    )


def logging_propensity(
    states: pd.DataFrame, decisions: pd.DataFrame, catalog: CatalogArrays,
    config: SimulationConfig, timezones: pd.Series | np.ndarray,
) -> np.ndarray:
    """Recompute the logging policy's propensity of each logged decision from its state.

    ``decisions`` rows align with ``states`` rows; ``timezones`` gives each row's timezone (to
    read the local send hour off ``send_at``). A hour outside ``send_hours`` gets propensity 0.
    """
    stage, cart_open, consent_live, in_cooldown = state_arrays(states, catalog)
    eligible = eligible_actions(catalog, stage, cart_open, consent_live, in_cooldown)
    distribution = logging_distribution(catalog, config, stage, eligible)
    message = catalog.message_codes(decisions[Col.MESSAGE_ID].to_numpy(dtype=object))
    channel = channel_codes(decisions[Col.CHANNEL].to_numpy(dtype=object))
    hour = local_hour(decisions[Col.SEND_AT], timezones)
    on_slot = np.isin(hour, config.send_hours) | (message < 0)
    return np.where(on_slot, distribution.send_propensity(message, channel), 0.0)
