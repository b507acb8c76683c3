"""Which of the daemon's modules touch ZenML, kept true: the modules that import `zenml` are
exactly the ones README.md lists (its "Who touches ZenML" paragraph), and the shell imports
nothing from ZenML but its credentials exception."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.support import PROJECT_ROOT

SERVICE = PROJECT_ROOT / "service"
# Module (or folder) -> the zenml modules it may import; None: any.
ALLOWED: dict[str, set[str] | None] = {
    "service/store.py": None,  # every read and write of the daemon's loop
    "service/bootstrap.py": None,  # creates the service account and its key
    "service/runtime/": None,  # worker and check processes: import and run pipelines
    "service/notify/zenml_stack.py": None,  # the stack's alerter, the dashboard's address
    "service/cli.py": {"zenml", "zenml.exceptions"},
    "service/daemon.py": {"zenml.exceptions"},
}


def zenml_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name for name in names if name == "zenml" or name.startswith("zenml.")}
    return found


def allowance(relative: str) -> tuple[str, set[str] | None] | None:
    for entry, modules in ALLOWED.items():
        if relative == entry or (entry.endswith("/") and relative.startswith(entry)):
            return entry, modules
    return None


def test_only_the_listed_modules_import_zenml_and_only_what_they_may():
    importers = set()
    for path in sorted(SERVICE.rglob("*.py")):
        relative = path.relative_to(PROJECT_ROOT).as_posix()
        imported = zenml_imports(path)
        if not imported:
            continue
        allowed = allowance(relative)
        assert allowed is not None, f"{relative} imports {sorted(imported)}: not in ALLOWED"
        entry, modules = allowed
        assert modules is None or imported <= modules, (relative, sorted(imported - modules))
        importers.add(entry)
    assert importers == set(ALLOWED)  # nothing listed that no longer touches ZenML


def test_the_readme_says_exactly_which_modules_touch_zenml():
    readme = (PROJECT_ROOT / "README.md").read_text()
    (paragraph,) = re.findall(r"\*\*Who touches ZenML\.\*\*(.*?)\n\n", readme, re.DOTALL)
    listed = set(re.findall(r"`(service/[\w/.]+)`", paragraph))
    assert listed == set(ALLOWED)
    assert "only code in the daemon that queries the ZenML client" not in readme


def test_the_scan_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from zenml.client import Client\n    import zenml.enums\n")
    assert zenml_imports(module) == {"zenml.client", "zenml.enums"}
