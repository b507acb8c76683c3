"""What a launch pays to know whether the code changed (`service/runtime/fingerprint.py`), and
what the first run after a change pays for a new worker template.

Run through `bench/bench.py` (`fingerprint`, `rewarm`). The projects are file trees written to a
temporary folder; an editable library is installed the way pip leaves one (its `.dist-info` with
`direct_url.json` in a folder on the path), so the fingerprint finds it as it would a real one.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import ROOT, _zenml_ready, report

SHAPES = {
    # name: (.py files in the source root, data files in it, .py files of an editable library)
    "small (examples/diabetes as shipped)": None,
    "realistic (60 modules, 1,000 data files, an editable library of 400 modules)": (
        60,
        1_000,
        400,
    ),
    "large (1,000 modules, 20,000 data files, an editable library of 5,000 modules)": (
        1_000,
        20_000,
        5_000,
    ),
}


def fingerprint(repeats: int = 200) -> None:
    from service.runtime.fingerprint import CodeWatch

    with tempfile.TemporaryDirectory(prefix="bench-code-") as folder:
        for name, shape in SHAPES.items():
            if shape is None:
                roots = [str(ROOT / "examples" / "diabetes")]
            else:
                roots = [str(_project(Path(folder) / f"p{len(roots_seen)}", *shape))]
            roots_seen.append(name)
            watch = CodeWatch(roots)
            started = time.perf_counter()
            first = watch.take()
            cold = time.perf_counter() - started
            samples, cpu, compare = [], [], []
            for _ in range(repeats):
                started, started_cpu = time.perf_counter(), time.process_time()
                again = watch.take()
                samples.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
                started = time.perf_counter()
                assert not first.changes(again)
                compare.append(time.perf_counter() - started)
            report(
                bench="fingerprint",
                shape=name,
                entries=len(first.entries),
                first_ms=round(cold * 1000, 2),
                median_ms=round(statistics.median(samples) * 1000, 2),
                p95_ms=round(sorted(samples)[int(0.95 * (repeats - 1))] * 1000, 2),
                cpu_median_ms=round(statistics.median(cpu) * 1000, 2),
                compare_median_ms=round(statistics.median(compare) * 1000, 3),
            )


roots_seen: list[str] = []


def _project(root: Path, modules: int, data_files: int, library_modules: int) -> Path:
    """A source root of `modules` modules in a few packages beside a data folder, and an
    editable library of `library_modules` modules, installed as pip leaves one."""
    for index in range(modules):
        package = root / ("pipelines", "steps", "utils", "materializers")[index % 4]
        package.mkdir(parents=True, exist_ok=True)
        (package / f"module_{index}.py").write_text(f"VALUE = {index}\n")
    (root / "data").mkdir(parents=True, exist_ok=True)
    for index in range(data_files):
        (root / "data" / f"part-{index}.csv").write_text("a,b\n1,2\n")
    library = root.parent / f"{root.name}-library"
    for index in range(library_modules):
        package = library / "src" / "mylib" / f"sub_{index % 40}"
        package.mkdir(parents=True, exist_ok=True)
        for init in (package.parent / "__init__.py", package / "__init__.py"):
            init.touch()
        (package / f"module_{index}.py").write_text(f"VALUE = {index}\n")
    site = root.parent / f"{root.name}-site" / "mylib-0.1.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: mylib\nVersion: 0.1\n")
    url = {"url": library.as_uri(), "dir_info": {"editable": True}}
    (site / "direct_url.json").write_text(json.dumps(url))
    sys.path.insert(0, str(site.parent))
    return root


def rewarm(runs: int = 3) -> None:
    """A run on a warm template, against the first run after an edit (a new template warms):
    job handed to the executor → its report, the example's pipeline modules warmed."""
    from service.runtime.executor import Executor
    from service.runtime.worker import Job

    _zenml_ready()
    with tempfile.TemporaryDirectory(prefix="bench-rewarm-") as folder:
        root = Path(folder) / "project"
        shutil.copytree(ROOT / "examples" / "diabetes", root)
        executor = Executor(
            max_concurrent=1,
            timeout_seconds=600,
            warm_imports=((str(root), "pipelines.training"),),
            warmup_log=str(Path(folder) / "warmup.log"),
        )
        try:
            executor.warm_up()
            while not executor.template_ready():
                time.sleep(0.1)
            for index in range(runs * 2):
                edited = index % 2 == 1
                if edited:
                    module = root / "steps" / "train.py"
                    module.write_text(module.read_text() + f"\n# edit {index}\n")
                job = Job(
                    f"k{index}",
                    "bench:echo",
                    {"value": "x"},
                    str(Path(folder) / f"{index}.log"),
                )
                started = time.perf_counter()
                executor.launch(job)
                while not executor.poll():
                    executor.wait_for_report(0.05)
                report(
                    bench="rewarm",
                    after_an_edit=edited,
                    job_to_report_s=round(time.perf_counter() - started, 3),
                )
        finally:
            executor.close()
