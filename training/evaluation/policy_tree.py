"""A shallow policy tree: which action to take in which segment, learned from per-row action
scores (e.g. doubly robust scores from a randomised log).

Given a score ``scores[i, a]`` whose mean over a segment estimates the value of action ``a``
there, the tree searches exhaustively over every depth-1 or depth-2 partition of the customers
by threshold splits and assigns each leaf the action with the highest summed score (Athey and
Wager, "Policy learning with observational data", 2021). Shallow trees are the point: they are
readable ("send the Womens e-mail to new customers who bought women's items, Mens to everyone
else") and, with small effects, deeper trees mostly fit noise.

Shrinkage towards the default action (the best single action on the training rows): with
``caution = z``, a leaf departs from the default only by ``gain - z * se`` where ``gain`` is the
summed score difference to the default in that leaf and ``se`` its standard error, so a segment
must show a gain ``z`` standard errors clear of zero to get its own action. ``caution=0`` is the
plain policy tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Features with at most this many distinct values are split at every value; others at deciles.
_MAX_EXACT_THRESHOLDS = 16
_QUANTILES = np.linspace(0.1, 0.9, 9)


@dataclass(frozen=True)
class PolicyNode:
    """A leaf (``action`` set) or a split: rows with ``x[feature] <= threshold`` go left."""

    action: int = -1
    feature: int = -1
    threshold: float = 0.0
    left: PolicyNode | None = None
    right: PolicyNode | None = None

    @property
    def is_leaf(self) -> bool:
        return self.left is None


@dataclass(frozen=True)
class _Leaves:
    """Best way to treat one set of rows: its pessimistic value and one or two leaves."""

    value: float
    split: int  # candidate index, -1 for a single leaf
    actions: tuple[int, int]


class PolicyTree:
    """Exhaustive depth-1/2 policy tree over threshold splits (scikit-learn style).

    Parameters
    ----------
    max_depth: 1 or 2.
    min_leaf_fraction: smallest leaf, as a fraction of the training rows.
    caution: standard errors a leaf's gain over the default action must clear (see module doc).
    """

    def __init__(
        self, max_depth: int = 2, min_leaf_fraction: float = 0.05, caution: float = 1.0
    ) -> None:
        self.max_depth = max_depth
        self.min_leaf_fraction = min_leaf_fraction
        self.caution = caution

    def fit(self, X: np.ndarray, scores: np.ndarray) -> PolicyTree:
        """Learn the tree from features ``X`` (n, p) and action scores ``scores`` (n, K)."""
        X = np.asarray(X, dtype=np.float64)
        scores = np.asarray(scores, dtype=np.float64)
        if X.ndim != 2 or scores.ndim != 2 or X.shape[0] != scores.shape[0] or not len(X):
            raise ValueError(
                f"X (n, p) and scores (n, K) must have the same non-zero number of rows, got "
                f"{X.shape} and {scores.shape}"
            )
        if self.max_depth not in (1, 2):
            raise ValueError(f"max_depth must be 1 or 2, got {self.max_depth}")
        if not np.isfinite(X).all() or not np.isfinite(scores).all():
            raise ValueError("X and scores must be finite")
        self.n_actions_ = scores.shape[1]
        self.n_features_in_ = X.shape[1]
        self.default_action_ = int(scores.sum(axis=0).argmax())
        self.candidates_ = self._candidates(X)
        self.binary_features_ = frozenset(
            f for f in range(X.shape[1]) if np.isin(X[:, f], (0.0, 1.0)).all()
        )
        sides = np.column_stack([X[:, f] <= t for f, t in self.candidates_]).astype(np.float64)
        min_rows = max(1, int(np.ceil(self.min_leaf_fraction * len(X))))
        gains = scores - scores[:, [self.default_action_]]
        everyone = np.ones(len(X), dtype=bool)
        best_value = self._best_leaves(scores, gains, sides, everyone, min_rows)
        self.tree_ = self._node(best_value)
        if self.max_depth == 2:
            for j in range(len(self.candidates_)):
                left = sides[:, j] == 1.0
                if min_rows > left.sum() or min_rows > (~left).sum():
                    continue
                left_leaves = self._best_leaves(scores, gains, sides, left, min_rows)
                right_leaves = self._best_leaves(scores, gains, sides, ~left, min_rows)
                if left_leaves.value + right_leaves.value > best_value.value + 1e-12:
                    best_value = _Leaves(left_leaves.value + right_leaves.value, j, (-1, -1))
                    feature, threshold = self.candidates_[j]
                    self.tree_ = PolicyNode(
                        feature=feature, threshold=threshold,
                        left=self._node(left_leaves), right=self._node(right_leaves),
                    )
        self.value_ = best_value.value / len(X)
        return self

    @staticmethod
    def _candidates(X: np.ndarray) -> list[tuple[int, float]]:
        candidates: list[tuple[int, float]] = []
        for feature in range(X.shape[1]):
            values = np.unique(X[:, feature])
            if len(values) <= _MAX_EXACT_THRESHOLDS:
                thresholds = values[:-1]
            else:
                thresholds = np.unique(np.quantile(X[:, feature], _QUANTILES))
            candidates.extend((feature, float(t)) for t in thresholds)
        return candidates

    def _pessimistic(
        self, default_sum: np.ndarray, gain: np.ndarray, gain_sq: np.ndarray, count: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate set: value (default's sum + best cautious gain) and its action."""
        safe = np.maximum(count, 1.0)[..., None]
        variance = np.maximum(gain_sq - gain**2 / safe, 0.0)
        # Standard error of the summed gain: sqrt(n * var(gain per row)) = sqrt(variance).
        cautious = gain - self.caution * np.sqrt(variance)
        cautious[..., self.default_action_] = 0.0
        best = cautious.argmax(axis=-1)
        margin = np.take_along_axis(cautious, best[..., None], axis=-1)[..., 0]
        action = np.where(margin > 0.0, best, self.default_action_)
        return default_sum + np.maximum(margin, 0.0), action

    def _best_leaves(
        self,
        scores: np.ndarray,
        gains: np.ndarray,
        sides: np.ndarray,
        rows: np.ndarray,
        min_rows: int,
    ) -> _Leaves:
        base = scores[rows, self.default_action_]
        gain, side = gains[rows], sides[rows]
        total = (base.sum(), gain.sum(axis=0), np.square(gain).sum(axis=0), float(rows.sum()))
        value, action = self._pessimistic(*(np.asarray(t) for t in total))
        best = _Leaves(float(value), -1, (int(action), int(action)))
        left = (side.T @ base, side.T @ gain, side.T @ np.square(gain), side.sum(axis=0))
        right = tuple(np.asarray(whole) - part for whole, part in zip(total, left, strict=True))
        left_value, left_action = self._pessimistic(*left)
        right_value, right_action = self._pessimistic(*right)
        combined = left_value + right_value
        combined[(left[3] < min_rows) | (right[3] < min_rows)] = -np.inf
        j = int(combined.argmax())
        if combined[j] > best.value + 1e-12:
            best = _Leaves(float(combined[j]), j, (int(left_action[j]), int(right_action[j])))
        return best

    def _node(self, leaves: _Leaves) -> PolicyNode:
        if leaves.split < 0 or leaves.actions[0] == leaves.actions[1]:
            return PolicyNode(action=leaves.actions[0])
        feature, threshold = self.candidates_[leaves.split]
        return PolicyNode(
            feature=feature, threshold=threshold,
            left=PolicyNode(action=leaves.actions[0]), right=PolicyNode(action=leaves.actions[1]),
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The action (column index of the training scores) for each row of ``X``."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have {self.n_features_in_} columns, got shape {X.shape}")
        actions = np.empty(len(X), dtype=np.int64)
        self._assign(self.tree_, X, np.ones(len(X), dtype=bool), actions)
        return actions

    def _assign(self, node: PolicyNode, X: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
        if node.left is None or node.right is None:
            out[rows] = node.action
            return
        goes_left = X[:, node.feature] <= node.threshold
        self._assign(node.left, X, rows & goes_left, out)
        self._assign(node.right, X, rows & ~goes_left, out)

    def describe(
        self, feature_names: Sequence[str], action_names: Sequence[str]
    ) -> list[str]:
        """The policy as readable rules, one per leaf (0/1 features read as ``name = 0|1``)."""
        rules: list[str] = []

        def condition(feature: int, low: float | None, high: float | None) -> str:
            name = feature_names[feature]
            if feature in self.binary_features_:
                return f"{name} = {0 if high is not None else 1}"
            if low is None:
                return f"{name} <= {high:g}"
            if high is None:
                return f"{name} > {low:g}"
            return f"{low:g} < {name} <= {high:g}"

        def walk(node: PolicyNode, bounds: dict[int, tuple[float | None, float | None]]) -> None:
            if node.left is None or node.right is None:
                where = " and ".join(condition(f, *b) for f, b in bounds.items()) or "everyone"
                rules.append(f"{where}: {action_names[node.action]}")
                return
            low, high = bounds.get(node.feature, (None, None))
            walk(node.left, bounds | {node.feature: (low, node.threshold)})
            walk(node.right, bounds | {node.feature: (node.threshold, high)})

        walk(self.tree_, {})
        return rules
