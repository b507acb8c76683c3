"""Publish one dataset of a user's project from inside the daemon's image (the compose test).

    python publish_example.py /srv/diabetes [random_state]

Runs the project's own `pipelines.feature_engineering.publish` with the project as ZenML's
source root, as `tests.support.publish_diabetes` does on the host, and prints its ids as JSON.
"""

from __future__ import annotations

import json
import sys

from zenml.utils import source_utils

from service.runtime.sources import imported_from


def main(root: str, random_state: int) -> None:
    with imported_from(root):
        source_utils.set_custom_source_root(root)
        from pipelines.feature_engineering import publish  # the project's, not the bundled one

        print(json.dumps(publish(random_state=random_state)))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
