"""Watching datasets: new versions of the watched artifacts, versions whose producing run was
still going, and old versions that gained the required tags. A selected version is claimed as
`train:...` once per automation that watches its artifact."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from service import metrics
from service.core.actions import ActionKind, action_key
from service.core.automation import Automation
from service.core.polling import Polls, format_floor, parse_floor, raised_floor
from service.core.records import DatasetVersion
from service.core.selection import (
    PRODUCER_WAITS,
    REQUIRED_TAGS_CHANGED,
    TAGS_MAY_FOLLOW,
    DatasetDecision,
    SkipReason,
    Verdict,
    evaluate_dataset,
    look_again,
)
from service.faults import crashpoint
from service.ledger import Subject
from service.stages.context import (
    DATASET,
    WAITING_SINCE,
    Context,
    first_seen,
    lowest_floor,
    stored_floor,
    upgrade_cursor,
    utc_now,
)
from service.stages.training_gate import queue_training

BATCH_SIZE = 100  # decisions committed per ledger transaction
REQUIRED_TAGS_KEY = "required_tags/"  # ledger meta, per automation: the tags it judged with
RECONCILE_PAGES_PER_TICK = 5  # pages of 100 tagged versions a tick reads for reconciliation


class DatasetWatch:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.ledger = context.ledger
        self.store = context.store
        self._next_reconcile = 0.0
        self._reconciling: Iterator[bool] | None = None  # the pass under way, page by page
        # When each version waiting on its producer was last read (the daemon's clock): after
        # its first minute it is read once a minute. In memory: a restart reads each at once.
        self._looked_at: dict[str, float] = {}
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
        turn cursors written before floors (version numbers) into floors; carry out a change of
        an automation's required tags."""
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
        for automation in self.context.automations.values():
            self._required_tags_changed(automation)

    def _required_tags_changed(self, automation: Automation) -> None:
        """When an automation's required tags differ from those its versions were judged with
        (kept in the ledger), the start policy decides, as on a first start, what becomes of
        the versions that carry the new tags and were skipped for missing tags, or passed over
        below the floor of a first start: `now` keeps them skipped (for good,
        `predates_required_tags_change`), `beginning` judges them again under the new tags, a
        time judges again those created at or after it. The same whether the tags were relaxed
        or emptied: without this, relaxing them trained every version ever skipped (the
        reconciliation pass found them approved), and emptying them none."""
        key = f"{REQUIRED_TAGS_KEY}{automation.name}"
        tags = sorted(set(automation.required_tags))
        recorded = self.ledger.get_meta(key)
        before = None if recorded is None else sorted(json.loads(recorded))
        if before == tags:
            return
        if before is None:  # a new automation (or a ledger from before tags were kept)
            self.ledger.set_meta(key, json.dumps(tags))
            return
        start = self.context.settings.start
        kept = again = 0
        with self.ledger.transaction():
            for name in automation.dataset_names:
                stream = automation.dataset_stream(name)
                floor = (
                    stored_floor(self.ledger, stream) if self.ledger.has_cursor(stream) else None
                )
                for id, version, created in self.store.dataset_ids_with_tags(name, tags):
                    prior = self.ledger.subject(automation.name, id)
                    judged_before = prior is not None and prior.reason == SkipReason.MISSING_TAGS
                    passed_over = prior is None and floor is not None and created < floor
                    if not (judged_before or passed_over):
                        continue  # decided for good, waiting, or not read yet: as it is
                    details = {**(prior.details if prior else {}), "required_tags_before": before}
                    keep = start.skips(created)
                    reason = SkipReason.PREDATES_TAGS_CHANGE if keep else REQUIRED_TAGS_CHANGED
                    kept, again = (kept + 1, again) if keep else (kept, again + 1)
                    self.ledger.note_subject(
                        automation.name,
                        id,
                        DATASET,
                        name,
                        version,
                        "skipped" if keep else "waiting",
                        reason,
                        keep,
                        details,
                    )
            self.ledger.set_meta(key, json.dumps(tags))
        self.context.log(automation).info(
            "datasets.required_tags_changed",
            before=before,
            after=tags,
            start_from=str(start),
            kept_skipped=kept,
            judged_again=again,
        )

    def _init_stream(self, automation: Automation, name: str) -> None:
        start = self.context.settings.start
        # Read before the versions are listed below: every version at or above the floor that
        # exists now is among them (start.first_floor).
        newest = self.store.newest_dataset_created(name) if start.mode == "now" else None
        skipped = 0
        if start.mode != "beginning":
            before = start.since  # None for `now`: every selected version so far predates it
            for version in self.store.dataset_versions_with_tags(
                name, list(automation.required_tags), created_before=before
            ):
                self._note(automation, version, "skipped", SkipReason.PREDATES_START, final=True)
                skipped += 1
        floor = start.first_floor(newest)
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
        """Judged for good by every automation watching `name` (read from the ledger); a name
        no automation watches (the store answered for another, core/names) counts as judged."""
        watching = self._watchers.get(name)
        if watching is None:
            self.context.unwatched_name("artifact", name)
            return True
        return all(
            (prior := self.ledger.subject(automation.name, version_id)) is not None and prior.final
            for automation in watching
        )

    def _judge_new(
        self, versions: list[DatasetVersion], floors: dict[tuple[str, str], datetime | None]
    ) -> None:
        """Judge a batch for every watcher whose floor is below it, in one ledger transaction."""
        with self.ledger.transaction():
            for version in versions:
                for automation in self._watchers.get(version.artifact_name, ()):
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
        now = self.context.clock()
        since = first_seen(prior, WAITING_SINCE, now)  # kept while it waits
        decision = evaluate_dataset(
            version,
            automation.required_tags,
            first_look=prior is None,
            producer_waited=now - since,
            producer_wait=self.context.settings.producer_wait_seconds,
        )
        ids = {
            "dataset_version_id": version.id,
            "artifact": version.artifact_name,
            "version": version.version,
        }
        log = self.context.log(automation)
        if decision.verdict is Verdict.TRAIN:
            if automation.training_policy.gated:  # the training gate says when (issue 20)
                queue_training(self.context, automation, version)
                self._note(automation, version, "selected", decision.reason, final=True)
                return
            key = action_key(ActionKind.TRAIN, version.id, automation.name)
            details = {**ids, "producer_run_id": version.producer.id if version.producer else None}
            if self.ledger.claim(key, ActionKind.TRAIN, version.id, details, automation.name):
                log.info("dataset.selected", key=key, **ids)
            self._note(automation, version, "selected", decision.reason, final=True)
            return
        status = "waiting" if decision.verdict is Verdict.WAIT else "skipped"
        changed = prior is None or (prior.status, prior.reason) != (status, decision.reason)
        seen: dict[str, Any] = {
            "tags": sorted(version.tags),
            "missing_tags": list(decision.missing_tags),
            "producer_run_id": version.producer.id if version.producer else None,
        }
        if decision.verdict is Verdict.WAIT:
            seen[WAITING_SINCE] = since
        elif decision.reason == SkipReason.PRODUCER_WAIT_EXCEEDED:
            waited_for = prior.reason if prior is not None else None
            seen |= {"waited_seconds": round(now - since, 1), "waited_for": waited_for}
        self._note(automation, version, status, decision.reason, decision.final, seen)
        if changed:
            _log_decision(log, decision, ids, seen)

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
        look again (one read per version), those read in this tick at the next. A version
        waiting on its producer for more than a minute is read once a minute (`look_again`)."""
        now = self.context.clock()
        waiting = self.ledger.subjects_with_status(DATASET, "waiting")
        looked_at, self._looked_at = self._looked_at, {}
        versions: dict[str, DatasetVersion | None] = {}
        pairs = []
        for subject in waiting:
            if subject.id in looked_at:  # still waiting: keep when it was read
                self._looked_at[subject.id] = looked_at[subject.id]
            automation = self.context.automations.get(subject.automation)
            if automation is None or subject.id in read_now or not self._due(subject, now):
                continue
            if subject.id not in versions:
                versions[subject.id] = self.store.dataset_version(subject.id)
                self._looked_at[subject.id] = now
            found = versions[subject.id]
            if found is not None:
                pairs.append((automation, found))
        if pairs:
            self._judge_again(pairs)

    def _due(self, subject: Subject, now: float) -> bool:
        """Whether a waiting version is read again in this tick."""
        if subject.reason not in PRODUCER_WAITS:
            return True
        waited = now - first_seen(subject, WAITING_SINCE, now)
        looked = self._looked_at.get(subject.id)
        since_look = None if looked is None or looked > now else now - looked
        return look_again(waited, since_look, self.context.settings.producer_wait_seconds)

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


def _log_decision(
    log: Any, decision: DatasetDecision, ids: dict[str, Any], seen: dict[str, Any]
) -> None:
    if decision.reason == TAGS_MAY_FOLLOW:  # every untagged version, for one tick: not news
        log.debug("dataset.waiting", reason=decision.reason, **ids)
    elif decision.verdict is Verdict.WAIT:
        log.info("dataset.waiting", reason=decision.reason, **ids)
    elif decision.reason == SkipReason.PRODUCER_WAIT_EXCEEDED:
        waited = {k: seen[k] for k in ("waited_seconds", "waited_for", "producer_run_id")}
        log.warning("dataset.skipped", reason=decision.reason, **waited, **ids)
    else:
        extra = {"missing_tags": list(decision.missing_tags)} if decision.missing_tags else {}
        log.info("dataset.skipped", reason=decision.reason, **extra, **ids)
