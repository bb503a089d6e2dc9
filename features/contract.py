"""The journey data contract: every table name, column name and closed vocabulary, defined once.

Everything else in nextbest (schemas, loaders, the simulator, features, models, serving) refers to
these names instead of spelling strings. The README documents the same tables; a test keeps the
two in agreement.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class EventType(StrEnum):
    """What a customer did or received. A closed vocabulary: anything else is rejected."""

    PAGE_VIEW = "page_view"
    PRODUCT_VIEW = "product_view"
    ADD_TO_CART = "add_to_cart"
    CHECKOUT = "checkout"
    PURCHASE = "purchase"
    MESSAGE_DELIVERED = "message_delivered"
    MESSAGE_OPEN = "message_open"
    MESSAGE_CLICK = "message_click"
    UNSUBSCRIBE = "unsubscribe"
    SUPPORT_CONTACT = "support_contact"


class Channel(StrEnum):
    """Where an event happened or a message goes. ``web`` messages are on-site placements."""

    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    IN_APP = "in_app"
    WEB = "web"


class Objective(StrEnum):
    """What a catalog message is for."""

    WELCOME = "welcome"
    BROWSE_ABANDON = "browse_abandon"
    CART_RECOVERY = "cart_recovery"
    CROSS_SELL = "cross_sell"
    REPLENISH = "replenish"
    LOYALTY = "loyalty"
    WIN_BACK = "win_back"
    RETENTION_OFFER = "retention_offer"


class Stage(StrEnum):
    """Journey stage of a customer at a time (derived from events, see features.stage)."""

    NEW = "new"
    BROWSING = "browsing"
    CARTED = "carted"
    CUSTOMER = "customer"
    LAPSING = "lapsing"
    CHURNED = "churned"


class Col:
    """Column names shared by the tables of the contract."""

    EVENT_ID: Final = "event_id"
    CUSTOMER_ID: Final = "customer_id"
    TS: Final = "ts"
    EVENT_TYPE: Final = "event_type"
    CHANNEL: Final = "channel"
    MESSAGE_ID: Final = "message_id"
    DECISION_ID: Final = "decision_id"
    VALUE: Final = "value"
    PROPERTIES: Final = "properties"

    TIMEZONE: Final = "timezone"
    SIGNUP_TS: Final = "signup_ts"

    OBJECTIVE: Final = "objective"
    CATEGORY: Final = "category"
    CHANNELS: Final = "channels"
    ELIGIBLE_STAGES: Final = "eligible_stages"
    REQUIRES_CART: Final = "requires_cart"
    COOLDOWN_HOURS: Final = "cooldown_hours"

    SEND_AT: Final = "send_at"
    PROPENSITY: Final = "propensity"
    POLICY: Final = "policy"
    CAMPAIGN: Final = "campaign"


def consent_column(channel: Channel | str) -> str:
    """Customers carry one boolean consent column per channel: ``consent_<channel>``."""
    return f"consent_{Channel(channel).value}"


def cost_column(channel: Channel | str) -> str:
    """The catalog carries one send-cost column per channel: ``cost_<channel>``."""
    return f"cost_{Channel(channel).value}"


CHANNELS: Final[tuple[Channel, ...]] = tuple(Channel)
EVENT_TYPES: Final[tuple[EventType, ...]] = tuple(EventType)
STAGES: Final[tuple[Stage, ...]] = tuple(Stage)
OBJECTIVES: Final[tuple[Objective, ...]] = tuple(Objective)

CONSENT_COLUMNS: Final[tuple[str, ...]] = tuple(consent_column(c) for c in CHANNELS)
COST_COLUMNS: Final[tuple[str, ...]] = tuple(cost_column(c) for c in CHANNELS)

#: Separator of list-valued catalog cells (``channels``, ``eligible_stages``), e.g. ``email|sms``.
LIST_SEPARATOR: Final = "|"
#: ``eligible_stages`` value meaning "every stage".
ALL_STAGES: Final = "*"

#: The action "send nothing": a decision row with empty message_id and channel.
NO_ACTION: Final = "no_action"

#: Events a message produces (they carry message_id and, when known, decision_id).
MESSAGE_EVENT_TYPES: Final = frozenset(
    {EventType.MESSAGE_DELIVERED, EventType.MESSAGE_OPEN, EventType.MESSAGE_CLICK}
)
#: Events that count as the customer being active (for churn and recency).
ACTIVITY_EVENT_TYPES: Final = frozenset(
    {
        EventType.PAGE_VIEW,
        EventType.PRODUCT_VIEW,
        EventType.ADD_TO_CART,
        EventType.CHECKOUT,
        EventType.PURCHASE,
        EventType.MESSAGE_OPEN,
        EventType.MESSAGE_CLICK,
    }
)
#: Events that count as engaging with a channel (for channel preference and send time).
ENGAGEMENT_EVENT_TYPES: Final = frozenset(
    {EventType.MESSAGE_OPEN, EventType.MESSAGE_CLICK, EventType.PAGE_VIEW, EventType.PRODUCT_VIEW}
)

#: Default attribution window of a decision: outcomes within this many hours of the decision.
DEFAULT_ATTRIBUTION_HOURS: Final = 168


class Table(StrEnum):
    """The four tables of the contract; file names on disk are ``<table>.parquet|.csv``."""

    EVENTS = "events"
    CUSTOMERS = "customers"
    CATALOG = "catalog"
    DECISIONS = "decisions"


#: Required columns of each table, in file order. Customers may add any extra attribute columns;
#: events may add free property columns (kept, not interpreted).
REQUIRED_COLUMNS: Final[dict[Table, tuple[str, ...]]] = {
    Table.EVENTS: (
        Col.EVENT_ID,
        Col.CUSTOMER_ID,
        Col.TS,
        Col.EVENT_TYPE,
        Col.CHANNEL,
        Col.MESSAGE_ID,
        Col.DECISION_ID,
        Col.VALUE,
    ),
    Table.CUSTOMERS: (Col.CUSTOMER_ID, Col.TIMEZONE, Col.SIGNUP_TS, *CONSENT_COLUMNS),
    Table.CATALOG: (
        Col.MESSAGE_ID,
        Col.OBJECTIVE,
        Col.CATEGORY,
        Col.CHANNELS,
        Col.VALUE,
        *COST_COLUMNS,
        Col.ELIGIBLE_STAGES,
        Col.REQUIRES_CART,
        Col.COOLDOWN_HOURS,
    ),
    Table.DECISIONS: (
        Col.DECISION_ID,
        Col.CUSTOMER_ID,
        Col.TS,
        Col.MESSAGE_ID,
        Col.CHANNEL,
        Col.SEND_AT,
        Col.PROPENSITY,
        Col.POLICY,
    ),
}

#: Optional columns the contract knows (with their meaning) beyond the required ones.
OPTIONAL_COLUMNS: Final[dict[Table, tuple[str, ...]]] = {
    Table.EVENTS: (Col.PROPERTIES,),
    Table.CUSTOMERS: (),
    Table.CATALOG: (),
    Table.DECISIONS: (Col.CAMPAIGN,),
}
