"""Contamination check: planted overlaps with FLORES devtest, XL-Sum test and MMLU test are found (and dropped on
request); clean data has none; an overlap shorter than n tokens is not a hit."""

from __future__ import annotations

import csv
import json

import yaml

from mlift.cli import main
from mlift.data.contamination import EvalSet, NgramIndex, eval_texts, tokens


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
    from mlift.data.contamination import EvalSet, NgramIndex

    xlsum = [EvalSet(kind="xlsum", path=str(data / "xlsum"), langs=["hi"])]
    plain, cleaned = NgramIndex.build(xlsum), NgramIndex.build(xlsum, boilerplate_texts=2)
    app_line = "बीबीसी हिन्दी के एंड्रॉएड ऐप के लिए आप यहां क्लिक कर सकते हैं"
    assert plain.hits(app_line) and not cleaned.hits(app_line) and cleaned.boilerplate_ngrams == 4
    leak = json.loads((data / "xlsum" / "hindi_test.jsonl").read_text(encoding="utf-8").splitlines()[0])["text"][:400]
    assert sum(cleaned.hits(leak).values()) == sum(plain.hits(leak).values()) > 0


def _okapi(data, name: str) -> list[dict]:
    return json.loads((data / "m_mmlu" / name).read_text(encoding="utf-8"))


def test_the_mmlu_variants_the_suites_evaluate_are_checked(tmp_path, shared_dir):
    """Planted Okapi m_MMLU (Hindi val, what the suites evaluate), Global-MMLU (parquet, its columns) and OpenAI MMMLU
    (CSV) items are found; an Okapi dev item (few-shot only) is not a hit unless the dev split is asked for."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = shared_dir / "data"
    hi_val, hi_dev, ar_dev = _okapi(data, "hi_val.json"), _okapi(data, "hi_dev.json"), _okapi(data, "ar_dev.json")
    longest = max(hi_val, key=lambda r: len(r["instruction"]))
    # Real Arabic MMLU items that are not in the Okapi split checked (dev), written as a Global-MMLU and an MMMLU file
    by_len = sorted(ar_dev, key=lambda r: -len(r["instruction"]))
    gm_row, mm_row = by_len[0], by_len[1]
    gdir = tmp_path / "global_mmlu" / "ar"
    gdir.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"sample_id": "x/0", "subject": "x", "question": gm_row["instruction"],
                                          **{k: gm_row[k] for k in ("option_a", "option_b", "option_c", "option_d")},
                                          "answer": gm_row["answer"]}]), gdir / "test.parquet")
    mmmlu = tmp_path / "mmmlu_AR_XY.csv"
    with open(mmmlu, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["", "Question", "A", "B", "C", "D", "Answer", "Subject"])
        w.writerow([0, mm_row["instruction"], mm_row["option_a"], mm_row["option_b"], mm_row["option_c"],
                    mm_row["option_d"], mm_row["answer"], "x"])
    dev_item = max(hi_dev, key=lambda r: len(r["instruction"]))
    rows = [_chat("plant-okapi", "hin_Deva", longest["instruction"], longest["option_a"]),
            _chat("plant-global", "arb_Arab", gm_row["instruction"], "?"),
            _chat("plant-mmmlu", "arb_Arab", "Answer this.", mm_row["instruction"]),
            _chat("dev-item", "hin_Deva", dev_item["instruction"], "?"),
            _chat("clean", "hin_Deva", "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतंत्रता प्राप्त है", "हाँ")]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    eval_sets = [{"kind": "okapi_mmlu", "path": str(data / "m_mmlu"), "langs": ["hi", "ar"]},
                 {"kind": "global_mmlu", "path": str(tmp_path / "global_mmlu" / "*" / "test.parquet")},
                 {"kind": "mmmlu", "path": str(mmmlu)}]

    def hits(sets, name):
        recipe = tmp_path / f"{name}.yaml"
        recipe.write_text(yaml.safe_dump({"dataset": str(train), "output_dir": str(tmp_path / name), "n": 8,
                                          "eval_sets": sets}, allow_unicode=True))
        assert main(["check-contamination", str(recipe), "--no-progress"]) == 0
        rep = json.loads((tmp_path / name / "contamination.json").read_text())
        return rep, {i for row in rep["per_language"].values() for i in row["ids"]}

    rep, found = hits(eval_sets, "val")
    assert found == {"plant-okapi", "plant-global", "plant-mmmlu"}
    assert rep["eval_texts"]["okapi_mmlu/hi_val"] == len(hi_val) and rep["eval_texts"]["global_mmlu/ar/test"] == 1
    assert rep["per_language"]["arb_Arab"]["eval_sets"] == {"global_mmlu/ar/test": 1,
                                                            f"mmmlu/{tmp_path.name}/mmmlu_AR_XY": 1}
    assert rep["per_language"]["hin_Deva"]["eval_sets"] == {"okapi_mmlu/hi_val": 1}
    _, found = hits([{**eval_sets[0], "splits": ["val", "dev"]}], "dev")
    assert "dev-item" in found


def test_bad_mmlu_eval_files_are_clear_errors(tmp_path):
    bad = tmp_path / "g.jsonl"
    bad.write_text(json.dumps({"prompt": "no question field"}) + "\n")
    recipe = tmp_path / "r.yaml"
    train = tmp_path / "t.jsonl"
    train.write_text(json.dumps(_chat("a", "eng_Latn", "hi", "there")) + "\n")
    recipe.write_text(yaml.safe_dump({"dataset": str(train), "output_dir": str(tmp_path / "o"),
                                      "eval_sets": [{"kind": "global_mmlu", "path": str(bad)}]}))
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "mlift", "check-contamination", str(recipe)], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and str(bad) in proc.stderr and "'question'" in proc.stderr
    assert "Traceback" not in proc.stderr
    recipe.write_text(yaml.safe_dump({"dataset": str(train), "output_dir": str(tmp_path / "o2"),
                                      "eval_sets": [{"kind": "okapi_mmlu", "path": str(tmp_path)}]}))
    proc = subprocess.run([sys.executable, "-m", "mlift", "check-contamination", str(recipe)], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "no Okapi m_MMLU files" in proc.stderr
