"""LLM backends (transformers, for real on tiny and pretrained models), the request cache, translators, languages."""

from __future__ import annotations

import pytest

from mlift.languages import UnknownLanguageError, get_language
from mlift.llm import GenParams, Request, TransformersLLMConfig, make_llm
from mlift.records import Record
from mlift.translate.stage import TranslateStage
from mlift.translate.translators import LLMTranslator, LLMTranslatorConfig


def llm_cfg(model, **kw) -> TransformersLLMConfig:
    return TransformersLLMConfig(backend="transformers", model=str(model), **kw)


def test_transformers_backend_chat_and_prompt(tiny_llama, tmp_path):
    llm = make_llm(llm_cfg(tiny_llama, batch_size=2), tmp_path, seed=0)
    reqs = [Request(messages=[{"role": "user", "content": "Translate the following text."}]),
            Request(prompt="All human beings are"), Request(prompt="Question:")]
    outs = llm.generate(reqs, GenParams(max_new_tokens=6))
    assert len(outs) == 3 and all(o.ok for o in outs)
    assert all(0 < o.completion_tokens <= 6 for o in outs)
    assert outs[0].prompt_tokens > outs[2].prompt_tokens > 0
    # Greedy generation is deterministic and does not depend on the batch it ran in.
    alone = make_llm(llm_cfg(tiny_llama, batch_size=1, cache=False), None).generate([reqs[1]], GenParams(max_new_tokens=6))
    assert alone[0].text == outs[1].text


def test_cache_never_pays_twice_whatever_the_batch(stories260k, tmp_path):
    llm = make_llm(llm_cfg(stories260k), tmp_path, seed=0)
    params = GenParams(max_new_tokens=8)
    prompts = [Request(prompt=p) for p in ("Once upon a time", "The cat", "Lily went to", "One day")]
    first = llm.generate(prompts[:2], params)
    assert llm.counters["generated"] == 2
    mixed = llm.generate([prompts[3], prompts[1], prompts[2], prompts[0], prompts[0]], params)
    assert llm.counters["generated"] == 4  # only the two new prompts (the duplicate is generated once)
    assert mixed[3].text == first[0].text and mixed[3].cached
    assert mixed[1].text == first[1].text
    # A new process (new CachedLLM on the same file) hits the cache too.
    again = make_llm(llm_cfg(stories260k), tmp_path, seed=0)
    outs = again.generate(prompts, params)
    assert again.counters["generated"] == 0 and all(o.cached for o in outs)
    # Different params or seed: a different key.
    again.generate(prompts[:1], GenParams(max_new_tokens=9))
    assert again.counters["generated"] == 1
    assert llm.usage()[llm.name]["prompt_tokens"] > 0


def test_stop_strings_cut_the_output(stories260k):
    llm = make_llm(llm_cfg(stories260k, cache=False), None)
    [full] = llm.generate([Request(prompt="Once upon a time")], GenParams(max_new_tokens=20))
    assert "," in full.text
    [cut] = llm.generate([Request(prompt="Once upon a time")], GenParams(max_new_tokens=20, stop=[","]))
    assert cut.text == full.text.split(",")[0]


