"""Benchmark: the real nextbest server answering ``POST /v1/recommend``, against ``mlflow models
serve`` scoring one of our registered LightGBM models, measured in the same run.

Setup (cached in ``benchmarks/out/serve`` and reused while the parameters and the feature-set
version match): a simulation of ``--customers`` x ``--days``, whose catalog is widened so that
every message is eligible at every stage without a cart; the four models trained on it with
``training/configs/fast.yaml`` into a local MLflow store. Load goes to customers who consent to
every channel, as of one hour after the last simulated event, so every request scores the whole
candidate set (each (message, channel) pair of the catalog at its best send slots): the heaviest
decision the catalog allows. The candidate count is printed.

Measured, each with a load generator in a separate process (keep-alive HTTP/1.1 connections on
raw asyncio sockets, loopback only, bounded by a request count and a time limit):

1. ``nextbest serve`` (uvicorn, access log off, uvloop + httptools), one process, concurrency 1:
   p50 <= 2 ms, p99 <= 5 ms;
2. ``mlflow models serve --env-manager local`` (1 worker) on the registered churn model, a
   1-row ``dataframe_split`` request, concurrency 1: nextbest must reach >= 2x its requests/s;
3. ``nextbest serve --workers 2`` (two single-worker processes sharing the port with
   SO_REUSEPORT), concurrency 8: >= 1,000 requests/s, p99 <= 20 ms, 0 errors;
4. ``POST /v1/recommend/batch`` of 1,000 customers: customers/s (reported, no target);
5. ``GET /health`` at concurrency 1: the HTTP stack alone, and the server's CPU time per request
   in every run, to read the figures against on a shared machine.

Run: ``.venv/bin/python benchmarks/serve.py [--customers 2000] [--days 60] [--requests 3000]``.
The CPU may be shared with other work: the load average is printed before and after, and
figures measured on a busy machine are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "serve"
API_KEY = "benchmark-key"
BATCH_SIZE = 1_000
STARTUP_SECONDS = 300.0


# ---------------------------------------------------------------------------- setup


def prepare(customers: int, days: int, seed: int) -> tuple[Path, str]:
    """The data folder and tracking URI, simulated and trained unless already there."""
    from features.contract import ALL_STAGES, Col, Table
    from features.definitions import FEATURES_VERSION
    from features.io import find_table_file, load_journeys, load_table
    from features.simulator import SimulationConfig, simulate, write_simulation
    from training.config import load_config
    from training.pipeline import train

    # Models trained on another feature set cannot be served: the version is part of the key.
    params = {"customers": customers, "days": days, "seed": seed, "catalog": "all-stages",
              "features_version": FEATURES_VERSION}  # fmt: skip
    marker = OUT / "params.json"
    data_dir, tracking_uri = OUT / "sim", f"sqlite:///{OUT / 'mlflow.db'}"
    if marker.exists() and json.loads(marker.read_text()) == params:
        print(f"reusing the simulation and models in {OUT}")
        return data_dir, tracking_uri
    if OUT.exists():
        subprocess.run(["rm", "-rf", str(OUT)], check=True)
    OUT.mkdir(parents=True)
    print(f"simulating {customers:,} customers x {days} days ...", flush=True)
    config = SimulationConfig(n_customers=customers, days=days, seed=seed)
    write_simulation(simulate(config, progress=False), data_dir)
    catalog_path = find_table_file(data_dir, Table.CATALOG)
    catalog = load_table(catalog_path, Table.CATALOG)
    catalog[Col.ELIGIBLE_STAGES] = ALL_STAGES
    catalog[Col.REQUIRES_CART] = False
    catalog.to_parquet(catalog_path, index=False)
    print("training the four models (training/configs/fast.yaml) ...", flush=True)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    train(load_journeys(data_dir), load_config("fast"), tracking_uri=tracking_uri,
          progress=False, data_source=str(data_dir))  # fmt: skip
    marker.write_text(json.dumps(params))
    return data_dir, tracking_uri


def recommend_bodies(data_dir: Path, n: int, seed: int) -> list[bytes]:
    """Requests for customers consenting to every channel, one hour after the data ends."""
    from features.contract import CONSENT_COLUMNS, Col, Table
    from features.io import find_table_file, load_table

    customers = load_table(find_table_file(data_dir, Table.CUSTOMERS), Table.CUSTOMERS)
    events = pd.read_parquet(find_table_file(data_dir, Table.EVENTS), columns=[Col.TS])
    now = (events[Col.TS].max() + pd.Timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reachable = customers[customers[list(CONSENT_COLUMNS)].all(axis=1)][Col.CUSTOMER_ID]
    ids = np.random.default_rng(seed).choice(reachable.to_numpy(dtype=object), size=n)
    return [
        json.dumps({"customer_id": str(c), "context": {"now": now}}).encode() for c in ids
    ]


def mlflow_body(tracking_uri: str) -> bytes:
    """A 1-row request for the registered churn model (its own feature names, zeros)."""
    from models.registry import CHAMPION, alias_version, load_estimator, registry_client

    version = alias_version(registry_client(tracking_uri), "churn", CHAMPION)
    estimator = load_estimator("churn", str(version), tracking_uri=tracking_uri)
    columns = list(estimator.feature_names_)
    body = {"dataframe_split": {"columns": columns, "data": [[0.0] * len(columns)]}}
    return json.dumps(body).encode()


# ---------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def start(command: Sequence[str], env: dict[str, str], ready_url: str, log: Path) -> Any:
    """Start a server process and wait until ``ready_url`` answers 200."""
    handle = log.open("w")
    process = subprocess.Popen(list(command), env=env, stdout=handle, stderr=subprocess.STDOUT,
                               start_new_session=True, cwd=ROOT)  # fmt: skip
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[2:4]} exited early; see {log}")
        try:
            if _get(ready_url) == 200:
                return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    stop(process)
    raise RuntimeError(f"{ready_url} was not ready after {STARTUP_SECONDS:.0f} s; see {log}")


def stop(process: Any) -> None:
    """SIGTERM to the server's process group (it and its workers), then wait."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def nextbest(data_dir: Path, tracking_uri: str, port: int, workers: int) -> Any:
    env = {
        **os.environ,
        "NEXTBEST_API_KEYS": API_KEY,
        "NEXTBEST_STATE_DIR": str(OUT / "state"),
        "NEXTBEST_MLFLOW_TRACKING_URI": tracking_uri,
        "NEXTBEST_POLL_INTERVAL_SECONDS": "3600",
    }
    command = [sys.executable, "-m", "training.cli", "serve", "--port", str(port),
               "--workers", str(workers), "--data", str(data_dir)]  # fmt: skip
    return start(command, env, f"http://127.0.0.1:{port}/ready", OUT / f"nextbest-{port}.log")


