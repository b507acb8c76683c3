"""A cheap fingerprint of the code a run imports, to tell when the worker template's is stale.

Every run is a fork of the template, which imported the automations' libraries once. A run
imports its own project's modules again from disk (`sources.activate`), but the libraries
stay as the template imported them; so, unless the template is replaced when code changes, a
run could mix a pipeline edited a minute ago with the library version of the daemon's start.
The rule is: a run uses the code as it is on disk when it starts, all of it. The executor
compares this fingerprint before each launch with the one taken when its template began
warming, and replaces a stale template (`executor.code_changed`).

What it covers (the modification time and size of each file, or of each folder):
- every `.py` file of the packages an automation's source root defines at its top level (the
  bundled root: its `pipelines` package only), and its top-level modules;
- every `.py` file of the packages of each project installed in editable mode (`pip install
  -e`: the `dir_info.editable` of its `direct_url.json`), at its top or under its `src/`; the
  daemon's own project is not one of them (its code is the daemon's: a restart loads it);
- each site-packages folder itself, whose modification time changes when a distribution is
  installed, upgraded or removed (its `.dist-info` folder comes or goes).
A package is a folder with an `__init__.py` or a `.py` file of its own; the walk goes down
packages only, so a project's `data/`, `mlruns/` or `outputs/` folders are listed once at most,
never walked (a folder of hidden name, `__pycache__`, `node_modules` or a virtual environment is
not looked into at all).

Not covered: a file edited in place inside site-packages, and non-Python files a module reads
when imported; those reach runs when the daemon restarts (or the template is replaced for
another reason). Cost: BENCHMARKS.md, section 7.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import site
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from service.runtime.sources import BUNDLED_ROOT, top_level_names

# Folders that hold no code a run imports from a project (or far too many files to look at).
SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "site-packages", "dist-packages"})
SHOWN_CHANGES = 10


@dataclass(frozen=True)
class CodeFingerprint:
    """Path → (modification time in ns, size) of every file and folder looked at."""

    entries: Mapping[str, tuple[int, int]]

    def changes(self, newer: CodeFingerprint) -> list[str]:
        """The paths added, removed or modified between this fingerprint and `newer`."""
        if self.entries == newer.entries:  # the usual answer, compared in C
            return []
        paths = self.entries.keys() | newer.entries.keys()
        return sorted(p for p in paths if self.entries.get(p) != newer.entries.get(p))


class CodeWatch:
    """Takes fingerprints of the code the runs of these source roots import."""

    def __init__(self, source_roots: Iterable[str]) -> None:
        self.source_roots = tuple(sorted(set(source_roots)))
        self._editable: tuple[str, ...] = ()
        self._editable_seen_with: dict[str, tuple[int, int]] | None = None

    def take(self) -> CodeFingerprint:
        folders = _site_folders()
        if folders != self._editable_seen_with:  # a distribution came, went or changed
            self._editable = editable_projects()
            self._editable_seen_with = folders
        entries = dict(folders)
        for root in self.source_roots:
            entries.update(_source_root(root))
        for project in self._editable:
            for top in (project, os.path.join(project, "src")):
                entries.update(_walk(top))
        return CodeFingerprint(entries)


def describe_changes(changed: list[str]) -> dict[str, object]:
    """Fields of an event naming what changed, a few paths and how many there were."""
    return {"changed": changed[:SHOWN_CHANGES], "changed_count": len(changed)}


def editable_projects() -> tuple[str, ...]:
    """The folders of the distributions installed in editable mode, but the daemon's own."""
    own = os.path.realpath(BUNDLED_ROOT)
    found = set()
    for distribution in importlib.metadata.distributions():
        folder = _editable_folder(distribution.read_text("direct_url.json"))
        if folder is not None and os.path.realpath(folder) != own and os.path.isdir(folder):
            found.add(folder)
    return tuple(sorted(found))


def _editable_folder(direct_url: str | None) -> str | None:
    if not direct_url:
        return None
    try:
        described = json.loads(direct_url)
    except ValueError:
        return None
    if not isinstance(described, dict) or not (described.get("dir_info") or {}).get("editable"):
        return None
    url = urlparse(str(described.get("url", "")))
    return unquote(url.path) if url.scheme == "file" else None


def _site_folders() -> dict[str, tuple[int, int]]:
    """Each site-packages folder on the path (and the interpreter's own), by its mtime."""
    candidates = {*site.getsitepackages(), site.getusersitepackages()}
    candidates.update(p for p in sys.path if Path(p).name in ("site-packages", "dist-packages"))
    folders = {}
    for folder in candidates:
        try:
            folders[folder] = (os.stat(folder).st_mtime_ns, -1)
        except OSError:
            continue
    return folders


def _source_root(root: str) -> Iterator[tuple[str, tuple[int, int]]]:
    """What `sources.activate` takes out of `sys.modules` for this root: its top-level modules
    and packages."""
    try:
        names = top_level_names(root)
    except OSError:
        return
    for name in sorted(names):
        module = os.path.join(root, f"{name}.py")
        if os.path.isfile(module):
            yield from _stat(module)
        package = os.path.join(root, name)
        if _is_package(package):
            yield from _walk(package)


def _walk(folder: str) -> Iterator[tuple[str, tuple[int, int]]]:
    """(path, (mtime_ns, size)) of each `.py` file in `folder` and its packages."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name in SKIPPED_FOLDERS:
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if _is_package(entry.path):
                    yield from _walk(entry.path)
            elif entry.name.endswith(".py"):
                yield from _stat(entry.path)
        except OSError:
            continue


def _is_package(folder: str) -> bool:
    """A folder Python imports code from: with an `__init__.py`, or a `.py` file of its own (a
    namespace package). Listed up to its first `.py` file at most (a virtual environment has
    none at its top)."""
    if os.path.isfile(os.path.join(folder, "__init__.py")):
        return True
    try:
        with os.scandir(folder) as entries:
            return any(entry.name.endswith(".py") for entry in entries)
    except OSError:
        return False


def _stat(path: str) -> Iterator[tuple[str, tuple[int, int]]]:
    try:
        stat = os.stat(path)
    except OSError:
        return
    yield path, (stat.st_mtime_ns, stat.st_size)
