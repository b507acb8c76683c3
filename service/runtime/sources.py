"""Importing a user's pipeline from its own folder, beside this project's bundled one.

ZenML projects usually have top-level packages named `pipelines` and `steps`, and so does this
project (`pipelines/`, the bundled default). Python has one `sys.modules`, so a user's
`pipelines` would be shadowed by ours (or shadow ours). Before importing from a source root,
every module whose top-level name is a package or module in that root is taken out of
`sys.modules`, and the root goes first on `sys.path`:
- the daemon checks every automation's pipelines this way at start-up, one root at a time, and
  puts `sys.modules` back afterwards (`imported_from`);
- a worker runs one job: it makes the job's root its import root and ZenML's source root
  (`activate`) and never goes back.

The daemon's own package `service` is never taken out: a user package of that name is not
supported.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# The folder holding this project's `service` and bundled `pipelines` packages.
BUNDLED_ROOT = str(Path(__file__).resolve().parents[2])
PROTECTED = frozenset({"service"})


def top_level_names(source_root: str) -> set[str]:
    """Module and package names a source root defines at its top level."""
    if source_root == BUNDLED_ROOT:  # may be site-packages: only `pipelines` is ours there
        return {"pipelines"}
    names = set()
    for entry in Path(source_root).iterdir():
        if entry.is_dir() and entry.name.isidentifier():
            names.add(entry.name)  # a package, regular or namespace
        elif entry.suffix == ".py" and entry.stem.isidentifier():
            names.add(entry.stem)
    return names - PROTECTED


def _clashing(names: set[str]) -> dict[str, Any]:
    return {
        module: sys.modules[module]
        for module in list(sys.modules)
        if module.partition(".")[0] in names
    }


def activate(source_root: str) -> None:
    """Make `source_root` this process's import root and ZenML's source root, for good."""
    from zenml.utils import source_utils

    for module in _clashing(top_level_names(source_root)):
        del sys.modules[module]
    if source_root in sys.path:
        sys.path.remove(source_root)
    sys.path.insert(0, source_root)
    importlib.invalidate_caches()
    source_utils.set_custom_source_root(source_root)


@contextmanager
def imported_from(source_root: str) -> Iterator[None]:
    """Import from `source_root` inside the block; afterwards, `sys.modules` and `sys.path` are
    as they were (what the block imported from the root is forgotten, nothing else)."""
    names = top_level_names(source_root)
    saved_modules = _clashing(names)
    saved_path = list(sys.path)
    for module in saved_modules:
        del sys.modules[module]
    sys.path.insert(0, source_root)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for module in _clashing(names):
            del sys.modules[module]
        sys.modules.update(saved_modules)
        sys.path[:] = saved_path


def load_attribute(reference: str) -> Any:
    """The object a `module:attribute` reference names (after `activate` or in `imported_from`)."""
    module_name, _, attribute = reference.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no attribute {attribute!r}") from None
