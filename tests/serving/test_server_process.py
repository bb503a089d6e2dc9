"""The real server: `nextbest serve` as a subprocess (uvicorn) on a free port, over HTTP.

The model registry is unreachable here (models come with the end-to-end test of the trained
service), so the server must start anyway, say it is not ready, and serve everything else.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import ADMIN_KEY, API_KEY, event, write_data_dir
from tests.serving.e2e_support import free_port, stop_process

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 120  # generous: the CPU is shared and `import mlflow` is slow


@contextmanager
def running_server(tmp_path: Path, port: int) -> Iterator[httpx.Client]:
    env = {
        **os.environ,
        "NEXTBEST_STATE_DIR": str(tmp_path / "state"),
        "NEXTBEST_API_KEYS": API_KEY,
        "NEXTBEST_ADMIN_KEYS": ADMIN_KEY,
        "NEXTBEST_MAX_REQUEST_BYTES": "4096",
        "NEXTBEST_POLL_INTERVAL_SECONDS": "3600",
        # a registry that refuses connections, and no retries against it
        "NEXTBEST_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    command = [
        sys.executable, "-m", "training.cli", "serve", "--port", str(port),
        "--data", str(tmp_path / "data"),
    ]  # fmt: skip
    log = (tmp_path / f"server-{port}.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, (tmp_path / f"server-{port}.log").read_text()
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        stop_process(process)
        log.close()


def test_the_real_server_over_http_and_across_a_restart(tmp_path):
    write_data_dir(tmp_path / "data")
    api, admin = {"X-API-Key": API_KEY}, {"X-API-Key": ADMIN_KEY}
    batch = {"events": [event("s1"), event("s2", event_type="unsubscribe", channel="sms")]}
    with running_server(tmp_path, free_port()) as http:
        assert http.get("/health").json() == {"status": "ok"}
        ready = http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False and ready.json()["store"] == "ok"
        assert "cannot read the model registry" in ready.json()["models"]["last_reload_error"]
        refused = http.post("/v1/recommend", json={"customer_id": "c1"}, headers=api)
        assert refused.status_code == 503 and "models not loaded" in refused.json()["message"]

        assert http.post("/v1/events", json=batch).status_code == 401
        assert http.post("/admin/reload", headers=api).status_code == 403
        assert http.post("/v1/events", json=batch, headers=api).json() == {
            "accepted": 2,
            "duplicates": 0,
        }
        too_big = http.post("/v1/events", headers=api, json={"events": [event("x")] * 40})
        assert too_big.status_code == 413 and too_big.json()["error"] == "payload_too_large"
        malformed = http.post(
            "/v1/events", headers=api | {"content-type": "application/json"}, content=b"{nope"
        )
        assert malformed.status_code == 422
        assert malformed.json()["problems"][0]["field"] == "body"
        assert http.get("/v1/customers/c2", headers=api).json()["timezone"] == "America/New_York"
        assert "nextbest_events_total" in http.get("/metrics").text
        assert http.post("/admin/reload", headers=admin).json()["status"] == "failed"

    # acknowledged events are still there after a restart: the same batch is all duplicates
    with running_server(tmp_path, free_port()) as http:
        assert http.post("/v1/events", json=batch, headers=api).json() == {
            "accepted": 0,
            "duplicates": 2,
        }