def test_llm_translator_drops_cut_lines_also_from_the_cache(stories260k, tmp_path):
    """The 260K story model rarely ends a line within 12 tokens: every text with a line that used the whole budget is
    dropped as translation_truncated (never passed on cut), the others kept; a second translator on the same cache
    (all hits) flags the same texts; `on_truncated: keep` passes them on and counts the cut lines."""
    texts = ["Bonjour le monde.\n\nIl fait beau.", "Merci.", "Oui.", "La maison est grande et le jardin est vert."]
    cfg = LLMTranslatorConfig(kind="llm", llm=llm_cfg(stories260k), mode="completion", fewshot=1, max_new_tokens=12)
    assert cfg.on_truncated == "drop"
    recs = [Record(id=str(i), lang="fra_Latn", fields={"text": t}) for i, t in enumerate(texts)]
    fates = []
    for _ in range(2):  # the second run is served from the cache
        stage = TranslateStage("to_en", LLMTranslator(make_llm(cfg.llm, tmp_path), cfg), {"text": "text_en"}, "en")
        out = stage.process([Record(r.id, r.lang, dict(r.fields)) for r in recs])
        fates.append([(o.kind, o.reason) for o in out])
    assert fates[0] == fates[1]
    assert ("drop", "translation_truncated") in fates[0] and {k for k, _ in fates[0]} <= {"keep", "drop"}
    lines = [(line, i) for i, t in enumerate(texts) for line in t.split("\n") if line.strip()]
    llm = make_llm(cfg.llm, tmp_path)
    translator = LLMTranslator(llm, cfg)
    raw = llm.generate([translator._request(line, get_language("fr"), get_language("en")) for line, _ in lines],
                       GenParams(max_new_tokens=12, stop=["\n"], seed=llm.seed))
    cut = {i for (_, i), r in zip(lines, raw) if r.completion_tokens >= 12}
    assert [k == "drop" for k, _ in fates[0]] == [i in cut for i in range(len(texts))]
    keep = LLMTranslator(make_llm(cfg.llm, tmp_path), cfg.model_copy(update={"on_truncated": "keep"}))
    assert all(o.ok for o in keep.translate(texts, "fr", "en"))
    assert keep.usage()[keep.name]["truncated_lines"] == sum(r.completion_tokens >= 12 for r in raw)


def test_llm_translator_keeps_lines_and_quarantines_failures(stories260k, tmp_path):
    cfg = LLMTranslatorConfig(kind="llm", llm=llm_cfg(stories260k), mode="completion", fewshot=2, max_new_tokens=12,
                              on_truncated="keep")
    translator = LLMTranslator(make_llm(cfg.llm, tmp_path), cfg)
    outs = translator.translate(["Bonjour le monde.\n\nIl fait beau.", "Merci."], "fr", "eng_Latn")
    assert len(outs) == 2 and all(o.ok for o in outs)
    assert outs[0].text.count("\n") == 2  # paragraph structure survives
    prompt = translator._request("Merci.", get_language("fr"), get_language("en")).prompt
    assert prompt.endswith("French: Merci.\nEnglish:") and "La bibliothèque ouvre" in prompt

    class DropsOne:
        """A real translator whose output list is one short, as a buggy MT service might return."""

        name = "drops-one"

        def translate(self, texts, src, tgt):
            return translator.translate(texts, src, tgt)[:-1]

        def usage(self):
            return {}

    stage = TranslateStage("to_en", DropsOne(), {"text": "text_en"}, "en")
    recs = [Record(id=str(i), lang="fra_Latn", fields={"text": "Merci."}) for i in range(2)]
    outcomes = stage.process(recs + [Record(id="x", lang="fra_Latn", fields={})])
    assert [o.kind for o in outcomes] == ["quarantine"] * 3
    assert outcomes[0].reason == "translator_count" and outcomes[2].reason == "missing_field"

    good = TranslateStage("to_en", translator, {"text": "text_en"}, "en").process(recs)
    assert all(o.kind == "keep" and o.record["text_en"] for o in good)
    assert good[0].record["text"] == "Merci."  # the source field is never overwritten


def test_language_table():
    for code in ("hi", "hin_Deva", "Hindi", "hindi", "HIN"):
        assert get_language(code).flores == "hin_Deva"
    assert get_language("cmn_hans").flores == "zho_Hans" and get_language("zh").xlsum == "chinese_simplified"
    assert get_language("sw").name == "Swahili" and get_language("swh_Latn").iso1 == "sw"
    assert get_language("yue_Hant").short == "yue_Hant"
    with pytest.raises(UnknownLanguageError, match="unknown language 'klingon'"):
        get_language("klingon")
    with pytest.raises(UnknownLanguageError, match="did you mean"):
        get_language("hin_Dev")
