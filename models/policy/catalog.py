"""Everything the engine derives from the catalog and the configs, computed once as numpy arrays.

A decision then only indexes these arrays: no pandas, no per-message Python work on the request
path. Messages keep the catalog's row order (their "code", the same order the conversion model
and ``EventLog.message_ids`` use); channels follow ``features.contract.CHANNELS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import (
    ALL_STAGES,
    CHANNELS,
    LIST_SEPARATOR,
    OBJECTIVES,
    STAGES,
    Col,
    Table,
    cost_column,
)
from features.io import parse_table
from models.policy.config import ArbitrationConfig, ContactPolicy, PolicyConfigError

NS_PER_HOUR = 3_600 * 10**9

CHANNEL_INDEX = {c: i for i, c in enumerate(CHANNELS)}
STAGE_INDEX = {s: i for i, s in enumerate(STAGES)}
OBJECTIVE_INDEX = {o: i for i, o in enumerate(OBJECTIVES)}


@dataclass(frozen=True)
class CatalogArrays:
    """Per-message (M) and per-(message, channel) pair (P) arrays.

    Pairs are the (message, channel) combinations the catalog allows, message-major, so the
    rows of a candidate matrix can be grouped by pair without sorting.
    """

    message_ids: tuple[str, ...]
    message_index: dict[str, int]
    objective: np.ndarray  # (M,) int, index into OBJECTIVES
    value: np.ndarray  # (M,) float64
    weight: np.ndarray  # (M,) float64: objective weight x message weight
    churn_strength: np.ndarray  # (M,) float64: churn lever strength, 0 where it does not apply
    stage_eligible: np.ndarray  # (M, n_stages) bool
    requires_cart: np.ndarray  # (M,) bool
    cooldown_ns: np.ndarray  # (M,) int64, after contact-policy overrides
    exempt_after_conversion: np.ndarray  # (M,) bool
    pair_message: np.ndarray  # (P,) intp
    pair_channel: np.ndarray  # (P,) intp
    pair_cost: np.ndarray  # (P,) float64
    pair_value: np.ndarray  # (P,) float64
    pair_weight: np.ndarray  # (P,) float64
    pair_churn_strength: np.ndarray  # (P,) float64

    @property
    def n_messages(self) -> int:
        return len(self.message_ids)

    @property
    def n_pairs(self) -> int:
        return int(self.pair_message.shape[0])

    def fingerprint(self) -> dict[str, object]:
        """The catalog-derived numbers a decision depends on, for the config hash."""
        return {
            "message_ids": list(self.message_ids),
            "value": self.value.tolist(),
            "weight": self.weight.tolist(),
            "cooldown_ns": self.cooldown_ns.tolist(),
            "pairs": [self.pair_message.tolist(), self.pair_channel.tolist()],
            "pair_cost": self.pair_cost.tolist(),
            "stage_eligible": self.stage_eligible.tolist(),
            "requires_cart": self.requires_cart.tolist(),
        }


def _unknown_messages(keys: list[str], known: set[str], where: str) -> None:
    unknown = sorted(k for k in keys if k not in known)
    if unknown:
        raise PolicyConfigError(
            f"{where}.{unknown[0]}: not a message_id of the catalog "
            f"(unknown: {', '.join(unknown)}; known: {', '.join(sorted(known))})"
        )


def build_catalog_arrays(
    catalog: pd.DataFrame,
    contact_policy: ContactPolicy,
    arbitration: ArbitrationConfig,
    source: str = "catalog",
) -> CatalogArrays:
    """Validate the catalog frame (raising ``DataValidationError``) and pre-compute its arrays.

    Config keys that name messages (cooldown overrides, message weights) must exist in the
    catalog: a typo would otherwise silently do nothing.
    """
    frame = parse_table(catalog, Table.CATALOG, source)
    message_ids = tuple(str(m) for m in frame[Col.MESSAGE_ID])
    known = set(message_ids)
    _unknown_messages(list(contact_policy.cooldown_hours), known, "contact policy: cooldown_hours")
    _unknown_messages(list(arbitration.message_weights), known, "arbitration: message_weights")

    n_messages = len(message_ids)
    objective = np.array([OBJECTIVE_INDEX[o] for o in frame[Col.OBJECTIVE]], dtype=np.intp)
    objective_names = [OBJECTIVES[i] for i in objective]
    value = frame[Col.VALUE].to_numpy(dtype=np.float64)
    weight = np.array(
        [
            arbitration.objective_weights.get(objective_names[i], 1.0)
            * arbitration.message_weights.get(message_ids[i], 1.0)
            for i in range(n_messages)
        ],
        dtype=np.float64,
    )
    lever = arbitration.churn_lever
    churn_strength = np.array(
        [
            lever.strength if lever is not None and objective_names[i] in lever.objectives else 0.0
            for i in range(n_messages)
        ],
        dtype=np.float64,
    )

    stage_eligible = np.zeros((n_messages, len(STAGES)), dtype=bool)
    supports = np.zeros((n_messages, len(CHANNELS)), dtype=bool)
    for i, (stages, channels) in enumerate(
        zip(frame[Col.ELIGIBLE_STAGES], frame[Col.CHANNELS], strict=True)
    ):
        if stages == ALL_STAGES:
            stage_eligible[i, :] = True
        else:
            for stage in stages.split(LIST_SEPARATOR):
                stage_eligible[i, STAGE_INDEX[stage]] = True
        for channel in channels.split(LIST_SEPARATOR):
            supports[i, CHANNEL_INDEX[channel]] = True

    cooldown_hours = frame[Col.COOLDOWN_HOURS].to_numpy(dtype=np.float64).copy()
    for message_id, hours in contact_policy.cooldown_hours.items():
        cooldown_hours[message_ids.index(message_id)] = hours
    exempt = np.array(
        [o in contact_policy.suppression.exempt_objectives for o in objective_names], dtype=bool
    )
    costs = np.column_stack(
        [frame[cost_column(c)].to_numpy(dtype=np.float64) for c in CHANNELS]
    )
    pair_message, pair_channel = np.nonzero(supports)
    return CatalogArrays(
        message_ids=message_ids,
        message_index={m: i for i, m in enumerate(message_ids)},
        objective=objective,
        value=value,
        weight=weight,
        churn_strength=churn_strength,
        stage_eligible=stage_eligible,
        requires_cart=frame[Col.REQUIRES_CART].to_numpy(dtype=bool),
        cooldown_ns=np.round(cooldown_hours * NS_PER_HOUR).astype(np.int64),
        exempt_after_conversion=exempt,
        pair_message=pair_message.astype(np.intp),
        pair_channel=pair_channel.astype(np.intp),
        pair_cost=costs[pair_message, pair_channel],
        pair_value=value[pair_message],
        pair_weight=weight[pair_message],
        pair_churn_strength=churn_strength[pair_message],
    )
