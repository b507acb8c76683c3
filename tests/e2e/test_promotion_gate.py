"""The human gate and the way back, as a team uses them: a daemon over REST against a real ZenML
server (the service account's key), in PROMOTION_MODE=approval with a deployment pipeline, and
the people's commands (`autopilot approve`, `reject`, `rollback`, ZenML's own CLI) as separate
processes while it runs. Killed (-9) at each new write, the daemon or a command, then run again:
nothing lost or doubled. Every count is taken from the store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service.core.approval import APPROVAL_KEY
from service.core.production_history import ROLLBACK_KEY, latest_record
from service.faults import CRASH_ENV
from service.ledger import Ledger
from tests.e2e.test_server_e2e import with_service_account_key
from tests.support import (
    PROJECT_ROOT,
    Receiver,
    files_holding,
    project_process_environment,
    serving,
    wait_for,
)

pytestmark = pytest.mark.e2e
MODEL = "iris_classifier"
BIN = Path(sys.executable).parent


def _runs(key: str) -> list:
    from zenml.client import Client

    return Client().list_pipeline_runs(tags=f"equals:{key}", size=50).items


def _completed(key: str) -> list:
    return [run for run in _runs(key) if run.status.value == "completed"]


def _production() -> list[str]:
    from zenml.client import Client

    return [str(v.id) for v in Client().list_model_versions(model=MODEL, stage="production").items]


def _version(id: str):
    from zenml.client import Client

    return Client().get_model_version(MODEL, UUID(id))


class Commands:
    """The operator's commands, each a process of its own, with the daemon's store settings
    (another machine would have only those: no ledger, no state dir)."""

    def __init__(self, environment: dict[str, str]) -> None:
        self.environment = environment

    def autopilot(self, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
        extra = {CRASH_ENV: crash_at} if crash_at else {}
        return self._run([str(BIN / "autopilot"), *args], extra)

    def zenml(self, *args: str, key: str) -> subprocess.CompletedProcess:
        # ZenML's own CLI, as a person on another machine runs it with the key (and without
        # caching it: the tests' own processes must not leave a credential on disk either).
        extra = {"ZENML_STORE_API_KEY": key, "DISABLE_CREDENTIALS_DISK_CACHING": "true"}
        return self._run([str(BIN / "zenml"), *args], extra)

    def _run(self, command: list[str], extra: dict[str, str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            command,
            env=project_process_environment(self.environment, extra),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )


def _served_in_order(daemon, version_id: str, stint: int = 1) -> None:
    """Its deployment then its inference, one completed run each, the inference started after
    the deployment ended (and the inference pipeline fails unless the server serves it)."""
    suffix = "" if stint == 1 else f"@{stint}"
    deploy, infer = f"deploy:{version_id}{suffix}", f"infer:{version_id}{suffix}"
    daemon.wait_event("inference.succeeded", key=infer)
    (deployed,) = _completed(deploy)
    (inferred,) = _completed(infer)
    assert deployed.end_time <= inferred.start_time, (deploy, infer)


def test_approve_reject_promote_in_zenml_and_roll_back_twice_from_other_processes(
    zenml_server, zenml_rest_store, daemon_factory, tmp_path
):
    receiver = Receiver().start()
    environment = {
        **with_service_account_key(zenml_server, zenml_rest_store, tmp_path),
        **serving(tmp_path / "serving"),
        "AUTOPILOT_PROMOTION_MODE": "approval",
        "AUTOPILOT_PROMOTION_MUST_BEAT_PRODUCTION": "false",  # every good candidate passes
        "AUTOPILOT_START_FROM": "beginning",  # the datasets published as it starts
        "AUTOPILOT_NOTIFY_WEBHOOK_URLS": receiver.url,
        "AUTOPILOT_NOTIFY_EVENTS": "default,model.approval_rejected",
    }
    key = Path(environment["AUTOPILOT_ZENML_API_KEY_FILE"]).read_text().strip()
    commands = Commands(environment)
    start = daemon_factory(environment)

    # Four datasets, published while the first daemon starts and approved (tagged) one at a
    # time: each candidate is judged alone. That daemon is killed right after it staged the
    # first candidate, before recording its decision.
    crashing = daemon_factory({**environment, CRASH_ENV: "after_staged"})("crashing.log")
    datasets = [launch_feature_engineering(random_state=51).training_id]
    approve_dataset(datasets[0])
    datasets += [launch_feature_engineering(random_state=52 + n).training_id for n in range(3)]
    assert crashing.process.wait(240) == -9, "never reached after_staged"
    daemon = start("daemon.log")
    first = daemon.wait_event("model.awaiting_approval")
    a = first["model_version_id"]
    a_number = _version(a).number
    assert _version(a).stage == "staging" and _production() == []
    assert crashing.find("model.awaiting_approval") == []  # decided and logged once, here

    # `approve` killed after recording the approval, before the stage change: the daemon
    # finds the approval recorded and carries it out; run again, the command says it is done.
    died = commands.autopilot(
        "approve", MODEL, str(a_number), "--by", "alice", "--note", "looks good",
        crash_at="after_approval_recorded",
    )  # fmt: skip
    assert died.returncode == -9, died.stderr
    approved = daemon.wait_event("model.approved", model_version_id=a)
    assert (approved["by"], approved["note"]) == ("alice", "looks good")
    _served_in_order(daemon, a)
    assert _production() == [a]

    # A rejected candidate is archived, with who and why on it.
    approve_dataset(datasets[1])
    c = _new(daemon, {a})
    rejected = commands.autopilot("reject", MODEL, c, "--by", "bob", "--note", "too slow")
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout)["outcome"] == "rejected"
    daemon.wait_event("model.approval_rejected", model_version_id=c)
    assert _version(c).stage == "archived"
    assert _version(c).run_metadata[APPROVAL_KEY]["by"] == "bob"

    # Promoted with ZenML's own CLI: an approval by someone the store does not name.
    approve_dataset(datasets[2])
    d = _new(daemon, {a, c})
    promoted = commands.zenml(
        "model", "version", "update", MODEL, str(_version(d).number),
        "--stage", "production", "--force", key=key,
    )  # fmt: skip
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    by_zenml = daemon.wait_event("model.approved", model_version_id=d)
    assert (by_zenml["by"], by_zenml["via"]) == (None, "zenml")
    _served_in_order(daemon, d)

    approve_dataset(datasets[3])
    e = _new(daemon, {a, c, d})
    assert commands.autopilot("approve", MODEL, e, "--by", "alice").returncode == 0
    _served_in_order(daemon, e)
    assert _production() == [e]

    # Roll back: first what it would do, then killed after recording the rollback on E, then
    # run again (without --by: it completes the recorded one), then once more: further back.
    dry = commands.autopilot("rollback", MODEL, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert (planned["outcome"], planned["from"]["id"], planned["to"]["id"]) == (
        "would_roll_back",
        e,
        d,
    )
    assert _production() == [e] and ROLLBACK_KEY not in _version(e).run_metadata
    died = commands.autopilot(
        "rollback", MODEL, "--by", "carol", "--reason", "bad predictions",
        crash_at="after_rollback_recorded",
    )  # fmt: skip
    assert died.returncode == -9, died.stderr
    assert _production() == [e]
    completed = commands.autopilot("rollback", MODEL)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["completes_an_earlier_rollback"] is True
    back = daemon.wait_event("model.rolled_back", model_version_id=d)
    assert (back["by"], back["reason"], back["rolled_back_from"]) == (
        "carol",
        "bad predictions",
        e,
    )
    _served_in_order(daemon, d, stint=2)
    assert _version(e).stage == "archived"

    further = commands.autopilot("rollback", MODEL, "--by", "carol")
    assert further.returncode == 0, further.stderr
    daemon.wait_event("model.rolled_back", model_version_id=a)
    _served_in_order(daemon, a, stint=2)
    nothing = commands.autopilot("rollback", MODEL)
    assert nothing.returncode == 2 and "--to VERSION" in nothing.stderr, nothing.stderr

    ledger = Ledger.reader(Path(environment["AUTOPILOT_STATE_DIR"]) / "ledger.sqlite")
    changes = ledger.production_changes("default")
    assert [(c.model_version_id, c.changed_by) for c in changes] == [
        (a, "rollback"),
        (d, "rollback"),
        (e, "approval"),
        (d, "approval"),
        (a, "approval"),
    ]
    wait_for(lambda: len(receiver.events()) >= 10, timeout=60, what="the notifications")
    assert daemon.stop() == 0
    receiver.stop()

    # Each production change served once, in its stint; nothing served for C; the history.
    served = [a, d, e, f"{d}@2", f"{a}@2"]
    for kind in ("deploy", "infer"):
        for version in served:
            assert len(_runs(f"{kind}:{version}")) == 1, f"{kind}:{version}"
        assert _runs(f"{kind}:{c}") == []
    record = latest_record(_version(a).run_metadata)
    assert (record.seq, record.stint, record.changed_by, record.rolled_back_from) == (
        5,
        2,
        "rollback",
        d,
    )
    assert _version(d).run_metadata[ROLLBACK_KEY]["2"]["to"] == a
    # The notifications: each event once, in the order the daemon recorded them.
    received = [(n["event"], n["model_version"]["id"]) for n in receiver.events()]
    assert received == [
        ("model.awaiting_approval", a),
        ("model.approved", a),
        ("model.awaiting_approval", c),
        ("model.approval_rejected", c),
        ("model.awaiting_approval", d),
        ("model.approved", d),
        ("model.awaiting_approval", e),
        ("model.approved", e),
        ("model.rolled_back", d),
        ("model.rolled_back", a),
    ]
    assert len({r.json["id"] for r in receiver.received("any")}) == len(received)
    # No process of the test's commands left the key on disk.
    skip = (tmp_path / "secrets", zenml_server.root)
    assert files_holding(tmp_path, {"the API key": key}, skip=skip) == []


def approve_dataset(id: UUID) -> None:
    from zenml import add_tags

    add_tags(tags=["approved"], artifact_version_id=id)


def _new(daemon, known: set[str]) -> str:
    """The id of the first version awaiting approval that is not one of `known`."""

    def found() -> str | None:
        ids = [e["model_version_id"] for e in daemon.find("model.awaiting_approval")]
        fresh = [id for id in ids if id not in known]
        return fresh[0] if fresh else None

    return wait_for(found, timeout=240, what="a new version awaiting approval")
