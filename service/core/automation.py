"""An automation: which datasets it watches, which model it trains, and with which pipelines.

A plain value built from settings. The tick runs the same code for every automation; one daemon
runs any number of them, each with its own cursors, ledger rows and log field `automation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from service.core.promotion import PromotionPolicy
from service.core.schedule import Catchup, Schedule
from service.core.triggers import TrainingPolicy

DEFAULT_AUTOMATION = "default"


class DatasetRole(StrEnum):
    """What an automation does with a new selected version of an artifact it watches."""

    TRAINING = "training"  # trains on it (`DATASET_NAMES`)
    SCORING = "scoring"  # scores it with the production version (`SCORING_DATASET_NAMES`)


@dataclass(frozen=True)
class PipelineSpec:
    """A user's ZenML pipeline and how to call it."""

    reference: str  # "module:attribute" of a @pipeline
    source_root: str  # folder the module is imported from; ZenML's source root for its runs
    config_path: str | None = None  # a ZenML run-configuration YAML
    parameters: Mapping[str, Any] = field(default_factory=dict)  # values may hold placeholders

    @property
    def module(self) -> str:
        return self.reference.partition(":")[0]


class PromotionMode(StrEnum):
    """How a version that passes the promotion policy is carried out (`core/approval.py`)."""

    AUTO = "auto"  # it goes to production
    APPROVAL = "approval"  # it goes to staging and waits for a person


@dataclass(frozen=True)
class Evaluation:
    """Champion against challenger (`core/evaluation.py`): a pipeline that scores one model
    version on one version of an evaluation dataset, and which dataset versions it may use."""

    pipeline: PipelineSpec
    dataset_name: str
    required_tags: tuple[str, ...]


@dataclass(frozen=True)
class Automation:
    name: str
    dataset_names: tuple[str, ...]
    required_tags: tuple[str, ...]
    model_name: str
    training: PipelineSpec
    inference: PipelineSpec
    promotion: PromotionPolicy
    env_prefix: str = "AUTOPILOT_"  # its variables: AUTOPILOT_AUTOMATIONS__<NAME>__ when named
    # Artifacts whose new versions are data to score; none: inference on production changes only.
    scoring_dataset_names: tuple[str, ...] = ()
    scoring_required_tags: tuple[str, ...] = ()
    notify_events: frozenset[str] | None = None  # None: the daemon's AUTOPILOT_NOTIFY_EVENTS
    promotion_mode: PromotionMode = PromotionMode.AUTO
    approval_timeout_seconds: float | None = None  # None: a version waits for ever
    rollback_on_failure: bool = False  # its own promotion's deployment or inference failed
    deployment: PipelineSpec | None = None  # run before each production change's inference
    # When selected versions train (core/triggers); the default trains each one at once.
    training_policy: TrainingPolicy = field(default_factory=TrainingPolicy)
    inference_schedule: Schedule | None = None  # an inference at each fire (stages/schedules)
    schedule_catchup: Catchup = Catchup.LATEST  # fires missed while the daemon was down
    evaluation: Evaluation | None = None  # None: candidates are judged on their training metric

    @property
    def pipelines(self) -> dict[str, PipelineSpec]:
        """Its pipelines by kind: `training`, `inference`, and `evaluation` and `deployment`
        when it has them."""
        specs = {"training": self.training, "inference": self.inference}
        if self.evaluation is not None:
            specs["evaluation"] = self.evaluation.pipeline
        if self.deployment is not None:
            specs["deployment"] = self.deployment
        return specs

    def dataset_names_in(self, role: DatasetRole) -> tuple[str, ...]:
        return self.dataset_names if role is DatasetRole.TRAINING else self.scoring_dataset_names

    def required_tags_in(self, role: DatasetRole) -> tuple[str, ...]:
        return self.required_tags if role is DatasetRole.TRAINING else self.scoring_required_tags

    def role_of(self, artifact: str) -> DatasetRole | None:
        """The role of a watched artifact (a name has one role per automation)."""
        for role in DatasetRole:
            if artifact in self.dataset_names_in(role):
                return role
        return None

    def dataset_stream(self, artifact: str, role: DatasetRole = DatasetRole.TRAINING) -> str:
        """`<automation>/dataset:<name>` (training, named before roles) or `/scoring:<name>`."""
        kind = "dataset" if role is DatasetRole.TRAINING else role.value
        return f"{self.name}/{kind}:{artifact}"

    @property
    def model_stream(self) -> str:
        return f"{self.name}/model:{self.model_name}"

    @property
    def production_stream(self) -> str:
        return f"{self.name}/production:{self.model_name}"
