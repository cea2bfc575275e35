"""Chat formatting for SFT: a default template for tokenizers that have none (base models), with `{% generation %}`
markers so TRL's `assistant_only_loss` can mask everything but the assistant turns, and the EOS token inside the
assistant span so a base model learns to stop (trl#1623, #2059). A model's own template without markers is masked
by mlift.train.chat_masks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# BOS once (base models were pretrained with it), role headers as plain text (no new tokens, so no embedding resize),
# assistant content + EOS inside the generation span: the EOS is trained, the headers and user/system turns are not.
DEFAULT_CHAT_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")


def has_generation_markers(template: str | None) -> bool:
    return bool(template) and _GENERATION.search(template) is not None


def resolve_chat_template(setting: str | None, tokenizer: Any) -> tuple[str | None, str]:
    """The template to use and where it came from.

    setting: None -> the tokenizer's own template, or mlift's default when it has none; "default" -> mlift's default;
    "tokenizer" -> the tokenizer's own (error if none); a path to a .jinja/.j2 file; otherwise an inline Jinja string.
    """
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, dict):
        own = own.get("default")
    if setting is None:
        return (own, "tokenizer") if own else (DEFAULT_CHAT_TEMPLATE, "mlift-default")
    if setting == "default":
        return DEFAULT_CHAT_TEMPLATE, "mlift-default"
    if setting == "tokenizer":
        if not own:
            raise ValueError("model.chat_template: tokenizer, but the tokenizer has no chat template")
        return own, "tokenizer"
    path = Path(setting)
    if setting.endswith((".jinja", ".j2")):
        if not path.is_file():
            raise ValueError(f"model.chat_template: file not found: {path}")
        return path.read_text(encoding="utf-8-sig"), str(path)
    if "{%" in setting or "{{" in setting:
        return setting, "inline"
    raise ValueError(f"model.chat_template: {setting!r} is neither default/tokenizer, a .jinja file, nor a Jinja string")


def prepare_tokenizer(tokenizer: Any, chat_template: str | None = None, eos_token: str | None = None,
                      assistant_only_loss: bool = True) -> dict[str, Any]:
    """Set EOS and chat template on the tokenizer in place; return a description for the manifest.

    With assistant-only loss, a template with `{% generation %}` markers is masked by TRL ("loss_mask":
    "generation-markers"); one without (the model's own, e.g. Llama-3.x, Qwen2.5, Gemma-3, Mistral) by mlift from
    the rendered prompts ("template-prefix", mlift.train.chat_masks), and the template's end-of-turn token becomes the EOS
    (saved with the tokenizer, so generation stops there). Fails fast instead of training on an empty mask or
    without the stop token."""
    if eos_token is not None:
        if eos_token not in tokenizer.get_vocab():
            raise ValueError(f"model.eos_token {eos_token!r} is not in the tokenizer's vocabulary")
        tokenizer.eos_token = eos_token
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has no EOS token: set model.eos_token")
    template, source = resolve_chat_template(chat_template, tokenizer)
    tokenizer.chat_template = template
    markers = has_generation_markers(template)
    info: dict[str, Any] = {"chat_template_source": source, "eos_token": tokenizer.eos_token,
                            "generation_markers": markers}
    if not assistant_only_loss:
        return {**info, "loss_mask": None}
    if markers:
        check = assistant_mask_check(tokenizer)
        info.update(check, loss_mask="generation-markers")
        if not check["assistant_tokens"]:
            raise ValueError(f"the chat template ({source}) has {{% generation %}} markers but marks no assistant "
                             "tokens; set model.chat_template: default or sft.assistant_only_loss: false")
        if not check["eos_in_mask"]:
            raise ValueError(f"the chat template ({source}) leaves the EOS token {tokenizer.eos_token!r} out of the "
                             "assistant mask: the model would never learn to stop; put it inside {% generation %}")
        return info
    from mlift.train.chat_masks import TemplateMaskError, end_of_turn, mask_check

    try:
        eot = end_of_turn(tokenizer)
        if eos_token is not None and eos_token != eot:
            raise TemplateMaskError(f"model.eos_token {eos_token!r} is not what the chat template ({source}) ends an "
                                    f"assistant turn with ({eot!r}): the model would learn to stop on {eot!r}")
        if tokenizer.eos_token != eot:  # e.g. Llama-3.1 base (<|end_of_text|>), Gemma-3 (<eos>): stop where turns end
            info["eos_replaced"] = tokenizer.eos_token
            tokenizer.eos_token = eot
        info.update(mask_check(tokenizer, eot), eos_token=eot, loss_mask="template-prefix")
    except TemplateMaskError as exc:
        raise ValueError(f"the chat template ({source}): {exc}") from None
    return info


def assistant_mask_check(tokenizer: Any) -> dict[str, Any]:
    """Render a 2-turn conversation and report whether the assistant mask is non-empty and ends with EOS."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye?"},
                {"role": "assistant", "content": "Bye."}]
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    masked = [i for i, m in zip(ids, mask, strict=True) if m]
    eos = tokenizer.eos_token_id
    # every assistant span must end on EOS: count EOS in the mask == number of assistant turns
    return {"assistant_tokens": len(masked), "eos_in_mask": masked.count(eos) == 2}
