"""Helpers for the LLM stages: chat vs completion mode, and the cost-ledger usage of several models."""

from __future__ import annotations

from mlift.llm import CachedLLM, Request
from mlift.prompts import render


def pick_mode(llm: CachedLLM, mode: str) -> str:
    if mode != "auto":
        return mode
    tok = getattr(llm.backend, "tokenizer", None)
    return "chat" if tok is None or getattr(tok, "chat_template", None) else "completion"


def make_request(mode: str, template: str | None, base: str, **values) -> Request:
    """`base` is the packaged prompt stem (instruct / score); the recipe's `prompt` path overrides it."""
    if mode == "chat":
        return Request(messages=[{"role": "user", "content": render(template or f"{base}_chat", **values)}])
    return Request(prompt=render(template or f"{base}_completion", **values) + " ")
