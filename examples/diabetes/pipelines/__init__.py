"""The pipelines of the diabetes example: feature_engineering, training and inference.

Each lives in its own module (``pipelines.training:training`` ...). Nothing is imported
here, so that ``python -m pipelines.feature_engineering`` runs its module only once.
"""
