"""Follow the registry alias of every task and keep one consistent, checked model set loaded.

At start the follower loads ``nextbest-<task>@<alias>`` for each task; a background thread then
polls the alias every ``poll_interval`` seconds (``/admin/reload`` triggers the same refresh).
When any alias moves, the changed versions are loaded off the request path, the whole candidate
set passes a smoke check, and only then replaces the current set in one reference assignment, so
a request always sees one complete set. A version that fails to load or to pass the check never
replaces the current set; the failure is kept for ``/ready`` and ``/metrics`` and that same
combination of versions is not retried until the alias moves again or a reload is forced.

Resolving, loading and checking are injected callables, so the follower is tested against a real
temporary MLflow registry as well as with plain in-memory versions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from features.contract import CHANNELS
from models.interfaces import ChannelScorer, ChurnScorer, ConversionScorer, SendTimeScorer
from models.registry import TASKS

logger = logging.getLogger(__name__)

#: ``task -> version`` the alias points at now (``None``: no such version).
VersionResolver = Callable[[str], str | None]
#: ``(task, version) -> estimator``; raises when the version cannot be loaded.
EstimatorLoader = Callable[[str, str], Any]

HOURS_OF_WEEK = 168
_SMOKE_ROWS = 4


@dataclass(frozen=True)
class ModelSet:
    """One version of each task's estimator, loaded and checked together."""

    alias: str
    versions: Mapping[str, str]
    estimators: Mapping[str, Any]
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __getitem__(self, task: str) -> Any:
        return self.estimators[task]


#: Raises (any exception, with a message saying what is wrong) when a model set is unusable.
SmokeCheck = Callable[[ModelSet], None]


@dataclass(frozen=True)
class ReloadResult:
    """What one refresh did: ``loaded`` a new set, found it ``unchanged``, ``skipped`` a
    combination that already failed, or ``failed`` (the current set, if any, stays)."""

    status: Literal["loaded", "unchanged", "skipped", "failed"]
    versions: Mapping[str, str] | None
    error: str | None = None


def check_probabilities(name: str, values: Any, shape: tuple[int, ...], allow_nan: bool) -> None:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name}: expected output of shape {shape}, got {array.shape}")
    finite = array[np.isfinite(array)]
    if not allow_nan and finite.size != array.size:
        raise ValueError(f"{name}: output holds NaN or infinite values")
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(f"{name}: probabilities outside [0, 1] ({finite.min()}..{finite.max()})")


def protocol_smoke_check(model_set: ModelSet) -> None:
    """Score a fixed input with every estimator through its ``models.interfaces`` protocol and
    require probabilities of the right shape in [0, 1] (channel rows may be all-NaN: "not enough
    data"). The input width is the estimator's ``n_features_in_`` (scikit-learn contract)."""
    scorers: dict[str, type] = {
        "conversion": ConversionScorer,
        "churn": ChurnScorer,
        "channel": ChannelScorer,
        "sendtime": SendTimeScorer,
    }
    rng = np.random.default_rng(0)
    n = _SMOKE_ROWS
    for task, estimator in model_set.estimators.items():
        protocol = scorers.get(task)
        if protocol is not None and not isinstance(estimator, protocol):
            raise TypeError(
                f"{task}: {type(estimator).__name__} does not implement {protocol.__name__}"
            )
        width = getattr(estimator, "n_features_in_", None)
        if not isinstance(width, int | np.integer) or width <= 0:
            raise ValueError(f"{task}: estimator exposes no n_features_in_ (is it fitted?)")
        features = rng.normal(size=(n, int(width)))
        if task == "conversion":
            no_action = np.full(n, -1)
            action = np.zeros(n, dtype=np.int64)
            for codes in (no_action, action):
                local_hour = np.where(codes < 0, -1, 9)
                scores = estimator.predict_conversion(features, codes, codes, local_hour)
                check_probabilities(task, scores, (n,), allow_nan=False)
        elif task == "churn":
            check_probabilities(task, estimator.predict_churn(features), (n,), allow_nan=False)
        elif task == "channel":
            check_probabilities(
                task, estimator.predict_channels(features), (n, len(CHANNELS)), allow_nan=True
            )
        elif task == "sendtime":
            profile = np.zeros((n, HOURS_OF_WEEK))
            check_probabilities(
                task,
                estimator.predict_hours(features, profile),
                (n, HOURS_OF_WEEK),
                allow_nan=False,
            )


