"""One daemon per state dir: an exclusive lock held for as long as `autopilot run` runs.

Two processes on one ledger would each take the other's running actions for a crash's leftovers
(recovery closes the live run as orphaned and launches it again). `run` and `run --once` take
an exclusive `flock` on `<state dir>/daemon.lock` before they open the ledger, and keep it until
they exit; the kernel releases it when the process ends, however it ends. The holder's pid is
written in the file, so a second daemon can say whom it met. Ledger-only commands (`status`,
`explain`, `replay`, `skip`) do not take it: SQLite lets them read and write beside the daemon.

The descriptor is close-on-exec, and the worker template (forked before the daemon connects)
closes its copy at once, so no worker holds the lock; they die with the daemon anyway
(parent-death signal).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from service.files import private_dir

LOCK_FILE = "daemon.lock"


class StateDirBusy(Exception):
    """Another process holds the state dir."""

    def __init__(self, state_dir: Path, holder: str) -> None:
        super().__init__(
            f"the state dir {state_dir} (AUTOPILOT_STATE_DIR) is in use by another autopilot "
            f"daemon (pid {holder}); stop it first, or give this one its own AUTOPILOT_STATE_DIR"
        )
        self.state_dir = state_dir
        self.holder = holder


class StateDirLock:
    """The exclusive lock on a state dir; `release` (or the end of the process) frees it."""

    def __init__(self, state_dir: Path) -> None:
        private_dir(state_dir)  # 0700 from the start, not tightened after
        self.path = state_dir / LOCK_FILE
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StateDirBusy(state_dir, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def fileno(self) -> int | None:
        return self._fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def _holder(fd: int) -> str:
    """The pid the holder wrote, or "unknown" if it has not written it yet."""
    text = os.pread(fd, 64, 0).decode(errors="replace").strip()
    return text if text.isdigit() else "unknown"
