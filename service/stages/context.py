"""What every stage of the tick shares: the ledger, the store, the settings, the automations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from service.core.automation import Automation
from service.ledger import Ledger
from service.logs import get_logger
from service.settings import Settings
from service.store import StoreAdapter

DATASET, MODEL = "dataset", "model"


@dataclass
class Context:
    settings: Settings
    ledger: Ledger
    store: StoreAdapter
    automations: dict[str, Automation] = field(init=False)

    def __post_init__(self) -> None:
        self.automations = {a.name: a for a in self.settings.automations}

    def log(self, automation: Automation | str) -> Any:
        """The logger of one automation: every event carries its name."""
        name = automation if isinstance(automation, str) else automation.name
        return get_logger().bind(automation=name)


def utc_now() -> datetime:
    """Naive UTC, like ZenML's timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)
