"""A test-only "remote" orchestrator: `submit_pipeline` starts the run's steps in a detached
process (its own session, not a child that dies with the launching worker) and returns at once,
as a remote orchestrator returns once its job is submitted. The run then goes on by itself,
whatever happens to the daemon, and can be stopped through ZenML's own stop API
(`zenml.utils.run_utils.stop_run`), which kills that process.

Everything a run leaves lives under the orchestrator's `root` folder: `<run id>.pid` while its
process lives, `<run id>.log` (its output), `<run id>.env.json` (the step environments). While
a file `hold` exists there, a submitted run waits before its first step: how a test makes a run
slow, and then lets it finish.

This package's `__init__` imports nothing: `runner.py` is started with `python -m`.
"""
