"""The status page's read model and rendering, on a real ledger file (no store needed: the page
reads only the ledger and the daemon's health snapshot)."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import urllib.request
from dataclasses import replace

import pytest

from service.core.actions import ActionKind, ActionState
from service.http import HealthServer
from service.ledger import Ledger, epoch
from service.observe import board as board_module
from service.observe import page
from service.observe.board import StatusBoard
from service.redact import register_secret
from service.settings import load_settings
from tests.ledger_history import write_history
from tests.support import http_get


class Health:
    """The daemon's health snapshot, as `Daemon.health()` / `readiness()` give it."""

    def __init__(self, store_error: str | None = None) -> None:
        self.store_error = store_error

    def health(self) -> tuple[bool, dict[str, object]]:
        return True, {
            "seconds_since_loop_activity": 0.4,
            "seconds_since_last_successful_poll": 95.0 if self.store_error else 0.4,
            "consecutive_failures": 4 if self.store_error else 0,
        }

    def readiness(self) -> tuple[bool, dict[str, object]]:
        return self.store_error is None, {"store_error": self.store_error}


@pytest.fixture
def settings(tmp_path):
    return load_settings({"AUTOPILOT_STATE_DIR": str(tmp_path / "state")})


@pytest.fixture
def ledger(settings):
    opened = Ledger(settings.ledger_path)
    yield opened
    opened.close()


def board_for(settings, health: Health | None = None) -> StatusBoard:
    return StatusBoard(settings.automations, settings.ledger_path, health or Health())


def points(html: str) -> list[dict[str, str]]:
    return [
        dict(re.findall(r'([\w-]+)="([^"]*)"', circle))
        for circle in re.findall(r'<circle class="point"[^>]*>', html)
    ]


def test_production_candidates_and_chains_come_from_the_ledger(settings, ledger):
    ids = write_history(ledger, [0.95, 0.62, 0.97, 0.93])
    status = board_for(settings).status()
    (automation,) = status["automations"]

    production = automation["production"]
    assert (production["model_version_id"], production["number"]) == (ids[2], 3)
    assert production["changed_by"] == "autopilot" and production["recorded"]
    assert (production["previous_model_version_id"], production["previous_number"]) == (ids[0], 1)
    assert production["value"] == 0.97

    candidates = automation["candidates"]  # oldest first, the chart's order
    assert [(c["number"], c["outcome"], c["reason"]) for c in candidates] == [
        (1, "promoted", "clears_threshold"),
        (2, "rejected", "below_threshold"),
        (3, "promoted", "clears_threshold_and_beats_production"),
        (4, "rejected", "not_better_than_production"),
    ]
    assert [c["is_production"] for c in candidates] == [False, False, True, False]

    newest, promoted, _, _ = automation["chains"]  # newest first
    assert newest["model_version"]["number"] == 4 and newest["decision"]["outcome"] == "rejected"
    assert newest["inference"] is None and newest["duration_seconds"] is not None
    assert promoted["training"]["run_id"] == "run-00000003"
    assert promoted["training"]["duration_seconds"] == 4.2
    assert promoted["inference"]["state"] == "succeeded"
    assert promoted["dataset"] == {
        "id": "ds-default-3",
        "name": "iris_training_dataset",
        "version": "3",
    }
    assert [c["number"] for c in automation["production_changes"]] == [3, 1]

    html = page.render(status)
    assert f'class="card production" data-model-version-id="{ids[2]}"' in html
    drawn = points(html)
    assert [(p["data-version"], p["data-outcome"]) for p in drawn] == [
        ("1", "promoted"),
        ("2", "rejected"),
        ("3", "promoted"),
        ("4", "rejected"),
    ]
    heights = {p["data-version"]: float(p["cy"]) for p in drawn}
    assert heights["3"] < heights["1"] < heights["2"]  # a higher value is drawn higher
    assert html.count('class="production-ring" data-version="3"') == 1
    assert 'class="threshold" data-threshold="0.9"' in html


