"""vLLM offline generation on GPUs, fed continuously. vllm is imported only when this backend is used
(`pip install mlift[gpu]`).

One engine thread owns vLLM's engine and runs its step loop (`add_request` / `step`, what `LLM.generate` does inside):
`generate` may be called from many threads at once (the runner's window, mlift/llm/scheduler.py); each call tokenizes
its requests, hands them to the engine thread, which adds them between two steps, and waits for them. vLLM's own
scheduler then always has the stage's next requests queued, with no barrier at the end of a batch.
"""

from __future__ import annotations

import itertools
import queue
import threading
from concurrent.futures import Future
from typing import Any

from mlift.llm.base import Completion, GenParams, OnDone, Request, VLLMConfig, fit_prompt, transient_error
from mlift.llm.scheduler import IN_FLIGHT


class VLLMBackend:
    backend = "vllm"
    concurrent = True  # generate() from several threads: the engine thread adds their requests as they come

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
        self.window = cfg.batch_size  # requests queued in the engine (see VLLMConfig.batch_size)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._start = threading.Lock()
        self._tok_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ids_seq = itertools.count()

    def structured(self, mode: str) -> bool:
        """`GenParams.json_schema` is enforced by guided decoding, for chat and raw prompts alike."""
        return True

    def identity(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model, "revision": self.cfg.revision, "dtype": self.cfg.dtype,
                "adapter": self.cfg.adapter, "tokenizer": self.cfg.tokenizer, "chat_template": self.cfg.chat_template}

    def _ids(self, r: Request) -> list[int]:
        if r.messages is not None:
            out = self.tokenizer.apply_chat_template(r.messages, add_generation_prompt=True, tokenize=True,
                                                     chat_template=self.cfg.chat_template)
            return list(out["input_ids"] if hasattr(out, "keys") else out)  # a dict when return_dict is the default
        return list(self.tokenizer(r.prompt)["input_ids"])

    def _sampling(self, params: GenParams) -> Any:
        from vllm import SamplingParams

        extra: dict[str, Any] = {}
        if params.json_schema:  # guided decoding: StructuredOutputsParams in recent vLLM, GuidedDecodingParams before
            try:
                from vllm.sampling_params import StructuredOutputsParams

                extra["structured_outputs"] = StructuredOutputsParams(json=params.json_schema)
            except ImportError:
                from vllm.sampling_params import GuidedDecodingParams

                extra["guided_decoding"] = GuidedDecodingParams(json=params.json_schema)
        sampling = SamplingParams(max_tokens=params.max_new_tokens, temperature=params.temperature, top_p=params.top_p,
                                  stop=params.stop or None, seed=params.seed, **extra)
        try:
            from vllm.sampling_params import RequestOutputKind

            sampling.output_kind = RequestOutputKind.FINAL_ONLY  # as LLM.generate: no partial outputs every step
        except ImportError:
            pass
        return sampling

    def generate(self, requests: list[Request], params: GenParams, on_done: OnDone | None = None) -> list[Completion]:
        sampling = self._sampling(params)
        results: list[Completion | None] = [None] * len(requests)
        futures: dict[int, Future] = {}
        refused = []
        for i, r in enumerate(requests):
            with self._tok_lock:  # a fast tokenizer is not safe across threads
                ids = self._ids(r)
            # vLLM raises on a prompt longer than max_model_len: check each one before sending.
            fitted, why = fit_prompt(ids, params.max_new_tokens, self.context, self.cfg.prompt_too_long)
            if why:
                results[i] = Completion(text=None, error=why, prompt_tokens=len(ids))
                refused.append((i, results[i]))
                continue
            fut: Future = Future()
            if on_done:  # each one stored in the cache as it finishes
                fut.add_done_callback(lambda f, i=i: f.exception() or on_done([(i, f.result())]))
            futures[i] = fut
            self._submit((fitted, sampling, fut))
        if refused and on_done:
            on_done(refused)
        for i, fut in futures.items():
            exc = fut.exception()
            results[i] = fut.result() if exc is None else Completion(
                text=None, error=transient_error(f"{type(exc).__name__} in vllm: {str(exc)[:300]}"))
        return [r for r in results if r is not None]

    def _submit(self, item: tuple[list[int], Any, Future]) -> None:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="mlift-vllm")
                self._thread.start()
        self._queue.put(item)

    def _loop(self) -> None:
        """vLLM's step loop, with new requests added before every step (LLM._run_engine does the same for one call)."""
        engine = self.engine.llm_engine
        waiting: dict[str, Future] = {}
        while True:
            block = not waiting  # idle: sleep until a request comes
            while True:
                try:
                    ids, sampling, fut = self._queue.get(block=block)
                except queue.Empty:
                    break
                block = False
                rid = str(next(self._ids_seq))
                try:
                    engine.add_request(rid, {"prompt_token_ids": ids}, sampling, lora_request=self.lora)
                except Exception as exc:  # this request only; isolated by the caller (mlift/llm/cache.py)
                    fut.set_exception(exc)
                    continue
                waiting[rid] = fut
                IN_FLIGHT.add(1)
            if not waiting:
                continue
            try:
                outputs = engine.step()
            except Exception as exc:  # the engine failed: every request in it fails (transient), the run goes on
                for fut in waiting.values():
                    fut.set_exception(exc)
                IN_FLIGHT.add(-len(waiting))
                waiting.clear()
                continue
            for o in outputs:
                if o.finished and o.request_id in waiting:
                    gen = o.outputs[0]
                    IN_FLIGHT.add(-1)
                    waiting.pop(o.request_id).set_result(Completion(
                        text=gen.text, prompt_tokens=len(o.prompt_token_ids or []), completion_tokens=len(gen.token_ids),
                        extra={"finish_reason": gen.finish_reason} if gen.finish_reason else {}))
