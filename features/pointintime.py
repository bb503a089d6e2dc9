"""Point-in-time features: one function for training's millions of queries and serving's one.

``compute_features(log, customers, spec, customer_codes, as_of_ns)`` returns the float64 matrix
whose columns are ``spec.names``. Only events with ``ts < as_of`` count. Training passes an
``EventLog`` of every customer and many (customer, as-of) queries; serving passes
``EventLog.from_arrays`` of one customer and one query — the same code runs either way, so the
two agree to the bit (money is summed in integer millionths for that reason).

``NaN`` means unknown or never (no purchase yet, no engagement to take a share of, a missing
attribute).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import pandas as pd

from features.attributes import AttributeKind
from features.contract import CHANNELS, Col
from features.customers import CustomerTable
from features.definitions import (
    ACTIVITY_PROFILE_DAYS,
    AS_OF,
    CLICK_RATE_PRIOR,
    DAY_PARTS,
    ENGAGEMENT_DAYS,
    FREQUENCY_DAYS,
    MONETARY_DAYS,
    OPEN_RATE_PRIOR,
    PRESSURE_DAYS,
    RATE_PRIOR_WEIGHT,
    SUPPORT_DAYS,
    FeatureSpec,
    live_consent_name,
)
from features.eventlog import EVENT_CODE, NS_PER_DAY, NS_PER_HOUR, EventLog, ts_to_ns
from features.io import DataValidationError, Journeys, Problem
from features.kernel import SortedGroups, from_micros
from features.scan import (
    IS_ENGAGEMENT,
    LIFETIME,
    EventScan,
    Queries,
    check_queries,
    feature_plan,
    local_hour_of_week,
    window,
)
from features.signal_definitions import (
    CATEGORY_VIEW_DAYS,
    HOUR_HARMONICS,
    category_purchase_share_name,
    category_view_share_name,
)
from features.signals import peak_of_density
from features.stage import JourneyState, derive_journey_state, journey_state
from features.timezones import HOURS_PER_WEEK

#: Hour-profile expansion handles at most this many (query, event) pairs at a time.
_PROFILE_CHUNK: Final = 1 << 24
_PURCHASE: Final = EVENT_CODE["purchase"]
_ENGAGEMENT_DAYS_ROW: Final = window(ENGAGEMENT_DAYS)
_PROFILE_ROW: Final = window(ACTIVITY_PROFILE_DAYS)
_CATEGORY_VIEW_ROW: Final = window(CATEGORY_VIEW_DAYS)
_N_HARMONIC_ROWS: Final = 2 * len(HOUR_HARMONICS)


def _count_features() -> list[tuple[str, str, int]]:
    """(feature, scan category, window row) of the features that are plain counts."""
    out = [
        (f"{feature}_{d}d", category, window(d))
        for feature, category in (("page_views", "page_view"), ("product_views", "product_view"),
                                  ("carts", "cart"), ("purchases", "purchase"))
        for d in FREQUENCY_DAYS
    ]
    out.append(("purchases_total", "purchase", LIFETIME))
    for ch in CHANNELS:
        out += [(f"deliveries_{ENGAGEMENT_DAYS}d_{ch}", f"send_{ch}", _ENGAGEMENT_DAYS_ROW),
                (f"opens_{ENGAGEMENT_DAYS}d_{ch}", f"open_{ch}", _ENGAGEMENT_DAYS_ROW),
                (f"clicks_{ENGAGEMENT_DAYS}d_{ch}", f"click_{ch}", _ENGAGEMENT_DAYS_ROW),
                (f"engagements_{ENGAGEMENT_DAYS}d_{ch}", f"engage_{ch}", _ENGAGEMENT_DAYS_ROW)]
    out += [(f"sends_{d}d", "send", window(d)) for d in PRESSURE_DAYS]
    out += [(f"sends_{d}d_{ch}", f"send_{ch}", window(d)) for ch in CHANNELS for d in PRESSURE_DAYS]
    out += [(f"support_contacts_{SUPPORT_DAYS}d", "support", window(SUPPORT_DAYS)),
            ("unsubscribes_total", "unsubscribe", LIFETIME)]
    return out


_DAYS_SINCE: Final = [("days_since_activity", "activity"), ("days_since_purchase", "purchase"),
                      ("days_since_cart", "cart"), ("days_since_open", "open"),
                      ("days_since_click", "click")] + [
    (f"days_since_engagement_{ch}", f"engage_{ch}") for ch in CHANNELS]
_RESPONSES: Final = [f"{kind}_{ch}" for kind in ("send", "open", "click") for ch in CHANNELS]
_PARTS: Final = [*(f"part_{p}" for p in DAY_PARTS), "weekend"]
#: Rows of the output matrix are assembled this many queries at a time (bounded temporaries).
_ASSEMBLY_ROWS: Final = 1 << 16


@dataclass(frozen=True)
class _Layout:
    """Which scan rows feed which feature columns, for one spec (resolved once per spec)."""

    count_cols: np.ndarray
    count_rows: np.ndarray
    elapsed_cols: np.ndarray
    last_rows: np.ndarray
    elapsed_scale: np.ndarray  # (k, 1): 1 / unit in ns, days or hours
    value_cols: np.ndarray
    orders_row: int
    avg_order_col: int
    response_rows: np.ndarray  # deliveries, opens, clicks per channel (90 days)
    open_rate_cols: np.ndarray
    click_rate_cols: np.ndarray
    part_rows: np.ndarray
    engagements_col: int
    share_cols: np.ndarray
    stage_col: int
    open_cart_col: int
    cart_value_col: int
    tenure_col: int
    consent_cols: np.ndarray
    datetime_attributes: np.ndarray  # positions among the attributes
    visit_hour_cols: np.ndarray  # harmonic means, then peak hour and peak strength
    visits_row: int
    response_cols: np.ndarray  # open/click rate all, deliveries, after-send purchases, rate,
    #                            organic purchases, support after send
    response_count_rows: np.ndarray  # deliveries, after-send purchases, organic, support
    replenish_cols: np.ndarray  # interval, cycle position
    purchases_total_row: int
    days_since_purchase_col: int
    last_purchase_row: int
    engagement_share_cols: np.ndarray
    engagement_rows: np.ndarray
    view_share_cols: np.ndarray
    view_rows: np.ndarray
    purchase_share_cols: np.ndarray
    purchase_rows: np.ndarray


@lru_cache(maxsize=32)
def _layout(spec: FeatureSpec, categorised: bool = True) -> _Layout:
    """``categorised``: the events carry categories (otherwise the plan leaves the category
    families out and the shares are unknown)."""
    n_categories = len(spec.categories) if categorised else 0
    plan = feature_plan(len(spec.message_ids), n_categories)
    col = spec.index
    n_harmonic_columns = len([n for n in spec.names if n.startswith("visit_hour_")])
    counts = _count_features()
    messages = [d.name for d in spec.definitions if d.name.startswith("hours_since_send_msg_")]
    hours = [("hours_since_send", "send")] + [
        (f"hours_since_send_{ch}", f"send_{ch}") for ch in CHANNELS] + [
        (name, f"message_{m}") for m, name in enumerate(messages)]
    elapsed = [(f, c, NS_PER_DAY) for f, c in _DAYS_SINCE] + [(f, c, NS_PER_HOUR) for f, c in hours]
    layout = _Layout(
        count_cols=np.array([col(f) for f, _, _ in counts]),
        count_rows=np.array([plan.count_index[(c, w)] for _, c, w in counts]),
        elapsed_cols=np.array([col(f) for f, _, _ in elapsed]),
        last_rows=np.array([plan.last_index[c] for _, c, _ in elapsed]),
        elapsed_scale=np.array([[1.0 / unit] for _, _, unit in elapsed]),
        value_cols=np.array([col(f"purchase_value_{d}d") for d in MONETARY_DAYS]
                            + [col("purchase_value_total")]),
        orders_row=plan.count_index[("purchase", window(MONETARY_DAYS[-1]))],
        avg_order_col=col(f"avg_order_value_{MONETARY_DAYS[-1]}d"),
        response_rows=np.array([plan.count_index[(c, _ENGAGEMENT_DAYS_ROW)] for c in _RESPONSES]),
        open_rate_cols=np.array([col(f"open_rate_{ch}") for ch in CHANNELS]),
        click_rate_cols=np.array([col(f"click_rate_{ch}") for ch in CHANNELS]),
        part_rows=np.array([plan.count_index[(p, _PROFILE_ROW)] for p in _PARTS]),
        engagements_col=col(f"engagements_{ACTIVITY_PROFILE_DAYS}d"),
        share_cols=np.array([col(f"share_{p}") for p in (*DAY_PARTS, "weekend")]),
        stage_col=col("stage"),
        open_cart_col=col("open_cart"),
        cart_value_col=col("cart_value"),
        tenure_col=col("tenure_days"),
        consent_cols=np.array([col(live_consent_name(ch)) for ch in CHANNELS]),
        datetime_attributes=np.array(
            [i for i, a in enumerate(spec.attributes) if a.kind is AttributeKind.DATETIME],
            dtype=np.int64),
        visit_hour_cols=np.array(
            [i for i, n in enumerate(spec.names) if n.startswith("visit_hour_")]
            + [col("visit_peak_hour"), col("visit_peak_strength")]),
        visits_row=plan.count_index[("page_view", _PROFILE_ROW)],
        response_cols=np.array([col(n) for n in (
            "open_rate_all", "click_rate_all", "deliveries_total", "purchases_after_send_total",
            "purchases_after_send_rate", "organic_purchases_total", "support_after_send_total")]),
        response_count_rows=np.array([plan.count_index[(c, LIFETIME)] for c in (
            "send", "purchase_after_send", "purchase_organic", "support_after_send")]),
        replenish_cols=np.array([col("purchase_interval_days"), col("purchase_cycle_position")]),
        purchases_total_row=plan.count_index[("purchase", LIFETIME)],
        days_since_purchase_col=col("days_since_purchase"),
        last_purchase_row=plan.last_index["purchase"],
        engagement_share_cols=np.array([col(f"engagement_share_{ch}") for ch in CHANNELS]),
        engagement_rows=np.array([plan.count_index[(f"engage_{ch}", _ENGAGEMENT_DAYS_ROW)]
                                  for ch in CHANNELS]),
        view_share_cols=np.array([col(category_view_share_name(c)) for c in spec.categories],
                                 dtype=np.int64),
        view_rows=np.array([plan.count_index[(f"view_category_{i}", _CATEGORY_VIEW_ROW)]
                            for i in range(n_categories)], dtype=np.int64),
        purchase_share_cols=np.array(
            [col(category_purchase_share_name(c)) for c in spec.categories], dtype=np.int64),
        purchase_rows=np.array([plan.count_index[(f"purchase_category_{i}", LIFETIME)]
                                for i in range(n_categories)], dtype=np.int64),
    )
    if n_harmonic_columns != _N_HARMONIC_ROWS:
        raise RuntimeError("visit-hour harmonic features do not match features.signals")
    filled = {*layout.count_cols, *layout.elapsed_cols, *layout.value_cols,
              layout.avg_order_col, *layout.open_rate_cols, *layout.click_rate_cols,
              layout.engagements_col, *layout.share_cols, layout.stage_col,
              layout.open_cart_col, layout.cart_value_col, layout.tenure_col,
              *layout.consent_cols, *layout.visit_hour_cols, *layout.response_cols,
              *layout.replenish_cols, *layout.engagement_share_cols, *layout.view_share_cols,
              *layout.purchase_share_cols,
              *range(spec.n_base, len(spec.names))}
    if filled != set(range(len(spec.names))):
        missing = [spec.names[i] for i in sorted(set(range(len(spec.names))) - filled)]
        raise RuntimeError(f"no computation fills feature(s) {missing}")
    return layout


def _aligned(log: EventLog, customers: CustomerTable) -> CustomerTable:
    return customers if customers.is_aligned(log) else customers.aligned_to(log.customer_ids)


def compute_features(
    log: EventLog,
    customers: CustomerTable,
    spec: FeatureSpec,
    customer_codes: np.ndarray,
    as_of_ns: np.ndarray,
) -> np.ndarray:
    """The (n, len(spec.names)) float64 feature matrix of (customer code, as-of) queries.

    ``customer_codes`` index ``log.customer_ids``; ``customers`` holds their profiles (aligned
    to the log here if it is not already). Events at or after a query's as-of time never count.
    """
    customers = _aligned(log, customers)
    # Events without categories (serving's store keeps none) would scan all-zero category
    # families: leave them out, the shares are NaN either way.
    categorised = log.category is not None
    layout = _layout(spec, categorised)
    queries = Queries.resolve(log, customer_codes, as_of_ns)
    plan = feature_plan(len(spec.message_ids), len(spec.categories) if categorised else 0)
    scan = EventScan.run(log, queries, plan, customers, spec.message_ids, spec.categories)
    out = np.empty((len(queries), len(spec.names)), dtype=np.float64)
    for lo in range(0, len(queries), _ASSEMBLY_ROWS):
        rows = slice(lo, min(lo + _ASSEMBLY_ROWS, len(queries)))
        block = _assemble(layout, spec, scan, customers, rows)
        if queries.order is None:
            out[rows] = block.T
        else:
            out[queries.order[rows]] = block.T
    return out


def _assemble(
    layout: _Layout, spec: FeatureSpec, scan: EventScan, customers: CustomerTable, rows: slice
) -> np.ndarray:
    """The (features, queries) block of sorted queries ``rows``."""
    counts, as_of = scan.result.counts, scan.queries.as_of[rows]
    block = np.empty((len(spec.names), as_of.shape[0]), dtype=np.float64)
    block[layout.count_cols] = counts[layout.count_rows, rows]
    last = scan.result.last[layout.last_rows, rows]
    block[layout.elapsed_cols] = scan.elapsed_ns(last, as_of) * layout.elapsed_scale

    values = from_micros(scan.purchase_value[:, rows])
    block[layout.value_cols] = values
    orders = counts[layout.orders_row, rows]
    block[layout.avg_order_col] = values[-2] / np.where(orders > 0, orders, np.nan)

    delivered, opened, clicked = counts[layout.response_rows, rows].reshape(3, len(CHANNELS), -1)
    trials = delivered + RATE_PRIOR_WEIGHT
    block[layout.open_rate_cols] = (opened + OPEN_RATE_PRIOR * RATE_PRIOR_WEIGHT) / trials
    block[layout.click_rate_cols] = (clicked + CLICK_RATE_PRIOR * RATE_PRIOR_WEIGHT) / trials

    parts = counts[layout.part_rows, rows]
    total = parts[:-1].sum(axis=0)
    block[layout.engagements_col] = total
    block[layout.share_cols] = parts / np.where(total > 0, total, np.nan)

    state = journey_state(scan, customers, rows)
    block[layout.stage_col] = state.stage
    block[layout.open_cart_col] = state.open_cart
    block[layout.cart_value_col] = state.cart_value
    block[layout.tenure_col] = state.tenure_days
    block[layout.consent_cols] = state.consent

    _assemble_signals(layout, scan, rows, block, (delivered, opened, clicked))

    attributes = customers.attributes[scan.queries.codes[rows]].T
    if layout.datetime_attributes.size:
        as_of_days = as_of / NS_PER_DAY
        attributes[layout.datetime_attributes] = as_of_days - attributes[layout.datetime_attributes]
    block[spec.n_base:] = attributes
    return block


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=0)
    return counts / np.where(total > 0, total, np.nan)


def _assemble_signals(
    layout: _Layout, scan: EventScan, rows: slice, block: np.ndarray,
    responses: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Visit hours, response to contact, replenish rhythm and category shares into ``block``."""
    counts = scan.result.counts
    assert scan.visit_hours is not None and scan.first_purchase_ns is not None
    visits = counts[layout.visits_row, rows]
    means = scan.visit_hours[:, rows] / 1e6 / np.where(visits > 0, visits, np.nan)
    peak, strength = peak_of_density(means)
    block[layout.visit_hour_cols] = np.vstack([means, peak, strength])

    delivered, opened, clicked = (r.sum(axis=0) for r in responses)
    trials = delivered + RATE_PRIOR_WEIGHT
    sends, after, organic, support = counts[layout.response_count_rows, rows]
    block[layout.response_cols] = np.vstack([
        (opened + OPEN_RATE_PRIOR * RATE_PRIOR_WEIGHT) / trials,
        (clicked + CLICK_RATE_PRIOR * RATE_PRIOR_WEIGHT) / trials,
        sends, after, after / np.where(sends > 0, sends, np.nan), organic, support,
    ])

    purchases = counts[layout.purchases_total_row, rows]
    last = scan.event_ts(scan.result.last[layout.last_purchase_row, rows])
    first = scan.first_purchase_ns[rows]
    interval = np.where(purchases >= 2, (last - first) / NS_PER_DAY, np.nan) / np.maximum(
        purchases - 1, 1)
    interval = np.where(interval > 0, interval, np.nan)
    block[layout.replenish_cols] = np.vstack([
        interval, block[layout.days_since_purchase_col] / interval])

    block[layout.engagement_share_cols] = _shares(counts[layout.engagement_rows, rows])
    if layout.view_rows.size:
        block[layout.view_share_cols] = _shares(counts[layout.view_rows, rows])
        block[layout.purchase_share_cols] = _shares(counts[layout.purchase_rows, rows])
    else:
        block[layout.view_share_cols] = np.nan
        block[layout.purchase_share_cols] = np.nan


