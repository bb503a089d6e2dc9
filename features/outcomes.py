"""What followed each decision within its attribution window: the labels of the decision log.

For a decision made at ``ts`` the window is ``[ts, ts + window_hours)``:

* ``converted`` / ``revenue`` — any purchase of the customer in the window / their value (every
  arm is measured the same way, ``no_action`` included, so uplift can be learned);
* ``delivered`` / ``opened`` / ``clicked`` — a message event in the window that carries the
  decision's ``decision_id``, or, when an event carries no known decision, the same customer,
  ``message_id`` and ``channel`` at or after the decision's ``send_at`` (it goes to the latest
  such decision, so back-to-back sends of one message do not share a response);
* ``unsubscribed`` — an unsubscribe on the decision's channel in the window (never for
  ``no_action``); ``unsubscribed_any`` — on any channel, comparable across arms.

Everything is vectorised: one ``searchsorted`` per boundary, prefix sums for counts and money.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from features.contract import (
    CHANNELS,
    DEFAULT_ATTRIBUTION_HOURS,
    MESSAGE_EVENT_TYPES,
    REQUIRED_COLUMNS,
    Col,
    EventType,
    Table,
)
from features.eventlog import (
    CHANNEL_CODE,
    EVENT_CODE,
    NS_PER_HOUR,
    EventLog,
    encode,
    positions_in,
    ts_to_ns,
)
from features.io import DataValidationError, Problem
from features.kernel import (
    Category,
    ScanPlan,
    SortedGroups,
    from_micros,
    group_time_order,
    prefix_sums,
    scan,
    to_micros,
    window_sums,
)
from features.scan import TC, tc_keys

logger = logging.getLogger(__name__)


class OutcomeCol:
    """Columns of the frame ``attribute_outcomes`` returns (besides ``decision_id``)."""

    CONVERTED: Final = "converted"
    REVENUE: Final = "revenue"
    DELIVERED: Final = "delivered"
    OPENED: Final = "opened"
    CLICKED: Final = "clicked"
    UNSUBSCRIBED: Final = "unsubscribed"
    UNSUBSCRIBED_ANY: Final = "unsubscribed_any"


_RESPONSES: Final = {
    EventType.MESSAGE_DELIVERED: OutcomeCol.DELIVERED,
    EventType.MESSAGE_OPEN: OutcomeCol.OPENED,
    EventType.MESSAGE_CLICK: OutcomeCol.CLICKED,
}
_N_CH: Final = len(CHANNELS) + 1
#: Bounds rows of the window scan: its end, the customer's first event, its start.
_END, _FIRST, _START = 0, 1, 2
_PLAN: Final = ScanPlan(
    (
        Category("purchase", TC, tc_keys([EventType.PURCHASE]), (_START,)),
        Category("unsubscribe", TC, tc_keys([EventType.UNSUBSCRIBE]), (_START,)),
        *(Category(f"unsubscribe_{c}", TC, tc_keys([EventType.UNSUBSCRIBE], [c]), (_START,))
          for c in CHANNELS),
    ),
    {TC: len(EVENT_CODE) * _N_CH},
)
_PURCHASE: Final = EVENT_CODE[EventType.PURCHASE]
_IS_RESPONSE: Final = np.isin(np.arange(len(EVENT_CODE)),
                              [EVENT_CODE[e] for e in MESSAGE_EVENT_TYPES])


def _check_columns(decisions: pd.DataFrame, events: pd.DataFrame) -> None:
    problems = [
        Problem(table.value, column, f"a column '{column}' (required in {table.value})")
        for table, frame in ((Table.DECISIONS, decisions), (Table.EVENTS, events))
        for column in REQUIRED_COLUMNS[table]
        if column not in frame.columns
    ]
    if not problems:
        repeated = decisions[Col.DECISION_ID].duplicated().to_numpy()
        if repeated.any():
            rows = tuple(int(i) + 1 for i in np.flatnonzero(repeated))
            problems.append(Problem(Table.DECISIONS.value, Col.DECISION_ID,
                                    "a unique value (it repeats)", rows))
    if problems:
        raise DataValidationError(problems)


@dataclass(frozen=True)
class _Events:
    """Event columns encoded once, in the frame's row order."""

    customer: np.ndarray
    ts_ns: np.ndarray
    event_type: np.ndarray
    channel: np.ndarray
    message: np.ndarray

    @classmethod
    def encode(cls, events: pd.DataFrame, customer_ids: Sequence[str],
               message_ids: Sequence[str]) -> _Events:
        return cls(
            customer=positions_in(events[Col.CUSTOMER_ID], customer_ids).astype(np.int32),
            ts_ns=ts_to_ns(events[Col.TS]),
            event_type=encode(events[Col.EVENT_TYPE], EVENT_CODE),
            channel=encode(events[Col.CHANNEL], CHANNEL_CODE),
            message=encode(events[Col.MESSAGE_ID], {m: i for i, m in enumerate(message_ids)}),
        )

    def log(self, events: pd.DataFrame, customer_ids: np.ndarray,
            message_ids: tuple[str, ...]) -> EventLog:
        order = group_time_order(self.customer, self.ts_ns)
        counts = np.bincount(self.customer, minlength=len(customer_ids))
        return EventLog(
            customer_ids=customer_ids,
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            customer=self.customer[order], ts_ns=self.ts_ns[order],
            event_type=self.event_type[order], channel=self.channel[order],
            message=self.message[order],
            value=events[Col.VALUE].to_numpy(dtype=np.float64)[order],
            message_ids=message_ids,
        )


