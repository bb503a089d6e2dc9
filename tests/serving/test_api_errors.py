"""Every bad request gets a precise 4xx JSON body; real bugs a generic 500; never a traceback."""

from __future__ import annotations

from fastapi.testclient import TestClient

from serving.app import create_app
from serving.decision import Decider
from serving.model_follower import ModelFollower
from tests.serving.conftest import API, MemoryRegistry


def _problems(response) -> dict[str, str]:
    return {p["field"]: p["problem"] for p in response.json()["problems"]}


def test_malformed_json_names_the_position(client):
    response = client.post(
        "/v1/recommend",
        content=b'{"customer_id": ',
        headers=API | {"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert _problems(response)["body"].startswith("invalid JSON at character")


def test_missing_body_and_wrong_types_are_named(client):
    assert _problems(client.post("/v1/recommend", headers=API)) == {
        "body": "a JSON request body is required"
    }
    response = client.post(
        "/v1/recommend",
        headers=API,
        json={"customer_id": 17, "context": {"top_k": "3", "channels": ["email", "email"]}},
    )
    problems = _problems(response)
    assert problems["customer_id"] == "Input should be a valid string"
    assert problems["context.top_k"] == "Input should be a valid integer"
    response = client.post(
        "/v1/recommend", headers=API, json={"customer_id": "c1", "context": {"top_k": 99}}
    )
    assert _problems(response) == {"context.top_k": "Input should be less than or equal to 20"}
    response = client.post(
        "/v1/recommend",
        headers=API,
        json={"customer_id": "c1", "context": {"now": "2999-01-01T00:00:00Z"}},
    )
    assert "between 1970-01-01 and 2200-01-01" in _problems(response)["context.now"]


def test_oversized_bodies_get_413_before_parsing(settings, follower, tmp_path):
    small = settings.model_copy(update={"max_request_bytes": 2_000})
    with TestClient(create_app(small, follower=follower)) as c:
        events = [
            {
                "event_id": f"e{i}",
                "customer_id": "c1",
                "ts": "2024-05-01T00:00:00Z",
                "event_type": "page_view",
            }
            for i in range(100)
        ]
        response = c.post("/v1/events", json={"events": events}, headers=API)
        assert response.status_code == 413
        assert response.json() == {
            "error": "payload_too_large",
            "message": "request body larger than 2000 bytes",
            "problems": [],
        }

        def chunks():  # no Content-Length: the limit applies while reading
            for _ in range(10):
                yield b" " * 500

        chunked = c.post(
            "/v1/events", content=chunks(), headers=API | {"content-type": "application/json"}
        )
        assert chunked.status_code == 413
        assert chunked.json()["error"] == "payload_too_large"


def test_batch_limit_from_settings_is_a_422_naming_the_field(settings, follower):
    tight = settings.model_copy(update={"batch_max": 2, "events_batch_max": 1})
    with TestClient(create_app(tight, follower=follower)) as c:
        body = {"requests": [{"customer_id": f"c{i}"} for i in range(3)]}
        response = c.post("/v1/recommend/batch", json=body, headers=API)
        assert response.status_code == 422
        assert _problems(response) == {"requests": "at most 2 requests per batch"}
        events = {
            "events": [
                {
                    "event_id": f"e{i}",
                    "customer_id": "c1",
                    "ts": "2024-05-01T00:00:00Z",
                    "event_type": "page_view",
                }
                for i in range(2)
            ]
        }
        assert _problems(c.post("/v1/events", json=events, headers=API)) == {
            "events": "at most 1 events per call"
        }


def test_unknown_routes_and_methods_answer_json(client):
    missing = client.get("/v2/everything")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = client.get("/v1/recommend", headers=API)
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
    # two routes share this path: Allow must name the methods of both
    options = client.options("/v1/customers/c1", headers=API)
    assert options.status_code == 405 and options.headers["allow"] == "GET, PUT"


def test_a_body_that_is_not_utf8_is_a_422_not_a_400(client):
    response = client.post(
        "/v1/recommend",
        content=b'{"customer_id": "\x80"}',
        headers=API | {"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert _problems(response) == {"body": "the body is not UTF-8 encoded JSON"}


def test_a_bug_in_the_engine_is_a_generic_500_without_internals(settings, follower):
    class BrokenDecider(Decider):
        def decide_many(self, states, contexts, models):
            raise ZeroDivisionError("secret internal detail")

    app = create_app(settings, follower=follower, decider_factory=BrokenDecider.from_settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.post("/v1/recommend", json={"customer_id": "c1"}, headers=API)
        assert response.status_code == 500
        assert response.json() == {
            "error": "internal_error",
            "message": "internal error: the server could not answer this request",
            "problems": [],
        }
        assert "secret" not in response.text
        assert 'nextbest_errors_total{type="internal"} 1.0' in c.get("/metrics").text


def test_recommend_is_503_until_models_load_and_ready_says_why(settings):
    empty = MemoryRegistry()
    follower = ModelFollower(empty.resolve, empty.load, poll_interval=3600)
    app = create_app(settings, follower=follower)
    with TestClient(app) as c:
        response = c.post("/v1/recommend", json={"customer_id": "c1"}, headers=API)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["message"].startswith("models not loaded: no registered version")
        ready = c.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["models"]["loaded"] is False
        assert "nextbest-conversion@champion" in ready.json()["models"]["last_reload_error"]
        assert c.get("/health").json() == {"status": "ok"}


def test_without_a_catalog_recommend_is_503_and_not_ready(settings, follower):
    unseeded = settings.model_copy(update={"data_dir": None})
    with TestClient(create_app(unseeded, follower=follower)) as c:
        response = c.post("/v1/recommend", json={"customer_id": "c1"}, headers=API)
        assert response.status_code == 503
        assert "no decision engine" in response.json()["message"]
        assert "no catalog" in response.json()["message"]
        ready = c.get("/ready").json()
        assert ready["decision_engine"] is False and ready["ready"] is False
