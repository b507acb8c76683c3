"""Credentials out of everything the daemon prints, logs or writes to its ledger.

One function for a URL (`redact_url`) and one for free text that may hold URLs
(`redact_text`). A password in a URL's user info (`mysql://user:password@host/db`,
`https://:token@host`) and the values of secret-looking query parameters (`?password=...`,
`&token=...`) become `***`; the user name, host, port, path and other parameters stay, so the
URL still says which store it is.

`redact` adds the secrets this process registered (`register_secret`: its API key, its store
password), wherever they appear. It is applied to every string of every log event
(`service.logs`), to every error and detail the ledger stores (`service.ledger`), and to what
`status` and `explain` print.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
SECRET_MASK = "<redacted>"
SECRET_PARAMETERS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "api_key",
    "apikey",
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_SECRET_PARAMETER = re.compile(
    r"([?&;](?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&;#\s]*", re.IGNORECASE
)
_MASKED_PARAMETER = r"\g<1>" + MASK
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Never let this value reach a log line, the ledger or a printed report, wherever it
    appears (a value this short would mask ordinary words: it is not registered)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    """`text` with credentials in URLs (`redact_text`) and every registered secret masked."""
    redacted = redact_text(text)
    for secret in _secrets:
        if secret in redacted:
            redacted = redacted.replace(secret, SECRET_MASK)
    return redacted


def redact_all(value: Any) -> Any:
    """`value` with `redact` applied to every string in it, through dicts, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_all(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_all(item) for item in value)
    return value


def redact_url(url: str) -> str:
    """`url` without the password in its user info or the values of secret parameters."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        user_info, _, host = authority.rpartition("@")
        if ":" in user_info:
            user_info = f"{user_info.split(':', 1)[0]}:{MASK}"
        authority = f"{user_info}@{host}"
    return f"{scheme}://{authority}{_SECRET_PARAMETER.sub(_MASKED_PARAMETER, tail)}"


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (`redact_url`)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


def url_password(url: str | None) -> str | None:
    """The password in `url`'s user info, if any (to register it as a secret for the logs,
    which also catches it outside a URL)."""
    if not url or "://" not in url:
        return None
    authority = url.partition("://")[2]
    end = min((i for i in (authority.find(c) for c in "/?#") if i >= 0), default=len(authority))
    user_info, at, _ = authority[:end].rpartition("@")
    if not at or ":" not in user_info:
        return None
    return user_info.split(":", 1)[1] or None
