"""The MLflow registry helpers and the model follower against a real temporary MLflow registry
(SQLite store, local artifacts) holding small real pyfunc models in the training layout."""

from __future__ import annotations

import time

import joblib
import numpy as np
import pytest

from models.registry import (
    CHAMPION,
    ESTIMATOR_KEY,
    TASKS,
    ModelLoadError,
    load_estimator,
    model_name,
    registry_client,
    resolve_alias,
    set_alias,
)
from serving.model_follower import ModelFollower, protocol_smoke_check, registry_follower
from tests.serving.tiny_models import TinyScorer, tiny_scorer

mlflow = pytest.importorskip("mlflow")


class EstimatorPyfunc(mlflow.pyfunc.PythonModel):
    """The shape of the training pipeline's wrapper: the estimator travels as an artifact."""

    def load_context(self, context):
        self.estimator = joblib.load(context.artifacts[ESTIMATOR_KEY])

    def predict(self, context, model_input, params=None):
        return self.estimator.predict_churn(np.asarray(model_input, dtype=float))


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Versions 1..4 of every task: good, good (same model, so a move is visible by version
    alone), artifact missing, fails the smoke check."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    # Both: an earlier test may have pointed the registry elsewhere (configure_tracking does).
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment(
        "serving-tests", artifact_location=(root / "art").as_uri()
    )
    uris = []
    for index, estimator in enumerate([tiny_scorer(1), None, tiny_scorer(3, scale=4.0)]):
        artifacts = {}
        if estimator is not None:
            path = root / str(index) / "estimator.joblib"
            path.parent.mkdir()
            joblib.dump(estimator, path)
            artifacts = {ESTIMATOR_KEY: str(path)}
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=EstimatorPyfunc(),
                artifacts=artifacts,
                pip_requirements=[],
            )
        uris.append(info.model_uri)
    for uri_of_version in (uris[0], uris[0], uris[1], uris[2]):
        for task in TASKS:
            mlflow.register_model(uri_of_version, model_name(task))
    client = registry_client(uri)
    for task in TASKS:
        set_alias(client, task, CHAMPION, 1)
    yield uri, client
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def _point(client, version: int) -> None:
    for task in TASKS:
        set_alias(client, task, CHAMPION, version)


def test_model_names_follow_the_task():
    assert model_name("sendtime") == "nextbest-sendtime"
    with pytest.raises(ValueError, match="unknown model task 'uplift'"):
        model_name("uplift")


def test_resolve_alias_and_load_the_estimator_artifact(registry):
    uri, client = registry
    _point(client, 1)
    version = resolve_alias(client, "churn", CHAMPION)
    assert version is not None and str(version.version) == "1"
    assert resolve_alias(client, "churn", "no-such-alias") is None
    estimator = load_estimator("churn", version.version, tracking_uri=uri)
    assert isinstance(estimator, TinyScorer)
    expected = tiny_scorer(1).predict_churn(np.ones((2, 3)))
    np.testing.assert_allclose(estimator.predict_churn(np.ones((2, 3))), expected)


def test_a_version_without_the_estimator_artifact_is_a_clear_load_error(registry):
    uri, _ = registry
    with pytest.raises(ModelLoadError, match="nextbest-churn version 3: no artifacts/estimator"):
        load_estimator("churn", 3, tracking_uri=uri)
    with pytest.raises(ModelLoadError, match="version 99: not in the registry"):
        load_estimator("churn", 99, tracking_uri=uri)


def test_follower_swaps_when_the_alias_moves_and_keeps_the_old_set_when_it_is_broken(registry):
    uri, client = registry
    _point(client, 1)
    swaps = []
    follower = registry_follower(uri, CHAMPION, 3600, on_swap=swaps.append)
    assert follower.start().status == "loaded"
    first = follower.current
    assert dict(first.versions) == dict.fromkeys(TASKS, "1")

    _point(client, 2)
    assert follower.refresh().status == "loaded"
    assert dict(follower.current.versions) == dict.fromkeys(TASKS, "2")
    assert [dict(s.versions)["churn"] for s in swaps] == ["1", "2"]

    _point(client, 3)  # artifact missing
    result = follower.refresh()
    assert result.status == "failed" and "no artifacts/estimator.joblib" in result.error
    assert dict(follower.current.versions) == dict.fromkeys(TASKS, "2")
    assert follower.last_reload_error == result.error

    _point(client, 4)  # loads, but scores probabilities above 1
    result = follower.refresh()
    assert result.status == "failed" and "outside [0, 1]" in result.error
    assert dict(follower.current.versions) == dict.fromkeys(TASKS, "2")

    _point(client, 2)
    assert follower.refresh().status == "unchanged"
    assert follower.last_reload_error is None
    follower.stop()


def test_the_poll_thread_picks_up_a_moved_alias_without_a_request(registry):
    uri, client = registry
    _point(client, 1)
    follower = registry_follower(uri, CHAMPION, poll_interval=0.05)
    follower.start()
    _point(client, 2)
    deadline = time.monotonic() + 10
    while set(follower.current.versions.values()) != {"2"} and time.monotonic() < deadline:
        time.sleep(0.02)
    follower.stop()
    assert dict(follower.current.versions) == dict.fromkeys(TASKS, "2")


def test_only_changed_tasks_are_reloaded_and_the_set_is_checked_as_a_whole():
    loads: list[tuple[str, str]] = []
    versions = dict.fromkeys(TASKS, "1")
    scorers = {"1": tiny_scorer(1), "2": tiny_scorer(2)}

    def load(task: str, version: str):
        loads.append((task, version))
        return scorers[version]

    follower = ModelFollower(versions.get, load, protocol_smoke_check)
    follower.refresh()
    versions["churn"] = "2"
    follower.refresh()
    assert loads[len(TASKS) :] == [("churn", "2")]
    assert follower.current["conversion"] is scorers["1"]
    assert follower.current["churn"] is scorers["2"]


def test_the_smoke_check_rejects_estimators_that_do_not_fit_the_protocols():
    class NotAScorer:
        n_features_in_ = 3

    follower = ModelFollower(
        lambda task: "1", lambda task, version: NotAScorer(), protocol_smoke_check
    )
    result = follower.refresh()
    assert result.status == "failed"
    assert "does not implement ConversionScorer" in result.error
    assert follower.current is None
