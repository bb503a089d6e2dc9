"""``nextbest demo`` (what ``make run`` does): simulate, train, register, serve, ask once.

1. Simulate journeys into ``data/sim`` — skipped when a simulation with the same parameters is
   already there (its ``truth/params.json`` says which).
2. Train all four models with ``training/configs/fast.yaml`` into the project's MLflow store
   (``./mlflow.db``, ``./mlartifacts``); the promotion gate makes them champions.
3. Start ``nextbest serve`` on the data and the store and wait until ``GET /ready`` answers.
   When the service is ready, send one example ``POST /v1/recommend``, show the decision and
   keep serving until Ctrl-C. When it reports that no decision engine is wired in yet, stop
   with a message saying so (the trained models stay registered).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rich.console import Console

from training.tracking import default_tracking_uri

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR: Final = Path("data/sim")
DEMO_CONFIG: Final = "fast"
_READY_TIMEOUT_S: Final = 120.0
_POLL_S: Final = 0.5
#: Recently active customers the example request is chosen from.
_EXAMPLE_CANDIDATES: Final = 50


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class DemoOptions:
    customers: int = 3_000
    days: int = 60
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = DEFAULT_DATA_DIR
    tracking_uri: str = field(default_factory=default_tracking_uri)
    serve: bool = True


def ensure_simulation(options: DemoOptions, console: Console) -> bool:
    """Simulate into ``options.data_dir`` unless the same simulation is there; True if reused."""
    from features.simulator import SimulationConfig, simulate, write_simulation
    from features.simulator.truth import PARAMS_FILE, TRUTH_DIR

    wanted = SimulationConfig(n_customers=options.customers, days=options.days, seed=options.seed)
    params = options.data_dir / TRUTH_DIR / PARAMS_FILE
    if params.exists():
        try:
            existing = SimulationConfig.model_validate(json.loads(params.read_text()))
        except (ValueError, OSError):
            existing = None
        if existing == wanted:
            console.print(f"[dim]reusing the simulation in {options.data_dir} "
                          f"({options.customers:,} customers x {options.days} days, "
                          f"seed {options.seed})[/]")
            return True
    console.print(f"simulating {options.customers:,} customers x {options.days} days "
                  f"into {options.data_dir} …")
    write_simulation(simulate(wanted, progress=True), options.data_dir)
    return False


def _get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"{}")


def _post(url: str, body: dict[str, Any], timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"{}")


def _start_server(options: DemoOptions) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["NEXTBEST_MLFLOW_TRACKING_URI"] = options.tracking_uri
    # Local demo only: the service listens on localhost without API keys.
    env["NEXTBEST_AUTH_DISABLED"] = "true"
    command = [
        sys.executable, "-m", "training.cli", "serve", "--host", options.host,
        "--port", str(options.port), "--data", str(options.data_dir),
    ]
    return subprocess.Popen(command, env=env)


def _wait_until_ready(server: subprocess.Popen[bytes], base: str) -> dict[str, Any]:
    """The ``/ready`` body once the service is ready or has said why it cannot be."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise DemoError(f"nextbest serve exited with status {server.returncode} "
                            "(its messages are above)")
        try:
            status, body = _get(f"{base}/ready")
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            time.sleep(_POLL_S)
            continue
        models = body.get("models", {})
        if status == 200 or (models.get("loaded") and not body.get("decision_engine")):
            return body
        if models.get("last_reload_error"):
            raise DemoError(f"the service cannot load the models: {models['last_reload_error']}")
        time.sleep(_POLL_S)
    raise DemoError(f"the service at {base} was not ready after {_READY_TIMEOUT_S:.0f} s: {body}")


def _example_request(options: DemoOptions, base: str) -> dict[str, Any]:
    """A request as of an hour after the simulated journeys end (the server's clock would find
    every simulated customer lapsed), for a customer the policy would contact: the most recently
    active customers are decided in one batch call and the first one sent a message is shown
    (the first of them if none is)."""
    import pandas as pd

    from features.contract import ACTIVITY_EVENT_TYPES, Col
    from features.io import load_journeys

    events = load_journeys(options.data_dir).events
    now = (events[Col.TS].max() + pd.Timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    active = events[events[Col.EVENT_TYPE].isin(list(ACTIVITY_EVENT_TYPES))]
    recent = active.sort_values(Col.TS)[Col.CUSTOMER_ID].drop_duplicates(keep="last")
    candidates = [str(c) for c in recent.iloc[-_EXAMPLE_CANDIDATES:][::-1]]
    requests = [{"customer_id": c, "context": {"now": now, "top_k": 3}} for c in candidates]
    status, answer = _post(f"{base}/v1/recommend/batch", {"requests": requests})
    decisions = answer.get("decisions", []) if status == 200 else []
    sent = [d["customer_id"] for d in decisions if d.get("action", {}).get("type") == "send"]
    return {"customer_id": (sent or candidates)[0], "context": {"now": now, "top_k": 3}}


def serve_and_ask(options: DemoOptions, console: Console) -> int:
    """Start the service, send one example request; 0 when it served, 3 when not wired yet."""
    base = f"http://{options.host}:{options.port}"
    console.print(f"starting nextbest serve on {base} …")
    server = _start_server(options)
    try:
        readiness = _wait_until_ready(server, base)
        if not readiness.get("ready"):
            console.print(
                "[yellow]The service started and loaded the champion models "
                f"{readiness.get('models', {}).get('versions', {})}, but no decision engine is "
                "wired into serving yet (GET /ready reports decision_engine: false), so it "
                "cannot answer /v1/recommend. The demo stops here; the trained models stay "
                f"registered in {options.tracking_uri}.[/]"
            )
            return 3
        request = _example_request(options, base)
        status, decision = _post(f"{base}/v1/recommend", request)
        console.print(f"POST {base}/v1/recommend {json.dumps(request)}\n→ HTTP {status}")
        console.print_json(data=decision)
        console.print("Send more (any customer_id of the simulation; without \"now\" the "
                      "server's clock decides):", highlight=False)
        console.print(f"  curl -s -X POST {base}/v1/recommend -H 'content-type: application/json'"
                      f" -d '{json.dumps(request)}'", markup=False, highlight=False, soft_wrap=True)
        console.print(f"[green]nextbest is serving on {base}[/] (docs: {base}/docs). "
                      "Ctrl-C stops it.")
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()


def run_demo(options: DemoOptions, console: Console) -> int:
    """The whole demo; the exit status of ``nextbest demo``."""
    from features.io import load_journeys
    from training.config import load_config
    from training.pipeline import train
    from training.runner import print_summary, quiet_mlflow

    ensure_simulation(options, console)
    config = load_config(DEMO_CONFIG)
    with quiet_mlflow():
        summary = train(
            load_journeys(options.data_dir), config, tracking_uri=options.tracking_uri,
            progress=True, data_source=str(options.data_dir.resolve()),
        )
    print_summary(summary, console)
    if not options.serve:
        return 0
    return serve_and_ask(options, console)
