"""The `autopilot` command: `run`, `run --once`, `check-config`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from service.settings import ConfigError, Settings, describe, load_settings

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2

# ZenML's defaults suit an interactive user, not a daemon whose log is its interface.
ZENML_DAEMON_DEFAULTS = {
    "ZENML_LOGGING_VERBOSITY": "WARN",
    "ZENML_ENABLE_RICH_TRACEBACK": "false",
    "ZENML_ANALYTICS_OPT_IN": "false",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        _print_config_error(error)
        return EXIT_CONFIG
    if args.command == "check-config":
        print(json.dumps(describe(settings), indent=2))
        return EXIT_OK
    return run(settings, once=args.once)


def run(settings: Settings, once: bool) -> int:
    for name, value in ZENML_DAEMON_DEFAULTS.items():
        os.environ.setdefault(name, value)
    import zenml  # noqa: F401  - import before configuring logs: it rewires the root logger

    from service.daemon import Daemon
    from service.engine import Autopilot
    from service.executor import Executor
    from service.ledger import Ledger
    from service.logs import capture_zenml_logs, configure, get_logger, register_secret
    from service.store import StoreAdapter

    for secret in ("ZENML_STORE_API_KEY", "ZENML_STORE_PASSWORD"):
        register_secret(os.environ.get(secret))
    configure(settings.log_format, settings.log_level)
    capture_zenml_logs()
    log = get_logger()
    store = StoreAdapter()
    worker_environment = {}
    if settings.stack:
        try:
            worker_environment["ZENML_ACTIVE_STACK_ID"] = store.stack_id(settings.stack)
        except KeyError:
            _print_config_error(ConfigError([f"AUTOPILOT_STACK={settings.stack!r}: no such stack"]))
            return EXIT_CONFIG
    log.info(
        "daemon.configured",
        **store.describe(),
        state_dir=str(settings.state_dir),
        datasets=settings.dataset_names,
        model=settings.model_name,
    )
    ledger = Ledger(settings.ledger_path)
    executor = Executor(settings.max_concurrent_runs, settings.run_timeout_seconds)
    engine = Autopilot(settings, ledger, store, executor, worker_environment)
    engine.start()
    daemon = Daemon(engine, settings.poll_interval_seconds, settings.shutdown_grace_seconds)
    try:
        if once:
            return daemon.run_once()
        daemon.run_forever()
        return EXIT_OK
    finally:
        ledger.close()


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
    commands.add_parser("check-config", help="print the effective configuration, or exit 2")
    return parser


if __name__ == "__main__":
    sys.exit(main())
