"""Scoring datasets (`SCORING_DATASET_NAMES`): what a selected scoring version sets off, and
the newest one an automation has selected (`core/scoring.py` says what each inference is).

`stages/datasets.py` watches scoring datasets like training ones and calls `select` in the
ledger transaction that records the version selected: exactly once per version. The
production version it is pinned to is the one the daemon last saw (the production cursor;
the engine looks at production before datasets in a tick). None yet: nothing is claimed, and
the first production change scores the newest selected version (`production_change_details`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from service.core.actions import ActionKind
from service.core.automation import Automation
from service.core.records import DatasetVersion
from service.core.scoring import ScoringVersion, newer, scored_tag, scoring_key
from service.ledger import Ledger
from service.stages.context import Context, after_latest_deployment

NEWEST_KEY = "scoring/newest/"  # ledger meta, per automation: its newest selected version
WAITING_FOR_PRODUCTION = "no production version yet: the first production change scores the newest"


@dataclass(frozen=True)
class Selection:
    """What selecting one scoring version did."""

    key: str | None  # the inference claimed (None: none, see below)
    model_version_id: str | None  # the version that scores it (or scored it)
    claimed: bool  # False: nothing claimed now, or the key was claimed before
    found_run_id: str | None = None  # scored already, by this run (a lost or restored ledger)

    def log_fields(self) -> dict[str, Any]:
        if self.found_run_id is not None:
            return {
                "key": None,
                "model_version_id": self.model_version_id,
                "found_in_store_run_id": self.found_run_id,
            }
        if self.key is None:
            return {"key": None, "waiting_for": WAITING_FOR_PRODUCTION}
        return {"key": self.key, "model_version_id": self.model_version_id}

    def seen(self) -> dict[str, Any]:
        """For the version's ledger row (`explain`)."""
        return {"role": "scoring", **self.log_fields()}


def select(context: Context, automation: Automation, version: DatasetVersion) -> Selection:
    """A scoring version was selected: it may be the newest now, and it is scored once by the
    production version the daemon knows. Call inside the selection's ledger transaction.

    Unless the store says it was scored already (a completed run on this automation's model
    tagged `score:<id>`): the ledger was lost or restored, and this version was selected and
    scored before, perhaps by another production version or under a production change's
    key. Then nothing is claimed, as `*.found_in_store` launches nothing."""
    ledger = context.ledger
    selected = ScoringVersion.of(version)
    if newer(selected, newest_scoring_version(ledger, automation)):
        ledger.set_meta(f"{NEWEST_KEY}{automation.name}", json.dumps(selected.details()))
    scored = context.store.completed_run_tagged(scored_tag(version.id), automation.model_name)
    if scored is not None:
        return Selection(None, scored.model_version_id, claimed=False, found_run_id=scored.id)
    production = ledger.get_cursor(automation.production_stream)
    if not production:
        return Selection(None, None, claimed=False)
    key = scoring_key(production, version.id)
    details = {
        "model_version_id": production,
        **selected.details(),
        **after_latest_deployment(ledger, automation, production),
    }
    claimed = ledger.claim(key, ActionKind.INFER, production, details, automation.name)
    return Selection(key, production, claimed)


def newest_scoring_version(ledger: Ledger, automation: Automation) -> ScoringVersion | None:
    """The newest scoring dataset version (store `created`, then number) the automation has
    selected; None without scoring datasets or before the first is selected. One ledger
    read: cheap enough for every tick. (A schedule's inference scores this one too.)"""
    if not automation.scoring_dataset_names:
        return None
    stored = ledger.get_meta(f"{NEWEST_KEY}{automation.name}")
    return None if stored is None else ScoringVersion.from_details(json.loads(stored))


def production_change_details(ledger: Ledger, automation: Automation) -> dict[str, Any] | None:
    """What a production change's inference scores, for its action's details: {} for an
    automation without scoring datasets (its parameters say what to score, as before scoring
    datasets); the newest selected scoring version; None when there is none yet (nothing to
    score: the first one selected is scored by the production version then)."""
    if not automation.scoring_dataset_names:
        return {}
    newest = newest_scoring_version(ledger, automation)
    return None if newest is None else newest.details()
