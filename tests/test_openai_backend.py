"""The openai backend against a real OpenAI-compatible server (`transformers serve` on 127.0.0.1) through a loopback
proxy that injects faults: retries with backoff on 500/429/timeouts/dropped connections, then a bounded, recorded
failure while the rest of the batch goes on."""

from __future__ import annotations

import time

import pytest

from mlift.llm import GenParams, OpenAILLMConfig, Request, TransformersLLMConfig, make_llm
from mlift.records import Record
from mlift.translate.stage import TranslateStage
from mlift.translate.translators import LLMTranslator, LLMTranslatorConfig


def openai_llm(served, cache_dir=None, **kw):
    server, proxy = served
    cfg = OpenAILLMConfig(backend="openai", model=server.model, base_url=proxy.url + "/v1", api_key_env="MLIFT_TEST_KEY",
                          **{"timeout_s": 20, "max_retries": 3, "concurrency": 4, **kw})
    return make_llm(cfg, cache_dir, seed=0)


PARAMS = GenParams(max_new_tokens=6)


def test_chat_and_completions_match_local_generation(served, tiny_llama):
    _, proxy = served
    proxy.reset()
    llm = openai_llm(served)
    reqs = [Request(prompt="All human beings are"), Request(messages=[{"role": "user", "content": "Write a summary."}])]
    outs = llm.generate(reqs, PARAMS)
    assert all(o.ok for o in outs), [o.error for o in outs]
    assert outs[0].completion_tokens > 0 and outs[0].prompt_tokens > 0
    local = make_llm(TransformersLLMConfig(backend="transformers", model=str(tiny_llama), cache=False), None)
    assert outs[0].text == local.generate(reqs[:1], PARAMS)[0].text  # the server really ran the same model


def test_retries_on_500_429_drop_and_timeout(served):
    _, proxy = served
    faults = {"five hundred": ["500", "500"], "too many": ["429"], "dropped": ["drop"], "slow": ["delay:4"]}

    def plan(body: str, attempt: int) -> str:
        for marker, actions in faults.items():
            if marker in body and attempt <= len(actions):
                return actions[attempt - 1]
        return "ok"

    proxy.reset(plan)
    llm = openai_llm(served, timeout_s=2.0, max_retries=3)
    reqs = [Request(prompt=f"{m} request") for m in faults] + [Request(prompt="a clean request")]
    outs = llm.generate(reqs, PARAMS)
    assert all(o.ok for o in outs), [o.error for o in outs]
    assert sorted(proxy.attempts.values()) == [1, 2, 2, 2, 3]  # clean 1; 429/drop/timeout 2; two 500s then ok: 3


def test_bounded_failure_is_recorded_and_the_batch_goes_on(served, tmp_path):
    _, proxy = served
    proxy.reset(lambda body, attempt: "500" if "poison" in body else "ok")
    llm = openai_llm(served, tmp_path, max_retries=2)
    start = time.monotonic()
    outs = llm.generate([Request(prompt="poison pill"), Request(prompt="fine one")], PARAMS)
    assert time.monotonic() - start < 30
    assert not outs[0].ok and "500" in outs[0].error and outs[1].ok
    assert max(proxy.attempts.values()) == 3  # 1 try + 2 retries, then it gives up
    assert llm.usage()[llm.name]["failures"] == 1
    # Failures are not cached: a rerun tries again (and succeeds once the server is healthy).
    proxy.reset()
    again = openai_llm(served, tmp_path, max_retries=2)
    outs = again.generate([Request(prompt="poison pill"), Request(prompt="fine one")], PARAMS)
    assert outs[0].ok and not outs[0].cached and outs[1].cached


def test_failed_request_sends_record_to_quarantine(served, tmp_path):
    server, proxy = served
    proxy.reset(lambda body, attempt: "500" if "Poison" in body else "ok")
    llm = OpenAILLMConfig(backend="openai", model=server.model, base_url=proxy.url + "/v1", max_retries=1, timeout_s=20)
    cfg = LLMTranslatorConfig(kind="llm", mode="completion", fewshot=1, max_new_tokens=6, on_truncated="keep", llm=llm)
    translator = LLMTranslator(make_llm(cfg.llm, tmp_path), cfg)
    stage = TranslateStage("to_en", translator, {"text": "text_en"}, "en")
    recs = [Record(id="a", lang="fra_Latn", fields={"text": "Bonjour."}),
            Record(id="b", lang="fra_Latn", fields={"text": "Poison ici."})]
    outcomes = stage.process(recs)
    assert [o.kind for o in outcomes] == ["keep", "quarantine"]
    assert outcomes[1].reason == "translation_failed" and "500" in outcomes[1].detail


def test_missing_key_for_hosted_api_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("MLIFT_ABSENT_KEY", raising=False)
    cfg = OpenAILLMConfig(backend="openai", model="gpt-x", api_key_env="MLIFT_ABSENT_KEY")
    with pytest.raises(RuntimeError, match="MLIFT_ABSENT_KEY"):
        make_llm(cfg, None).generate([Request(prompt="hi")])
