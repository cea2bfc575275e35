"""One bad record never blocks a shard, on the transformers backend with a real (tiny) Llama: a request that makes the
backend raise is isolated in halves and fails alone with the exception's message; a prompt longer than the model's
context (512 here) is refused as prompt_too_long or cut by the declared rule, never sent."""

from __future__ import annotations

import json

from mlift.llm import GenParams, Request, TransformersLLMConfig, make_llm
from mlift.records import Record, shard_name
from mlift.runner.stage import Outcome, ShardInput, StageRunner
from mlift.translate.stage import TranslateStage
from mlift.translate.translators import LLMTranslator, LLMTranslatorConfig

PARAMS = GenParams(max_new_tokens=4)


def hf(tiny_llama, cache_dir=None, **kw):
    return make_llm(TransformersLLMConfig(backend="transformers", model=str(tiny_llama), batch_size=4, device="cpu",
                                          **kw), cache_dir, seed=0)


class ChatStage:
    """Sends each record's `text` as a user message (a record with text: null makes the chat template raise)."""

    name = "chat"
    batch_size = 6

    def __init__(self, llm):
        self.llm = llm

    def process(self, batch):
        outs = self.llm.generate([Request(messages=[{"role": "user", "content": r.get("text")}]) for r in batch], PARAMS)
        return [Outcome.keep(r) if o.ok else Outcome.quarantine(r, "llm_error", o.error) for r, o in zip(batch, outs)]


def test_a_request_that_raises_fails_alone(tiny_llama, tmp_path):
    llm = hf(tiny_llama, tmp_path)
    reqs = [Request(messages=[{"role": "user", "content": f"Write a summary {k}."}]) for k in range(5)]
    reqs.insert(3, Request(messages=[{"role": "user", "content": None}]))  # the chat template cannot render it
    outs = llm.generate(reqs, PARAMS)
    assert [o.ok for o in outs] == [True, True, True, False, True, True]
    assert outs[3].transient and "UndefinedError in transformers:" in outs[3].error
    assert llm.usage()[llm.name]["isolated"] == 1
    again = hf(tiny_llama, tmp_path).generate(reqs, PARAMS)  # the halves' successes were cached as they finished
    assert [o.cached for o in again] == [True, True, True, False, True, True]


def test_the_shard_goes_on_and_the_record_is_quarantined_with_the_message(tiny_llama, tmp_path):
    recs = [Record(id=f"r{k}", lang="eng_Latn", fields={"text": None if k == 4 else f"Say hello {k}."}) for k in range(8)]
    runner = StageRunner(tmp_path / "run", 1, progress=False, max_attempts=2)
    shard = [ShardInput(0, 1, lambda: iter([Record.from_json(r.to_json()) for r in recs]))]
    stats = runner.run(ChatStage(hf(tiny_llama, tmp_path)), shard)
    assert stats.pending == 1 and not runner.is_done("chat", 0)  # transient on the first run: retried by the next
    stats = runner.run(ChatStage(hf(tiny_llama, tmp_path)), shard)
    assert runner.is_done("chat", 0) and stats.counts["keep"] == 7 and stats.counts["final"] == 1
    q = [json.loads(x) for x in (tmp_path / "run/chat/quarantine" / shard_name(0, 1)).read_text().splitlines()]
    assert [x["id"] for x in q] == ["r4"] and "UndefinedError" in q[0]["_detail"] and q[0]["_attempts"] == 2


def test_prompt_longer_than_the_context_is_quarantined_not_sent(tiny_llama, tmp_path):
    cfg = LLMTranslatorConfig(kind="llm", mode="completion", fewshot=0, max_new_tokens=4, on_truncated="keep",
                              llm=TransformersLLMConfig(backend="transformers", model=str(tiny_llama), device="cpu"))
    llm = make_llm(cfg.llm, tmp_path)
    stage = TranslateStage("to_en", LLMTranslator(llm, cfg), {"text": "text_en"}, "en")
    long_line = " ".join(["Tous les êtres humains naissent libres et égaux en dignité et en droits."] * 60)
    recs = [Record(id="short", lang="fra_Latn", fields={"text": "Bonjour."}),
            Record(id="long", lang="fra_Latn", fields={"text": long_line})]
    runner = StageRunner(tmp_path / "run", 1, progress=False)
    stats = runner.run(stage, [ShardInput(0, 1, lambda: iter(recs))])
    assert runner.is_done("to_en", 0) and stats.pending == 0  # final at once: retrying cannot help
    assert stats.counts["keep"] == 1 and stats.reasons["quarantine"] == {"prompt_too_long": 1}
    q = json.loads((tmp_path / "run/to_en/quarantine" / shard_name(0, 1)).read_text())
    assert q["id"] == "long" and "> context 512" in q["_detail"]
    assert llm.usage()[llm.name]["completion_tokens"] <= 4  # only the short record was generated


def test_truncate_left_keeps_the_end_of_the_prompt(tiny_llama):
    import torch

    llm = hf(tiny_llama, max_model_len=64, prompt_too_long="truncate_left")
    prompt = " ".join(f"word{k}" for k in range(200))
    out = llm.generate([Request(prompt=prompt)], PARAMS)[0]
    backend = llm.backend
    ids = backend.tokenizer(prompt)["input_ids"][-(64 - PARAMS.max_new_tokens):]
    with torch.inference_mode():
        ref = backend.lm.generate(torch.tensor([ids]), max_new_tokens=4, do_sample=False,
                                  pad_token_id=backend.tokenizer.pad_token_id)
    assert out.ok and out.prompt_tokens == len(ids) == 60
    assert out.text == backend.tokenizer.decode(ref[0, len(ids):], skip_special_tokens=True)