def test_errors_are_escaped_and_hold_no_secret(settings, ledger):
    register_secret("s3cr3t-token-value")
    ledger.claim("train:default:ds-9", ActionKind.TRAIN, "ds-9", {}, "default")
    ledger.transition("train:default:ds-9", ActionState.RUNNING, attempts=3)
    ledger.transition(
        "train:default:ds-9",
        ActionState.FAILED,
        error="ValueError: <script>alert(1)</script> from mysql://zenml:hunter2@db/zenml "
        "with s3cr3t-token-value",
    )
    board = board_for(settings, Health(store_error="ConnectionError: https://u:pw99@zenml/x"))
    html = board.page()
    body = json.dumps(board.status())
    for text in (html, body):
        assert "hunter2" not in text and "s3cr3t-token-value" not in text and "pw99" not in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "mysql://zenml:***@db/zenml" in html


def test_before_the_ledger_exists_and_with_an_empty_one(settings):
    board = board_for(settings)
    starting = board.status()
    assert "production" not in starting["automations"][0]  # configuration only
    assert "nothing recorded yet" in page.render(starting)

    Ledger(settings.ledger_path).close()
    empty = board_for(settings).status()
    (automation,) = empty["automations"]
    assert automation["production"] is None and automation["candidates"] == []
    assert automation["chains"] == [] and automation["queue"] == {
        "pending": 0,
        "running": 0,
        "retry_wait": 0,
    }
    html = page.render(empty)
    assert "No model version judged yet." in html and points(html) == []


def test_a_store_outage_is_shown_with_its_error(settings, ledger):
    write_history(ledger, [0.95])
    status = board_for(settings, Health(store_error="ConnectionRefusedError: refused")).status()
    assert status["daemon"]["store_reachable"] is False
    html = page.render(status)
    assert 'id="store-outage"' in html and "ConnectionRefusedError: refused" in html
    assert 'data-store-reachable="false"' in html
    assert status["automations"][0]["production"]["number"] == 1  # the ledger still shows


def test_a_thousand_judged_versions_make_a_page_no_bigger_than_thirty(settings, tmp_path):
    """Every list is bounded: the page and its JSON do not grow with the ledger."""
    sizes = {}
    for count in (30, 1000):
        path = tmp_path / f"ledger-{count}.sqlite"
        ledger = Ledger(path)
        write_history(ledger, [0.9 + (i % 97) / 1000 for i in range(count)])
        ledger.close()
        board = StatusBoard(settings.automations, path, Health())
        status = board.status()
        (automation,) = status["automations"]
        assert len(automation["candidates"]) == 20 and len(automation["chains"]) == 10
        html = board.page()
        assert len(points(html)) == 20
        assert html.count('<tr class="chain"') == 10
        sizes[count] = (len(html), len(json.dumps(status)))
    for small, large in zip(sizes[30], sizes[1000], strict=True):
        assert large < small * 1.05, sizes
    assert sizes[1000][0] < 64_000


def test_a_ledger_from_before_production_changes_knows_which_but_not_since(settings, tmp_path):
    path = settings.ledger_path
    path.parent.mkdir(parents=True)
    ledger = Ledger(path)
    ledger.set_cursor("default/production:iris_classifier", "mv-7")
    ledger.claim("infer:mv-7", ActionKind.INFER, "mv-7", {"model_version_number": 7}, "default")
    ledger.close()
    with sqlite3.connect(path) as db:  # as a schema 2 daemon left it
        db.execute("DELETE FROM production_changes")
    production = board_for(settings).status()["automations"][0]["production"]
    assert production["model_version_id"] == "mv-7" and production["number"] == 7
    assert production["recorded"] is False and production["since"] is None
    html = board_for(settings).page()
    assert "since before this daemon recorded production changes" in html