def mlflow_server(tracking_uri: str, port: int) -> Any:
    bin_dir = str(Path(sys.executable).parent)  # mlflow runs `uvicorn` from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONPATH": str(ROOT),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    command = [str(Path(bin_dir) / "mlflow"), "models", "serve",
               "-m", "models:/nextbest-churn@champion", "--env-manager", "local",
               "-p", str(port), "-w", "1"]  # fmt: skip
    return start(command, env, f"http://127.0.0.1:{port}/ping", OUT / f"mlflow-{port}.log")


# ---------------------------------------------------------------------------- load


@dataclass
class LoadResult:
    latencies_ms: list[float]
    errors: int
    seconds: float
    candidates: list[int]
    cpu_ms: float = float("nan")

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


def _request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A POST with ``body``, or a GET without one."""
    lines = [f"{'POST' if body else 'GET'} {path} HTTP/1.1", "Host: 127.0.0.1",
             *(["Content-Type: application/json", f"Content-Length: {len(body)}"] if body
               else []),
             *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class _LoadState:
    """Shared by the connections of one run (one event loop: no locking needed)."""

    next: int
    limit: int
    deadline: float
    sample_candidates: bool
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)


async def _connection(port: int, requests: list[bytes], state: _LoadState) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while state.next < state.limit and time.perf_counter() < state.deadline:
            payload = requests[state.next % len(requests)]
            state.next += 1
            started = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            elapsed = (time.perf_counter() - started) * 1e3
            if head[9:12] != b"200":
                state.errors += 1
                continue
            state.latencies.append(elapsed)
            if state.sample_candidates and len(state.latencies) % 10 == 0:
                state.candidates.append(json.loads(body)["n_candidates"])
    finally:
        writer.close()


async def _load(port: int, requests: list[bytes], concurrency: int, limit: int,
                seconds: float, warmup: int, sample_candidates: bool) -> LoadResult:  # fmt: skip
    warm = _LoadState(0, warmup, time.perf_counter() + seconds, False)
    await asyncio.gather(*(_connection(port, requests, warm) for _ in range(concurrency)))
    state = _LoadState(warmup, warmup + limit, time.perf_counter() + seconds, sample_candidates)
    started = time.perf_counter()
    await asyncio.gather(*(_connection(port, requests, state) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return LoadResult(state.latencies, state.errors + warm.errors, elapsed, state.candidates)


def _load_process(args: tuple[Any, ...], pipe: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the plain asyncio loop is only a little slower
        pass
    pipe.send(asdict(asyncio.run(_load(*args))))


def cpu_seconds(server: Any) -> float:
    """CPU time used so far by a server process and all its children (workers)."""
    parent = psutil.Process(server.pid)
    total = 0.0
    for process in [parent, *parent.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def load(server: Any, port: int, path: str, bodies: list[bytes], concurrency: int, limit: int,
         seconds: float, headers: dict[str, str], sample_candidates: bool = False,
         warmup: int = 200) -> LoadResult:  # fmt: skip
    """Run the load generator in its own process (so it does not share our interpreter).

    ``cpu_ms`` is the server's CPU time per request over the whole run (warm-up included): on a
    shared machine it says what a request costs better than the wall-clock latency does."""
    requests = [_request(path, body, headers) for body in bodies]
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    args = (port, requests, concurrency, limit, seconds, warmup, sample_candidates)
    process = context.Process(target=_load_process, args=(args, send))
    cpu_before = cpu_seconds(server)
    process.start()
    result = LoadResult(**receive.recv())
    process.join()
    served = len(result.latencies_ms) + result.errors + warmup
    result.cpu_ms = (cpu_seconds(server) - cpu_before) * 1e3 / max(served, 1)
    return result


def batch(port: int, bodies: list[bytes], calls: int) -> tuple[float, int]:
    """Customers per second over ``calls`` batches of ``BATCH_SIZE``, and the errors."""
    requests = [json.loads(b) for b in bodies]
    errors, seconds = 0, 0.0
    for i in range(calls):
        chunk = [requests[(i * BATCH_SIZE + j) % len(requests)] for j in range(BATCH_SIZE)]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/recommend/batch", json.dumps({"requests": chunk}).encode(),
            headers={"Content-Type": "application/json", "X-API-Key": API_KEY}, method="POST",
        )  # fmt: skip
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            answered = len(json.loads(response.read())["decisions"])
        seconds += time.perf_counter() - started
        errors += BATCH_SIZE - answered
    return calls * BATCH_SIZE / seconds, errors


# ---------------------------------------------------------------------------- report


def machine_speed() -> str:
    """How fast this CPU runs Python right now, to read the figures against: a loop of 10 M
    additions takes about 0.4 s on an unloaded current core."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return f"10 M Python additions in {time.perf_counter() - started:.2f} s"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3_000, help="Requests per c=1 run.")
    parser.add_argument("--seconds", type=float, default=30.0, help="Time limit per run.")
    parser.add_argument("--batches", type=int, default=3, help="Batch calls of 1,000.")
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"{machine_speed()}")

    data_dir, tracking_uri = prepare(options.customers, options.days, options.seed)
    bodies = recommend_bodies(data_dir, 5_000, options.seed)
    api = {"X-API-Key": API_KEY}
    rows: list[tuple[str, str, str, str]] = []

    port = free_port()
    server = nextbest(data_dir, tracking_uri, port, workers=1)
    try:
        single = load(server, port, "/v1/recommend", bodies, 1, options.requests,
                      options.seconds, api, sample_candidates=True)  # fmt: skip
        customers_per_s, batch_errors = batch(port, bodies, options.batches)
        floor = load(server, port, "/health", [b""], 1, options.requests, options.seconds, {})
    finally:
        stop(server)

    port = free_port()
    server = mlflow_server(tracking_uri, port)
    try:
        baseline = load(server, port, "/invocations", [mlflow_body(tracking_uri)], 1,
                        options.requests // 2, options.seconds, {})  # fmt: skip
    finally:
        stop(server)

    port = free_port()
    server = nextbest(data_dir, tracking_uri, port, workers=2)
    try:
        time.sleep(2.0)  # /ready answered from one worker: give the other one a moment
        eight = load(server, port, "/v1/recommend", bodies, 8, 4 * options.requests,
                     options.seconds, api, warmup=400)  # fmt: skip
    finally:
        stop(server)

    candidates = single.candidates or [0]
    ratio = single.rate / baseline.rate
    rows = [
        ("c=1 p50", f"{single.percentile(50):.2f} ms", "<= 2 ms",
         verdict(single.percentile(50) <= 2)),
        ("c=1 p99", f"{single.percentile(99):.2f} ms", "<= 5 ms",
         verdict(single.percentile(99) <= 5)),
        ("c=1 requests/s", f"{single.rate:,.0f}", "", ""),
        ("mlflow models serve c=1 requests/s", f"{baseline.rate:,.0f}", "",
         f"(p50 {baseline.percentile(50):.2f} ms)"),
        ("c=1 vs mlflow", f"{ratio:.1f}x", ">= 2x", verdict(ratio >= 2)),
        ("c=8, 2 processes requests/s", f"{eight.rate:,.0f}", ">= 1,000",
         verdict(eight.rate >= 1_000)),
        ("c=8 p99", f"{eight.percentile(99):.2f} ms", "<= 20 ms",
         verdict(eight.percentile(99) <= 20)),
        ("c=8 errors", f"{eight.errors + single.errors}", "0",
         verdict(eight.errors + single.errors == 0)),
        ("batch of 1,000: customers/s", f"{customers_per_s:,.0f}", "",
         "" if batch_errors == 0 else f"{batch_errors} missing"),
    ]  # fmt: skip
    print(f"\ncandidates scored per /v1/recommend: mean {statistics.mean(candidates):.0f}, "
          f"min {min(candidates)} (sampled {len(single.candidates)} responses)")
    print(f"requests: c=1 {len(single.latencies_ms):,} in {single.seconds:.1f} s, mlflow "
          f"{len(baseline.latencies_ms):,}, c=8 {len(eight.latencies_ms):,} in "
          f"{eight.seconds:.1f} s (p50 {eight.percentile(50):.2f} ms)")
    print(f"HTTP floor of this machine, GET /health at c=1: p50 {floor.percentile(50):.2f} ms, "
          f"{floor.rate:,.0f} requests/s, server CPU {floor.cpu_ms:.2f} ms per request")
    print(f"server CPU per request: nextbest {single.cpu_ms:.2f} ms (c=1), "
          f"{eight.cpu_ms:.2f} ms (c=8, 2 processes); mlflow models serve {baseline.cpu_ms:.2f} ms")
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'value':>12}  {'target':>9}  result")
    for name, value, target, result in rows:
        print(f"{name:<{width}}  {value:>12}  {target:>9}  {result}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"{machine_speed()}")
    failed = any(r[3] == "FAIL" for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
