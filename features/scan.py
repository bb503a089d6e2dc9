"""What to count in an ``EventLog`` and the one scan that counts it for (customer, as-of) queries.

Events are classified through three integer keys per event ("families"): event type x channel,
the catalog message of a delivery, and the local day-part of an engagement event. Every feature
is then a count in a window, the time of a last event, or a money sum — see ``features.kernel``.
The point-in-time rule lives here, once: a query at ``as_of`` sees only events with
``ts < as_of`` (``SortedGroups.positions`` with strict inequality).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np

from features.contract import (
    ACTIVITY_EVENT_TYPES,
    CHANNELS,
    ENGAGEMENT_EVENT_TYPES,
    EVENT_TYPES,
    Channel,
    EventType,
)
from features.customers import CustomerTable
from features.definitions import (
    ACTIVITY_PROFILE_DAYS,
    CART_HOURS,
    DAY_PARTS,
    ENGAGEMENT_DAYS,
    FREQUENCY_DAYS,
    MONETARY_DAYS,
    PRESSURE_DAYS,
    SUPPORT_DAYS,
)
from features.eventlog import EVENT_CODE, NS_PER_DAY, NS_PER_HOUR, EventLog
from features.kernel import (
    END_ROW,
    START_ROW,
    Category,
    ScanPlan,
    ScanResult,
    SortedGroups,
    scan,
    to_micros,
)
from features.signal_definitions import (
    CATEGORY_VIEW_DAYS,
)
from features.signals import (
    AFTER_SEND_FAMILY_SIZE,
    PURCHASE_AFTER_SEND,
    PURCHASE_ORGANIC,
    SUPPORT_AFTER_SEND,
    after_send_keys,
    category_family_size,
    category_keys,
    first_purchase_ns,
    visit_hour_prefix,
)
from features.timezones import HOURS_PER_WEEK, hour_of_week, local_ns

TC: Final = "type_channel"
MESSAGE: Final = "message"
DAY_PART: Final = "day_part"
CATEGORY: Final = "category"
AFTER_SEND: Final = "after_send"
_N_CH: Final = len(CHANNELS) + 1  # channel codes shifted by one: 0 means "no channel"

#: Rows of the bounds array: 0 is the as-of time, 1 the customer's first event, then windows.
END: Final = END_ROW
LIFETIME: Final = START_ROW
WINDOWS_NS: Final = tuple(
    sorted({d * NS_PER_DAY for d in (*FREQUENCY_DAYS, *MONETARY_DAYS, *PRESSURE_DAYS,
                                     ENGAGEMENT_DAYS, SUPPORT_DAYS, ACTIVITY_PROFILE_DAYS,
                                     CATEGORY_VIEW_DAYS)}
           | {CART_HOURS * NS_PER_HOUR})
)


def window(days: float) -> int:
    """Bounds row of the window of the last ``days`` days."""
    return 2 + WINDOWS_NS.index(round(days * NS_PER_DAY))


CART_WINDOW: Final = 2 + WINDOWS_NS.index(CART_HOURS * NS_PER_HOUR)
VISIT_HOUR_WINDOW: Final = window(ACTIVITY_PROFILE_DAYS)
_DELIVERED: Final = EVENT_CODE[EventType.MESSAGE_DELIVERED]
#: Indexed by event type code: does the event count as engagement?
IS_ENGAGEMENT: Final = np.isin(np.arange(len(EVENT_TYPES)),
                               [EVENT_CODE[e] for e in ENGAGEMENT_EVENT_TYPES])
_HOURS: Final = np.arange(HOURS_PER_WEEK)
#: Day-part key of each local hour of the week: 1 + 2 * part + (Saturday or Sunday).
_DAY_PART_KEY: Final = (1 + 2 * ((_HOURS % 24) // 4) + (_HOURS >= 5 * 24)).astype(np.int16)


def tc_keys(
    types: Iterable[EventType], channels: Iterable[Channel] | None = None
) -> tuple[int, ...]:
    """Type x channel keys of events of ``types`` on ``channels`` (None: any, even no channel)."""
    channel_codes = range(_N_CH) if channels is None else [CHANNELS.index(c) + 1 for c in channels]
    return tuple(sorted(EVENT_CODE[t] * _N_CH + c for t in types for c in channel_codes))


def _base_categories() -> list[Category]:
    e = EventType
    freq = tuple(window(d) for d in FREQUENCY_DAYS)
    pressure = tuple(window(d) for d in PRESSURE_DAYS)
    out = [
        Category("activity", TC, tc_keys(ACTIVITY_EVENT_TYPES), last=True),
        Category("page_view", TC, tc_keys([e.PAGE_VIEW]), freq),
        Category("product_view", TC, tc_keys([e.PRODUCT_VIEW]), freq),
        Category("cart", TC, tc_keys([e.ADD_TO_CART]), freq, last=True),
        Category("purchase", TC, tc_keys([e.PURCHASE]), (*freq, LIFETIME), last=True),
        Category("cart_close", TC, tc_keys([e.CHECKOUT, e.PURCHASE]), last=True),
        Category("open", TC, tc_keys([e.MESSAGE_OPEN]), last=True),
        Category("click", TC, tc_keys([e.MESSAGE_CLICK]), last=True),
        Category("support", TC, tc_keys([e.SUPPORT_CONTACT]), (window(SUPPORT_DAYS),)),
        Category("unsubscribe", TC, tc_keys([e.UNSUBSCRIBE]), (LIFETIME,)),
        Category("send", TC, tc_keys([e.MESSAGE_DELIVERED]), (*pressure, LIFETIME), last=True),
    ]
    engagement = window(ENGAGEMENT_DAYS)
    for ch in CHANNELS:
        out += [
            Category(f"send_{ch}", TC, tc_keys([e.MESSAGE_DELIVERED], [ch]),
                     tuple(sorted({*pressure, engagement})), last=True),
            Category(f"open_{ch}", TC, tc_keys([e.MESSAGE_OPEN], [ch]), (engagement,)),
            Category(f"click_{ch}", TC, tc_keys([e.MESSAGE_CLICK], [ch]), (engagement,)),
            Category(f"engage_{ch}", TC, tc_keys(ENGAGEMENT_EVENT_TYPES, [ch]), (engagement,),
                     last=True),
            Category(f"unsubscribe_{ch}", TC, tc_keys([e.UNSUBSCRIBE], [ch]), (LIFETIME,)),
        ]
    return out


def _day_part_categories() -> list[Category]:
    profile = (window(ACTIVITY_PROFILE_DAYS),)
    # Day-part key: 1 + 2 * part + weekend for engagement events, 0 otherwise.
    parts = [Category(f"part_{p}", DAY_PART, (1 + 2 * i, 2 + 2 * i), profile)
             for i, p in enumerate(DAY_PARTS)]
    weekend_keys = tuple(2 + 2 * i for i in range(len(DAY_PARTS)))
    weekend = Category("weekend", DAY_PART, weekend_keys, profile)
    return [*parts, weekend]


def _signal_categories(n_categories: int) -> list[Category]:
    views = (window(CATEGORY_VIEW_DAYS),)
    out = [Category(f"view_category_{c}", CATEGORY, (1 + c,), views) for c in range(n_categories)]
    out += [Category(f"purchase_category_{c}", CATEGORY, (1 + n_categories + c,), (LIFETIME,))
            for c in range(n_categories)]
    out += [Category("purchase_after_send", AFTER_SEND, (PURCHASE_AFTER_SEND,), (LIFETIME,)),
            Category("purchase_organic", AFTER_SEND, (PURCHASE_ORGANIC,), (LIFETIME,)),
            Category("support_after_send", AFTER_SEND, (SUPPORT_AFTER_SEND,), (LIFETIME,))]
    return out


def _family_sizes(n_messages: int, n_categories: int = 0) -> dict[str, int]:
    return {TC: len(EVENT_TYPES) * _N_CH, MESSAGE: n_messages + 1, DAY_PART: 1 + 2 * len(DAY_PARTS),
            CATEGORY: category_family_size(n_categories), AFTER_SEND: AFTER_SEND_FAMILY_SIZE}


@lru_cache(maxsize=64)
def feature_plan(n_messages: int, n_categories: int = 0) -> ScanPlan:
    """Everything ``compute_features`` needs, for a catalog of ``n_messages`` messages in
    ``n_categories`` product categories."""
    messages = [Category(f"message_{m}", MESSAGE, (m + 1,), last=True) for m in range(n_messages)]
    return ScanPlan(
        tuple(_base_categories() + messages + _day_part_categories()
              + _signal_categories(n_categories)),
        _family_sizes(n_messages, n_categories),
    )


@lru_cache(maxsize=1)
def state_plan() -> ScanPlan:
    """The events behind journey stage, cart state and live consent only."""
    wanted = {"activity", "cart", "purchase", "cart_close", *(f"unsubscribe_{c}" for c in CHANNELS)}
    return ScanPlan(tuple(c for c in _base_categories() if c.name in wanted), _family_sizes(0))


def _message_keys(log: EventLog, message_ids: Sequence[str]) -> np.ndarray:
    if log.message_ids == tuple(message_ids):
        codes = log.message.astype(np.int32) + 1
    else:
        position = {m: i + 1 for i, m in enumerate(message_ids)}
        remap = np.array([0, *(position.get(m, 0) for m in log.message_ids)], dtype=np.int32)
        codes = remap[log.message.astype(np.int32) + 1]
    return np.where(log.event_type == _DELIVERED, codes, 0)


def _day_part_keys(
    log: EventLog, engaged: np.ndarray, hour_of_week: np.ndarray
) -> np.ndarray:
    keys = np.zeros(log.n_events, dtype=np.int16)
    keys[engaged] = _DAY_PART_KEY[hour_of_week]
    return keys


def local_hour_of_week(log: EventLog, customers: CustomerTable, events: np.ndarray) -> np.ndarray:
    """Hour of the week (Monday 00:00 local = 0) of ``events`` in their customer's timezone."""
    if len(customers.timezones) == 1:
        tz_codes = np.zeros(0, dtype=np.int16)  # one timezone: no per-event lookup needed
    else:
        tz_codes = customers.timezone[log.customer[events]]
    return hour_of_week(local_ns(log.ts_ns[events], tz_codes, customers.timezones))