def test_awaiting_approval_and_the_notification_outbox_show_when_present(settings, ledger):
    """The versions waiting for a person come from the ledger's `approvals`, with how long
    they waited and when they expire; once a wait ended (approved here) the version is no
    longer listed, though its decision stays `awaiting_approval`: the candidate says how."""
    write_history(ledger, [0.95])
    decision = {"outcome": "awaiting_approval", "reason": "clears_threshold", "value": 0.97}
    ledger.claim(
        "promote:mv-9",
        ActionKind.PROMOTE,
        "mv-9",
        {"model_version_number": 9, "decision": decision},
        "default",
    )
    staged = epoch() - 600
    ledger.stage_for_approval(
        "default", "mv-9", "iris_classifier", 9, staged, {"metric": "accuracy", "value": 0.97}
    )
    timed = settings.model_copy(
        update={
            "automations": tuple(
                replace(a, approval_timeout_seconds=3600.0) for a in settings.automations
            )
        }
    )
    status = board_for(timed).status()
    (waiting,) = status["automations"][0]["awaiting_approval"]
    assert (waiting["model_version_id"], waiting["number"]) == ("mv-9", 9)
    assert 600 <= waiting["waited_seconds"] < 660
    assert 2940 < waiting["expires_in_seconds"] <= 3000
    assert waiting["approve"] == "autopilot approve iris_classifier 9"
    status["notifications"] = {
        "destinations": [
            {"destination": "https://hooks.example/x", "undelivered": 3, "oldest": None}
        ]
    }
    html = page.render(status)
    assert "<h3>Awaiting approval</h3>" in html and 'data-model-version-id="mv-9"' in html
    assert "autopilot approve iris_classifier 9" in html
    assert 'id="notifications"' in html and "https://hooks.example/x" in html
    assert 'id="notifications"' not in board_for(settings).page()  # no outbox: no section

    ledger.resolve_approval("default", "mv-9", "approved", "alice")
    status = board_for(timed).status()
    (automation,) = status["automations"]
    assert automation["awaiting_approval"] == []
    candidate = next(c for c in automation["candidates"] if c["model_version_id"] == "mv-9")
    assert candidate["outcome"] == "awaiting_approval"
    assert candidate["approval"]["state"] == "approved" and candidate["approval"]["by"] == "alice"


def test_open_actions_and_automations_no_longer_configured(settings, ledger):
    ledger.claim("train:default:ds-1", ActionKind.TRAIN, "ds-1", {}, "default")
    ledger.claim("train:old:ds-2", ActionKind.TRAIN, "ds-2", {}, "old")
    ledger.transition("train:default:ds-1", ActionState.RUNNING, attempts=1)
    ledger.transition("train:default:ds-1", ActionState.RETRY_WAIT, not_before=1e12, error="boom")
    status = board_for(settings).status()
    (automation,) = status["automations"]
    assert automation["queue"] == {"pending": 0, "running": 0, "retry_wait": 1}
    (waiting,) = automation["open_actions"]
    assert waiting["error"] == "boom" and waiting["retry_in_seconds"] > 0
    assert status["unconfigured"] == {"old": {"pending": 1}}
    assert 'id="unconfigured"' in page.render(status)


def test_the_page_is_built_while_the_tick_holds_a_write_transaction(settings, ledger):
    """Its own read-only connection: no wait for the writer's lock or its transaction."""
    write_history(ledger, [0.95, 0.97])
    built: list[dict[str, object]] = []
    with ledger.transaction():
        ledger.claim("train:default:ds-x", ActionKind.TRAIN, "ds-x", {}, "default")
        reader = threading.Thread(target=lambda: built.append(board_for(settings).status()))
        reader.start()
        reader.join(30)  # a guard against a hang, not a speed claim
        assert not reader.is_alive(), "the page waited for the tick's transaction"
    (status,) = built
    automation = status["automations"][0]  # a snapshot before the uncommitted claim
    assert automation["queue"]["pending"] == 0 and automation["production"]["number"] == 2


def test_the_ledger_gauges_count_the_queue_and_the_last_successes(settings, ledger):
    write_history(ledger, [0.95])
    ledger.claim("train:default:ds-5", ActionKind.TRAIN, "ds-5", {}, "default")
    text = board_for(settings).metrics().decode()
    assert 'autopilot_queue_depth{automation="default",kind="train",state="pending"} 1.0' in text
    assert 'autopilot_queue_depth{automation="default",kind="infer",state="running"} 0.0' in text
    for kind in ("train", "promote", "infer"):
        assert (
            f'autopilot_last_success_timestamp_seconds{{automation="default",kind="{kind}"}}'
            in text
        )


def test_the_server_serves_the_page_its_json_and_the_gauges(settings, ledger):
    write_history(ledger, [0.95])
    board = board_for(settings)
    server = HealthServer(Health(), "127.0.0.1", 0, board).start()
    host, port = server.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/") as response:
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            assert '<meta http-equiv="refresh"' in response.read().decode()
        status, body = http_get(f"http://{host}:{port}/api/status")
        assert status == 200 and body["schema"] == 1
        assert body["automations"][0]["production"]["number"] == 1
        with urllib.request.urlopen(f"http://{host}:{port}/metrics") as response:
            text = response.read().decode()
        assert "autopilot_queue_depth" in text and "autopilot_poll_duration_seconds" in text
        assert http_get(f"http://{host}:{port}/nope")[1]["paths"] == [
            "/healthz",
            "/readyz",
            "/metrics",
            "/",
            "/api/status",
        ]
    finally:
        server.stop()


