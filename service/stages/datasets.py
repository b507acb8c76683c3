"""Watching datasets: new versions of the watched artifacts, versions whose producing run was
still going, and old versions that gained the required tags. A selected version is claimed as
`train:...` once per automation that watches its artifact."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from service import metrics
from service.core.actions import ActionKind, action_key
from service.core.automation import Automation
from service.core.polling import Polls, format_floor, parse_floor, raised_floor
from service.core.records import DatasetVersion
from service.core.selection import (
    TAGS_MAY_FOLLOW,
    DatasetDecision,
    SkipReason,
    Verdict,
    evaluate_dataset,
)
from service.faults import crashpoint
from service.stages.context import (
    DATASET,
    Context,
    lowest_floor,
    stored_floor,
    upgrade_cursor,
    utc_now,
)

BATCH_SIZE = 100  # decisions committed per ledger transaction
RECONCILE_PAGES_PER_TICK = 5  # pages of 100 tagged versions a tick reads for reconciliation


class DatasetWatch:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.ledger = context.ledger
        self.store = context.store
        self._next_reconcile = 0.0
        self._reconciling: Iterator[bool] | None = None  # the pass under way, page by page
        # Sweeps and fast reads (core/polling); what was read: newest `created`, highest
        # numbers, judged versions above the floors.
        self._polls = Polls(context.settings.reconcile_interval_seconds)
        self._seen = self._polls.seen
        # One store query per watched artifact name, whichever automations watch it.
        self._watchers: dict[str, list[Automation]] = {}
        for automation in context.automations.values():
            for name in automation.dataset_names:
                self._watchers.setdefault(name, []).append(automation)

    # -- start-up -----------------------------------------------------------------------------

    def start(self) -> None:
        """Initialise the streams a new automation or dataset name brings, per the start policy;
        turn cursors written before floors (version numbers) into floors."""
        for name, automations in self._watchers.items():
            for automation in automations:
                stream = automation.dataset_stream(name)
                if not self.ledger.has_cursor(stream):
                    self._init_stream(automation, name)
                    continue
                number = parse_floor(self.ledger.get_cursor(stream))
                if isinstance(number, int):
                    floor = self.store.dataset_created_at_number(name, number) if number else None
                    upgrade_cursor(self.context, automation, stream, number, floor)

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
        floor = start.since
        if start.mode == "now" and (newest := self.store.newest_dataset_created(name)):
            floor = newest + timedelta(microseconds=1)  # after every version there is
        stream = automation.dataset_stream(name)
        self.ledger.set_cursor(stream, format_floor(floor))
        self.context.log(automation).info(
            "startup.stream_initialised",
            stream=stream,
            start_from=str(start),
            floor=format_floor(floor) or None,
            skipped_existing=skipped,
        )

    # -- the tick -----------------------------------------------------------------------------

    def tick(self) -> None:
        read_now = self._watch_new()
        self._recheck_waiting(read_now)
        self._reconcile_some()

    def _reconcile_some(self) -> None:
        """Go on with the reconciliation pass for a few pages, so that a store with many
        approved versions spreads a pass over ticks instead of holding one up."""
        if self._reconciling is None:
            if time.monotonic() < self._next_reconcile:
                return
            self._reconciling = self._reconcile_approvals()
        for _ in range(RECONCILE_PAGES_PER_TICK):
            if next(self._reconciling, None) is None:  # the pass is done (or failed)
                self._reconciling = None
                interval = self.context.settings.reconcile_interval_seconds
                self._next_reconcile = time.monotonic() + interval
                return

    def _watch_new(self) -> set[str]:
        """Versions of every watched artifact not judged yet, in as few queries as the floors
        allow: each name is read from the lowest floor of the automations that watch it, by a
        sweep or a fast read (`core/polling`). Only a sweep moves the stored floors. The ids
        of the versions read."""
        read_now: set[str] = set()
        floors = {
            (automation.name, name): stored_floor(self.ledger, automation.dataset_stream(name))
            for name, automations in self._watchers.items()
            for automation in automations
        }
        crashpoint("after_cursor_read")
        lowest = {
            name: lowest_floor(floors[(a.name, name)] for a in automations)
            for name, automations in self._watchers.items()
        }
        sweep, groups = self._polls.plan(lowest, self.store.top_dataset_number)
        for group in groups:
            newest_before = self._seen.newest
            batch: list[DatasetVersion] = []
            for version in self.store.dataset_versions_since(group, self._seen, self._judged):
                batch.append(version)
                read_now.add(version.id)
                if len(batch) >= BATCH_SIZE:
                    self._judge_new(batch, floors)
                    batch = []
            if batch:
                self._judge_new(batch, floors)
            self._polls.read(group, newest_before)
            if sweep:
                self._raise_floors(group.names, floors, newest_before)
        if sweep:
            self._polls.swept()
        return read_now

    def _judged(self, name: str, version_id: str) -> bool:
        """Judged for good by every automation watching `name` (read from the ledger)."""
        return all(
            (prior := self.ledger.subject(automation.name, version_id)) is not None and prior.final
            for automation in self._watchers[name]
        )

    def _judge_new(
        self, versions: list[DatasetVersion], floors: dict[tuple[str, str], datetime | None]
    ) -> None:
        """Judge a batch for every watcher whose floor is below it, in one ledger transaction."""
        with self.ledger.transaction():
            for version in versions:
                for automation in self._watchers[version.artifact_name]:
                    floor = floors[(automation.name, version.artifact_name)]
                    if floor is None or version.created >= floor:
                        self._judge(automation, version)
        for version in versions:  # judged by every watcher, and committed
            self._seen.add(version.artifact_name, version.id, version.created, version.number)
        crashpoint("after_dataset_claimed")

    def _raise_floors(
        self,
        names: Iterable[str],
        floors: dict[tuple[str, str], datetime | None],
        newest_before: datetime | None,
    ) -> None:
        """After a complete read of these names, move their floors up (see `core/polling`)."""
        with self.ledger.transaction():
            for name in names:
                for automation in self._watchers[name]:
                    floor = floors[(automation.name, name)]
                    raised = raised_floor(floor, newest_before)
                    if raised != floor:
                        floors[(automation.name, name)] = raised
                        self.ledger.set_cursor(
                            automation.dataset_stream(name), format_floor(raised)
                        )
        for name in names:
            self._seen.forget_below(
                name, lowest_floor(floors[(a.name, name)] for a in self._watchers[name])
            )

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
        decision = evaluate_dataset(version, automation.required_tags, first_look=prior is None)
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

    def _recheck_waiting(self, read_now: set[str]) -> None:
        """Versions whose producing run was still going, or whose tags may have followed them:
        look again (one read per version), those read in this tick at the next."""
        waiting = [
            subject
            for subject in self.ledger.subjects_with_status(DATASET, "waiting")
            if subject.id not in read_now
        ]
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

    def _reconcile_approvals(self) -> Iterator[bool]:
        """Find old versions that gained the required tags since they were first judged; one
        step per page of tagged versions.

        Tagging does not change a version's `updated`, so no floor can see it: list the ids of
        the versions that carry every required tag and judge those the ledger has not settled
        for good (read in full only those).
        """
        for name, automations in self._watchers.items():
            by_tags: dict[tuple[str, ...], list[Automation]] = {}
            for automation in automations:
                if automation.required_tags:
                    by_tags.setdefault(automation.required_tags, []).append(automation)
            for tags, watching in by_tags.items():
                for ids in self.store.dataset_id_pages_with_tags(name, list(tags)):
                    for automation in watching:
                        self._reconcile_page(automation, name, ids)
                    yield True

    def _reconcile_page(self, automation: Automation, name: str, ids: list[str]) -> None:
        fresh = [
            version
            for id in ids
            if not ((prior := self.ledger.subject(automation.name, id)) and prior.final)
            and (version := self.store.dataset_version(id)) is not None
        ]
        if fresh:
            self.context.log(automation).info(
                "reconcile.approved_found", artifact=name, count=len(fresh)
            )
            self._judge_again((automation, version) for version in fresh)


def _log_decision(log: Any, decision: DatasetDecision, ids: dict[str, Any]) -> None:
    if decision.reason == TAGS_MAY_FOLLOW:  # every untagged version, for one tick: not news
        log.debug("dataset.waiting", reason=decision.reason, **ids)
    elif decision.verdict is Verdict.WAIT:
        log.info("dataset.waiting", reason=decision.reason, **ids)
    else:
        extra = {"missing_tags": list(decision.missing_tags)} if decision.missing_tags else {}
        log.info("dataset.skipped", reason=decision.reason, **extra, **ids)