def check_queries(log: EventLog, customer_codes: np.ndarray, as_of_ns: np.ndarray) -> None:
    if customer_codes.shape != as_of_ns.shape or customer_codes.ndim != 1:
        raise ValueError(
            f"customer_codes and as_of_ns must be 1-D of one length (got {customer_codes.shape} "
            f"and {as_of_ns.shape})"
        )
    n_customers = log.customer_ids.shape[0]
    if customer_codes.size and (customer_codes.min() < 0 or customer_codes.max() >= n_customers):
        bad = customer_codes[(customer_codes < 0) | (customer_codes >= n_customers)][:5]
        raise ValueError(
            f"customer codes {bad.tolist()} are outside this event log's {n_customers} customers"
        )


def check_codes(log: EventLog) -> None:
    """Codes out of range would silently index the wrong category: refuse them."""
    if log.n_events == 0:
        return
    for name, codes, high in (
        ("event_type", log.event_type, len(EVENT_TYPES)),
        ("channel", log.channel, len(CHANNELS)),
        ("message", log.message, len(log.message_ids)),
    ):
        low = 0 if name == "event_type" else -1
        if int(codes.min()) < low or int(codes.max()) >= high:
            raise ValueError(f"event log {name} codes must lie in [{low}, {high}) "
                             f"(found {int(codes.min())}..{int(codes.max())})")


