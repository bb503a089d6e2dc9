"""Events as sorted numpy arrays: the one in-memory form that features and contact rules read.

Training builds one ``EventLog`` for millions of events; serving builds one for a single
customer's history. Both go through the same code, so the arrays (and what is computed from them)
mean the same thing everywhere. Codes index the contract's tuples (``EVENT_TYPES``, ``CHANNELS``)
and the catalog's message order; ``-1`` means empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import CHANNELS, EVENT_TYPES, Col
from features.kernel import group_time_order

EVENT_CODE = {e.value: i for i, e in enumerate(EVENT_TYPES)}
CHANNEL_CODE = {c.value: i for i, c in enumerate(CHANNELS)}
NS_PER_HOUR = 3_600 * 10**9
NS_PER_DAY = 24 * NS_PER_HOUR


def positions_in(values: pd.Series | Sequence[object], keys: Sequence[str]) -> np.ndarray:
    """Position of each value in ``keys`` (int64); missing or unknown values become -1.

    Hash lookups in pyarrow: millions of strings in well under a second, where a Python-level
    ``map`` takes many. Values that are not all strings take the slower exact path.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype="object")
    try:
        array = pa.array(series, from_pandas=True)
        if pa.types.is_null(array.type) or pa.types.is_large_string(array.type):
            array = array.cast(pa.string())
        if pa.types.is_string(array.type):
            found = pc.index_in(array, value_set=pa.array(list(keys), type=pa.string()))
            return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    position = {key: i for i, key in enumerate(keys)}
    mapped = series.astype("object").map(position)
    return mapped.fillna(-1).to_numpy(dtype=np.int64)


def encode(values: pd.Series | Sequence[object], codes: dict[str, int]) -> np.ndarray:
    """Map strings to integer codes; missing or unknown values become -1."""
    keys = list(codes)
    table = np.array([*(codes[k] for k in keys), -1], dtype=np.int16)
    return table[positions_in(values, keys)]


