"""The MLflow pyfunc wrapper every trained nextbest model is logged and registered as.

Layout of a registered version (what serving and ``mlflow models serve`` rely on)::

    model/
      MLmodel, python_model.pkl, input_example.json, ...
      artifacts/estimator.joblib   <- the fitted estimator itself

Serving loads ``artifacts/estimator.joblib`` and calls the scorer protocols
(``models.interfaces``) on numpy; the pyfunc's ``predict`` is the generic, DataFrame-in /
DataFrame-out face of the same estimator for MLflow tooling (``mlflow models serve``,
``mlflow.pyfunc.spark_udf``, notebooks). Both call the same protocol methods, so they agree.

Inputs, per task: the estimator's ``feature_names_`` columns (for conversion these end with the
three action columns), plus for send time the 168 hour-of-week profile columns ``how_000`` ..
``how_167``. Outputs: ``p_conversion``; ``p_churn``; ``p_<channel>`` per channel (NaN when
history is too thin); ``p_how_000`` .. ``p_how_167`` and ``best_hour_of_week`` for send time.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from features.contract import CHANNELS
from models.conversion import ACTION_COLUMNS
from models.interfaces import ChannelScorer, ChurnScorer, ConversionScorer, SendTimeScorer

logger = logging.getLogger(__name__)

#: Name of the estimator in the pyfunc's ``artifacts`` (and its file under ``artifacts/``).
ESTIMATOR_ARTIFACT: Final = "estimator"
ESTIMATOR_FILE: Final = "estimator.joblib"
#: Where the logged model lives inside its run / logged-model record.
MODEL_NAME: Final = "model"

HOURS_PER_WEEK: Final = 168
#: Hour-of-week profile input columns of the send-time model (Monday 00:00 local = 0).
HOUR_PROFILE_COLUMNS: Final[tuple[str, ...]] = tuple(
    f"how_{hour:03d}" for hour in range(HOURS_PER_WEEK)
)

P_CONVERSION: Final = "p_conversion"
P_CHURN: Final = "p_churn"
CHANNEL_OUTPUT_COLUMNS: Final[tuple[str, ...]] = tuple(f"p_{c.value}" for c in CHANNELS)
HOUR_OUTPUT_COLUMNS: Final[tuple[str, ...]] = tuple(f"p_{c}" for c in HOUR_PROFILE_COLUMNS)
BEST_HOUR: Final = "best_hour_of_week"

#: Scorer protocol each task's estimator must satisfy.
SCORER_PROTOCOLS: Final[dict[str, Any]] = {
    "conversion": ConversionScorer,
    "churn": ChurnScorer,
    "channel": ChannelScorer,
    "sendtime": SendTimeScorer,
}
#: Packages a model needs at load time (pinned to what trained it); listing them avoids MLflow's
#: slow requirement inference, which loads the model in a subprocess.
_RUNTIME_PACKAGES: Final = ("mlflow", "lightgbm", "scikit-learn", "numpy", "pandas", "joblib")


class ModelInputError(ValueError):
    """A scoring frame lacks columns the model needs."""


def _check_task(task: str) -> str:
    if task not in SCORER_PROTOCOLS:
        known = ", ".join(SCORER_PROTOCOLS)
        raise ValueError(f"unknown task {task!r}: expected one of {known}")
    return task


def input_columns(task: str, feature_names: Sequence[str]) -> list[str]:
    """Columns a task's pyfunc expects, in order."""
    columns = list(feature_names)
    if _check_task(task) == "sendtime":
        columns += list(HOUR_PROFILE_COLUMNS)
    return columns


def score_matrix(
    task: str, estimator: Any, X: np.ndarray, hour_profile: np.ndarray | None = None
) -> np.ndarray:
    """The task's scores for rows of ``X`` (columns ``feature_names_``), via its scorer protocol.

    Conversion and churn give one probability per row; channel one per channel (``CHANNELS``
    order, NaN rows for "not enough data"); send time one per hour of the week, which needs the
    rows' ``hour_profile`` (n, 168).
    """
    protocol = SCORER_PROTOCOLS[_check_task(task)]
    if not isinstance(estimator, protocol):
        raise TypeError(f"{type(estimator).__name__} does not implement {protocol.__name__}")
    matrix = np.ascontiguousarray(X, dtype=np.float64)
    if task == "conversion":
        n_actions = len(ACTION_COLUMNS)
        features, codes = matrix[:, :-n_actions], matrix[:, -n_actions:].astype(np.int64)
        scores = estimator.predict_conversion(features, codes[:, 0], codes[:, 1], codes[:, 2])
    elif task == "churn":
        scores = estimator.predict_churn(matrix)
    elif task == "channel":
        scores = estimator.predict_channels(matrix)
    else:
        if hour_profile is None:
            raise ValueError("the sendtime model needs the rows' hour-of-week profile")
        scores = estimator.predict_hours(matrix, np.asarray(hour_profile, dtype=np.float64))
    return np.asarray(scores, dtype=np.float64)


