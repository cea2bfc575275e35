"""vLLM offline batched generation on GPUs. vllm is imported only when this backend is used (`pip install mlift[gpu]`)."""

from __future__ import annotations

from typing import Any

from mlift.llm.base import Completion, GenParams, OnDone, Request, VLLMConfig, fit_prompt


class VLLMBackend:
    backend = "vllm"
    concurrent = False

    def __init__(self, cfg: VLLMConfig, seed: int = 0):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise RuntimeError("the vllm backend needs vLLM on a GPU machine: pip install 'mlift[gpu]'") from exc
        self.cfg = cfg
        self.model = cfg.model
        self.engine = LLM(model=cfg.model, revision=cfg.revision, tensor_parallel_size=cfg.tensor_parallel_size,
                          gpu_memory_utilization=cfg.gpu_memory_utilization, max_model_len=cfg.max_model_len,
                          dtype=cfg.dtype, seed=seed, tokenizer=cfg.tokenizer or cfg.model,
                          **({"enable_lora": True, "max_lora_rank": cfg.max_lora_rank} if cfg.adapter else {}))
        self.lora = None
        if cfg.adapter:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, cfg.adapter)
        self.tokenizer = self.engine.get_tokenizer()
        self.context = self.engine.llm_engine.model_config.max_model_len
        self.window = cfg.batch_size

    def identity(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model, "revision": self.cfg.revision, "dtype": self.cfg.dtype,
                "adapter": self.cfg.adapter, "tokenizer": self.cfg.tokenizer, "chat_template": self.cfg.chat_template}

    def _ids(self, r: Request) -> list[int]:
        if r.messages is not None:
            return list(self.tokenizer.apply_chat_template(r.messages, add_generation_prompt=True, tokenize=True,
                                                        chat_template=self.cfg.chat_template))
        return list(self.tokenizer(r.prompt)["input_ids"])

    def generate(self, requests: list[Request], params: GenParams, on_done: OnDone | None = None) -> list[Completion]:
        from vllm import SamplingParams

        sampling = SamplingParams(max_tokens=params.max_new_tokens, temperature=params.temperature, top_p=params.top_p,
                                  stop=params.stop or None, seed=params.seed)
        # vLLM raises on a prompt longer than max_model_len (for the whole call): check each one before sending.
        refused: dict[int, Completion] = {}
        cut: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            ids = self._ids(r)
            fitted, why = fit_prompt(ids, params.max_new_tokens, self.context, self.cfg.prompt_too_long)
            if why:
                refused[i] = Completion(text=None, error=why, prompt_tokens=len(ids))
            elif len(fitted) < len(ids):
                cut[i] = fitted
        chats = [i for i, r in enumerate(requests) if r.messages is not None and i not in refused and i not in cut]
        prompts = [i for i, r in enumerate(requests) if r.prompt is not None and i not in refused and i not in cut]
        outputs: dict[int, Any] = {}
        if chats:
            outs = self.engine.chat([requests[i].messages for i in chats], sampling, use_tqdm=False,
                                    lora_request=self.lora, chat_template=self.cfg.chat_template)
            outputs.update(zip(chats, outs))
        if prompts:
            outs = self.engine.generate([requests[i].prompt for i in prompts], sampling, use_tqdm=False,
                                        lora_request=self.lora)
            outputs.update(zip(prompts, outs))
        if cut:
            outs = self.engine.generate([{"prompt_token_ids": ids} for ids in cut.values()], sampling, use_tqdm=False,
                                        lora_request=self.lora)
            outputs.update(zip(cut, outs))
        results = []
        for i in range(len(requests)):
            if i in refused:
                results.append(refused[i])
                continue
            o = outputs[i]
            gen = o.outputs[0]
            results.append(Completion(text=gen.text, prompt_tokens=len(o.prompt_token_ids or []),
                                      completion_tokens=len(gen.token_ids),
                                      extra={"finish_reason": gen.finish_reason} if gen.finish_reason else {}))
        if on_done:
            on_done(list(enumerate(results)))
        return results
