"""Model inputs of the customers of a request: point-in-time features, hour-of-week profile,
journey stage, open cart and live consent, as of the decision time.

The same ``features.pointintime`` functions that build the training sets run here, on the
customers' stored histories stacked into one ``EventLog`` (one slot per request, so a batch of
1,000 customers is one ``compute_features`` call). Stage, cart and live consent are read from
the feature row itself: live consent is the profile's consent and no unsubscribe before the
decision time, derived in one place (features) for training and serving alike. Numpy only.

A customer without a profile (cold start) is described as one who signed up at the decision
time, in UTC, with no attributes, consenting only to ``cold_start_channels``: the models then
answer with what they learned about customers of whom nothing is known yet.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from features.contract import CHANNELS, STAGES, Channel, Col, Stage, consent_column
from features.customers import CustomerTable
from features.definitions import FeatureSpec, live_consent_name
from features.eventlog import EventLog
from features.pointintime import compute_features, hour_profile
from serving.stores.base import CustomerProfile

logger = logging.getLogger(__name__)

#: Timezone of a customer without a profile.
COLD_START_TIMEZONE: Final = "UTC"
_NS_PER_US: Final = 1_000


@dataclass(frozen=True, slots=True)
class CustomerState:
    """What the store knows about one customer: profile (``None``: unknown) and history."""

    customer_id: str
    profile: CustomerProfile | None
    events: EventLog  # in the catalog's message codes (categories: any vocabulary)

    @property
    def cold_start(self) -> bool:
        return self.profile is None


@dataclass(frozen=True, slots=True)
class CustomerInputs:
    """Row ``i`` of every array describes state ``i`` as of its decision time."""

    features: np.ndarray  # (n, len(spec.names)) float64
    hour_profile: np.ndarray  # (n, 168) float64
    stages: tuple[Stage, ...]
    open_cart: np.ndarray  # (n,) bool
    consent: np.ndarray  # (n, len(CHANNELS)) bool, live consent
    timezones: tuple[str, ...]


def to_ns(moment: Any) -> int:
    """UTC nanoseconds of an aware datetime, exact to the microsecond."""
    seconds = int(moment.timestamp())
    return seconds * 1_000_000_000 + moment.microsecond * _NS_PER_US


class FeatureBuilder:
    """Builds ``CustomerInputs`` with one feature spec (the champion models')."""

    def __init__(self, spec: FeatureSpec, cold_start_channels: Sequence[Channel]) -> None:
        self.spec = spec
        self._stage_column = spec.index("stage")
        self._cart_column = spec.index("open_cart")
        self._consent_columns = np.array([spec.index(live_consent_name(c)) for c in CHANNELS])
        cold = set(cold_start_channels)
        self._cold_start_consents = {consent_column(c): c in cold for c in CHANNELS}
        self._category_position = {c: i for i, c in enumerate(spec.categories)}
        # Category vocabulary of the histories -> spec codes; the store's dictionary is shared
        # by every history of a store, so one entry is nearly always enough.
        self._category_remaps: dict[tuple[str, ...], np.ndarray] = {}

    def build(self, states: Sequence[CustomerState], now_ns: np.ndarray) -> CustomerInputs:
        """Inputs of every state as of ``now_ns[i]`` (only events strictly before it)."""
        categories = [self._spec_category_codes(s.events) for s in states]
        log = _stack_logs(states, self.spec.message_ids, categories, self.spec.categories)
        tables = [self._table(s, int(t)) for s, t in zip(states, now_ns.tolist(), strict=True)]
        customers = _stack_tables(tables, log.customer_ids)
        codes = np.arange(len(states), dtype=np.int64)
        as_of = np.asarray(now_ns, dtype=np.int64)
        features = compute_features(log, customers, self.spec, codes, as_of)
        profile = hour_profile(log, customers, codes, as_of)
        stages = tuple(STAGES[int(code)] for code in features[:, self._stage_column].tolist())
        return CustomerInputs(
            features=features,
            hour_profile=profile,
            stages=stages,
            open_cart=features[:, self._cart_column] > 0,
            consent=features[:, self._consent_columns] > 0,
            timezones=tuple(customers.timezones[i] for i in customers.timezone.tolist()),
        )

    def _spec_category_codes(self, log: EventLog) -> np.ndarray | None:
        """The events' categories as positions in ``spec.categories``; ``-1`` for none or one
        the spec does not know, which the batch path (``features.signals.category_keys``) does
        not count either. ``None`` when no event has a known category: the shares are NaN
        then, with or without codes, and ``compute_features`` skips the category scan."""
        if log.category is None or not self._category_position or log.n_events == 0:
            return None
        remap = self._category_remaps.get(log.category_ids)
        if remap is None:
            position = self._category_position
            remap = np.array([-1, *(position.get(c, -1) for c in log.category_ids)], dtype=np.int16)
            self._category_remaps = {log.category_ids: remap}
        codes = remap[log.category.astype(np.intp) + 1]
        return codes if bool((codes >= 0).any()) else None

    def _table(self, state: CustomerState, now_ns: int) -> CustomerTable:
        profile = state.profile
        if profile is None:
            fields: dict[str, Any] = {
                Col.TIMEZONE: COLD_START_TIMEZONE,
                Col.SIGNUP_TS: now_ns,
                **self._cold_start_consents,
            }
        else:
            fields = {
                **profile.attributes,
                Col.TIMEZONE: profile.timezone,
                Col.SIGNUP_TS: to_ns(profile.signup_ts),
                **{consent_column(c): bool(profile.consents.get(c, False)) for c in CHANNELS},
            }
        try:
            return CustomerTable.from_profile(state.customer_id, fields, self.spec)
        except ValueError as exc:
            # A stored attribute the models cannot read must not block the decision: it
            # counts as missing, as an absent attribute does.
            logger.warning("customer %s: %s; treated as missing", state.customer_id, exc)
            kept = {k: v for k, v in fields.items() if self._readable(k, v)}
            return CustomerTable.from_profile(state.customer_id, kept, self.spec)

    def _readable(self, column: str, value: object) -> bool:
        for attribute in self.spec.attributes:
            if attribute.column == column:
                try:
                    attribute.encode_value(value)
                except ValueError:
                    return False
        return True


def _stack_logs(
    states: Sequence[CustomerState],
    message_ids: tuple[str, ...],
    categories: Sequence[np.ndarray | None],
    category_ids: tuple[str, ...],
) -> EventLog:
    """One log with a slot per state (a customer asked twice in a batch gets two slots), with
    ``categories[i]`` (codes into ``category_ids``) as the categories of state ``i``."""
    if len(states) == 1:
        log = states[0].events
        if log.category is None and categories[0] is None:
            return log
        ids = category_ids if categories[0] is not None else ()
        return replace(log, category=categories[0], category_ids=ids)
    logs = [s.events for s in states]
    for log in logs:
        if log.message_ids != message_ids:
            raise ValueError("every history must use the feature spec's message codes")
    sizes = np.array([log.n_events for log in logs], dtype=np.int64)
    return EventLog(
        # Slot labels, ascending as EventLog requires; features never read the ids themselves.
        customer_ids=np.array([f"{i:07d}" for i in range(len(logs))], dtype=object),
        offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        customer=np.repeat(np.arange(len(logs), dtype=np.int32), sizes),
        ts_ns=np.concatenate([log.ts_ns for log in logs]),
        event_type=np.concatenate([log.event_type for log in logs]),
        channel=np.concatenate([log.channel for log in logs]),
        message=np.concatenate([log.message for log in logs]),
        value=np.concatenate([log.value for log in logs]),
        message_ids=message_ids,
        **_stacked_categories(logs, categories, category_ids),
    )


def _stacked_categories(
    logs: Sequence[EventLog],
    categories: Sequence[np.ndarray | None],
    category_ids: tuple[str, ...],
) -> dict[str, Any]:
    if all(codes is None for codes in categories):
        return {"category": None, "category_ids": ()}
    parts = [
        np.full(log.n_events, -1, dtype=np.int16) if codes is None else codes
        for log, codes in zip(logs, categories, strict=True)
    ]
    return {"category": np.concatenate(parts), "category_ids": category_ids}


def _stack_tables(tables: Sequence[CustomerTable], slot_ids: np.ndarray) -> CustomerTable:
    """The one-customer tables as one table aligned (by identity) to the stacked log."""
    if len(tables) == 1:
        table = tables[0]
        return CustomerTable(
            customer_ids=slot_ids,
            timezones=table.timezones,
            timezone=table.timezone,
            signup_ns=table.signup_ns,
            consent=table.consent,
            attributes=table.attributes,
        )
    names: dict[str, int] = {}
    zone_codes = [names.setdefault(t.timezones[0], len(names)) for t in tables]
    return CustomerTable(
        customer_ids=slot_ids,
        timezones=tuple(names),
        timezone=np.array(zone_codes, dtype=np.int16),
        signup_ns=np.concatenate([t.signup_ns for t in tables]),
        consent=np.concatenate([t.consent for t in tables]),
        attributes=np.concatenate([t.attributes for t in tables]),
    )
