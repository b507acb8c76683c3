"""The daemon's own files are its user's only: the state dir and `runs/` 0700, the ledger and
every run log and run configuration 0600, whatever the umask.

Modes are given explicitly where a file or folder is created (a umask can only take bits away,
so these hold under any umask), and `secure_state_dir` tightens what an earlier version or
another tool left readable, at start-up.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
LEDGER_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create `path` readable by this user only, and so any missing parent (the state dir of
    `runs/`); an existing one is left as it is (`secure_state_dir` tightens it)."""
    if not path.parent.exists():
        private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=PRIVATE_DIR)
    return path


def open_private(path: str | Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_APPEND) -> int:
    """`os.open` for a file only this user can read: created 0600, and an existing one made
    0600 (a retry appends to the log an earlier attempt wrote)."""
    descriptor = os.open(path, flags | os.O_CREAT, PRIVATE_FILE)
    try:
        info = os.fstat(descriptor)
        if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != PRIVATE_FILE:
            os.fchmod(descriptor, PRIVATE_FILE)  # a regular file only: never /dev/null
    except OSError:
        os.close(descriptor)
        raise
    return descriptor


def write_private(path: str | Path, text: str) -> None:
    """Write `text` to `path` (replacing its content), readable by this user only."""
    descriptor = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def create_private_file(path: Path) -> None:
    """Make sure `path` exists as a 0600 file (before SQLite opens it: its -wal and -shm files
    take the database file's mode)."""
    os.close(open_private(path, os.O_WRONLY | os.O_CREAT))


def secure_state_dir(state_dir: Path, ledger_path: Path) -> list[dict[str, str]]:
    """Create the state dir and `runs/` 0700, and tighten what is readable by others in them:
    the folders, the ledger's files and the run logs. Returns what was tightened (path and the
    mode it had), for the start-up log."""
    tightened: list[dict[str, str]] = []

    def tighten(path: Path, mode: int) -> None:
        try:
            info = path.lstat()
        except FileNotFoundError:
            return
        if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) & ~mode == 0:
            return
        os.chmod(path, stat.S_IMODE(info.st_mode) & mode)
        tightened.append({"path": str(path), "mode_was": oct(stat.S_IMODE(info.st_mode))})

    runs = state_dir / "runs"
    for folder in (state_dir, runs):
        tighten(folder, PRIVATE_DIR)
        private_dir(folder)
    for suffix in LEDGER_SUFFIXES:
        tighten(Path(f"{ledger_path}{suffix}"), PRIVATE_FILE)
    for entry in runs.iterdir():
        if entry.is_file():
            tighten(entry, PRIVATE_FILE)
    return tightened
