"""How the evaluated model is prompted: which tokenizer (and so which chat template) lm-eval loads, whether the chat
template is applied, and what ends a chat turn.

A fine-tuned model is evaluated the way it was trained: a LoRA adapter or checkpoint directory that holds a tokenizer
supplies it (lm-eval would otherwise load the *base* model's tokenizer and template), and a model trained by
`mlift train` (its output dir holds mlift_recipe.json + manifest.json) gets its chat template applied unless the suite
says otherwise. The template's sha256 and the file it came from go into the eval manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "tokenizer.model")
TRAIN_MARKERS = ("mlift_recipe.json", "manifest.json")  # what `mlift train` writes beside the model/adapter
_PROBE = "MLIFT_END_OF_TURN_PROBE"


def tokenizer_source(model: str, adapter: str | None) -> str:
    """The adapter directory when it carries a tokenizer (what training saved), else the model."""
    if adapter and any((Path(adapter) / f).is_file() for f in TOKENIZER_FILES):
        return str(adapter)
    return model


def trained_by_mlift(path: str | None) -> bool:
    return bool(path) and all((Path(path) / f).is_file() for f in TRAIN_MARKERS)


def load_tokenizer(source: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source)


def template_info(tokenizer: Any, source: str) -> dict[str, Any]:
    """sha256 of the tokenizer's chat template and the file it was read from (None when it has none)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates: lm-eval uses "default"
        template = template.get("default")
    if not template:
        return {"sha256": None, "file": None, "tokenizer": source}
    folder = Path(source)
    jinja = folder / "chat_template.jinja"
    file = str(jinja.resolve()) if jinja.is_file() else (
        str((folder / "tokenizer_config.json").resolve()) if (folder / "tokenizer_config.json").is_file() else source)
    return {"sha256": hashlib.sha256(template.encode("utf-8")).hexdigest(), "file": file, "tokenizer": source}


def decide_chat(setting: bool | Literal["auto"], model: str, adapter: str | None,
                tokenizer: Any) -> tuple[bool, str]:
    """(apply the chat template?, why) for the suite's `apply_chat_template` setting."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if setting is True:
        if not has_template:
            raise ValueError(f"apply_chat_template is true but the tokenizer of {adapter or model} has no chat template")
        return True, "suite: apply_chat_template: true"
    if setting is False:
        return False, "suite: apply_chat_template: false"
    trained = next((p for p in (adapter, model) if trained_by_mlift(p)), None)
    if trained and has_template:
        return True, f"auto: {trained} was trained by mlift train ({' + '.join(TRAIN_MARKERS)}), with a chat template"
    if trained:
        return False, f"auto: {trained} was trained by mlift train but its tokenizer has no chat template"
    return False, "auto: not a model trained by mlift train (completion prompts)"


def end_of_turn(tokenizer: Any) -> str | None:
    """What the template writes after an assistant message (e.g. `</s>`, `<|im_end|>`, `<end_of_turn>`): the chat
    stop sequence. Found by rendering a probe answer, so it follows the template rather than a list of known ones."""
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": _PROBE}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # a template that rejects this conversation: fall back to lm-eval's EOS stop
        return None
    tail = text.split(_PROBE, 1)[1].strip() if _PROBE in text else ""
    return tail.split()[0] if tail else None


def model_context(model: str, max_length: int | None) -> int | None:
    """The context lm-eval will use: the suite's max_length, else the model config's (as lm-eval reads it)."""
    if max_length:
        return max_length
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model)
    except (OSError, ValueError):  # e.g. a GGUF-only directory: lm-eval finds out on its own
        return None
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        if isinstance(getattr(config, attr, None), int):
            return getattr(config, attr)
    return None


def reference_budget(tokenizer: Any, references: list[str], factor: float) -> tuple[int, int]:
    """(max_gen_toks, longest reference in tokens): ceil(factor x the longest reference) in the model's tokenizer."""
    import math

    longest = max((len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in references), default=1)
    return max(1, math.ceil(factor * longest)), longest
