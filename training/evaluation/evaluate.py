"""``nextbest evaluate``: judge a policy by the value of its decisions (docs/evaluation.md).

Given a data folder (the contract's four tables, plus ``truth/`` when it was simulated) and a
model set, the evaluation:

1. picks the evaluation rows: logged decisions after the models' training window (the first
   ``decisions_per_customer`` of each customer there), so no model saw what it is judged on;
2. runs the nextbest decision engine on each row's observed state (``nextbest_policy``);
3. with simulator truth, values nextbest, random, no contact, the best static rule, rule-based
   journeys and the oracle's best action exactly (``oracle_values``) and reports nextbest's
   share of the oracle's lift over random;
4. always, estimates the policies' values off-policy from the log with IPS, SNIPS and DR, and,
   with truth, checks each interval against the true value of the same policy on the same rows;
5. when the log holds global-control decisions, adds the control-group lift report.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.contract import CHANNELS, DEFAULT_ATTRIBUTION_HOURS, STAGES, Col
from features.definitions import FeatureSpec
from features.eventlog import ts_to_ns
from features.io import Journeys
from features.simulator import GroundTruth, Oracle
from features.simulator.catalog import CatalogArrays
from features.simulator.policy import eligible_actions
from features.simulator.truth import TRUTH_DIR
from models.policy import ArbitrationConfig, ModelSet
from training.evaluation.logged_ope import (
    DecisionLogData,
    OpeResult,
    TargetPolicy,
    action_costs,
    estimate_policies,
    load_decision_log,
)
from training.evaluation.nextbest_policy import (
    ObservedJourneys,
    evaluation_engine,
    nextbest_actions,
    shipped_send_hours,
)
from training.evaluation.oracle_values import (
    NET_VALUE,
    REVENUE,
    Objective,
    OracleValues,
    PolicyActions,
    PolicyValue,
    lift_share,
)
from training.evaluation.rule_policies import channel_usage, journey_actions

logger = logging.getLogger(__name__)

NEXTBEST: Final = "nextbest"
RANDOM: Final = "random"
NO_CONTACT: Final = "no_contact"
STATIC_RULE: Final = "static_rule"
JOURNEYS: Final = "journeys"
ORACLE: Final = "oracle"
LOGGED: Final = "logging_policy"
#: Targets of issue 5 (simulator, 100,000 customers).
TARGET_SHARE: Final = 0.90
TARGET_REVENUE_GAIN: Final = 0.20
ASSIGNMENT: Final = "assignment"
GLOBAL_CONTROL: Final = "global_control"
#: Policies the off-policy section can estimate (``oracle`` needs simulator truth).
OPE_POLICIES: Final = (NEXTBEST, NO_CONTACT, JOURNEYS, RANDOM, LOGGED, ORACLE)


class EvaluationError(ValueError):
    """The evaluation cannot run on these inputs; the message says what is missing."""


class EvaluationConfig(BaseModel):
    """How ``nextbest evaluate`` chooses its rows and computes its intervals."""

    model_config = ConfigDict(extra="forbid")

    n_bootstrap: int = Field(default=1000, ge=10, description="Bootstrap resamples of the CIs.")
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    since: datetime | None = Field(
        default=None,
        description="Evaluate decisions from this time on; default: after the models' "
        "training window (all decisions when it is unknown).",
    )
    decisions_per_customer: int | None = Field(
        default=1, ge=1, description="First decisions of each customer kept (null: all)."
    )
    objective: Objective = Field(
        default="net_value", description="What the oracle and the hindsight static rule maximise."
    )
    seed: int = Field(default=0, ge=0)
    jobs: int | None = Field(
        default=None, ge=1, description="Worker processes deciding the rows (null: one per "
        "CPU; 1: in this process). The decisions do not depend on it.",
    )
    policies: tuple[str, ...] | None = Field(
        default=None, description="Policies estimated off-policy (default: all of OPE_POLICIES)."
    )

    @field_validator("policies")
    @classmethod
    def _known(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        unknown = [p for p in value if p not in OPE_POLICIES]
        if unknown:
            raise ValueError(f"unknown policy {unknown[0]!r}; expected one of "
                             f"{', '.join(OPE_POLICIES)}")
        return tuple(dict.fromkeys(value))


@dataclass(frozen=True)
class LoadedModels:
    """The model set to evaluate, its feature spec and where its training data ended."""

    models: ModelSet
    spec: FeatureSpec
    train_end: pd.Timestamp | None = None
    source: str = "in-memory models"
    arbitration: ArbitrationConfig | None = None


@dataclass
class OracleSection:
    values: dict[str, PolicyValue]
    share: dict[str, float]
    revenue_gain: dict[str, float]
    static_action: tuple[str, str, int]
    by_stage: pd.DataFrame
    candidates_per_row: float
    targets: dict[str, bool]


@dataclass
class EvaluationReport:
    """Everything one evaluation produced (rendered by ``training.evaluation.report``)."""

    data: str
    models: dict[str, str]
    window: dict[str, str]
    n_rows: int
    config: EvaluationConfig
    ope: OpeResult
    oracle: OracleSection | None = None
    ope_truth: dict[str, dict[str, float]] = field(default_factory=dict)
    lift: pd.DataFrame | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def evaluation_rows(
    decisions: pd.DataFrame, since: pd.Timestamp | None, per_customer: int | None,
    inclusive: bool = True,
) -> pd.DataFrame:
    """Logged decisions from ``since`` on (strictly after it unless ``inclusive``), the first
    ``per_customer`` of each customer."""
    rows = decisions
    if since is not None:
        ts = pd.DatetimeIndex(rows[Col.TS])
        rows = rows[ts >= since] if inclusive else rows[ts > since]
    rows = rows.sort_values([Col.TS, Col.DECISION_ID], kind="stable")
    if per_customer is not None:
        rows = rows[rows.groupby(Col.CUSTOMER_ID, sort=False).cumcount() < per_customer]
    if rows.empty:
        where = f" from {since.isoformat()}" if since is not None else ""
        raise EvaluationError(
            f"decisions: no logged decision to evaluate{where} (the models' training window "
            "covers the whole log: evaluate on later data, or pass --since)"
        )
    return rows.reset_index(drop=True)


@dataclass(frozen=True)
class _Context:
    """Per-row state the policies decide on: stage, cart, timezone, candidate pairs."""

    stage: np.ndarray
    cart_open: np.ndarray
    timezone: np.ndarray
    eligible: np.ndarray


def _observed_context(
    observed: ObservedJourneys, catalog: pd.DataFrame, codes: np.ndarray, features: np.ndarray
) -> _Context:
    """Without truth: stage, cart and consents as the features read them off the events."""
    spec = observed.spec
    stage = features[:, spec.index("stage")].astype(np.int64)
    cart = features[:, spec.index("open_cart")] > 0
    consent = np.column_stack([features[:, spec.index(f"consent_live_{c.value}")] > 0
                               for c in CHANNELS])
    arrays = CatalogArrays.from_frame(catalog)
    eligible = eligible_actions(arrays, stage, cart, consent, None)
    customers = observed.customers
    timezone = np.asarray(customers.timezones, dtype=object)[customers.timezone[codes]]
    return _Context(stage, cart, timezone, eligible)


def _oracle_section(
    values: OracleValues, nextbest: PolicyActions, journeys: PolicyActions
) -> tuple[OracleSection, dict[str, PolicyActions]]:
    scan = values.scan()
    n = len(values)
    actions = {NEXTBEST: nextbest, NO_CONTACT: PolicyActions.no_action(n), JOURNEYS: journeys,
               ORACLE: scan.oracle_actions}
    result = {name: values.value(name, a) for name, a in actions.items()}
    result[RANDOM] = scan.random
    result[STATIC_RULE] = scan.static_rule
    random, oracle = result[RANDOM], result[ORACLE]
    share = {
        name: lift_share(v.metric(NET_VALUE), random.net_value, oracle.net_value)
        for name, v in result.items()
    }
    gain = {
        rival: result[NEXTBEST].revenue / result[rival].revenue - 1.0
        if result[rival].revenue > 0 else float("nan")
        for rival in (STATIC_RULE, JOURNEYS)
    }
    targets = {
        "share_of_oracle_lift": bool(share[NEXTBEST] >= TARGET_SHARE),
        "revenue_over_static_rule": bool(gain[STATIC_RULE] >= TARGET_REVENUE_GAIN),
        "revenue_over_journeys": bool(gain[JOURNEYS] >= TARGET_REVENUE_GAIN),
    }
    baseline = values.row_values(actions[NO_CONTACT])[0][NET_VALUE]
    stage_names = np.asarray([s.value for s in STAGES])[values.rows_.stage]
    frame = {"stage": stage_names}
    for name in (NEXTBEST, JOURNEYS, ORACLE):
        frame[name] = (values.row_values(actions[name])[0][NET_VALUE] - baseline) * 1000.0
    by_stage = (pd.DataFrame(frame).groupby("stage").agg(["mean", "size"]))
    by_stage = pd.DataFrame({
        "rows": by_stage[(NEXTBEST, "size")],
        **{f"{name}_net_lift": by_stage[(name, "mean")] for name in (NEXTBEST, JOURNEYS, ORACLE)},
    }).reset_index()
    section = OracleSection(result, share, gain, scan.static_action, by_stage,
                            scan.n_candidates_mean, targets)
    return section, actions


def evaluate_policy(
    journeys: Journeys,
    loaded: LoadedModels,
    truth: GroundTruth | None = None,
    config: EvaluationConfig | None = None,
    data_label: str = "in-memory journeys",
) -> EvaluationReport:
    """Run the whole evaluation (see the module docstring) and return its report."""
    config = config or EvaluationConfig()
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    since = pd.Timestamp(config.since) if config.since is not None else loaded.train_end
    if since is not None and since.tzinfo is None:
        since = since.tz_localize("UTC")
    if since is None:
        logger.warning("the models' training window is unknown: every logged decision is "
                       "evaluated, including any the models may have been trained on")
    # the models' own window ends at their last training row: evaluate strictly after it
    rows = evaluation_rows(journeys.decisions, since, config.decisions_per_customer,
                           inclusive=config.since is not None)
    observed = ObservedJourneys(journeys, loaded.spec)
    codes = observed.codes(rows[Col.CUSTOMER_ID])
    as_of = ts_to_ns(rows[Col.TS])
    features = observed.features(codes, as_of)
    oracle_values = None
    if truth is not None:
        states = truth.decision_states.set_index(Col.DECISION_ID)
        missing = ~rows[Col.DECISION_ID].isin(states.index)
        if missing.any():
            raise EvaluationError(
                f"{TRUTH_DIR}/decision_states: no state for decision(s) "
                f"{', '.join(rows.loc[missing, Col.DECISION_ID].astype(str).head(5))}"
            )
        row_states = states.loc[rows[Col.DECISION_ID]].reset_index()
        oracle_values = OracleValues(Oracle(truth, journeys.catalog), row_states,
                                     objective=config.objective)
        r = oracle_values.rows_
        context = _Context(r.stage, r.cart_open, r.timezone, oracle_values.eligible_)
        send_hours = oracle_values.send_hours
    else:
        context = _observed_context(observed, journeys.catalog, codes, features)
        send_hours = shipped_send_hours()
    seconds["prepare"] = time.perf_counter() - began

    engine = evaluation_engine(journeys.catalog, loaded.models, send_hours, loaded.arbitration,
                               seed=config.seed)
    nextbest = nextbest_actions(engine, observed, rows[Col.CUSTOMER_ID], rows[Col.TS],
                                context.timezone, context.stage, context.cart_open,
                                context.eligible, features=features, jobs=config.jobs)
    usage = channel_usage(observed.log, codes, as_of)
    journeys_actions = journey_actions(CatalogArrays.from_frame(journeys.catalog), context.stage,
                                       context.eligible, usage)
    seconds["decide"] = time.perf_counter() - began - seconds["prepare"]

    oracle_section = None
    actions = {NEXTBEST: nextbest, NO_CONTACT: PolicyActions.no_action(len(rows)),
               JOURNEYS: journeys_actions}
    if oracle_values is not None:
        oracle_section, actions = _oracle_section(oracle_values, nextbest, journeys_actions)
    seconds["oracle"] = time.perf_counter() - began - sum(seconds.values())

    log = load_decision_log(rows, journeys.events, journeys.catalog, context.timezone,
                            _attribution_hours(truth))
    ope, ope_truth = _ope_section(log, actions, context, send_hours, loaded, features,
                                  journeys.catalog, config, oracle_values, oracle_section)
    seconds["ope"] = time.perf_counter() - began - sum(seconds.values())
    lift = _lift_section(journeys)
    window = {"since": since.isoformat() if since is not None else "all",
              "first": str(rows[Col.TS].min()), "last": str(rows[Col.TS].max())}
    return EvaluationReport(
        data=data_label, models=dict(loaded.models.versions) | {"source": loaded.source},
        window=window, n_rows=len(rows), config=config, ope=ope, oracle=oracle_section,
        ope_truth=ope_truth, lift=lift, seconds=seconds,
    )


def _attribution_hours(truth: GroundTruth | None) -> float:
    return float(truth.config.attribution_hours if truth is not None
                 else DEFAULT_ATTRIBUTION_HOURS)


def _ope_section(
    log: DecisionLogData,
    actions: dict[str, PolicyActions],
    context: _Context,
    send_hours: tuple[int, ...],
    loaded: LoadedModels,
    features: np.ndarray,
    catalog: pd.DataFrame,
    config: EvaluationConfig,
    oracle_values: OracleValues | None,
    oracle_section: OracleSection | None,
) -> tuple[OpeResult, dict[str, dict[str, float]]]:
    wanted = config.policies or OPE_POLICIES
    if ORACLE in wanted and ORACLE not in actions:
        if config.policies is not None:
            raise EvaluationError("policy 'oracle': needs simulator truth (a truth/ folder)")
        wanted = tuple(p for p in wanted if p != ORACLE)
    names = [p for p in wanted if p in actions]
    targets = [TargetPolicy.deterministic(name, actions[name], log) for name in names]
    if RANDOM in wanted:
        # uniform over the candidate set: its probability of an in-set logged action is one
        # over the set's size
        n_pairs = context.eligible.reshape(len(log), -1).sum(axis=1)
        logged = log.actions
        rows = np.arange(len(log))
        in_set = np.where(
            logged.sends,
            context.eligible[rows, np.maximum(logged.message, 0), np.maximum(logged.channel, 0)]
            & np.isin(logged.hour, send_hours),
            True,
        )
        targets.append(TargetPolicy(RANDOM, in_set / (1.0 + n_pairs * len(send_hours))))
    if LOGGED in wanted:
        targets.append(TargetPolicy(LOGGED, log.propensity.copy()))
    conversion = loaded.models.conversion

    def predict(target: PolicyActions) -> np.ndarray:
        return np.asarray(conversion.predict_conversion(
            features, np.asarray(target.message), np.asarray(target.channel),
            np.asarray(target.hour)))

    ope = estimate_policies(log, targets, predict, action_costs(catalog),
                            n_bootstrap=config.n_bootstrap, confidence=config.confidence,
                            seed=config.seed)
    truth: dict[str, dict[str, float]] = {}
    if oracle_values is not None and oracle_section is not None:
        values = dict(oracle_section.values)
        values[LOGGED] = oracle_values.logged_value(LOGGED, log.decisions)
        for target in targets:
            truth[target.name] = {metric: values[target.name].metric(metric)
                                  for metric in (REVENUE, NET_VALUE, "conversions")}
    return ope, truth


def _lift_section(journeys: Journeys) -> pd.DataFrame | None:
    """The control-group lift report when the decisions carry global-control assignments."""
    decisions = journeys.decisions
    if ASSIGNMENT not in decisions.columns:
        return None
    if not (decisions[ASSIGNMENT].astype(str) == GLOBAL_CONTROL).any():
        return None
    from models.policy.lift import lift_report

    return lift_report(decisions, journeys.events)


def has_truth(data_dir: Path) -> bool:
    return (data_dir / TRUTH_DIR / "params.json").exists()


__all__ = ["EvaluationConfig", "EvaluationError", "EvaluationReport", "LoadedModels",
           "evaluate_policy", "evaluation_rows", "has_truth"]
