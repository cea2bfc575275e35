"""Evaluation through lm-eval: the suite, the tasks of each benchmark family, the model, metrics and per-item scores."""
