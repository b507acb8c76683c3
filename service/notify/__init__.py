"""Notifications: tell people what the daemon decided or saw, through webhooks and the stack's
ZenML alerter, with none lost (docs/notifications.md).

How it fits together:

- `events.py` (pure): the catalogue of events and the default set a person acts on; the payload
  (`schema` 1), its readable `text`, and the event's stable id (UUID5 of its name and of what
  the ledger records that makes it unique).
- `notices.py` (pure): the notice of each event the tick records, from ledger facts.
- `outbox.py`: `Outbox.add(notice)` writes the notification and one delivery per destination
  **in the caller's ledger transaction**, with the decision or outcome it reports;
  `Deliveries` is the sender's side of those tables.
- `sender.py`: one background thread per destination (its own SQLite connection), never the
  tick's: timeouts, retries with backoff, no retry for other 4xx, a maximum age, in order per
  model; signing.
- `outage.py`: the store unreachable for too long, and its recovery (kept in the ledger).
- `build.py`: all of it from the settings; `zenml_stack.py`: the stack's alerter and the
  dashboard's address (the one module here that imports zenml).

Adding an event (issue 18's `model.awaiting_approval`, `model.approval_expired`,
`model.rolled_back`, `deployment.failed`, `evaluation.*`) takes two things:

1. Its entry in `events.CATALOGUE`: name, whether it is in the default set, what it means,
   and its `text` (a function of the notice), plus its example in docs/notifications.md (a
   unit test checks every catalogue event has one).
2. One call where the outcome is recorded, **inside that ledger transaction**:

       with self.ledger.transaction():
           ...  # record the rollback
           self.context.notify(
               notices.for_version(
                   "model.rolled_back",
                   identity=key,  # what the ledger records that makes it unique, e.g. its key
                   automation=automation.name,
                   version=restored,
                   dataset_version_id=trained_on(restored),
                   reason="inference_failed",
                   values={"from_model_version_id": failed.id, "by": "autopilot"},
                   runs={"inference": failed_run_id},
               )
           )

   (`notices.action_ended` serves an action that ended, like `deployment.failed`, as it does
   `training.failed`.) The filters (AUTOPILOT_NOTIFY_EVENTS, NOTIFY_EVENTS), the payload,
   the links, delivery, metrics and `status` need nothing more.
"""
