"""ZenML Autopilot: watch a ZenML store, train on selected datasets, promote, infer."""
