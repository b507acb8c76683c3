"""Start-up checks of every automation's pipelines: importable, a ZenML pipeline, and callable
with the configured parameters. Run by `autopilot run` and `autopilot check-config`.

Projects are imported on the stack their runs get (`AUTOPILOT_STACK`, as the daemon gives its
workers `ZENML_ACTIVE_STACK_ID`): ZenML's own templates read the active stack when imported. An
import that fails says where, in the project's own files."""

from __future__ import annotations

import inspect
import multiprocessing
import os
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from service.core import templates
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

    def __init__(self, automations: tuple[Automation, ...], stack: str | None = None) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._result: Future[tuple[list[str], dict[str, Any]]] | None = None
        if any(not _bundled_as_is(spec) for a in automations for spec in _specs(a)):
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
            self._result = self._pool.submit(check_pipelines, automations, stack)

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


def check_pipelines(
    automations: tuple[Automation, ...], stack: str | None = None
) -> tuple[list[str], dict[str, Any]]:
    """Problems (each naming its variable), and what each automation's pipelines resolved to.
    `stack`: the runs' stack (`AUTOPILOT_STACK`), made this process's active one first."""
    problems: list[str] = []
    resolved: dict[str, Any] = {}
    if stack is not None:
        _use_stack(stack, problems)
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
            where = failed_at(error, spec.source_root)
            problems.append(
                f"{variable}={spec.reference!r}: cannot be imported from {spec.source_root}: "
                f"{describe_error(error)}{f' (at {where})' if where else ''}"
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


def _use_stack(stack: str, problems: list[str]) -> None:
    """Make `stack` the active one here, as a worker's is (`ZENML_ACTIVE_STACK_ID`). A store that
    does not answer leaves the active one: the daemon waits for the store, and says whether the
    stack exists once it answers."""
    from zenml.client import Client

    from service.store import is_store_unavailable

    try:
        found = Client().get_stack(stack, allow_name_prefix_match=False)
    except KeyError:
        problems.append(f"AUTOPILOT_STACK={stack!r}: no such stack")
        return
    except Exception as error:
        if is_store_unavailable(error):
            return
        raise
    os.environ["ZENML_ACTIVE_STACK_ID"] = str(found.id)


def failed_at(error: BaseException, source_root: str) -> str | None:
    """Where in the project an import failed: `file:line` of the innermost frame in its own
    files (under the source root, not an installed library), relative to the root; for a
    syntax error, the faulty line."""
    root = Path(source_root).resolve()

    def own(filename: str | None) -> str | None:
        if not filename:
            return None
        path = Path(filename).resolve()
        if not path.is_relative_to(root) or "site-packages" in path.parts:
            return None
        return str(path.relative_to(root))

    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for raised in reversed(chain):  # the root cause first: where it all began
        if isinstance(raised, SyntaxError) and (file := own(raised.filename)):
            return f"{file}:{raised.lineno}"
        frames = [
            f"{file}:{line}"
            for frame, line in traceback.walk_tb(raised.__traceback__)
            if (file := own(frame.f_code.co_filename))
        ]
        if frames:
            return frames[-1]
    return None


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
    given = set(spec.parameters) | set(_config_parameters(spec.config_path))
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


def _config_parameters(config_path: str | None) -> dict[str, Any]:
    if config_path is None:
        return {}
    loaded = yaml.safe_load(Path(config_path).read_text()) or {}
    parameters = loaded.get("parameters") or {}
    return dict(parameters) if isinstance(parameters, dict) else {}


@dataclass(frozen=True)
class ConfigWarning:
    """A configuration that runs, but probably not as meant: said, never an exit."""

    automation: str
    variable: str
    message: str


def training_warnings(automations: tuple[Automation, ...]) -> list[ConfigWarning]:
    """Automations whose training is not told which dataset triggered it: with no `dataset.*`
    placeholder in its parameters, every selected version launches the same run, which trains
    on whatever the pipeline loads by itself. Placeholders are only filled in the parameters
    variable; the config file's `parameters:` go to the pipeline as written."""
    found = []
    for automation in automations:
        spec = automation.training
        if templates.uses_dataset(spec.parameters):
            continue
        variable = automation_variable(automation, "training_parameters")
        message = (
            f"{variable}: no {{{{ dataset.* }}}} placeholder, so every selected version of "
            f"{', '.join(automation.dataset_names)} launches {spec.reference} with the same "
            "parameters: each run trains on whatever the pipeline loads by itself. Pass the "
            'dataset, e.g. {"dataset_version_id": "{{ dataset.id }}"}'
        )
        try:
            in_config = templates.placeholders(_config_parameters(spec.config_path))
        except (OSError, yaml.YAMLError):
            in_config = set()
        if in_config:
            config = automation_variable(automation, "training_config")
            message += (
                f" ({config}'s parameters hold {', '.join(sorted(in_config))}, but placeholders "
                "are filled only here)"
            )
        found.append(ConfigWarning(automation.name, variable, message))
    return found
