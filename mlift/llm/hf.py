"""transformers backend: a local or hub causal LM, batched generation on CPU or GPU."""

from __future__ import annotations

from typing import Any

from mlift.llm.base import Completion, GenParams, OnDone, Request, TransformersLLMConfig, fit_prompt


def pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


class TransformersBackend:
    backend = "transformers"
    concurrent = False  # compute-bound: one call at a time, batched below

    def __init__(self, cfg: TransformersLLMConfig):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        self.model = cfg.model
        self.device = pick_device(cfg.device)
        kwargs: dict[str, Any] = {"revision": cfg.revision, "trust_remote_code": cfg.trust_remote_code}
        if cfg.gguf_file:
            kwargs["gguf_file"] = cfg.gguf_file
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer or cfg.model, **kwargs)
        self.lm = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=pick_dtype(cfg.dtype, self.device), **kwargs)
        if cfg.adapter:
            from peft import PeftModel

            self.lm = PeftModel.from_pretrained(self.lm, cfg.adapter).merge_and_unload()  # merged: plain-model speed
        self.lm.to(self.device).eval()
        self.tokenizer.padding_side = "left"  # generation continues from the right edge
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if cfg.chat_template:
            self.tokenizer.chat_template = cfg.chat_template
        self.context = cfg.max_model_len or getattr(self.lm.config, "max_position_embeddings", None)
        self.window = cfg.batch_size

    def identity(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model, "revision": self.cfg.revision, "gguf": self.cfg.gguf_file,
                "dtype": self.cfg.dtype, "chat_template": self.cfg.chat_template,
                "adapter": self.cfg.adapter, "tokenizer": self.cfg.tokenizer}

    def eos_ids(self) -> list[int]:
        """The tokenizer's EOS (a trained dir's end-of-turn, e.g. <|eot_id|>) and the model's own: the base model's
        generation config alone would not stop a LoRA-tuned model at the EOS it was trained on."""
        own = self.lm.generation_config.eos_token_id
        own = [] if own is None else [own] if isinstance(own, int) else list(own)
        mine = [] if self.tokenizer.eos_token_id is None else [self.tokenizer.eos_token_id]
        return [*mine, *(i for i in own if i not in mine)]

    def _text(self, request: Request) -> tuple[str, bool]:
        """The prompt string and whether the tokenizer should add special tokens (chat templates add their own)."""
        if request.prompt is not None:
            return request.prompt, True
        if not self.tokenizer.chat_template:
            from mlift.recipe import RecipeError  # a setup error, not a record's: stop the run with a message

            raise RecipeError(f"{self.model} has no chat template: use mode: completion, or set chat_template in the recipe")
        text = self.tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        return text, False

    def generate(self, requests: list[Request], params: GenParams, on_done: OnDone | None = None) -> list[Completion]:
        import torch

        texts = [self._text(r) for r in requests]
        encoded = [self.tokenizer(t, add_special_tokens=special)["input_ids"] for t, special in texts]
        results: list[Completion | None] = [None] * len(requests)
        refused = []
        for i, ids in enumerate(encoded):
            fitted, why = fit_prompt(ids, params.max_new_tokens, self.context, self.cfg.prompt_too_long)
            if why:
                results[i] = Completion(text=None, error=why, prompt_tokens=len(ids))
                refused.append((i, results[i]))
            else:
                encoded[i] = fitted
        if refused and on_done:
            on_done(refused)
        # Longest first, in micro-batches: little padding, and a deterministic batch composition for a given input.
        order = sorted((i for i in range(len(requests)) if results[i] is None), key=lambda i: -len(encoded[i]))
        step = max(1, self.cfg.batch_size)
        for start in range(0, len(order), step):
            idx = order[start:start + step]
            batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt").to(self.device)
            gen_kwargs: dict[str, Any] = {
                "max_new_tokens": params.max_new_tokens,
                "pad_token_id": self.tokenizer.pad_token_id,
                "eos_token_id": self.eos_ids() or None,
                "do_sample": params.temperature > 0,
            }
            if params.temperature > 0:
                gen_kwargs.update(temperature=params.temperature, top_p=params.top_p)
                torch.manual_seed(params.seed or 0)
            else:
                gen_kwargs.update(temperature=None, top_p=None, top_k=None)
            if params.stop:
                gen_kwargs.update(stop_strings=params.stop, tokenizer=self.tokenizer)
            with torch.inference_mode():
                out = self.lm.generate(**batch, **gen_kwargs)
            new = out[:, batch["input_ids"].shape[1]:]
            stops = set(gen_kwargs["eos_token_id"] or [])
            finished = []
            for row, i in enumerate(idx):
                tokens = new[row].tolist()
                n = len(tokens)  # generated length: up to and including EOS, without the padding after it
                for k, tok in enumerate(tokens):
                    if tok in stops:
                        n = k + 1
                        break
                    if tok == self.tokenizer.pad_token_id:
                        n = k
                        break
                text = self.tokenizer.decode(tokens[:n], skip_special_tokens=True)
                results[i] = Completion(text=cut_at_stop(text, params.stop), prompt_tokens=len(encoded[i]), completion_tokens=n)
                finished.append((i, results[i]))
            if on_done:
                on_done(finished)
        return [r for r in results if r is not None]


def cut_at_stop(text: str, stop: list[str]) -> str:
    """Stop strings end generation but stay in the output; cut the text at the first one, as OpenAI servers do."""
    cut = len(text)
    for s in stop:
        pos = text.find(s)
        if s and pos != -1:
            cut = min(cut, pos)
    return text[:cut]
