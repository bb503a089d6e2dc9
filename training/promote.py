"""Registry aliases: the ``challenger`` a run registers, the gate that may make it ``champion``,
and promotion by hand.

The gate compares like with like: the current champion's estimator is loaded and re-scored on
the very validation rows the challenger was just evaluated on, so a change of data window never
flatters either side. The challenger is promoted when its primary metric is at least as good
(within ``tolerance``) or when there is no champion yet. Every decision is written down with both
figures: as metrics and tags of the training run and as tags of the model version, so the
MLflow UI shows why an alias did or did not move.
"""

from __future__ import annotations

import getpass
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from models.pyfunc import load_estimator
from training.datasets import TaskDataset
from training.metrics import evaluate, primary_metric
from training.tasks import Task

logger = logging.getLogger(__name__)

CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"
PROMOTED: Final = "promoted"
KEPT: Final = "kept_champion"
#: Longest error detail kept in a reason (tags have a size limit; the log has the rest).
_MAX_DETAIL: Final = 300
#: Tag every nextbest run carries to say what it is (training or an audit record of a promotion).
KIND_TAG: Final = "nextbest.kind"


class PromotionError(ValueError):
    """A promotion cannot be done as asked (unknown model, version or alias)."""


@dataclass(frozen=True)
class GateDecision:
    """Outcome of the promotion gate for one newly registered version."""

    model_name: str
    challenger_version: str
    promoted: bool
    reason: str
    metric: str
    greater_is_better: bool
    challenger_value: float
    champion_version: str | None
    champion_value: float | None
    tolerance: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PromotionRecord:
    """An alias moved by hand."""

    model_name: str
    version: str
    alias: str
    previous_version: str | None
    audit_run_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def alias_version(client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    """The version behind ``alias``, or ``None`` when the alias (or the model) does not exist."""
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def _is_at_least_as_good(
    challenger: float, champion: float, greater_is_better: bool, tolerance: float
) -> bool:
    if not math.isfinite(challenger):
        return False
    if not math.isfinite(champion):
        return True
    if greater_is_better:
        return challenger >= champion - tolerance
    return challenger <= champion + tolerance


def _score_champion(
    client: MlflowClient, task: Task, champion: ModelVersion, valid: TaskDataset, metric: str
) -> tuple[float | None, str | None]:
    """The champion's metric on ``valid``, or why it cannot be computed."""
    try:
        estimator = load_estimator(client, champion.name, champion.version)
    except Exception as exc:  # a missing or unreadable artifact: the champion cannot compete
        detail = str(exc)[:_MAX_DETAIL]
        return None, f"champion v{champion.version} could not be loaded ({detail})"
    champion_features = list(getattr(estimator, "feature_names_", []))
    if champion_features != list(valid.feature_names):
        return None, (
            f"champion v{champion.version} was trained on different features "
            f"({len(champion_features)} vs {len(valid.feature_names)} columns), so it cannot be "
            "scored on this run's validation rows; promote by hand if the new features are wanted"
        )
    return float(evaluate(task, estimator, valid)[metric]), None


def run_gate(
    client: MlflowClient,
    task: Task,
    model_name: str,
    challenger_version: str,
    challenger_metrics: dict[str, float],
    valid: TaskDataset,
    tolerance: float,
) -> GateDecision:
    """Decide whether the new version takes the ``champion`` alias (it does not move it)."""
    metric, greater_is_better = primary_metric(task)
    challenger_value = float(challenger_metrics[metric])
    champion = alias_version(client, model_name, CHAMPION)
    undecided = GateDecision(
        model_name=model_name,
        challenger_version=str(challenger_version),
        promoted=False,
        reason="",
        metric=metric,
        greater_is_better=greater_is_better,
        challenger_value=challenger_value,
        champion_version=None if champion is None else str(champion.version),
        champion_value=None,
        tolerance=tolerance,
    )
    if champion is None:
        return replace(undecided, promoted=True, reason="no champion yet")
    champion_value, problem = _score_champion(client, task, champion, valid, metric)
    if champion_value is None:
        return replace(undecided, reason=problem or "the champion could not be scored")
    better = _is_at_least_as_good(challenger_value, champion_value, greater_is_better, tolerance)
    direction = "higher" if greater_is_better else "lower"
    comparison = (
        f"{metric} {challenger_value:.4f} vs champion v{champion.version} {champion_value:.4f} "
        f"on the same validation rows ({direction} is better, tolerance {tolerance:g})"
    )
    return replace(
        undecided,
        promoted=better,
        champion_value=champion_value,
        reason=("at least as good: " if better else "worse: ") + comparison,
    )


def apply_gate(client: MlflowClient, decision: GateDecision, run_id: str) -> None:
    """Record the decision on the run and the version, and move ``champion`` if it passed."""
    outcome = PROMOTED if decision.promoted else KEPT
    metrics = {f"gate_challenger_{decision.metric}": decision.challenger_value}
    if decision.champion_value is not None:
        metrics[f"gate_champion_{decision.metric}"] = decision.champion_value
    tags = {
        "gate.decision": outcome,
        "gate.reason": decision.reason,
        "gate.metric": decision.metric,
        "gate.challenger_value": f"{decision.challenger_value:.6g}",
        "gate.champion_version": decision.champion_version or "none",
        "gate.champion_value": (
            "none" if decision.champion_value is None else f"{decision.champion_value:.6g}"
        ),
        "gate.tolerance": f"{decision.tolerance:g}",
    }
    now_ms = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, now_ms, 0) for key, value in metrics.items()
                 if math.isfinite(value)],
        tags=[RunTag(key, value) for key, value in tags.items()],
    )
    # The registry has no batch call; these few tags make the decision visible on the version.
    for key, value in tags.items():
        client.set_model_version_tag(
            decision.model_name, decision.challenger_version, key, value
        )
    client.set_model_version_tag(
        decision.model_name, decision.challenger_version, "gate.run_id", run_id
    )
    if decision.promoted:
        client.set_registered_model_alias(
            decision.model_name, CHAMPION, decision.challenger_version
        )
    logger.info(
        "%s v%s: %s (%s)", decision.model_name, decision.challenger_version, outcome,
        decision.reason,
    )


