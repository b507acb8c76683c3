"""Configuration from `AUTOPILOT_*` environment variables (pydantic-settings).

Every setting has a default that works for the demo. `load_settings` collects every problem at
once, so a person fixing a deployment sees all bad variables in one start-up attempt.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SkipValidation,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.core import templates
from service.core.automation import (
    DEFAULT_AUTOMATION,
    Automation,
    Evaluation,
    PipelineSpec,
    PromotionMode,
)
from service.core.names import folded
from service.core.promotion import Goal, PromotionPolicy
from service.core.retry import RetryPolicy
from service.core.schedule import Catchup, Schedule, parse_schedule
from service.core.startup import StartFrom
from service.core.triggers import TrainingPolicy
from service.notify.events import parse_event_names
from service.notify.outbox import webhook_destination
from service.redact import redact_url
from service.runtime.sources import BUNDLED_ROOT

ENV_PREFIX = "AUTOPILOT_"
# Variables the daemon reads itself rather than through Settings (test-only fault injection).
EXTRA_KNOWN_VARIABLES = frozenset({"AUTOPILOT_TEST_CRASH_AT", "AUTOPILOT_TEST_PAUSE_AT"})
# ZenML's own variables that hold secrets: never printed.
SECRET_ZENML_VARIABLES = ("ZENML_STORE_API_KEY", "ZENML_STORE_PASSWORD")
# Settings whose value is never echoed, not even in an error message (a Slack or Discord
# webhook URL is a credential too).
SECRET_SETTINGS = frozenset({"notify_webhook_urls", "notify_webhook_secret"})

AUTOMATIONS_PREFIX = f"{ENV_PREFIX}AUTOMATIONS__"
AUTOMATION_NAME = re.compile(r"[a-z0-9_]{1,40}")
PIPELINE_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
# The bundled pipelines (`pipelines/`), in the same contract as a user's.
INFERENCE_DATASET = "iris_inference_dataset"
BUNDLED_TRAINING = "pipelines.training:training_pipeline"
BUNDLED_INFERENCE = "pipelines.inference:do_predictions"
BUNDLED_TRAINING_PARAMETERS = {"dataset_version_id": "{{ dataset.id }}"}
# The bundled inference of an automation with scoring datasets scores exactly that version.
BUNDLED_SCORING_PARAMETERS = {"inference_dataset_id": "{{ scoring_dataset.id }}"}

CommaList = Annotated[list[str], NoDecode]


class AutomationSettings(BaseModel):
    """One automation's variables: `AUTOPILOT_<FIELD>` (the single-automation form) or
    `AUTOPILOT_AUTOMATIONS__<NAME>__<FIELD>`. Values are strings from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset_names: CommaList = Field(default=["iris_training_dataset"])
    dataset_required_tags: CommaList = Field(default=["approved"])
    scoring_dataset_names: CommaList = Field(default=[])
    scoring_dataset_required_tags: CommaList = Field(default=[])
    model_name: str = Field(default="iris_classifier", min_length=1)
    training_pipeline: str | None = None
    training_config: str | None = None
    training_parameters: dict[str, Any] | None = None
    promotion_metric: str = Field(default="accuracy", min_length=1)
    promotion_metric_artifact: str | None = None
    promotion_goal: Goal = Goal.MAXIMIZE
    promotion_threshold: float = Field(default=0.9, allow_inf_nan=False)
    promotion_must_beat_production: bool = True
    promotion_mode: PromotionMode = PromotionMode.AUTO
    approval_timeout_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    rollback_on_failure: bool = False
    promotion_min_improvement: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    inference_pipeline: str | None = None
    inference_config: str | None = None
    inference_parameters: dict[str, Any] | None = None
    deployment_pipeline: str | None = None  # none: inference follows a production change
    deployment_config: str | None = None
    deployment_parameters: dict[str, Any] | None = None
    inference_dataset_name: str = Field(default=INFERENCE_DATASET, min_length=1)  # single form
    # When to train and infer (issue 20; core/triggers.py, core/schedule.py).
    training_schedule: str | None = None
    training_schedule_always: bool = False
    training_debounce_seconds: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    training_min_interval_seconds: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    training_latest_only: bool = False
    inference_schedule: str | None = None
    schedule_catchup: Catchup = Catchup.LATEST
    # Champion against challenger (core/evaluation.py): both versions scored on one dataset.
    evaluation_pipeline: str | None = None
    evaluation_config: str | None = None
    evaluation_parameters: dict[str, Any] | None = None
    evaluation_dataset_name: str | None = None
    evaluation_dataset_required_tags: CommaList = Field(default=["approved"])
    source_root: str | None = None  # named form; the single form uses AUTOPILOT_SOURCE_ROOT
    notify_events: str | None = None  # named form; the single form uses AUTOPILOT_NOTIFY_EVENTS

    @field_validator(
        "dataset_names",
        "dataset_required_tags",
        "scoring_dataset_names",
        "scoring_dataset_required_tags",
        "evaluation_dataset_required_tags",
        mode="before",
    )
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

    @field_validator(
        "training_pipeline",
        "training_config",
        "inference_pipeline",
        "inference_config",
        "deployment_pipeline",
        "deployment_config",
        "promotion_metric_artifact",
        "approval_timeout_seconds",
        "source_root",
        "training_schedule",
        "inference_schedule",
        "evaluation_pipeline",
        "evaluation_config",
        "evaluation_dataset_name",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("promotion_goal", "promotion_mode", "schedule_catchup", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("training_schedule", "inference_schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            parse_schedule(value)  # ValueError says what is wrong
        return value

    @field_validator(
        "training_pipeline", "inference_pipeline", "evaluation_pipeline", "deployment_pipeline"
    )
    @classmethod
    def _pipeline_reference(cls, value: str | None) -> str | None:
        if value is not None and not PIPELINE_REFERENCE.fullmatch(value.strip()):
            raise ValueError("expected module:attribute, e.g. pipelines.training:training")
        return None if value is None else value.strip()

    @field_validator(
        "training_parameters",
        "inference_parameters",
        "evaluation_parameters",
        "deployment_parameters",
        mode="before",
    )
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON: {error}") from None
        if not isinstance(parsed, dict):
            raise ValueError("expected a JSON object of pipeline parameters")
        return parsed

    @field_validator("notify_events")
    @classmethod
    def _known_events(cls, value: str | None) -> str | None:
        if value is not None:
            parse_event_names(value)
        return value

    @field_validator("training_parameters")
    @classmethod
    def _training_placeholders(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _known_placeholders(value, training=True)

    @field_validator("inference_parameters", "deployment_parameters")
    @classmethod
    def _inference_placeholders(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _known_placeholders(value, training=False)

    @field_validator("evaluation_parameters")
    @classmethod
    def _evaluation_placeholders(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _known_placeholders(value, kind="evaluation")


def _known_placeholders(
    value: dict[str, Any] | None, training: bool = True, kind: str | None = None
) -> dict[str, Any] | None:
    if value is None:
        return None
    kind = kind or ("training" if training else "inference")
    unknown = templates.unknown_for(value, kind)
    if unknown:
        known, prefixes = templates.KNOWN[kind]
        offered = ", ".join([*known, *(f"{p}<name>" for p in prefixes)])
        raise ValueError(f"unknown placeholder {', '.join(unknown)} (known: {offered})")
    return value


# Fields of AutomationSettings in each form.
AUTOMATION_FIELDS = tuple(AutomationSettings.model_fields)
NAMED_ONLY_FIELDS = ("source_root", "notify_events")
SINGLE_FORM_FIELDS = tuple(f for f in AUTOMATION_FIELDS if f not in NAMED_ONLY_FIELDS)
NAMED_FORM_FIELDS = tuple(f for f in AUTOMATION_FIELDS if f != "inference_dataset_name")
NAMED_REQUIRED = ("dataset_names", "model_name")


class Settings(BaseSettings):
    """The daemon-wide settings. Field `x` is read from `AUTOPILOT_X`; the automations are
    built from their own variables by `load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, arbitrary_types_allowed=True
    )

    automations: Annotated[tuple[Automation, ...], SkipValidation] = Field(default=(), exclude=True)
    source_root: Path = Field(
        default=Path("."), description="Folder users' pipelines are imported from."
    )
    state_dir: Path = Path(".autopilot")
    start_from: str = Field(default="now", description="now, beginning, or an ISO-8601 time.")
    poll_interval_seconds: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    reconcile_interval_seconds: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    max_concurrent_runs: int = Field(default=2, ge=1, le=64)
    max_attempts: int = Field(default=3, ge=1, le=100)
    retry_backoff_seconds: float = Field(default=10.0, ge=0, allow_inf_nan=False)
    run_timeout_seconds: float = Field(default=3600.0, gt=0, allow_inf_nan=False)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, allow_inf_nan=False)
    producer_wait_seconds: float = Field(
        default=86400.0,
        gt=0,
        allow_inf_nan=False,
        description="How long a dataset version waits on its producing run before it is skipped.",
    )
    stack: str | None = Field(default=None, description="ZenML stack to run pipelines on.")
    sqlite_wal: bool = Field(
        default=True,
        description="Switch a local SQLite store to write-ahead logging (WAL) at start.",
    )
    log_format: Literal["json", "console", "auto"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http_host: str = Field(default="127.0.0.1", min_length=1)
    http_port: int = Field(default=8765, ge=0, le=65535, description="0 turns it off.")
    zenml_api_key_file: Path | None = Field(
        default=None, description="File holding the ZenML API key (Docker secrets)."
    )
    # Notifications (docs/notifications.md, service/notify/).
    notify_webhook_urls: CommaList = Field(default=[], description="http(s) URLs, comma-separated.")
    notify_webhook_secret: SecretStr | None = None
    notify_webhook_secret_file: Path | None = None
    notify_alerter: bool = False
    notify_events: str = Field(default="default", description="event names, default, all.")
    notify_outage_after_seconds: float = Field(default=600.0, gt=0, allow_inf_nan=False)
    notify_max_age_seconds: float = Field(default=86400.0, gt=0, allow_inf_nan=False)
    notify_timeout_seconds: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    notify_retry_backoff_seconds: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    notify_retry_max_backoff_seconds: float = Field(default=300.0, gt=0, allow_inf_nan=False)

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

    @field_validator("notify_webhook_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("notify_webhook_urls")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for number, url in enumerate(value, start=1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                shown = f"{parts.scheme}://{parts.hostname}/..." if parts.scheme else "no scheme"
                raise ValueError(f"URL {number} ({shown}) is not an http(s) URL with a host")
            if url in value[: number - 1]:
                raise ValueError(f"URL {number} is URL {value.index(url) + 1} again")
        return value

    @field_validator("notify_webhook_secret", "notify_webhook_secret_file", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("notify_webhook_secret_file")
    @classmethod
    def _readable_secret_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        if info.data.get("notify_webhook_secret") is not None:
            raise ValueError(
                "set AUTOPILOT_NOTIFY_WEBHOOK_SECRET or AUTOPILOT_NOTIFY_WEBHOOK_SECRET_FILE, "
                "not both"
            )
        read_secret_file(value)
        return value

    @field_validator("notify_events")
    @classmethod
    def _known_events(cls, value: str) -> str:
        parse_event_names(value)
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
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.retry_backoff_seconds)

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "ledger.sqlite"

    @property
    def notify_event_names(self) -> frozenset[str]:
        return parse_event_names(self.notify_events)

    def webhook_secret(self) -> str | None:
        """The secret webhook requests are signed with (never logged: `cli` registers it)."""
        if self.notify_webhook_secret is not None:
            return self.notify_webhook_secret.get_secret_value()
        if self.notify_webhook_secret_file is not None:
            return read_secret_file(self.notify_webhook_secret_file)
        return None


def read_secret_file(path: Path) -> str:
    """The secret in `path`, stripped; ValueError that says what is wrong, never the secret."""
    try:
        secret = path.read_text().strip()
    except OSError as error:
        raise ValueError(f"cannot read the secret file: {error.strerror}") from None
    if not secret:
        raise ValueError("the secret file is empty")
    return secret


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


def automation_variable(automation: Automation | str, field: str) -> str:
    """The variable that sets `field` of an automation, e.g. AUTOPILOT_AUTOMATIONS__CHURN__
    MODEL_NAME (or AUTOPILOT_MODEL_NAME for the single-automation form)."""
    prefix = automation.env_prefix if isinstance(automation, Automation) else automation
    return f"{prefix}{field.upper()}"


def known_variables() -> frozenset[str]:
    daemon_wide = {env_name(name) for name in Settings.model_fields if name != "automations"}
    single_form = {env_name(name) for name in SINGLE_FORM_FIELDS}
    return frozenset(daemon_wide | single_form) | EXTRA_KNOWN_VARIABLES


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`AUTOPILOT_*` variables the daemon does not know: almost always a typo."""
    known = known_variables()
    problems = []
    for name in sorted(environ):
        if (
            name.startswith(ENV_PREFIX)
            and name not in known
            and not name.upper().startswith(AUTOMATIONS_PREFIX)
        ):
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
        problems += _named_problems(error, lambda field: env_name(field), environ)
    automations = _automations(environ, settings.source_root if settings else Path("."), problems)
    if problems or settings is None:
        raise ConfigError(problems)
    return settings.model_copy(update={"automations": tuple(automations)})


def _from(environ: Mapping[str, str]) -> Settings:
    """Build the daemon-wide settings from a mapping of variables."""
    values = {
        name: environ[env_name(name)]
        for name in Settings.model_fields
        if name != "automations" and env_name(name) in environ
    }
    return Settings.model_validate(values)


def _named_problems(error: ValidationError, variable: Any, environ: Mapping[str, str]) -> list[str]:
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        name = variable(field)
        shown = "<redacted>" if field in SECRET_SETTINGS else environ.get(name, "<unset>")
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{name}={shown!r}: {message}")
    return problems


def _automations(
    environ: Mapping[str, str], source_root: Path, problems: list[str]
) -> list[Automation]:
    """The automations the variables define: named ones, or else the single `default` one."""
    named, named_problems = _group_named(environ)
    problems += named_problems
    if not named and not named_problems:
        values = {f: environ[env_name(f)] for f in SINGLE_FORM_FIELDS if env_name(f) in environ}
        built = _automation(DEFAULT_AUTOMATION, ENV_PREFIX, values, source_root, environ, problems)
        return [built] if built else []
    single = sorted(env_name(f) for f in SINGLE_FORM_FIELDS if env_name(f) in environ)
    for name in single:
        problems.append(
            f"{name}: a single-automation setting cannot be mixed with "
            f"{AUTOMATIONS_PREFIX}<NAME>__<FIELD> variables: set it per automation instead"
        )
    automations = []
    for name, values in sorted(named.items()):
        prefix = f"{AUTOMATIONS_PREFIX}{name.upper()}__"
        missing = [f for f in NAMED_REQUIRED if f not in values]
        for field in missing:
            problems.append(f"{prefix}{field.upper()}: required for automation {name!r} (unset)")
        if missing:
            continue
        built = _automation(name, prefix, values, source_root, environ, problems)
        if built:
            automations.append(built)
    _one_automation_per_model(automations, problems)
    return automations


def _group_named(environ: Mapping[str, str]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """`AUTOPILOT_AUTOMATIONS__<NAME>__<FIELD>` variables by lower-cased automation name."""
    groups: dict[str, dict[str, str]] = {}
    problems = []
    fields = [f.upper() for f in NAMED_FORM_FIELDS]
    for variable in sorted(environ):
        if not variable.upper().startswith(AUTOMATIONS_PREFIX):
            continue
        name, sep, field = variable[len(AUTOMATIONS_PREFIX) :].partition("__")
        name, field = name.lower(), field.upper()
        if not sep or not name or not field:
            problems.append(f"{variable}: expected {AUTOMATIONS_PREFIX}<NAME>__<FIELD>")
        elif not AUTOMATION_NAME.fullmatch(name):
            problems.append(
                f"{variable}: automation name {name!r} may hold only letters, digits and _ "
                "(at most 40)"
            )
        elif field not in fields:
            close = difflib.get_close_matches(field, fields, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{variable}: unknown automation field {field}{hint}")
        else:
            groups.setdefault(name, {})[field.lower()] = environ[variable]
    return groups, problems


def _automation(
    name: str,
    prefix: str,
    values: Mapping[str, str],
    source_root: Path,
    environ: Mapping[str, str],
    problems: list[str],
) -> Automation | None:
    try:
        parsed = AutomationSettings.model_validate(values)
    except ValidationError as error:
        shown = {f"{prefix}{field.upper()}": value for field, value in values.items()}
        problems += _named_problems(error, lambda field: f"{prefix}{field.upper()}", shown)
        return None
    root = Path(parsed.source_root) if parsed.source_root else source_root
    if not root.is_dir():
        variable = f"{prefix}SOURCE_ROOT" if parsed.source_root else env_name("source_root")
        problems.append(f"{variable}={str(root)!r}: no such folder")
        return None
    root = root.resolve()
    if _scoring_problems(prefix, parsed, problems):
        return None
    bundled_inference = (
        BUNDLED_SCORING_PARAMETERS
        if parsed.scoring_dataset_names
        else {"inference_dataset_name": parsed.inference_dataset_name}
    )
    training = _pipeline_spec(
        prefix, "training", parsed, root, problems, (BUNDLED_TRAINING, BUNDLED_TRAINING_PARAMETERS)
    )
    inference = _pipeline_spec(
        prefix, "inference", parsed, root, problems, (BUNDLED_INFERENCE, bundled_inference)
    )
    evaluation = _evaluation(prefix, parsed, root, problems)
    deployment = _deployment(prefix, parsed, root, problems)
    if training is None or inference is None or evaluation is False or deployment is False:
        return None
    if parsed.training_schedule_always and parsed.training_schedule is None:
        problems.append(
            f"{prefix}TRAINING_SCHEDULE_ALWAYS=true: retrains at each fire of "
            f"{prefix}TRAINING_SCHEDULE, which is not set"
        )
        return None
    return Automation(
        name=name,
        dataset_names=tuple(parsed.dataset_names),
        required_tags=tuple(parsed.dataset_required_tags),
        model_name=parsed.model_name,
        training=training,
        inference=inference,
        promotion=PromotionPolicy(
            metric=parsed.promotion_metric,
            threshold=parsed.promotion_threshold,
            must_beat_production=parsed.promotion_must_beat_production,
            goal=parsed.promotion_goal,
            metric_artifact=parsed.promotion_metric_artifact,
            min_improvement=parsed.promotion_min_improvement,
        ),
        env_prefix=prefix,
        scoring_dataset_names=tuple(parsed.scoring_dataset_names),
        scoring_required_tags=tuple(parsed.scoring_dataset_required_tags),
        training_policy=TrainingPolicy(
            schedule=_schedule(parsed.training_schedule),
            schedule_always=parsed.training_schedule_always,
            debounce_seconds=parsed.training_debounce_seconds,
            min_interval_seconds=parsed.training_min_interval_seconds,
            latest_only=parsed.training_latest_only,
        ),
        inference_schedule=_schedule(parsed.inference_schedule),
        schedule_catchup=parsed.schedule_catchup,
        notify_events=None
        if parsed.notify_events is None
        else parse_event_names(parsed.notify_events),
        promotion_mode=parsed.promotion_mode,
        approval_timeout_seconds=parsed.approval_timeout_seconds,
        rollback_on_failure=parsed.rollback_on_failure,
        deployment=deployment,
        evaluation=evaluation,
    )


def _scoring_problems(prefix: str, parsed: AutomationSettings, problems: list[str]) -> bool:
    """A name watched both to train on and to score (compared as MySQL compares names: one
    artifact there), or `{{ scoring_dataset.* }}` asked for without scoring datasets. True if
    there was one."""
    found = []
    training = {folded(name): name for name in parsed.dataset_names}
    for name in parsed.scoring_dataset_names:
        if folded(name) in training:
            found.append(
                f"{prefix}SCORING_DATASET_NAMES: {name!r} is also in {prefix}DATASET_NAMES "
                f"({training[folded(name)]!r}): an artifact is either trained on or scored by "
                "one automation, not both"
            )
    parameters = parsed.inference_parameters or {}
    if not parsed.scoring_dataset_names and templates.uses_scoring_dataset(parameters):
        found.append(
            f"{prefix}INFERENCE_PARAMETERS: uses {{{{ scoring_dataset.* }}}} but "
            f"{prefix}SCORING_DATASET_NAMES is unset: name the artifacts to score"
        )
    problems += found
    return bool(found)


def _evaluation(
    prefix: str, parsed: AutomationSettings, source_root: Path, problems: list[str]
) -> Evaluation | Literal[False] | None:
    """The evaluation pipeline and its dataset, None when there is none, False when they are
    configured wrong (each problem named). There is no bundled evaluation pipeline: its other
    settings mean nothing without one, and it means nothing without its dataset."""
    if parsed.evaluation_pipeline is None:
        given = [
            f"{prefix}EVALUATION_{name.upper()}"
            for name in ("config", "parameters", "dataset_name")
            if getattr(parsed, f"evaluation_{name}") is not None
        ]
        for variable in given:
            problems.append(
                f"{variable}: set without {prefix}EVALUATION_PIPELINE (there is no bundled "
                "evaluation pipeline): set the pipeline too, or remove it"
            )
        return False if given else None
    if parsed.evaluation_dataset_name is None:
        problems.append(
            f"{prefix}EVALUATION_DATASET_NAME: required with {prefix}EVALUATION_PIPELINE "
            "(the artifact whose newest approved version both versions are scored on)"
        )
        return False
    spec = _pipeline_spec(prefix, "evaluation", parsed, source_root, problems, ("", {}))
    if spec is None:
        return False
    return Evaluation(
        pipeline=spec,
        dataset_name=parsed.evaluation_dataset_name,
        required_tags=tuple(parsed.evaluation_dataset_required_tags),
    )


def _deployment(
    prefix: str, parsed: AutomationSettings, source_root: Path, problems: list[str]
) -> PipelineSpec | Literal[False] | None:
    """The deployment pipeline, None when there is none, False when it is configured wrong
    (each problem named). There is no bundled deployment pipeline."""
    if parsed.deployment_pipeline is None:
        if parsed.deployment_config is None and parsed.deployment_parameters is None:
            return None
        problems.append(
            f"{prefix}DEPLOYMENT_PIPELINE: unset, but {prefix}DEPLOYMENT_CONFIG or "
            f"{prefix}DEPLOYMENT_PARAMETERS is set: name the deployment pipeline too"
        )
        return False
    spec = _pipeline_spec(prefix, "deployment", parsed, source_root, problems, ("", {}))
    return False if spec is None else spec


def _schedule(spec: str | None) -> Schedule | None:
    return None if spec is None else parse_schedule(spec)


def _pipeline_spec(
    prefix: str,
    kind: str,
    parsed: AutomationSettings,
    source_root: Path,
    problems: list[str],
    default: tuple[str, dict[str, Any]],
) -> PipelineSpec | None:
    """The `kind` ("training", "inference", "evaluation" or "deployment") pipeline as
    configured; the bundled one (from this project's folder) when unset (there is no bundled
    evaluation or deployment)."""
    reference: str | None = getattr(parsed, f"{kind}_pipeline")
    config: str | None = getattr(parsed, f"{kind}_config")
    parameters: dict[str, Any] | None = getattr(parsed, f"{kind}_parameters")
    bundled = reference is None
    root = BUNDLED_ROOT if bundled else str(source_root)
    config_path = None
    if config is not None:
        path = Path(config) if Path(config).is_absolute() else source_root / config
        problem = _config_problem(path)
        if problem:
            problems.append(f"{prefix}{kind.upper()}_CONFIG={config!r}: {problem}")
            return None
        config_path = str(path.resolve())
    if parameters is None:
        parameters = dict(default[1]) if bundled else {}
    return PipelineSpec(
        reference=default[0] if bundled else str(reference),
        source_root=root,
        config_path=config_path,
        parameters=parameters,
    )


def _config_problem(path: Path) -> str | None:
    if not path.is_file():
        return f"no such file ({path})"
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        return f"not a readable YAML file: {error}"
    if loaded is not None and not isinstance(loaded, dict):
        return "a ZenML run configuration must be a YAML mapping"
    return None


def _one_automation_per_model(automations: list[Automation], problems: list[str]) -> None:
    by_model: dict[str, list[Automation]] = {}
    for automation in automations:
        by_model.setdefault(automation.model_name, []).append(automation)
    for model, owners in sorted(by_model.items()):
        if len(owners) > 1:
            variables = ", ".join(automation_variable(a, "model_name") for a in owners)
            names = ", ".join(a.name for a in owners)
            problems.append(
                f"{variables}: model {model!r} is watched by automations {names}; "
                "a model belongs to one automation"
            )


def describe(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """The effective configuration for `check-config`, with the store's secrets redacted."""
    environ = os.environ if environ is None else environ
    shown: dict[str, object] = {
        env_name(name): _plain(value) for name, value in settings.model_dump().items()
    }
    shown["automations"] = {a.name: describe_automation(a) for a in settings.automations}
    store_url = environ.get("ZENML_STORE_URL", "<embedded local store>")
    shown["ZENML_STORE_URL"] = redact_url(store_url)
    shown["ZENML_CONFIG_PATH"] = environ.get("ZENML_CONFIG_PATH", "<ZenML default>")
    for secret in SECRET_ZENML_VARIABLES:
        shown[secret] = "<redacted>" if environ.get(secret) else "<unset>"
    # Webhook URLs are credentials (Slack, Discord): shown by their destination names only.
    shown[env_name("notify_webhook_urls")] = [
        webhook_destination(url) for url in settings.notify_webhook_urls
    ]
    shown[env_name("notify_webhook_secret")] = (
        "<redacted>" if settings.notify_webhook_secret is not None else "<unset>"
    )
    shown["notify_events_resolved"] = sorted(settings.notify_event_names)
    return shown


def describe_automation(automation: Automation) -> dict[str, object]:
    policy = automation.promotion
    return {
        "dataset_names": list(automation.dataset_names),
        "dataset_required_tags": list(automation.required_tags),
        "scoring_dataset_names": list(automation.scoring_dataset_names),
        "scoring_dataset_required_tags": list(automation.scoring_required_tags),
        "model_name": automation.model_name,
        "training": _describe_pipeline(automation.training),
        "promotion": {
            "metric": policy.metric,
            "read_from": policy.source,
            "goal": policy.goal.value,
            "threshold": policy.threshold,
            "must_beat_production": policy.must_beat_production,
            "min_improvement": policy.min_improvement,
        },
        "promotion_mode": automation.promotion_mode.value,
        "approval_timeout_seconds": automation.approval_timeout_seconds,
        "rollback_on_failure": automation.rollback_on_failure,
        "deployment": None
        if automation.deployment is None
        else _describe_pipeline(automation.deployment),
        "inference": _describe_pipeline(automation.inference),
        "training_policy": automation.training_policy.describe(),
        "inference_schedule": (
            automation.inference_schedule.spec if automation.inference_schedule else None
        ),
        "schedule_catchup": automation.schedule_catchup.value,
        "notify_events": None
        if automation.notify_events is None
        else sorted(automation.notify_events),
        "evaluation": _describe_evaluation(automation.evaluation),
    }


def _describe_evaluation(evaluation: Evaluation | None) -> dict[str, object] | None:
    if evaluation is None:
        return None
    return {
        **_describe_pipeline(evaluation.pipeline),
        "dataset_name": evaluation.dataset_name,
        "dataset_required_tags": list(evaluation.required_tags),
    }


def _describe_pipeline(spec: PipelineSpec) -> dict[str, object]:
    return {
        "pipeline": spec.reference,
        "source_root": spec.source_root,
        "bundled": spec.source_root == BUNDLED_ROOT,
        "config": spec.config_path,
        "parameters": dict(spec.parameters),
    }


def _plain(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return ",".join(value)
    return value
