"""An automation whose pipeline is broken waits for a fix instead of burning its attempts.

A pipeline module that no longer imports, or a pipeline that no longer accepts its parameters,
fails every run before ZenML has created it, the same way for every selected dataset: without
this, each would use up its attempts one after the other and end `failed`. So when an attempt
fails and no run exists for it, the automation's pipelines are checked again as at start-up
(`checks.PipelineCheck`: imported, a ZenML pipeline, callable with the configured parameters;
in a child process), and none of the automation's actions is dispatched meanwhile:
- the check fails: the automation is **held** (`automation.pipeline_broken`, an error logged
  once, naming each variable and its problem); the attempts that failed this way are given
  back (`attempts_given_back`), and nothing of it is dispatched until a check passes;
- the check passes: the failure was not the pipeline's, and the attempt counts like any other
  (`automation.pipeline_check_passed`). That verdict stands for the code it was taken on: a
  failure on the same code starts no new check.

A held automation is checked again when its code changes (`fingerprint.CodeWatch`) and every
`RECHECK_SECONDS` in any case (for a change the fingerprint does not see); once a check passes
it is released (`automation.pipeline_fixed`) and its actions run, on the new code (the executor
replaces its template when the code changed).

A hold is not a ledger fact: every start of the daemon checks every pipeline and exits 2 on a
broken one, so a hold carried over a restart could only be stale. It is written to the ledger's
`meta` for `autopilot status` to show, and those records are cleared at start.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.core.actions import ActionState
from service.core.automation import Automation
from service.errors import describe_error
from service.ledger import Action
from service.runtime.checks import PipelineCheck
from service.runtime.fingerprint import CodeFingerprint, CodeWatch, describe_changes
from service.stages.context import Context

HELD_PREFIX = "pipeline_broken:"  # ledger meta key of a held automation, for `status`
RECHECK_SECONDS = 300.0
GIVEN_BACK_FROM = (ActionState.RETRY_WAIT, ActionState.FAILED)


@dataclass
class _Review:
    """What is known of one automation's pipelines since an attempt failed with no run."""

    watch: CodeWatch
    check: PipelineCheck | None = None  # in flight
    checked_code: CodeFingerprint | None = None  # the code the last check ran on
    problems: list[str] | None = None  # the last verdict: [] passed
    checked_at: float = 0.0
    failed: dict[str, int] = field(default_factory=dict)  # key -> attempt, to give back
    first_error: str | None = None

    @property
    def held(self) -> bool:
        return bool(self.problems)


class PipelineHolds:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.ledger = context.ledger
        self._reviews: dict[str, _Review] = {}
        self._closed = False

    def start(self) -> None:
        """Clear the hold records of an earlier process: this one's pipelines passed the
        start-up check."""
        for key in self.ledger.meta_with_prefix(HELD_PREFIX):
            self.ledger.delete_meta(key)

    def blocks(self, automation: str) -> bool:
        """Its actions wait: a check of its pipelines is running, or they are broken."""
        review = self._reviews.get(automation)
        return review is not None and (review.check is not None or review.held)

    def held(self, automation: str) -> bool:
        review = self._reviews.get(automation)
        return review is not None and review.held

    def failed_before_run(self, action: Action, error: str) -> None:
        """An attempt failed before ZenML created its run (its failure is recorded already)."""
        automation = self.context.automations.get(action.automation)
        if automation is None or self._closed:
            return
        review = self._reviews.setdefault(automation.name, _Review(_watch(automation)))
        if review.held:  # launched before the hold: given back at once
            self._give_back(automation, {action.key: action.attempts})
            return
        if review.check is None and self._passed_on_current_code(review):
            return  # this code passed its check: the failure is not the pipeline's
        review.failed[action.key] = action.attempts
        review.first_error = review.first_error or error
        if review.check is None:
            self._start_check(automation, review, reason="attempt_failed_before_run")

    def tick(self) -> None:
        """Take the verdicts of finished checks; check held automations again when their code
        changed or it is time."""
        for name, review in self._reviews.items():
            automation = self.context.automations[name]
            if review.check is not None and review.check.done():
                self._verdict(automation, review, _problems(review.check))
            elif review.held and review.check is None and review.checked_code is not None:
                changed = review.checked_code.changes(review.watch.take())
                if changed:
                    self._start_check(automation, review, "code_changed", changed)
                elif time.monotonic() - review.checked_at > RECHECK_SECONDS:
                    self._start_check(automation, review, "interval")

    def close(self) -> None:
        """The daemon stops: a check still running is not waited for, none is started."""
        self._closed = True
        for review in self._reviews.values():
            if review.check is not None:
                review.check.abandon()
                review.check = None

    @staticmethod
    def _passed_on_current_code(review: _Review) -> bool:
        checked = review.checked_code
        return (
            review.problems == []
            and checked is not None
            and not checked.changes(review.watch.take())
        )

    def _start_check(
        self, automation: Automation, review: _Review, reason: str, changed: Sequence[str] = ()
    ) -> None:
        review.checked_code = review.watch.take()  # before it imports: a later edit is seen
        review.checked_at = time.monotonic()
        review.check = PipelineCheck((automation,), self.context.settings.stack)
        shown = describe_changes(list(changed)) if changed else {}
        self.context.log(automation).info(
            "automation.pipeline_check_started", reason=reason, **shown
        )

    def _verdict(self, automation: Automation, review: _Review, problems: list[str]) -> None:
        review.check = None
        was_held, before, review.problems = review.held, review.problems, problems
        log = self.context.log(automation)
        failed, review.failed = review.failed, {}
        first_error, review.first_error = review.first_error, None
        if problems:
            given_back = self._give_back(automation, failed)
            if not was_held:
                self.ledger.set_meta(HELD_PREFIX + automation.name, _record(problems))
                log.error(
                    "automation.pipeline_broken",
                    problems=problems,
                    run_error=first_error,
                    attempts_given_back=given_back,
                )
            elif problems != before:  # edited, and broken another way: said once more
                self.ledger.set_meta(HELD_PREFIX + automation.name, _record(problems))
                log.warning("automation.pipeline_still_broken", problems=problems)
        elif was_held:
            self.ledger.delete_meta(HELD_PREFIX + automation.name)
            log.info("automation.pipeline_fixed")
        else:
            log.info("automation.pipeline_check_passed", attempts_counted=sorted(failed))

    def _give_back(self, automation: Automation, failed: dict[str, int]) -> list[str]:
        """Each failed attempt is not counted: the action waits, pending, for the fix."""
        given_back = []
        for key, attempt in failed.items():
            action = self.ledger.action(key)
            if action is None or action.state not in GIVEN_BACK_FROM or action.attempts != attempt:
                continue  # replayed, skipped or relaunched meanwhile: left as it is
            self.ledger.transition(
                key, ActionState.PENDING, attempts=attempt - 1, not_before=0, started_at=None
            )
            given_back.append(key)
        return sorted(given_back)


def _watch(automation: Automation) -> CodeWatch:
    return CodeWatch({spec.source_root for spec in automation.pipelines.values()})


def _problems(check: PipelineCheck) -> list[str]:
    try:
        return check.problems()
    except Exception as error:  # its process died, or a user's module raised SystemExit
        return [f"the check of its pipelines failed: {describe_error(error)}"]


def _record(problems: list[str]) -> str:
    return json.dumps(
        {"since": datetime.now(UTC).isoformat(timespec="seconds"), "problems": problems}
    )
