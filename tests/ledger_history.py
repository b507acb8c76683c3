"""A ledger with a history, written through the ledger's API with the rows and details the
tick's stages write (`stages/datasets.py`, `actions.py`, `models.py`, `production.py`), for
the status page's tests and benchmark: thousands of judged versions in a second, where real
runs would take hours. That the stages really write these is what the e2e chain's page check
shows (tests/e2e/scenario.py)."""

from __future__ import annotations

from collections.abc import Sequence

from service.core.actions import ActionKind, ActionState
from service.ledger import Ledger

MODEL = "iris_classifier"
DATASET = "iris_training_dataset"


def write_history(
    ledger: Ledger,
    values: Sequence[float | None],
    automation: str = "default",
    model: str = MODEL,
    threshold: float = 0.9,
    first_number: int = 1,
) -> list[str]:
    """One chain per value, oldest first: a selected dataset version, its training run, its
    model version judged by the default policy (maximize, must beat production), and an
    inference for each promotion. Returns the model version ids. One transaction (the stages
    write a chain in several; a ledger reader sees the same rows either way)."""
    with ledger.transaction():
        return _write(ledger, values, automation, model, threshold, first_number)


def _write(
    ledger: Ledger,
    values: Sequence[float | None],
    automation: str,
    model: str,
    threshold: float,
    first_number: int,
) -> list[str]:
    production: tuple[str, float] | None = None
    previous = ledger.get_cursor(f"{automation}/production:{model}")
    ids = []
    for offset, value in enumerate(values):
        number = first_number + offset
        dataset, run, version = f"ds-{automation}-{number}", f"run-{number:08d}", f"mv-{number}"
        ids.append(version)
        ledger.note_subject(
            automation, dataset, "dataset", DATASET, str(number), "selected", "selected", True
        )
        train = f"train:{automation}:{dataset}"
        ledger.claim(train, ActionKind.TRAIN, dataset, {"artifact": DATASET}, automation)
        ledger.transition(train, ActionState.RUNNING, attempts=1, started_at=0.0)
        ledger.transition(
            train, ActionState.SUCCEEDED, run_id=run, details={"duration_seconds": 4.2}
        )
        promoted = (
            value is not None
            and value >= threshold
            and (production is None or value > production[1])
        )
        if value is None:
            reason = "metric_missing"
        elif promoted:
            reason = (
                "clears_threshold"
                if production is None
                else "clears_threshold_and_beats_production"
            )
        else:
            reason = "below_threshold" if value < threshold else "not_better_than_production"
        decision = {
            "outcome": "promoted" if promoted else "rejected",
            "reason": reason,
            "detail": "",
            "metric": "accuracy",
            "value": value,
            "threshold": threshold,
            "goal": "maximize",
            "production_version_id": production[0] if production else None,
            "production_version_number": None,
            "production_value": production[1] if production else None,
        }
        with ledger.transaction():
            ledger.claim(
                f"promote:{version}",
                ActionKind.PROMOTE,
                version,
                {
                    "model_version_number": number,
                    "model_version_id": version,
                    "dataset_version_id": dataset,
                    "training_run_id": run,
                    "decision": decision,
                },
                automation,
            )
            ledger.note_subject(
                automation, version, "model", model, str(number), "decided", reason, True
            )
        ledger.transition(f"promote:{version}", ActionState.SUCCEEDED)
        if promoted:
            assert value is not None
            infer = f"infer:{version}"
            with ledger.transaction():
                ledger.claim(
                    infer,
                    ActionKind.INFER,
                    version,
                    {"model_version_number": number, "model_version_id": version},
                    automation,
                )
                ledger.set_cursor(f"{automation}/production:{model}", version)
                ledger.record_production_change(
                    automation, model, version, number, previous, "autopilot"
                )
            ledger.transition(infer, ActionState.RUNNING, attempts=1, started_at=0.0)
            ledger.transition(
                infer,
                ActionState.SUCCEEDED,
                run_id=f"infer-run-{number:08d}",
                details={"duration_seconds": 2.0},
            )
            production, previous = (version, value), version
    return ids
