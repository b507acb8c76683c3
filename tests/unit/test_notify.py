"""Notifications, the parts without ZenML: event ids, the payload, the outbox's transaction, the
store outage watch, the settings, and the README's verification snippet."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime
from email.message import Message

import pytest

from service.core.actions import ActionKind
from service.ledger import SCHEMA_VERSION, Ledger
from service.notify import events, notices
from service.notify.events import CATALOGUE, DEFAULT_EVENTS, parse_event_names
from service.notify.outage import StoreOutage
from service.notify.outbox import Outbox, summary, webhook_destination
from service.notify.sender import sign
from service.settings import ConfigError, describe, load_settings
from tests.support import PROJECT_ROOT, readme_verify
from tests.unit.factories import model_version, run

DECISION = {
    "outcome": "promoted",
    "reason": "clears_threshold_and_beats_production",
    "detail": "0.97 > production iris_classifier#1 0.95",
    "metric": "accuracy",
    "value": 0.97,
    "threshold": 0.9,
    "goal": "maximize",
    "production_version_id": "mv-1",
    "production_version_number": 1,
    "production_value": 0.95,
}


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger(tmp_path / "ledger.sqlite")
    yield opened
    opened.close()


def promoted(version=None, key="promote:mv-2"):
    version = version or model_version({"accuracy": 0.97}, number=2)
    return notices.decision("default", version, "ds-1", key, DECISION)


def rows(ledger, table):
    return ledger.execute(f"SELECT * FROM {table}").fetchall()


def test_an_events_id_depends_only_on_its_name_and_identity():
    first, again = promoted(), promoted()
    assert first.occurred_at <= again.occurred_at
    assert first.id == again.id  # the same on every retry and after a restart
    assert promoted(key="promote:mv-3").id != first.id
    failed = notices.action_ended(
        "training.failed", "a", "m", ActionKind.TRAIN, "train:a:ds", "ds", {}, "r", "x", {}
    )
    replayed = notices.action_ended(
        "training.failed",
        "a",
        "m",
        ActionKind.TRAIN,
        "train:a:ds",
        "ds",
        {"replayed_at": 1.5},
        "r",
        "x",
        {},
    )
    assert failed.id != replayed.id  # a replay that fails again is another event


def test_the_payload_has_every_key_with_the_decisions_values_and_a_readable_text():
    version = model_version({"accuracy": 0.97}, number=2)
    links = events.DashboardLinks(run="https://zenml.example.com/projects/default/runs/{id}")
    body = events.payload(promoted(version), 7, links)
    assert list(body) == [
        "schema",
        "id",
        "event",
        "sequence",
        "occurred_at",
        "automation",
        "model",
        "model_version",
        "dataset_version_id",
        "runs",
        "reason",
        "values",
        "links",
        "text",
    ]
    assert body["schema"] == 1 and body["sequence"] == 7
    assert body["model_version"] == {"id": version.id, "number": 2, "name": "2"}
    assert body["values"]["value"] == 0.97 and body["values"]["production_value"] == 0.95
    assert body["runs"] == {"training": None}
    assert body["text"] == (
        "iris_classifier version 2 promoted to production: accuracy 0.97 > production "
        "iris_classifier#1 0.95 [automation default]"
    )
    trained = model_version({"accuracy": 0.97}, number=3, producer=run())
    with_run = events.payload(promoted(trained, "promote:x"), 8, links)
    assert with_run["links"] == {
        "training_run": f"https://zenml.example.com/projects/default/runs/{trained.producer.id}"
    }


def test_an_inference_on_scoring_data_names_the_version_it_scored():
    scored = {
        "model_version_number": 2,
        "scoring_dataset_version_id": "sd-7",
        "scoring_artifact": "iris_scoring_dataset",
        "scoring_version": "7",
    }
    notice = notices.action_ended(
        "inference.failed",
        "default",
        "iris_classifier",
        ActionKind.INFER,
        "infer:mv-2@score:sd-7",
        "mv-2",
        scored,
        "run-1",
        "attempts_exhausted",
        {"attempts": 3, "error": "no rows"},
    )
    body = events.payload(notice, 1, events.DashboardLinks())
    assert body["values"]["scoring_dataset_version_id"] == "sd-7"
    assert body["values"]["key"] == "infer:mv-2@score:sd-7"
    assert body["text"] == (
        "inference on iris_classifier version 2 on scoring dataset iris_scoring_dataset 7 "
        "failed for good after 3 attempts: no rows [automation default]"
    )


def test_every_event_of_the_catalogue_has_a_text_and_an_example_in_the_docs():
    docs = (PROJECT_ROOT / "docs" / "notifications.md").read_text()
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", docs, re.S)]
    documented = {example["event"] for example in examples}
    assert documented == set(CATALOGUE)
    keys = list(events.payload(promoted(), 1))
    for example in examples:
        assert list(example) == keys, example["event"]
        assert example["schema"] == events.SCHEMA


def test_event_names_accept_default_and_all_and_suggest_the_closest():
    assert parse_event_names("default") == DEFAULT_EVENTS
    assert parse_event_names("default, model.rejected") == DEFAULT_EVENTS | {"model.rejected"}
    assert parse_event_names("all") == frozenset(CATALOGUE)
    assert parse_event_names(" ") == frozenset()
    with pytest.raises(ValueError, match=r"model.promotd \(did you mean model.promoted\?\)"):
        parse_event_names("model.promotd")
    assert "model.promoted" in DEFAULT_EVENTS and "model.rejected" not in DEFAULT_EVENTS


def test_a_notification_commits_with_what_it_reports_or_not_at_all(ledger):
    outbox = Outbox(ledger, ["webhook:a:1", "alerter"], DEFAULT_EVENTS)
    with pytest.raises(RuntimeError), ledger.transaction():
        ledger.set_meta("decided", "yes")
        assert outbox.add(promoted())
        raise RuntimeError("crash before the commit")
    assert ledger.get_meta("decided") is None
    assert rows(ledger, "notifications") == [] and rows(ledger, "deliveries") == []

    with ledger.transaction():
        outbox.add(promoted())
        outbox.add(promoted())  # the same event again: kept once
    (notification,) = rows(ledger, "notifications")
    assert notification["id"] == promoted().id and notification["sequence"] == 1
    assert json.loads(notification["body"])["id"] == promoted().id
    deliveries = rows(ledger, "deliveries")
    assert sorted(d["destination"] for d in deliveries) == ["alerter", "webhook:a:1"]
    assert {d["state"] for d in deliveries} == {"pending"}
    assert summary(ledger)["alerter"]["undelivered"] == 1


def test_only_the_configured_events_are_recorded_per_automation(ledger):
    outbox = Outbox(
        ledger,
        ["webhook:a:1"],
        DEFAULT_EVENTS,
        {"quiet": frozenset(), "chatty": DEFAULT_EVENTS | {"model.rejected"}},
    )
    version = model_version({"accuracy": 0.5})
    rejected = {**DECISION, "outcome": "rejected", "reason": "below_threshold"}
    assert not outbox.add(notices.decision("default", version, None, "promote:1", rejected))
    assert outbox.add(notices.decision("chatty", version, None, "promote:2", rejected))
    assert not outbox.add(notices.decision("quiet", version, None, "promote:3", DECISION))
    assert outbox.add(notices.decision("default", version, None, "promote:4", DECISION))
    assert not Outbox(ledger, [], DEFAULT_EVENTS).add(promoted())  # no destination: nothing
    assert [r["event"] for r in rows(ledger, "notifications")] == [
        "model.rejected",
        "model.promoted",
    ]


def test_the_secret_is_scrubbed_from_a_notification_before_it_is_stored(ledger):
    secret = "whsec-do-not-leak-42"
    outbox = Outbox(
        ledger, ["webhook:a:1"], DEFAULT_EVENTS, scrub=lambda t: t.replace(secret, "<redacted>")
    )
    notice = notices.action_ended(
        "training.failed",
        "default",
        "m",
        ActionKind.TRAIN,
        "train:ds",
        "ds",
        {},
        "run-1",
        "attempts_exhausted",
        {"error": f"ValueError: token {secret} refused"},
    )
    outbox.add(notice)
    ledger.close()  # everything checkpointed into the one file
    stored = ledger.path.read_bytes()
    assert secret.encode() not in stored
    assert b"ValueError: token <redacted> refused" in stored


def test_the_outbox_tables_are_added_to_a_ledger_of_any_version(tmp_path):
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE deliveries")
        db.execute("DROP TABLE notifications")
    reopened = Ledger(path)
    assert rows(reopened, "notifications") == []
    assert int(reopened.execute("PRAGMA user_version").fetchone()[0]) == SCHEMA_VERSION
    reopened.close()


def test_a_long_store_outage_is_notified_once_and_its_recovery_after_it(ledger, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("service.notify.outage.epoch", lambda: clock[0])
    outbox = Outbox(ledger, ["webhook:a:1"], DEFAULT_EVENTS)
    outage = StoreOutage(ledger, outbox, 600, "https://zenml.example.com")

    def sent():
        return [(r["event"], r["id"]) for r in rows(ledger, "notifications")]

    outage.failed("ConnectionError: refused")  # it never answered: from this failure
    clock[0] += 300
    outage.failed("ConnectionError: refused")
    outage.answered()  # 300 s: short, nothing said
    assert sent() == []

    clock[0] += 10
    outage.answered()  # its last answer: the outage counts from here
    clock[0] += 30
    outage.failed("ConnectionError: refused")
    clock[0] += 569
    outage.failed("ConnectionError: refused")
    assert sent() == []
    clock[0] += 1
    outage.failed("ConnectionError: refused")
    clock[0] += 30
    # A restart in the middle of the outage: the new process goes on with it.
    restarted = StoreOutage(ledger, outbox, 600, "https://zenml.example.com")
    restarted.failed("ConnectionError: refused")
    assert [event for event, _ in sent()] == ["store.unreachable"]
    clock[0] += 60
    restarted.answered()
    restarted.answered()
    (unreachable, recovered) = sent()
    assert recovered[0] == "store.recovered"
    body = json.loads(rows(ledger, "notifications")[1]["body"])
    assert body["values"]["down_seconds"] == 690 and body["values"]["error"] is None
    assert body["text"] == (
        "the ZenML store https://zenml.example.com answers again after 11.5 min"
    )

    clock[0] += 5000  # another outage later: other ids
    outage = StoreOutage(ledger, outbox, 600, "https://zenml.example.com")
    outage.failed("x")
    clock[0] += 600
    outage.failed("x")
    assert len(sent()) == 3 and sent()[2][1] not in (unreachable[1], recovered[1])


def test_an_outage_left_by_a_process_stopped_long_ago_starts_again(ledger, monkeypatch):
    """The failures of one process are one outage however far apart (ZenML's REST client
    retries for 30 s per call); one left unnotified by a process stopped for longer than the
    outage setting is not continued: the store may have answered in between."""
    clock = [0.0]
    monkeypatch.setattr("service.notify.outage.epoch", lambda: clock[0])
    outbox = Outbox(ledger, ["webhook:a:1"], DEFAULT_EVENTS)
    outage = StoreOutage(ledger, outbox, 10, "u")
    for _ in range(3):  # 0, 6, 12: far apart, one outage
        outage.failed("x")
        clock[0] += 6
    assert [r["event"] for r in rows(ledger, "notifications")] == ["store.unreachable"]
    outage.answered()
    outage.failed("x")  # then the process stops, for 20 s
    clock[0] += 20
    StoreOutage(ledger, outbox, 10, "u").failed("x")
    assert len(rows(ledger, "notifications")) == 2  # the recovery; no second unreachable


def test_an_unreachable_not_wanted_is_never_followed_by_a_recovery(ledger, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("service.notify.outage.epoch", lambda: clock[0])
    outbox = Outbox(ledger, ["webhook:a:1"], frozenset({"store.recovered"}))
    outage = StoreOutage(ledger, outbox, 10, "u")
    outage.failed("x")
    clock[0] = 20
    outage.failed("x")
    outage.answered()
    assert rows(ledger, "notifications") == []


def test_the_readme_snippet_verifies_a_signed_request_and_refuses_forgeries_and_replays():
    verify = readme_verify()

    body = json.dumps(events.payload(promoted(), 1)).encode()
    timestamp = str(int(datetime.now(UTC).timestamp()))
    headers = Message()
    headers["x-autopilot-timestamp"] = timestamp  # as urllib sends them: any case
    headers["X-autopilot-signature"] = sign(b"s3cret", timestamp, body)
    assert verify("s3cret", headers, body)["id"] == promoted().id
    assert verify("s3cret", headers, body) is None  # the same id again: a duplicate
    with pytest.raises(ValueError, match="bad signature"):
        verify("other", headers, body)
    with pytest.raises(ValueError, match="bad signature"):
        verify("s3cret", headers, body.replace(b"promoted", b"rejected"))
    old = str(int(timestamp) - 3600)
    stale = Message()
    stale["X-Autopilot-Timestamp"] = old
    stale["X-Autopilot-Signature"] = sign(b"s3cret", old, body)
    with pytest.raises(ValueError, match="replay"):
        verify("s3cret", stale, body)


def test_notification_settings_are_checked_and_their_secrets_never_shown(tmp_path):
    slack = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
    secret_file = tmp_path / "secret"
    secret_file.write_text("whsec-from-a-file\n")
    settings = load_settings(
        {
            "AUTOPILOT_NOTIFY_WEBHOOK_URLS": f"{slack}, http://127.0.0.1:9/hook",
            "AUTOPILOT_NOTIFY_WEBHOOK_SECRET_FILE": str(secret_file),
            "AUTOPILOT_NOTIFY_EVENTS": "default,model.rejected",
        }
    )
    assert settings.webhook_secret() == "whsec-from-a-file"
    assert "model.rejected" in settings.notify_event_names
    shown = json.dumps(describe(settings, {}))
    assert "XXXXsecretXXXX" not in shown and "whsec" not in shown
    assert webhook_destination(slack) in shown
    assert webhook_destination(slack).startswith("webhook:hooks.slack.com:")

    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "AUTOPILOT_NOTIFY_WEBHOOK_URLS": f"{slack},ftp://files.example.com/x",
                "AUTOPILOT_NOTIFY_WEBHOOK_SECRET": "whsec-inline",
                "AUTOPILOT_NOTIFY_WEBHOOK_SECRET_FILE": str(tmp_path / "missing"),
                "AUTOPILOT_NOTIFY_EVENTS": "model.promotd",
                "AUTOPILOT_AUTOMATIONS__IRIS__DATASET_NAMES": "d",
                "AUTOPILOT_AUTOMATIONS__IRIS__MODEL_NAME": "m",
                "AUTOPILOT_AUTOMATIONS__IRIS__NOTIFY_EVENTS": "training.faild",
            }
        )
    text = str(caught.value)
    assert "AUTOPILOT_NOTIFY_WEBHOOK_URLS='<redacted>': URL 2 (ftp://files.example.com/...)" in text
    assert "AUTOPILOT_NOTIFY_WEBHOOK_SECRET_FILE=" in text and "not both" in text
    assert "AUTOPILOT_NOTIFY_EVENTS='model.promotd'" in text and "model.promoted?" in text
    assert "AUTOPILOT_AUTOMATIONS__IRIS__NOTIFY_EVENTS" in text and "training.failed?" in text
    assert "XXXXsecretXXXX" not in text and "whsec-inline" not in text

    with pytest.raises(ConfigError, match="URL 2 is URL 1 again"):  # it would be sent twice
        load_settings({"AUTOPILOT_NOTIFY_WEBHOOK_URLS": f"{slack},{slack}"})
    with pytest.raises(ConfigError, match=r"AUTOPILOT_NOTIFY_WEBHOOK_SECRET_FILE.*cannot read"):
        load_settings({"AUTOPILOT_NOTIFY_WEBHOOK_SECRET_FILE": str(tmp_path / "missing")})
    typo = r"AUTOPILOT_NOTIFY_EVENT: unknown setting \(did you mean AUTOPILOT_NOTIFY_EVENTS\?"
    with pytest.raises(ConfigError, match=typo):
        load_settings({"AUTOPILOT_NOTIFY_EVENTS": "all", "AUTOPILOT_NOTIFY_EVENT": "x"})


def test_an_automation_can_choose_its_own_events():
    settings = load_settings(
        {
            "AUTOPILOT_AUTOMATIONS__A__DATASET_NAMES": "d",
            "AUTOPILOT_AUTOMATIONS__A__MODEL_NAME": "m",
            "AUTOPILOT_AUTOMATIONS__A__NOTIFY_EVENTS": "default,model.rejected",
            "AUTOPILOT_AUTOMATIONS__B__DATASET_NAMES": "d",
            "AUTOPILOT_AUTOMATIONS__B__MODEL_NAME": "n",
        }
    )
    by_name = {a.name: a for a in settings.automations}
    assert by_name["a"].notify_events == DEFAULT_EVENTS | {"model.rejected"}
    assert by_name["b"].notify_events is None
