"""What the worker template does once, so that every run forked from it starts at once.

Measured on the training pipeline in a fresh worker (BENCHMARKS.md, section 3), a run otherwise
pays, inside the worker and on the chain's clock:
- the imports ZenML makes lazily on a run's path (the stack's component flavors, the
  materializers of the installed integrations, the log store and its OpenTelemetry exporter):
  ~0.4 s;
- `pip freeze`, which ZenML runs twice per run to record the environment: ~0.25 s each;
- `importlib.metadata.packages_distributions()`, a scan of every installed distribution, which
  ZenML repeats for each output artifact's type: ~0.28 s each.

The last two are computed once here and remembered for the template's life. A package
installed or upgraded in the daemon's environment while it runs changes a site-packages folder,
so the next launch replaces the template (`fingerprint.py`), which looks again: the environment a
run records is the one it runs in.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import traceback
from collections.abc import Iterable, Mapping

from service.runtime.sources import BUNDLED_ROOT, imported_from

# Imported by ZenML only once a run starts. Names that a future ZenML moves are skipped: a
# warm-up that cannot import one only makes the run pay for it, as it would anyway.
RUN_PATH_MODULES = (
    "zenml.orchestrators.step_launcher",
    "zenml.orchestrators.step_runner",
    "zenml.orchestrators.topsort",
    "zenml.orchestrators.legacy_dag_runner",
    "zenml.execution.utils",
    "zenml.execution.pipeline.utils",
    "zenml.execution.step.utils",
    "zenml.log_stores",
    "zenml.log_stores.artifact.artifact_log_store",
    "zenml.log_stores.artifact.artifact_log_exporter",
    "zenml.log_stores.otel.otel_log_store",
    "zenml.deployers",
    "zenml.artifacts.unmaterialized_artifact",
)


def warm_up(imports: Iterable[tuple[str, str]]) -> None:
    """Import, connect and remember, as a run would, without writing to the store.

    `imports` are (source root, module) pairs: every automation's pipeline modules. Each is
    imported from its root and then forgotten (`imported_from`), so that what it imports from
    libraries (pandas, scikit-learn, zenml's integrations) stays loaded while the job that comes
    imports its own project's modules fresh: one template serves every automation.
    """
    from zenml.utils import source_utils

    # ZenML needs a source root to load the stack's flavors; the job sets its own (`activate`).
    source_utils.set_custom_source_root(BUNDLED_ROOT)
    importlib.import_module("service.runtime.launch")
    for source_root, module in imports:
        with imported_from(source_root):
            try:
                importlib.import_module(module)
            except Exception:  # the job imports it again and fails with the user's error
                traceback.print_exc()
    from zenml.client import Client
    from zenml.integrations.registry import integration_registry

    Client().active_stack  # noqa: B018  - connects, and imports the stack's component flavors
    integration_registry.activate_integrations()  # imports the installed materializers
    _import_if_present(RUN_PATH_MODULES)
    remember_environment()


def remember_environment() -> None:
    """Answer ZenML's per-run environment questions from one look taken now."""
    from zenml.environment import Environment

    try:
        packages = Environment.get_python_packages()
    except RuntimeError:  # ZenML logs and records no package list: leave that to it
        pass
    else:
        Environment.get_python_packages = staticmethod(lambda: list(packages))  # type: ignore[method-assign]
    distributions = importlib.metadata.packages_distributions()

    def packages_distributions() -> Mapping[str, list[str]]:
        return {module: list(names) for module, names in distributions.items()}

    importlib.metadata.packages_distributions = packages_distributions


def _import_if_present(modules: Iterable[str]) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            continue


def forget_connections() -> None:
    """Close the store connections the warm-up opened, keeping the store object (and a REST
    store's API token): every fork of this process opens its own, as a socket shared by two
    processes would interleave their requests."""
    from zenml.config.global_config import GlobalConfiguration

    store = GlobalConfiguration()._zen_store  # not `zen_store`: that would connect
    if store is None:
        return
    engine = getattr(store, "_engine", None)
    if engine is not None:
        engine.dispose()
    if getattr(store, "_session", None) is not None:  # a REST store: a new session, same
        store.reinitialize_session()  # type: ignore[attr-defined]  # headers (its token)
