"""The simulator's message catalog, and the arrays the simulator and the oracle read from a catalog.

The default catalog covers every objective of the contract: a welcome series, browse and cart
reminders, cross-sells in four product categories, replenishment reminders, a loyalty message,
a win-back offer and a retention discount. ``CatalogArrays`` turns a validated catalog frame
(the default one or one loaded from disk) into numpy arrays indexed by message code (row order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import (
    ALL_STAGES,
    CHANNELS,
    LIST_SEPARATOR,
    NO_ACTION,
    OBJECTIVES,
    STAGES,
    Channel,
    Col,
    Objective,
    Stage,
    cost_column,
)
from features.simulator.vocab import encode

#: Product categories customers browse and messages promote; ``general`` promotes none.
CATEGORIES: tuple[str, ...] = ("home", "fashion", "electronics", "beauty", "grocery")
GENERAL_CATEGORY = "general"

#: Cost of one send by channel (sms is the costliest).
CHANNEL_COST: dict[Channel, float] = {
    Channel.EMAIL: 0.01,
    Channel.SMS: 0.08,
    Channel.PUSH: 0.005,
    Channel.IN_APP: 0.002,
    Channel.WEB: 0.001,
}

E, SM, P, A, W = Channel.EMAIL, Channel.SMS, Channel.PUSH, Channel.IN_APP, Channel.WEB
N, B, CA, CU = Stage.NEW, Stage.BROWSING, Stage.CARTED, Stage.CUSTOMER
L, CH = Stage.LAPSING, Stage.CHURNED

_Message = tuple[str, Objective, str, tuple[Channel, ...], float, tuple[Stage, ...], bool, int]
# message_id, objective, category, channels, value, eligible stages, requires_cart, cooldown
_MESSAGES: tuple[_Message, ...] = (
    ("welcome_series", Objective.WELCOME, GENERAL_CATEGORY, (E, P, A, SM), 35.0, (N,), False, 336),
    ("browse_reminder", Objective.BROWSE_ABANDON, GENERAL_CATEGORY, (E, P, W, A), 40.0,
     (N, B, CA), False, 72),
    ("cart_reminder", Objective.CART_RECOVERY, GENERAL_CATEGORY, (E, SM, P, A, W), 55.0, (CA,),
     True, 48),
    ("cross_sell_home", Objective.CROSS_SELL, "home", (E, P, W), 60.0, (B, CU), False, 168),
    ("cross_sell_fashion", Objective.CROSS_SELL, "fashion", (E, P, A, W), 45.0, (B, CU), False,
     168),
    ("cross_sell_electronics", Objective.CROSS_SELL, "electronics", (E, W, A), 90.0, (B, CU),
     False, 168),
    ("new_arrivals_beauty", Objective.CROSS_SELL, "beauty", (E, P, A, W), 35.0, (N, B, CU), False,
     168),
    ("replenish_beauty", Objective.REPLENISH, "beauty", (E, SM, P), 30.0, (CU, L), False, 336),
    ("replenish_grocery", Objective.REPLENISH, "grocery", (E, SM, P, A), 25.0, (CU, L), False,
     168),
    ("loyalty_rewards", Objective.LOYALTY, GENERAL_CATEGORY, (E, P, A, W), 50.0, (CU,), False, 336),
    ("win_back_offer", Objective.WIN_BACK, GENERAL_CATEGORY, (E, SM, P), 45.0, (L, CH), False, 336),
    ("retention_discount", Objective.RETENTION_OFFER, GENERAL_CATEGORY, (E, SM, A), 30.0, (CU, L),
     False, 504),
)


def default_catalog() -> pd.DataFrame:
    """The simulator's catalog in the contract's ``catalog`` table layout."""
    rows = []
    for message_id, objective, category, channels, value, stages, cart, cooldown in _MESSAGES:
        row: dict[str, object] = {
            Col.MESSAGE_ID: message_id,
            Col.OBJECTIVE: objective.value,
            Col.CATEGORY: category,
            Col.CHANNELS: LIST_SEPARATOR.join(c.value for c in channels),
            Col.VALUE: value,
        }
        row.update({cost_column(c): CHANNEL_COST[c] for c in CHANNELS})
        row[Col.ELIGIBLE_STAGES] = LIST_SEPARATOR.join(s.value for s in stages)
        row[Col.REQUIRES_CART] = cart
        row[Col.COOLDOWN_HOURS] = cooldown
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame[Col.COOLDOWN_HOURS] = frame[Col.COOLDOWN_HOURS].astype("int64")
    return frame


def _members(cell: str, universe: tuple[str, ...], allow_all: bool) -> np.ndarray:
    if allow_all and cell == ALL_STAGES:
        return np.ones(len(universe), dtype=bool)
    parts = set(str(cell).split(LIST_SEPARATOR))
    return np.array([u in parts for u in universe], dtype=bool)


@dataclass(frozen=True)
class CatalogArrays:
    """A catalog as arrays; messages keep the frame's row order (their code)."""

    message_ids: tuple[str, ...]
    objective: np.ndarray  # (M,) int, index into OBJECTIVES
    category: np.ndarray  # (M,) int, index into CATEGORIES, -1 for general/unknown
    value: np.ndarray  # (M,) float64
    cost: np.ndarray  # (M, n_channels) float64
    allowed_channel: np.ndarray  # (M, n_channels) bool
    eligible_stage: np.ndarray  # (M, n_stages) bool
    requires_cart: np.ndarray  # (M,) bool
    cooldown_seconds: np.ndarray  # (M,) float64

    @property
    def n_messages(self) -> int:
        return len(self.message_ids)

    @classmethod
    def from_frame(cls, catalog: pd.DataFrame) -> CatalogArrays:
        stage_values = tuple(s.value for s in STAGES)
        channel_values = tuple(c.value for c in CHANNELS)
        objective_index = {o.value: i for i, o in enumerate(OBJECTIVES)}
        category_index = {c: i for i, c in enumerate(CATEGORIES)}
        return cls(
            message_ids=tuple(str(m) for m in catalog[Col.MESSAGE_ID]),
            objective=np.array([objective_index[str(o)] for o in catalog[Col.OBJECTIVE]]),
            category=np.array([category_index.get(str(c), -1) for c in catalog[Col.CATEGORY]]),
            value=catalog[Col.VALUE].to_numpy(dtype=np.float64),
            cost=np.column_stack(
                [catalog[cost_column(c)].to_numpy(dtype=np.float64) for c in CHANNELS]
            ),
            allowed_channel=np.vstack(
                [_members(c, channel_values, False) for c in catalog[Col.CHANNELS]]
            ),
            eligible_stage=np.vstack(
                [_members(s, stage_values, True) for s in catalog[Col.ELIGIBLE_STAGES]]
            ),
            requires_cart=catalog[Col.REQUIRES_CART].to_numpy(dtype=bool),
            cooldown_seconds=catalog[Col.COOLDOWN_HOURS].to_numpy(dtype=np.float64) * 3600.0,
        )

    def message_codes(self, message_ids: pd.Series | np.ndarray) -> np.ndarray:
        """Codes of message ids; ``None``/NaN/``no_action`` become -1; unknown ids raise."""
        codes, missing = encode(message_ids, self.message_ids)
        if (codes < 0).any():
            empty = missing.copy()
            empty[codes < 0] |= encode(np.asarray(message_ids, dtype=object)[codes < 0],
                                       (NO_ACTION,))[0] == 0
            unknown = (codes < 0) & ~empty
            if unknown.any():
                bad = sorted({str(v) for v in np.asarray(message_ids, dtype=object)[unknown]})
                raise ValueError(f"message_id not in the catalog: {', '.join(bad[:5])}")
        return codes
