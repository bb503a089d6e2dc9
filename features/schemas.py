"""pandera schemas of the four contract tables, built from ``features.contract``.

Schemas check *parsed* frames: timestamps already converted to UTC (see ``features.io``), list
cells still as ``a|b`` strings. Cross-table rules (unknown customer, unknown message) live in
``features.io`` because a single-frame schema cannot see the other tables.
"""

from __future__ import annotations

from typing import Final
from zoneinfo import available_timezones

import pandas as pd
import pandera.pandas as pa

from features.contract import (
    ALL_STAGES,
    CHANNELS,
    CONSENT_COLUMNS,
    COST_COLUMNS,
    EVENT_TYPES,
    LIST_SEPARATOR,
    OBJECTIVES,
    STAGES,
    Col,
    Table,
)

#: Every timestamp in nextbest is timezone-aware UTC at nanosecond resolution.
TS_DTYPE: Final = "datetime64[ns, UTC]"

_TIMEZONES = frozenset(available_timezones())
_CHANNEL_VALUES = frozenset(c.value for c in CHANNELS)
_STAGE_VALUES = frozenset(s.value for s in STAGES)


def _list_of(allowed: frozenset[str], allow_all: bool = False) -> pa.Check:
    """A check that a ``a|b`` cell names only allowed values (and at least one)."""

    def check(cell: object) -> bool:
        if not isinstance(cell, str) or not cell:
            return False
        if allow_all and cell == ALL_STAGES:
            return True
        return all(part in allowed for part in cell.split(LIST_SEPARATOR))

    expected = "|".join(sorted(allowed)) + (f" or {ALL_STAGES}" if allow_all else "")
    return pa.Check(check, element_wise=True, error=f"a '|'-separated list of {expected}")


def _is_text(series: pd.Series) -> bool:
    values = series.dropna()
    return values.empty or bool(pd.api.types.is_string_dtype(values))


#: Text columns accept any string dtype (object, str, arrow strings): pandas versions differ on
#: which one a reader returns, and an empty column has no inferable dtype at all.
_TEXT = pa.Check(_is_text, error="text")


def _text(*checks: pa.Check, nullable: bool = False, unique: bool = False) -> pa.Column:
    return pa.Column(None, [_TEXT, *checks], nullable=nullable, unique=unique)


def _ts(nullable: bool = False) -> pa.Column:
    return pa.Column(TS_DTYPE, nullable=nullable)


def _id(unique: bool = False) -> pa.Column:
    return _text(pa.Check.str_length(min_value=1, error="a non-empty id"), unique=unique)


def events_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            Col.EVENT_ID: _id(unique=True),
            Col.CUSTOMER_ID: _id(),
            Col.TS: _ts(),
            Col.EVENT_TYPE: _text(
                pa.Check.isin([e.value for e in EVENT_TYPES], error="a known event_type")
            ),
            Col.CHANNEL: _text(
                pa.Check.isin(sorted(_CHANNEL_VALUES), error="a known channel"),
                nullable=True,
            ),
            Col.MESSAGE_ID: _text(nullable=True),
            Col.DECISION_ID: _text(nullable=True),
            Col.VALUE: pa.Column(float, pa.Check.ge(0, error="a value >= 0"), nullable=False),
        },
        strict=False,
        name=Table.EVENTS.value,
    )


def customers_schema() -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {
        Col.CUSTOMER_ID: _id(unique=True),
        Col.TIMEZONE: _text(
            pa.Check.isin(sorted(_TIMEZONES), error="an IANA timezone such as Europe/Paris")
        ),
        Col.SIGNUP_TS: _ts(),
    }
    columns.update({c: pa.Column(bool) for c in CONSENT_COLUMNS})
    return pa.DataFrameSchema(columns, strict=False, name=Table.CUSTOMERS.value)


def catalog_schema() -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {
        Col.MESSAGE_ID: _id(unique=True),
        Col.OBJECTIVE: _text(
            pa.Check.isin([o.value for o in OBJECTIVES], error="a known objective")
        ),
        Col.CATEGORY: _text(),
        Col.CHANNELS: _text(_list_of(_CHANNEL_VALUES)),
        Col.VALUE: pa.Column(float, pa.Check.ge(0, error="a value >= 0")),
        Col.ELIGIBLE_STAGES: _text(_list_of(_STAGE_VALUES, allow_all=True)),
        Col.REQUIRES_CART: pa.Column(bool),
        Col.COOLDOWN_HOURS: pa.Column(int, pa.Check.ge(0, error="hours >= 0")),
    }
    columns.update({c: pa.Column(float, pa.Check.ge(0, error="a cost >= 0")) for c in COST_COLUMNS})
    return pa.DataFrameSchema(columns, strict=False, name=Table.CATALOG.value)


def decisions_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            Col.DECISION_ID: _id(unique=True),
            Col.CUSTOMER_ID: _id(),
            Col.TS: _ts(),
            Col.MESSAGE_ID: _text(nullable=True),
            Col.CHANNEL: _text(
                pa.Check.isin(sorted(_CHANNEL_VALUES), error="a known channel"),
                nullable=True,
            ),
            Col.SEND_AT: _ts(nullable=True),
            Col.PROPENSITY: pa.Column(
                float,
                [
                    pa.Check.gt(0, error="a propensity > 0"),
                    pa.Check.le(1, error="a propensity <= 1"),
                ],
            ),
            Col.POLICY: _text(),
        },
        strict=False,
        name=Table.DECISIONS.value,
    )


SCHEMAS = {
    Table.EVENTS: events_schema,
    Table.CUSTOMERS: customers_schema,
    Table.CATALOG: catalog_schema,
    Table.DECISIONS: decisions_schema,
}


def schema_for(table: Table) -> pa.DataFrameSchema:
    return SCHEMAS[table]()


def to_utc(values: pd.Series) -> pd.Series:
    """Parse timestamps to tz-aware UTC ns; naive values are taken as UTC. Raises ValueError."""
    parsed = pd.to_datetime(values, utc=True, errors="raise", format="mixed")
    return parsed.astype(TS_DTYPE)
