"""Prompts of the LLM stages (instruct, score) as chat or completion requests."""

from __future__ import annotations

from mlift.llm import Request
from mlift.prompts import render


def make_request(mode: str, template: str | None, base: str, **values) -> Request:
    """`base` is the packaged prompt stem (instruct / score); the recipe's `prompt` path overrides it."""
    if mode == "chat":
        return Request(messages=[{"role": "user", "content": render(template or f"{base}_chat", **values)}])
    # no trailing space: BPE vocabularies write a word with its leading space (" Write"), so a prompt ending in " "
    # would force the model to continue from a split token it rarely saw in training
    return Request(prompt=render(template or f"{base}_completion", **values))