def ts_to_ns(values: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """UTC nanoseconds since the epoch as int64, whatever the resolution of the input."""
    return pd.DatetimeIndex(values).as_unit("ns").asi8.astype(np.int64, copy=False)


@dataclass(frozen=True)
class EventLog:
    """Events sorted by (customer, ts), as parallel arrays.

    ``offsets[i]:offsets[i+1]`` is the slice of customer ``customer_ids[i]``; within it ``ts_ns``
    is ascending.
    """

    customer_ids: np.ndarray  # (n_customers,) object: ids in code order
    offsets: np.ndarray  # (n_customers + 1,) int64
    customer: np.ndarray  # (n_events,) int32 customer code
    ts_ns: np.ndarray  # (n_events,) int64
    event_type: np.ndarray  # (n_events,) int16, index into EVENT_TYPES
    channel: np.ndarray  # (n_events,) int16, index into CHANNELS or -1
    message: np.ndarray  # (n_events,) int16, index into message_ids or -1
    value: np.ndarray  # (n_events,) float64
    message_ids: tuple[str, ...]
    #: Product category of each event (index into ``category_ids`` or -1), when the events
    #: carry the optional ``category`` column; ``None`` when they do not (e.g. a store that
    #: keeps no categories): category features are then unknown.
    category: np.ndarray | None = None  # (n_events,) int16
    category_ids: tuple[str, ...] = ()

    @property
    def n_events(self) -> int:
        return int(self.ts_ns.shape[0])

    def customer_code(self, customer_id: str) -> int:
        """Code of a customer, or -1 when the log holds none of its events."""
        index = np.searchsorted(self.customer_ids, customer_id)
        if index < len(self.customer_ids) and self.customer_ids[index] == customer_id:
            return int(index)
        return -1

    @classmethod
    def from_frame(
        cls,
        events: pd.DataFrame,
        message_ids: Sequence[str],
        customer_ids: Sequence[str] | None = None,
    ) -> EventLog:
        """Build from a validated events frame.

        ``customer_ids`` fixes the customer universe (sorted internally); customers without
        events get empty slices, and events of customers outside it are dropped.
        """
        universe = customer_ids
        if universe is None:
            universe = pd.unique(events[Col.CUSTOMER_ID]).tolist()
        ids = np.asarray(sorted(set(universe)), dtype=object)
        codes = positions_in(events[Col.CUSTOMER_ID], list(ids))
        keep = codes >= 0
        # Select rows on the arrays, not the frame: copying a wide frame is the slow part.
        rows = np.flatnonzero(keep)
        cust = codes[rows].astype(np.int32)
        ts = ts_to_ns(events[Col.TS])[rows]
        order = group_time_order(cust, ts)
        rows = rows[order]
        cust, ts = cust[order], ts[order]
        message_code = {m: i for i, m in enumerate(message_ids)}
        counts = np.bincount(cust, minlength=len(ids))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        category, category_ids = _categories(events, rows)
        return cls(
            customer_ids=ids,
            offsets=offsets,
            customer=cust,
            ts_ns=ts,
            event_type=encode(events[Col.EVENT_TYPE], EVENT_CODE)[rows],
            channel=encode(events[Col.CHANNEL], CHANNEL_CODE)[rows],
            message=encode(events[Col.MESSAGE_ID], message_code)[rows],
            value=events[Col.VALUE].to_numpy(dtype=np.float64)[rows],
            message_ids=tuple(message_ids),
            category=category,
            category_ids=category_ids,
        )

    @classmethod
    def from_arrays(
        cls,
        customer_id: str,
        ts_ns: np.ndarray,
        event_type: np.ndarray,
        channel: np.ndarray,
        message: np.ndarray,
        value: np.ndarray,
        message_ids: Sequence[str],
        category: np.ndarray | None = None,
        category_ids: Sequence[str] = (),
    ) -> EventLog:
        """One customer's history (e.g. read from the online store), sorted here by time;
        ``category`` codes index ``category_ids`` (-1: none)."""
        order = np.argsort(ts_ns, kind="stable")
        n = int(ts_ns.shape[0])
        return cls(
            customer_ids=np.asarray([customer_id], dtype=object),
            offsets=np.asarray([0, n], dtype=np.int64),
            customer=np.zeros(n, dtype=np.int32),
            ts_ns=np.asarray(ts_ns, dtype=np.int64)[order],
            event_type=np.asarray(event_type, dtype=np.int16)[order],
            channel=np.asarray(channel, dtype=np.int16)[order],
            message=np.asarray(message, dtype=np.int16)[order],
            value=np.asarray(value, dtype=np.float64)[order],
            message_ids=tuple(message_ids),
            category=None if category is None else np.asarray(category, dtype=np.int16)[order],
            category_ids=tuple(category_ids),
        )

    def slice_before(self, customer_code: int, as_of_ns: int) -> slice:
        """Events of one customer strictly before ``as_of_ns`` (the point-in-time rule)."""
        start, stop = int(self.offsets[customer_code]), int(self.offsets[customer_code + 1])
        end = start + int(np.searchsorted(self.ts_ns[start:stop], as_of_ns, side="left"))
        return slice(start, end)


def _categories(
    events: pd.DataFrame, rows: np.ndarray
) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """Codes of the optional ``category`` column at ``rows`` and their vocabulary (sorted)."""
    if Col.CATEGORY not in events.columns:
        return None, ()
    column = events[Col.CATEGORY]
    try:
        distinct = pc.unique(pa.array(column, from_pandas=True).drop_null()).to_pylist()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        distinct = pd.unique(column.dropna()).tolist()
    vocabulary = tuple(sorted({str(v) for v in distinct}))
    codes = positions_in(column, list(vocabulary)).astype(np.int16)
    return codes[rows], vocabulary
