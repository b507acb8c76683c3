"""Benchmarks of ZenML Autopilot, measured on this machine. Results go to BENCHMARKS.md by hand.

    .venv/bin/python bench/bench.py idle      # 1. idle tick cost vs store size (SQLite and REST)
    .venv/bin/python bench/bench.py idle-window  # 1. again, 1,000 versions a minute apart
    .venv/bin/python bench/bench.py idle-index  # 1. SQLite, without and with a `created` index
    .venv/bin/python bench/bench.py idle-custom  # 1. SQLite, versions with custom names
    .venv/bin/python bench/bench.py idle-models  # 1. SQLite, the model half, 100,000 versions
    .venv/bin/python bench/bench.py latency   # 2. detection latency and 3. chain overhead
    .venv/bin/python bench/bench.py chain-large  # 3. again, training on 500,000 rows
    .venv/bin/python bench/bench.py backlog   # 4. 1,000 selected versions claimed per second
    .venv/bin/python bench/bench.py reconcile  # 1b. reconciliation pass, 10,000 approved versions
    .venv/bin/python bench/bench.py memory    # 5. RSS after start and after 10,000 idle ticks
    .venv/bin/python bench/bench.py automations  # 6. idle tick with 1, 10 and 50 automations
    .venv/bin/python bench/bench.py automations-scoring  # 6. the same with scoring streams
    .venv/bin/python bench/bench.py idle-schedules  # 6. idle tick with training gates, schedules
    .venv/bin/python bench/bench.py idle-approvals  # 6. idle tick with versions awaiting approval
    .venv/bin/python bench/bench.py burst     # 7. bursts of 30 and 100 datasets, CPU per run
    .venv/bin/python bench/bench.py sustained  # 7. steady arrivals, trainings (5 min a rate)
    .venv/bin/python bench/bench.py sustained-chain  # 7. the same, the whole chain
    .venv/bin/python bench/bench.py footprint  # 7. PSS of daemon and workers, 1,000 runs
    .venv/bin/python bench/bench.py candidates  # 7. spawn, reuse or fork: CPU per run
    .venv/bin/python bench/bench.py fingerprint  # 7. what a launch pays to see changed code
    .venv/bin/python bench/bench.py rewarm    # 7. the first run after an edit: a new template
    .venv/bin/python bench/bench.py page      # 8. the status page's cost, and the tick's while read
    .venv/bin/python bench/bench.py page-build  # 8. what building the page costs alone

Each prints one JSON line per measurement. Every store is a fresh temporary one; the global
ZenML config is never touched. Bulk versions are inserted with SQL (copies of one real version),
since saving 100,000 artifacts through the API would take hours; the daemon only reads them.
Their `created` times run back from the newest, a few seconds apart, and copies can be tagged
and given producer runs of their own (`bulk_copy`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if "BENCH_ZENML_STORE" not in os.environ:  # a spawned child re-imports this: same store
    os.environ.update(
        BENCH_ZENML_STORE="1",
        ZENML_CONFIG_PATH=tempfile.mkdtemp(prefix="bench-zenml-"),
        ZENML_ANALYTICS_OPT_IN="false",
        ZENML_LOGGING_VERBOSITY="ERROR",
        ZENML_ENABLE_RICH_TRACEBACK="false",
        ZENML_REPOSITORY_PATH=tempfile.mkdtemp(prefix="bench-norepo-"),
    )
NAME = "iris_training_dataset"


def report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _zenml_ready() -> None:
    from zenml.utils import source_utils

    source_utils.set_custom_source_root(str(ROOT))


def _save_template(tags: list[str], rows: int | None = None) -> str:
    from zenml import save_artifact

    return str(save_artifact(_dataset(rows), name=NAME, tags=tags).id)


def _dataset(rows: int | None) -> object:
    """Iris itself, or `rows` rows drawn from it with a little noise on the features (a
    dataset whose training takes seconds rather than milliseconds)."""
    import numpy as np

    from pipelines.datasets import feature_columns, load_iris_frame

    frame = load_iris_frame()
    if rows is None:
        return frame
    large = frame.sample(n=rows, replace=True, random_state=0).reset_index(drop=True)
    features = feature_columns(large)
    noise = np.random.default_rng(0).normal(0, 0.1, size=(rows, len(features)))
    large[features] = large[features] + noise
    return large


def bulk_copy(
    database: Path,
    template_id: str,
    count: int,
    tag: str | None = None,
    every: float = 3.0,
    producers: bool = False,
) -> list[str]:
    """Insert `count` copies of one artifact version (new ids, next version numbers) and return
    their ids. Their history runs back in time from the artifact's oldest version, one version
    every `every` seconds, so that only the newest stay in the daemon's poll window (`LOOKBACK`
    in service/core/polling.py) however many there are. Version numbers do not follow creation
    order (the copies are older than the template but numbered after it): the daemon orders by
    `created`. With `producers`, each copy gets a producer run of its own: a copy of the
    template's pipeline run and step run, and the step's output link, which is what ZenML reads
    as `producer_pipeline_run_id` (the template must have been written by a pipeline step)."""
    template = uuid.UUID(template_id).hex
    with sqlite3.connect(database) as db:
        top, oldest = db.execute(
            "SELECT MAX(version_number), MIN(created) FROM artifact_version WHERE artifact_id = "
            "(SELECT artifact_id FROM artifact_version WHERE id = ?)",
            (template,),
        ).fetchone()
        top, oldest = top or 0, datetime.fromisoformat(oldest)
        producer = None
        if producers:
            producer = db.execute(
                "SELECT o.name, s.id, s.pipeline_run_id FROM step_run_output_artifact o "
                "JOIN step_run s ON s.id = o.step_id WHERE o.artifact_id = ?",
                (template,),
            ).fetchone()
            if producer is None:
                raise ValueError(f"{template_id} was not written by a pipeline step")
        ids: list[str] = []
        for start in range(0, count, 10_000):
            versions, runs, steps, outputs = [], [], [], []
            for index in range(start + 1, min(start + 10_000, count) + 1):
                new_id = uuid.uuid4()
                ids.append(str(new_id))
                created = oldest - timedelta(seconds=every * index)
                versions.append(
                    {
                        "id": new_id.hex,
                        "version": str(top + index),
                        "version_number": top + index,
                        "created": _sql_time(created),
                        "updated": _sql_time(created),
                    }
                )
                if producer is not None:
                    run_id, step_id = uuid.uuid4().hex, uuid.uuid4().hex
                    began, ended = _sql_time(created - timedelta(seconds=2)), _sql_time(created)
                    times = {"created": began, "updated": ended, "start_time": began}
                    runs.append(
                        {
                            "id": run_id,
                            "name": f"bench-producer-{run_id}",
                            "orchestrator_run_id": run_id,
                            **times,
                            "end_time": ended,
                        }
                    )
                    steps.append(
                        {"id": step_id, "pipeline_run_id": run_id, **times, "end_time": ended}
                    )
                    outputs.append((producer[0], step_id, new_id.hex))
            _copy_rows(db, "artifact_version", template, versions)
            if producer is not None:
                _copy_rows(db, "pipeline_run", producer[2], runs)
                _copy_rows(db, "step_run", producer[1], steps)
                db.executemany(
                    "INSERT INTO step_run_output_artifact (name, step_id, artifact_id) "
                    "VALUES (?, ?, ?)",
                    outputs,
                )
    if tag is not None:
        tag_versions(database, ids, tag)
    return ids


def renumber(database: Path, template_id: str, custom: bool = False) -> None:
    """Number the versions of the template's artifact in the order of creation (1 the oldest),
    as ZenML would have (`max + 1` at each save); `bulk_copy` numbers its copies after the
    template although they are older. The daemon's fast read walks the numbers from the top
    (service/core/polling.py), so a bench of it needs the newest versions numbered highest.
    With `custom`, every version but the template gets a custom name instead (no number)."""
    artifact = "(SELECT artifact_id FROM artifact_version WHERE id = :template)"
    keys = {"template": uuid.UUID(template_id).hex}
    with sqlite3.connect(database) as db:
        # Clear first: (version, artifact_id) is unique, and checked row by row.
        db.execute(
            f"UPDATE artifact_version SET version = 'bench-' || id, version_number = NULL "
            f"WHERE artifact_id = {artifact}",
            keys,
        )
        db.execute(
            f"WITH ordered AS (SELECT id, ROW_NUMBER() OVER (ORDER BY created, id) AS n "
            f"FROM artifact_version WHERE artifact_id = {artifact} "
            f"AND (NOT :custom OR id = :template)) "
            f"UPDATE artifact_version SET version_number = ordered.n, version = ordered.n "
            f"FROM ordered WHERE artifact_version.id = ordered.id",
            {**keys, "custom": custom},
        )


def tag_versions(database: Path, version_ids: list[str], tag: str) -> None:
    """Tag artifact versions, the way ZenML links a tag (the tag itself must exist)."""
    with sqlite3.connect(database) as db:
        found = db.execute("SELECT id FROM tag WHERE name = ?", (tag,)).fetchone()
        if found is None:
            raise ValueError(f"no tag {tag!r} in the store")
        now = _sql_time(datetime.now(UTC).replace(tzinfo=None))
        db.executemany(
            "INSERT INTO tag_resource (id, created, updated, tag_id, resource_id, resource_type) "
            "VALUES (?, ?, ?, ?, ?, 'artifact_version')",
            [(uuid.uuid4().hex, now, now, found[0], uuid.UUID(i).hex) for i in version_ids],
        )


def _copy_rows(
    db: sqlite3.Connection, table: str, template: str, rows: list[dict[str, object]]
) -> None:
    """Insert copies of one row of `table`, with the columns given in each of `rows` changed."""
    if not rows:
        return
    columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
    changed = list(rows[0])
    kept = [c for c in columns if c not in changed]
    names = ", ".join(f'"{c}"' for c in changed + kept)
    values = ", ".join(["?"] * len(changed) + [f'"{c}"' for c in kept])
    db.executemany(
        f"INSERT INTO {table} ({names}) SELECT {values} FROM {table} WHERE id = ?",
        [(*(row[c] for c in changed), template) for row in rows],
    )


def _sql_time(moment: datetime) -> str:
    """A naive UTC time the way ZenML's SQLite store writes it."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _engine(state: Path, environ: dict[str, str] | None = None, **overrides: str):  # type: ignore[no-untyped-def]
    from service.dry_run import NoLaunchExecutor
    from service.engine import Autopilot
    from service.ledger import Ledger
    from service.logs import configure
    from service.settings import load_settings
    from service.store import StoreAdapter

    configure("json", "ERROR")
    settings = load_settings(
        {
            "AUTOPILOT_STATE_DIR": str(state),
            **{f"AUTOPILOT_{k.upper()}": v for k, v in overrides.items()},
            **(environ or {}),
        }
    )
    engine = Autopilot(settings, Ledger(settings.ledger_path), StoreAdapter(), NoLaunchExecutor(2))
    engine.start()
    return engine


