"""The end-to-end scenario, shared by the embedded-store and the ZenML-server tests.

It drives the daemon only through ZenML's public API and reads only the daemon's JSON log:
what a user sees. It ends by restarting the daemon and showing that nothing runs twice.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from pipelines.feature_engineering import launch_feature_engineering
from tests.browser import Dom, dump_dom, screenshot
from tests.monitoring_names import names_scraped, names_used
from tests.support import (
    PROJECT_ROOT,
    DaemonProcess,
    http_get,
    http_get_text,
    project_process_environment,
    wait_for,
)

MODEL = "iris_classifier"
StartDaemon = Callable[[str], DaemonProcess]


def _count_runs(key: str) -> int:
    from zenml.client import Client

    return len(Client().list_pipeline_runs(tags=f"equals:{key}").items)


CHAIN = (
    "dataset.selected",
    "training.launched",
    "training.succeeded",
    "model.promoted",
    "model.production_changed",
    "inference.launched",
    "inference.succeeded",
)


def in_causal_order(daemon: DaemonProcess, dataset_id: str, model_version_id: str) -> None:
    """One chain's events, read top to bottom, in the order things happened: the training
    before the decision on the version it made (a poll may see the run complete before the
    worker's report), and no `inference.already_claimed` after the daemon's own promotion."""
    ids = {dataset_id, model_version_id, f"train:{dataset_id}", f"infer:{model_version_id}"}
    fields = ("key", "dataset_version_id", "model_version_id")
    chain = [e["event"] for e in daemon.events() if any(e.get(f) in ids for f in fields)]
    assert [event for event in chain if event in CHAIN] == list(CHAIN), chain
    assert "inference.already_claimed" not in chain, chain


def restart_does_nothing_again(start_daemon: StartDaemon) -> None:
    """A restarted daemon looks at everything again and launches or decides nothing."""
    restarted = start_daemon("daemon-restarted.log")
    restarted.wait_event("daemon.started", timeout=120)
    wait_for(lambda: len(restarted.find("tick.completed")) >= 6, timeout=60, what="six ticks")
    assert restarted.stop() == 0
    for event in ("training.launched", "inference.launched", "model.promoted", "model.rejected"):
        assert restarted.find(event) == [], event


def a_lost_ledger_redoes_nothing(
    start_daemon: StartDaemon, environment: dict[str, str], trained: list[str], served: list[str]
) -> None:
    """The state dir is lost (a new volume, a restore from an old backup): started from the
    beginning, the daemon finds in the store what was done, and does none of it again."""
    shutil.rmtree(environment["AUTOPILOT_STATE_DIR"])
    environment["AUTOPILOT_START_FROM"] = "beginning"
    fresh = start_daemon("daemon-fresh-ledger.log")
    for key in trained:
        fresh.wait_event("training.found_in_store", key=key)
    for key in served:
        fresh.wait_event("inference.found_in_store", key=key)
    wait_for(
        lambda: len(fresh.find("model.decision_found_in_store")) == 3,
        timeout=60,
        what="the three decisions found in the store",
    )
    assert fresh.stop() == 0
    for event in ("training.launched", "inference.launched", "model.promoted", "model.rejected"):
        assert fresh.find(event) == [], event


def the_status_page_shows_the_chain(
    daemon: DaemonProcess, decisions: list[dict[str, Any]], production_id: str
) -> None:
    """`/api/status`, `/` in a real browser and `/metrics` after the chain, as the daemon's own
    log tells it: the production version and who put it there, each decision with its value
    (the chart's points), and each chain from the dataset to its inference run. Every metric
    the shipped dashboard and alert rules read is in the scrape."""
    base = f"http://127.0.0.1:{daemon.environment['AUTOPILOT_HTTP_PORT']}"
    store_url = daemon.environment.get("ZENML_STORE_URL")  # a ZenML server: links to its runs
    trained = {e["run_id"]: e for e in daemon.find("training.succeeded")}
    served = {e["key"]: e for e in daemon.find("inference.succeeded")}

    status, body = http_get(f"{base}/api/status")
    assert status == 200 and body["daemon"]["store_reachable"] is True
    (automation,) = body["automations"]
    production = automation["production"]
    assert production["model_version_id"] == production_id
    assert production["changed_by"] == "external" and production["recorded"]
    assert production["previous_model_version_id"] == decisions[0]["model_version_id"]
    candidates = {c["model_version_id"]: c for c in automation["candidates"]}
    assert {id: (c["outcome"], c["value"]) for id, c in candidates.items()} == {
        d["model_version_id"]: (d["event"].removeprefix("model."), d["value"]) for d in decisions
    }
    assert len(automation["chains"]) == len(decisions)
    for chain in automation["chains"]:
        training = chain["training"]
        event = trained[training["run_id"]]  # the run the daemon's log says it trained
        assert chain["dataset"]["id"] == event["dataset_version_id"]
        assert training["duration_seconds"] == event["duration_seconds"]
        decision = next(d for d in decisions if d["training_run_id"] == training["run_id"])
        assert chain["model_version"]["id"] == decision["model_version_id"]
        assert chain["decision"]["outcome"] == decision["event"].removeprefix("model.")
        if store_url:
            assert training["run_url"] == f"{store_url}/projects/default/runs/{training['run_id']}"
            assert urllib.request.urlopen(training["run_url"], timeout=10).status == 200
        else:
            assert training["run_url"] is None  # a local store has no dashboard
        if chain["decision"]["outcome"] == "promoted":
            inference = served[f"infer:{chain['model_version']['id']}"]
            assert chain["inference"]["run_id"] == inference["run_id"]
            assert chain["duration_seconds"] > 0

    dom = Dom(dump_dom(f"{base}/"))
    card = dom.one("div", "production")
    assert card["data-model-version-id"] == production_id
    assert "by a person or its own pipeline" in card.text
    points = {p["data-model-version-id"]: p for p in dom.all("circle", "point")}
    assert {id: (p["data-outcome"], float(p["data-value"])) for id, p in points.items()} == {
        d["model_version_id"]: (d["event"].removeprefix("model."), d["value"]) for d in decisions
    }
    ordered = sorted(points.values(), key=lambda p: float(p["data-value"]))
    heights = [float(p["cy"]) for p in ordered]
    assert heights == sorted(heights, reverse=True)  # a better value is drawn higher
    (ring,) = dom.all("circle", "production-ring")
    assert ring["data-version"] == points[production_id]["data-version"]
    assert len(dom.all("tr", "chain")) == len(decisions)
    screenshot(f"{base}/", daemon.log_path.parent / "status-page.png")

    scraped = names_scraped(http_get_text(f"{base}/metrics"))
    assert names_used() - scraped == set(), "the dashboard or rules read a metric not served"


def the_whole_chain_exactly_once_across_a_restart(
    start_daemon: StartDaemon, then_lose_the_ledger: bool = False
) -> None:
    from zenml import add_tags
    from zenml.client import Client

    client = Client()
    daemon = start_daemon("daemon.log")
    daemon.wait_event("daemon.started", timeout=90)
    port = daemon.environment["AUTOPILOT_HTTP_PORT"]
    wait_for(lambda: daemon.find("tick.completed"), timeout=30, what="a first poll")
    assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    assert http_get(f"http://127.0.0.1:{port}/readyz") == (200, {"ok": True, "store_error": None})
    # The status page before anything happened, in a real browser: nothing in production.
    empty = Dom(dump_dom(f"http://127.0.0.1:{port}/"))
    assert empty.one("div", "production")["data-model-version-id"] == ""
    assert "No model version judged yet." in empty.one("section", "automation").text
    assert empty.one("header")["data-store-reachable"] == "true"

    # An approved, good dataset: one training, a promotion, one inference on that version.
    good = launch_feature_engineering(training_tags=["approved"], random_state=11)
    good_key = f"train:{good.training_id}"
    daemon.wait_event("training.succeeded", key=good_key)
    promoted = daemon.wait_event("model.promoted", dataset_version_id=str(good.training_id))
    good_mv = promoted["model_version_id"]
    daemon.wait_event("inference.succeeded", key=f"infer:{good_mv}")
    in_causal_order(daemon, str(good.training_id), good_mv)
    production = client.get_model_version(MODEL, "production")
    assert str(production.id) == good_mv
    metrics = http_get_text(f"http://127.0.0.1:{port}/metrics")
    assert (
        'autopilot_actions_total{automation="default",kind="train",outcome="succeeded"} 1.0'
        in metrics
    )
    assert (
        'autopilot_actions_total{automation="default",kind="promote",outcome="promoted"} 1.0'
        in metrics
    )
    assert "autopilot_poll_duration_seconds_count" in metrics
    wait_for(
        lambda: (
            "autopilot_worker_template_ready 1.0"
            in http_get_text(f"http://127.0.0.1:{port}/metrics")
        ),
        timeout=120,
        what="the worker template warm",
    )
    assert "predictions" in production.data_artifact_ids

    # An unapproved dataset: nothing but a logged skip.
    unapproved = launch_feature_engineering(random_state=12)
    skip = daemon.wait_event("dataset.skipped", dataset_version_id=str(unapproved.training_id))
    assert skip["reason"] == "missing_tags" and skip["missing_tags"] == ["approved"]

    # An approved, poor dataset: trained, then rejected with its reason recorded.
    poor = launch_feature_engineering(training_tags=["approved"], label_noise=0.7, random_state=13)
    rejected = daemon.wait_event("model.rejected", dataset_version_id=str(poor.training_id))
    assert rejected["reason"] == "below_threshold"
    poor_mv = client.get_model_version(MODEL, UUID(rejected["model_version_id"]))
    assert poor_mv.run_metadata["autopilot_decision"]["outcome"] == "rejected"
    assert client.get_model_version(MODEL, "production").id == production.id

    # A person approves the old, unapproved version: it is trained then.
    add_tags(tags=["approved"], artifact_version_id=unapproved.training_id)
    daemon.wait_event("training.succeeded", key=f"train:{unapproved.training_id}")
    late = daemon.wait_event("model.rejected", dataset_version_id=str(unapproved.training_id))
    assert late["reason"] == "not_better_than_production"

    # A person promotes the rejected version by hand: inference runs on it.
    client.update_model_version(MODEL, poor_mv.id, stage="production", force=True)
    changed = daemon.wait_event("model.production_changed", model_version_id=str(poor_mv.id))
    assert changed["changed_by"] == "external"
    daemon.wait_event("inference.succeeded", key=f"infer:{poor_mv.id}")
    the_status_page_shows_the_chain(daemon, [promoted, rejected, late], str(poor_mv.id))

    assert daemon.stop() == 0
    assert daemon.find("daemon.stopped")
    trained = [good_key, f"train:{poor.training_id}", f"train:{unapproved.training_id}"]
    served = [f"infer:{good_mv}", f"infer:{poor_mv.id}"]
    counts_before = {key: _count_runs(key) for key in trained + served}
    assert counts_before == dict.fromkeys(trained + served, 1)
    versions_before = len(client.list_model_versions(model=MODEL).items)
    assert versions_before == 3

    restart_does_nothing_again(start_daemon)
    assert {key: _count_runs(key) for key in trained + served} == counts_before
    assert len(client.list_model_versions(model=MODEL).items) == versions_before

    if then_lose_the_ledger:
        a_lost_ledger_redoes_nothing(start_daemon, daemon.environment, trained, served)
        assert {key: _count_runs(key) for key in trained + served} == counts_before
        assert len(client.list_model_versions(model=MODEL).items) == versions_before

    # The daemon's stdout is its structured log and nothing else.
    assert [e for e in daemon.events() if e["event"] == "<not json>"] == []


def approve(daemon: DaemonProcess, *args: str) -> dict[str, Any]:
    """`autopilot approve ARGS` as its own process, with the daemon's store settings only."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "autopilot"), "approve", *args],
        env=project_process_environment(daemon.environment),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def several_projects_in_one_daemon(start_daemon: StartDaemon, with_iris: bool = True) -> None:
    """The bundled iris pipelines and a user's project (examples/diabetes, its own `pipelines`
    and `steps` packages, in PROMOTION_MODE=approval), configured only by variables, driven by
    one daemon; a third automation trains the same datasets with the example's pipeline
    promoting itself."""
    from zenml.client import Client

    from tests.support import DIABETES_THRESHOLD, publish_diabetes

    client = Client()
    daemon = start_daemon("daemon.log")
    daemon.wait_event("daemon.started", timeout=120)
    wait_for(lambda: daemon.find("tick.completed"), timeout=30, what="a first poll")

    if with_iris:
        iris = launch_feature_engineering(training_tags=["approved"], random_state=21)
        daemon.wait_event("training.succeeded", key=f"train:iris:{iris.training_id}")

    clean = publish_diabetes(random_state=0)
    # The example runs in PROMOTION_MODE=approval: its candidate waits in staging until a
    # person approves it, here with `autopilot approve` from another process.
    promoted = daemon.wait_event(
        "model.awaiting_approval", automation="diabetes", dataset_version_id=clean["train_id"]
    )
    version = client.get_model_version("diabetes_regressor", UUID(promoted["model_version_id"]))
    assert str(version.stage) == "staging"
    approval = approve(daemon, "diabetes_regressor", str(version.number), "--by", "dana")
    assert approval["production_change"]["changed_by"] == "approval"
    approved = daemon.wait_event("model.approved", model_version_id=str(version.id))
    assert approved["by"] == "dana"
    # A new numbered version, whatever `version: sgd` the user's YAML says; its other fields kept.
    assert version.name == str(version.number) and version.name != "sgd"
    assert version.description is not None and "diabetes" in version.description
    # The metric came from the artifact's metadata, the goal from the automation.
    rmse = version.get_model_artifact("diabetes_model").run_metadata["rmse"]
    assert promoted["value"] == rmse < float(DIABETES_THRESHOLD)
    assert promoted["goal"] == "minimize"
    # The parameters were filled from the dataset and from the run that produced it.
    training_run = client.get_pipeline_run(UUID(promoted["training_run_id"]))
    filled = {"train_dataset_id": clean["train_id"], "test_dataset_id": clean["test_id"]}
    assert training_run.config.parameters.items() >= filled.items()
    served = daemon.wait_event("inference.succeeded", key=f"infer:{version.id}")
    inference_run = client.get_pipeline_run(UUID(served["run_id"]))
    assert inference_run.model_version is not None
    assert inference_run.model_version.id == version.id  # pinned, not "production" by name
    assert inference_run.config.parameters["dataset_id"] == clean["test_id"]
    assert (
        "diabetes_predictions"
        in client.get_model_version("diabetes_regressor", version.id).data_artifact_ids
    )

    # The same dataset fed the self-promoting automation: the daemon records its decision,
    # leaves the stage alone, and infers once on the version the pipeline promoted.
    kept = daemon.wait_event("model.already_production", automation="selfpromo")
    assert kept["dataset_version_id"] == clean["train_id"]
    changed = daemon.wait_event("model.production_changed", automation="selfpromo")
    assert changed["model_version_id"] == kept["model_version_id"]
    daemon.wait_event("inference.succeeded", key=f"infer:{kept['model_version_id']}")

    # A noisy dataset: trained by both, rejected by the threshold in the minimize direction.
    noisy = publish_diabetes(random_state=0, noise=1.0)
    rejected = daemon.wait_event(
        "model.rejected", automation="diabetes", dataset_version_id=noisy["train_id"]
    )
    assert rejected["reason"] == "below_threshold" and rejected["value"] > rejected["threshold"]
    daemon.wait_event(
        "model.rejected", automation="selfpromo", dataset_version_id=noisy["train_id"]
    )

    assert daemon.stop() == 0
    keys = [
        f"train:{name}:{dataset['train_id']}"
        for name in ("diabetes", "selfpromo")
        for dataset in (clean, noisy)
    ]
    keys += [f"infer:{version.id}", f"infer:{kept['model_version_id']}"]
    if with_iris:
        keys.append(f"train:iris:{iris.training_id}")
    assert {key: _count_runs(key) for key in keys} == dict.fromkeys(keys, 1)
    assert len(client.list_model_versions(model="diabetes_regressor").items) == 2
    assert len(client.list_model_versions(model="diabetes_self").items) == 2
    assert {e.get("automation") for e in daemon.find("training.launched")} == (
        {"diabetes", "selfpromo", "iris"} if with_iris else {"diabetes", "selfpromo"}
    )

    restart_does_nothing_again(start_daemon)
    assert {key: _count_runs(key) for key in keys} == dict.fromkeys(keys, 1)
