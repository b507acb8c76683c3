"""The commands' logic (`service/review.py`) when two actors meet on one version: a command
and the daemon completing the same approval. Over an in-memory store of plain records that
merges metadata as ZenML does; the real store is in tests/e2e/test_promotion_gate.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from service import review
from service.core.approval import ApprovalRecord, Outcome
from service.core.production_history import latest_record
from service.core.records import ModelVersionInfo
from tests.unit.factories import model_version
from tests.unit.test_production_history import merged


class MemoryStore:
    """The adapter's methods the commands use, over plain records."""

    def __init__(self, *versions: ModelVersionInfo) -> None:
        self.versions = {v.id: v for v in versions}

    def production_versions(self, model: str) -> list[ModelVersionInfo]:
        return [v for v in self.versions.values() if v.stage == "production"]

    def model_version(self, id: str, metric_artifact: str | None = None) -> ModelVersionInfo:
        return self.versions[id]

    def model_version_named(self, model: str, reference: str) -> ModelVersionInfo | None:
        return next((v for v in self.versions.values() if reference in (v.id, v.name)), None)

    def record_version_metadata(self, version_id: str, metadata: dict[str, Any]) -> None:
        version = self.versions[version_id]
        self.versions[version_id] = replace(version, metadata=merged(version.metadata, metadata))

    def set_stage(self, model: str, version_id: str, stage: str) -> None:
        for id, version in self.versions.items():
            if stage != "archived" and version.stage == stage:
                self.versions[id] = replace(version, stage="archived")
        self.versions[version_id] = replace(self.versions[version_id], stage=stage)

    def newest_run_for_key(self, key: str) -> None:
        return None


def awaiting(number: int, stage: str = "staging") -> ModelVersionInfo:
    decision = {"outcome": "awaiting_approval", "reason": "clears_threshold"}
    return model_version({"autopilot_decision": decision}, number=number, stage=stage)


def test_an_approval_completed_meanwhile_by_the_daemon_is_not_recorded_again():
    """The command read the version staged, then the daemon found its approval recorded and
    carried it out: the command's stale view must not record the version replacing itself."""
    old = model_version(number=1, stage="production")
    waiting = awaiting(2)
    store = MemoryStore(old, waiting)
    approval = ApprovalRecord(Outcome.APPROVED.value, "alice", "now")
    store.record_version_metadata(waiting.id, approval.as_metadata())
    by_daemon = review.carry_out_approval(store, store.versions[waiting.id], approval)  # type: ignore[arg-type]
    by_command = review.carry_out_approval(store, waiting, approval)  # type: ignore[arg-type]
    assert by_command == by_daemon
    record = latest_record(store.versions[waiting.id].metadata)
    assert record is not None and (record.seq, record.stint) == (1, 1)
    assert record.previous_version_id == old.id


def test_approve_refuses_what_does_not_await_approval_and_completes_what_it_recorded():
    old = model_version(number=1, stage="production")
    waiting = awaiting(2)
    store = MemoryStore(old, waiting)
    result = review.approve(store, "iris_classifier", "2", "alice", "ok")  # type: ignore[arg-type]
    assert result["production_change"]["previous_version_id"] == old.id
    assert store.versions[waiting.id].stage == "production"
    assert store.versions[old.id].stage == "archived"
    try:
        review.approve(store, "iris_classifier", "2", "bob", None)  # type: ignore[arg-type]
    except review.Refused as refused:
        assert "approved by alice" in str(refused)
    else:
        raise AssertionError("approved twice")
    rolled = review.rollback(store, "iris_classifier", None, "carol", "bad")  # type: ignore[arg-type]
    assert (rolled["from"]["id"], rolled["to"]["id"]) == (waiting.id, old.id)
    assert store.versions[old.id].stage == "production"
