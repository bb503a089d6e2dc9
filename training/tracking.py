"""Where runs and registered models live: MLflow with a local SQLite store unless told otherwise.

``MLFLOW_TRACKING_URI`` (or an explicit ``uri``) wins; otherwise the project keeps
``mlflow.db`` and ``mlartifacts/`` in the working directory, so nothing needs a server.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"


def default_tracking_uri(root: Path | None = None) -> str:
    root = (root or Path.cwd()).resolve()
    return f"sqlite:///{root / DEFAULT_DB}"


def configure_tracking(uri: str | None = None, experiment: str | None = None) -> str:
    """Point MLflow at ``uri`` (or the environment, or the local default) and pick the
    experiment, creating it with local artifact storage when it does not exist."""
    import mlflow

    resolved = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    if experiment:
        if mlflow.get_experiment_by_name(experiment) is None:
            location = None
            if resolved.startswith("sqlite:///"):
                db_path = Path(resolved.removeprefix("sqlite:///"))
                location = (db_path.parent / DEFAULT_ARTIFACTS).resolve().as_uri()
            mlflow.create_experiment(experiment, artifact_location=location)
        mlflow.set_experiment(experiment)
    logger.info("MLflow tracking at %s", resolved)
    return resolved