def attribute_outcomes(
    decisions: pd.DataFrame,
    events: pd.DataFrame,
    window_hours: float = DEFAULT_ATTRIBUTION_HOURS,
) -> pd.DataFrame:
    """One row per decision (same order and index): ``decision_id`` and the outcome columns
    of ``OutcomeCol``, from validated decisions and events frames."""
    if not window_hours > 0:
        raise ValueError(f"window_hours must be > 0 (got {window_hours})")
    _check_columns(decisions, events)
    customer_ids = np.asarray(sorted(set(pd.unique(decisions[Col.CUSTOMER_ID]).tolist())
                                     | set(pd.unique(events[Col.CUSTOMER_ID]).tolist())),
                              dtype=object)
    message_ids = tuple(sorted(set(decisions[Col.MESSAGE_ID].dropna().unique().tolist())
                               | set(events[Col.MESSAGE_ID].dropna().unique().tolist())))
    encoded = _Events.encode(events, list(customer_ids), message_ids)
    log = encoded.log(events, customer_ids, message_ids)
    customer = positions_in(decisions[Col.CUSTOMER_ID], list(customer_ids))
    start = ts_to_ns(decisions[Col.TS])
    end = start + int(round(window_hours * NS_PER_HOUR))
    send_at = ts_to_ns(decisions[Col.SEND_AT].fillna(decisions[Col.TS]))
    message = encode(decisions[Col.MESSAGE_ID], {m: i for i, m in enumerate(message_ids)})
    channel = encode(decisions[Col.CHANNEL], CHANNEL_CODE)

    out = pd.DataFrame({Col.DECISION_ID: decisions[Col.DECISION_ID].to_numpy()},
                       index=decisions.index)
    _purchases_and_unsubscribes(out, log, customer, start, end, channel)
    sends = _Sends(customer, start, end, send_at, message, channel, len(message_ids))
    for column, flags in _responses(encoded, events, decisions, sends).items():
        out[column] = flags
    logger.info("attributed outcomes of %d decisions (window %g h): %.1f%% converted",
                len(out), window_hours, 100 * out[OutcomeCol.CONVERTED].mean() if len(out) else 0)
    return out


