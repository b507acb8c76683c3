"""Configuration from `AUTOPILOT_*` environment variables (pydantic-settings).

Every setting has a default that works for the demo. `load_settings` collects every problem at
once, so a person fixing a deployment sees all bad variables in one start-up attempt.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.core.promotion import PromotionPolicy
from service.core.retry import RetryPolicy
from service.core.startup import StartFrom

ENV_PREFIX = "AUTOPILOT_"
# Variables the daemon reads itself rather than through Settings (test-only fault injection).
EXTRA_KNOWN_VARIABLES = frozenset({"AUTOPILOT_TEST_CRASH_AT"})
# ZenML's own variables that hold secrets: never printed.
SECRET_ZENML_VARIABLES = ("ZENML_STORE_API_KEY", "ZENML_STORE_PASSWORD")

CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """The daemon's settings. Field `x` is read from `AUTOPILOT_X`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    dataset_names: CommaList = Field(
        default=["iris_training_dataset"], description="Artifact names to watch (comma-separated)."
    )
    dataset_required_tags: CommaList = Field(
        default=["approved"], description="Tags a dataset version needs to be trained on."
    )
    model_name: str = Field(default="iris_classifier", min_length=1)
    promotion_metric: str = Field(default="accuracy", min_length=1)
    promotion_threshold: float = Field(default=0.9, allow_inf_nan=False)
    promotion_must_beat_production: bool = True
    inference_dataset_name: str = Field(default="iris_inference_dataset", min_length=1)
    state_dir: Path = Path(".autopilot")
    start_from: str = Field(default="now", description="now, beginning, or an ISO-8601 time.")
    poll_interval_seconds: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    reconcile_interval_seconds: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    max_concurrent_runs: int = Field(default=2, ge=1, le=64)
    max_attempts: int = Field(default=3, ge=1, le=100)
    retry_backoff_seconds: float = Field(default=10.0, ge=0, allow_inf_nan=False)
    run_timeout_seconds: float = Field(default=3600.0, gt=0, allow_inf_nan=False)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, allow_inf_nan=False)
    stack: str | None = Field(default=None, description="ZenML stack to run pipelines on.")
    log_format: Literal["json", "console", "auto"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http_host: str = Field(default="127.0.0.1", min_length=1)
    http_port: int = Field(default=8765, ge=0, le=65535, description="0 turns it off.")
    zenml_api_key_file: Path | None = Field(
        default=None, description="File holding the ZenML API key (Docker secrets)."
    )

    @field_validator("dataset_names", "dataset_required_tags", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("dataset_names")
    @classmethod
    def _at_least_one_dataset(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one artifact to watch")
        return value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _normalise_case(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip()
        return value.upper() if value.upper() in {"DEBUG", "INFO", "WARNING", "ERROR"} else value

    @field_validator("stack", mode="before")
    @classmethod
    def _empty_stack_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("zenml_api_key_file", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("zenml_api_key_file")
    @classmethod
    def _readable_key_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_api_key(value)
        return value

    @field_validator("start_from")
    @classmethod
    def _valid_start_from(cls, value: str) -> str:
        parse_start_from(value)
        return value

    @property
    def start(self) -> StartFrom:
        return parse_start_from(self.start_from)

    @property
    def promotion_policy(self) -> PromotionPolicy:
        return PromotionPolicy(
            metric=self.promotion_metric,
            threshold=self.promotion_threshold,
            must_beat_production=self.promotion_must_beat_production,
        )

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.retry_backoff_seconds)

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "ledger.sqlite"


def read_api_key(path: Path) -> str:
    """The API key in `path`; ValueError that says what is wrong and never shows the key."""
    try:
        key = path.read_text().strip()
    except OSError as error:
        raise ValueError(f"cannot read the API key file: {error.strerror}") from None
    if not key:
        raise ValueError("the API key file is empty")
    return key


def parse_start_from(value: str) -> StartFrom:
    """`now`, `beginning`, or an ISO-8601 time (naive times are taken as UTC)."""
    text = value.strip().lower()
    if text in ("now", "beginning"):
        return StartFrom(mode=text)  # type: ignore[arg-type]
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is not 'now', 'beginning' or an ISO-8601 time like 2026-01-31T12:00:00Z"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return StartFrom(since=moment)


class ConfigError(Exception):
    """Bad configuration: every problem, one per line, each naming its variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def known_variables() -> frozenset[str]:
    return frozenset(env_name(name) for name in Settings.model_fields) | EXTRA_KNOWN_VARIABLES


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`AUTOPILOT_*` variables the daemon does not know: almost always a typo."""
    known = known_variables()
    problems = []
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{name}: unknown setting{hint}")
    return problems


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise ConfigError naming every bad variable."""
    environ = os.environ if environ is None else environ
    problems = unknown_variables(environ)
    settings: Settings | None = None
    try:
        settings = _from(environ)
    except ValidationError as error:
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else "?"
            shown = environ.get(env_name(field), "<unset>")
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{env_name(field)}={shown!r}: {message}")
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


def _from(environ: Mapping[str, str]) -> Settings:
    """Build settings from a mapping of variables (the process environment, or a test's)."""
    values = {
        name: environ[env_name(name)] for name in Settings.model_fields if env_name(name) in environ
    }
    return Settings.model_validate(values)


def describe(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """The effective configuration for `check-config`, with the store's secrets redacted."""
    environ = os.environ if environ is None else environ
    shown: dict[str, object] = {
        env_name(name): _plain(value) for name, value in settings.model_dump().items()
    }
    shown["ZENML_STORE_URL"] = environ.get("ZENML_STORE_URL", "<embedded local store>")
    shown["ZENML_CONFIG_PATH"] = environ.get("ZENML_CONFIG_PATH", "<ZenML default>")
    for secret in SECRET_ZENML_VARIABLES:
        shown[secret] = "<redacted>" if environ.get(secret) else "<unset>"
    return shown


def _plain(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return ",".join(value)
    return value
