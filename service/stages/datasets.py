"""Watching datasets: new versions of the watched artifacts, versions whose producing run was
still going, and old versions that gained the required tags. A selected version is claimed as
`train:...` once per automation that watches its artifact."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from service import metrics
from service.core.actions import ActionKind, action_key
from service.core.automation import Automation
from service.core.polling import Seen, plan_polls
from service.core.records import DatasetVersion
from service.core.selection import DatasetDecision, SkipReason, Verdict, evaluate_dataset
from service.faults import crashpoint
from service.stages.context import DATASET, Context, utc_now

BATCH_SIZE = 100  # decisions committed per ledger transaction


class DatasetWatch:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.ledger = context.ledger
        self.store = context.store
        self._next_reconcile = 0.0
        self._seen = Seen()  # judged versions each name's next query leaves out
        # One store query per watched artifact name, whichever automations watch it.
        self._watchers: dict[str, list[Automation]] = {}
        for automation in context.automations.values():
            for name in automation.dataset_names:
                self._watchers.setdefault(name, []).append(automation)

    # -- start-up -----------------------------------------------------------------------------

    def start(self) -> None:
        """Initialise the streams a new automation or dataset name brings, per the start policy."""
        for name, automations in self._watchers.items():
            for automation in automations:
                if not self.ledger.has_cursor(automation.dataset_stream(name)):
                    self._init_stream(automation, name)

    def _init_stream(self, automation: Automation, name: str) -> None:
        start = self.context.settings.start
        skipped = 0
        if start.mode != "beginning":
            before = start.since  # None for `now`: every selected version so far predates it
            for version in self.store.dataset_versions_with_tags(
                name, list(automation.required_tags), created_before=before
            ):
                self._note(automation, version, "skipped", SkipReason.PREDATES_START, final=True)
                skipped += 1
        cursor = self.store.latest_dataset_number(name) if start.mode == "now" else 0
        stream = automation.dataset_stream(name)
        self.ledger.set_cursor(stream, str(cursor))
        self.context.log(automation).info(
            "startup.stream_initialised",
            stream=stream,
            start_from=str(start),
            cursor=cursor,
            skipped_existing=skipped,
        )

    # -- the tick -----------------------------------------------------------------------------

    def tick(self) -> None:
        self._watch_new()
        self._recheck_waiting()
        if time.monotonic() >= self._next_reconcile:
            self._reconcile_approvals()
            self._next_reconcile = (
                time.monotonic() + self.context.settings.reconcile_interval_seconds
            )

    def _watch_new(self) -> None:
        """New versions of every watched artifact, in as few queries as the cursors allow: each
        name is read from the lowest cursor of the automations that watch it."""
        cursors = {
            (automation.name, name): int(
                self.ledger.get_cursor(automation.dataset_stream(name)) or 0
            )
            for name, automations in self._watchers.items()
            for automation in automations
        }
        crashpoint("after_cursor_read")
        floors = {
            name: min(cursors[(a.name, name)] for a in automations)
            for name, automations in self._watchers.items()
        }
        for group in plan_polls(floors):
            batch: list[DatasetVersion] = []
            for version in self.store.dataset_versions_above(group, floors, self._seen):
                batch.append(version)
                if len(batch) >= BATCH_SIZE:
                    self._judge_new(batch, cursors)
                    batch = []
            if batch:
                self._judge_new(batch, cursors)

    def _judge_new(
        self, versions: list[DatasetVersion], cursors: dict[tuple[str, str], int]
    ) -> None:
        """Judge a batch for every watcher and advance its cursors, in one ledger transaction."""
        with self.ledger.transaction():
            for name in sorted({v.artifact_name for v in versions}):
                for automation in self._watchers[name]:
                    cursor = cursors[(automation.name, name)]
                    unseen = [
                        v
                        for v in versions
                        if v.artifact_name == name and v.number is not None and v.number > cursor
                    ]
                    for version in unseen:
                        self._judge(automation, version)
                    if unseen:
                        newest = max(v.number for v in unseen if v.number is not None)
                        cursors[(automation.name, name)] = newest
                        self.ledger.set_cursor(automation.dataset_stream(name), str(newest))
        for version in versions:  # judged by every watcher, and committed
            if version.number is not None:
                self._seen.add(version.artifact_name, version.id, version.number)
        crashpoint("after_dataset_claimed")

    def _judge_again(self, pairs: Iterable[tuple[Automation, DatasetVersion]]) -> None:
        with self.ledger.transaction():
            for automation, version in pairs:
                self._judge(automation, version)

    def _judge(self, automation: Automation, version: DatasetVersion) -> None:
        prior = self.ledger.subject(automation.name, version.id)
        if prior is not None and prior.final:
            return
        if prior is None:
            lag = (utc_now() - version.created).total_seconds()
            metrics.LAG.labels(automation.dataset_stream(version.artifact_name)).set(max(0.0, lag))
        decision = evaluate_dataset(version, automation.required_tags)
        ids = {
            "dataset_version_id": version.id,
            "artifact": version.artifact_name,
            "version": version.version,
        }
        log = self.context.log(automation)
        if decision.verdict is Verdict.TRAIN:
            key = action_key(ActionKind.TRAIN, version.id, automation.name)
            details = {**ids, "producer_run_id": version.producer.id if version.producer else None}
            if self.ledger.claim(key, ActionKind.TRAIN, version.id, details, automation.name):
                log.info("dataset.selected", key=key, **ids)
            self._note(automation, version, "selected", decision.reason, final=True)
            return
        status = "waiting" if decision.verdict is Verdict.WAIT else "skipped"
        changed = prior is None or (prior.status, prior.reason) != (status, decision.reason)
        seen = {
            "tags": sorted(version.tags),
            "missing_tags": list(decision.missing_tags),
            "producer_run_id": version.producer.id if version.producer else None,
        }
        self._note(automation, version, status, decision.reason, decision.final, seen)
        if changed:
            _log_decision(log, decision, ids)

    def _note(
        self,
        automation: Automation,
        version: DatasetVersion,
        status: str,
        reason: str,
        final: bool,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.ledger.note_subject(
            automation.name,
            version.id,
            DATASET,
            version.artifact_name,
            version.version,
            status,
            reason,
            final,
            details,
        )

    def _recheck_waiting(self) -> None:
        """Versions whose producing run was still going: look again (one read per version)."""
        waiting = self.ledger.subjects_with_status(DATASET, "waiting")
        versions: dict[str, DatasetVersion | None] = {}
        pairs = []
        for subject in waiting:
            automation = self.context.automations.get(subject.automation)
            if automation is None:
                continue
            if subject.id not in versions:
                versions[subject.id] = self.store.dataset_version(subject.id)
            found = versions[subject.id]
            if found is not None:
                pairs.append((automation, found))
        if pairs:
            self._judge_again(pairs)

    def _reconcile_approvals(self) -> None:
        """Find old versions that gained the required tags since they were first judged.

        Tagging does not change a version's `updated`, so no cursor can see it: list the versions
        that carry every required tag and judge those the ledger has not settled for good.
        """
        for name, automations in self._watchers.items():
            listed: dict[tuple[str, ...], list[DatasetVersion]] = {}
            for automation in automations:
                tags = automation.required_tags
                if not tags:
                    continue
                if tags not in listed:
                    listed[tags] = list(self.store.dataset_versions_with_tags(name, list(tags)))
                fresh = [
                    version
                    for version in listed[tags]
                    if not (
                        (prior := self.ledger.subject(automation.name, version.id)) and prior.final
                    )
                ]
                if fresh:
                    self.context.log(automation).info(
                        "reconcile.approved_found", artifact=name, count=len(fresh)
                    )
                    self._judge_again((automation, version) for version in fresh)


def _log_decision(log: Any, decision: DatasetDecision, ids: dict[str, Any]) -> None:
    if decision.verdict is Verdict.WAIT:
        log.info("dataset.waiting", reason=decision.reason, **ids)
    else:
        extra = {"missing_tags": list(decision.missing_tags)} if decision.missing_tags else {}
        log.info("dataset.skipped", reason=decision.reason, **extra, **ids)
