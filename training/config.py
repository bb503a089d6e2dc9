"""Training configuration: one validated YAML file says what to train and how.

Every section is a pydantic model with ``extra="forbid"``: a misspelt key is an error that names
the file, the key's path and the keys allowed there, never a silently ignored setting. The
resolved configuration (defaults filled in, the global seed pushed into every section that did
not set its own) is what the pipeline uses and logs to MLflow.

Packaged configurations live in ``training/configs/``: ``default.yaml`` (simulated journeys),
``fast.yaml`` (small trees: tests and the demo), ``hillstrom.yaml`` (the Hillstrom e-mail
experiment). ``--config fast`` names a packaged one; anything else is a path.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training.datasets import DatasetConfig
from training.fit import TaskConfig, effective_task_config
from training.tasks import Task

logger = logging.getLogger(__name__)

CONFIG_PACKAGE: Final = "training.configs"
DEFAULT_CONFIG: Final = "default"
#: Names of the settings that carry a seed; the global ``seed`` fills them when a section
#: leaves them unset, so one number reproduces a whole run.
_SEED_FIELDS: Final = ("random_state", "seed")


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid; the message says where."""


class ModelsConfig(BaseModel):
    """Estimator settings, one section per task."""

    model_config = ConfigDict(extra="forbid")

    conversion: TaskConfig = Field(default_factory=TaskConfig)
    churn: TaskConfig = Field(default_factory=TaskConfig)
    channel: TaskConfig = Field(default_factory=TaskConfig)
    sendtime: TaskConfig = Field(default_factory=TaskConfig)

    def for_task(self, task: Task) -> TaskConfig:
        section: TaskConfig = getattr(self, Task(task).value)
        return section


class PromotionConfig(BaseModel):
    """The promotion gate: when a new version may take the ``champion`` alias."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=True,
        description="Run the gate after registering; off = only the challenger alias moves.",
    )
    tolerance: float = Field(
        default=0.0,
        ge=0.0,
        description=(
            "How much worse than the champion (in the primary metric's units, on the same "
            "held-out rows) a challenger may score and still be promoted. 0 = at least as good."
        ),
    )


class TrainConfig(BaseModel):
    """Everything one ``nextbest train`` run needs besides the data."""

    model_config = ConfigDict(extra="forbid")

    experiment: str = Field(default="nextbest", min_length=1, description="MLflow experiment name.")
    registry_prefix: str = Field(
        default="nextbest",
        min_length=1,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Registered models are named '<registry_prefix>-<task>'.",
    )
    seed: int = Field(
        default=7, ge=0, description="Seed for every random choice left unseeded below."
    )
    tasks: list[Task] = Field(
        default_factory=lambda: list(Task), min_length=1, description="Tasks 'all' trains."
    )
    valid_fraction: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="Share of the latest rows held out for validation."
    )
    split: Literal["time", "customer"] = Field(
        default="time",
        description=(
            "time: validate on the latest as-of times (always, for data spanning time). "
            "customer: validate on a seeded share of customers; only for data where every row "
            "has the same as-of time (a one-shot randomised campaign such as Hillstrom), where "
            "no later window exists and no future can leak."
        ),
    )
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, tasks: list[Task]) -> list[Task]:
        return list(dict.fromkeys(tasks))

    def model_name(self, task: Task) -> str:
        """Registered model name of ``task``."""
        return f"{self.registry_prefix}-{Task(task).value}"

    def resolved(self) -> TrainConfig:
        """A copy saying everything a run will use: the global seed written into every seed
        setting left unset, and each task's own defaults (``training.fit.TASK_DEFAULTS``) into
        the model settings left unset. Logged with every run, it reproduces the run."""
        update: dict[str, Any] = {
            "dataset": _with_seed(self.dataset, self.seed),
            "models": self.models.model_copy(
                update={
                    task.value: effective_task_config(
                        task, _with_seed(self.models.for_task(task), self.seed)
                    )
                    for task in Task
                }
            ),
        }
        return self.model_copy(update=update)


SectionT = TypeVar("SectionT", bound=BaseModel)


def _with_seed(section: SectionT, seed: int) -> SectionT:
    unset: dict[str, Any] = {
        name: seed
        for name in _SEED_FIELDS
        if name in type(section).model_fields and name not in section.model_fields_set
    }
    return section.model_copy(update=unset) if unset else section


def packaged_config_path(name: str) -> Path:
    """Path of a configuration shipped in ``training/configs`` (``name`` without ``.yaml``)."""
    return Path(str(resources.files(CONFIG_PACKAGE).joinpath(f"{name}.yaml")))


def packaged_config_names() -> list[str]:
    folder = resources.files(CONFIG_PACKAGE)
    return sorted(
        entry.name.removesuffix(".yaml") for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


def resolve_config_path(name_or_path: str | Path | None) -> Path:
    """A path as given when it exists; otherwise a packaged configuration of that name."""
    if name_or_path is None:
        return packaged_config_path(DEFAULT_CONFIG)
    path = Path(name_or_path)
    if path.exists():
        return path
    packaged = packaged_config_path(path.name.removesuffix(".yaml"))
    if path.parent == Path(".") and packaged.exists():
        return packaged
    known = ", ".join(packaged_config_names())
    raise ConfigError(
        f"{path}: no such configuration file (packaged configurations: {known})"
    )


def _allowed_keys(model: type[BaseModel], location: tuple[int | str, ...]) -> list[str]:
    """Keys accepted by the (nested) section an unknown key was found in."""
    current: type[BaseModel] | None = model
    for part in location[:-1]:
        if current is None:
            return []
        field = current.model_fields.get(str(part))
        annotation = field.annotation if field else None
        current = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return sorted(current.model_fields) if current is not None else []


def describe_validation_error(error: ValidationError, source: str) -> str:
    """One line per problem: ``<file>: <key.path>: <what is wrong>``."""
    lines = []
    for problem in error.errors():
        location = tuple(problem["loc"])
        key = ".".join(str(part) for part in location) or "(top level)"
        if problem["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(TrainConfig, location))
            message = f"unknown key (allowed here: {allowed})" if allowed else "unknown key"
        else:
            message = f"{problem['msg']} (got {problem.get('input')!r})"
        lines.append(f"{source}: {key}: {message}")
    return "\n".join(lines)


def parse_config(raw: object, source: str = "<config>") -> TrainConfig:
    """Validate an already-parsed YAML document."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level")
    try:
        return TrainConfig.model_validate(raw).resolved()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from exc


def load_config(name_or_path: str | Path | None = None) -> TrainConfig:
    """Read, validate and resolve a configuration file (or a packaged one by name)."""
    path = resolve_config_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    config = parse_config(raw, str(path))
    logger.info("configuration %s: tasks %s", path, ", ".join(t.value for t in config.tasks))
    return config
