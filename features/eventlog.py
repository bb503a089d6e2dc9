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

from features.contract import CHANNELS, EVENT_TYPES, Col

EVENT_CODE = {e.value: i for i, e in enumerate(EVENT_TYPES)}
CHANNEL_CODE = {c.value: i for i, c in enumerate(CHANNELS)}
NS_PER_HOUR = 3_600 * 10**9
NS_PER_DAY = 24 * NS_PER_HOUR


def encode(values: pd.Series | Sequence[object], codes: dict[str, int]) -> np.ndarray:
    """Map strings to integer codes; missing or unknown values become -1."""
    series = pd.Series(values, dtype="object")
    return series.map(codes).fillna(-1).to_numpy(dtype=np.int16)


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
        ids = np.asarray(
            sorted(set(customer_ids) if customer_ids is not None else set(events[Col.CUSTOMER_ID])),
            dtype=object,
        )
        codes = pd.Index(ids).get_indexer(events[Col.CUSTOMER_ID])
        keep = codes >= 0
        frame = events.loc[keep]
        cust = codes[keep].astype(np.int32)
        ts = ts_to_ns(frame[Col.TS])
        order = np.lexsort((ts, cust))
        cust, ts = cust[order], ts[order]
        message_code = {m: i for i, m in enumerate(message_ids)}
        counts = np.bincount(cust, minlength=len(ids))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(
            customer_ids=ids,
            offsets=offsets,
            customer=cust,
            ts_ns=ts,
            event_type=encode(frame[Col.EVENT_TYPE], EVENT_CODE)[order],
            channel=encode(frame[Col.CHANNEL], CHANNEL_CODE)[order],
            message=encode(frame[Col.MESSAGE_ID], message_code)[order],
            value=frame[Col.VALUE].to_numpy(dtype=np.float64)[order],
            message_ids=tuple(message_ids),
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
    ) -> EventLog:
        """One customer's history (e.g. read from the online store), sorted here by time."""
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
        )

    def slice_before(self, customer_code: int, as_of_ns: int) -> slice:
        """Events of one customer strictly before ``as_of_ns`` (the point-in-time rule)."""
        start, stop = int(self.offsets[customer_code]), int(self.offsets[customer_code + 1])
        end = start + int(np.searchsorted(self.ts_ns[start:stop], as_of_ns, side="left"))
        return slice(start, end)
