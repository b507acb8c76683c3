"""Training pipelines that name a model version in their own code, as ZenML lets a user do, and
the inference pipeline they serve with. Each scores 0.95 on any dataset (`log_metadata`), so
every version it trains clears the daemon's bar.

- `training_into_v1` and `training_into_production`: `@pipeline(model=Model(..., version=...))`.
  Run as written, every run writes into that one version; the daemon's runs must not.
- `training_beside_production`: its own version is new, but one step is configured with the
  production version (`@step(model=Model(..., version="production"))`): ZenML links that step
  and its outputs to production and logs its metadata there. No run configuration can undo a
  step's own model; the launcher must reject the run.

The model names are the automations' (tests/integration/test_training_versions.py).
"""

from __future__ import annotations

from zenml import Model, get_pipeline_context, log_metadata, pipeline, step

V1_MODEL = "pinned_v1"
PRODUCTION_MODEL = "pinned_production"
BESIDE_MODEL = "pinned_beside"
ACCURACY = 0.95


@step(enable_cache=False)
def train(dataset_version_id: str) -> str:
    log_metadata({"accuracy": ACCURACY, "dataset_version_id": dataset_version_id}, infer_model=True)
    return dataset_version_id


@step(enable_cache=False, model=Model(name=BESIDE_MODEL, version="production"))
def compare_with_production(trained: str) -> str:
    log_metadata({"compared_with": trained}, infer_model=True)  # lands in production
    return trained


@pipeline(model=Model(name=V1_MODEL, version="v1"), enable_cache=False)
def training_into_v1(dataset_version_id: str) -> None:
    train(dataset_version_id)


@pipeline(model=Model(name=PRODUCTION_MODEL, version="production"), enable_cache=False)
def training_into_production(dataset_version_id: str) -> None:
    train(dataset_version_id)


@pipeline(model=Model(name=BESIDE_MODEL), enable_cache=False)
def training_beside_production(dataset_version_id: str) -> None:
    compare_with_production(train(dataset_version_id))


@step(enable_cache=False)
def predict(accuracy: float) -> float:
    return accuracy


@pipeline(enable_cache=False)
def serve() -> None:
    """Reads its model version's `accuracy` the way ZenML's docs show, lazily: the pipeline
    context's model resolves the version by its reference only when the step runs."""
    predict(get_pipeline_context().model.run_metadata["accuracy"])
