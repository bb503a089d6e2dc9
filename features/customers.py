"""Customer profiles as arrays, aligned with an ``EventLog``'s customer codes.

Training builds one table from the validated customers frame; serving builds a one-row table
from a profile dict. Attribute columns are encoded with the ``FeatureSpec`` (so unseen
categories and missing values are handled once, the same way everywhere).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from features.contract import CHANNELS, CONSENT_COLUMNS, REQUIRED_COLUMNS, Col, Table
from features.definitions import FeatureSpec
from features.eventlog import EventLog, ts_to_ns
from features.io import DataValidationError, Problem

logger = logging.getLogger(__name__)

_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def _as_bool(field: str, value: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    raise ValueError(f"profile field {field!r}: expected true or false (found {value!r})")


def _as_ns(field: str, value: object) -> int:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"profile field {field!r}: expected a timestamp such as 2024-05-01T09:30:00Z "
            f"(found {value!r})"
        ) from exc
    if pd.isna(stamp):
        raise ValueError(f"profile field {field!r}: expected a timestamp (found {value!r})")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value)


def _check_timezone(field: str, value: object) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"profile field {field!r}: expected an IANA timezone such as Europe/Paris "
            f"(found {value!r})"
        ) from exc
    return str(value)


@dataclass(frozen=True)
class CustomerTable:
    """Profiles in customer-code order (ids ascending, like ``EventLog``)."""

    customer_ids: np.ndarray  # (n,) object, ascending
    timezones: tuple[str, ...]  # distinct IANA names
    timezone: np.ndarray  # (n,) int16 index into timezones
    signup_ns: np.ndarray  # (n,) int64
    consent: np.ndarray  # (n, len(CHANNELS)) bool, the profile's consent per channel
    attributes: np.ndarray  # (n, len(spec.attributes)) float64, encoded by the spec

    def __len__(self) -> int:
        return int(self.customer_ids.shape[0])

    @classmethod
    def from_frame(
        cls, customers: pd.DataFrame, spec: FeatureSpec, file: str = "customers"
    ) -> CustomerTable:
        """From a validated customers frame (``features.io.load_table``)."""
        missing = [c for c in REQUIRED_COLUMNS[Table.CUSTOMERS] if c not in customers.columns]
        if missing:
            raise DataValidationError(
                [Problem(file, c, f"a column '{c}' (required in customers)") for c in missing]
            )
        ids = customers[Col.CUSTOMER_ID].astype(str).to_numpy(dtype=object)
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        repeated = np.flatnonzero(ids[1:] == ids[:-1])
        if repeated.size:
            rows = tuple(int(i) + 1 for i in np.sort(order[repeated + 1]))
            raise DataValidationError(
                [Problem(file, Col.CUSTOMER_ID, "a unique value (it repeats)", rows)]
            )
        frame = customers.iloc[order].reset_index(drop=True)
        tz_codes, tz_names = pd.factorize(frame[Col.TIMEZONE].astype(str))
        for name in tz_names:
            _check_timezone(Col.TIMEZONE, name)
        attributes = np.full((len(frame), len(spec.attributes)), np.nan)
        problems = []
        for j, attribute in enumerate(spec.attributes):
            if attribute.column not in frame.columns:
                logger.warning("customers have no column %r: the feature is NaN (missing)",
                               attribute.column)
                continue
            attributes[:, j], bad = attribute.encode(frame[attribute.column])
            if bad.any():
                rows = tuple(sorted(int(order[i]) + 1 for i in np.flatnonzero(bad)))
                problems.append(Problem(file, attribute.column, attribute.expected, rows))
        if problems:
            raise DataValidationError(problems)
        return cls(
            customer_ids=ids,
            timezones=tuple(str(t) for t in tz_names),
            timezone=tz_codes.astype(np.int16),
            signup_ns=ts_to_ns(frame[Col.SIGNUP_TS]),
            consent=frame[list(CONSENT_COLUMNS)].to_numpy(dtype=bool),
            attributes=attributes,
        )

    @classmethod
    def from_profile(
        cls, customer_id: str, profile: Mapping[str, object], spec: FeatureSpec
    ) -> CustomerTable:
        """One customer (serving). ``profile`` has ``timezone``, ``signup_ts`` (datetime, ISO
        string or UTC ns), ``consent_<channel>`` booleans and any attribute columns; absent
        attributes are missing (NaN), absent consents are False."""
        if Col.TIMEZONE not in profile or Col.SIGNUP_TS not in profile:
            absent = [f for f in (Col.TIMEZONE, Col.SIGNUP_TS) if f not in profile]
            raise ValueError(f"profile of {customer_id!r}: expected field(s) {', '.join(absent)}")
        signup = profile[Col.SIGNUP_TS]
        signup_ns = signup if type(signup) is int else _as_ns(Col.SIGNUP_TS, signup)
        consent = [_as_bool(c, profile[c]) if c in profile else False for c in CONSENT_COLUMNS]
        values = [a.encode_value(profile.get(a.column)) for a in spec.attributes]
        return cls(
            customer_ids=np.array([customer_id], dtype=object),
            timezones=(_check_timezone(Col.TIMEZONE, profile[Col.TIMEZONE]),),
            timezone=np.zeros(1, dtype=np.int16),
            signup_ns=np.array([signup_ns], dtype=np.int64),
            consent=np.array([consent], dtype=bool).reshape(1, len(CHANNELS)),
            attributes=np.array([values], dtype=np.float64).reshape(1, len(spec.attributes)),
        )

    def select(self, rows: np.ndarray) -> CustomerTable:
        return CustomerTable(
            customer_ids=self.customer_ids[rows],
            timezones=self.timezones,
            timezone=self.timezone[rows],
            signup_ns=self.signup_ns[rows],
            consent=self.consent[rows],
            attributes=self.attributes[rows],
        )

    def aligned_to(self, customer_ids: Sequence[str] | np.ndarray) -> CustomerTable:
        """The rows of ``customer_ids`` in that order; ValueError naming any without a profile."""
        ids = np.asarray(customer_ids, dtype=object)
        if ids.shape == self.customer_ids.shape and np.array_equal(ids, self.customer_ids):
            return self
        rows = pd.Index(self.customer_ids).get_indexer(ids)
        if (rows < 0).any():
            unknown = ", ".join(repr(i) for i in ids[rows < 0][:5])
            raise ValueError(f"no customer profile for customer_id {unknown}")
        return self.select(rows)

    def is_aligned(self, log: EventLog) -> bool:
        if self.customer_ids is log.customer_ids:
            return True
        if self.customer_ids.shape != log.customer_ids.shape:
            return False
        if self.customer_ids.shape[0] == 1:
            return bool(self.customer_ids[0] == log.customer_ids[0])
        return bool(np.array_equal(self.customer_ids, log.customer_ids))

