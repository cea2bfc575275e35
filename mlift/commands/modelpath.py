"""Model and adapter arguments checked before anything loads: a local path that does not exist is reported as such
(not as transformers' "Repo id must be in the form..."), and a LoRA adapter directory given as the model says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlift.recipe import RecipeError


def looks_local(value: str) -> bool:
    """A hub id is `name` or `owner/name`; anything else, or a path whose first folder exists here, is local."""
    if value.startswith(("/", "./", "../", "~", ".\\")) or value.count("/") > 1 or value.endswith("/"):
        return True
    return "/" in value and Path(value.split("/", 1)[0]).is_dir()


def check_model(value: str, what: str = "--model", adapter_ok: bool = False, gguf_file: str | None = None) -> None:
    """RecipeError when `value` is a missing local path, a file, or a PEFT adapter directory (give it as adapter;
    `adapter_ok`: transformers itself loads an adapter directory with its base model). With `gguf_file` the directory
    holds that GGUF file instead of config.json (transformers builds the config from its metadata)."""
    if not value or not value.strip():
        raise RecipeError(f"{what}: empty model name")
    path = Path(value).expanduser()
    if not path.exists():
        if looks_local(value):
            raise RecipeError(f"{what}: {value}: no such local directory (not an HF hub id either: those are "
                              "owner/name)")
        return
    if not path.is_dir():
        raise RecipeError(f"{what}: {value} is a file; give the model's directory (with config.json) or a hub id")
    if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        if adapter_ok:
            return
        base = _adapter_base(path)
        raise RecipeError(f"{what}: {value} is a LoRA/PEFT adapter directory (adapter_config.json), not a model; give "
                          f"its base model as the model and this directory as the adapter" +
                          (f" (base: {base})" if base else ""))
    if gguf_file:
        if not (path / gguf_file).is_file():
            raise RecipeError(f"{what}: {value} holds no {gguf_file} (gguf_file)")
        return
    if not (path / "config.json").is_file():
        raise RecipeError(f"{what}: {value} holds no config.json: not a model directory")


def check_adapter(value: str | None, what: str = "--adapter") -> None:
    """RecipeError unless `value` (when given) is a local PEFT adapter directory."""
    if value is None:
        return
    path = Path(value).expanduser()
    if not path.is_dir():
        raise RecipeError(f"{what}: {value}: no such directory" if not path.exists() else f"{what}: {value} is a file; "
                          "give the adapter's directory")
    if not (path / "adapter_config.json").is_file():
        hint = " (it is a full model: give it as the model, without an adapter)" if (path / "config.json").is_file() \
            else ""
        raise RecipeError(f"{what}: {value} holds no adapter_config.json: not a PEFT adapter directory{hint}")


def _adapter_base(path: Path) -> str | None:
    try:
        return json.loads((path / "adapter_config.json").read_text(encoding="utf-8-sig")).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None


def check_llm_models(cfg: Any, source: str, prefix: str = "") -> None:
    """Every local model / adapter an LLM section of a loaded recipe names (translator.llm.model, instruct.llm.model,
    ...), checked before any model loads; the error names the recipe and the key."""
    from pydantic import BaseModel

    if isinstance(cfg, list):
        for i, item in enumerate(cfg):
            check_llm_models(item, source, f"{prefix}{i}.")
        return
    if not isinstance(cfg, BaseModel):
        return
    if getattr(cfg, "backend", None) in ("transformers", "vllm") and isinstance(getattr(cfg, "model", None), str):
        try:
            check_model(cfg.model, f"{prefix}model", adapter_ok=True, gguf_file=getattr(cfg, "gguf_file", None))
            check_adapter(getattr(cfg, "adapter", None), f"{prefix}adapter")
        except RecipeError as exc:
            raise RecipeError(f"{source}: {exc}") from None
    for name in type(cfg).model_fields:
        check_llm_models(getattr(cfg, name), source, f"{prefix}{name}.")
