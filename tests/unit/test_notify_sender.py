"""The sender against real HTTP receivers on 127.0.0.1 (`tests.support.Receiver`), on a real
ledger: what is retried and what is not, order per model, maximum age, a hanging receiver,
Discord, redirects. No ZenML: the outbox is filled as the tick fills it."""

from __future__ import annotations

import io
import json
from contextlib import contextmanager
from dataclasses import replace

import pytest
import structlog

from service.ledger import Ledger
from service.logs import configure
from service.notify import notices
from service.notify.events import CATALOGUE
from service.notify.outbox import Deliveries, Outbox, Pending, summary
from service.notify.sender import Policy, Sender, StackAlerter, Webhook
from tests.support import Receiver, wait_for
from tests.unit.factories import model_version

FAST = Policy(max_age_seconds=3600, backoff_seconds=0.05, max_backoff_seconds=0.2)
DECISION = {"outcome": "promoted", "reason": "clears_threshold", "detail": "", "metric": "a"}


@pytest.fixture
def log():
    stream = io.StringIO()
    configure("json", "DEBUG", stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    structlog.reset_defaults()


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger(tmp_path / "ledger.sqlite")
    yield opened
    opened.close()


@contextmanager
def running(ledger, destinations, policy=FAST):
    sender = Sender(ledger.path, destinations, policy).start()
    try:
        yield sender
    finally:
        sender.stop()


def record(ledger, destinations, *versions, model=None):
    outbox = Outbox(ledger, [d.name for d in destinations], frozenset(CATALOGUE))
    ids = []
    for version in versions:
        if model is not None:
            version = replace(version, model_name=model)
        notice = notices.decision("default", version, None, f"promote:{version.id}", DECISION)
        with ledger.transaction():
            outbox.add(notice)
        ids.append(notice.id)
    return ids


def states(ledger, destination):
    return [
        (row["state"], row["attempts"], row["status"])
        for row in ledger.execute(
            "SELECT d.* FROM deliveries d JOIN notifications n ON n.id = d.notification_id "
            "WHERE destination = ? ORDER BY n.sequence",
            (destination,),
        )
    ]


def test_500s_are_retried_until_delivered_and_a_400_is_failed_at_once(ledger, log):
    flaky = Receiver(answers=[500, 503]).start()
    refusing = Receiver(default=400, body=b"bad payload").start()
    hooks = [Webhook(flaky.url, b"k", 5), Webhook(refusing.url, None, 5)]
    (event_id,) = record(ledger, hooks, model_version())
    with running(ledger, hooks):
        wait_for(lambda: flaky.received(200), timeout=20, what="the third attempt")
        wait_for(lambda: states(ledger, hooks[1].name)[0][0] == "failed", timeout=20)
    assert [r.status for r in flaky.received("any")] == [500, 503, 200]
    assert {r.headers["X-Autopilot-Event-Id"] for r in flaky.received("any")} == {event_id}
    assert states(ledger, hooks[0].name) == [("delivered", 3, 200)]
    assert [r.status for r in refusing.received("any")] == [400]  # not retried
    assert states(ledger, hooks[1].name) == [("failed", 1, 400)]
    failed = [e for e in log() if e["event"] == "notify.failed"]
    not_retried = [e for e in failed if not e["will_retry"]]
    assert len(not_retried) == 1 and not_retried[0]["status"] == 400
    assert not_retried[0]["error"] == "HTTP 400: bad payload" and not_retried[0]["level"] == "error"
    assert [e["level"] for e in failed if e["will_retry"]] == ["warning", "debug"]
    assert summary(ledger)[hooks[1].name]["failed"] == 1
    flaky.stop()
    refusing.stop()


def test_a_refused_connection_is_retried_until_the_receiver_listens(ledger):
    down = Receiver()  # not listening yet: connections are refused
    hook = Webhook(down.url, None, 5)
    ids = record(ledger, [hook], model_version(), model_version())
    with running(ledger, [hook]):
        wait_for(lambda: states(ledger, hook.name)[0][1] >= 2, timeout=20, what="retries")
        assert states(ledger, hook.name)[1][1] == 0  # the later one waits behind it
        down.start()
        wait_for(lambda: len(down.received()) == 2, timeout=20, what="both")
    assert [r.json["id"] for r in down.received("any")] == ids
    (error,) = {row["error"] for row in ledger.execute("SELECT error FROM deliveries")}
    assert error is None or "refused" in error.lower()
    down.stop()


def test_a_model_waits_behind_its_oldest_notification_while_others_go_on(ledger):
    receiver = Receiver(answers=[503]).start()
    hook = Webhook(receiver.url, None, 5)
    first, second = record(ledger, [hook], model_version(), model_version())
    (other,) = record(ledger, [hook], model_version(), model="other_model")
    slow = Policy(max_age_seconds=3600, backoff_seconds=1.0, max_backoff_seconds=1.0)
    with running(ledger, [hook], slow):
        wait_for(lambda: len(receiver.received()) == 3, timeout=20, what="all delivered")
    assert [r.json["id"] for r in receiver.received("any")] == [first, other, first, second]
    receiver.stop()


def test_a_notification_older_than_the_maximum_age_is_dropped(ledger, log):
    down = Receiver()
    hook = Webhook(down.url, None, 5)
    (event_id,) = record(ledger, [hook], model_version())
    short = Policy(max_age_seconds=0.5, backoff_seconds=0.1, max_backoff_seconds=0.1)
    with running(ledger, [hook], short):
        wait_for(lambda: states(ledger, hook.name)[0][0] == "dropped", timeout=20)
    (dropped,) = [e for e in log() if e["event"] == "notify.dropped"]
    assert dropped["notification_id"] == event_id and dropped["reason"] == "max_age"
    assert states(ledger, hook.name)[0][1] >= 1


def test_a_hanging_receiver_holds_up_only_its_own_deliveries(ledger):
    hanging = Receiver(hang=True).start()
    quick = Receiver().start()
    hooks = [Webhook(hanging.url, None, 3600), Webhook(quick.url, None, 5)]
    ids = record(ledger, hooks, model_version(), model_version(), model_version())
    with running(ledger, hooks) as sender:
        wait_for(lambda: len(quick.received()) == 3, timeout=20, what="the quick receiver")
        assert len(hanging.received(None)) == 1  # its first request is still open
        assert [r.json["id"] for r in quick.received()] == ids
        sender.stop(drain_seconds=0.5)  # returns, though one thread is stuck on a receiver
    assert [s[0] for s in states(ledger, hooks[0].name)] == ["pending"] * 3
    hanging.stop()
    quick.stop()


def test_a_discord_webhook_gets_content_and_a_redirect_is_not_followed(ledger):
    hook = Webhook("https://discord.com/api/webhooks/1/abc", None, 5)
    pending = Pending("id", "model.promoted", "a", "m", 1, 0.0, '{"text": "hello"}', 0, 0.0)
    assert json.loads(hook.body(pending)) == {"content": "hello"}
    assert not Webhook("https://hooks.slack.com/services/x", None, 5).discord

    moved = Receiver(default=301).start()
    redirected = Webhook(moved.url, None, 5)
    record(ledger, [redirected], model_version())
    with running(ledger, [redirected]):
        wait_for(lambda: states(ledger, redirected.name)[0][0] == "failed", timeout=20)
    assert len(moved.received("any")) == 1
    moved.stop()


def test_the_stack_alerter_waits_for_the_store_and_retries_a_failed_post(ledger, tmp_path):
    posted: list[str] = []
    answers = iter([False, True])

    def post(text: str) -> bool:
        posted.append(text)
        return next(answers)

    alerter = StackAlerter(lambda: post)
    record(ledger, [alerter], model_version())
    with running(ledger, [alerter]) as sender:
        assert Deliveries(ledger.path).depth("alerter") == 1
        sender.store_connected()
        wait_for(lambda: states(ledger, "alerter")[0][0] == "delivered", timeout=20)
    assert len(posted) == 2 and posted[0] == posted[1]
    assert posted[0].startswith("iris_classifier version 1 promoted to production")


def test_notifications_for_a_destination_no_longer_configured_are_dropped(ledger, log):
    removed = Webhook("https://hooks.example.com/removed", None, 5)
    (event_id,) = record(ledger, [removed], model_version())
    with running(ledger, []):
        pass
    assert states(ledger, removed.name) == [("dropped", 0, None)]
    (dropped,) = [e for e in log() if e["event"] == "notify.dropped"]
    assert dropped["reason"] == "destination_not_configured"
    assert dropped["notification_id"] == event_id
