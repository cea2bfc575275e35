"""Prompt templates: Jinja files shipped in mlift/prompts/, each overridable by a path in the recipe."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import jinja2

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


@cache
def load_template(name_or_path: str) -> jinja2.Template:
    """`translate_chat` -> the packaged mlift/prompts/translate_chat.jinja; anything with a / or .jinja -> that file."""
    if "/" in name_or_path or name_or_path.endswith(".jinja"):
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"prompt template not found: {path}")
        return _ENV.from_string(path.read_text(encoding="utf-8"))
    res = resources.files("mlift").joinpath(f"prompts/{name_or_path}.jinja")
    if not res.is_file():
        raise FileNotFoundError(f"no packaged prompt named {name_or_path!r} (mlift/prompts/{name_or_path}.jinja)")
    return _ENV.from_string(res.read_text(encoding="utf-8"))


def render(name_or_path: str, **values) -> str:
    return load_template(name_or_path).render(**values).strip("\n")