def hour_profile(
    log: EventLog,
    customers: CustomerTable,
    customer_codes: np.ndarray,
    as_of_ns: np.ndarray,
    days: int = ACTIVITY_PROFILE_DAYS,
) -> np.ndarray:
    """(n, 168) counts of engagement events per local hour of the week (Monday 00:00 = 0) in
    the ``days`` before each as-of time, in each customer's own timezone (DST-correct)."""
    customers = _aligned(log, customers)
    codes = np.asarray(customer_codes, dtype=np.int64)
    as_of = np.asarray(as_of_ns, dtype=np.int64)
    check_queries(log, codes, as_of)
    order = np.argsort(codes, kind="stable")
    groups = SortedGroups.build(log.customer, log.ts_ns, log.offsets)
    both = groups.positions(np.concatenate([codes[order], codes[order]]),
                            np.concatenate([as_of[order] - days * NS_PER_DAY, as_of[order]]))
    start, end = np.empty_like(codes), np.empty_like(codes)
    start[order], end[order] = both[: codes.shape[0]], both[codes.shape[0]:]
    how = np.full(log.n_events, -1, dtype=np.int16)  # -1: not an engagement event
    engaged = np.flatnonzero(IS_ENGAGEMENT[log.event_type])
    how[engaged] = local_hour_of_week(log, customers, engaged)
    out = np.zeros((codes.shape[0], HOURS_PER_WEEK), dtype=np.float64)
    lengths = end - start
    reach = np.cumsum(lengths)
    cuts = np.searchsorted(reach, np.arange(_PROFILE_CHUNK, int(reach[-1]) if reach.size else 0,
                                            _PROFILE_CHUNK))
    for lo, hi in zip([0, *cuts], [*cuts, codes.shape[0]], strict=True):
        out[lo:hi] = _profile_chunk(how, start[lo:hi], lengths[lo:hi])
    return out


