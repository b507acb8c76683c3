"""Notification settings as a user meets them (`autopilot run` and `check-config` as processes),
and a store unreachable from the daemon's first second: the ledger is local, so the outage is
recorded and sent while the store is away."""

from __future__ import annotations

import json

from service.notify.outbox import webhook_destination
from tests.integration.test_cli import autopilot
from tests.support import Receiver, daemon_settings, readme_verify

SLACK = "https://hooks.slack.com/services/T0000/B0000/sLaCkToKeN1234"
SECRET = "whsec-cli-test-5c0d1e"


def test_bad_notification_settings_exit_2_naming_each_variable(tmp_path):
    result = autopilot(
        "run",
        env={
            "AUTOPILOT_NOTIFY_WEBHOOK_URLS": f"{SLACK},hooks.example.com/x",
            "AUTOPILOT_NOTIFY_EVENTS": "default,model.rejectd",
            "AUTOPILOT_NOTIFY_WEBHOOK_SECRET_FILE": str(tmp_path / "no-such-file"),
        },
    )
    assert result.returncode == 2
    assert "AUTOPILOT_NOTIFY_WEBHOOK_URLS='<redacted>': URL 2 (no scheme)" in result.stderr
    assert "did you mean model.rejected?" in result.stderr
    assert "AUTOPILOT_NOTIFY_WEBHOOK_SECRET_FILE=" in result.stderr
    assert "cannot read the secret file" in result.stderr
    assert "sLaCkToKeN1234" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_shows_destinations_by_name_and_the_secret_redacted():
    result = autopilot(
        "check-config",
        env={"AUTOPILOT_NOTIFY_WEBHOOK_URLS": SLACK, "AUTOPILOT_NOTIFY_WEBHOOK_SECRET": SECRET},
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["AUTOPILOT_NOTIFY_WEBHOOK_URLS"] == [webhook_destination(SLACK)]
    assert shown["AUTOPILOT_NOTIFY_WEBHOOK_SECRET"] == "<redacted>"
    assert "model.promoted" in shown["notify_events_resolved"]
    assert SECRET not in result.stdout + result.stderr
    assert "sLaCkToKeN1234" not in result.stdout + result.stderr


def test_a_store_unreachable_from_start_up_is_notified_while_it_is_away(daemon_factory, tmp_path):
    """Nothing listens on port 1: the daemon waits for the store and, after the outage
    setting, tells the receiver so, signed, naming the store without its password; neither
    the secret nor the password is in any log line."""
    receiver = Receiver().start()
    daemon = daemon_factory(
        {
            "ZENML_STORE_URL": "mysql://autopilot:s3cr3t-db-pw@127.0.0.1:1/zenml",
            "ZENML_CONFIG_PATH": str(tmp_path / "zenml"),
            **daemon_settings(tmp_path),
            "AUTOPILOT_NOTIFY_WEBHOOK_URLS": receiver.url,
            "AUTOPILOT_NOTIFY_WEBHOOK_SECRET": SECRET,
            "AUTOPILOT_NOTIFY_OUTAGE_AFTER_SECONDS": "2",
        }
    )("daemon.log")
    try:
        delivered = daemon.wait_event("notify.delivered", timeout=120)
        assert daemon.find("store.unavailable")  # still waiting for the store
        assert daemon.stop() == 0
    finally:
        receiver.stop()
    (request,) = receiver.received()
    event = readme_verify()(SECRET, request.headers, request.body)
    assert event["event"] == "store.unreachable" == delivered["notification"]
    assert event["automation"] is None and event["model"] is None
    assert event["values"]["store_url"] == "mysql://autopilot:***@127.0.0.1:1/zenml"
    assert event["values"]["down_seconds"] >= 2
    assert event["text"].startswith("the ZenML store mysql://autopilot:***@127.0.0.1:1/zenml")
    assert "s3cr3t-db-pw" not in request.body.decode()
    logged = daemon.log_path.read_text() + daemon.stderr()
    assert SECRET not in logged and "s3cr3t-db-pw" not in logged
