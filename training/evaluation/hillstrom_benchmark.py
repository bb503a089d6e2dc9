"""The Hillstrom policy benchmark: learn which e-mail (none, Mens, Womens) to send to whom, and
measure the learned policy's value off-policy with honest intervals.

For each outcome (visit, conversion, spend), with K-fold cross-fitting (the policy applied to a
fold is learned on the other folds only):

1. per-arm outcome models (LightGBM, strongly regularised; a T-learner) are cross-fitted *inside*
   the training folds, giving doubly robust scores ``q(x, a) + 1[a_i = a] (r_i - q(x, a)) / e``
   for every training row and arm;
2. a depth-2 policy tree (``training.evaluation.policy_tree``) is fitted to those scores, with
   shrinkage towards the best single arm of the training folds (a segment gets another arm only
   when its gain is clear of its standard error), and applied to the held-out fold;
3. the pooled held-out actions are evaluated by IPS, SNIPS and DR (the DR reward model is the
   T-learner fitted on the other folds) with bootstrap intervals, next to the single-arm
   policies and as a paired difference to all-Mens.

The cross-fitted Womens-vs-none visit uplift scores (T-learner differences) are also scored by
Qini coefficient, AUUC and uplift@30 %.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from training.evaluation.ope import LoggedDecisions, PolicyEstimate, evaluate_policies
from training.evaluation.policy_tree import PolicyTree
from training.evaluation.uplift import auuc, qini_curve, uplift_at_k, uplift_curve
from training.hillstrom import (
    ARM_PROPENSITY,
    ARMS,
    MENS,
    NO_EMAIL,
    OUTCOMES,
    WOMENS,
    HillstromCol,
    arm_codes,
)

logger = logging.getLogger(__name__)

H = HillstromCol
#: A fitted model: features -> per-arm predictions (n, 3) or actions (n,).
Predictor = Callable[[np.ndarray], np.ndarray]
#: Learns from training rows (features, arms, outcome) and returns a predictor.
Learner = Callable[[np.ndarray, np.ndarray, np.ndarray], Predictor]

_CATEGORY_LEVELS = {
    H.ZIP_CODE: ("Urban", "Surburban", "Rural"),
    H.PURCHASE_CHANNEL: ("Phone", "Web", "Multichannel"),
}
ALL_ARM_POLICIES = {f"all_{arm}": code for code, arm in enumerate(ARMS)}
LEARNED = "learned"
BASELINE = f"all_{ARMS[MENS]}"
_CURVE_POINTS = 101
#: Fewer held-out customers per arm than this in an inner fold leave nothing to learn from.
_MIN_ROWS_PER_ARM_AND_FOLD = 50


class OutcomeModelParams(BaseModel):
    """LightGBM settings of the per-arm outcome models: small trees, large leaves, shrinkage."""

    model_config = ConfigDict(extra="forbid")

    n_estimators: int = Field(default=100, ge=1)
    learning_rate: float = Field(default=0.05, gt=0)
    num_leaves: int = Field(default=7, ge=2)
    min_child_samples: int = Field(default=300, ge=1)
    reg_lambda: float = Field(default=10.0, ge=0)
    subsample: float = Field(default=0.8, gt=0, le=1)
    colsample_bytree: float = Field(default=0.8, gt=0, le=1)
    #: One thread: the models are small, and OpenMP threads on a busy machine slow them down
    #: several-fold.
    n_jobs: int = Field(default=1, ge=1)


class BenchmarkConfig(BaseModel):
    """Everything that decides a benchmark run (logged as MLflow params)."""

    model_config = ConfigDict(extra="forbid")

    folds: int = Field(default=5, ge=2)
    inner_folds: int = Field(default=2, ge=2)
    seed: int = 0
    n_bootstrap: int = Field(default=1000, ge=10)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    uplift_k: float = Field(default=0.3, gt=0, le=1)
    tree_depth: int = Field(default=2, ge=1, le=2)
    min_leaf_fraction: float = Field(default=0.05, gt=0, lt=0.5)
    caution: float = Field(default=1.0, ge=0)
    order_value_min_child_samples: int = Field(default=50, ge=1)
    outcome_model: OutcomeModelParams = Field(default_factory=OutcomeModelParams)  # type: ignore[arg-type]


@dataclass(frozen=True)
class OutcomeResult:
    """One outcome: observed arm means, policy estimates, learned-vs-Mens, the learned rules."""

    outcome: str
    arm_means: dict[str, float]
    estimates: dict[str, dict[str, PolicyEstimate]]
    versus_mens: dict[str, PolicyEstimate]
    policy_shares: dict[str, float]
    rules: list[str]


@dataclass(frozen=True)
class UpliftResult:
    """Womens-vs-none visit uplift of the cross-fitted scores."""

    qini_coefficient: float
    auuc: float
    auuc_random: float
    uplift_at_k: float
    k: float
    n_rows: int
    qini_fraction: np.ndarray = field(repr=False)
    qini_values: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class BenchmarkResult:
    config: BenchmarkConfig
    n_rows: int
    outcomes: dict[str, OutcomeResult]
    uplift: UpliftResult
    seconds: float


def feature_matrix(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Numeric features of the customers (categories one-hot, so tree splits are readable)."""
    columns: dict[str, np.ndarray] = {
        name: frame[name].to_numpy(dtype=np.float64)
        for name in (H.RECENCY, H.HISTORY, H.MENS, H.WOMENS, H.NEWBIE)
    }
    for name, levels in _CATEGORY_LEVELS.items():
        for level in levels:
            columns[f"{name}={level}"] = (frame[name] == level).to_numpy(dtype=np.float64)
    return np.column_stack(list(columns.values())), list(columns)


