"""Run a pipeline in-process on the active stack and return the id of its run.

The bundled launchers (used by the demo producer and by hand) share the daemon's own helpers,
so that they agree on what the service relies on: a launcher returns the run id of a run that
did not fail, and otherwise raises a ``RuntimeError`` whose message says which step failed and
why.
"""

from service.runtime.launch import PipelineRunFailed, default_run_name, run_pipeline

__all__ = ["PipelineRunFailed", "default_run_name", "run_pipeline"]