def _existing_version(client: MlflowClient, model_name: str, version: str) -> ModelVersion:
    try:
        return client.get_model_version(model_name, version)
    except MlflowException as exc:
        try:
            versions = list(client.search_model_versions(f"name = '{model_name}'"))
        except MlflowException:
            versions = []
        if not versions:
            raise PromotionError(f"no registered model named {model_name!r}") from exc
        known = ", ".join(str(v) for v in sorted(int(v.version) for v in versions))
        raise PromotionError(
            f"{model_name} has no version {version} (versions: {known})"
        ) from exc


def promote_by_hand(
    client: MlflowClient,
    model_name: str,
    version: str | None = None,
    alias: str = CHAMPION,
) -> PromotionRecord:
    """Point ``alias`` at ``version`` (default: the current challenger), and log it.

    The record is kept twice: as tags of the promoted version and as a small audit run in the
    experiment that trained it (tagged ``nextbest.kind=promotion``), so the history of who moved
    which alias, when and from what, is browsable in MLflow.
    """
    if version is None:
        challenger = alias_version(client, model_name, CHALLENGER)
        if challenger is None:
            raise PromotionError(
                f"{model_name} has no '{CHALLENGER}' version; pass --version explicitly"
            )
        version = str(challenger.version)
    target = _existing_version(client, model_name, str(version))
    previous = alias_version(client, model_name, alias)
    previous_version = None if previous is None else str(previous.version)
    client.set_registered_model_alias(model_name, alias, str(target.version))
    when = datetime.now(UTC).isoformat(timespec="seconds")
    who = _user()
    for key, value in {
        f"{alias}.promoted_by": "hand",
        f"{alias}.promoted_at": when,
        f"{alias}.promoted_by_user": who,
        f"{alias}.replaced_version": previous_version or "none",
    }.items():
        client.set_model_version_tag(model_name, str(target.version), key, value)
    audit_run_id = _log_audit_run(client, target, alias, previous_version, when, who)
    logger.info(
        "%s: alias %s moved by hand from %s to v%s", model_name, alias,
        f"v{previous_version}" if previous_version else "nothing", target.version,
    )
    return PromotionRecord(model_name, str(target.version), alias, previous_version, audit_run_id)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return "unknown"


def _log_audit_run(
    client: MlflowClient,
    target: ModelVersion,
    alias: str,
    previous_version: str | None,
    when: str,
    who: str,
) -> str | None:
    if not target.run_id:
        return None
    try:
        experiment_id = client.get_run(target.run_id).info.experiment_id
    except MlflowException:
        return None
    run = client.create_run(
        experiment_id,
        run_name=f"promote-{target.name}-v{target.version}-{alias}",
        tags={
            KIND_TAG: "promotion",
            "promotion.model": target.name,
            "promotion.version": str(target.version),
            "promotion.alias": alias,
            "promotion.previous_version": previous_version or "none",
            "promotion.by": "hand",
            "promotion.user": who,
            "promotion.at": when,
            "promotion.source_run_id": target.run_id,
        },
    )
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def registry_client(tracking_uri: str | None = None) -> MlflowClient:
    """A client on the configured tracking/registry store (see ``training.tracking``)."""
    from training.tracking import configure_tracking

    resolved = configure_tracking(tracking_uri)
    return MlflowClient(tracking_uri=resolved, registry_uri=mlflow.get_registry_uri())
