"""The code fingerprint: what it looks at, and what it leaves alone (a real file tree)."""

from __future__ import annotations

import json
import os
import site
from pathlib import Path

import pytest

from service.runtime.fingerprint import CodeWatch, editable_projects
from service.runtime.sources import BUNDLED_ROOT


def _touch(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _later(path: Path) -> None:
    """Move a file's modification time on, as an edit a second later would."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _install_editable(site_folder: Path, name: str, project: Path) -> None:
    info = site_folder / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    url = {"url": project.as_uri(), "dir_info": {"editable": True}}
    (info / "direct_url.json").write_text(json.dumps(url))


@pytest.fixture
def site_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site-packages folder of its own, the only one the fingerprint sees."""
    folder = tmp_path / "venv" / "site-packages"
    folder.mkdir(parents=True)
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(folder)])
    monkeypatch.setattr(site, "getusersitepackages", lambda: str(tmp_path / "no-user-site"))
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_a_source_roots_packages_count_and_nothing_else_there_does(tmp_path, site_folder):
    root = tmp_path / "project"
    module = _touch(root / "pipelines" / "training.py")
    helper = _touch(root / "helpers.py")
    data = _touch(root / "data" / "rows.csv", "a,b\n")
    logged = _touch(root / "mlruns" / "0" / "artifacts" / "train.py")  # not a package: not walked
    cached = _touch(root / "pipelines" / "__pycache__" / "training.cpython-311.py")
    hidden = _touch(root / ".git" / "hooks" / "hook.py")
    kept_venv = root / "venv"
    _touch(kept_venv / "pyvenv.cfg", "home = /usr\n")
    in_venv = _touch(kept_venv / "lib" / "thing.py")
    watch = CodeWatch([str(root)])
    before = watch.take()

    for ignored in (data, logged, cached, hidden, in_venv):
        _later(ignored)
    assert before.changes(watch.take()) == []

    _later(module)
    _touch(root / "pipelines" / "new_step.py")
    helper.unlink()
    assert before.changes(watch.take()) == sorted(
        [str(module), str(root / "pipelines" / "new_step.py"), str(helper)]
    )


def test_an_editable_projects_files_count_and_an_install_shows_in_its_site_folder(
    tmp_path, site_folder
):
    library = tmp_path / "mylib"
    module = _touch(library / "src" / "mylib" / "__init__.py")
    _install_editable(site_folder, "mylib", library)
    watch = CodeWatch([])
    before = watch.take()
    assert str(library) in editable_projects()

    _later(module)
    assert before.changes(watch.take()) == [str(module)]

    (site_folder / "newpkg-1.0.dist-info").mkdir()  # what `pip install newpkg` leaves
    after_install = watch.take()
    assert str(site_folder) in before.changes(after_install)


def test_the_daemons_own_project_is_not_watched_as_an_editable_one(tmp_path, site_folder):
    _install_editable(site_folder, "zenml_autopilot_copy", Path(BUNDLED_ROOT))
    assert BUNDLED_ROOT not in editable_projects()