@dataclass(frozen=True)
class Queries:
    """(customer, as-of) queries resolved to event positions, sorted by customer.

    Everything computed from a ``Queries`` is in its sorted order; ``order[i]`` is the caller's
    index of sorted query ``i`` (None when the caller's order was kept, e.g. one query).
    """

    codes: np.ndarray  # (n,) int64 customer codes of the log
    as_of: np.ndarray  # (n,) int64 UTC ns
    bounds: np.ndarray  # (n_bounds, n) int64, rows END, LIFETIME, then WINDOWS_NS
    order: np.ndarray | None

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def start(self) -> np.ndarray:
        return self.bounds[LIFETIME]

    @property
    def end(self) -> np.ndarray:
        return self.bounds[END]

    def unsort(self, values: np.ndarray) -> np.ndarray:
        """Rows of ``values`` (sorted order, along the last axis) back in the caller's order."""
        if self.order is None:
            return values
        out = np.empty_like(values)
        out[..., self.order] = values
        return out

    @classmethod
    def resolve(cls, log: EventLog, customer_codes: np.ndarray, as_of_ns: np.ndarray) -> Queries:
        codes = np.asarray(customer_codes, dtype=np.int64)
        as_of = np.asarray(as_of_ns, dtype=np.int64)
        check_queries(log, codes, as_of)
        order = None
        if codes.shape[0] > 1:
            # Grouped by customer, the searches and gathers walk memory forward.
            order = np.argsort(codes, kind="stable")
            codes, as_of = codes[order], as_of[order]
        groups = SortedGroups.build(log.customer, log.ts_ns, log.offsets)
        n = codes.shape[0]
        times = np.empty((1 + len(WINDOWS_NS), n), dtype=np.int64)
        times[0] = as_of
        np.subtract(as_of[None, :], _WINDOWS, out=times[1:])
        found = groups.positions(np.concatenate([codes] * times.shape[0]), times.reshape(-1))
        bounds = np.empty((2 + len(WINDOWS_NS), n), dtype=np.int64)
        bounds[END] = found[:n]
        bounds[LIFETIME] = log.offsets[codes]
        bounds[2:] = found[n:].reshape(len(WINDOWS_NS), n)
        return cls(codes, as_of, bounds, order)