def _profile_chunk(how: np.ndarray, start: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Histogram of ``how`` over each ``[start, start + length)`` without a per-query loop."""
    n = start.shape[0]
    total = int(lengths.sum())
    query = np.repeat(np.arange(n), lengths)
    first = np.cumsum(lengths) - lengths
    index = np.arange(total) - np.repeat(first - start, lengths)
    hours = how[index]
    keep = hours >= 0
    flat = np.bincount(query[keep] * HOURS_PER_WEEK + hours[keep].astype(np.int64),
                       minlength=n * HOURS_PER_WEEK)
    return flat.reshape(n, HOURS_PER_WEEK).astype(np.float64)


def live_consent(
    log: EventLog, customers: CustomerTable, customer_codes: np.ndarray, as_of_ns: np.ndarray
) -> np.ndarray:
    """(n, len(CHANNELS)) bool: profile consent and no unsubscribe on the channel before as-of."""
    return derive_journey_state(log, customers, customer_codes, as_of_ns).consent.T


def cart_state(
    log: EventLog, customers: CustomerTable, customer_codes: np.ndarray, as_of_ns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(open cart flag, open cart value) per query."""
    state: JourneyState = derive_journey_state(log, customers, customer_codes, as_of_ns)
    return state.open_cart, state.cart_value


def resolve_queries(
    log: EventLog, queries: pd.DataFrame, file: str = "queries"
) -> tuple[np.ndarray, np.ndarray]:
    """Customer codes and as-of ns of a ``[customer_id, as_of]`` frame, with clear errors."""
    missing = [c for c in (Col.CUSTOMER_ID, AS_OF) if c not in queries.columns]
    if missing:
        raise DataValidationError([Problem(file, c, f"a column '{c}'") for c in missing])
    codes = pd.Index(log.customer_ids).get_indexer(queries[Col.CUSTOMER_ID].astype(str))
    as_of = pd.to_datetime(queries[AS_OF], utc=True, errors="coerce", format="mixed")
    problems = []
    for bad, column, expected in (
        (codes < 0, Col.CUSTOMER_ID, "a customer_id in customers"),
        (as_of.isna().to_numpy(), AS_OF, "a timestamp such as 2024-05-01T09:30:00Z"),
    ):
        if bad.any():
            found = tuple(str(v) for v in queries[column].to_numpy()[bad][:5])
            problems.append(Problem(file, column, expected,
                                    tuple(int(i) + 1 for i in np.flatnonzero(bad)), found))
    if problems:
        raise DataValidationError(problems)
    return codes.astype(np.int64), ts_to_ns(as_of)


def build_feature_frame(
    events: pd.DataFrame,
    customers: pd.DataFrame,
    spec: FeatureSpec,
    queries: pd.DataFrame,
    message_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Features of each ``queries`` row (``customer_id``, ``as_of``) from validated frames;
    the result has ``spec.names`` as columns and the queries' index."""
    table = CustomerTable.from_frame(customers, spec)
    ids = spec.message_ids if message_ids is None else tuple(message_ids)
    log = EventLog.from_frame(events, ids, customer_ids=list(table.customer_ids))
    codes, as_of = resolve_queries(log, queries)
    matrix = compute_features(log, table, spec, codes, as_of)
    return pd.DataFrame(matrix, index=queries.index, columns=list(spec.names))


def snapshot_features(
    journeys: Journeys, as_of: Sequence[pd.Timestamp] = (), spec: FeatureSpec | None = None
) -> pd.DataFrame:
    """Features of every customer at each as-of time (default: just after the last event),
    with ``customer_id`` and ``as_of`` first. ``spec`` defaults to one learned from the
    journeys' customers and catalog."""
    if spec is None:
        spec = FeatureSpec.from_journeys(journeys.customers, journeys.catalog)
    times = list(as_of)
    if not times:
        latest = journeys.events[Col.TS].max() if len(journeys.events) else pd.Timestamp.now("UTC")
        times = [pd.Timestamp(latest) + pd.Timedelta(1, "ns")]
    ids = journeys.customers[Col.CUSTOMER_ID].astype(str).tolist()
    queries = pd.DataFrame({Col.CUSTOMER_ID: ids * len(times),
                            AS_OF: [t for t in times for _ in ids]})
    frame = build_feature_frame(journeys.events, journeys.customers, spec, queries)
    return pd.concat([queries, frame], axis=1)

