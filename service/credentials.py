"""No credential of the project's processes on disk.

ZenML 0.98 saves the credentials it authenticates with (an API key, a username and password, the
tokens it gets for them) in clear to `credentials.yaml` under its config dir, mode 0644, unless
`DISABLE_CREDENTIALS_DISK_CACHING` is true (`zenml/login/credentials_store.py`; the variable has
no `ZENML_` prefix, `zenml/constants.py`). Every process of the project that authenticates (the
daemon and what it starts: its workers and its pipeline-check child inherit its environment;
`status`, `bootstrap`, the demo producer) calls `keep_credentials_off_disk` before it first
talks to the store.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

NO_CREDENTIALS_ON_DISK = "DISABLE_CREDENTIALS_DISK_CACHING"
# ZenML's store variables that carry a credential (`ZENML_STORE_` + a store config field).
CREDENTIAL_VARIABLES = ("ZENML_STORE_API_KEY", "ZENML_STORE_PASSWORD", "ZENML_STORE_API_TOKEN")


def keep_credentials_off_disk(environ: MutableMapping[str, str] = os.environ) -> bool:
    """When the environment gives the store's credentials, forbid ZenML to cache them (and
    the tokens it gets for them) on disk; True if it did. Without credentials in the
    environment, ZenML reads the session a user's `zenml login` cached, as usual: that file is
    the user's, and holds nothing this process was given."""
    if not any(environ.get(name) for name in CREDENTIAL_VARIABLES):
        return False
    environ[NO_CREDENTIALS_ON_DISK] = "true"
    return True
