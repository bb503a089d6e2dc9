"""Helpers of the end-to-end tests: a private copy of a trained MLflow store, new (good or
corrupt) registered versions, the real ``nextbest serve`` process, and the contact-policy
rules checked over a sequence of sends."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from features.contract import Channel
from models.policy import ContactPolicy
from models.registry import TASKS, model_name, registry_client, set_alias

API_KEY = "e2e-api-key"
ADMIN_KEY = "e2e-admin-key"
STARTUP_SECONDS = 180  # generous: the CPU is shared and `import mlflow` is slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful shutdown flushes the stores), then kill if it hangs."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def copy_registry(tracking_uri: str, folder: Path) -> str:
    """A private copy of a SQLite MLflow store (its versions still point at the original's
    artifacts, which are only read), so aliases can move without touching the original."""
    source = Path(tracking_uri.removeprefix("sqlite:///"))
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


@contextmanager
def _mlflow_default(tracking_uri: str) -> Iterator[None]:
    # MLflow's registry looks a "models:/" source up through the *default* tracking URI.
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def register_copies(tracking_uri: str, of_version: str) -> str:
    """A new version of every task holding the same model as ``of_version``; returns it."""
    client = registry_client(tracking_uri)
    created = set()
    with _mlflow_default(tracking_uri):
        for task in TASKS:
            old = client.get_model_version(model_name(task), of_version)
            new = client.create_model_version(model_name(task), old.source, run_id=old.run_id)
            created.add(str(new.version))
    (version,) = created
    return version


def register_corrupt(tracking_uri: str, task: str, of_version: str, folder: Path) -> str:
    """A new version of ``task``: a copy of ``of_version`` whose estimator file is garbage."""
    client = registry_client(tracking_uri)
    source = client.get_model_version_download_uri(model_name(task), of_version)
    target = folder / f"corrupt-{task}"
    shutil.copytree(Path(source.removeprefix("file://")), target)
    (target / "artifacts" / "estimator.joblib").write_bytes(b"this is not a pickle")
    with _mlflow_default(tracking_uri):
        version = client.create_model_version(model_name(task), target.as_uri())
    return str(version.version)


def point_alias(tracking_uri: str, version: str, tasks: Sequence[str] = TASKS) -> None:
    client = registry_client(tracking_uri)
    for task in tasks:
        set_alias(client, task, "champion", version)


@dataclass(frozen=True)
class Service:
    http: httpx.Client
    tracking_uri: str
    data_dir: Path
    store_path: Path
    log_path: Path


@contextmanager
def running_service(root: Path, data_dir: Path, tracking_uri: str) -> Iterator[Service]:
    """``nextbest serve`` on a free port with the models of ``tracking_uri``, once ready."""
    port = free_port()
    env = {
        **os.environ,
        "NEXTBEST_STATE_DIR": str(root / "state"),
        "NEXTBEST_API_KEYS": API_KEY,
        "NEXTBEST_ADMIN_KEYS": ADMIN_KEY,
        "NEXTBEST_MLFLOW_TRACKING_URI": tracking_uri,
        "NEXTBEST_POLL_INTERVAL_SECONDS": "3600",  # alias moves are picked up by /admin/reload
    }
    log_path = root / "server.log"
    command = [sys.executable, "-m", "training.cli", "serve", "--port", str(port),
               "--data", str(data_dir)]  # fmt: skip
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        try:
            _wait_ready(process, http, log_path)
            yield Service(http, tracking_uri, data_dir, root / "state" / "nextbest.db", log_path)
        finally:
            http.close()
            stop_process(process)


def _wait_ready(process: subprocess.Popen[bytes], http: httpx.Client, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if http.get("/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"not ready in time:\n{log.read_text()}"
        time.sleep(0.25)


@dataclass(frozen=True)
class Send:
    at: datetime
    channel: Channel
    message_id: str
    new: bool  # decided in the test (else: from the seeded history)


def contact_rule_violations(
    sends: Sequence[Send], policy: ContactPolicy, cooldown_hours: dict[str, float], tz: str
) -> list[str]:
    """Every way the new sends break the caps, cooldowns or quiet hours of ``policy``."""
    problems: list[str] = []
    ordered = sorted(sends, key=lambda s: s.at)
    rules = [(f"cap {c.value}", {c}, r.max_sends, r.window_hours)
             for c, r in policy.frequency_caps.per_channel.items()]  # fmt: skip
    rules += [(f"cap all {r.channels or 'channels'}", set(r.channels or Channel), r.max_sends,
               r.window_hours) for r in policy.frequency_caps.all_channels]  # fmt: skip
    for name, channels, max_sends, hours in rules:
        counted = [s for s in ordered if s.channel in channels]
        for first in counted:
            window = [s for s in counted if first.at <= s.at < first.at + timedelta(hours=hours)]
            if len(window) > max_sends and any(s.new for s in window):
                problems.append(f"{name}: {len(window)} sends in {hours} h from {first.at}")
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            gap = timedelta(hours=cooldown_hours.get(a.message_id, 0))
            if a.message_id == b.message_id and (a.new or b.new) and b.at - a.at < gap:
                problems.append(f"cooldown {a.message_id}: {a.at} then {b.at}")
    quiet = policy.quiet_hours
    if quiet is not None:
        start, end = quiet.start_seconds, quiet.end_seconds
        for send in ordered:
            local = send.at.astimezone(ZoneInfo(tz))
            seconds = local.hour * 3600 + local.minute * 60 + local.second
            inside = start <= seconds < end if start < end else seconds >= start or seconds < end
            if send.new and send.channel in quiet.channels and inside:
                problems.append(f"quiet hours: {send.channel.value} at {local.isoformat()}")
    return problems
