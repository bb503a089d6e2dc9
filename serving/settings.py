"""Service settings, read from ``NEXTBEST_*`` environment variables (or passed explicitly).

Nothing is read at import time: ``get_settings()`` builds (and caches) the settings the first
time a process asks, so tests and the app factory can pass their own ``Settings`` instead.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from features.contract import Channel

DEFAULT_STATE_DIR = Path(".nextbest")
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024

KeyList = Annotated[tuple[SecretStr, ...], NoDecode]
ChannelList = Annotated[tuple[Channel, ...], NoDecode]


class Settings(BaseSettings):
    """Everything an operator can set; each field maps to ``NEXTBEST_<FIELD>`` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="NEXTBEST_", extra="forbid", frozen=True)

    state_dir: Path = Field(
        default=DEFAULT_STATE_DIR,
        description="Folder for the default SQLite store and other local state.",
    )
    data_dir: Path | None = Field(
        default=None,
        description="Journey data folder (customers, catalog and, if present, events) that seeds "
        "the store at start; re-seeded only when its files change.",
    )
    store_url: str | None = Field(
        default=None, description="Store URL; default sqlite:///<state_dir>/nextbest.db."
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking/registry URI; default $MLFLOW_TRACKING_URI, else "
        "sqlite:///./mlflow.db.",
    )
    model_alias: str = Field(
        default="champion", min_length=1, description="Registry alias to follow."
    )
    poll_interval_seconds: float = Field(
        default=30.0, gt=0, description="How often the registry alias is checked for a new version."
    )
    api_keys: KeyList = Field(default=(), description="Comma-separated keys for the /v1 endpoints.")
    admin_keys: KeyList = Field(
        default=(), description="Comma-separated keys for /admin (they also grant the /v1 scope)."
    )
    auth_disabled: bool = Field(
        default=False,
        description="Serve without API keys: for a local demo only, must be set explicitly.",
    )
    contact_policy_path: Path | None = Field(default=None, description="Contact-policy YAML file.")
    arbitration_path: Path | None = Field(default=None, description="Arbitration levers YAML file.")
    max_request_bytes: int = Field(
        default=DEFAULT_MAX_REQUEST_BYTES,
        gt=0,
        description="Largest accepted request body (else 413).",
    )
    batch_max: int = Field(
        default=1_000, gt=0, description="Most customers in one /v1/recommend/batch."
    )
    events_batch_max: int = Field(
        default=10_000, gt=0, description="Most events in one /v1/events call."
    )
    seed: int = Field(
        default=0, ge=0, description="Seed of the decision engine's exploration draws."
    )
    exploration_epsilon: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share of decisions explored at random (propensity logged); default: the "
        "arbitration file's exploration.epsilon.",
    )
    control_share: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="Share of customers held out as a no-action control group; default: the "
        "arbitration file's control_groups.global_share.",
    )
    cold_start_channels: ChannelList = Field(
        default=(Channel.IN_APP, Channel.WEB),
        description="Comma-separated channels a customer without a profile may be reached on "
        "(on-site and in-app placements need no prior opt-in; e-mail, SMS and push do).",
    )

    @field_validator("api_keys", "admin_keys", "cold_start_channels", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _keys_or_explicit_demo(self) -> Settings:
        if not self.auth_disabled and not self.api_keys and not self.admin_keys:
            raise ValueError(
                "no API keys configured: set NEXTBEST_API_KEYS (and NEXTBEST_ADMIN_KEYS), or set "
                "NEXTBEST_AUTH_DISABLED=true explicitly for a local demo without keys"
            )
        return self

    def resolved_store_url(self) -> str:
        """The store URL, defaulting to a SQLite file inside ``state_dir``."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.state_dir / 'nextbest.db').resolve()}"

    def resolved_tracking_uri(self) -> str:
        """Where the model registry is: explicit setting, then MLflow's own variable, then the
        same local default the training CLI uses (``mlflow.db`` in the working directory)."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        env = os.environ.get("MLFLOW_TRACKING_URI")
        if env:
            return env
        return f"sqlite:///{(Path.cwd() / 'mlflow.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings from the environment, built once."""
    return Settings()
