"""Notifications from a real daemon (`autopilot run` as its own process, a real embedded store,
real runs), to real HTTP receivers on 127.0.0.1 and to a test alerter flavor in the stack.

One daemon run shows: the chain produces exactly the configured events, each once, with their
ids and fields, signed (checked with the README's own snippet), in order per model; a receiver
down for 30 s (connection refused) gets everything after it comes back and answers 500 twice,
duplicates only with the same event id; a 400 is not retried; a receiver that hangs holds up
no other; the ticks went on at their pace throughout (counted from the tick events); a kill -9
with notifications undelivered, then a restart: they are delivered; the stack's alerter got
each text through `post()`; the secret is in no log line and not in the ledger, even when a
receiver's answer quotes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from uuid import UUID

import pandas as pd
import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service.notify.outbox import webhook_destination
from tests.support import (
    PROJECT_ROOT,
    QUIET_ZENML,
    Receiver,
    daemon_settings,
    http_get_text,
    iris_automation,
    readme_verify,
    wait_for,
)

pytestmark = pytest.mark.e2e
MODEL = "iris_classifier"
SECRET = f"whsec-e2e-{os.urandom(8).hex()}"
OUTAGE_SECONDS = 30


def _at(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"]).timestamp()


def _first_of_each(events: list[dict]) -> list[dict]:
    """Deliveries in arrival order, each id once (a retry repeats an id)."""
    seen, firsts = set(), []
    for event in events:
        if event["id"] not in seen:
            seen.add(event["id"])
            firsts.append(event)
    return firsts


def test_a_chain_notifies_exactly_its_events_through_outages_hangs_and_a_kill(
    zenml_store, daemon_factory, tmp_path
):
    from zenml import save_artifact
    from zenml.client import Client

    from tests.recording_alerter.flavor import posts, register_alerter

    client = Client()
    alerts = register_alerter(zenml_store.client, tmp_path / "alerter")
    down = Receiver(answers=[500, 500])  # not listening yet: refused
    good = Receiver().start()
    refusing = Receiver(default=400, body=f"no signing key {SECRET} here".encode()).start()
    hanging = Receiver(hang=True).start()
    receivers = (down, good, refusing, hanging)
    environment = {
        "ZENML_CONFIG_PATH": str(zenml_store.config_path),
        **daemon_settings(tmp_path),
        **iris_automation(),
        "AUTOPILOT_AUTOMATIONS__IRIS__NOTIFY_EVENTS": "default,model.rejected",
        "AUTOPILOT_MAX_ATTEMPTS": "1",
        "AUTOPILOT_NOTIFY_WEBHOOK_URLS": ",".join(r.url for r in receivers),
        "AUTOPILOT_NOTIFY_WEBHOOK_SECRET": SECRET,
        "AUTOPILOT_NOTIFY_ALERTER": "true",
        "AUTOPILOT_STACK": "alerting",  # the stack with the alerter: its runs go there too
        "AUTOPILOT_NOTIFY_TIMEOUT_SECONDS": "3600",  # the hanging receiver hangs for good
        "AUTOPILOT_NOTIFY_RETRY_BACKOFF_SECONDS": "1",
        "AUTOPILOT_NOTIFY_RETRY_MAX_BACKOFF_SECONDS": "2",
        "PYTHONPATH": str(PROJECT_ROOT),  # the alerter's flavor imports in the daemon
    }
    start = daemon_factory(environment)
    try:
        first = start("daemon.log")
        first.wait_event("daemon.started", timeout=120)

        # The chain: promoted, rejected, a training that fails for good (its model version
        # is then rejected as training_run_failed), production changed by a person.
        good_data = launch_feature_engineering(training_tags=["approved"], random_state=11)
        promoted = first.wait_event("model.promoted", dataset_version_id=str(good_data.training_id))
        poor_data = launch_feature_engineering(
            training_tags=["approved"], label_noise=0.7, random_state=13
        )
        rejected = first.wait_event("model.rejected", dataset_version_id=str(poor_data.training_id))
        frame = pd.DataFrame({"sepal length (cm)": [1.0, 2.0, 3.0], "label": [0, 1, 0]})
        bad = save_artifact(frame, name="iris_training_dataset", tags=["approved"])
        failed = first.wait_event("training.failed", key=f"train:iris:{bad.id}")
        failed_version = first.wait_event("model.rejected", reason="training_run_failed")
        poor_mv = rejected["model_version_id"]
        client.update_model_version(MODEL, UUID(poor_mv), stage="production", force=True)
        first.wait_event("inference.succeeded", key=f"infer:{poor_mv}")

        expected = [
            ("model.promoted", promoted["model_version_id"]),
            ("model.rejected", poor_mv),
            ("training.failed", None),
            ("model.rejected", failed_version["model_version_id"]),
            ("model.production_changed", poor_mv),
        ]
        wait_for(lambda: len(good.received()) == len(expected), timeout=60, what="all five")
        wait_for(lambda: len(refusing.received("any")) == len(expected), timeout=60)
        wait_for(lambda: len(posts(alerts)) == len(expected), timeout=60, what="the alerter")

        # The receiver that was down has had none; it stays down 30 s, then the daemon dies.
        refused = first.wait_event("notify.failed", destination=webhook_destination(down.url))
        wait_for(
            lambda: (
                first.events()[-1]["timestamp"] > refused["timestamp"]
                and _at(first.events()[-1]) - _at(refused) > OUTAGE_SECONDS
            ),
            timeout=OUTAGE_SECONDS + 30,
            what="30 s of refused connections",
        )
        assert down.received("any") == []
        first.kill()
        ticks = [e for e in first.find("tick.completed") if _at(e) > _at(refused)]
        assert len(hanging.received(None)) == 1  # its first request, held open all along

        second = start("daemon-restarted.log")
        second.wait_event("daemon.started", timeout=120)
        down.start()  # answers 500 twice, then 200
        wait_for(lambda: len(down.received()) == len(expected), timeout=90, what="after restart")
        port = environment["AUTOPILOT_HTTP_PORT"]
        metrics = http_get_text(f"http://127.0.0.1:{port}/metrics")
        assert second.stop() == 0  # at once, though a sender thread hangs on a receiver
    finally:
        for receiver in receivers:
            receiver.stop()

    # The ticks never waited on a receiver: while the hanging receiver held its request and
    # the other one refused every connection (30 s), the loop ticked on at its 0.5 s pace.
    assert len(ticks) >= OUTAGE_SECONDS / 0.5 / 4, len(ticks)

    # Exactly the configured events, each once, in order, with their fields; signed.
    verify = readme_verify()
    delivered = good.received()
    assert all(verify(SECRET, r.headers, r.body) is not None for r in delivered)
    bodies = [r.json for r in delivered]
    assert len({b["id"] for b in bodies}) == len(expected)  # each once: no duplicate at all
    got = [(b["event"], b["model_version"] and b["model_version"]["id"]) for b in bodies]
    assert sorted(got, key=str) == sorted(expected, key=str)
    # In the order recorded (a failed run's training.failed and its version's rejection are
    # recorded in whichever order the daemon saw them; the rest follow from one another).
    assert [b["sequence"] for b in bodies] == sorted(b["sequence"] for b in bodies)
    assert got[0] == expected[0] and got[1] == expected[1] and got[-1] == expected[-1]
    by_event = {b["event"]: b for b in bodies}
    first_promotion = by_event["model.promoted"]
    assert first_promotion["automation"] == "iris"
    assert first_promotion["model"] == {"name": MODEL}
    assert first_promotion["model_version"]["number"] == int(promoted["model_version"][-1])
    assert first_promotion["dataset_version_id"] == str(good_data.training_id)
    assert first_promotion["runs"] == {"training": promoted["training_run_id"]}
    assert first_promotion["reason"] == promoted["reason"]
    assert first_promotion["values"]["value"] == promoted["value"]
    assert first_promotion["links"] == {}  # an embedded store has no dashboard
    training_failed = by_event["training.failed"]
    assert training_failed["dataset_version_id"] == str(bad.id)
    assert training_failed["runs"] == {"training": failed["run_id"]}
    assert training_failed["reason"] == "attempts_exhausted"
    assert (
        training_failed["values"]["attempts"] == 1
        and "target" in training_failed["values"]["error"]
    )
    changed = by_event["model.production_changed"]
    assert changed["values"] == {
        "previous_model_version_id": promoted["model_version_id"],
        "previous_model_version_number": first_promotion["model_version"]["number"],
        "changed_by": "external",
    }
    assert changed["text"] == (
        f"{MODEL} version {changed['model_version']['number']} was put in production outside "
        f"the autopilot (was version {first_promotion['model_version']['number']}); its "
        "inference follows [automation iris]"
    )
    assert [r.headers["X-Autopilot-Event-Id"] for r in delivered] == [b["id"] for b in bodies]

    # The one that was down: 500 twice (the oldest, twice), then everything, in order.
    answers = down.received("any")
    assert [r.status for r in answers[:3]] == [500, 500, 200]
    assert {r.json["id"] for r in answers[:3]} == {bodies[0]["id"]}
    assert [b["id"] for b in _first_of_each(down.events())] == [b["id"] for b in bodies]
    verify = readme_verify()  # another receiver: it has seen none of these ids
    assert all(verify(SECRET, r.headers, r.body) is not None for r in down.received())

    # A 400 is not retried, by either process; logged once each, at error level.
    assert [r.json["id"] for r in refusing.received("any")] == [b["id"] for b in bodies]
    not_retried = [
        e
        for daemon in (first, second)
        for e in daemon.find("notify.failed", destination=webhook_destination(refusing.url))
    ]
    assert [(e["status"], e["will_retry"], e["level"]) for e in not_retried] == [
        (400, False, "error")
    ] * len(expected)
    assert "no signing key <redacted> here" in not_retried[0]["error"]

    # The stack's alerter: each text once, through post().
    assert sorted(posts(alerts)) == sorted(b["text"] for b in bodies)

    # What is still undelivered is in `status` and /metrics, per destination.
    status = json.loads(
        subprocess.run(
            [str(Path(sys.executable).parent / "autopilot"), "status", "--offline"],
            env={**os.environ, **QUIET_ZENML, **environment},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["notifications"]
    assert status[webhook_destination(hanging.url)]["undelivered"] == len(expected)
    assert status[webhook_destination(good.url)]["delivered"] == len(expected)
    assert status[webhook_destination(refusing.url)]["failed"] == len(expected)
    assert status["alerter"]["delivered"] == len(expected)
    hanging_name = webhook_destination(hanging.url)
    depth = f'autopilot_notification_outbox_depth{{destination="{hanging_name}"}}'
    assert f"{depth} {len(expected)}.0" in metrics

    # The secret: in no log line, no error output, not in the ledger.
    logs = "".join(d.log_path.read_text() + d.stderr() for d in (first, second))
    assert SECRET not in logs
    state = Path(environment["AUTOPILOT_STATE_DIR"])
    for path in state.glob("ledger.sqlite*"):
        assert SECRET.encode() not in path.read_bytes(), path