def _sweeping_tick(engine: Any) -> None:
    """A tick whose dataset and model reads are sweeps (one per reconciliation interval): the
    unindexed `created >= floor` reads, from the stored floors (service/core/polling.py)."""
    engine.datasets._polls.sweep_next()
    engine.models._polls.sweep_next()
    engine.tick()


def _whole_pass(engine: Any) -> int:
    """One whole reconciliation pass (the daemon spreads it over ticks, a few pages each)."""
    return sum(1 for _ in engine.datasets._reconcile_approvals())


def _time(call: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


@contextlib.contextmanager
def _store(transport: str) -> Iterator[Path]:
    """A fresh store for the benchmark, local SQLite or a ZenML server over REST on loopback
    (each with a client configuration of its own); yields the path of its SQLite database,
    where bulk copies go."""
    from tests.support import ZenMLServer

    server = None
    os.environ["ZENML_CONFIG_PATH"] = tempfile.mkdtemp(prefix="bench-zenml-")
    database = Path(os.environ["ZENML_CONFIG_PATH"]) / "local_stores/default_zen_store/zenml.db"
    if transport == "rest":
        server = ZenMLServer(Path(tempfile.mkdtemp(prefix="bench-server-"))).start()
        os.environ.update(server.admin_environment())
        database = server.root / "config/local_stores/default_zen_store/zenml.db"
    _reset()
    try:
        yield database
    finally:
        if server is not None:
            server.stop()
            for name in server.admin_environment():
                os.environ.pop(name)


def _created(database: Path, version_id: str) -> datetime:
    with sqlite3.connect(database) as db:
        (created,) = db.execute(
            "SELECT created FROM artifact_version WHERE id = ?", (uuid.UUID(version_id).hex,)
        ).fetchone()
    return datetime.fromisoformat(created)


def _ensure_tag(name: str) -> None:
    from zenml.client import Client

    try:
        Client().get_tag(name)
    except KeyError:
        Client().create_tag(name=name)


def idle(
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000),
    repeat: int = 30,
    every: float = 3.0,
    custom: bool = False,
    transports: tuple[str, ...] = ("sqlite", "rest"),
) -> None:
    """1. One tick with nothing new, at growing store sizes, on SQLite and over REST.

    The versions' history runs back in time, one every `every` s (`bulk_copy`), numbered in
    that order (`renumber`), and the daemon starts 10 minutes before the newest, so its first
    tick (a sweep) judges those 10 minutes and then its fast floor sits `LOOKBACK` below the
    newest version, as in a daemon that has been running while they came: every idle tick reads
    the versions of that window again (and knows them). One old version is tagged `approved`
    (settled at start as predating it) for the reconciliation pass. With `custom`, the copies
    have custom names (no number), which the fast read finds with `version_number isnull`.
    `sweep_tick_median_ms`: a tick that sweeps, as one tick in every reconciliation interval.
    """
    _zenml_ready()
    for transport in transports:
        with _store(transport) as database:
            _ensure_tag("approved")
            template = _save_template([])
            newest = _created(database, template)
            total = 1
            for size in sizes:
                copies = bulk_copy(database, template, size - total, every=every)
                renumber(database, template, custom)
                if total == 1:
                    tag_versions(database, copies[-1:], "approved")
                total = size
                engine = _engine(
                    Path(tempfile.mkdtemp()),
                    start_from=(newest - timedelta(minutes=10)).isoformat(),
                    reconcile_interval_seconds="3600",
                )
                engine.tick()  # judges the last 10 minutes; also runs the reconciliation pass
                samples = _time(engine.tick, repeat)
                sweeps = _time(functools.partial(_sweeping_tick, engine), 5)
                # A whole pass (a generator since the pass is spread over ticks: calling it
                # alone would time nothing).
                reconcile = _time(functools.partial(_whole_pass, engine), 5)
                floor = engine.ledger.get_cursor(
                    engine.settings.automations[0].dataset_stream(NAME)
                )
                report(
                    bench="idle_tick",
                    transport=transport,
                    artifact_versions=size,
                    median_ms=median_ms(samples),
                    p95_ms=round(percentile(samples, 0.95) * 1000, 2),
                    sweep_tick_median_ms=median_ms(sweeps),
                    reconcile_pass_median_ms=median_ms(reconcile),
                    floor=floor,
                    every_s=every,
                    versions_in_window=_count_since(database, template, floor),
                    custom_names=custom,
                    repeat=repeat,
                )
                engine.ledger.close()


