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

Everything is vectorised: each kind of event that matters (purchases, unsubscribes, message
events) is taken out of the log on its own, sorted by (customer, time), and every decision's
window is two ``searchsorted`` lookups into it; money is summed with prefix sums.
"""

from __future__ import annotations

import logging
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
from features.eventlog import CHANNEL_CODE, EVENT_CODE, NS_PER_HOUR, encode, positions_in, ts_to_ns
from features.io import DataValidationError, Problem
from features.kernel import SortedGroups, from_micros, group_time_order, prefix_sums, to_micros

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
_N_CH: Final = len(CHANNELS) + 1  # channel codes shifted by one: 0 means "no channel"
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
class _Decisions:
    """The decisions' arrays, sorted by customer (searches walk memory forward)."""

    order: np.ndarray  # caller's row of each sorted decision
    customer: np.ndarray  # code among the decisions' customers
    start: np.ndarray
    end: np.ndarray
    send_at: np.ndarray
    message: np.ndarray  # code among message_ids, -1 for no_action
    channel: np.ndarray  # code among CHANNELS, -1 for no_action
    customer_ids: list[str]
    message_ids: list[str]

    @classmethod
    def from_frame(cls, decisions: pd.DataFrame, window_hours: float) -> _Decisions:
        customer_ids = sorted(set(pd.unique(decisions[Col.CUSTOMER_ID]).tolist()))
        message_ids = sorted(set(decisions[Col.MESSAGE_ID].dropna().unique().tolist()))
        customer = positions_in(decisions[Col.CUSTOMER_ID], customer_ids)
        order = np.argsort(customer, kind="stable")
        start = ts_to_ns(decisions[Col.TS])
        send_at = ts_to_ns(decisions[Col.SEND_AT].fillna(decisions[Col.TS]))
        message = encode(decisions[Col.MESSAGE_ID], {m: i for i, m in enumerate(message_ids)})
        channel = encode(decisions[Col.CHANNEL], CHANNEL_CODE)
        start = start[order]
        return cls(order, customer[order], start, start + int(round(window_hours * NS_PER_HOUR)),
                   send_at[order], message[order].astype(np.int64),
                   channel[order].astype(np.int64), customer_ids, message_ids)

    def unsort(self, values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        out[self.order] = values
        return out


@dataclass(frozen=True)
class _Kind:
    """Events of some types, sorted by (group, time), searchable per group."""

    groups: SortedGroups
    order: np.ndarray  # position of each sorted event in the subset

    @classmethod
    def of(cls, group: np.ndarray, ts_ns: np.ndarray, n_groups: int) -> _Kind:
        order = group_time_order(group, ts_ns)
        offsets = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n_groups))])
        return cls(SortedGroups.build(group[order], ts_ns[order], offsets), order)

    def window(self, group: np.ndarray, start: np.ndarray, end: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Positions bounding each query's events in ``[start, end)``."""
        n = group.shape[0]
        found = self.groups.positions(np.concatenate([group, group]), np.concatenate([start, end]))
        return found[:n], found[n:]


def _subset(events: pd.DataFrame, event_type: np.ndarray, types: list[EventType],
            customer_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of events of ``types`` whose customer has decisions, and those customers' codes."""
    rows = np.flatnonzero(np.isin(event_type, [EVENT_CODE[t] for t in types]))
    customer = positions_in(events[Col.CUSTOMER_ID].iloc[rows], customer_ids)
    known = customer >= 0
    return rows[known], customer[known]


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
    sends = _Decisions.from_frame(decisions, window_hours)
    event_type = encode(events[Col.EVENT_TYPE], EVENT_CODE)
    ts = ts_to_ns(events[Col.TS])
    columns = {
        **_purchases(events, event_type, ts, sends),
        **_unsubscribes(events, event_type, ts, sends),
        **_responses(events, event_type, ts, decisions, sends),
    }
    out = pd.DataFrame({Col.DECISION_ID: decisions[Col.DECISION_ID].to_numpy()},
                       index=decisions.index)
    for column in (OutcomeCol.CONVERTED, OutcomeCol.REVENUE, *_RESPONSES.values(),
                   OutcomeCol.UNSUBSCRIBED, OutcomeCol.UNSUBSCRIBED_ANY):
        out[column] = sends.unsort(columns[column])
    logger.info("attributed outcomes of %d decisions (window %g h): %.1f%% converted",
                len(out), window_hours, 100 * out[OutcomeCol.CONVERTED].mean() if len(out) else 0)
    return out


def _purchases(events: pd.DataFrame, event_type: np.ndarray, ts: np.ndarray,
               sends: _Decisions) -> dict[str, np.ndarray]:
    rows, customer = _subset(events, event_type, [EventType.PURCHASE], sends.customer_ids)
    kind = _Kind.of(customer, ts[rows], len(sends.customer_ids))
    lo, hi = kind.window(sends.customer, sends.start, sends.end)
    value = events[Col.VALUE].to_numpy(dtype=np.float64)[rows][kind.order]
    money = prefix_sums(to_micros(value))
    return {OutcomeCol.CONVERTED: hi > lo, OutcomeCol.REVENUE: from_micros(money[hi] - money[lo])}


def _unsubscribes(events: pd.DataFrame, event_type: np.ndarray, ts: np.ndarray,
                  sends: _Decisions) -> dict[str, np.ndarray]:
    rows, customer = _subset(events, event_type, [EventType.UNSUBSCRIBE], sends.customer_ids)
    n_customers = len(sends.customer_ids)
    lo, hi = _Kind.of(customer, ts[rows], n_customers).window(
        sends.customer, sends.start, sends.end)
    # Per channel: group by (customer, channel); no_action asks for "no channel", never used.
    channel = encode(events[Col.CHANNEL].iloc[rows], CHANNEL_CODE).astype(np.int64)
    on_channel = _Kind.of(customer * _N_CH + channel + 1, ts[rows], n_customers * _N_CH)
    decided = np.where(sends.channel >= 0, sends.customer * _N_CH + sends.channel + 1,
                       sends.customer * _N_CH)
    ch_lo, ch_hi = on_channel.window(decided, sends.start, sends.end)
    return {OutcomeCol.UNSUBSCRIBED: (ch_hi > ch_lo) & (sends.channel >= 0),
            OutcomeCol.UNSUBSCRIBED_ANY: hi > lo}


def _responses(events: pd.DataFrame, event_type: np.ndarray, ts: np.ndarray,
               decisions: pd.DataFrame, sends: _Decisions) -> dict[str, np.ndarray]:
    """Delivered / opened / clicked flags per (sorted) decision from the message events."""
    n = sends.customer.shape[0]
    rows, customer = _subset(events, event_type, list(MESSAGE_EVENT_TYPES), sends.customer_ids)
    ev_ts, ev_type = ts[rows], event_type[rows]
    message = encode(events[Col.MESSAGE_ID].iloc[rows],
                     {m: i for i, m in enumerate(sends.message_ids)}).astype(np.int64)
    channel = encode(events[Col.CHANNEL].iloc[rows], CHANNEL_CODE).astype(np.int64)
    # Events naming a decision, in its window and of its customer, belong to it.
    named = positions_in(events[Col.DECISION_ID].iloc[rows],
                         decisions[Col.DECISION_ID].astype(str).tolist())
    rank = np.empty_like(sends.order)
    rank[sends.order] = np.arange(n)
    tagged = np.where(named >= 0, rank[np.maximum(named, 0)], -1)
    ok = tagged >= 0
    who = tagged[ok]
    ok[ok] = ((sends.customer[who] == customer[ok]) & (ev_ts[ok] >= sends.start[who])
              & (ev_ts[ok] < sends.end[who]))
    owner = np.where(ok, tagged, -1)
    # The others go to the latest send of the same message on the same channel before them.
    loose = np.flatnonzero(~ok & (message >= 0) & (channel >= 0))
    sent = np.flatnonzero(sends.message >= 0)
    if loose.size and sent.size:
        # Dense group ids for the (customer, message, channel) combinations that were sent.
        keys, send_group = np.unique(_group_key(sends.customer[sent], sends.message[sent],
                                                sends.channel[sent], len(sends.message_ids)),
                                     return_inverse=True)
        by_send = _Kind.of(send_group, sends.send_at[sent], keys.size)
        event_key = _group_key(customer[loose], message[loose], channel[loose],
                               len(sends.message_ids))
        group = np.minimum(np.searchsorted(keys, event_key), keys.size - 1)
        latest = by_send.groups.positions(group, ev_ts[loose], inclusive=True) - 1
        matched = (keys[group] == event_key) & (latest >= by_send.groups.offsets[group])
        decision = sent[by_send.order[np.maximum(latest, 0)]]
        matched &= ev_ts[loose] < sends.end[decision]
        owner[loose[matched]] = decision[matched]
    flags = {}
    for event_type_, column in _RESPONSES.items():
        hit = np.zeros(n, dtype=bool)
        hit[owner[(owner >= 0) & (ev_type == EVENT_CODE[event_type_])]] = True
        flags[column] = hit
    return flags


def _group_key(
    customer: np.ndarray, message: np.ndarray, channel: np.ndarray, n_messages: int
) -> np.ndarray:
    """One integer per (customer, message, channel)."""
    return (customer.astype(np.int64) * (n_messages + 1) + message + 1) * _N_CH + channel + 1
