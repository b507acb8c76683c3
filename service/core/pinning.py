"""How an inference run is pinned to exactly one model version.

A ZenML run configuration cannot name a version by id (`Model.model_version_id` is internal, and
the store resolves a run's version from `version` alone; a version id given as `version` creates
a new version named after it). So a run is pinned by a version *reference*, which ZenML resolves
in two places, differently:
- the store, creating the run (`SqlZenStore._get_model_version`): a numeric reference by number,
  a stage name by stage, anything else by name;
- lazy loading in steps (`get_pipeline_context().model`, `Client.get_model_version` given a
  string): a stage name by stage, anything else by name, numeric or not.

A version whose name is its own number, or whose name is neither numeric nor a stage name,
resolves to itself in both. ZenML refuses to create a version with a numeric or stage name, but
lets one be renamed to either (`zenml model version update ... --name 3`): version 5 named "3"
would give the run version 3 and its steps version 5. Such a version cannot be pinned exactly,
and the inference is refused rather than run on something else.
"""

from __future__ import annotations

# ZenML's `ModelStages` values, the virtual `latest` and `none` included.
STAGE_NAMES = frozenset({"none", "staging", "production", "archived", "latest"})


class Unpinnable(LookupError):
    """A model version no version reference resolves to exactly, in the store and in steps."""


def pin_reference(model: str, name: str, number: int) -> str:
    """The `version` that pins a run to the version `number` named `name`; or Unpinnable."""
    if name == str(number):
        return name
    if name.isnumeric():
        resolves = (
            f"ZenML resolves it to the version numbered {name} when it creates a run, and to "
            "this one where a step loads it by name"
        )
    elif name in STAGE_NAMES:
        resolves = f"ZenML resolves it to whichever version is in stage {name!r}"
    else:
        return name
    raise Unpinnable(
        f"version {number} of model {model} is named {name!r}: {resolves}, so no run can be "
        "pinned to exactly this version. Rename it to a name that is neither a number nor a "
        "stage (`zenml model version update`), then replay this action"
    )
