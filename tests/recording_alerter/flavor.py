"""The `recording` alerter flavor (test only): see the package docstring."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenml.alerter import BaseAlerter, BaseAlerterConfig, BaseAlerterFlavor
from zenml.enums import StackComponentType

if TYPE_CHECKING:
    from zenml.client import Client

FLAVOR = "recording"
POSTS = "posts.jsonl"


class RecordingAlerterConfig(BaseAlerterConfig):
    root: str


class RecordingAlerter(BaseAlerter):
    @property
    def config(self) -> RecordingAlerterConfig:
        return self._config  # type: ignore[return-value]

    def post(self, message: str, params: Any = None) -> bool:
        line = json.dumps({"message": message, "pid": os.getpid()})
        with open(Path(self.config.root) / POSTS, "a") as posts:
            posts.write(line + "\n")
        return True

    def ask(self, question: str, params: Any = None) -> bool:
        return False


class RecordingAlerterFlavor(BaseAlerterFlavor):
    @property
    def name(self) -> str:
        return FLAVOR

    @property
    def config_class(self) -> type[RecordingAlerterConfig]:
        return RecordingAlerterConfig

    @property
    def implementation_class(self) -> type[RecordingAlerter]:
        return RecordingAlerter


def register_alerter(client: Client, root: Path, stack: str = "alerting") -> Path:
    """The flavor, an alerter of it, and `stack`: the active stack's orchestrator and artifact
    store with that alerter (ZenML's default stack cannot be changed). Returns the file its
    posts go to."""
    root.mkdir(parents=True, exist_ok=True)
    source = f"{__name__}.{RecordingAlerterFlavor.__name__}"
    client.create_flavor(source=source, component_type=StackComponentType.ALERTER)
    client.create_stack_component(
        name="recording",
        flavor=FLAVOR,
        component_type=StackComponentType.ALERTER,
        configuration={"root": str(root)},
    )
    active = client.active_stack_model.components
    components: dict[StackComponentType, Any] = {
        kind: str(active[kind][0].id)
        for kind in (StackComponentType.ORCHESTRATOR, StackComponentType.ARTIFACT_STORE)
    }
    components[StackComponentType.ALERTER] = "recording"
    client.create_stack(name=stack, components=components)
    return root / POSTS


def posts(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["message"] for line in path.read_text().splitlines()]
