"""What a feature is: the customer entity, every feature's definition, and the feature spec.

A Feast-like registry without Feast. ``FeatureSpec`` fixes the column order every model sees
(``spec.names``): the base features defined here (some per channel, some per catalog message)
followed by the customer attribute columns a user brings. The spec is learned from the data once
(``FeatureSpec.from_customers``), saved with each trained model (``to_json``) and reloaded by
serving (``from_json``), so training and serving encode the same columns the same way.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, Final, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from features.attributes import (
    DEFAULT_MAX_CATEGORIES,
    AttributeColumn,
    AttributeKind,
)
from features.contract import CHANNELS, REQUIRED_COLUMNS, Channel, Col, Table

logger = logging.getLogger(__name__)

#: Bump when a base feature is added, removed, renamed or its meaning changes: a saved spec of
#: another version no longer describes what ``compute_features`` produces.
FEATURES_VERSION: Final = 2

#: Column of a query frame holding the as-of time (``build_feature_frame``).
AS_OF: Final = "as_of"

FREQUENCY_DAYS: Final = (1, 7, 30, 90)
MONETARY_DAYS: Final = (30, 90)
ENGAGEMENT_DAYS: Final = 90
PRESSURE_DAYS: Final = (1, 7)
SUPPORT_DAYS: Final = 30
#: An add_to_cart keeps the cart open this long unless a checkout or purchase follows it.
CART_HOURS: Final = 72
#: Hour-of-week profile and day-part shares look back this far.
ACTIVITY_PROFILE_DAYS: Final = 90
#: Six four-hour day-parts in local time, from local midnight.
DAY_PARTS: Final = ("night", "early_morning", "morning", "afternoon", "evening", "late_evening")

#: Smoothed rates shrink toward these priors with the weight of this many deliveries.
OPEN_RATE_PRIOR: Final = 0.2
CLICK_RATE_PRIOR: Final = 0.03
RATE_PRIOR_WEIGHT: Final = 4.0

@dataclass(frozen=True)
class Entity:
    """What features describe and the column that identifies it."""

    name: str
    join_key: str
    description: str


CUSTOMER: Final = Entity("customer", Col.CUSTOMER_ID, "A person whose journey is orchestrated.")


class FeatureGroup(StrEnum):
    RECENCY = "recency"
    FREQUENCY = "frequency"
    MONETARY = "monetary"
    ENGAGEMENT = "engagement"
    CONTACT_PRESSURE = "contact_pressure"
    ACTIVITY_TIME = "activity_time"
    JOURNEY = "journey"
    CART = "cart"
    MESSAGE_HISTORY = "message_history"
    CONTACT_RESPONSE = "contact_response"
    REPLENISH = "replenish"
    CATEGORY = "category"
    PROFILE = "profile"
    ATTRIBUTE = "attribute"


class FeatureDtype(StrEnum):
    """What the float64 value of a feature means to a model."""

    FLOAT = "float64"
    COUNT = "int64"
    FLAG = "bool"
    CATEGORY = "category"


@dataclass(frozen=True)
class FeatureDefinition:
    name: str
    dtype: FeatureDtype
    description: str
    group: FeatureGroup


def slug(text: str) -> str:
    """A feature-name-safe form of a user's id (LightGBM rejects JSON punctuation in names)."""
    cleaned = re.sub(r"[^0-9A-Za-z_]+", "_", text).strip("_").lower()
    return cleaned or "x"


