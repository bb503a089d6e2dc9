"""Action-context features: the customer described *relative to the action* being scored.

The action-conditional conversion model (``models.conversion``) sees the customer's features
and the action codes side by side. Whether an e-mail at 19:00 suits this customer depends on
the customer's e-mail open rate and evening activity — one column among dozens, picked by the
action. A tree ensemble can only learn that through deep splits on the action code followed
by the matching column, and with uplift a small fraction of the response it rarely does
(measured in docs/evaluation.md). Handing the model the matching column directly — "open rate
*on the action's channel*", "share of activity *in the action's hour*" — turns each interaction
into a single split.

:class:`ActionContextConversionModel` is the conversion model with these columns inserted
before the action columns, computed the same way in ``fit`` and in ``predict_conversion`` from
the customer features (by name) and the action codes, so training and serving cannot disagree.
All context columns are NaN for ``no_action``. The estimator's ``feature_names_`` stay its
inputs (customer features and action columns), so the pipeline, the promotion gate and the
pyfunc wrapper treat it exactly like :class:`ConversionModel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from features.contract import CHANNELS
from features.definitions import (
    DAY_PARTS,
    FeatureSpec,
)
from features.signal_definitions import (
    HOUR_HARMONICS,
    category_purchase_share_name,
    category_view_share_name,
)
from features.signals import harmonic_density
from models._estimator import as_matrix
from models.conversion import ACTION_COLUMNS, ConversionModel

#: (context column, customer feature per channel with ``{channel}`` standing for its name)
CHANNEL_CONTEXT: Final = (
    ("ctx_channel_open_rate", "open_rate_{channel}"),
    ("ctx_channel_click_rate", "click_rate_{channel}"),
    ("ctx_channel_opens", "opens_90d_{channel}"),
    ("ctx_channel_deliveries", "deliveries_90d_{channel}"),
    ("ctx_channel_days_since_engagement", "days_since_engagement_{channel}"),
    ("ctx_channel_sends_7d", "sends_7d_{channel}"),
    ("ctx_channel_engagement_share", "engagement_share_{channel}"),
)
HOUR_CONTEXT: Final = "ctx_hour_share"
#: The customer's smoothed visit density at the action's local hour (1 = a flat day) and the
#: circular distance in hours from the action's hour to the customer's peak visit hour.
HOUR_DENSITY_CONTEXT: Final = "ctx_hour_density"
HOUR_DISTANCE_CONTEXT: Final = "ctx_hour_distance"
#: Share of the customer's product views / purchases in the action message's category (NaN for
#: a message whose category no training event carried, e.g. a general one).
CATEGORY_VIEW_CONTEXT: Final = "ctx_category_view_share"
CATEGORY_PURCHASE_CONTEXT: Final = "ctx_category_purchase_share"
MESSAGE_CONTEXT: Final = "ctx_message_hours_since_send"
CONTEXT_COLUMNS: Final = (
    *(name for name, _ in CHANNEL_CONTEXT), HOUR_CONTEXT, HOUR_DENSITY_CONTEXT,
    HOUR_DISTANCE_CONTEXT, CATEGORY_VIEW_CONTEXT, CATEGORY_PURCHASE_CONTEXT, MESSAGE_CONTEXT,
)
_HOURS_PER_PART: Final = 24 // len(DAY_PARTS)
_HARMONIC_NAMES: Final = tuple(f"visit_hour_{trig}_{k}" for k in HOUR_HARMONICS
                               for trig in ("cos", "sin"))
_PEAK_HOUR: Final = "visit_peak_hour"


def _positions(names: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    missing = [w for w in wanted if w not in index]
    if missing:
        raise ValueError(
            f"action context needs customer feature(s) {', '.join(missing[:5])}: train on the "
            "feature spec of features.definitions"
        )
    return np.array([index[w] for w in wanted], dtype=np.int64)


class ActionContextConversionModel(ConversionModel):
    """:class:`ConversionModel` with :data:`CONTEXT_COLUMNS` computed from features and action.

    ``fit`` takes the same ``X`` (customer features, then the three action columns) and
    requires ``feature_names`` (the context columns are looked up by name); ``message_ids``
    follow the customer features' ``hours_since_send_msg_*`` columns in catalog order. The
    category columns need ``spec`` (a ``FeatureSpec``, for each message's category); the visit
    hour columns the ``visit_hour_*`` features: without them those context columns are NaN.
    """

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        ts_ns: np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        spec: object = None,
    ) -> ActionContextConversionModel:
        if feature_names is None:
            raise ValueError("ActionContextConversionModel.fit needs feature_names")
        names = list(feature_names)
        if tuple(names[-3:]) != ACTION_COLUMNS:
            raise ValueError(f"the last three feature_names must be {ACTION_COLUMNS}")
        matrix = as_matrix(X, len(names), "X")
        customer_names = names[:-3]
        self._resolve_context(customer_names, spec)
        self._forget_unseen_categories(matrix[:, :-3])
        context = self._context(matrix[:, :-3], matrix[:, -3], matrix[:, -2], matrix[:, -1])
        augmented = np.hstack([matrix[:, :-3], context, matrix[:, -3:]])
        super().fit(augmented, y, ts_ns=ts_ns,
                    feature_names=[*customer_names, *CONTEXT_COLUMNS, *ACTION_COLUMNS], spec=spec)
        # the estimator's face stays its inputs (what the pipeline, the promotion gate and the
        # pyfunc wrapper pass); the booster's own columns are kept apart
        k = self.n_customer_features_
        gains = self.feature_importances_
        self.model_feature_names_ = list(self.feature_names_)
        self.feature_names_ = names
        self.n_features_in_ = len(names)
        self.context_importances_ = dict(
            zip(CONTEXT_COLUMNS, gains[k : k + len(CONTEXT_COLUMNS)].tolist(), strict=True)
        )
        self.feature_importances_ = np.concatenate([gains[:k], gains[-3:]])
        return self

    def _resolve_context(self, customer_names: list[str], spec: object) -> None:
        self.n_customer_features_ = len(customer_names)
        index = {name: i for i, name in enumerate(customer_names)}
        self.harmonic_columns_ = (
            np.array([index[n] for n in _HARMONIC_NAMES], dtype=np.int64)
            if all(n in index for n in (*_HARMONIC_NAMES, _PEAK_HOUR))
            else np.zeros(0, dtype=np.int64))
        self.peak_column_ = index.get(_PEAK_HOUR, -1)
        categories = spec.message_categories if isinstance(spec, FeatureSpec) else ()
        # per message code: the column of its category's view / purchase share, -1 for none
        self.message_view_columns_ = np.array(
            [index.get(category_view_share_name(c), -1) if c else -1 for c in categories],
            dtype=np.int64)
        self.message_purchase_columns_ = np.array(
            [index.get(category_purchase_share_name(c), -1) if c else -1 for c in categories],
            dtype=np.int64)
        channel_names = [c.value for c in CHANNELS]
        self.channel_columns_ = np.vstack([
            _positions(customer_names, [template.format(channel=c) for c in channel_names])
            for _, template in CHANNEL_CONTEXT
        ])  # (n_context, n_channels)
        self.hour_columns_ = _positions(customer_names, [f"share_{p}" for p in DAY_PARTS])
        self.message_columns_ = np.array(
            [i for i, name in enumerate(customer_names)
             if name.startswith("hours_since_send_msg_")], dtype=np.int64
        )

    def _forget_unseen_categories(self, features: np.ndarray) -> None:
        """A category no training row has a view or purchase of (a "general" message's) would
        read as zero affinity: its messages get NaN context instead."""
        for columns in (self.message_view_columns_, self.message_purchase_columns_):
            for m, column in enumerate(columns.tolist()):
                if column >= 0 and not np.nanmax(features[:, column], initial=0.0) > 0:
                    columns[m] = -1

    def _message_share(
        self, features: np.ndarray, rows: np.ndarray, message: np.ndarray, columns: np.ndarray
    ) -> np.ndarray:
        if columns.size == 0:
            return np.full(rows.shape[0], np.nan)
        m = np.clip(np.where(message >= 0, message, 0), 0, columns.size - 1).astype(np.int64)
        column = columns[m]
        return np.where(column >= 0, features[rows, np.maximum(column, 0)], np.nan)

    def _context(
        self, features: np.ndarray, message: np.ndarray, channel: np.ndarray, hour: np.ndarray
    ) -> np.ndarray:
        """(n, len(CONTEXT_COLUMNS)); ``features`` has one row per action or a single row."""
        n = message.shape[0]
        rows = np.arange(n) if features.shape[0] == n else np.zeros(n, dtype=np.int64)
        sends = (message >= 0) & (channel >= 0)
        ch = np.where(sends, channel, 0).astype(np.int64)
        out = np.full((n, len(CONTEXT_COLUMNS)), np.nan)
        for k in range(self.channel_columns_.shape[0]):
            out[:, k] = features[rows, self.channel_columns_[k, ch]]
        at = len(CHANNEL_CONTEXT)
        local_hour = np.where(hour >= 0, hour, 0)
        part = np.clip(local_hour // _HOURS_PER_PART, 0, len(DAY_PARTS) - 1)
        out[:, at] = features[rows, self.hour_columns_[part.astype(np.int64)]]
        if self.harmonic_columns_.size:
            means = features[rows[:, None], self.harmonic_columns_[None, :]].T
            out[:, at + 1] = harmonic_density(means, local_hour)
            distance = np.abs(local_hour - features[rows, self.peak_column_]) % 24.0
            out[:, at + 2] = np.minimum(distance, 24.0 - distance)
        out[:, at + 3] = self._message_share(features, rows, message, self.message_view_columns_)
        out[:, at + 4] = self._message_share(features, rows, message,
                                             self.message_purchase_columns_)
        if self.message_columns_.size:
            m = np.clip(np.where(message >= 0, message, 0), 0, self.message_columns_.size - 1)
            out[:, -1] = features[rows, self.message_columns_[m.astype(np.int64)]]
        out[~sends] = np.nan
        return out

    def _model_matrix(
        self, features: np.ndarray, message: np.ndarray, channel: np.ndarray, hour: np.ndarray
    ) -> np.ndarray:
        """The booster's rows: customer features, context columns, encoded action columns."""
        k, c = self.n_customer_features_, len(CONTEXT_COLUMNS)
        if features.shape[0] not in (1, message.shape[0]):
            raise ValueError(
                f"features has {features.shape[0]} rows but there are {message.shape[0]} actions"
            )
        matrix = np.empty((message.shape[0], k + c + 3), dtype=np.float64)
        matrix[:, :k] = features
        matrix[:, k : k + c] = self._context(features, message, channel, hour)
        matrix[:, -3] = message + 1.0
        matrix[:, -2] = channel + 1.0
        matrix[:, -1] = hour
        return matrix

    def predict_conversion(
        self,
        features: np.ndarray,
        message: np.ndarray,
        channel: np.ndarray,
        local_hour: np.ndarray,
    ) -> np.ndarray:
        """P(conversion | features, action) per row; one feature row is broadcast."""
        self._check_fitted()
        feats = as_matrix(features, self.n_customer_features_)
        message = np.asarray(message, dtype=np.float64).reshape(-1)
        channel = np.asarray(channel, dtype=np.float64).reshape(-1)
        hour = np.asarray(local_hour, dtype=np.float64).reshape(-1)
        return self.model_.predict(self._model_matrix(feats, message, channel, hour))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Rows of ``X`` as in ``fit`` (customer features, then the action columns)."""
        self._check_fitted()
        matrix = as_matrix(X, self.n_features_in_, "X")
        p = self.predict_conversion(matrix[:, :-3], matrix[:, -3], matrix[:, -2], matrix[:, -1])
        return np.column_stack([1.0 - p, p])
