"""The transformers backend stops at the tokenizer's EOS, not only at the model's: a LoRA adapter trained with a
template's end-of-turn as EOS (e.g. <|eot_id|> on Llama-3.1 base) is loaded over a base model whose generation
config knows only <|end_of_text|> (issue 18 item 6)."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlift.llm import GenParams, Request, TransformersLLMConfig
from mlift.llm.hf import TransformersBackend


def _backend(model: Path, tokenizer: Path | None = None) -> TransformersBackend:
    return TransformersBackend(TransformersLLMConfig(backend="transformers", model=str(model), device="cpu",
                                                     tokenizer=str(tokenizer) if tokenizer else None, cache=False))


def test_generation_stops_at_the_tokenizers_own_eos(tiny_llama: Path, tmp_path: Path) -> None:
    params = GenParams(max_new_tokens=40, temperature=0.0)
    request = [Request(prompt="All human beings are born")]
    plain = _backend(tiny_llama)
    prompt = plain.tokenizer(request[0].prompt, return_tensors="pt")
    out = plain.lm.generate(**prompt, max_new_tokens=12, do_sample=False, eos_token_id=None,
                            pad_token_id=plain.tokenizer.pad_token_id)
    tokens = out[0, prompt["input_ids"].shape[1]:].tolist()
    # the custom EOS: a token the model really generates some steps in (first seen there), not the model's EOS
    k = max(i for i in range(len(tokens)) if tokens[i] not in tokens[:i])
    stop = plain.tokenizer.convert_ids_to_tokens(tokens[k])
    assert tokens[k] != plain.lm.generation_config.eos_token_id
    trained = tmp_path / "trained"  # what `mlift train` saves beside an adapter: the tokenizer with its new EOS
    shutil.copytree(tiny_llama, trained, ignore=shutil.ignore_patterns("*.safetensors"))
    tok = plain.tokenizer.__class__.from_pretrained(trained)
    tok.eos_token = stop
    tok.save_pretrained(trained)

    backend = _backend(tiny_llama, trained)
    steps = []  # one forward pass per generated token: generation itself must stop, not only the text be cut
    backend.lm.register_forward_hook(lambda *_: steps.append(1))
    out = backend.generate(request, params)[0]
    assert out.completion_tokens == k + 1
    assert len(steps) == k + 1, f"generate ran {len(steps)} steps past the EOS at step {k + 1}"
    assert out.text == plain.tokenizer.decode(tokens[:k], skip_special_tokens=True)