def idle_index(sizes: tuple[int, ...] = (1_000, 100_000), repeat: int = 30) -> None:
    """1. The idle tick on SQLite without and with an index on `artifact_version (artifact_id,
    created)`, created by hand in the benchmark's store (ZenML 0.98 has none): how much of the
    tick's growth with the store is the unindexed `created >= ?` filter of the floors."""
    _zenml_ready()
    with _store("sqlite") as database:
        template = _save_template([])
        newest = _created(database, template)
        total = 1
        for size in sizes:
            bulk_copy(database, template, size - total)
            renumber(database, template)
            total = size
            for indexed in (False, True):
                with sqlite3.connect(database) as db:
                    if indexed:
                        db.execute(
                            "CREATE INDEX bench_created ON artifact_version (artifact_id, created)"
                        )
                    else:
                        db.execute("DROP INDEX IF EXISTS bench_created")
                engine = _engine(
                    Path(tempfile.mkdtemp()),
                    start_from=(newest - timedelta(minutes=10)).isoformat(),
                    reconcile_interval_seconds="3600",
                )
                engine.tick()
                samples = _time(engine.tick, repeat)
                report(
                    bench="idle_tick_created_index",
                    transport="sqlite",
                    artifact_versions=size,
                    created_index=indexed,
                    median_ms=median_ms(samples),
                    p95_ms=round(percentile(samples, 0.95) * 1000, 2),
                    repeat=repeat,
                )
                engine.ledger.close()
            with sqlite3.connect(database) as db:
                db.execute("DROP INDEX IF EXISTS bench_created")