def _purchases_and_unsubscribes(
    out: pd.DataFrame, log: EventLog, customer: np.ndarray, start: np.ndarray, end: np.ndarray,
    channel: np.ndarray,
) -> None:
    groups = SortedGroups.build(log.customer, log.ts_ns, log.offsets)
    n = customer.shape[0]
    order = np.argsort(customer, kind="stable")  # searches and gathers walk memory forward
    by_customer = customer[order]
    found = groups.positions(np.concatenate([by_customer, by_customer]),
                             np.concatenate([end[order], start[order]]))
    bounds = np.empty((3, n), dtype=np.int64)
    bounds[:, order] = np.stack([found[:n], log.offsets[by_customer], found[n:]])
    keys = {TC: log.event_type.astype(np.int32) * _N_CH + log.channel + 1}
    counts = scan(_PLAN, keys, log.n_events, bounds).counts
    purchases = np.where(log.event_type == _PURCHASE, log.value, 0.0)
    revenue = window_sums(prefix_sums(to_micros(purchases)), bounds, [_START])[0]
    index = _PLAN.count_index
    out[OutcomeCol.CONVERTED] = counts[index[("purchase", _START)]] > 0
    out[OutcomeCol.REVENUE] = from_micros(revenue)
    per_channel = counts[[index[(f"unsubscribe_{c}", _START)] for c in CHANNELS]]
    sent = channel >= 0
    on_channel = np.zeros(n, dtype=bool)
    on_channel[sent] = per_channel[channel[sent], np.flatnonzero(sent)] > 0
    out[OutcomeCol.UNSUBSCRIBED] = on_channel
    out[OutcomeCol.UNSUBSCRIBED_ANY] = counts[index[("unsubscribe", _START)]] > 0


@dataclass(frozen=True)
class _Sends:
    """The decisions' arrays that response matching reads."""

    customer: np.ndarray
    start: np.ndarray
    end: np.ndarray
    send_at: np.ndarray
    message: np.ndarray
    channel: np.ndarray
    n_messages: int

    def key(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        return _group_key(self.customer[rows], self.message[rows], self.channel[rows],
                          self.n_messages)


def _responses(
    encoded: _Events, events: pd.DataFrame, decisions: pd.DataFrame, sends: _Sends
) -> dict[str, np.ndarray]:
    """Delivered / opened / clicked flags per decision from the message events."""
    n = sends.customer.shape[0]
    rows = np.flatnonzero(_IS_RESPONSE[np.maximum(encoded.event_type, 0)])
    ev_customer, ev_ts = encoded.customer[rows], encoded.ts_ns[rows]
    ev_type = encoded.event_type[rows]
    ev_key = _group_key(ev_customer, encoded.message[rows], encoded.channel[rows],
                        sends.n_messages)
    # Events naming a decision of this log, in its window and of its customer, belong to it.
    tagged = positions_in(events[Col.DECISION_ID].iloc[rows],
                          decisions[Col.DECISION_ID].astype(str).tolist())
    ok = tagged >= 0
    named = tagged[ok]
    ok[ok] = ((sends.customer[named] == ev_customer[ok]) & (ev_ts[ok] >= sends.start[named])
              & (ev_ts[ok] < sends.end[named]))
    owner = np.where(ok, tagged, -1)
    # The others go to the latest send of the same message on the same channel before them.
    loose = np.flatnonzero(~ok)
    sent = np.flatnonzero(sends.message >= 0)
    if loose.size and sent.size:
        keys, group = np.unique(sends.key(sent), return_inverse=True)
        order = np.lexsort((sends.send_at[sent], group))
        offsets = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=keys.size))])
        by_send = SortedGroups.build(group[order], sends.send_at[sent][order], offsets)
        ev_group = np.minimum(np.searchsorted(keys, ev_key[loose]), keys.size - 1)
        candidate = by_send.positions(ev_group, ev_ts[loose], inclusive=True) - 1
        matched = (keys[ev_group] == ev_key[loose]) & (candidate >= offsets[ev_group])
        decision = sent[order[np.maximum(candidate, 0)]]
        matched &= ev_ts[loose] < sends.end[decision]
        owner[loose[matched]] = decision[matched]
    flags = {}
    for event_type, column in _RESPONSES.items():
        hit = np.zeros(n, dtype=bool)
        hit[owner[(owner >= 0) & (ev_type == EVENT_CODE[event_type])]] = True
        flags[column] = hit
    return flags


def _group_key(
    customer: np.ndarray, message: np.ndarray, channel: np.ndarray, n_messages: int
) -> np.ndarray:
    """One integer per (customer, message, channel)."""
    return ((customer.astype(np.int64) * (n_messages + 1) + message + 1) * _N_CH + channel + 1)
