"""Event storage during a run: compact numpy chunks, turned into one DataFrame at the end.

Nothing per event is a Python object while simulating. Strings are built once, at the end, by
pyarrow (ids from fixed-width digits, vocabularies by dictionary lookup), so 10 M events cost a
few hundred MB and a couple of seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from features.contract import CHANNELS, EVENT_TYPES, Col, EventType
from features.simulator.catalog import CATEGORIES
from features.simulator.clock import to_timestamps
from features.simulator.vocab import lookup, to_str_series

EVENT_CODE = {e: i for i, e in enumerate(EVENT_TYPES)}
PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, CHECKOUT, PURCHASE = (
    EVENT_CODE[e] for e in (EventType.PAGE_VIEW, EventType.PRODUCT_VIEW, EventType.ADD_TO_CART,
                            EventType.CHECKOUT, EventType.PURCHASE)
)
DELIVERED, OPEN, CLICK, UNSUBSCRIBE, SUPPORT = (
    EVENT_CODE[e] for e in (EventType.MESSAGE_DELIVERED, EventType.MESSAGE_OPEN,
                            EventType.MESSAGE_CLICK, EventType.UNSUBSCRIBE,
                            EventType.SUPPORT_CONTACT)
)

_FIELDS: dict[str, np.dtype] = {
    "customer": np.dtype(np.int32),
    "ts": np.dtype(np.float64),
    "event_type": np.dtype(np.int8),
    "channel": np.dtype(np.int8),
    "message": np.dtype(np.int16),
    "decision": np.dtype(np.int64),
    "value": np.dtype(np.float64),
    "category": np.dtype(np.int8),
}


def fixed_width_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.StringArray:
    """``prefix`` + ``numbers`` zero-padded to ``width`` digits, built straight into arrow."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    length = len(head) + width
    chars = np.empty((len(numbers), length), dtype=np.uint8)
    chars[:, : len(head)] = head
    remaining = np.asarray(numbers, dtype=np.int64).copy()
    for position in range(length - 1, len(head) - 1, -1):
        chars[:, position] = 48 + remaining % 10
        remaining //= 10
    offsets = np.arange(len(numbers) + 1, dtype=np.int32) * length
    return pa.StringArray.from_buffers(
        len(numbers), pa.py_buffer(offsets), pa.py_buffer(chars.reshape(-1))
    )


def digits(count: int) -> int:
    return max(len(str(max(count - 1, 0))), 1)


class EventBuffer:
    """Append-only columns of events; scalars broadcast to the length of ``customer``."""

    def __init__(self) -> None:
        self._chunks: dict[str, list[np.ndarray]] = {name: [] for name in _FIELDS}
        self.size = 0

    def add(
        self,
        customer: np.ndarray,
        ts: np.ndarray,
        event_type: int | np.ndarray,
        channel: int | np.ndarray = -1,
        message: int | np.ndarray = -1,
        decision: int | np.ndarray = -1,
        value: float | np.ndarray = 0.0,
        category: int | np.ndarray = -1,
    ) -> None:
        n = len(customer)
        if n == 0:
            return
        values = {
            "customer": customer, "ts": ts, "event_type": event_type, "channel": channel,
            "message": message, "decision": decision, "value": value, "category": category,
        }
        for name, dtype in _FIELDS.items():
            self._chunks[name].append(np.broadcast_to(np.asarray(values[name], dtype=dtype), (n,)))
        self.size += n

    def column(self, name: str) -> np.ndarray:
        chunks = self._chunks[name]
        return np.concatenate(chunks) if chunks else np.empty(0, dtype=_FIELDS[name])

    def to_frame(
        self,
        start: datetime,
        customer_ids: pa.Array,
        message_ids: Sequence[str],
        decision_ids: pa.Array,
        decision_rank: np.ndarray,
        keep_before: np.ndarray,
    ) -> pd.DataFrame:
        """The events table, sorted by time; events at or after ``keep_before[customer]`` drop.

        ``decision_rank`` maps the buffer's decision numbers to rows of ``decision_ids``.
        """
        columns = {name: self.column(name) for name in _FIELDS}
        self._chunks = {name: [] for name in _FIELDS}
        keep = columns["ts"] < keep_before[columns["customer"]]
        order = np.flatnonzero(keep)[np.argsort(columns["ts"][keep], kind="stable")]
        columns = {name: values[order] for name, values in columns.items()}
        n = len(order)
        decision = columns["decision"]
        decision_codes = np.full(n, -1, dtype=np.int64)
        linked = decision >= 0
        decision_codes[linked] = decision_rank[decision[linked]]
        decision_mask = decision_codes < 0
        frame = pd.DataFrame(
            {
                Col.EVENT_ID: to_str_series(fixed_width_ids("e", np.arange(n), digits(n))),
                Col.CUSTOMER_ID: to_str_series(customer_ids.take(pa.array(columns["customer"]))),
                Col.TS: to_timestamps(start, columns["ts"]),
                Col.EVENT_TYPE: lookup([e.value for e in EVENT_TYPES], columns["event_type"]),
                Col.CHANNEL: lookup([c.value for c in CHANNELS], columns["channel"]),
                Col.MESSAGE_ID: lookup(list(message_ids), columns["message"]),
                Col.DECISION_ID: to_str_series(
                    decision_ids.take(pa.array(np.maximum(decision_codes, 0), mask=decision_mask))
                    if len(decision_ids) else pa.nulls(n, pa.string())
                ),
                Col.VALUE: columns["value"],
                Col.CATEGORY: lookup(CATEGORIES, columns["category"]),
            }
        )
        return frame
