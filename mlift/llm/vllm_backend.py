"""vLLM offline batched generation on GPUs. vllm is imported only when this backend is used (`pip install mlift[gpu]`)."""

from __future__ import annotations

from typing import Any

from mlift.llm.base import Completion, GenParams, OnDone, Request, VLLMConfig


class VLLMBackend:
    backend = "vllm"

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

    def identity(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model, "revision": self.cfg.revision, "dtype": self.cfg.dtype,
                "adapter": self.cfg.adapter, "tokenizer": self.cfg.tokenizer, "chat_template": self.cfg.chat_template}

    def generate(self, requests: list[Request], params: GenParams, on_done: OnDone | None = None) -> list[Completion]:
        from vllm import SamplingParams

        sampling = SamplingParams(max_tokens=params.max_new_tokens, temperature=params.temperature, top_p=params.top_p,
                                  stop=params.stop or None, seed=params.seed)
        chats = [r for r in requests if r.messages is not None]
        prompts = [r for r in requests if r.prompt is not None]
        outputs: dict[int, Any] = {}
        if chats:
            outs = self.engine.chat([r.messages for r in chats], sampling, use_tqdm=False, lora_request=self.lora,
                                    chat_template=self.cfg.chat_template)
            outputs.update({id(r): o for r, o in zip(chats, outs)})
        if prompts:
            outs = self.engine.generate([r.prompt for r in prompts], sampling, use_tqdm=False, lora_request=self.lora)
            outputs.update({id(r): o for r, o in zip(prompts, outs)})
        results = []
        for r in requests:
            o = outputs[id(r)]
            gen = o.outputs[0]
            results.append(Completion(text=gen.text, prompt_tokens=len(o.prompt_token_ids or []),
                                      completion_tokens=len(gen.token_ids)))
        if on_done:
            on_done(list(enumerate(results)))
        return results