def test_the_page_is_built_at_most_once_a_second_however_many_read_it(
    settings, ledger, monkeypatch
):
    write_history(ledger, [0.95])
    board = board_for(settings)
    builds = []
    build = board._build
    monkeypatch.setattr(board, "_build", lambda: builds.append(1) or build())
    now = [1000.0]
    monkeypatch.setattr(board_module.time, "monotonic", lambda: now[0])
    pages = {board.page() for _ in range(5)}
    assert len(pages) == 1 and board.status()["automations"][0]["production"]["number"] == 1
    assert len(builds) == 1
    write_history(ledger, [0.97], first_number=2)
    now[0] += 0.9
    assert board.status()["automations"][0]["production"]["number"] == 1  # the same second
    now[0] += 0.2
    assert board.status()["automations"][0]["production"]["number"] == 2
    assert len(builds) == 2


def test_a_chain_ends_with_its_inference_whoever_put_the_version_in_production(settings, ledger):
    (version,) = write_history(ledger, [0.62])  # rejected, then promoted by a person
    ledger.claim(f"infer:{version}", ActionKind.INFER, version, {}, "default")
    ledger.transition(f"infer:{version}", ActionState.RUNNING, attempts=1)
    (chain,) = board_for(settings).status()["automations"][0]["chains"]
    assert chain["decision"]["outcome"] == "rejected"
    assert chain["inference"]["state"] == "running" and chain["duration_seconds"] is None
    ledger.transition(f"infer:{version}", ActionState.SUCCEEDED, run_id="r")
    (chain,) = board_for(settings).status()["automations"][0]["chains"]
    assert chain["duration_seconds"] is not None and chain["ended_at"] is not None


def test_metrics_go_on_when_the_ledger_cannot_answer(settings, ledger):
    """A ledger the gauges cannot read (here its indexes gone) costs them their samples, not
    the scrape: the daemon's own metrics are still served; the page says it failed."""
    write_history(ledger, [0.95])
    with sqlite3.connect(settings.ledger_path) as db:
        db.executescript("DROP INDEX actions_last_change; DROP INDEX actions_by_automation;")
    board = board_for(settings)
    server = HealthServer(Health(), "127.0.0.1", 0, board).start()
    host, port = server.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics") as response:
            text = response.read().decode()
        assert "# TYPE autopilot_queue_depth gauge" in text
        assert "autopilot_queue_depth{" not in text and "autopilot_store_up" in text
        assert http_get(f"http://{host}:{port}/api/status")[0] == 500  # said, not hidden
    finally:
        server.stop()


def test_a_candidate_waiting_for_its_evaluations_is_not_decided_yet(settings, ledger):
    """Champion against challenger: a promotion in phase `evaluating` has no decision yet; its
    chain goes on, and a decision set aside when production changed is none either."""
    (champion,) = write_history(ledger, [0.95])
    ledger.claim("train:ds-2", ActionKind.TRAIN, "ds-2", {"artifact": "iris"}, "default")
    ledger.transition("train:ds-2", ActionState.RUNNING, attempts=1, started_at=0.0)
    ledger.transition("train:ds-2", ActionState.SUCCEEDED, run_id="run-2")
    ids = {"model_version_number": 2, "dataset_version_id": "ds-2", "training_run_id": "run-2"}
    evaluating = {"phase": "evaluating", "evaluation": {"dataset_version_id": "h-1"}}
    ledger.claim("promote:mv-2", ActionKind.PROMOTE, "mv-2", {**ids, **evaluating}, "default")
    for decision in ({}, {"decision": None}):  # never decided; decided, then set aside
        ledger.update_details("promote:mv-2", decision)
        status = board_for(settings).status()
        (automation,) = status["automations"]
        waiting, _ = automation["chains"]  # newest first
        assert waiting["model_version"]["number"] == 2
        assert waiting["decision"] is None and waiting["ended_at"] is None
        assert automation["production"]["model_version_id"] == champion
        assert "mv-2" in page.render(status)


