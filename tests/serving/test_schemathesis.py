"""Property-based API tests from the OpenAPI schema (schemathesis): whatever a client sends,
no 5xx, and every response matches the documented schema, status codes and content types."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from serving.app import create_app
from serving.model_follower import ModelFollower
from serving.settings import Settings
from tests.serving.conftest import ADMIN_KEY, MemoryRegistry, spec_of, write_data_dir
from tests.serving.tiny_models import tiny_scorer


def _app_and_client(root: Path) -> TestClient:
    data_dir = write_data_dir(root / "data")
    registry = MemoryRegistry()
    registry.register("1", tiny_scorer(seed=1, spec=spec_of(data_dir)))
    registry.point("1")
    app = create_app(
        Settings(
            state_dir=root / "state",
            data_dir=data_dir,
            api_keys="schemathesis-api",  # type: ignore[arg-type]
            admin_keys=ADMIN_KEY,  # type: ignore[arg-type]
            poll_interval_seconds=3600,
        ),
        follower=ModelFollower(registry.resolve, registry.load, poll_interval=3600),
    )
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def live_client(tmp_path_factory):
    with _app_and_client(tmp_path_factory.mktemp("schemathesis")) as client:
        yield client


# The schema does not depend on settings: build it without starting anything. The coverage
# phase is off to keep the suite fast (it costs ~20 s of CPU here); what it found (non-UTF-8
# bodies, the Allow header of a 405) has its own tests in test_api_errors.py.
schema = schemathesis.openapi.from_dict(
    create_app(
        Settings(auth_disabled=True), follower=ModelFollower(lambda t: None, lambda t, v: None)
    ).openapi(),
    config=SchemathesisConfig.from_dict(
        {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}}
    ),
)


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case, live_client):
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    headers = dict(kwargs.get("headers") or {})
    if "X-API-Key" in headers:  # a generated key would only ever test the 401 path
        headers["X-API-Key"] = ADMIN_KEY
    kwargs["headers"] = headers
    response = live_client.request(**{k: v for k, v in kwargs.items() if v is not None})
    # ignored_auth re-sends requests itself, which needs schemathesis' own transport (the 401
    # and 403 paths have their own tests). positive_data_acceptance cannot know the cross-field
    # rules JSON Schema does not express (a message event names its message; revenue only with
    # a conversion), which rightly answer 422.
    case.validate_response(
        response, excluded_checks=[checks.ignored_auth, checks.positive_data_acceptance]
    )
