"""What the decision policy needs from each trained model: small numpy-in, numpy-out protocols.

Trained estimators (``models.<task>``) satisfy these; serving scores them directly on numpy
arrays built from one customer's features (no pandas on the request path). ``features`` is
always a 2-D float64 array whose columns are the feature spec's ``names`` in order
(``features.definitions``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ConversionScorer(Protocol):
    """P(conversion within the attribution window | customer features, action).

    ``message``/``channel`` are codes (catalog order / ``CHANNELS`` order) and ``local_hour`` the
    send hour in the customer's timezone (0-23); ``-1`` in all three means ``no_action``. Rows of
    ``features`` align with the action arrays (callers tile one customer's row).
    """

    def predict_conversion(
        self,
        features: np.ndarray,
        message: np.ndarray,
        channel: np.ndarray,
        local_hour: np.ndarray,
    ) -> np.ndarray: ...


@runtime_checkable
class ChurnScorer(Protocol):
    """P(no activity in the next W days) per row of ``features``."""

    def predict_churn(self, features: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class ChannelScorer(Protocol):
    """Per row, a probability for each channel (``CHANNELS`` order) that the customer engages
    there; a row is ``NaN`` throughout when history is too thin to say ("not enough data")."""

    def predict_channels(self, features: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class SendTimeScorer(Protocol):
    """Per row, engagement probability for each of the 168 hours of the week (Monday 00:00
    local = 0) in the customer's own timezone; sparse customers get a population fallback."""

    def predict_hours(self, features: np.ndarray, hour_profile: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class SelectiveSendTimeScorer(SendTimeScorer, Protocol):
    """A send-time scorer that can score only some hours of the week: ``wanted`` is (rows, 168)
    bool; the result is (rows, 168), equal to ``predict_hours`` where ``wanted`` is True (other
    entries are unspecified, e.g. NaN). The decision engine uses it, when a scorer has it, to
    score only the hours its send slots can fall in."""

    def predict_hours_at(
        self, features: np.ndarray, hour_profile: np.ndarray, wanted: np.ndarray
    ) -> np.ndarray: ...
