"""Contamination check: planted overlaps with FLORES devtest, XL-Sum test and MMLU test are found (and dropped on
request); clean data has none; an overlap shorter than n tokens is not a hit."""

from __future__ import annotations

import csv
import json

import yaml

from mlift.cli import main
from mlift.contamination import EvalSet, NgramIndex, eval_texts, tokens


def _chat(rid: str, lang: str, user: str, answer: str) -> dict:
    return {"id": rid, "lang": lang, "messages": [{"role": "user", "content": user},
                                                  {"role": "assistant", "content": answer}], "meta": {}}


def test_planted_overlaps_are_found_and_clean_data_is_clean(tmp_path, shared_dir):
    data = shared_dir / "data"
    alpaca = json.loads((data / "alpaca/alpaca_tiny.json").read_text())
    rows = [_chat(f"clean-{i}", "eng_Latn", r["instruction"], r["output"]) for i, r in enumerate(alpaca)]
    fra = (data / "flores200/devtest/fra_Latn.devtest").read_text(encoding="utf-8").splitlines()
    zho = (data / "flores200/devtest/zho_Hans.devtest").read_text(encoding="utf-8").splitlines()
    xlsum = json.loads((data / "xlsum/english_test.jsonl").read_text(encoding="utf-8").splitlines()[2])
    with open(data / "mmlu/test/high_school_biology_test.csv", encoding="utf-8", newline="") as fh:
        mmlu = max(csv.DictReader(fh), key=lambda r: len(r["question"].split()))
    rows += [
        _chat("plant-flores-fr", "fra_Latn", f"Traduisez : {fra[100]}", "…"),
        _chat("plant-flores-zh", "zho_Hans", "翻译成英文。", zho[7]),  # character n-grams for Chinese
        _chat("plant-xlsum", "eng_Latn", "Summarize.", xlsum["summary"]),
        _chat("plant-mmlu", "eng_Latn", mmlu["question"], "B"),
    ]
    # 12 words of a FLORES sentence: below the 13-gram threshold, so not a hit.
    rows.append(_chat("near-miss", "fra_Latn", " ".join(tokens(fra[200])[:12]), "ok"))
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "cc"
    recipe = tmp_path / "cc.yaml"
    recipe.write_text(yaml.safe_dump({"dataset": str(train), "output_dir": str(out), "n": 13, "drop": True,
                                      "eval_sets": [{"kind": "xlsum", "path": str(data / "xlsum"), "langs": ["en"]},
                                                    {"kind": "flores", "path": str(data / "flores200/devtest")},
                                                    {"kind": "mmlu", "path": str(data / "mmlu/test")}]}))
    assert main(["check-contamination", str(recipe), "--no-progress"]) == 0
    rep = json.loads((out / "contamination.json").read_text())
    hit_ids = {i for row in rep["per_language"].values() for i in row["ids"]}
    assert hit_ids == {"plant-flores-fr", "plant-flores-zh", "plant-xlsum", "plant-mmlu"}
    assert rep["per_language"]["eng_Latn"]["contaminated"] == 2 and rep["per_language"]["eng_Latn"]["records"] == 102
    assert rep["per_language"]["fra_Latn"] == {**rep["per_language"]["fra_Latn"], "records": 2, "contaminated": 1}
    assert set(rep["per_language"]["zho_Hans"]["eval_sets"]) == {"flores_devtest/zho_Hans"}
    assert rep["eval_texts"]["mmlu_test"] == 14042
    m = json.loads((out / "manifest.json").read_text())
    c = m["stages"]["dataset/clean"]["counts"]
    assert c == {"in": 105, "keep": 101, "drop": 4, "quarantine": 0}
    kept = [json.loads(x) for p in sorted(out.glob("dataset/clean/shard-*.jsonl")) for x in p.read_text().splitlines()]
    assert not {r["id"] for r in kept} & hit_ids and len(kept) == 101


def test_clean_builder_output_has_no_hits(shared_dir):
    data = shared_dir / "data"
    index = NgramIndex(13).add_all(eval_texts(EvalSet(kind="flores", path=str(data / "flores200/devtest"))))
    index.add_all(eval_texts(EvalSet(kind="xlsum", path=str(data / "xlsum"), langs=["en", "fr", "es"])))
    for lang in ("english", "french", "spanish"):  # train articles of XL-Sum: disjoint from test
        for line in (data / f"xlsum/{lang}_train.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert not index.hits(row["text"] + "\n" + row["summary"]), row["id"]
    row = json.loads((data / "xlsum/english_test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert index.hits(row["text"])  # and the check can fail


def test_tokens_cover_scripts_without_spaces_and_combining_marks():
    assert tokens("बीबीसी हिन्दी के") == ["बीबीसी", "हिन्दी", "के"]  # Devanagari vowel signs stay inside the word
    assert tokens("人人生而自由") == list("人人生而自由")


def test_build_recipes_can_report_contamination_in_the_manifest(tmp_path, shared_dir):
    data = shared_dir / "data"
    out = tmp_path / "tp"
    recipe = tmp_path / "tp.yaml"
    recipe.write_text(yaml.safe_dump({
        "output_dir": str(out), "num_shards": 1, "template_langs": "english",
        "datasets": [{"task": "summarization", "source": "xlsum", "local_dir": str(data / "xlsum"), "langs": ["en", "hi"]}],
        "contamination": {"eval_sets": [{"kind": "xlsum", "path": str(data / "xlsum")}]},
    }, allow_unicode=True))
    assert main(["baseline", "templated", str(recipe), "--no-progress"]) == 0
    rep = json.loads((out / "manifest.json").read_text())["contamination"]
    assert rep["per_language"]["eng_Latn"]["contaminated"] == 0
    # Real finding: BBC Hindi articles share a boilerplate line ("... Android app, click here") across train and test.
    assert rep["per_language"]["hin_Deva"]["contaminated"] == 5
    assert rep["per_language"]["hin_Deva"]["eval_sets"] == {"xlsum_test/hindi": 5}
    # boilerplate_texts: n-grams in >= 2 eval texts are ignored (the app line is in 2 of the 5 Hindi test articles; the
    # social-media tail varies across this small sample, so it still hits here), while a one-article leak still counts.
    from mlift.contamination import EvalSet, NgramIndex

    xlsum = [EvalSet(kind="xlsum", path=str(data / "xlsum"), langs=["hi"])]
    plain, cleaned = NgramIndex.build(xlsum), NgramIndex.build(xlsum, boilerplate_texts=2)
    app_line = "बीबीसी हिन्दी के एंड्रॉएड ऐप के लिए आप यहां क्लिक कर सकते हैं"
    assert plain.hits(app_line) and not cleaned.hits(app_line) and cleaned.boilerplate_ngrams == 4
    leak = json.loads((data / "xlsum" / "hindi_test.jsonl").read_text(encoding="utf-8").splitlines()[0])["text"][:400]
    assert sum(cleaned.hits(leak).values()) == sum(plain.hits(leak).values()) > 0
