"""LightGBM's binary predictions without LightGBM's per-call cost: the trees of a booster
flattened into arrays and walked by one compiled (numba) loop.

``Booster.predict`` spends ~50-80 µs per call before it looks at a tree (parameter parsing, a
predictor object, row conversion), which dominates the request path's one-row and ~150-row
calls. Here a call costs a few microseconds plus the tree walks.

The walk repeats LightGBM's own decision rules (``Tree::NumericalDecision`` and
``Tree::CategoricalDecision``, LightGBM 4): values within ``kZeroThreshold`` of zero read as
zero; a NaN reads as zero unless the split's missing type is NaN; a missing value (zero or NaN,
by the missing type) goes the split's default direction; a categorical split sends a value left
when its integer is in the split's bitset, and NaN or a negative value right. Leaf values are
added in tree order, as LightGBM does, and the sum goes through the same sigmoid, so the
predictions are LightGBM's (tests compare them on random rows with NaN, zeros and categories).

Only what the nextbest models use is compiled: one-class binary objective, no linear trees;
``FlatForest.from_booster`` returns ``None`` for anything else and the caller keeps LightGBM.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: LightGBM's ``kZeroThreshold`` (a C float, 1e-35f, read as a double).
ZERO_THRESHOLD = float(np.float32(1e-35))
_CATEGORICAL = 1
_DEFAULT_LEFT = 2
_MISSING_ZERO = 1
_MISSING_NAN = 2


def _walk(
    X: np.ndarray,
    roots: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    decision: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    leaf_value: np.ndarray,
    cat_start: np.ndarray,
    cat_words: np.ndarray,
    cat_bits: np.ndarray,
    sigmoid: float,
) -> np.ndarray:
    """Sum of the leaf values each row reaches, tree by tree (child < 0: leaf ``~child``), or
    with ``sigmoid`` > 0 LightGBM's probability of it."""
    n_rows = X.shape[0]
    out = np.zeros(n_rows)
    for i in range(n_rows):
        total = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            while node >= 0:
                value = X[i, feature[node]]
                is_nan = math.isnan(value)
                if not is_nan and -ZERO_THRESHOLD <= value <= ZERO_THRESHOLD:
                    value = 0.0
                kind = decision[node]
                if kind & _CATEGORICAL:
                    go_left = False
                    if not is_nan:
                        code = int(value)
                        if code >= 0:
                            word = code >> 5
                            if word < cat_words[node]:
                                bits = cat_bits[cat_start[node] + word]
                                go_left = ((bits >> (code & 31)) & 1) == 1
                else:
                    missing = (kind >> 2) & 3
                    if is_nan and missing != _MISSING_NAN:
                        value = 0.0
                        is_nan = False
                    if (missing == _MISSING_ZERO and value == 0.0) or (
                        missing == _MISSING_NAN and is_nan
                    ):
                        go_left = (kind & _DEFAULT_LEFT) != 0
                    else:
                        go_left = value <= threshold[node]
                node = left[node] if go_left else right[node]
            total += leaf_value[~node]
        out[i] = 1.0 / (1.0 + math.exp(-sigmoid * total)) if sigmoid > 0.0 else total
    return out


@functools.cache
def _compiled_walk() -> Any:
    """The walk compiled by numba (on first use: importing numba takes a second, compiling a few
    more the first time, then it comes from numba's on-disk cache); ``None`` without numba."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; LightGBM remains the fallback
        logger.warning("numba is not installed: small batches are scored by LightGBM")
        return None
    return numba.njit(cache=True, nogil=True)(_walk)


def _numbers(text: str, dtype: Any) -> np.ndarray:
    return np.array(text.split(), dtype=dtype) if text else np.zeros(0, dtype=dtype)


def _trees(model: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The header fields and each tree's fields of a LightGBM model string."""
    blocks = model.split("\nTree=")
    header = dict(line.split("=", 1) for line in blocks[0].splitlines() if "=" in line)
    trees = []
    for block in blocks[1:]:
        body = block.split("\nend of trees", 1)[0]
        trees.append(dict(line.split("=", 1) for line in body.splitlines()[1:] if "=" in line))
    return header, trees


