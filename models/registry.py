"""The MLflow model registry as nextbest uses it: one registered model per task, followed by alias.

Training registers each task's model as ``nextbest-<task>`` (a pyfunc model whose directory holds
the fitted estimator at ``artifacts/estimator.joblib``) and promotes a version by moving the
``champion`` alias. Serving resolves the alias and loads the estimator itself with joblib: the
pyfunc wrapper is for analysts and batch scoring, never on the request path.

``import mlflow`` is slow and heavy, so it happens inside the functions that need it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

logger = logging.getLogger(__name__)

#: The models serving needs, in the order they are loaded and reported.
TASKS: Final[tuple[str, ...]] = ("conversion", "churn", "channel", "sendtime")
MODEL_PREFIX: Final = "nextbest-"
#: Key of the estimator in the pyfunc model's ``artifacts`` and its file name there.
ESTIMATOR_KEY: Final = "estimator"
ESTIMATOR_FILE: Final = "estimator.joblib"
#: Where ``mlflow.pyfunc.log_model(artifacts={"estimator": ...})`` puts it in the model folder.
ESTIMATOR_PATH: Final = f"artifacts/{ESTIMATOR_FILE}"
CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"


class ModelLoadError(RuntimeError):
    """A registered model version cannot be turned into a usable estimator."""


def model_name(task: str) -> str:
    """Registered model name of a task, e.g. ``nextbest-churn``."""
    if task not in TASKS:
        raise ValueError(f"unknown model task {task!r}; expected one of {', '.join(TASKS)}")
    return f"{MODEL_PREFIX}{task}"


def registry_client(tracking_uri: str | None = None) -> MlflowClient:
    """A client on ``tracking_uri`` (used for the registry too), without touching MLflow's
    process-wide defaults."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _is_missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def alias_version(client: MlflowClient, task: str, alias: str) -> str | None:
    """The version an alias points at (one registry call), or ``None`` when the model or the
    alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(model_name(task))
    except MlflowException as exc:
        if _is_missing(exc):
            return None
        raise
    version = registered.aliases.get(alias)
    return None if version is None else str(version)


def resolve_alias(client: MlflowClient, task: str, alias: str) -> ModelVersion | None:
    """The model version behind ``nextbest-<task>@<alias>``, or ``None`` if there is none."""
    version = alias_version(client, task, alias)
    if version is None:
        return None
    return client.get_model_version(model_name(task), version)


def set_alias(client: MlflowClient, task: str, alias: str, version: str | int) -> None:
    """Point ``alias`` at ``version`` of the task's registered model (e.g. a promotion)."""
    client.set_registered_model_alias(model_name(task), alias, str(version))
    logger.info("%s@%s -> version %s", model_name(task), alias, version)


def _estimator_path(model_dir_uri: str, tracking_uri: str | None, tmp: str) -> str:
    """Where the pyfunc's ``estimator`` artifact sits inside the model folder, read from its
    ``MLmodel`` (MLflow keeps the logged file's own name); the conventional path otherwise."""
    import mlflow
    import yaml

    try:
        mlmodel = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{model_dir_uri}/MLmodel", dst_path=tmp, tracking_uri=tracking_uri
        )
        spec = yaml.safe_load(Path(mlmodel).read_text())
        path = spec["flavors"]["python_function"]["artifacts"][ESTIMATOR_KEY]["path"]
    except Exception:  # no MLmodel, another flavour, no artifacts section: use the convention
        return ESTIMATOR_PATH
    return str(path)


def load_estimator(task: str, version: str | int, *, tracking_uri: str | None = None) -> Any:
    """Download only the ``estimator`` artifact of a registered version and unpickle it.

    Raises ``ModelLoadError`` naming the model, version and what is wrong.
    """
    import joblib
    import mlflow
    from mlflow.exceptions import MlflowException

    name = model_name(task)
    client = registry_client(tracking_uri)
    try:
        model_uri = client.get_model_version_download_uri(name, str(version)).rstrip("/")
    except MlflowException as exc:
        raise ModelLoadError(f"{name} version {version}: not in the registry ({exc})") from exc
    with tempfile.TemporaryDirectory(prefix="nextbest-model-") as tmp:
        relative = _estimator_path(model_uri, tracking_uri, tmp)
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{model_uri}/{relative}",
                dst_path=tmp,
                tracking_uri=tracking_uri,
            )
        except (MlflowException, OSError) as exc:
            raise ModelLoadError(
                f"{name} version {version}: no {relative} in the registered model at "
                f"{model_uri} (expected a pyfunc model logged with "
                f"artifacts={{'{ESTIMATOR_KEY}': '.../{ESTIMATOR_FILE}'}})"
            ) from exc
        try:
            estimator = joblib.load(Path(local))
        except Exception as exc:  # unpickling can raise anything the pickled classes raise
            raise ModelLoadError(
                f"{name} version {version}: {relative} cannot be loaded "
                f"({type(exc).__name__}: {exc})"
            ) from exc
    logger.info("loaded %s version %s (%s)", name, version, type(estimator).__name__)
    return estimator
