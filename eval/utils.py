"""lm-eval hooks for mlift tasks (`!function utils.<name>`); the code lives in mlift.eval_hooks."""

from mlift.eval_hooks import *  # noqa: F401,F403
