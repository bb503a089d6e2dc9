"""The parts of a customer's event history the contact policy reads, as small numpy arrays.

Sends are ``message_delivered`` events, including ones scheduled after ``now`` by earlier
decisions (they count against caps and cooldowns). Engagement is an open or a click on the
channel. An ``unsubscribe`` without a channel opts the customer out of every channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from features.contract import CHANNELS, EventType
from features.eventlog import EVENT_CODE, EventLog
from models.policy.types import Decision, DecisionInputError

DELIVERED = EVENT_CODE[EventType.MESSAGE_DELIVERED]
OPEN = EVENT_CODE[EventType.MESSAGE_OPEN]
CLICK = EVENT_CODE[EventType.MESSAGE_CLICK]
PURCHASE = EVENT_CODE[EventType.PURCHASE]
UNSUBSCRIBE = EVENT_CODE[EventType.UNSUBSCRIBE]
#: Event types that can change a decision; the decision log keeps only these for replay.
POLICY_EVENT_CODES = np.array([DELIVERED, OPEN, CLICK, PURCHASE, UNSUBSCRIBE], dtype=np.int16)

_EMPTY_I64 = np.zeros(0, dtype=np.int64)
_EMPTY_INT = np.zeros(0, dtype=np.intp)


@dataclass(frozen=True, slots=True)
class ContactHistory:
    send_ns: np.ndarray  # (n_sends,) int64, ascending
    send_channel: np.ndarray  # (n_sends,) intp, index into CHANNELS or -1
    send_message: np.ndarray  # (n_sends,) intp, the engine's message code or -1
    engagement_ns: np.ndarray  # (n_engagements,) int64, ascending
    engagement_channel: np.ndarray  # (n_engagements,) intp
    last_purchase_ns: int | None
    unsubscribed: np.ndarray  # (n_channels,) bool

    @classmethod
    def empty(cls) -> ContactHistory:
        return cls(
            _EMPTY_I64, _EMPTY_INT, _EMPTY_INT, _EMPTY_I64, _EMPTY_INT, None,
            np.zeros(len(CHANNELS), dtype=bool),
        )


class MessageCodeMap:
    """Translates an EventLog's message codes into the engine's (catalog order) codes."""

    def __init__(self, message_ids: Sequence[str]) -> None:
        self.message_ids = tuple(message_ids)
        self._index = {m: i for i, m in enumerate(self.message_ids)}
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def translate(self, log_message_ids: tuple[str, ...], codes: np.ndarray) -> np.ndarray:
        if log_message_ids is self.message_ids or log_message_ids == self.message_ids:
            return codes.astype(np.intp, copy=False)
        table = self._cache.get(log_message_ids)
        if table is None:
            # the last entry maps code -1 (no message) to -1
            table = np.array([self._index.get(m, -1) for m in log_message_ids] + [-1], np.intp)
            self._cache[log_message_ids] = table
        return table[codes]


def _read_only(history: ContactHistory) -> ContactHistory:
    for array in (history.send_ns, history.send_channel, history.send_message,
                  history.engagement_ns, history.engagement_channel, history.unsubscribed):
        array.flags.writeable = False
    return history


#: The history of a customer without events, shared by every such request.
NO_HISTORY = _read_only(ContactHistory.empty())


def customer_slice(log: EventLog, customer_id: str) -> slice:
    """The events of ``customer_id`` in ``log`` (empty when it holds none)."""
    if len(log.customer_ids) == 1:
        if log.customer_ids[0] != customer_id:
            raise DecisionInputError(
                f"history: holds the events of customer {log.customer_ids[0]!r}, "
                f"not of {customer_id!r}"
            )
        return slice(0, log.n_events)
    code = log.customer_code(customer_id)
    if code < 0:
        return slice(0, 0)
    return slice(int(log.offsets[code]), int(log.offsets[code + 1]))


def read_history(
    log: EventLog | None, customer_id: str, codes: MessageCodeMap, now_ns: int
) -> ContactHistory:
    """Extract sends, engagements, the last purchase before ``now`` and unsubscribes."""
    if log is None or log.n_events == 0:
        return NO_HISTORY
    part = customer_slice(log, customer_id)
    ts = log.ts_ns[part]
    if ts.shape[0] == 0:
        return NO_HISTORY
    event_type = log.event_type[part]
    channel = log.channel[part].astype(np.intp)

    is_send = event_type == DELIVERED
    is_engagement = (event_type == OPEN) | (event_type == CLICK)
    purchases = ts[(event_type == PURCHASE) & (ts < now_ns)]

    unsubscribed = np.zeros(len(CHANNELS), dtype=bool)
    unsubscribe_channels = channel[event_type == UNSUBSCRIBE]
    if unsubscribe_channels.shape[0]:
        if (unsubscribe_channels < 0).any():
            unsubscribed[:] = True
        else:
            unsubscribed[unsubscribe_channels] = True

    return ContactHistory(
        send_ns=ts[is_send],
        send_channel=channel[is_send],
        send_message=codes.translate(log.message_ids, log.message[part][is_send]),
        engagement_ns=ts[is_engagement],
        engagement_channel=channel[is_engagement],
        last_purchase_ns=int(purchases[-1]) if purchases.shape[0] else None,
        unsubscribed=unsubscribed,
    )


def with_send(log: EventLog | None, decision: Decision, message_ids: Sequence[str]) -> EventLog:
    """The customer's history once the decision's send is delivered (unchanged for no_action).

    Useful to simulate a sequence of decisions: each chosen send then counts against caps and
    cooldowns of the next ones. ``message_ids`` fixes the message codes of a new log.
    """
    customer_id = decision.customer_id
    if log is None:
        log = EventLog.from_arrays(
            customer_id, _EMPTY_I64, np.zeros(0, np.int16), np.zeros(0, np.int16),
            np.zeros(0, np.int16), np.zeros(0, np.float64), message_ids,
        )
    if decision.action is None:
        return log
    part = customer_slice(log, customer_id)
    action = decision.action
    send_ns = int(action.send_at.timestamp()) * 10**9 + action.send_at.microsecond * 1000
    message_code = log.message_ids.index(action.message_id)
    return EventLog.from_arrays(
        customer_id,
        np.append(log.ts_ns[part], send_ns),
        np.append(log.event_type[part], np.int16(DELIVERED)),
        np.append(log.channel[part], np.int16(CHANNELS.index(action.channel))),
        np.append(log.message[part], np.int16(message_code)),
        np.append(log.value[part], 0.0),
        log.message_ids,
    )