def idle_models(sizes: tuple[int, ...] = (1_000, 100_000), repeat: int = 30) -> None:
    """1. The model half of the idle tick (`engine.models.tick()`) with 1,000 and 100,000
    versions of the watched model, one every 3 s, numbered in that order, on SQLite. ZenML's
    `model_version` table has a unique index on `(number, model_id)` but none starting with
    `model_id` and `number`: whether SQLite answers the fast read's `number >= ?` from it is
    what this measures (the dataset watch stays idle, its artifact has one version)."""
    _zenml_ready()
    from zenml.client import Client

    from service.core.polling import format_floor

    with _store("sqlite") as database:
        Client().create_model("iris_classifier")
        seed = Client().create_model_version("iris_classifier", name="seed")
        newest = seed.created
        total = 1
        for size in sizes:
            _copy_model_versions(database, seed.id.hex, total, size)
            total = size
            # Started `now` (a start time would list every older version to skip it: 100,000
            # full reads), then its floor put 10 minutes back, as in a daemon running a while.
            engine = _engine(Path(tempfile.mkdtemp()), reconcile_interval_seconds="3600")
            stream = engine.settings.automations[0].model_stream
            engine.ledger.set_cursor(stream, format_floor(newest - timedelta(minutes=10)))
            engine.models.tick()  # a sweep: judges those 10 minutes
            samples = _time(engine.models.tick, repeat)
            sweeps = []
            for _ in range(5):
                engine.models._polls.sweep_next()
                sweeps += _time(engine.models.tick, 1)
            report(
                bench="idle_models",
                transport="sqlite",
                model_versions=size,
                median_ms=median_ms(samples),
                p95_ms=round(percentile(samples, 0.95) * 1000, 2),
                sweep_tick_median_ms=median_ms(sweeps),
                repeat=repeat,
            )
            engine.ledger.close()


def _copy_model_versions(database: Path, seed: str, first: int, size: int) -> None:
    """Copies of one model version, older than every version so far, one every 3 s; then
    every version numbered in the order of creation, as ZenML would have."""
    with sqlite3.connect(database) as db:
        (oldest,) = db.execute("SELECT MIN(created) FROM model_version").fetchone()
        oldest = datetime.fromisoformat(oldest)
        rows = []
        for index in range(1, size - first + 1):
            new_id, created = uuid.uuid4().hex, _sql_time(oldest - timedelta(seconds=3 * index))
            rows.append(
                {
                    "id": new_id,
                    "name": f"copy-{new_id}",
                    "number": -index,  # unique until numbered below
                    "producer_run_id_if_numeric": new_id,
                    "created": created,
                    "updated": created,
                }
            )
        _copy_rows(db, "model_version", seed, rows)
        db.execute("UPDATE model_version SET number = -number - 1000000000")
        db.execute(
            "WITH ordered AS (SELECT id, ROW_NUMBER() OVER (ORDER BY created, id) AS n "
            "FROM model_version) UPDATE model_version SET number = ordered.n "
            "FROM ordered WHERE model_version.id = ordered.id"
        )