class ModelFollower:
    """Keeps ``current`` pointed at the newest model set that loaded and passed the check."""

    def __init__(
        self,
        resolve: VersionResolver,
        load: EstimatorLoader,
        smoke_check: SmokeCheck = protocol_smoke_check,
        *,
        tasks: Sequence[str] = TASKS,
        alias: str = "champion",
        poll_interval: float = 30.0,
        on_swap: Callable[[ModelSet], None] | None = None,
        on_failure: Callable[[str | None, str], None] | None = None,
    ) -> None:
        self._resolve = resolve
        self._load = load
        self._smoke_check = smoke_check
        self.tasks = tuple(tasks)
        self.alias = alias
        self.poll_interval = poll_interval
        self._swap_listeners: list[Callable[[ModelSet], None]] = []
        self._failure_listeners: list[Callable[[str | None, str], None]] = []
        self.subscribe(on_swap, on_failure)
        self._current: ModelSet | None = None
        self._failed: dict[tuple[tuple[str, str], ...], str] = {}
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_reload_error: str | None = None
        self.last_checked_at: datetime | None = None

    def subscribe(
        self,
        on_swap: Callable[[ModelSet], None] | None = None,
        on_failure: Callable[[str | None, str], None] | None = None,
    ) -> None:
        """Be told of every swap (with the new set) and every failure (task or ``None`` for the
        whole set, and the error)."""
        if on_swap is not None:
            self._swap_listeners.append(on_swap)
        if on_failure is not None:
            self._failure_listeners.append(on_failure)

    @property
    def current(self) -> ModelSet | None:
        """The model set requests should use (read it once per request)."""
        return self._current

    def refresh(self, force: bool = False) -> ReloadResult:
        """Check the aliases now and swap in a new set if they moved and it is sound.

        ``force`` retries a combination of versions that failed before (e.g. after fixing the
        registry without moving the alias)."""
        with self._refresh_lock:
            return self._refresh(force)

    def _refresh(self, force: bool) -> ReloadResult:
        self.last_checked_at = datetime.now(UTC)
        try:
            target = {task: self._resolve(task) for task in self.tasks}
        except Exception as exc:  # registry down, bad URI...: keep serving what we have
            return self._fail(None, f"cannot read the model registry: {exc}", None)
        missing = [task for task, version in target.items() if version is None]
        if missing:
            names = ", ".join(f"nextbest-{t}@{self.alias}" for t in missing)
            return self._fail(None, f"no registered version for {names}", None)
        versions = {task: str(version) for task, version in target.items()}
        current = self._current
        if current is not None and dict(current.versions) == versions:
            self.last_reload_error = None
            return ReloadResult("unchanged", versions)
        key = tuple(sorted(versions.items()))
        if key in self._failed and not force:
            return ReloadResult("skipped", versions, self._failed[key])

        estimators: dict[str, Any] = {}
        for task, version in versions.items():
            if current is not None and current.versions.get(task) == version:
                estimators[task] = current.estimators[task]
                continue
            try:
                estimators[task] = self._load(task, version)
            except Exception as exc:  # a broken artifact can raise anything while unpickling
                return self._fail(task, f"nextbest-{task} version {version}: {exc}", key)
        candidate = ModelSet(
            alias=self.alias,
            versions=MappingProxyType(dict(versions)),
            estimators=MappingProxyType(estimators),
        )
        try:
            self._smoke_check(candidate)
        except Exception as exc:  # the check's own message says what is wrong
            return self._fail(None, f"smoke check failed for versions {versions}: {exc}", key)

        self._current = candidate  # the atomic swap: one reference assignment
        self.last_reload_error = None
        self._failed.pop(key, None)
        logger.info("serving model set %s (alias %s)", versions, self.alias)
        for listener in self._swap_listeners:
            listener(candidate)
        return ReloadResult("loaded", versions)

    def _fail(
        self, task: str | None, error: str, key: tuple[tuple[str, str], ...] | None
    ) -> ReloadResult:
        if key is not None:
            self._failed[key] = error
        self.last_reload_error = error
        logger.error("model reload failed (keeping the current set): %s", error)
        for on_failure in self._failure_listeners:
            on_failure(task, error)
        versions = None if key is None else dict(key)
        return ReloadResult("failed", versions, error)

    def start(self) -> ReloadResult:
        """Load the current versions now, then follow the alias in a daemon thread."""
        result = self.refresh()
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._poll, name="nextbest-model-follower", daemon=True
            )
            self._thread.start()
        return result

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.refresh()
            except Exception:  # never let the follower thread die silently
                logger.exception("model follower refresh crashed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def registry_follower(
    tracking_uri: str,
    alias: str,
    poll_interval: float,
    smoke_check: SmokeCheck = protocol_smoke_check,
    on_swap: Callable[[ModelSet], None] | None = None,
    on_failure: Callable[[str | None, str], None] | None = None,
) -> ModelFollower:
    """A follower on the MLflow registry at ``tracking_uri`` (resolution by alias, estimators
    loaded from ``artifacts/estimator.joblib``)."""
    from models.registry import alias_version, load_estimator, registry_client

    clients: list[Any] = []

    def resolve(task: str) -> str | None:
        # Built on first use, so a registry that cannot be reached at start is reported by
        # /ready (and retried at every poll) instead of keeping the service from starting.
        if not clients:
            clients.append(registry_client(tracking_uri))
        return alias_version(clients[0], task, alias)

    def load(task: str, version: str) -> Any:
        return load_estimator(task, version, tracking_uri=tracking_uri)

    return ModelFollower(
        resolve,
        load,
        smoke_check,
        alias=alias,
        poll_interval=poll_interval,
        on_swap=on_swap,
        on_failure=on_failure,
    )
