"""What happened after an as-of time: the forward-looking labels of the training data sets.

Every label counts events of one customer in a window ``[start, end)`` after the as-of time,
with ``features.kernel.SortedGroups`` (one ``searchsorted`` for all queries), the same primitive
the point-in-time features use to look backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from features.contract import ACTIVITY_EVENT_TYPES, CHANNELS, ENGAGEMENT_EVENT_TYPES, EventType
from features.customers import CustomerTable
from features.eventlog import EVENT_CODE, EventLog
from features.kernel import SortedGroups
from features.scan import local_hour_of_week

HOURS_PER_WEEK: Final = 168
_ACTIVITY: Final = np.array([EVENT_CODE[e] for e in ACTIVITY_EVENT_TYPES], dtype=np.int16)
_ENGAGEMENT: Final = np.array([EVENT_CODE[e] for e in ENGAGEMENT_EVENT_TYPES], dtype=np.int16)
_PURCHASE: Final = EVENT_CODE[EventType.PURCHASE]


@dataclass(frozen=True)
class EventSubset:
    """Some events of a log (kept in the log's (customer, time) order), searchable by time."""

    index: np.ndarray  # positions in the log
    groups: SortedGroups

    @classmethod
    def of(cls, log: EventLog, mask: np.ndarray) -> EventSubset:
        index = np.flatnonzero(mask)
        customer = log.customer[index]
        counts = np.bincount(customer, minlength=log.customer_ids.shape[0])
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(index, SortedGroups.build(customer, log.ts_ns[index], offsets))

    def bounds(
        self, codes: np.ndarray, start_ns: np.ndarray, end_ns: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Subset positions ``[first, stop)`` of each query's events in ``[start, end)``."""
        return self.groups.positions(codes, start_ns), self.groups.positions(codes, end_ns)

    def count(self, codes: np.ndarray, start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
        first, stop = self.bounds(codes, start_ns, end_ns)
        return stop - first


def activity_counts(
    log: EventLog, codes: np.ndarray, start_ns: np.ndarray, end_ns: np.ndarray
) -> np.ndarray:
    """Activity events (``ACTIVITY_EVENT_TYPES``) of each query's customer in its window."""
    return EventSubset.of(log, np.isin(log.event_type, _ACTIVITY)).count(codes, start_ns, end_ns)


def purchase_counts(
    log: EventLog, codes: np.ndarray, start_ns: np.ndarray, end_ns: np.ndarray
) -> np.ndarray:
    """Purchases of each query's customer in its window."""
    return EventSubset.of(log, log.event_type == _PURCHASE).count(codes, start_ns, end_ns)


def channel_engagement(
    log: EventLog, codes: np.ndarray, start_ns: np.ndarray, end_ns: np.ndarray
) -> np.ndarray:
    """(n, len(CHANNELS)) 0/1: the customer had an engagement event on the channel in the
    window (``ENGAGEMENT_EVENT_TYPES``: opens, clicks, page and product views)."""
    engaged = np.isin(log.event_type, _ENGAGEMENT)
    out = np.zeros((codes.shape[0], len(CHANNELS)), dtype=np.float64)
    for column in range(len(CHANNELS)):
        subset = EventSubset.of(log, engaged & (log.channel == column))
        out[:, column] = subset.count(codes, start_ns, end_ns) > 0
    return out


def engaged_hours(
    log: EventLog,
    customers: CustomerTable,
    codes: np.ndarray,
    start_ns: np.ndarray,
    end_ns: np.ndarray,
) -> np.ndarray:
    """(n, 168) 0/1: the customer had an engagement event in that local hour of the week
    (Monday 00:00 = 0, the customer's timezone) during the window."""
    subset = EventSubset.of(log, np.isin(log.event_type, _ENGAGEMENT))
    first, stop = subset.bounds(codes, start_ns, end_ns)
    lengths = stop - first
    query = np.repeat(np.arange(codes.shape[0]), lengths)
    # Position of every (query, event) pair in the subset, without a Python loop per query.
    starts = np.cumsum(lengths) - lengths
    position = np.arange(int(lengths.sum())) - np.repeat(starts - first, lengths)
    hours = local_hour_of_week(log, customers, subset.index[position]).astype(np.int64)
    out = np.zeros((codes.shape[0], HOURS_PER_WEEK), dtype=np.float64)
    out[query, hours] = 1.0
    return out
