"""Running pipelines: worker processes, their warm-up, and importing users' pipelines."""
