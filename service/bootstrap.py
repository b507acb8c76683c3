"""`autopilot bootstrap`: give the daemon its own ZenML identity without anyone copying a key.

Run once with the server admin's credentials (ZENML_STORE_URL + ZENML_STORE_USERNAME/PASSWORD).
It creates a service account for the daemon if there is none, creates an API key for it and
writes the key to a file only the daemon's user can read. A key file that already holds a key
is left alone, so running it on every `docker compose up` is safe; delete the file to rotate.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_ACCOUNT = "autopilot"


def bootstrap(key_file: Path, account: str = DEFAULT_ACCOUNT) -> str:
    """Ensure the key file holds an API key of `account`; returns what was done."""
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
    """Write atomically, readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret + "\n")
    os.replace(temporary, path)
