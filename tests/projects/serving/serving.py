"""A deployment and an inference pipeline, as a user's project (its own source root): the
deployment "starts a model server" by writing the model version it is pinned to into an
endpoint file; the inference asks that server, and fails unless it serves its own pinned
version, so an inference launched before its deployment succeeded cannot pass. Either
refuses (fails its step) for the version numbers listed in its `refuse` file, so a test
decides up front which version's deployment or inference fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import get_step_context, pipeline, step


def _pinned(version_id: str) -> str:
    """The model version the run was pinned to, which its parameters name too."""
    model = get_step_context().model
    if model is None or str(model.id) != version_id:
        raise RuntimeError(f"run on model version {model and model.id}, not {version_id}")
    return version_id


def _refuse_if(refuse: str, what: str) -> None:
    model = get_step_context().model
    listed = Path(refuse).read_text().split() if refuse and Path(refuse).exists() else []
    if model is not None and str(model.number) in listed:
        raise RuntimeError(f"{what} of version {model.number} refused ({refuse})")


@step(enable_cache=False)
def start_server(
    endpoint: str, version_id: str, refuse: str
) -> Annotated[str, "deployed_model_version"]:
    _refuse_if(refuse, "deployment")
    Path(endpoint).write_text(_pinned(version_id))
    return version_id


@step(enable_cache=False)
def ask_server(endpoint: str, version_id: str, refuse: str) -> Annotated[str, "served_by"]:
    _refuse_if(refuse, "inference")
    served = Path(endpoint).read_text() if Path(endpoint).exists() else None
    if served != _pinned(version_id):
        raise RuntimeError(f"the server serves {served}, not {version_id}: not deployed yet")
    return served


@pipeline(enable_cache=False)
def deploy(endpoint: str, version_id: str, refuse: str = "") -> None:
    start_server(endpoint, version_id, refuse)


@pipeline(enable_cache=False)
def infer(endpoint: str, version_id: str, refuse: str = "") -> None:
    ask_server(endpoint, version_id, refuse)