_WINDOWS: Final = np.asarray(WINDOWS_NS, dtype=np.int64)[:, None]
_VALUE_ROWS: Final = np.zeros((2, len(EVENT_TYPES)), dtype=bool)
_VALUE_ROWS[0, EVENT_CODE[EventType.PURCHASE]] = True
_VALUE_ROWS[1, EVENT_CODE[EventType.ADD_TO_CART]] = True
#: Rows of ``EventScan.purchase_value``.
PURCHASE_VALUE_WINDOWS: Final = (*(window(d) for d in MONETARY_DAYS), LIFETIME)
_PURCHASE_BOUNDS: Final = np.array([END, *PURCHASE_VALUE_WINDOWS])


@dataclass(frozen=True)
class EventScan:
    """A plan's counts and last events for resolved queries, plus purchase and cart money.

    Arrays are (category, query) in the queries' sorted order. Money is in integer millionths.
    """

    log: EventLog
    queries: Queries
    plan: ScanPlan
    result: ScanResult
    purchase_value: np.ndarray  # (len(PURCHASE_VALUE_WINDOWS), n) int64 micros
    cart_value: np.ndarray  # (n,) int64 micros of the open cart (0 when none)
    open_cart: np.ndarray  # (n,) bool
    #: With the day-part family: (2 * harmonics, n) int64 micro sums of site visits' hour
    #: harmonics over ``VISIT_HOUR_WINDOW``, and each query's customer's first purchase time.
    visit_hours: np.ndarray | None = None
    first_purchase_ns: np.ndarray | None = None

    @classmethod
    def run(
        cls,
        log: EventLog,
        queries: Queries,
        plan: ScanPlan,
        customers: CustomerTable | None = None,
        message_ids: Sequence[str] = (),
        categories: Sequence[str] = (),
    ) -> EventScan:
        check_codes(log)
        keys = {TC: log.event_type.astype(np.int32) * _N_CH + log.channel + 1}
        if MESSAGE in plan.luts:
            keys[MESSAGE] = _message_keys(log, message_ids)
        if CATEGORY in plan.luts:
            keys[CATEGORY] = category_keys(log, categories)
        if AFTER_SEND in plan.luts:
            keys[AFTER_SEND] = after_send_keys(log)
        visit_hours = first_purchase = None
        if DAY_PART in plan.luts:
            if customers is None:
                raise ValueError("day-part features need the customers' timezones")
            engaged = np.flatnonzero(IS_ENGAGEMENT[log.event_type])
            how = local_hour_of_week(log, customers, engaged)
            keys[DAY_PART] = _day_part_keys(log, engaged, how)
            prefix = visit_hour_prefix(log, engaged, how)
            visit_hours = (prefix[:, queries.bounds[END]]
                           - prefix[:, queries.bounds[VISIT_HOUR_WINDOW]])
            first_purchase = first_purchase_ns(log, queries.codes)
        result = scan(plan, keys, log.n_events, queries.bounds)
        # Purchase and cart values as prefix sums: window totals by subtraction.
        money = np.zeros((2, log.n_events + 1), dtype=np.int64)
        np.cumsum(_VALUE_ROWS[:, log.event_type] * to_micros(log.value), axis=1, out=money[:, 1:])
        at_bounds = money[0, queries.bounds[_PURCHASE_BOUNDS]]
        purchase = at_bounds[0] - at_bounds[1:]
        last = result.last[plan.last_rows(("cart", "cart_close"))]
        cart_window = queries.bounds[CART_WINDOW]
        open_cart = (last[0] >= cart_window) & (last[1] < last[0])
        since = np.maximum(last[1] + 1, cart_window)
        cart = np.where(open_cart, money[1, queries.end] - money[1, since], 0)
        return cls(log, queries, plan, result, purchase, cart, open_cart, visit_hours,
                   first_purchase)

    def count(self, name: str, row: int) -> np.ndarray:
        return self.result.counts[self.plan.count_index[(name, row)]]

    def counts(self, names: tuple[str, ...], row: int) -> np.ndarray:
        """(len(names), n) counts of categories in the window of bounds row ``row``."""
        return self.result.counts[self.plan.count_rows(names, row)]

    def last(self, names: tuple[str, ...]) -> np.ndarray:
        """(len(names), n) global index of each category's last event before as-of; -1 none."""
        return self.result.last[self.plan.last_rows(names)]

    def event_ts(self, last: np.ndarray) -> np.ndarray:
        """Timestamps of events at positions ``last`` (meaningless where ``last`` is -1)."""
        return self.log.ts_ns[np.maximum(last, 0)] if self.log.n_events else last

    def elapsed_ns(self, last: np.ndarray, as_of: np.ndarray) -> np.ndarray:
        """Float ns from events at positions ``last`` to ``as_of``; NaN where ``last`` is -1."""
        elapsed = (as_of - self.event_ts(last)).astype(np.float64)
        elapsed[last < 0] = np.nan
        return elapsed
