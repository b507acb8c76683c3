"""Shared test support: waiting helpers and the daemon as a separate process.

The isolated ZenML store every integration test runs on is the `zenml_store` fixture in
tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

PROJECT_ROOT = Path(__file__).resolve().parents[1]
QUIET_ZENML = {
    "ZENML_ANALYTICS_OPT_IN": "false",
    "ZENML_LOGGING_VERBOSITY": "WARN",
    "ZENML_ENABLE_RICH_TRACEBACK": "false",
}

# For the tests' own processes only (ZenML caches the admin's password otherwise, beside the
# daemon's files): the project's processes must set it themselves, so it is never passed on.
NO_CREDENTIALS_ON_DISK = {"DISABLE_CREDENTIALS_DISK_CACHING": "true"}

T = TypeVar("T")


def project_process_environment(*overrides: dict[str, str]) -> dict[str, str]:
    """This process's environment for a process of the project, without the store's
    credentials or the tests' own no-credentials-on-disk setting, plus `overrides`."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ZENML_STORE_") and k not in NO_CREDENTIALS_ON_DISK
    }
    for values in overrides:
        inherited |= values
    return inherited


def files_holding(root: Path, secrets: dict[str, str], skip: tuple[Path, ...] = ()) -> list[str]:
    """Every file under `root` (but those under `skip`) that holds one of `secrets` (what it
    is -> its value), as `path: what`."""
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink() or any(path.is_relative_to(s) for s in skip):
            continue
        data = path.read_bytes()
        found += [f"{path}: {what}" for what, value in secrets.items() if value.encode() in data]
    return found


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_get(url: str, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of a GET, also for error statuses."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def daemon_settings(tmp_path: Path) -> dict[str, str]:
    """Sub-second polling, so the chain takes seconds, not minutes."""
    return {
        "AUTOPILOT_STATE_DIR": str(tmp_path / "state"),
        "AUTOPILOT_POLL_INTERVAL_SECONDS": "0.5",
        "AUTOPILOT_RECONCILE_INTERVAL_SECONDS": "1",
        "AUTOPILOT_RETRY_BACKOFF_SECONDS": "1",
        "AUTOPILOT_START_FROM": "now",
        "AUTOPILOT_LOG_LEVEL": "DEBUG",
        "AUTOPILOT_HTTP_PORT": str(free_port()),
    }


def http_get_text(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


def wait_for(
    condition: Callable[[], T | None],
    timeout: float = 120,
    interval: float = 0.3,
    between: Callable[[], object] | None = None,
    what: str = "condition",
) -> T:
    """Call `between` and poll `condition` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if between is not None:
            between()
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class DaemonProcess:
    """`autopilot run` as a real separate process, its JSON log read back as events."""

    def __init__(self, log_path: Path, environment: dict[str, str]) -> None:
        self.log_path = log_path
        self.environment = environment
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> DaemonProcess:
        # The daemon gets exactly the store credentials the test gives it, never the admin's.
        env = project_process_environment(
            QUIET_ZENML, self.environment, {"AUTOPILOT_LOG_FORMAT": "json"}
        )
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "autopilot"), "run", *args],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.PIPE,
            )
        return self

    def events(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        events = []
        for line in self.log_path.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                events.append({"event": "<not json>", "line": line})
        return events

    def find(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events()
            if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
        ]

    def wait_event(self, event: str, timeout: float = 180, **fields: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"daemon exited with {self.process.returncode}: {self.stderr()}"
                )
            matches = self.find(event, **fields)
            return matches[0] if matches else None

        return wait_for(found, timeout=timeout, what=f"{event} {fields}")

    def stop(self, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)

    def close(self) -> None:
        """Test teardown: never leave a daemon behind, whatever the test did."""
        if self.process is not None and self.process.poll() is None:
            self.kill()

    def stderr(self) -> str:
        assert self.process is not None
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")[-3000:]


@dataclass(frozen=True)
class Received:
    """One request a `Receiver` got, and what it answered (None: it held it open). Its
    `headers` are case-insensitive, as a web framework gives them."""

    headers: Any  # email.message.Message
    body: bytes
    status: int | None
    at: float  # time.time() when it arrived

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook receiver on 127.0.0.1 whose answers a test scripts.

    Until `start()` nothing listens on its port (a connection is refused). Each request is
    recorded; it is answered with the next status of `answers`, then with `default`, or, with
    `hang=True`, held open until `stop()`. `body` is what every answer says.
    """

    def __init__(
        self,
        answers: Iterable[int] = (),
        default: int = 200,
        hang: bool = False,
        body: bytes = b"ok",
    ) -> None:
        self.port = free_port()
        self.answers = list(answers)
        self.default = default
        self.hang = hang
        self.body = body
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrived = time.time()
                if receiver.hang:
                    receiver._record(Received(self.headers, body, None, arrived))
                    receiver._release.wait()
                    return
                with receiver._lock:
                    status = receiver.answers.pop(0) if receiver.answers else receiver.default
                    receiver.requests.append(Received(self.headers, body, status, arrived))
                self.send_response(status)
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def received(self, status: int | str | None = 200) -> list[Received]:
        """The requests answered with `status` (all of them for `"any"`), in arrival order."""
        with self._lock:
            return [r for r in self.requests if status == "any" or r.status == status]

    def events(self, status: int | str | None = 200) -> list[dict[str, Any]]:
        return [r.json for r in self.received(status)]


def readme_verify() -> Callable[..., Any]:
    """`verify` from docs/notifications.md's "Notifications" section, as a receiver pastes
    it: a fresh copy (with its own set of ids seen) at each call."""
    import re

    text = (PROJECT_ROOT / "docs" / "notifications.md").read_text()
    section = text.split("\n## Notifications", 1)[1]
    (snippet,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    return namespace["verify"]  # type: ignore[no-any-return]


class ZenMLServer:
    """A real ZenML server (`uvicorn zenml.zen_server.zen_server_api:app`) on loopback, with
    its own SQLite database and an admin user created headless."""

    ADMIN = "admin"

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.admin_password = f"pw-{os.urandom(6).hex()}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def admin_environment(self) -> dict[str, str]:
        return {
            "ZENML_STORE_URL": self.url,
            "ZENML_STORE_USERNAME": self.ADMIN,
            "ZENML_STORE_PASSWORD": self.admin_password,
        }

    def start(self, timeout: float = 90) -> ZenMLServer:
        self.root.mkdir(parents=True, exist_ok=True)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("ZENML_", "AUTOPILOT_"))}
        env = {
            **clean,
            **QUIET_ZENML,
            "ZENML_CONFIG_PATH": str(self.root / "config"),
            "ZENML_SERVER_AUTO_ACTIVATE": "true",
            "ZENML_DEFAULT_USER_NAME": self.ADMIN,
            "ZENML_DEFAULT_USER_PASSWORD": self.admin_password,
        }
        with open(self.root / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "zenml.zen_server.zen_server_api:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
        wait_for(self.healthy, timeout=timeout, interval=0.5, what="the ZenML server to start")
        return self

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.root / "server.log").read_text()[-2000:]
            raise AssertionError(f"ZenML server exited with {self.process.returncode}: {log}")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class MariaDB:
    """A throw-away MariaDB server (Debian's `mariadb-server`, as in the Compose stand-in for
    MySQL) on loopback, with its own data folder: a MySQL store for ZenML, which compares
    names ignoring case and keeps `created` to the second, as SQLite does not."""

    USER, PASSWORD = "zenml", "zenml-test-pw"

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.socket = root / "mysqld.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"mysql://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60) -> MariaDB:
        import shutil

        server = shutil.which("mariadbd", path=f"/usr/sbin:{os.environ.get('PATH', '')}")
        install = shutil.which("mariadb-install-db")
        if server is None or install is None:
            raise AssertionError(
                "MariaDB is not installed, so a MySQL store cannot be tested: run "
                "`make mariadb` (apt-get install -y mariadb-server)"
            )
        data = self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        as_user = ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root unasked
        subprocess.run(
            [install, "--no-defaults", f"--datadir={data}", *as_user, "--skip-test-db"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        arguments = [
            f"--datadir={data}",
            *as_user,
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.socket}",
            f"--pid-file={self.root / 'mysqld.pid'}",
            "--skip-name-resolve",
        ]
        with open(self.root / "mariadb.log", "ab") as log:
            self.process = subprocess.Popen(
                [server, "--no-defaults", *arguments], stdout=log, stderr=subprocess.STDOUT
            )
        grant = (  # every privilege: one of ZenML's migrations runs SET GLOBAL
            f"CREATE USER '{self.USER}'@'127.0.0.1' IDENTIFIED BY '{self.PASSWORD}'; "
            f"GRANT ALL ON *.* TO '{self.USER}'@'127.0.0.1';"
        )
        wait_for(
            lambda: self._as_root(grant).returncode == 0,
            timeout=timeout,
            interval=0.5,
            what="MariaDB to start",
        )
        return self

    def execute(self, database: str, sql: str) -> str:
        result = self._as_root(sql, database)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def _as_root(self, sql: str, database: str = "") -> subprocess.CompletedProcess[str]:
        if self.process is not None and self.process.poll() is not None:
            log = (self.root / "mariadb.log").read_text()[-2000:]
            raise AssertionError(f"MariaDB exited with {self.process.returncode}: {log}")
        command = ["mariadb", "--no-defaults", "-uroot", f"--socket={self.socket}", "-N", "-B"]
        return subprocess.run(
            [*command, *([database] if database else []), "-e", sql],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def echo_launcher(value: str) -> str:
    """A launcher for executor tests: "runs" nothing and reports `value` as its run id."""
    return value


def sleep_launcher(value: str, seconds: float) -> str:
    """A launcher for executor tests that takes `seconds` before it reports `value`."""
    time.sleep(seconds)
    return value


def launch_failing_before_the_store(**kwargs: Any) -> str:
    """A launcher whose worker fails before its run reaches the store (the store did not
    answer when it started, say): it reports the failure, and no run exists for it."""
    raise ConnectionError("the store did not answer before the run was created")


def launch_killed_before_run_tags(**kwargs: Any) -> str:
    """The daemon's own launcher, in a worker that is SIGKILLed inside ZenML's creation of its
    run: after ZenML committed the run (`initializing`) and linked it to its model version,
    before it attached the run's tags (`SqlZenStore._create_run` does them in that order). The
    window a kill of the daemon (its workers die with it) hit in `make soak`. Only a kill point
    is added: ZenML runs for real up to it."""
    from zenml.zen_stores.schemas import PipelineRunSchema
    from zenml.zen_stores.sql_zen_store import SqlZenStore

    from service.runtime.launch import launch_pipeline

    attach = SqlZenStore._attach_tags_to_resources

    def killed_before_run_tags(self: Any, tags: Any, resources: Any, session: Any) -> None:
        if isinstance(resources, PipelineRunSchema):
            os.kill(os.getpid(), signal.SIGKILL)
        attach(self, tags, resources, session)

    SqlZenStore._attach_tags_to_resources = killed_before_run_tags  # type: ignore[method-assign]
    return launch_pipeline(**kwargs)


def launch_with_check_held(**kwargs: Any) -> str:
    """The daemon's own launcher, holding a completed training run before the launcher checks
    it, until a file `release-check` appears beside the run's configuration: the window in
    which the store shows the run completed, but not yet whether the launcher rejects it."""
    from service.runtime import launch

    release = Path(kwargs["run_config_path"]).parent / "release-check"
    check = launch.check_trained

    def held(run_id: Any, model_name: str) -> None:
        wait_for(release.exists, timeout=300, interval=0.1, what=str(release))
        check(run_id, model_name)

    launch.check_trained = held  # type: ignore[assignment]
    return launch.launch_pipeline(**kwargs)


def launch_then_linger(**kwargs: Any) -> str:
    """The daemon's own launcher, in a worker that takes 4 s after its run completed before it
    reports: a poll in between finds the run complete in the store before the daemon has the
    worker's report (in real runs ZenML's end of a run, the launcher's own checks and the
    worker's exit make that window, shorter)."""
    from service.runtime.launch import launch_pipeline

    run_id = launch_pipeline(**kwargs)
    time.sleep(4)
    return run_id


EXAMPLE_ROOT = PROJECT_ROOT / "examples" / "diabetes"
# rmse on the example's test split (random_state 0): clean data 61.0, noise=1.0 data 74.8.
DIABETES_THRESHOLD = "64"


def diabetes_automation(name: str = "diabetes", **fields: str) -> dict[str, str]:
    """The example project (examples/diabetes) as a named automation, as its README shows."""
    prefix = f"AUTOPILOT_AUTOMATIONS__{name.upper()}__"
    values = {
        "SOURCE_ROOT": str(EXAMPLE_ROOT),
        "DATASET_NAMES": "diabetes_train",
        "MODEL_NAME": "diabetes_regressor",
        "TRAINING_PIPELINE": "pipelines.training:training",
        "TRAINING_CONFIG": "configs/training.yaml",
        "TRAINING_PARAMETERS": json.dumps(
            {
                "train_dataset_id": "{{ dataset.id }}",
                "test_dataset_id": "{{ dataset.run_outputs.diabetes_test }}",
            }
        ),
        "PROMOTION_METRIC": "rmse",
        "PROMOTION_METRIC_ARTIFACT": "diabetes_model",
        "PROMOTION_GOAL": "minimize",
        "PROMOTION_THRESHOLD": DIABETES_THRESHOLD,
        "INFERENCE_PIPELINE": "pipelines.inference:inference",
        "INFERENCE_CONFIG": "configs/inference.yaml",
        "INFERENCE_PARAMETERS": json.dumps(
            {"dataset_id": "{{ dataset.run_outputs.diabetes_test }}"}
        ),
        **fields,
    }
    return {f"{prefix}{field}": value for field, value in values.items()}


def diabetes_evaluation(**fields: str) -> dict[str, str]:
    """The example's evaluation pipeline, on its holdout, as FIELDs of `diabetes_automation`:
    every candidate and the production version scored on the same data."""
    return {
        "EVALUATION_PIPELINE": "pipelines.evaluation:evaluation",
        "EVALUATION_CONFIG": "configs/evaluation.yaml",
        "EVALUATION_PARAMETERS": json.dumps({"dataset_id": "{{ evaluation_dataset.id }}"}),
        "EVALUATION_DATASET_NAME": "diabetes_holdout",
        **fields,
    }


def self_promoting_automation() -> dict[str, str]:
    """The example's training pipeline, told to promote its own model version (a step calling
    `set_stage`) when its rmse clears the same threshold, into a model of its own."""
    parameters = {
        "train_dataset_id": "{{ dataset.id }}",
        "test_dataset_id": "{{ dataset.run_outputs.diabetes_test }}",
        "promote_below_rmse": float(DIABETES_THRESHOLD),
    }
    return diabetes_automation(
        "selfpromo", MODEL_NAME="diabetes_self", TRAINING_PARAMETERS=json.dumps(parameters)
    )


def iris_automation(name: str = "iris") -> dict[str, str]:
    """The bundled iris pipelines as a named automation (every pipeline field left default)."""
    prefix = f"AUTOPILOT_AUTOMATIONS__{name.upper()}__"
    return {
        f"{prefix}DATASET_NAMES": "iris_training_dataset",
        f"{prefix}MODEL_NAME": "iris_classifier",
    }


def publish_diabetes(random_state: int = 0, noise: float = 0.0, approved: bool = True) -> Any:
    """Run the example project's feature engineering in this process, as its user would (its
    own `pipelines` package, imported beside this project's)."""

    def publish() -> Any:
        from pipelines.feature_engineering import publish  # the example's

        return publish(random_state=random_state, noise=noise, approved=approved)

    return _in_example(publish)


def publish_diabetes_holdout(approved: bool = True) -> Any:
    """Publish the example's holdout (`diabetes_holdout`), as `publish_diabetes` does."""

    def publish() -> Any:
        from pipelines.feature_engineering import publish_holdout  # the example's

        return publish_holdout(approved=approved)

    return _in_example(publish)


def train_diabetes_by_hand(dataset: dict[str, str]) -> str:
    """Train the example's model on a published dataset in this process, as its user would by
    hand (its YAML names the version `sgd`), and put that version in production; its id."""
    from zenml.client import Client

    def train() -> Any:
        from pipelines.training import training  # the example's

        configured = training.with_options(
            config_path=str(EXAMPLE_ROOT / "configs" / "training.yaml")
        )
        return configured(train_dataset_id=dataset["train_id"], test_dataset_id=dataset["test_id"])

    run = _in_example(train)
    version = Client().get_pipeline_run(run.id).model_version
    assert version is not None
    Client().update_model_version("diabetes_regressor", version.id, stage="production")
    return str(version.id)


def _in_example(call: Callable[[], Any]) -> Any:
    """Call `call` with the example's packages importable (not this project's `pipelines`)
    and the example as ZenML's source root."""
    from zenml.utils import source_utils

    from service.runtime.sources import imported_from

    previous = source_utils._CUSTOM_SOURCE_ROOT
    with imported_from(str(EXAMPLE_ROOT)):
        source_utils.set_custom_source_root(str(EXAMPLE_ROOT))
        try:
            return call()
        finally:
            source_utils.set_custom_source_root(previous)


SERVING_ROOT = PROJECT_ROOT / "tests" / "projects" / "serving"


def serving(folder: Path, refuse_deploy: str = "", refuse_infer: str = "") -> dict[str, str]:
    """The default automation's deployment and inference replaced by tests/projects/serving's:
    a "model server" in `folder`/endpoint that the inference checks serves its own version
    (so it cannot pass before its deployment); deployment and inference fail for the version
    numbers given (space-separated)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "refuse-deploy").write_text(refuse_deploy)
    (folder / "refuse-infer").write_text(refuse_infer)

    def parameters(refuse: str) -> str:
        endpoint = str(folder / "endpoint")
        pinned = "{{ model_version.id }}"
        return json.dumps({"endpoint": endpoint, "version_id": pinned, "refuse": refuse})

    return {
        "AUTOPILOT_SOURCE_ROOT": str(SERVING_ROOT),
        "AUTOPILOT_DEPLOYMENT_PIPELINE": "serving:deploy",
        "AUTOPILOT_DEPLOYMENT_PARAMETERS": parameters(str(folder / "refuse-deploy")),
        "AUTOPILOT_INFERENCE_PIPELINE": "serving:infer",
        "AUTOPILOT_INFERENCE_PARAMETERS": parameters(str(folder / "refuse-infer")),
    }


SLOW_ROOT = PROJECT_ROOT / "tests" / "projects" / "slow"
ISOLATION_ROOT = PROJECT_ROOT / "tests" / "projects" / "isolation"
PINNED_ROOT = PROJECT_ROOT / "tests" / "projects" / "pinned"
IMPORTS_ROOT = PROJECT_ROOT / "tests" / "projects" / "imports"


def slow_training(seconds: float) -> dict[str, str]:
    """The default automation's training replaced by one that sleeps `seconds` in its step
    (tests/projects/slow), so a run is still going when a test acts on it."""
    parameters = {"dataset_version_id": "{{ dataset.id }}", "seconds": seconds}
    return {
        "AUTOPILOT_SOURCE_ROOT": str(SLOW_ROOT),
        "AUTOPILOT_TRAINING_PIPELINE": "slow_training:slow_training",
        "AUTOPILOT_TRAINING_PARAMETERS": json.dumps(parameters),
    }