def score_frame(task: str, estimator: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Score a DataFrame of input columns (see ``input_columns``); a DataFrame of scores back."""
    feature_names = list(estimator.feature_names_)
    missing = [c for c in input_columns(task, feature_names) if c not in frame.columns]
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        shown = ", ".join(missing[:10]) + more
        raise ModelInputError(f"the {task} model needs input column(s) {shown}")
    matrix = frame[feature_names].to_numpy(dtype=np.float64)
    profile = None
    if task == "sendtime":
        profile = frame[list(HOUR_PROFILE_COLUMNS)].to_numpy(dtype=np.float64)
    scores = score_matrix(task, estimator, matrix, profile)
    if task == "conversion":
        return pd.DataFrame({P_CONVERSION: scores})
    if task == "churn":
        return pd.DataFrame({P_CHURN: scores})
    if task == "channel":
        return pd.DataFrame(scores, columns=list(CHANNEL_OUTPUT_COLUMNS))
    scores_frame = pd.DataFrame(scores, columns=list(HOUR_OUTPUT_COLUMNS))
    scores_frame[BEST_HOUR] = np.argmax(scores, axis=1).astype(np.int64)
    return scores_frame


class NextbestPyfunc(PythonModel):  # type: ignore[misc]
    """DataFrame-in, DataFrame-out face of a fitted nextbest estimator (see module docs)."""

    def __init__(self, task: str) -> None:
        self.task = _check_task(task)

    def load_context(self, context: PythonModelContext) -> None:
        self.estimator_ = joblib.load(context.artifacts[ESTIMATOR_ARTIFACT])

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        return score_frame(self.task, self.estimator_, pd.DataFrame(model_input))


class _DropPickleWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "CloudPickle" not in record.getMessage()


@contextmanager
def _quiet_pickle_warning() -> Iterator[None]:
    """MLflow warns on every Python model that it is pickled. ``NextbestPyfunc`` is pickled by
    reference to this installed module (a few bytes, no code), so the warning would alarm on
    every run without informing; everything else MLflow says still shows."""
    pyfunc_logger = logging.getLogger("mlflow.pyfunc")
    drop = _DropPickleWarning()
    pyfunc_logger.addFilter(drop)
    try:
        yield
    finally:
        pyfunc_logger.removeFilter(drop)


def _pinned_requirements() -> list[str]:
    pins = []
    for package in _RUNTIME_PACKAGES:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def log_pyfunc_model(
    task: str,
    estimator: Any,
    example: pd.DataFrame,
    registered_model_name: str | None,
    workdir: Path,
) -> ModelInfo:
    """Log ``estimator`` as a pyfunc model of the active run (and register it when named).

    ``example`` is a few real input rows: they become the input example and, with the scores
    the estimator gives them, the model signature.
    """
    estimator_path = workdir / ESTIMATOR_FILE
    joblib.dump(estimator, estimator_path)
    example = example[input_columns(task, estimator.feature_names_)].astype(np.float64)
    with warnings.catch_warnings():
        # The only integer column is an output (best_hour_of_week), never missing: MLflow's
        # hint about integer inputs with missing values does not apply.
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        signature = infer_signature(example, score_frame(task, estimator, example))
    with _quiet_pickle_warning():
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME,
        python_model=NextbestPyfunc(task),
            artifacts={ESTIMATOR_ARTIFACT: str(estimator_path)},
            signature=signature,
            input_example=example,
            registered_model_name=registered_model_name,
            pip_requirements=_pinned_requirements(),
        )


def load_estimator(client: MlflowClient, model_name: str, version: str | int) -> Any:
    """The fitted estimator of a registered model version.

    Only ``artifacts/estimator.joblib`` is downloaded and unpickled; no pyfunc machinery (and
    none of its environment checks) is involved.
    """
    model_uri = client.get_model_version_download_uri(model_name, str(version)).rstrip("/")
    with tempfile.TemporaryDirectory(prefix="nextbest-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{model_uri}/artifacts/{ESTIMATOR_FILE}",
            dst_path=tmp,
            tracking_uri=client.tracking_uri,
        )
        return joblib.load(local)
