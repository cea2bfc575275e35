"""The vLLM backend's engine thread (mlift/llm/vllm_backend.py): requests from several threads are added to the
engine between steps, so a call does not wait for another call's slow requests. vLLM needs a GPU and is not installed
here: a stand-in engine with vLLM's `add_request` / `step` interface takes its place (a request finishes after as
many steps as its prompt asks for); the tokenizer is a real one (the tiny Llama's)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from mlift.llm import GenParams, Request
from mlift.llm.vllm_backend import VLLMBackend


class StandInEngine:
    """vLLM's LLMEngine interface as the backend uses it: add_request(id, {"prompt_token_ids"}, params), step()."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.running: dict[str, list] = {}
        self.added_while_running = 0

    def add_request(self, rid, prompt, sampling, lora_request=None):
        if self.running:
            self.added_while_running += 1
        text = self.tokenizer.decode(prompt["prompt_token_ids"])
        steps = 40 if "slow" in text else 1
        self.running[rid] = [steps, prompt["prompt_token_ids"], text]

    def step(self):
        time.sleep(0.01)  # one forward pass
        out = []
        for rid, item in list(self.running.items()):
            item[0] -= 1
            if item[0] == 0:
                del self.running[rid]
                gen = SimpleNamespace(text="echo " + item[2], token_ids=[1, 2], finish_reason="stop")
                out.append(SimpleNamespace(request_id=rid, finished=True, prompt_token_ids=item[1], outputs=[gen]))
        return out


class StandInBackend(VLLMBackend):
    def __init__(self, tokenizer):  # the real __init__ loads vLLM; everything else is the real backend
        from mlift.llm.base import VLLMConfig

        self.cfg = VLLMConfig(backend="vllm", model="stand-in")
        self.model, self.tokenizer, self.context, self.lora, self.window = "stand-in", tokenizer, 512, None, 64
        self.engine = SimpleNamespace(llm_engine=StandInEngine(tokenizer))
        import itertools
        import queue

        self._queue, self._start, self._tok_lock = queue.SimpleQueue(), threading.Lock(), threading.Lock()
        self._thread, self._ids_seq = None, itertools.count()

    def _sampling(self, params):
        return SimpleNamespace(max_tokens=params.max_new_tokens)


def test_calls_from_several_threads_feed_one_engine_without_a_barrier(tiny_llama):
    from transformers import AutoTokenizer

    backend = StandInBackend(AutoTokenizer.from_pretrained(tiny_llama))
    params = GenParams(max_new_tokens=4)
    done: dict[str, float] = {}

    def call(name: str, prompts: list[str]) -> None:
        outs = backend.generate([Request(prompt=p) for p in prompts], params)
        assert [o.text.endswith(p) for o, p in zip(outs, prompts)] == [True] * len(prompts)  # each its own answer
        done[name] = time.monotonic()

    slow = threading.Thread(target=call, args=("slow", ["a slow one"]))
    slow.start()
    time.sleep(0.05)
    fast = [threading.Thread(target=call, args=(f"fast{k}", [f"fast {k} {j}" for j in range(3)])) for k in range(4)]
    for t in fast:
        t.start()
    for t in [slow, *fast]:
        t.join()
    assert all(done[f"fast{k}"] < done["slow"] for k in range(4))  # not held until the slow request ends
    assert backend.engine.llm_engine.added_while_running >= 12


def test_a_prompt_longer_than_the_context_is_refused_not_sent(tiny_llama):
    from transformers import AutoTokenizer

    backend = StandInBackend(AutoTokenizer.from_pretrained(tiny_llama))
    outs = backend.generate([Request(prompt="word " * 600), Request(prompt="short")], GenParams(max_new_tokens=4))
    assert outs[0].error.startswith("prompt_too_long") and outs[1].ok
