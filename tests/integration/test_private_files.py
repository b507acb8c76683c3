"""The daemon's state is its user's only: the state dir and `runs/` 0700, the ledger and every
run log and run configuration 0600, under the usual umask 022; a loose state dir left by an
earlier version is tightened at start and said so. `autopilot bootstrap` writes the key file
through nothing: not a link at its path, not a stale temporary file."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from tests.integration.test_cli import autopilot
from tests.support import PROJECT_ROOT


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)  # inherited by the daemon and its spawned workers
    try:
        yield
    finally:
        os.umask(previous)


def test_make_run_leaves_the_daemon_nothing_to_tighten(tmp_path, umask_022):
    """`make run` on a fresh clone: the Makefile prepares the folder, then the daemon checks its
    state dir (`secure_state_dir`, run here on what the Makefile left) and found `.autopilot`
    0755 when the Makefile made it, so the very first start warned `state.permissions_tightened`.
    The venv is a stand-in: its `autopilot` is that check, its `python` (the producer) exits."""
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(PROJECT_ROOT / name, clone / name)
    bin_dir = clone / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (clone / ".venv" / ".installed").touch()  # newer than pyproject.toml: nothing to install
    check = (
        "import json, os, pathlib; from service.files import secure_state_dir; "
        "state = pathlib.Path(os.environ['AUTOPILOT_STATE_DIR']); "
        "print(json.dumps(secure_state_dir(state, state / 'ledger.sqlite')))"
    )
    (bin_dir / "autopilot").write_text(f'#!/bin/sh\nexec {sys.executable} -c "{check}"\n')
    (bin_dir / "python").write_text("#!/bin/sh\nexit 0\n")
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    made = subprocess.run(
        ["make", "-s", "run"],
        cwd=clone,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout.splitlines()[-1]) == []  # nothing was loose
    assert mode(clone / ".autopilot") == 0o700


@pytest.mark.integration
def test_run_once_leaves_the_state_private_and_tightens_a_loose_one(
    zenml_store, tmp_path, umask_022
):
    state = tmp_path / "state"
    (state / "runs").mkdir(parents=True, mode=0o755)
    state.chmod(0o755)
    stale_log = state / "runs" / "from-an-older-version.log"
    stale_log.write_text("an old run's output\n")
    stale_log.chmod(0o644)
    dataset = launch_feature_engineering(training_tags=["approved"], random_state=33)

    env = {
        "AUTOPILOT_STATE_DIR": str(state),
        "AUTOPILOT_START_FROM": "beginning",
        "AUTOPILOT_LOG_FORMAT": "json",
    }
    result = autopilot("run", "--once", env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert mode(state) == 0o700 and mode(state / "runs") == 0o700
    ledger_files = list(state.glob("ledger.sqlite*"))
    assert state / "ledger.sqlite" in ledger_files
    run_files = list((state / "runs").iterdir())
    key = f"train:{dataset.training_id}"
    names = {path.name for path in run_files}
    assert any(name.endswith(".log") and str(dataset.training_id) in name for name in names), names
    assert any(name.endswith(".run-config.yaml") for name in names), names
    assert "worker-warmup.log" in names
    loose = {str(p): oct(mode(p)) for p in ledger_files + run_files if mode(p) != 0o600}
    assert loose == {}, f"readable by others after {key}: {loose}"

    events = [json.loads(line) for line in result.stdout.splitlines()]
    (tightened,) = [e for e in events if e["event"] == "state.permissions_tightened"]
    assert {entry["path"] for entry in tightened["paths"]} == {
        str(state),
        str(state / "runs"),
        str(stale_log),
    }

    # The ledger's WAL files, while a daemon has it open, take the database file's mode.
    from service.ledger import Ledger

    ledger = Ledger(state / "ledger.sqlite")
    try:
        ledger.set_meta("probe", "1")
        wal = [p for p in state.glob("ledger.sqlite-*")]
        assert wal and all(mode(p) == 0o600 for p in wal), {str(p): oct(mode(p)) for p in wal}
    finally:
        ledger.close()


def test_bootstrap_refuses_a_link_at_the_key_path(tmp_path, umask_022):
    """A link planted at the key path is neither read as the key nor written through."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "victim"
    victim.write_text("not the daemon's key\n")
    key_file = tmp_path / "secrets" / "api_key"
    key_file.parent.mkdir()
    key_file.symlink_to(victim)

    result = autopilot(
        "bootstrap", "--key-file", str(key_file), env={"ZENML_CONFIG_PATH": str(tmp_path / "z")}
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "symbolic link" in result.stderr
    assert key_file.is_symlink() and victim.read_text() == "not the daemon's key\n"


@pytest.mark.integration
def test_bootstrap_writes_the_key_through_no_stale_temporary_file(
    zenml_server, tmp_path, umask_022
):
    """A temporary file left at the name an older version used (here a link to a file
    elsewhere) is not written through: the key goes to a fresh file, 0600."""
    from tests.e2e.test_server_e2e import bootstrap

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "victim"
    victim.write_text("")
    victim.chmod(0o644)
    key_file = tmp_path / "secrets" / "api_key"
    key_file.parent.mkdir()
    (key_file.parent / ".api_key.tmp").symlink_to(victim)
    (key_file.parent / ".api_key.tmp.stale").write_text("stale\n")

    result = bootstrap(zenml_server, key_file)
    assert result.returncode == 0, result.stderr
    assert '"outcome": "created_account_and_key"' in result.stdout
    assert victim.read_text() == ""  # nothing went through the link
    assert not key_file.is_symlink()
    assert mode(key_file) == 0o600
    assert key_file.read_text().strip()
    leftovers = {p.name for p in key_file.parent.glob(".api_key*")}
    assert leftovers == {".api_key.tmp", ".api_key.tmp.stale"}  # its own temporary is gone


def test_a_run_log_is_made_private_but_dev_null_is_left_alone(tmp_path, umask_022):
    """An attempt's log is appended to by a retry (and made 0600 if it was not); a worker
    whose log is /dev/null never changes it."""
    from service.files import open_private

    log = tmp_path / "train.log"
    log.write_text("attempt 1\n")
    log.chmod(0o644)
    os.close(open_private(log))
    assert mode(log) == 0o600 and log.read_text() == "attempt 1\n"
    before = os.stat(os.devnull).st_mode
    os.close(open_private(os.devnull))
    assert os.stat(os.devnull).st_mode == before
