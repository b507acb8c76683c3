"""Start-up checks of every automation's pipelines: importable, a ZenML pipeline, and callable
with the configured parameters. Run by `autopilot run` and `autopilot check-config`."""

from __future__ import annotations

import inspect
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from service.core.automation import Automation, PipelineSpec
from service.errors import describe_error
from service.runtime.sources import BUNDLED_ROOT, imported_from, load_attribute
from service.settings import BUNDLED_INFERENCE, BUNDLED_TRAINING, automation_variable

# The bundled pipelines' parameters (tests/integration/test_cli.py checks them against the code).
BUNDLED_PARAMETERS = {
    BUNDLED_TRAINING: {"dataset_version_id"},
    BUNDLED_INFERENCE: {"inference_dataset_name"},
}


class PipelineCheck:
    """`check_pipelines` in a spawned child process, started at once and read when needed:
    importing users' pipelines loads their libraries (scikit-learn, pandas: ~130 MiB here),
    which the daemon itself never needs, and takes ~3 s, spent while the daemon starts up."""

    def __init__(self, automations: tuple[Automation, ...]) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._result: Future[tuple[list[str], dict[str, Any]]] | None = None
        if any(not _bundled_as_is(spec) for a in automations for spec in _specs(a)):
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
            self._result = self._pool.submit(check_pipelines, automations)

    def done(self) -> bool:
        """The check has finished: `problems` answers at once."""
        return self._result is None or self._result.done()

    def abandon(self) -> None:
        """Not waited for (the daemon stops): its process ends when its check does."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def problems(self) -> list[str]:
        if self._pool is None or self._result is None:
            return []  # only the bundled pipelines, as shipped: nothing to check
        try:
            return self._result.result()[0]
        finally:
            self._pool.shutdown()


def _specs(automation: Automation) -> tuple[PipelineSpec, ...]:
    return tuple(automation.pipelines.values())


def _bundled_as_is(spec: PipelineSpec) -> bool:
    """The bundled pipeline with no config and only the parameters it is shipped with."""
    known = BUNDLED_PARAMETERS.get(spec.reference)
    return (
        spec.source_root == BUNDLED_ROOT
        and spec.config_path is None
        and known is not None
        and set(spec.parameters) <= known
    )


def check_pipelines(automations: tuple[Automation, ...]) -> tuple[list[str], dict[str, Any]]:
    """Problems (each naming its variable), and what each automation's pipelines resolved to."""
    problems: list[str] = []
    resolved: dict[str, Any] = {}
    for automation in automations:
        resolved[automation.name] = {
            kind: _check(automation, kind, spec, problems)
            for kind, spec in automation.pipelines.items()
        }
    return problems, resolved


def _check(
    automation: Automation, kind: str, spec: PipelineSpec, problems: list[str]
) -> dict[str, Any]:
    from zenml.pipelines.pipeline_definition import Pipeline

    variable = automation_variable(automation, f"{kind}_pipeline")
    with imported_from(spec.source_root):
        try:
            pipeline = load_attribute(spec.reference)
        except Exception as error:
            problems.append(
                f"{variable}={spec.reference!r}: cannot be imported from {spec.source_root}: "
                f"{describe_error(error)}"
            )
            return {"pipeline": spec.reference, "error": "not importable"}
        if not isinstance(pipeline, Pipeline):
            problems.append(
                f"{variable}={spec.reference!r}: is a {type(pipeline).__name__}, not a ZenML "
                "pipeline (a function decorated with @pipeline)"
            )
            return {"pipeline": spec.reference, "error": "not a pipeline"}
        signature = inspect.signature(pipeline.entrypoint)
        source_file = inspect.getsourcefile(pipeline.entrypoint)
    _check_parameters(automation, kind, spec, pipeline.name, signature, problems)
    return {
        "pipeline": spec.reference,
        "name": pipeline.name,
        "file": source_file,
        "source_root": spec.source_root,
        "signature": str(signature),
        "config": spec.config_path,
        "parameters": dict(spec.parameters),
    }


def _check_parameters(
    automation: Automation,
    kind: str,
    spec: PipelineSpec,
    name: str,
    signature: inspect.Signature,
    problems: list[str],
) -> None:
    variable = automation_variable(automation, f"{kind}_parameters")
    accepted = signature.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    for given_name in spec.parameters:
        if given_name not in accepted and not takes_any:
            problems.append(
                f"{variable}: pipeline {name} does not accept parameter {given_name!r} "
                f"(it takes {', '.join(accepted) or 'none'})"
            )
    given = set(spec.parameters) | _config_parameters(spec.config_path)
    for parameter in accepted.values():
        required = parameter.default is inspect.Parameter.empty and parameter.kind not in (
            inspect.Parameter.VAR_KEYWORD,
            inspect.Parameter.VAR_POSITIONAL,
        )
        if required and parameter.name not in given:
            problems.append(
                f"{variable}: pipeline {name} needs parameter {parameter.name!r}: give it here "
                "(e.g. a placeholder) or under `parameters:` in its config"
            )


def _config_parameters(config_path: str | None) -> set[str]:
    if config_path is None:
        return set()
    loaded = yaml.safe_load(Path(config_path).read_text()) or {}
    parameters = loaded.get("parameters") or {}
    return set(parameters) if isinstance(parameters, dict) else set()