def _count_since(database: Path, template_id: str, floor: str | None) -> int:
    """Versions of the template's artifact an idle tick reads: created in or after the floor's
    second (ZenML's `created` filter takes whole seconds)."""
    since = datetime.strptime(floor, "%Y-%m-%dT%H:%M:%S.%f") if floor else datetime.min
    with sqlite3.connect(database) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM artifact_version WHERE artifact_id = "
            "(SELECT artifact_id FROM artifact_version WHERE id = ?) AND created >= ?",
            (uuid.UUID(template_id).hex, _sql_time(since.replace(microsecond=0))),
        ).fetchone()
    return int(count)


def reconcile(counts: tuple[int, int] = (10_000, 1_000), steady: int = 5) -> None:
    """The reconciliation pass with `counts` versions tagged `approved` (on SQLite, over REST),
    each written by a pipeline run of its own. Over REST every version read costs ~0.1 s on
    this machine, so 10,000 would take ~17 minutes a pass: 1,000 there.

    `approved_after_start`: the versions exist untagged when the daemon starts (`now`), then all
    get the tag (someone approves a backlog): the first pass reads every one in full with its
    producer run and judges it (selected: a training claimed, none launched); the next passes
    find them settled in the ledger. `approved_before_start`: a second daemon, with an empty
    ledger, starts (`now`) with them tagged already: its start-up settles them as predating it.
    Peak RSS of this process is taken over each pass (its high-water mark reset before)."""
    _zenml_ready()
    from pipelines.feature_engineering import launch_feature_engineering

    for transport, count in zip(("sqlite", "rest"), counts, strict=True):
        with _store(transport) as database:
            _ensure_tag("approved")
            template = str(launch_feature_engineering(random_state=0).training_id)
            ids = [template, *bulk_copy(database, template, count - 1, producers=True)]
            engine = _engine(
                Path(tempfile.mkdtemp()), start_from="now", reconcile_interval_seconds="3600"
            )
            tag_versions(database, ids, "approved")
            _, first = _measured(functools.partial(_whole_pass, engine))
            claimed = sum(sum(s.values()) for s in engine.ledger.count_actions().values())
            report(
                bench="reconcile_pass",
                transport=transport,
                scenario="approved_after_start",
                run="first_pass",
                approved_versions=count,
                claimed=claimed,
                **first,
            )
            passes = [_measured(functools.partial(_whole_pass, engine))[1] for _ in range(steady)]
            report(
                bench="reconcile_pass",
                transport=transport,
                scenario="approved_after_start",
                run="steady_passes",
                approved_versions=count,
                passes=steady,
                median_s=statistics.median(p["seconds"] for p in passes),
                max_s=max(p["seconds"] for p in passes),
                peak_rss_mib=max(p["peak_rss_mib"] for p in passes),
                rss_after_mib=passes[-1]["rss_after_mib"],
            )
            engine.ledger.close()
            engine, started = _measured(
                lambda: _engine(
                    Path(tempfile.mkdtemp()), start_from="now", reconcile_interval_seconds="3600"
                )
            )
            report(
                bench="reconcile_start",
                transport=transport,
                scenario="approved_before_start",
                approved_versions=count,
                **started,
            )
            passes = [_measured(functools.partial(_whole_pass, engine))[1] for _ in range(steady)]
            report(
                bench="reconcile_pass",
                transport=transport,
                scenario="approved_before_start",
                run="steady_passes",
                approved_versions=count,
                passes=steady,
                median_s=statistics.median(p["seconds"] for p in passes),
                peak_rss_mib=max(p["peak_rss_mib"] for p in passes),
            )
            engine.ledger.close()


