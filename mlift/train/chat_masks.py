"""Assistant-only loss with a model's own chat template, one that has no `{% generation %}` markers (Llama-3.x,
Qwen2.5, Gemma-3, Mistral ship none): the loss covers each assistant message and the end-of-turn token after it.

Where each assistant turn starts is found by rendering the conversation up to it with `add_generation_prompt=True`
(what the model sees at inference); the turn ends after the template's end-of-turn token (`end_of_turn`). The text is
then tokenized piece by piece at those boundaries, so the prompt tokens are exactly the inference prompt's and the
labels are exactly the assistant's content + end-of-turn. A template that renders earlier turns differently once the
conversation goes on (Qwen3 drops past reasoning) cannot be masked in one sequence: such a conversation becomes one
example per assistant turn, each rendered as at inference. A template that renders a turn unlike its own inference
prompt (Mistral v3 drops the system prompt unless a user message comes last) is refused, naming the turn.
"""

from __future__ import annotations

from typing import Any

_PROBE = "MLIFT_END_OF_TURN_PROBE"


class TemplateMaskError(ValueError):
    """The template's rendering cannot be split into prompt and assistant turns."""


def render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def end_of_turn(tokenizer: Any) -> str:
    """The special token the template writes right after an assistant message (`<|eot_id|>`, `<|im_end|>`,
    `<end_of_turn>`, `</s>`): what the model must learn to emit to stop."""
    text = render(tokenizer, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": _PROBE}])
    tail = text.split(_PROBE, 1)[1].lstrip() if _PROBE in text else ""
    specials = sorted({str(t) for t in tokenizer.all_special_tokens} |
                      {str(t) for t in tokenizer.get_added_vocab()}, key=len, reverse=True)
    found = next((s for s in specials if s and tail.startswith(s)), None)
    if found is None:
        raise TemplateMaskError(f"the chat template writes {tail[:40]!r} after an assistant message, not a special "
                                "token: no end-of-turn token to train")
    return found


def _turn_end(text: str, start: int, content: str, eot: str) -> int | None:
    """Index just past the end-of-turn token of the assistant turn that starts at `start` in `text`. What the template
    writes between the prompt and the content (Qwen3's empty think block) is the model's to generate: it stays in."""
    body = content.strip()
    at = text.find(body, start) if body else start
    if at < 0:
        return None
    stop = text.find(eot, at + len(body))
    if stop < 0 or text[at + len(body):stop].strip():
        return None
    return stop + len(eot)


def turn_span(tokenizer: Any, messages: list[dict[str, str]], i: int, eot: str) -> tuple[str, tuple[int, int]]:
    """(the conversation rendered up to assistant turn i, that turn's (start, end)): as at inference, the prompt is
    the history with the generation prompt, and the turn is content + end-of-turn."""
    prompt = render(tokenizer, messages[:i], generation_prompt=True)
    upto = render(tokenizer, messages[:i + 1])
    end = _turn_end(upto, len(prompt), messages[i]["content"], eot) if upto.startswith(prompt) else None
    if end is None:
        raise TemplateMaskError(f"assistant turn {i}: the chat template does not render it as its generation prompt "
                                f"followed by the message and {eot!r}; use model.chat_template: default or a template "
                                "with {% generation %} markers")
    return upto, (len(prompt), end)


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]], eot: str) -> tuple[str, list[tuple[int, int]]] | None:
    """(the rendered conversation, [(start, end) of each assistant turn]) when every turn renders inside the whole
    conversation exactly as it does when it is the latest turn; else None."""
    text = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            upto, span = turn_span(tokenizer, messages, i, eot)
            if not text.startswith(upto):
                return None
            spans.append(span)
    return text, spans


def tokenize_pieces(tokenizer: Any, text: str, spans: list[tuple[int, int]]) -> dict[str, list[int]]:
    """input_ids and assistant_masks (1 on the spans), tokenizing the text piece by piece at the span edges."""
    ids: list[int] = []
    mask: list[int] = []
    cut = 0
    for start, end in [*spans, (len(text), len(text))]:
        for piece, bit in ((text[cut:start], 0), (text[start:end], 1)):
            if piece:
                part = tokenizer(piece, add_special_tokens=False)["input_ids"]
                ids += part
                mask += [bit] * len(part)
        cut = end
    return {"input_ids": ids, "assistant_masks": mask}


def conversation_examples(tokenizer: Any, messages: list[dict[str, str]], eot: str) -> list[dict[str, list[int]]]:
    """The tokenized training example(s) of one conversation (one per assistant turn when the template rewrites
    history)."""
    whole = assistant_spans(tokenizer, messages, eot)
    if whole is not None:
        return [tokenize_pieces(tokenizer, *whole)]
    out = []
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            text, span = turn_span(tokenizer, messages, i, eot)
            out.append(tokenize_pieces(tokenizer, text, [span]))  # earlier turns are context here, trained in theirs
    return out


def tokenize_dataset(dataset: Any, tokenizer: Any, eot: str, num_proc: int | None = None) -> Any:
    """The `messages` dataset as TRL's pre-tokenized form: input_ids + assistant_masks (TRL turns the mask into
    labels, truncates to max_length and drops examples left without a trained token)."""

    def batch(rows: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"input_ids": [], "assistant_masks": []}
        for messages in rows["messages"]:
            for example in conversation_examples(tokenizer, messages, eot):
                out["input_ids"].append(example["input_ids"])
                out["assistant_masks"].append(example["assistant_masks"])
        return out

    return dataset.map(batch, batched=True, remove_columns=dataset.column_names, num_proc=num_proc,
                       desc="Tokenizing with the model's chat template (assistant-only masks)")


def trainer_dataset(dataset: Any, tokenizer: Any, chat_info: dict[str, Any], args: Any) -> Any:
    """What `mlift train` hands SFTTrainer for a template without markers: the tokens + masks (TRL's own
    assistant_only_loss would refuse this template or swap in another), with the end-of-turn as the EOS that TRL
    mirrors onto the model's config and generation config."""
    from mlift.recipe import RecipeError

    try:
        dataset = tokenize_dataset(dataset, tokenizer, chat_info["eos_token"], num_proc=args.dataset_num_proc)
    except TemplateMaskError as exc:
        raise RecipeError(f"data: {exc}") from None
    args.assistant_only_loss = False  # the masks are in the data
    if chat_info.get("eos_replaced"):
        args.eos_token = tokenizer.eos_token
    return dataset


def mask_check(tokenizer: Any, eot: str) -> dict[str, Any]:
    """Mask a probe conversation (two turns, no system prompt: some templates refuse or move one; the data's own
    conversations are checked when they are tokenized) and report what the loss would cover, or raise."""
    messages = [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Bye?"}, {"role": "assistant", "content": "Bye."}]
    examples = conversation_examples(tokenizer, messages, eot)
    eot_id = tokenizer.convert_tokens_to_ids(eot)
    trained = [[i for i, m in zip(e["input_ids"], e["assistant_masks"], strict=True) if m] for e in examples]
    return {"assistant_tokens": sum(len(t) for t in trained), "eos_in_mask": sum(t.count(eot_id) for t in trained) == 2,
            "examples_per_conversation": len(examples)}