def _unique_slugs(texts: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for text in texts:
        base = slug(text)
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return out


def _channel_features() -> Iterator[FeatureDefinition]:
    f, c, g = FeatureDtype.FLOAT, FeatureDtype.COUNT, FeatureGroup.ENGAGEMENT
    for ch in CHANNELS:
        yield FeatureDefinition(
            f"deliveries_{ENGAGEMENT_DAYS}d_{ch}", c,
            f"Messages delivered on {ch} in the last {ENGAGEMENT_DAYS} days.", g)
        yield FeatureDefinition(f"opens_{ENGAGEMENT_DAYS}d_{ch}", c,
                                f"Message opens on {ch} in the last {ENGAGEMENT_DAYS} days.", g)
        yield FeatureDefinition(f"clicks_{ENGAGEMENT_DAYS}d_{ch}", c,
                                f"Message clicks on {ch} in the last {ENGAGEMENT_DAYS} days.", g)
        yield FeatureDefinition(
            f"open_rate_{ch}", f,
            f"Opens / deliveries on {ch} over {ENGAGEMENT_DAYS} days, shrunk toward "
            f"{OPEN_RATE_PRIOR} with the weight of {RATE_PRIOR_WEIGHT:g} deliveries.", g)
        yield FeatureDefinition(
            f"click_rate_{ch}", f,
            f"Clicks / deliveries on {ch} over {ENGAGEMENT_DAYS} days, shrunk toward "
            f"{CLICK_RATE_PRIOR} with the weight of {RATE_PRIOR_WEIGHT:g} deliveries.", g)
        yield FeatureDefinition(
            f"engagements_{ENGAGEMENT_DAYS}d_{ch}", c,
            f"Engagement events (open, click, page or product view) on {ch} in the last "
            f"{ENGAGEMENT_DAYS} days.", g)
        yield FeatureDefinition(
            f"engagement_share_{ch}", f,
            f"Share of the last {ENGAGEMENT_DAYS} days' engagement events that were on {ch}; "
            "NaN without any: where the customer comes back by itself.", g)
        yield FeatureDefinition(
            f"days_since_engagement_{ch}", f,
            f"Days since the last engagement event (open, click, page or product view) on {ch}.",
            g)


def base_definitions(
    message_ids: Sequence[str] = (), categories: Sequence[str] = ()
) -> tuple[FeatureDefinition, ...]:
    """Every feature computed from events and the profile, in matrix column order."""
    f, c, flag = FeatureDtype.FLOAT, FeatureDtype.COUNT, FeatureDtype.FLAG
    g = FeatureGroup
    out: list[FeatureDefinition] = [
        FeatureDefinition("days_since_activity", f,
                          "Days since the last activity event (visit, cart, purchase, open, "
                          "click); NaN if none.", g.RECENCY),
        FeatureDefinition("days_since_purchase", f, "Days since the last purchase.", g.RECENCY),
        FeatureDefinition("days_since_cart", f, "Days since the last add_to_cart.", g.RECENCY),
        FeatureDefinition("days_since_open", f, "Days since the last message open.", g.RECENCY),
        FeatureDefinition("days_since_click", f, "Days since the last message click.", g.RECENCY),
    ]
    for event, label in (("page_views", "page views"), ("product_views", "product views"),
                         ("carts", "add_to_cart events"), ("purchases", "purchases")):
        out += [FeatureDefinition(f"{event}_{d}d", c, f"Number of {label} in the last {d} day(s).",
                                  g.FREQUENCY) for d in FREQUENCY_DAYS]
    out.append(FeatureDefinition("purchases_total", c, "Number of purchases ever.", g.FREQUENCY))
    out += [FeatureDefinition(f"purchase_value_{d}d", f, f"Purchase value in the last {d} days.",
                              g.MONETARY) for d in MONETARY_DAYS]
    out += [
        FeatureDefinition("purchase_value_total", f, "Purchase value ever.", g.MONETARY),
        FeatureDefinition(f"avg_order_value_{MONETARY_DAYS[-1]}d", f,
                          f"Mean purchase value over {MONETARY_DAYS[-1]} days; NaN without "
                          "purchases.", g.MONETARY),
    ]
    out += list(_channel_features())
    out += [FeatureDefinition(f"sends_{d}d", c,
                              f"Messages delivered on any channel in the last {d} day(s).",
                              g.CONTACT_PRESSURE) for d in PRESSURE_DAYS]
    out += [FeatureDefinition(f"sends_{d}d_{ch}", c,
                              f"Messages delivered on {ch} in the last {d} day(s).",
                              g.CONTACT_PRESSURE) for ch in CHANNELS for d in PRESSURE_DAYS]
    out.append(FeatureDefinition(
        f"engagements_{ACTIVITY_PROFILE_DAYS}d", c,
        f"Engagement events (open, click, page or product view) in the last "
        f"{ACTIVITY_PROFILE_DAYS} days.", g.ACTIVITY_TIME))
    out += [FeatureDefinition(
        f"share_{part}", f,
        f"Share of the last {ACTIVITY_PROFILE_DAYS} days' engagement events at "
        f"{4 * i:02d}:00-{4 * i + 4:02d}:00 local time; NaN without any.", g.ACTIVITY_TIME)
        for i, part in enumerate(DAY_PARTS)]
    out += [
        FeatureDefinition("share_weekend", f,
                          "Share of those engagement events on a local Saturday or Sunday.",
                          g.ACTIVITY_TIME),
        FeatureDefinition("stage", FeatureDtype.CATEGORY,
                          "Journey stage: index in features.contract.STAGES (rule in "
                          "docs/features.md).", g.JOURNEY),
        FeatureDefinition("open_cart", flag,
                          f"1 if an add_to_cart in the last {CART_HOURS} h was not followed by a "
                          "checkout or purchase.", g.CART),
        FeatureDefinition("cart_value", f,
                          "Value of the add_to_cart events of the open cart (0 if none).", g.CART),
        FeatureDefinition("hours_since_send", f,
                          "Hours since the last message delivered on any channel.",
                          g.MESSAGE_HISTORY),
    ]
    out += [FeatureDefinition(f"hours_since_send_{ch}", f,
                              f"Hours since the last message delivered on {ch}.",
                              g.MESSAGE_HISTORY) for ch in CHANNELS]
    out += [FeatureDefinition(f"hours_since_send_msg_{name}", f,
                              f"Hours since message {mid!r} was last delivered (any channel).",
                              g.MESSAGE_HISTORY)
            for mid, name in zip(message_ids, _unique_slugs(message_ids), strict=True)]
    out += [
        FeatureDefinition("tenure_days", f, "Days since signup.", g.PROFILE),
        FeatureDefinition(f"support_contacts_{SUPPORT_DAYS}d", c,
                          f"Support contacts in the last {SUPPORT_DAYS} days.", g.PROFILE),
        FeatureDefinition("unsubscribes_total", c, "Unsubscribe events ever (any channel).",
                          g.PROFILE),
    ]
    out += [FeatureDefinition(f"consent_live_{ch}", flag,
                              f"1 if the profile consents to {ch} and there was no unsubscribe "
                              f"on {ch} before the as-of time.", g.PROFILE) for ch in CHANNELS]
    # imported here: those definitions build on this module's types and constants
    from features.signal_definitions import signal_definitions

    out += signal_definitions(categories)
    return tuple(out)


def live_consent_name(channel: Channel | str) -> str:
    return f"consent_live_{Channel(channel).value}"


class _AttributeDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str
    kind: Literal["numeric", "categorical", "datetime"]
    vocabulary: list[str] = []


class _SpecDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    message_ids: list[str]
    message_categories: list[str] = []
    attributes: list[_AttributeDoc]
    names: list[str]


@dataclass(frozen=True)
class FeatureSpec:
    """The features a model uses, in order: base features, then customer attributes.

    ``message_categories`` is the catalog's category of each message (parallel to
    ``message_ids``); its distinct values are the product categories that get share features.
    """

    message_ids: tuple[str, ...] = ()
    attributes: tuple[AttributeColumn, ...] = field(default=())
    message_categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.message_categories and len(self.message_categories) != len(self.message_ids):
            raise ValueError(
                f"message_categories has {len(self.message_categories)} entries for "
                f"{len(self.message_ids)} message_ids"
            )

    @cached_property
    def categories(self) -> tuple[str, ...]:
        """Distinct product categories of the catalog's messages, in catalog order."""
        return tuple(dict.fromkeys(c for c in self.message_categories if c))

    @cached_property
    def definitions(self) -> tuple[FeatureDefinition, ...]:
        attribute_names = _unique_slugs([a.column for a in self.attributes])
        categorical = AttributeKind.CATEGORICAL
        attrs = tuple(
            FeatureDefinition(
                f"attr_{name}",
                FeatureDtype.CATEGORY if a.kind is categorical else FeatureDtype.FLOAT,
                f"Customer attribute {a.column!r} ({a.kind.value}"
                + (f", {len(a.vocabulary)} values" if a.vocabulary else "") + ").",
                FeatureGroup.ATTRIBUTE,
            )
            for a, name in zip(self.attributes, attribute_names, strict=True)
        )
        return base_definitions(self.message_ids, self.categories) + attrs

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.definitions)

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def index(self, name: str) -> int:
        """Column of a feature in the matrix; KeyError naming the feature if it is not there."""
        try:
            return self._positions[name]
        except KeyError:
            raise KeyError(f"no feature {name!r} in this spec") from None

    @property
    def categorical_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.definitions if d.dtype is FeatureDtype.CATEGORY)

    @property
    def n_base(self) -> int:
        return len(self.names) - len(self.attributes)

    @classmethod
    def from_customers(
        cls,
        customers: pd.DataFrame,
        message_ids: Sequence[str] = (),
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        message_categories: Sequence[str] = (),
    ) -> FeatureSpec:
        """Learn the attribute encodings from a validated customers frame.

        Every column beyond the contract's required ones becomes a feature; ``message_ids`` (the
        catalog's, in order) adds one message-history feature per message, and
        ``message_categories`` (the catalog's ``category`` of each) the view and purchase
        shares of each distinct category.
        """
        required = set(REQUIRED_COLUMNS[Table.CUSTOMERS])
        attributes = []
        for column in customers.columns:
            if column in required:
                continue
            attribute = AttributeColumn.infer(str(column), customers[column], max_categories)
            if attribute is not None:
                attributes.append(attribute)
        logger.info("feature spec: %d attribute column(s) from customers: %s", len(attributes),
                    ", ".join(f"{a.column} ({a.kind.value})" for a in attributes) or "none")
        return cls(tuple(str(m) for m in message_ids), tuple(attributes),
                   tuple("" if pd.isna(c) else str(c) for c in message_categories))

    @classmethod
    def from_journeys(
        cls, customers: pd.DataFrame, catalog: pd.DataFrame,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
    ) -> FeatureSpec:
        """The spec of validated customers and catalog frames (messages and their categories)."""
        categories = (catalog[Col.CATEGORY].tolist() if Col.CATEGORY in catalog.columns
                      else [])
        return cls.from_customers(customers, catalog[Col.MESSAGE_ID].astype(str).tolist(),
                                  max_categories, categories)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FEATURES_VERSION,
            "message_ids": list(self.message_ids),
            "message_categories": list(self.message_categories),
            "attributes": [
                {"column": a.column, "kind": a.kind.value, "vocabulary": list(a.vocabulary)}
                for a in self.attributes
            ],
            "names": list(self.names),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Rebuild a saved spec; ValueError if it is malformed or from another feature version."""
        doc = _SpecDoc.model_validate(dict(data))
        if doc.version != FEATURES_VERSION:
            raise ValueError(
                f"feature spec version {doc.version} was saved by another nextbest feature set "
                f"(this one is version {FEATURES_VERSION}): retrain the model"
            )
        spec = cls(
            tuple(doc.message_ids),
            tuple(AttributeColumn(a.column, AttributeKind(a.kind), tuple(a.vocabulary))
                  for a in doc.attributes),
            tuple(doc.message_categories),
        )
        if list(spec.names) != doc.names:
            raise ValueError("feature spec names do not match what this version computes: "
                             "retrain the model")
        return spec

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls.from_dict(json.loads(text))