def test_scoring_inferences_name_the_version_they_score_beside_the_chains(tmp_path):
    """An automation with scoring datasets: its page says what it scores; an inference on a
    scoring version (`infer:<mv>@score:<id>`) is listed with that version, open or failed, and
    a chain still ends with its production change's own inference (`infer:<mv>`)."""
    settings = load_settings(
        {
            "AUTOPILOT_STATE_DIR": str(tmp_path / "state"),
            "AUTOPILOT_SCORING_DATASET_NAMES": "iris_scoring_dataset",
        }
    )
    ledger = Ledger(settings.ledger_path)
    (version,) = write_history(ledger, [0.95])  # promoted, its inference claimed
    for scored in ("sd-1", "sd-2"):
        key = f"infer:{version}@score:{scored}"
        details = {"model_version_id": version, "scoring_dataset_version_id": scored}
        ledger.claim(key, ActionKind.INFER, version, details, "default")
    ledger.transition(f"infer:{version}@score:sd-2", ActionState.FAILED, error="no rows")
    status = board_for(settings).status()
    ledger.close()
    (automation,) = status["automations"]
    assert automation["scoring_datasets"] == ["iris_scoring_dataset"]
    (open_action,) = automation["open_actions"]
    assert (open_action["key"], open_action["kind"]) == (f"infer:{version}@score:sd-1", "infer")
    assert open_action["scoring_dataset_version_id"] == "sd-1"
    (failed,) = automation["failed_actions"]
    assert (failed["scoring_dataset_version_id"], failed["error"]) == ("sd-2", "no rows")
    (chain,) = automation["chains"]
    assert chain["inference"]["key"] == f"infer:{version}"
    assert chain["inference"]["scoring_dataset_version_id"] is None  # this ledger's claim
    html = page.render(status)
    assert "scores <code>iris_scoring_dataset</code>" in html
    assert f'data-key="infer:{version}@score:sd-2"' in html


def test_a_chain_shows_its_evaluations_its_deployment_and_a_later_stints_inference(
    settings, ledger
):
    """Keys qualified by `@`: a chain's evaluations (`evaluate:<id>@<evaluation dataset>`, as
    its promotion records them), the deployment its inference ran after, and a version first
    served in a later stint (`infer:<id>@2`); an inference schedule's fire
    (`infer:<id>@fire:<time>`) is none of its stints."""
    (version,) = write_history(ledger, [0.5])  # rejected; a person puts it in production later
    evaluation = {
        "dataset_version_id": "h-1",
        "candidate": {"model_version_id": version, "number": 1, "key": f"evaluate:{version}@h-1"},
        "production": None,
    }
    ledger.update_details(f"promote:{version}", {"evaluation": evaluation})
    ledger.claim(f"evaluate:{version}@h-1", ActionKind.EVALUATE, version, {}, "default")
    ledger.transition(f"evaluate:{version}@h-1", ActionState.RUNNING, attempts=1)
    ledger.transition(f"evaluate:{version}@h-1", ActionState.SUCCEEDED, run_id="run-e")
    fire = f"infer:{version}@fire:2026-12-07T06:00:00Z"
    ledger.claim(fire, ActionKind.INFER, version, {}, "default")
    ledger.transition(fire, ActionState.RUNNING, attempts=1)
    ledger.transition(fire, ActionState.SUCCEEDED, run_id="run-fire")
    ledger.claim(f"deploy:{version}@2", ActionKind.DEPLOY, version, {}, "default")
    ledger.claim(
        f"infer:{version}@2", ActionKind.INFER, version, {"after": f"deploy:{version}@2"}, "default"
    )
    ledger.transition(f"deploy:{version}@2", ActionState.RUNNING, attempts=1)
    ledger.transition(f"deploy:{version}@2", ActionState.SUCCEEDED, run_id="run-d")
    # Approved, in ZenML, after a stint the ledger does not know of (served as `@2`).
    approved = {"outcome": "awaiting_approval", "reason": "clears_threshold", "value": 0.5}
    ledger.update_details(f"promote:{version}", {"decision": approved})
    status = board_for(settings).status()
    (chain,) = status["automations"][0]["chains"]
    assert [(e["role"], e["key"], e["state"]) for e in chain["evaluations"]] == [
        ("candidate", f"evaluate:{version}@h-1", "succeeded")
    ]
    assert chain["inference"]["key"] == f"infer:{version}@2"  # not the schedule's fire
    assert chain["deployment"]["key"] == f"deploy:{version}@2"
    assert chain["deployment"]["state"] == "succeeded" and chain["ended_at"] is None
    html = page.render(status)
    assert "candidate succeeded" in html and 'title="run-d"' in html