def _measured(call: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """A call's result, with its seconds and this process's resident memory before, at its peak
    during, and after it (the peak from the kernel's high-water mark, reset just before)."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _status_kib("VmRSS")
    started = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - started
    return result, {
        "seconds": round(elapsed, 2),
        "rss_before_mib": round(before / 1024, 1),
        "peak_rss_mib": round(_status_kib("VmHWM") / 1024, 1),
        "rss_after_mib": round(_status_kib("VmRSS") / 1024, 1),
    }


def automations(counts: tuple[int, ...] = (1, 10, 50), repeat: int = 30) -> None:
    """6. One idle tick with 1, 10 and 50 automations, each with its own dataset artifact
    (versions tagged `approved`, made by pipeline runs) and its own model with a production
    version, on SQLite and over REST. First every artifact has 3 versions (equal cursors: the
    best case of batching); then `spread`: up to 96 more versions per artifact, so cursors differ
    and names fall into several queries."""
    from zenml.client import Client

    from tests.support import ZenMLServer

    _zenml_ready()
    for transport in ("sqlite", "rest"):
        server = None
        database = Path(os.environ["ZENML_CONFIG_PATH"]) / "local_stores/default_zen_store/zenml.db"
        if transport == "rest":
            server = ZenMLServer(Path(tempfile.mkdtemp(prefix="bench-server-"))).start()
            os.environ.update(server.admin_environment())
            os.environ["ZENML_CONFIG_PATH"] = tempfile.mkdtemp(prefix="bench-client-")
            _reset()
            database = server.root / "config/local_stores/default_zen_store/zenml.db"
        _projects(max(counts))
        for cursors in ("equal", "spread"):
            if cursors == "spread":
                for index in range(max(counts)):
                    latest = Client().get_artifact_version(f"dataset_{index}")
                    bulk_copy(database, str(latest.id), (index * 37) % 97)
            for count in counts:
                _idle_with_automations(transport, cursors, count, repeat)
        if server is not None:
            server.stop()


def automations_scoring(counts: tuple[int, ...] = (1, 10, 50), repeat: int = 30) -> None:
    """6. The idle tick with 1, 10 and 50 automations as in `automations` (equal cursors),
    each watching a scoring artifact too (`dataset_s<i>`, 3 versions written by pipeline runs,
    no tags required): the same store, measured without and then with the scoring streams."""
    from tests.support import ZenMLServer

    _zenml_ready()
    for transport in ("sqlite", "rest"):
        server = None
        if transport == "rest":
            server = ZenMLServer(Path(tempfile.mkdtemp(prefix="bench-server-"))).start()
            os.environ.update(server.admin_environment())
            os.environ["ZENML_CONFIG_PATH"] = tempfile.mkdtemp(prefix="bench-client-")
            _reset()
        _projects(max(counts), scoring=True)
        for count in counts:
            for scoring in (False, True):
                _idle_with_automations(transport, "equal", count, repeat, scoring=scoring)
        if server is not None:
            server.stop()
            for name in server.admin_environment():
                os.environ.pop(name)


def _idle_with_automations(
    transport: str, cursors: str, count: int, repeat: int, scoring: bool = False
) -> None:
    environ = {}
    for index in range(count):
        prefix = f"AUTOPILOT_AUTOMATIONS__P{index}__"
        environ[f"{prefix}DATASET_NAMES"] = f"dataset_{index}"
        environ[f"{prefix}MODEL_NAME"] = f"model_{index}"
        if scoring:
            environ[f"{prefix}SCORING_DATASET_NAMES"] = f"dataset_s{index}"
    engine = _engine(
        Path(tempfile.mkdtemp()), environ, start_from="now", reconcile_interval_seconds="3600"
    )
    engine.tick()  # the first tick also runs the reconciliation pass
    samples = _time(engine.tick, repeat)
    report(
        bench="idle_tick_automations",
        transport=transport,
        cursors=cursors,
        automations=count,
        scoring_streams=count if scoring else 0,
        median_ms=median_ms(samples),
        p95_ms=round(percentile(samples, 0.95) * 1000, 2),
        repeat=repeat,
    )
    engine.ledger.close()


def _projects(count: int, versions: int = 3, scoring: bool = False) -> None:
    """`count` projects: each a dataset artifact with `versions` tagged versions written by a
    pipeline run, and a model with one version in production; with `scoring`, a second
    artifact each (`dataset_s<i>`) with as many versions, data to score."""
    from projects import produce  # bench/projects.py: this folder is the script's
    from zenml import Model
    from zenml.client import Client
    from zenml.enums import ModelStages
    from zenml.utils import source_utils

    client = Client()
    source_utils.set_custom_source_root(str(ROOT / "bench"))  # steps load as `projects.*`
    for index in range(count):
        for value in range(versions):
            produce(index, value)
            if scoring:
                produce(f"s{index}", value)
        version = Model(name=f"model_{index}")._get_or_create_model_version()
        client.update_model_version(
            f"model_{index}", version.id, stage=ModelStages.PRODUCTION, force=True
        )
    _zenml_ready()


def _reset() -> None:
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration

    GlobalConfiguration._reset_instance()
    Client._reset_instance()


def backlog(count: int = 1_000) -> None:
    """4. Selected versions already in the store at start: how fast the tick's dataset stage
    judges and claims them (none is trained: the executor launches nothing; the dispatch of
    the claims, in the next `tick()`, is timed apart). Copies of a manually saved version (no
    producer run), then of one written by a pipeline step, each copy with a producer run of its
    own (read once per version to see that it finished)."""
    _zenml_ready()
    from pipelines.feature_engineering import launch_feature_engineering

    for transport, producers in (("sqlite", False), ("sqlite", True), ("rest", True)):
        with _store(transport) as database:
            if producers:
                run = launch_feature_engineering(random_state=0, training_tags=["approved"])
                template = str(run.training_id)
            else:
                template = _save_template(["approved"])
            bulk_copy(database, template, count - 1, tag="approved", producers=producers)
            engine = _engine(
                Path(tempfile.mkdtemp()),
                start_from="beginning",
                reconcile_interval_seconds="3600",
                max_concurrent_runs="1",
            )
            started = time.perf_counter()
            engine.datasets.tick()  # the tick's dataset stage: every version judged and claimed
            elapsed = time.perf_counter() - started
            claimed = sum(sum(states.values()) for states in engine.ledger.count_actions().values())
            started = time.perf_counter()
            engine.tick()  # the rest of a first tick: every claim dispatched (nothing launched)
            rest = time.perf_counter() - started
            report(
                bench="backlog",
                transport=transport,
                producer_runs=producers,
                versions=count,
                claimed=claimed,
                seconds=round(elapsed, 3),
                claimed_per_second=round(claimed / elapsed, 1),
                then_tick_dispatching_all_s=round(rest, 3),
            )
            engine.ledger.close()


def memory(ticks: int = 10_000) -> None:
    """5. Resident memory after start and after many idle ticks, ticked the way the daemon
    does (with checkpoints on the way, to tell a one-off warm-up from a leak)."""
    _zenml_ready()
    _save_template(["approved"])
    from service.daemon import Daemon

    daemon = Daemon(poll_interval=1.0, grace_seconds=0)
    daemon.engine = _engine(
        Path(tempfile.mkdtemp()), start_from="now", reconcile_interval_seconds="60"
    )
    daemon.safe_tick()
    before = _rss_kib()
    checkpoints = {}
    started = time.perf_counter()
    for done in range(1, ticks + 1):
        daemon.safe_tick()  # the daemon's own tick: the engine's, then its housekeeping
        if daemon.consecutive_failures:
            raise RuntimeError(f"tick {done} failed: {daemon.store_error}")
        if done in (100, 1_000, 2_500, 5_000, 7_500, ticks):
            checkpoints[done] = round(_rss_kib() / 1024, 1)
    after = _rss_kib()
    report(
        bench="memory",
        ticks=ticks,
        rss_after_start_mib=round(before / 1024, 1),
        rss_after_ticks_mib=round(after / 1024, 1),
        growth_percent=round(100 * (after - before) / before, 2),
        rss_mib_at_tick=checkpoints,
        seconds=round(time.perf_counter() - started, 1),
    )


def _rss_kib() -> int:
    return _status_kib("VmRSS")


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc (VmRSS: resident now; VmHWM: its peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def latency(samples: int = 20, poll: float = 1.0, rows: int | None = None) -> None:
    """2. Commit → training.launched at a 1 s poll; 3. chain overhead, commit → predictions.
    With `rows`, the datasets are that large (see `_dataset`)."""
    _zenml_ready()
    from pipelines.feature_engineering import launch_feature_engineering

    launch_feature_engineering(random_state=0)  # the inference dataset
    daemon = bench_daemon("bench-latency-", poll, AUTOPILOT_PROMOTION_MUST_BEAT_PRODUCTION="false")
    port = int(daemon.environment["AUTOPILOT_HTTP_PORT"])
    daemon.wait_event("daemon.started", timeout=120)
    detection, overhead, over_calls, stages = [], [], [], []
    for index in range(samples):
        # Datasets arrive minutes apart in use; here, seconds. Each chain starts, as it would
        # then, with the worker template warm (it is once, after start).
        warm = _wait_for_warm_template(port)
        time.sleep(random.uniform(0, poll))  # the gauge moves on a tick: arrive at any phase
        dataset_id = _save_template(["approved"], rows)
        committed = time.time()
        launched = daemon.wait_event("training.launched", dataset_version_id=dataset_id)
        detection.append(_epoch(launched["timestamp"]) - committed)
        trained = daemon.wait_event("training.succeeded", dataset_version_id=dataset_id)
        inferring = daemon.wait_event("inference.launched", dataset_version_id=dataset_id)
        served = daemon.wait_event("inference.succeeded", dataset_version_id=dataset_id)
        own = (trained["duration_seconds"] or 0) + (served["duration_seconds"] or 0)
        chain = _epoch(served["timestamp"]) - committed
        overhead.append(chain / own)
        # The same chain over what calling the two pipelines costs in a warm interpreter
        # (ZenML's compile and snapshot included): what automating them adds.
        calls = float(trained["worker_seconds"]) + float(served["worker_seconds"])
        over_calls.append(chain / calls)
        stages.append(_chain_stages(committed, launched, trained, inferring, served))
        report(
            bench="chain_sample",
            index=index,
            chain_s=round(chain, 3),
            runs_own_s=round(own, 3),
            pipeline_calls_s=round(calls, 3),
            waited_for_warm_template_s=round(warm, 1),
            **{name: round(seconds, 3) for name, seconds in stages[-1].items()},
        )
    daemon.stop()
    report(
        bench="detection_latency",
        poll_interval_s=poll,
        samples=samples,
        p50_s=round(percentile(detection, 0.5), 3),
        p95_s=round(percentile(detection, 0.95), 3),
    )
    report(
        bench="chain_overhead",
        dataset_rows=rows or 150,
        samples=samples,
        median_ratio=round(statistics.median(overhead), 2),
        p95_ratio=round(percentile(overhead, 0.95), 2),
        median_ratio_to_pipeline_calls=round(statistics.median(over_calls), 2),
        p95_ratio_to_pipeline_calls=round(percentile(over_calls, 0.95), 2),
        median_stage_s={
            name: round(statistics.median(s[name] for s in stages), 3) for name in stages[0]
        },
    )


def bench_daemon(prefix: str, poll: float, **environment: str) -> Any:
    """`autopilot run` (a `DaemonProcess`, started) on this bench's store, its state and log
    in a new temporary folder, polling every `poll` seconds."""
    from tests.support import DaemonProcess, free_port

    work = Path(tempfile.mkdtemp(prefix=prefix))
    return DaemonProcess(
        work / "daemon.log",
        {
            "ZENML_CONFIG_PATH": os.environ["ZENML_CONFIG_PATH"],
            "ZENML_REPOSITORY_PATH": os.environ["ZENML_REPOSITORY_PATH"],
            "AUTOPILOT_STATE_DIR": str(work / "state"),
            "AUTOPILOT_POLL_INTERVAL_SECONDS": str(poll),
            "AUTOPILOT_HTTP_PORT": str(free_port()),
            **environment,
        },
    ).start()


def _wait_for_warm_template(port: int, timeout: float = 120) -> float:
    """Seconds until the daemon's `/metrics` shows its worker template warm."""
    from tests.support import http_get_text

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        metrics = http_get_text(f"http://127.0.0.1:{port}/metrics")
        if "autopilot_worker_template_ready 1.0" in metrics:
            return time.monotonic() - started
        time.sleep(0.2)
    raise TimeoutError(f"the worker template was not warm after {timeout}s")


def _chain_stages(
    committed: float,
    launched: dict[str, object],
    trained: dict[str, object],
    inferring: dict[str, object],
    served: dict[str, object],
) -> dict[str, float]:
    """Where one chain's time went, from the daemon's events and the runs' own timestamps."""
    from zenml.client import Client

    training = Client().get_pipeline_run(str(trained["run_id"]))
    inference = Client().get_pipeline_run(str(served["run_id"]))
    assert training.start_time and training.end_time
    assert inference.start_time and inference.end_time
    return {
        "detect": _epoch(launched["timestamp"]) - committed,
        "training_prepare": _utc(training.start_time) - _epoch(launched["timestamp"]),
        "training_run": (training.end_time - training.start_time).total_seconds(),
        "judge_promote_launch": _epoch(inferring["timestamp"]) - _utc(training.end_time),
        "inference_prepare": _utc(inference.start_time) - _epoch(inferring["timestamp"]),
        "inference_run": (inference.end_time - inference.start_time).total_seconds(),
        "settle": _epoch(served["timestamp"]) - _utc(inference.end_time),
    }


def _utc(naive: datetime) -> float:
    """ZenML stores UTC timestamps without a zone."""
    return naive.replace(tzinfo=UTC).timestamp() if naive.tzinfo is None else naive.timestamp()


def _epoch(timestamp: object) -> float:
    return datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp()


BENCHES: dict[str, Callable[[], None]] = {
    "idle": idle,
    "idle-window": lambda: idle(sizes=(1_000,), every=60.0),  # 3 versions in the window
    "idle-models": idle_models,
    "idle-custom": lambda: idle(sizes=(1_000, 100_000), custom=True, transports=("sqlite",)),
    "idle-index": idle_index,
    "latency": latency,
    "chain-large": lambda: latency(samples=5, rows=500_000),
    "backlog": backlog,
    "reconcile": reconcile,
    "memory": memory,
    "automations": automations,
    "automations-scoring": automations_scoring,
    "idle-schedules": lambda: _beside("gates", "idle_schedules"),
    "idle-approvals": lambda: _beside("approvals", "idle_approvals"),
    "burst": lambda: _throughput("burst"),
    "burst-30": lambda: _throughput("burst", counts=(30,)),
    "sustained": lambda: _throughput("sustained"),
    "sustained-chain": lambda: _throughput("sustained", rates=(30, 45), chain=True),
    "footprint": lambda: _throughput("footprint"),
    "candidates": lambda: _throughput("candidates"),
    "fingerprint": lambda: _reload("fingerprint"),
    "rewarm": lambda: _reload("rewarm"),
    "page": lambda: _status_page(),
    "page-build": lambda: _status_page(ticks=0),
}


def echo(value: str) -> str:
    """A launcher that runs nothing (`rewarm`): what is measured is the template, not a run."""
    return value


def _reload(name: str) -> None:
    sys.modules.setdefault("bench", sys.modules[__name__])
    import reload  # bench/reload.py, beside this file

    getattr(reload, name)()


def _beside(module: str, name: str) -> None:
    """A bench of a module beside this file (bench/<module>.py)."""
    sys.modules.setdefault("bench", sys.modules[__name__])  # not a second copy: one store
    getattr(__import__(module), name)()


def _status_page(**arguments: Any) -> None:
    sys.modules.setdefault("bench", sys.modules[__name__])
    import status_page  # bench/status_page.py, beside this file

    status_page.page(**arguments)


def _throughput(name: str, **arguments: Any) -> None:
    sys.modules.setdefault("bench", sys.modules[__name__])  # not a second copy: one store
    import throughput  # bench/throughput.py, beside this file

    getattr(throughput, name)(**arguments)


if __name__ == "__main__":
    BENCHES[sys.argv[1]]()
