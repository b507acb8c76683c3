"""`autopilot bootstrap`: give the daemon its own ZenML identity without anyone copying a key.

Run once with the server admin's credentials (ZENML_STORE_URL + ZENML_STORE_USERNAME/PASSWORD).
It creates a service account for the daemon if there is none, creates an API key for it and
writes the key to a file only the daemon's user can read. A key file that already holds a key
is left alone, so running it on every `docker compose up` is safe; delete the file to rotate.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_ACCOUNT = "autopilot"


class UnsafeKeyFile(Exception):
    """The key file's path is not safe to write a key to."""


def bootstrap(key_file: Path, account: str = DEFAULT_ACCOUNT) -> str:
    """Ensure the key file holds an API key of `account`; returns what was done."""
    if key_file.is_symlink():  # never read or write a key through a link someone planted
        raise UnsafeKeyFile(f"{key_file} is a symbolic link: refusing to use it as the key file")
    if key_file.exists() and key_file.read_text().strip():
        return "kept_existing_key"
    from zenml.client import Client
    from zenml.exceptions import EntityExistsError

    client = Client()
    try:
        client.get_service_account(account, allow_name_prefix_match=False)
        created_account = False
    except KeyError:
        try:
            client.create_service_account(
                name=account, description="ZenML Autopilot daemon (created by autopilot bootstrap)"
            )
            created_account = True
        except EntityExistsError:
            # Another bootstrap (two `compose up` at once) created it in between: use it.
            created_account = False
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    api_key = client.create_api_key(
        service_account_name_id_or_prefix=account,
        name=f"autopilot-{stamp}",
        description="Written by autopilot bootstrap",
    )
    assert api_key.key is not None, "ZenML returned an API key without its value"
    _write_private(key_file, api_key.key)
    return "created_account_and_key" if created_account else "created_key"


def _write_private(path: Path, secret: str) -> None:
    """Write atomically, readable by this user only, never through an existing file.

    The key goes to a new file of a fresh random name in the same folder, created with
    O_CREAT | O_EXCL | O_NOFOLLOW and mode 0600 (a stale temporary file or a link planted
    there cannot be written through), then renamed over `path`, which replaces the name
    itself (a link at `path` would be replaced, not followed; `bootstrap` refuses one anyway).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            descriptor = os.open(temporary, flags, 0o600)
        except FileExistsError:
            continue
        break
    else:
        raise UnsafeKeyFile(f"cannot create a temporary file beside {path}")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
