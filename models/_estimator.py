"""What the four nextbest estimators share: LightGBM hyper-parameters, the feature schema they
were trained with, and input checks that name what is wrong.

Each estimator follows the scikit-learn contract: ``__init__`` only stores parameters,
``fit(X, y, ...)`` returns ``self``, learned state ends in ``_``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from models._boosting import booster_params
from models.calibration import CalibrationMethod


def spec_as_dict(spec: object) -> dict[str, Any]:
    """The feature spec as a plain, JSON-friendly dict (``FeatureSpec.to_dict``, a pydantic model,
    a dataclass or a mapping)."""
    if spec is None:
        return {}
    to_dict = getattr(spec, "to_dict", None)  # features.definitions.FeatureSpec
    if callable(to_dict):
        return dict(to_dict())
    dump = getattr(spec, "model_dump", None)
    if callable(dump):
        return dict(dump(mode="json"))
    if dataclasses.is_dataclass(spec) and not isinstance(spec, type):
        return dataclasses.asdict(spec)
    if isinstance(spec, Mapping):
        return dict(spec)
    raise TypeError(f"a feature spec must be a pydantic model, dataclass or dict, not {spec!r}")


def as_matrix(X: object, n_columns: int | None, what: str = "features") -> np.ndarray:
    """``X`` as a C-contiguous float64 matrix, checked to have ``n_columns`` columns."""
    matrix = np.ascontiguousarray(X, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (rows x columns), got shape {matrix.shape}")
    if n_columns is not None and matrix.shape[1] != n_columns:
        raise ValueError(
            f"{what} must have {n_columns} columns (the model's feature_names_), "
            f"got {matrix.shape[1]}"
        )
    return matrix


class BoostedEstimator(BaseEstimator):  # type: ignore[misc]
    """LightGBM hyper-parameters plus calibration settings common to every nextbest model.

    ``n_jobs`` threads train; scoring small batches (one customer) uses one thread.
    """

    def __init__(
        self,
        n_estimators: int = 200,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        early_stopping_rounds: int | None = 30,
        calibration: CalibrationMethod = "sigmoid",
        calibration_fraction: float = 0.2,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _booster_params(self, seed_offset: int = 0) -> dict[str, Any]:
        return booster_params(
            num_leaves=self.num_leaves,
            learning_rate=self.learning_rate,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            n_jobs=self.n_jobs,
            random_state=self.random_state + seed_offset,
        )

    def _remember_schema(
        self, n_columns: int, feature_names: Sequence[str] | None, spec: object
    ) -> None:
        names = list(feature_names) if feature_names is not None else [
            f"f{i}" for i in range(n_columns)
        ]
        if len(names) != n_columns:
            raise ValueError(
                f"feature_names has {len(names)} names but X has {n_columns} columns"
            )
        self.feature_names_ = names
        self.n_features_in_ = n_columns
        self.spec_ = spec_as_dict(spec)

    def _check_fitted(self) -> None:
        if not hasattr(self, "feature_names_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit first")


def check_labels(y: object, n_rows: int, shape: tuple[int, ...] = ()) -> np.ndarray:
    """Labels as float64 0/1 with ``n_rows`` rows (and trailing ``shape``), or a clear error."""
    labels = np.asarray(y, dtype=np.float64)
    if n_rows == 0:
        raise ValueError("there are no training rows to learn from")
    expected = (n_rows, *shape)
    if labels.shape != expected:
        raise ValueError(f"y must have shape {expected}, got {labels.shape}")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("y must hold 0/1 labels only")
    return labels