@dataclass(frozen=True)
class FlatForest:
    """The trees of a binary LightGBM booster as flat arrays (nodes of all trees end to end)."""

    n_features: int
    sigmoid: float
    roots: np.ndarray  # (n_trees,) int32: first node of each tree, or ~leaf for a one-leaf tree
    feature: np.ndarray  # (n_nodes,) int32
    threshold: np.ndarray  # (n_nodes,) float64
    decision: np.ndarray  # (n_nodes,) int8: LightGBM's decision_type bits
    left: np.ndarray  # (n_nodes,) int32: node index, or ~leaf index
    right: np.ndarray  # (n_nodes,) int32
    leaf_value: np.ndarray  # (n_leaves,) float64
    cat_start: np.ndarray  # (n_nodes,) int32: first bitset word of a categorical split
    cat_words: np.ndarray  # (n_nodes,) int32: its number of words
    cat_bits: np.ndarray  # (n_words,) uint32

    @classmethod
    def from_booster(cls, booster: Any, num_iteration: int = 0) -> FlatForest | None:
        """The booster's first ``num_iteration`` trees (all when <= 0), or ``None`` when the
        model is not one this evaluator reproduces (or numba is missing)."""
        if _compiled_walk() is None:
            return None
        header, trees = _trees(booster.model_to_string())
        objective = header.get("objective", "").split()
        if (
            not objective
            or objective[0] != "binary"
            or header.get("num_class", "1") != "1"
            or header.get("num_tree_per_iteration", "1") != "1"
            or "average_output" in header
        ):
            return None
        sigmoid = 1.0
        for option in objective[1:]:
            if option.startswith("sigmoid:"):
                sigmoid = float(option.removeprefix("sigmoid:"))
        if num_iteration > 0:
            trees = trees[:num_iteration]
        if any(t.get("is_linear", "0") != "0" for t in trees):
            return None
        return cls._flatten(int(header["max_feature_idx"]) + 1, sigmoid, trees)

    @classmethod
    def _flatten(cls, n_features: int, sigmoid: float, trees: list[dict[str, str]]) -> FlatForest:
        roots, parts, leaves, words = [], [], [], []
        n_nodes = n_leaves = n_words = 0
        for tree in trees:
            leaf_value = _numbers(tree["leaf_value"], np.float64)
            n_split = int(tree["num_leaves"]) - 1
            if n_split == 0:
                roots.append(~n_leaves)
                leaves.append(leaf_value)
                n_leaves += leaf_value.size
                continue
            left = _numbers(tree["left_child"], np.int64)
            right = _numbers(tree["right_child"], np.int64)
            decision = _numbers(tree["decision_type"], np.int64)
            threshold = _numbers(tree["threshold"], np.float64)
            # Internal children move by the nodes before this tree, leaves by the leaves before.
            left = np.where(left >= 0, left + n_nodes, ~(~left + n_leaves))
            right = np.where(right >= 0, right + n_nodes, ~(~right + n_leaves))
            cat_start = np.zeros(n_split, dtype=np.int64)
            cat_words = np.zeros(n_split, dtype=np.int64)
            if int(tree.get("num_cat", "0")) > 0:
                bounds = _numbers(tree["cat_boundaries"], np.int64)
                bits = _numbers(tree["cat_threshold"], np.uint64).astype(np.uint32)
                categorical = (decision & _CATEGORICAL) != 0
                index = threshold[categorical].astype(np.int64)
                cat_start[categorical] = bounds[index] + n_words
                cat_words[categorical] = bounds[index + 1] - bounds[index]
                words.append(bits)
                n_words += bits.size
            parts.append(
                (_numbers(tree["split_feature"], np.int64), threshold, decision, left, right,
                 cat_start, cat_words)
            )  # fmt: skip
            roots.append(n_nodes)
            leaves.append(leaf_value)
            n_nodes += n_split
            n_leaves += leaf_value.size

        def column(i: int, dtype: Any) -> np.ndarray:
            if not parts:
                return np.zeros(0, dtype=dtype)
            return np.ascontiguousarray(np.concatenate([p[i] for p in parts]), dtype=dtype)

        return cls(
            n_features=n_features,
            sigmoid=sigmoid,
            roots=np.asarray(roots, dtype=np.int32),
            feature=column(0, np.int32),
            threshold=column(1, np.float64),
            decision=column(2, np.int8),
            left=column(3, np.int32),
            right=column(4, np.int32),
            leaf_value=np.concatenate(leaves) if leaves else np.zeros(0),
            cat_start=column(5, np.int32),
            cat_words=column(6, np.int32),
            cat_bits=np.concatenate(words) if words else np.zeros(0, dtype=np.uint32),
        )

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """LightGBM's ``raw_score=True`` output: the sum of the trees."""
        return self._walk(X, 0.0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """LightGBM's ``predict``: ``1 / (1 + exp(-sigmoid * raw))``, as LightGBM computes it."""
        return self._walk(X, self.sigmoid)

    def _walk(self, X: np.ndarray, sigmoid: float) -> np.ndarray:
        if X.dtype != np.float64 or not X.flags.c_contiguous:
            X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"expected rows of {self.n_features} features, got an array of shape {X.shape}"
            )
        scores: np.ndarray = _compiled_walk()(
            X, self.roots, self.feature, self.threshold, self.decision, self.left, self.right,
            self.leaf_value, self.cat_start, self.cat_words, self.cat_bits, sigmoid,
        )  # fmt: skip
        return scores
