"""Run the API with uvicorn: one process, or several single-worker processes sharing the port.

``uvicorn --workers N`` was measured here to stall reused keep-alive connections (~44 ms) and to
pin connections to one worker, while separate single-worker processes each binding the port with
``SO_REUSEPORT`` did not (docs/serving.md). So for ``workers > 1`` this module starts N processes,
each with its own listening socket, and the kernel spreads connections between them. The parent
only supervises: it forwards SIGINT/SIGTERM and stops everything when one worker dies, so that a
process manager can restart the whole service.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from typing import Any

from serving.decision import policy_files
from serving.seed import seed_store
from serving.settings import Settings, get_settings
from serving.stores import open_store

logger = logging.getLogger(__name__)

APP = "serving.app:create_app"
_SHUTDOWN_SECONDS = 10.0


def uvicorn_options(host: str, port: int, log_level: str = "info") -> dict[str, Any]:
    """uvicorn settings of the service: app factory, no access log (it costs more than a
    decision), uvloop and httptools when installed ("auto")."""
    return {
        "app": APP,
        "factory": True,
        "host": host,
        "port": port,
        "access_log": False,
        "loop": "auto",
        "http": "auto",
        "lifespan": "on",
        "log_level": log_level,
        "timeout_graceful_shutdown": 5,
    }


def _reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _worker(options: dict[str, Any]) -> None:
    import uvicorn

    # A spawned process starts without the parent's logging setup.
    logging.basicConfig(
        level=str(options["log_level"]).upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
    )

    sock = _reuseport_socket(options["host"], options["port"])
    server = uvicorn.Server(uvicorn.Config(**options))
    server.run(sockets=[sock])


def prepare_store(settings: Settings) -> None:
    """Create the store and seed it once, before any worker starts, so that workers find it
    ready and bad seed data is reported as a clear error instead of a failed startup.

    Raises ``features.io.DataValidationError`` or ``serving.stores.StoreError``.
    """
    store = open_store(settings.resolved_store_url())
    store.open()
    try:
        if settings.data_dir is not None:
            seed_store(store, settings.data_dir)
    finally:
        store.close()


def serve(host: str, port: int, workers: int = 1, log_level: str = "info") -> int:
    """Serve until interrupted; returns the exit code. Settings come from the environment
    (each worker process reads them).

    Raises ``DataValidationError``, ``StoreError`` or ``models.policy.PolicyConfigError`` (a
    policy file with a bad key or value) before anything listens."""
    import uvicorn

    settings = get_settings()
    policy_files(settings)  # every worker reads them at start: refuse bad ones here, clearly
    prepare_store(settings)
    options = uvicorn_options(host, port, log_level)
    if workers <= 1:
        uvicorn.run(**options)
        return 0
    if not hasattr(socket, "SO_REUSEPORT"):
        logger.warning("no SO_REUSEPORT on this platform: using uvicorn's own workers")
        uvicorn.run(**options, workers=workers)
        return 0
    return _supervise(options, workers)


def _supervise(options: dict[str, Any], workers: int) -> int:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker, args=(options,), name=f"nextbest-worker-{i}")
        for i in range(workers)
    ]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    for process in processes:
        process.start()
    logger.info(
        "serving on %s:%s with %d worker processes (SO_REUSEPORT)",
        options["host"], options["port"], workers,
    )  # fmt: skip
    exit_code = 0
    try:
        while not stopping:
            dead = [p for p in processes if not p.is_alive()]
            if dead:
                exit_code = dead[0].exitcode or 1
                logger.error("%s exited with %s: stopping the service", dead[0].name, exit_code)
                break
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()  # SIGTERM: uvicorn shuts down gracefully
        deadline = time.monotonic() + _SHUTDOWN_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return exit_code