def assign_folds(arms: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """A fold number per row, stratified by arm so each fold keeps the 1/3 design."""
    if n_folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {n_folds}")
    rng = np.random.default_rng(seed)
    folds = np.empty(len(arms), dtype=np.int64)
    for arm in np.unique(arms):
        rows = np.flatnonzero(arms == arm)
        folds[rng.permutation(rows)] = np.arange(len(rows)) % n_folds
    return folds


def fold_splits(folds: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(training rows, held-out rows) per fold: the held-out fold never among the training."""
    for fold in np.unique(folds):
        yield np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)


def cross_fit(
    X: np.ndarray, arms: np.ndarray, y: np.ndarray, folds: np.ndarray, learner: Learner
) -> np.ndarray:
    """Predictions for every row from a model learned on the other folds only."""
    result: np.ndarray | None = None
    for train, held_out in fold_splits(folds):
        predictions = learner(X[train], arms[train], y[train])(X[held_out])
        if result is None:
            result = np.empty((len(X), *predictions.shape[1:]), dtype=predictions.dtype)
        result[held_out] = predictions
    assert result is not None  # at least two folds exist
    return result


def outcome_learner(params: OutcomeModelParams, binary: bool, seed: int) -> Learner:
    """A T-learner: one LightGBM model per arm; predicts (n, 3) expected outcomes."""
    import lightgbm as lgb

    settings = params.model_dump() | {
        "subsample_freq": 1, "random_state": seed, "verbose": -1, "deterministic": True,
        "force_row_wise": True,
    }

    def learn(X: np.ndarray, arms: np.ndarray, y: np.ndarray) -> Predictor:
        models: list[lgb.LGBMModel] = []
        for arm in range(len(ARMS)):
            rows = arms == arm
            model = lgb.LGBMClassifier(**settings) if binary else lgb.LGBMRegressor(**settings)
            models.append(model.fit(X[rows], y[rows]))

        def predict(X_new: np.ndarray) -> np.ndarray:
            if binary:
                return np.column_stack([m.predict_proba(X_new)[:, 1] for m in models])
            return np.column_stack([m.predict(X_new) for m in models])

        return predict

    return learn


def doubly_robust_scores(
    predictions: np.ndarray, arms: np.ndarray, y: np.ndarray, propensity: float
) -> np.ndarray:
    """Per row and arm: the model's prediction, corrected on the logged arm by the residual."""
    scores = predictions.copy()
    rows = np.arange(len(y))
    scores[rows, arms] += (y - predictions[rows, arms]) / propensity
    return scores


def order_value_learner(params: OutcomeModelParams, min_child_samples: int, seed: int) -> Learner:
    """Expected order value given a purchase (rows with ``y > 0``, all arms pooled): (n,)."""
    import lightgbm as lgb

    settings = params.model_dump() | {
        "min_child_samples": min_child_samples, "subsample_freq": 1, "random_state": seed,
        "verbose": -1, "deterministic": True, "force_row_wise": True,
    }

    def learn(X: np.ndarray, arms: np.ndarray, y: np.ndarray) -> Predictor:
        bought = y > 0
        if bought.sum() < 2 * min_child_samples:
            mean = float(y[bought].mean()) if bought.any() else 0.0
            return lambda X_new: np.full(len(X_new), mean)
        model = lgb.LGBMRegressor(**settings).fit(X[bought], y[bought])
        return lambda X_new: np.asarray(model.predict(X_new), dtype=np.float64)

    return learn


def policy_learner(config: BenchmarkConfig, outcome: str) -> tuple[Learner, list[PolicyTree]]:
    """Learns a policy tree on inner-cross-fitted DR scores; keeps each fitted tree.

    Spend is a purchase times its amount, and the amount is a few hundred heavy-tailed values:
    its raw DR scores are mostly noise. The e-mail moves whether customers buy far more than how
    much they spend when they do (order values per arm agree within their errors), so spend is
    scored as the purchase's DR score times the customer's predicted order value.
    """
    trees: list[PolicyTree] = []
    params, seed = config.outcome_model, config.seed
    binary_model = outcome_learner(params, binary=True, seed=seed)
    outcome_model = outcome_learner(params, binary=outcome != HillstromCol.SPEND, seed=seed)
    order_value = order_value_learner(params, config.order_value_min_child_samples, seed)

    def learn(X: np.ndarray, arms: np.ndarray, y: np.ndarray) -> Predictor:
        inner = assign_folds(arms, config.inner_folds, seed + 1)
        if outcome == HillstromCol.SPEND:
            bought = (y > 0).astype(np.float64)
            purchase = cross_fit(X, arms, bought, inner, binary_model)
            values = cross_fit(X, arms, y, inner, order_value)
            scores = doubly_robust_scores(purchase, arms, bought, ARM_PROPENSITY) * values[:, None]
        else:
            predictions = cross_fit(X, arms, y, inner, outcome_model)
            scores = doubly_robust_scores(predictions, arms, y, ARM_PROPENSITY)
        tree = PolicyTree(config.tree_depth, config.min_leaf_fraction, config.caution)
        trees.append(tree.fit(X, scores))
        return tree.predict

    return learn, trees


def _evaluate_outcome(
    outcome: str,
    X: np.ndarray,
    names: list[str],
    arms: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    config: BenchmarkConfig,
) -> tuple[OutcomeResult, np.ndarray]:
    binary = outcome != H.SPEND
    started = time.perf_counter()
    reward_model = cross_fit(X, arms, y, folds, outcome_learner(config.outcome_model, binary,
                                                                config.seed))
    learn, _ = policy_learner(config, outcome)
    actions = cross_fit(X, arms, y, folds, learn)
    full_learn, full_trees = policy_learner(config, outcome)
    full_learn(X, arms, y)
    n = len(y)
    log = LoggedDecisions(arms, y, np.full(n, ARM_PROPENSITY), len(ARMS))
    targets = {LEARNED: actions} | {
        name: np.full(n, code, dtype=np.int64) for name, code in ALL_ARM_POLICIES.items()
    }
    comparison = evaluate_policies(
        log, targets, reward_model, baseline=BASELINE, n_bootstrap=config.n_bootstrap,
        confidence=config.confidence, seed=config.seed,
    )
    shares = np.bincount(actions, minlength=len(ARMS)) / n
    result = OutcomeResult(
        outcome=outcome,
        arm_means={arm: float(y[arms == code].mean()) for code, arm in enumerate(ARMS)},
        estimates=comparison.estimates,
        versus_mens=comparison.differences[LEARNED],
        policy_shares={arm: float(shares[code]) for code, arm in enumerate(ARMS)},
        rules=full_trees[0].describe(names, ARMS),
    )
    logger.info("hillstrom %s: learned policy IPS %.5f vs all-Mens %.5f (%.1fs)", outcome,
                comparison.estimates[LEARNED]["ips"].value, result.arm_means[ARMS[MENS]],
                time.perf_counter() - started)
    return result, reward_model


def _uplift(visit_model: np.ndarray, arms: np.ndarray, visit: np.ndarray, k: float) -> UpliftResult:
    rows = (arms == WOMENS) | (arms == NO_EMAIL)
    score = visit_model[rows, WOMENS] - visit_model[rows, NO_EMAIL]
    treated = (arms[rows] == WOMENS).astype(np.int64)
    curve = qini_curve(visit[rows], treated, score)
    # Keep a fixed number of points for plots and JSON; the metrics use the full curve.
    grid = np.linspace(0.0, 1.0, _CURVE_POINTS)
    return UpliftResult(
        qini_coefficient=curve.area - curve.random_area,
        auuc=auuc(visit[rows], treated, score),
        auuc_random=uplift_curve(visit[rows], treated, score).random_area,
        uplift_at_k=uplift_at_k(visit[rows], treated, score, k=k),
        k=k,
        n_rows=int(rows.sum()),
        qini_fraction=grid,
        qini_values=np.interp(grid, curve.fraction, curve.values),
    )


def run_benchmark(
    frame: pd.DataFrame, config: BenchmarkConfig | None = None
) -> BenchmarkResult:
    """Run the whole benchmark on the flat frame of ``training.hillstrom.read_hillstrom``."""
    config = config or BenchmarkConfig()
    started = time.perf_counter()
    X, names = feature_matrix(frame)
    arms = arm_codes(frame)
    smallest = int(np.bincount(arms, minlength=len(ARMS)).min())
    needed = config.folds * config.inner_folds * _MIN_ROWS_PER_ARM_AND_FOLD
    if smallest < needed:
        raise ValueError(
            f"the benchmark needs at least {needed} customers in every arm for {config.folds} "
            f"folds (the smallest arm has {smallest}); use fewer folds or more data"
        )
    folds = assign_folds(arms, config.folds, config.seed)
    outcomes: dict[str, OutcomeResult] = {}
    reward_models: dict[str, np.ndarray] = {}
    for outcome in OUTCOMES:
        y = frame[outcome].to_numpy(dtype=np.float64)
        outcomes[outcome], reward_models[outcome] = _evaluate_outcome(
            outcome, X, names, arms, y, folds, config
        )
    uplift = _uplift(
        reward_models[H.VISIT], arms, frame[H.VISIT].to_numpy(dtype=np.float64), config.uplift_k
    )
    return BenchmarkResult(config, len(frame), outcomes, uplift, time.perf_counter() - started)
