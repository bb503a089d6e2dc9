"""Customer attribute columns a user brings, and how each becomes a feature.

Numbers (and true/false) are used as they are, ISO dates become "days before the as-of time",
anything else is a category coded by a vocabulary learned from the data. The encoding is part of
the saved ``FeatureSpec``, so serving encodes a profile exactly as training encoded the table.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Final

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

#: Categorical attributes keep at most this many (most frequent) values; rarer ones code as -1.
DEFAULT_MAX_CATEGORIES: Final = 100
#: Code of a categorical attribute value the spec's vocabulary does not know.
UNSEEN_CATEGORY: Final = -1.0

_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}([ T].*)?$")
_TRUE_WORDS: Final = frozenset({"true", "yes", "y", "t"})
_FALSE_WORDS: Final = frozenset({"false", "no", "n", "f"})


class AttributeKind(StrEnum):
    """How a customer attribute column becomes a feature."""

    NUMERIC = "numeric"  # the number itself (booleans as 0/1)
    CATEGORICAL = "categorical"  # index in the learned vocabulary; unseen -1; missing NaN
    DATETIME = "datetime"  # days from the value to the as-of time


def _to_number(values: pd.Series) -> pd.Series:
    """Numbers, with true/false words as 1/0; anything else NaN."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    text = values.astype("object").where(values.notna(), None)
    lowered = text.map(lambda v: v.strip().lower() if isinstance(v, str) else v)
    words = lowered.map(lambda v: 1.0 if v in _TRUE_WORDS else 0.0 if v in _FALSE_WORDS else v)
    return pd.to_numeric(words, errors="coerce").astype("float64")


@dataclass(frozen=True)
class AttributeColumn:
    """One extra column of the customers table and how it is encoded."""

    column: str
    kind: AttributeKind
    vocabulary: tuple[str, ...] = ()

    @cached_property
    def _codes(self) -> dict[str, int]:
        return {value: i for i, value in enumerate(self.vocabulary)}

    def encode(self, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Encoded float64 values, and a mask of present values that could not be encoded."""
        present = values.notna().to_numpy()
        if self.kind is AttributeKind.NUMERIC:
            encoded = _to_number(values).to_numpy(dtype=np.float64)
        elif self.kind is AttributeKind.DATETIME:
            parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
            days = parsed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[s]")
            encoded = days.astype("int64").astype(np.float64) / 86_400.0
            encoded[np.isnat(days)] = np.nan
        else:
            codes = values.map(lambda v: None if pd.isna(v) else self._codes.get(str(v), -1))
            encoded = pd.to_numeric(codes, errors="coerce").to_numpy(dtype=np.float64)
        return encoded, present & np.isnan(encoded)

    def encode_value(self, value: object) -> float:
        """Encode one profile value (serving); raises ValueError naming what was expected."""
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return float("nan")
        # Plain scalars skip pandas: this runs per request in serving.
        if self.kind is AttributeKind.CATEGORICAL:
            return float(self._codes.get(str(value), -1))
        if self.kind is AttributeKind.NUMERIC and isinstance(value, int | float | np.number):
            return float(value)
        encoded, bad = self.encode(pd.Series([value], dtype="object"))
        if bad[0]:
            raise ValueError(
                f"attribute {self.column!r}: expected {self.expected} (found {value!r})"
            )
        return float(encoded[0])

    @property
    def expected(self) -> str:
        return {
            AttributeKind.NUMERIC: "a number or true/false",
            AttributeKind.DATETIME: "an ISO-8601 date or timestamp",
            AttributeKind.CATEGORICAL: "a category value",
        }[self.kind]

    @classmethod
    def infer(cls, column: str, values: pd.Series, max_categories: int) -> AttributeColumn | None:
        """The encoding a column's values call for; None when the column is entirely empty."""
        present = values.dropna()
        if present.empty:
            logger.warning("customer attribute %r is empty everywhere: not used", column)
            return None
        if pd.api.types.is_datetime64_any_dtype(values):
            return cls(column, AttributeKind.DATETIME)
        if _to_number(present).notna().all():
            return cls(column, AttributeKind.NUMERIC)
        text = present.astype(str)
        if text.str.match(_ISO_DATE).all():
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
            if parsed.notna().all():
                return cls(column, AttributeKind.DATETIME)
        counts = text.value_counts(sort=False)
        if len(counts) > max_categories:
            logger.warning(
                "customer attribute %r has %d distinct values: keeping the %d most frequent, "
                "the others encode as unseen (%d)",
                column, len(counts), max_categories, int(UNSEEN_CATEGORY),
            )
            # Ties broken by value so the same data always gives the same vocabulary.
            ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
            return cls(column, AttributeKind.CATEGORICAL,
                       tuple(sorted(str(value) for value, _ in ranked[:max_categories])))
        return cls(column, AttributeKind.CATEGORICAL, tuple(sorted(str(v) for v in counts.index)))
