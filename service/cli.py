"""The `autopilot` command: `run`, `run --once`, `check-config`, and the operator commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from service.credentials import keep_credentials_off_disk
from service.redact import redact_all, redact_text, redact_url, register_secret, url_password
from service.settings import ConfigError, Settings, describe, load_settings, read_api_key

if TYPE_CHECKING:
    from service.daemon import Daemon
    from service.http import HealthServer
    from service.ledger import Action, Ledger
    from service.lock import StateDirLock
    from service.notify.outbox import Outbox
    from service.notify.sender import Sender
    from service.observe.board import StatusBoard
    from service.runtime.template import WorkerTemplate
    from service.store import StoreAdapter

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
SENDER_DRAIN_SECONDS = 5.0  # at exit, for notifications due now; the rest go after a restart

# ZenML's defaults suit an interactive user, not a daemon whose log is its interface.
ZENML_DAEMON_DEFAULTS = {
    "ZENML_LOGGING_VERBOSITY": "WARN",
    "ZENML_ENABLE_RICH_TRACEBACK": "false",
    "ZENML_ANALYTICS_OPT_IN": "false",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "bootstrap":  # runs with the admin's ZenML settings, not the daemon's
        return run_bootstrap(args.key_file, args.account)
    try:
        settings = load_settings()
    except ConfigError as error:
        _print_config_error(error)
        return EXIT_CONFIG
    if args.command == "check-config":
        return run_check_config(settings, offline=args.offline)
    if args.command in ("status", "explain", "replay", "skip"):
        return run_operation(settings, args)
    if args.command in ("approve", "reject", "rollback"):
        return run_review(settings, args)
    if args.command == "rename-automation":
        return run_rename(settings, args.old, args.new)
    return run(settings, once=args.once, dry_run=args.dry_run)


def run_operation(settings: Settings, args: argparse.Namespace) -> int:
    """`status`, `explain`, `replay`, `skip`: the ledger, plus the store for `status`'s lag."""
    from service import operations
    from service.ledger import Ledger
    from service.logs import configure, get_logger

    if not settings.ledger_path.exists():
        print(
            f"autopilot: no ledger at {settings.ledger_path} (AUTOPILOT_STATE_DIR)", file=sys.stderr
        )
        return EXIT_FAILED
    configure("json", settings.log_level)
    _zenml_defaults(settings)  # `status` asks the store
    _register_store_secrets()
    ledger = Ledger(settings.ledger_path)
    try:
        if args.command == "status":
            result = operations.status(
                ledger,
                None if args.offline else _in_store(settings, ledger),
                timeouts={a.name: a.approval_timeout_seconds for a in settings.automations},
            )
        elif args.command == "explain":
            result = operations.explain(ledger, args.id, args.version)
        else:
            for action in _change(ledger, args):
                event = "action.replayed" if args.command == "replay" else "action.skipped"
                get_logger().info(event, key=action.key, state=action.state.value, by="operator")
            return EXIT_OK
    except operations.OperationError as error:
        print(f"autopilot {args.command}: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        ledger.close()
    # Also what a ledger written before errors were redacted holds.
    print(json.dumps(redact_all(result), indent=2, default=str))
    return EXIT_OK


def run_review(settings: Settings, args: argparse.Namespace) -> int:
    """`approve`, `reject`, `rollback` (`service/review.py`): the store only, neither the
    ledger nor the state dir's lock, so they work from any machine or container that reaches
    the store, while the daemon runs or not. Prints what was done (JSON); exit 2 when refused
    (with why), 1 when the store cannot be reached."""
    from zenml.exceptions import AuthorizationException

    from service import review
    from service.logs import stdout_held

    _zenml_defaults(settings)  # the API key file, and no credential cached on disk
    _register_store_secrets()
    by = args.by or _who()
    try:
        with stdout_held():  # stdout is the outcome, one JSON document
            store = _connect()
            if args.command == "approve":
                result = review.approve(store, args.model, args.version, by, args.note)
            elif args.command == "reject":
                result = review.reject(store, args.model, args.version, by, args.note)
            else:
                result = review.rollback(
                    store, args.model, args.to, by, args.reason, dry_run=args.dry_run
                )
    except review.Refused as refused:
        _show_held_output()
        print(redact_text(f"autopilot {args.command}: {refused}"), file=sys.stderr)
        return EXIT_CONFIG
    except AuthorizationException as error:
        _show_held_output()
        print(
            redact_text(f"autopilot {args.command}: the store rejected the credentials: {error}"),
            file=sys.stderr,
        )
        return EXIT_CONFIG
    except Exception as error:
        _show_held_output()
        print(
            redact_text(f"autopilot {args.command}: failed, nothing more was done: {error}")[:500],
            file=sys.stderr,
        )
        return EXIT_FAILED
    _show_held_output()
    print(json.dumps(redact_all(result), indent=2, default=str))
    return EXIT_OK


def _who() -> str | None:
    """Who runs a command, when `--by` does not say: the user of this process."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def run_rename(settings: Settings, old: str, new: str) -> int:
    """`rename-automation OLD NEW`: while no daemon runs (it holds the state dir as `run`
    does), carry OLD's streams, judgements and actions over to NEW in one transaction."""
    from service import operations
    from service.ledger import Ledger
    from service.lock import StateDirBusy, StateDirLock
    from service.logs import configure, get_logger

    if not settings.ledger_path.exists():
        print(
            f"autopilot: no ledger at {settings.ledger_path} (AUTOPILOT_STATE_DIR)", file=sys.stderr
        )
        return EXIT_FAILED
    try:
        lock = StateDirLock(settings.state_dir)
    except StateDirBusy as busy:
        print(f"autopilot rename-automation: {busy}", file=sys.stderr)
        return EXIT_CONFIG
    configure("json", settings.log_level)
    ledger = Ledger(settings.ledger_path)
    try:
        configured = {automation.name for automation in settings.automations}
        renamed = operations.rename_automation(ledger, old, new, configured)
    except operations.OperationError as error:
        print(f"autopilot rename-automation: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        ledger.close()
        lock.release()
    get_logger().info("automation.renamed", **renamed.log_fields(), by="operator")
    return EXIT_OK


def _change(ledger: Ledger, args: argparse.Namespace) -> list[Action]:
    """`replay KEY`, `replay --automation NAME --failed`, `skip KEY`: the actions changed."""
    from service import operations

    if args.command == "replay" and args.automation is not None:
        if not args.failed or args.key is not None:
            raise operations.OperationError("--automation needs --failed, and no key")
        replayed = operations.replay_failed(ledger, args.automation)
        if not replayed:
            print(f"autopilot replay: {args.automation} has no failed action", file=sys.stderr)
        return replayed
    if args.key is None:
        raise operations.OperationError("give an action key (or --automation NAME --failed)")
    change = operations.replay if args.command == "replay" else operations.skip
    return [change(ledger, args.key)]


def run_check_config(settings: Settings, offline: bool = False) -> int:
    """Print the effective configuration with each automation's pipelines imported and
    checked, or exit 2 naming every bad variable. Unless `offline`, also ask the store which
    watched names it does not hold (warnings: they may be created later)."""
    _zenml_defaults(settings)  # before the check: it may connect (AUTOPILOT_STACK)
    from service.logs import stdout_held
    from service.runtime.checks import check_pipelines, training_warnings

    with stdout_held():  # stdout is the configuration, one JSON document
        problems, resolved = check_pipelines(settings.automations, settings.stack)
    _show_held_output()
    if problems:
        _print_config_error(ConfigError(problems))
        return EXIT_CONFIG
    warnings = training_warnings(settings.automations)
    for warning in warnings:
        print(f"autopilot: warning: {warning.message}", file=sys.stderr)
    shown = describe(settings)
    shown["pipelines"] = resolved
    shown["warnings"] = [warning.message for warning in warnings]
    if not offline:
        shown["names_not_in_store"] = _names_not_in_store(settings)
    print(json.dumps(shown, indent=2, default=str))
    return EXIT_OK


def _names_not_in_store(settings: Settings) -> list[str] | str:
    """What the store says of the watched names (one line each, also on stderr), or why it
    could not be asked."""
    from service.core.names import check_watched

    _zenml_defaults(settings)
    _zenml_console_quiet()
    try:
        store = _connect()
        found = check_watched(settings.automations, store.artifact_names(), store.model_names())
    except Exception as error:
        note = redact_text(f"store not reachable, names not checked: {error}")[:300]
        print(f"autopilot check-config: {note}", file=sys.stderr)
        return note
    for unknown in found:
        print(f"autopilot check-config: warning: {unknown.message}", file=sys.stderr)
    return [unknown.message for unknown in found]


def _zenml_console_quiet() -> None:
    """ZenML's console handler writes to stdout, where `check-config` prints one JSON document,
    and logs a whole traceback when the store cannot be reached: `check-config` says what
    matters itself, on stderr."""
    import logging

    import zenml  # noqa: F401  - sets its handler up

    for handler in logging.getLogger().handlers:
        if type(handler).__name__ == "ZenMLConsoleHandler" and isinstance(
            handler, logging.StreamHandler
        ):
            handler.setStream(sys.stderr)
            handler.setLevel(logging.CRITICAL)


def _zenml_defaults(settings: Settings | None = None) -> None:
    """ZenML's environment for this process and every process it starts: the daemon's
    defaults, the API key from its file, and no credential cached on disk."""
    for name, value in ZENML_DAEMON_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if settings is not None and settings.zenml_api_key_file is not None:
        os.environ["ZENML_STORE_API_KEY"] = read_api_key(settings.zenml_api_key_file)
    keep_credentials_off_disk()


def _register_store_secrets() -> None:
    """The store's credentials in the environment, masked wherever they would be shown."""
    for name in ("ZENML_STORE_API_KEY", "ZENML_STORE_PASSWORD"):
        register_secret(os.environ.get(name))
    register_secret(url_password(os.environ.get("ZENML_STORE_URL")))


def _in_store(settings: Settings, ledger: Ledger) -> dict[str, list[str]] | None:
    """Per dataset and model stream, the ids of the versions in the store at or above its
    floor (the ones `status` checks against the ledger), or None when the store does not
    answer."""
    from service.core.automation import DatasetRole
    from service.core.polling import parse_floor
    from service.logs import stdout_held
    from service.stages.context import DATASET, MODEL

    try:
        with stdout_held():  # stdout is the status, one JSON document
            store = _connect()
            found = {}
            for automation in settings.automations:
                streams = [
                    (automation.dataset_stream(n, role), DATASET, n)
                    for role in DatasetRole
                    for n in automation.dataset_names_in(role)
                ]
                streams.append((automation.model_stream, MODEL, automation.model_name))
                for stream, kind, name in streams:
                    floor = parse_floor(ledger.get_cursor(stream))
                    if not isinstance(floor, int):  # a number: not upgraded by the daemon yet
                        found[stream] = store.version_ids_since(kind, name, floor)
    except Exception as error:
        _show_held_output()
        print(
            redact_text(f"autopilot status: store not reachable, lag unknown: {error}")[:300],
            file=sys.stderr,
        )
        return None
    _show_held_output()
    return found


def _show_held_output() -> None:
    """What ZenML printed while stdout was held, on stderr for a person to read."""
    from service.logs import take_held_lines

    for line in take_held_lines():
        print(line, file=sys.stderr)


def run_bootstrap(key_file: Path, account: str) -> int:
    _zenml_defaults()
    from zenml.exceptions import AuthorizationException

    from service.bootstrap import UnsafeKeyFile, bootstrap

    try:
        outcome = bootstrap(key_file, account)
    except UnsafeKeyFile as error:
        print(f"autopilot bootstrap: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except AuthorizationException as error:
        print(
            redact_text(
                f"autopilot bootstrap: the ZenML server rejected the admin credentials: {error}"
            ),
            file=sys.stderr,
        )
        return EXIT_CONFIG
    print(
        json.dumps(
            {
                "event": "bootstrap.done",
                "outcome": outcome,
                "account": account,
                "key_file": str(key_file),
            }
        )
    )
    return EXIT_OK


def run(settings: Settings, once: bool, dry_run: bool = False) -> int:
    """`run` and `run --once` hold the state dir for as long as they run (one daemon per
    ledger); a dry run works on a scratch copy and needs no lock."""
    import signal

    from service.lock import StateDirBusy, StateDirLock

    # A stop asked for during start-up (seconds of imports) ends it cleanly, before anything
    # started; the daemon's own handlers replace this one once it can stop gracefully.
    signal.signal(signal.SIGTERM, _stop_while_starting)

    try:
        lock = None if dry_run else StateDirLock(settings.state_dir)
    except StateDirBusy as busy:
        print(f"autopilot: {busy}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as error:
        where = f"AUTOPILOT_STATE_DIR={str(settings.state_dir)!r}"
        _print_config_error(ConfigError([f"{where}: cannot lock it: {error.strerror}"]))
        return EXIT_CONFIG
    try:
        return _run(settings, once, dry_run, lock)
    finally:
        if lock is not None:
            lock.release()


def _stop_while_starting(signum: int, _: object) -> None:
    raise SystemExit(EXIT_OK)


def _run(settings: Settings, once: bool, dry_run: bool, lock: StateDirLock | None) -> int:
    _zenml_defaults(settings)  # before any child is started: they inherit it
    from service.logs import stdout_held
    from service.runtime.checks import PipelineCheck

    # What ZenML prints while it is imported, here and in the check child, would break the log's
    # one JSON event per line: held, and logged as `zenml.log` events once the log is set up.
    with stdout_held():
        # In a child process, while this one imports; on the stack the runs get.
        check = PipelineCheck(settings.automations, settings.stack)
        # zenml before the log is configured (it rewires the root logger); the daemon's own
        # modules before the template is forked from this process (their pages are shared).
        import zenml  # noqa: F401

        import service.daemon
        import service.engine
        import service.store  # noqa: F401

        problems = check.problems()
    if problems:
        _show_held_output()
        _print_config_error(ConfigError(problems))
        return EXIT_CONFIG
    template = None if dry_run else _fork_worker_template(lock)
    try:
        return _start(settings, once, dry_run, template)
    finally:
        if template is not None:
            template.stop()  # the executor stopped it already, unless it never got that far


def _start(settings: Settings, once: bool, dry_run: bool, template: WorkerTemplate | None) -> int:
    from zenml.exceptions import AuthorizationException

    from service import metrics
    from service.daemon import Daemon
    from service.faults import pausepoint
    from service.logs import capture_zenml_logs, configure, get_logger
    from service.observe.board import StatusBoard

    store_url = os.environ.get("ZENML_STORE_URL")
    _register_store_secrets()
    register_secret(settings.webhook_secret())
    for url in settings.notify_webhook_urls:  # a Slack or Discord webhook URL is a credential
        register_secret(url)
    configure(settings.log_format, settings.log_level)
    capture_zenml_logs()
    daemon = Daemon(
        settings.poll_interval_seconds,
        settings.shutdown_grace_seconds,
        store_url=redact_url(store_url or "<embedded local store>"),
    )
    pausepoint("before_signal_handlers")
    daemon.install_signal_handlers()
    board = StatusBoard(settings.automations, settings.ledger_path, daemon)
    metrics.initialise(a.name for a in settings.automations)
    try:
        health = None if once else _start_health_server(settings, daemon, board)
    except OSError as error:
        bad = f"{settings.http_host}:{settings.http_port}: cannot listen: {error.strerror}"
        _print_config_error(ConfigError([f"AUTOPILOT_HTTP_HOST/AUTOPILOT_HTTP_PORT={bad}"]))
        return EXIT_CONFIG
    try:
        return _run_daemon(settings, daemon, once, dry_run, template, board)
    except AuthorizationException as error:
        get_logger().error("store.credentials_rejected", error=str(error)[:500])
        print(
            "autopilot: the ZenML store rejected the credentials (ZENML_STORE_API_KEY, "
            "AUTOPILOT_ZENML_API_KEY_FILE or ZENML_STORE_USERNAME/PASSWORD): "
            f"{redact_text(str(error))[:300]}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    finally:
        if health is not None:
            health.stop()


def _fork_worker_template(lock: StateDirLock | None) -> WorkerTemplate:
    """Fork the worker template now: the daemon has imported what it needs (shared with every
    worker) and has neither a store connection nor a second thread yet."""
    from service.runtime.template import WorkerTemplate

    fd = None if lock is None else lock.fileno()
    return WorkerTemplate.start(fork=True, inherited_fds=() if fd is None else (fd,))


def _run_daemon(
    settings: Settings,
    daemon: Daemon,
    once: bool,
    dry_run: bool,
    template: WorkerTemplate | None,
    board: StatusBoard,
) -> int:
    import structlog

    from service.dry_run import scratch_settings
    from service.files import secure_state_dir
    from service.ledger import Ledger
    from service.logs import get_logger
    from service.notify.build import make_outbox, make_sender
    from service.notify.outage import StoreOutage
    from service.notify.zenml_stack import stack_alerter

    if dry_run:
        structlog.contextvars.bind_contextvars(dry_run=True)
        settings = scratch_settings(settings)
        board.ledger_path = settings.ledger_path  # the page shows what the dry run decides
    tightened = secure_state_dir(settings.state_dir, settings.ledger_path)
    if tightened:  # left readable by others (an earlier version, another tool, a umask)
        get_logger().warning("state.permissions_tightened", paths=tightened)
    # The ledger before the store: it is local, so a store outage at start-up is recorded
    # (and notified) too, and the sender delivers while the store is away.
    ledger = Ledger(settings.ledger_path)
    outbox = make_outbox(ledger, settings)
    daemon.outage = StoreOutage(
        ledger, outbox, settings.notify_outage_after_seconds, daemon.store_url or ""
    )
    sender = None if dry_run else make_sender(settings, lambda: stack_alerter(settings.stack))
    if sender is not None:
        sender.start()
    try:
        return _serve(settings, daemon, once, dry_run, template, ledger, outbox, sender, board)
    finally:
        if sender is not None:
            sender.stop(drain_seconds=min(SENDER_DRAIN_SECONDS, settings.notify_timeout_seconds))
        ledger.close()


def _serve(
    settings: Settings,
    daemon: Daemon,
    once: bool,
    dry_run: bool,
    template: WorkerTemplate | None,
    ledger: Ledger,
    outbox: Outbox,
    sender: Sender | None,
    board: StatusBoard,
) -> int:
    from service.dry_run import NoLaunchExecutor
    from service.engine import Autopilot, make_executor
    from service.logs import get_logger
    from service.notify.events import DashboardLinks
    from service.runtime.checks import training_warnings

    store = daemon.until_store_answers(lambda: _connect(read_only=dry_run), "start-up")
    if store is None:
        return EXIT_OK  # stopped while waiting for the store
    board.store = store.describe()
    board.links = _dashboard_links(store)
    outbox.links = DashboardLinks(**board.links)
    environment = {}
    if settings.stack:
        try:
            environment["ZENML_ACTIVE_STACK_ID"] = store.stack_id(settings.stack)
        except KeyError:
            _print_config_error(ConfigError([f"AUTOPILOT_STACK={settings.stack!r}: no such stack"]))
            return EXIT_CONFIG
    problem = _notify_problem(settings, outbox)
    if problem:
        _print_config_error(ConfigError([problem]))
        return EXIT_CONFIG
    if sender is not None:
        sender.store_connected()  # the alerter's thread may use the ZenML client from now on
    get_logger().info(
        "daemon.configured",
        **store.describe(),
        state_dir=str(settings.state_dir),
        automations={
            a.name: {
                "datasets": list(a.dataset_names),
                "scoring_datasets": list(a.scoring_dataset_names),
                "model": a.model_name,
                "training_pipeline": a.training.reference,
                "inference_pipeline": a.inference.reference,
                "evaluation_pipeline": a.evaluation.pipeline.reference if a.evaluation else None,
            }
            for a in settings.automations
        },
        notify_destinations=list(outbox.destinations),
    )
    for warning in training_warnings(settings.automations):
        get_logger().warning(
            "config.training_without_dataset",
            automation=warning.automation,
            variable=warning.variable,
            detail=warning.message,
        )
    if settings.sqlite_wal and not dry_run:
        _use_wal_journal(store)
    executor = (
        NoLaunchExecutor(settings.max_concurrent_runs)
        if dry_run
        else make_executor(settings, environment, template)
    )
    try:
        daemon.engine = Autopilot(settings, ledger, store, executor, outbox)
        daemon.until_store_answers(daemon.engine.start, "recovery")
        if daemon.stopping:
            return EXIT_OK
        if once:
            return daemon.run_once(wait=not dry_run)
        daemon.run_forever()
        return EXIT_OK
    finally:
        executor.close()


def _dashboard_links(store: StoreAdapter) -> dict[str, str]:
    """Where the ZenML dashboard shows a run (and, on ZenML Pro, a model version), for the
    status page and notifications; none if the store cannot say (a convenience, not a need)."""
    from service.errors import describe_error
    from service.logs import get_logger

    try:
        return store.dashboard_links()
    except Exception as error:
        get_logger().warning("http.dashboard_links_unavailable", error=describe_error(error))
        return {}


def _notify_problem(settings: Settings, outbox: Outbox) -> str | None:
    """With the store answering: the stack's alerter when notifications go to it (none: a
    configuration error)."""
    from service.notify.sender import NoAlerter
    from service.notify.zenml_stack import stack_alerter

    if not settings.notify_alerter:
        return None
    try:
        stack_alerter(settings.stack)
    except NoAlerter as error:
        return f"AUTOPILOT_NOTIFY_ALERTER=true: {error}"
    return None


def _use_wal_journal(store: StoreAdapter) -> None:
    """A local SQLite store in write-ahead logging; a store that refuses is used as it is."""
    from service.errors import describe_error
    from service.logs import get_logger

    try:
        modes = store.use_wal_journal()
    except Exception as error:  # busy, read-only file: slower, never wrong
        get_logger().warning("store.journal_mode_unchanged", error=describe_error(error))
        return
    if modes is not None and modes[0] != modes[1]:
        get_logger().info("store.journal_mode_changed", before=modes[0], after=modes[1])


def _connect(read_only: bool = False) -> StoreAdapter:
    from service.dry_run import ReadOnlyStore
    from service.store import StoreAdapter

    store = ReadOnlyStore() if read_only else StoreAdapter()
    store.ping()
    return store


def _start_health_server(
    settings: Settings, daemon: Daemon, board: StatusBoard
) -> HealthServer | None:
    from service.http import HealthServer
    from service.logs import get_logger

    if settings.http_port == 0:
        return None
    server = HealthServer(daemon, settings.http_host, settings.http_port, board).start()
    host, port = server.address
    get_logger().info(
        "http.listening",
        host=host,
        port=port,
        paths=["/", "/api/status", "/healthz", "/readyz", "/metrics"],
    )
    return server


def _print_config_error(error: ConfigError) -> None:
    print("autopilot: invalid configuration:", file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autopilot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run the daemon")
    run_parser.add_argument(
        "--once", action="store_true", help="one tick; wait for what it launched; exit 0 if all ok"
    )
    run_parser.add_argument(
        "--dry-run",
        action="store_true",
        help="log what it would launch or promote; launch and change nothing",
    )
    check = commands.add_parser("check-config", help="print the effective configuration, or exit 2")
    check.add_argument(
        "--offline", action="store_true", help="do not ask the store which watched names it knows"
    )
    status = commands.add_parser("status", help="cursors and lag, open actions, failures")
    status.add_argument("--offline", action="store_true", help="read the ledger only")
    explain = commands.add_parser("explain", help="why a dataset/model version was acted on")
    explain.add_argument("id", help="artifact or model version id, or a model's name")
    explain.add_argument(
        "version", nargs="?", help="with a model's name: its version number (MODEL VERSION)"
    )
    for name, text in (
        ("approve", "put a version awaiting approval in production"),
        ("reject", "archive a version awaiting approval"),
    ):
        verdict = commands.add_parser(name, help=text)
        verdict.add_argument("model", help="the ZenML Model")
        verdict.add_argument("version", help="its version: number, name or id")
        verdict.add_argument("--by", help="who decides (default: this process's user)")
        verdict.add_argument("--note", help="why, recorded on the version")
    rollback = commands.add_parser(
        "rollback", help="put back in production the version that was production before"
    )
    rollback.add_argument("model", help="the ZenML Model")
    rollback.add_argument("--to", help="this version instead (number, name or id)")
    rollback.add_argument("--by", help="who rolls back (default: this process's user)")
    rollback.add_argument("--reason", help="why, recorded on both versions")
    rollback.add_argument(
        "--dry-run", action="store_true", help="say what it would do; change nothing"
    )
    for name, text in (
        ("replay", "run a failed or skipped action again"),
        ("skip", "mark an action as not to be done"),
    ):
        command = commands.add_parser(name, help=text)
        key_help = "action key, e.g. train:<dataset version id>"
        command.add_argument("key", nargs="?" if name == "replay" else None, help=key_help)
    replay = commands.choices["replay"]
    replay.add_argument("--automation", help="with --failed: every failed action of it")
    replay.add_argument("--failed", action="store_true", help="with --automation")
    rename = commands.add_parser(
        "rename-automation",
        help="carry an automation's streams and open actions over to its new name (daemon stopped)",
    )
    rename.add_argument("old", help="the name the ledger knows it by")
    rename.add_argument("new", help="its name in the configuration now")
    boot = commands.add_parser(
        "bootstrap", help="create the daemon's service account and API key on a ZenML server"
    )
    boot.add_argument("--key-file", type=Path, required=True, help="where to write the key")
    boot.add_argument("--account", default="autopilot", help="service account name")
    return parser


if __name__ == "__main__":
    sys.exit(main())
