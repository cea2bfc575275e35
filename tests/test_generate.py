"""mlift generate: the five stages end to end on real data from ../shared (the tiny models, and a rule server standing in
for hosted translation and judge APIs where the outcome must be known), bad input, resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, shared_path


def _recipe(tmp_path: Path, translator_model: Path, instruct_model: Path, out: Path, langs=("fra_Latn", "deu_Latn", "spa_Latn"),
            **extra) -> Path:
    data = {
        "seed": 0, "output_dir": str(out), "num_shards": 2, "languages": list(langs),
        "sources": [
            {"kind": "text", "path": str(shared_path("data", "udhr")) + "/{iso3}.txt", "unit": "line", "limit": 8},
            {"kind": "jsonl", "path": str(shared_path("data", "xlsum")) + "/{xlsum}_train.jsonl", "id_field": "id",
             "limit": 1, "required": False},
        ],
        # tiny models translate to gibberish: stage 5's language check of the instruction would drop every pair
        "fragments": {"min_tokens": 12, "max_tokens": 80, "max_per_doc": 1, "langid": {"check_instruction": False}},
        "translator": {"kind": "llm", "mode": "completion", "fewshot": 1, "max_new_tokens": 12, "on_truncated": "keep",
                       "llm": {"backend": "transformers", "model": str(translator_model), "batch_size": 1}},
        # stories260K (a base model: completion prompts) writes the instructions; the random tiny Llama (chat template)
        # judges: its answers never parse as a rating, which exercises the recorded fallback.
        "instruct": {"llm": {"backend": "transformers", "model": str(translator_model), "batch_size": 1,
                             "price_per_1m_prompt": 0.5, "price_per_1m_completion": 1.0},
                     "max_new_tokens": 12, "min_chars": 2},
        # Tiny models write gibberish: permissive thresholds, and a recorded fallback when the rating does not parse.
        "score": {"judge": {"backend": "transformers", "model": str(instruct_model), "batch_size": 1},
                  "max_new_tokens": 3, "rating_fallback": 3, "min_rating": 1, "min_quality": 0.0, "min_native_lang": 0.3,
                  "length_ratio": [0.0, 1000.0], "max_copy": 1.0},
        "select": {"target": 3, "method": "kcenter", "embedder": {"kind": "hashing", "dim": 64}},
        "batch_size": 4, "torch_threads": 1,
    }
    for k, v in extra.items():
        data[k] = v
    path = tmp_path / f"recipe-{out.name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _run_cli(recipe: Path) -> int:
    from mlift.cli import main

    return main(["generate", str(recipe), "--no-progress"])


def _final(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text(encoding="utf-8") for p in sorted(out.glob("*/to_target/shard-*.jsonl"))}


# A stand-in for hosted translation and judge APIs (tests/servers.py's LatencyServer, answering by rule), for the roles a
# tiny local model cannot play: a translation into L that language ID accepts, and a rating the parser reads.
# Translation: to English it tags each line with its language; into L it writes a fixed question in L, except that the
# German translator leaves an instruction starting with "What" in English (stage 5 must drop that pair).
# Judge: French pairs get {"rating": 5} as asked by JSON schema; German ones "4 out of 5" in text (a server that ignores
# the schema: the text parser reads it); Spanish ones "Rating: 4", or "Rating: 2" (below min_rating 3) where the
# response is a preamble line of the UDHR ("Considerando ...").
INTO = {"French": "Quels sont les droits de chaque être humain selon la Déclaration universelle des droits de l'homme ?",
        "Spanish": "¿Cuáles son los derechos de todo ser humano según la Declaración Universal de Derechos Humanos?",
        "German": "Welche Rechte hat jeder Mensch nach der Allgemeinen Erklärung der Menschenrechte?"}
LEFT_IN_ENGLISH = "What rights does every human being have under the Universal Declaration of Human Rights?"


def rule_answer(body: dict) -> str:
    import re

    prompt = body["messages"][-1]["content"]
    asked = re.match(r"Translate the following (.+?) text into (.+?)\. ", prompt)
    if asked:
        src, tgt = asked.groups()
        text = prompt.split("\n\n", 1)[1]  # translate_chat.jinja: the request, a blank line, the text
        if tgt == "English":
            return f"[{src}] {text}"
        return LEFT_IN_ENGLISH if tgt == "German" and text.startswith("What") else INTO[tgt]
    lang, response = re.search(r"\nResponse: \[(\w+)\] (.*)", prompt).groups()  # score_chat.jinja
    if lang == "French":
        return json.dumps({"rating": 5})
    if lang == "German":
        return "I would rate this response 4 out of 5."
    return "Rating: 2" if response.startswith("Considerando") else "Rating: 4"


def _records(out: Path, lang: str, step: str) -> list[dict]:
    return [json.loads(x) for p in sorted((out / lang / step).glob("shard-*.jsonl"))
            for x in p.read_text(encoding="utf-8").splitlines()]


def test_generate_end_to_end(tmp_path, stories260k, monkeypatch):
    """The five stages with the language check of stage 5 and the rating parser on: stories260K writes the English
    instructions (a real model, greedy), the rule server translates and judges, so what each stage keeps and drops, and
    why, follows from the records it is given: French pairs pass; German ones whose instruction the translator left in
    English are dropped at stage 5 (instruction_not_in_target_language); Spanish preamble lines at scoring
    (low_rating)."""
    from servers import LatencyServer

    server = LatencyServer(answer=rule_answer)
    monkeypatch.setenv("MLIFT_TEST_KEY", "not-a-secret")
    api = {"backend": "openai", "model": "rule-stand-in", "base_url": f"{server.url}/v1", "api_key_env": "MLIFT_TEST_KEY",
           "max_retries": 0, "concurrency": 4}
    out = tmp_path / "run"
    recipe = _recipe(tmp_path, stories260k, stories260k, out,
                     fragments={"min_tokens": 12, "max_tokens": 80, "max_per_doc": 1},  # the language checks on
                     translator={"kind": "llm", "mode": "chat", "fewshot": 0, "max_new_tokens": 64, "llm": api},
                     score={"judge": api, "max_new_tokens": 16, "min_rating": 3, "min_quality": 0.0,  # no fallback
                            "min_native_lang": 0.3, "length_ratio": [0.0, 1000.0], "max_copy": 1.0})
    try:
        assert _run_cli(recipe) == 0
        manifest = json.loads((out / "manifest.json").read_text())
        before = _final(out)
        assert _run_cli(recipe) == 0  # a rerun is a no-op that gives the same data (everything resumed from markers)
        assert _final(out) == before
    finally:
        server.stop()
    stages = manifest["stages"]

    def outcome(lang: str, step: str) -> tuple[int, int, dict, dict]:
        c, r = stages[f"{lang}/{step}"]["counts"], stages[f"{lang}/{step}"]["reasons"]
        return c["in"], c["keep"], r["drop"], r["quarantine"]

    # what the rules give, counted on each stage's input records
    scored = {lang: len(_records(out, lang, "instruct")) for lang in ("fra_Latn", "deu_Latn", "spa_Latn")}
    preamble = sum(r["fragment"].startswith("Considerando") for r in _records(out, "spa_Latn", "instruct"))
    english = sum(r["instruction_en"].startswith("What") for r in _records(out, "deu_Latn", "select"))
    assert scored["fra_Latn"] > 3 and scored["deu_Latn"] > 3 and 0 < preamble < scored["spa_Latn"] and 0 < english < 3
    assert outcome("fra_Latn", "score") == (scored["fra_Latn"], scored["fra_Latn"], {}, {})
    assert outcome("deu_Latn", "score") == (scored["deu_Latn"], scored["deu_Latn"], {}, {})
    assert outcome("spa_Latn", "score") == (scored["spa_Latn"], scored["spa_Latn"] - preamble, {"low_rating": preamble}, {})
    spanish = min(3, scored["spa_Latn"] - preamble)
    for lang, n in (("fra_Latn", scored["fra_Latn"]), ("deu_Latn", scored["deu_Latn"]),
                    ("spa_Latn", scored["spa_Latn"] - preamble)):
        assert outcome(lang, "select") == (n, min(3, n), {"not_selected": n - 3} if n > 3 else {}, {})
    assert outcome("fra_Latn", "to_target") == (3, 3, {}, {})
    assert outcome("deu_Latn", "to_target") == (3, 3 - english, {"instruction_not_in_target_language": english}, {})
    assert outcome("spa_Latn", "to_target") == (spanish, spanish, {}, {})
    assert {lang: f["final"] for lang, f in manifest["funnel"].items()} == \
        {"fra_Latn": 3, "deu_Latn": 3 - english, "spa_Latn": spanish}
    assert all(f["adds_up"] for f in manifest["funnel"].values())
    # every step's in = kept + dropped + quarantined, and each step's in = the previous step's kept
    for lang in manifest["funnel"]:
        prev_keep = None
        for step in ("dedup", "to_english", "instruct", "score", "select", "to_target"):
            c = stages[f"{lang}/{step}"]["counts"]
            assert c["in"] == c["keep"] + c["drop"] + c["quarantine"]
            assert prev_keep is None or c["in"] == prev_keep
            prev_keep = c["keep"]
    paths = {lang: {(r["meta"]["scores"]["rating"], r["meta"]["scores"]["rating_path"]) for r in _records(out, lang, "score")}
             for lang in manifest["funnel"]}
    assert paths == {"fra_Latn": {(5.0, "json")}, "deu_Latn": {(4.0, "text")}, "spa_Latn": {(4.0, "text")}}

    from datasets import load_dataset

    ds = load_dataset("json", data_files=str(out / "*/to_target/shard-*.jsonl"), split="train")
    assert len(ds) == 6 - english + spanish
    for row in ds:
        name = {"fra_Latn": "French", "deu_Latn": "German", "spa_Latn": "Spanish"}[row["lang"]]
        assert row["messages"][0] == {"role": "user", "content": INTO[name]}
        assert row["meta"]["scores"]["instruction_lang"] >= 0.5  # language ID's P(L) of the instruction
        assert row["meta"]["fragment_en"].startswith(f"[{name}] ")
        # the response is the ORIGINAL native fragment: the exact span of its source document
        src = row["meta"]["source"]
        if src["kind"] == "text":
            offset = int(src["doc_id"].rsplit("@", 1)[1])  # line documents are named file@byte-offset
            line = Path(src["name"]).read_bytes()[offset:].split(b"\n")[0].decode("utf-8")
            assert line[src["start"]:src["end"]] == row["messages"][1]["content"]
    ledger = manifest["cost_ledger"]
    assert any(c.get("prompt_tokens", 0) > 0 for c in ledger["per_step"]["instruct"].values())
    assert ledger["total_cost_usd"] > 0
    report = (out / "report.md").read_text()
    assert "## Funnel" in report and (out / "report" / "funnel.png").stat().st_size > 1000
    # examples: per language the first kept pairs, and records of each drop reason the funnel counts
    examples = report.split("## Examples", 1)[1]
    for lang in manifest["funnel"]:
        section = examples.split(f"### {lang}\n", 1)[1].split("\n### ", 1)[0]
        assert "Kept pairs:\n\n- **user**: " in section
        for step in ("fragments", "dedup", "to_english", "instruct", "score", "select", "to_target"):
            for reason, n in stages[f"{lang}/{step}"]["reasons"]["drop"].items():
                assert f"Dropped at {step}, reason `{reason}` ({n}):" in section
    assert (out / "README.md").exists()


def test_fragments_bad_input(tmp_path):
    """Empty, whitespace, wrong-language, undecodable, malformed and duplicate input: all counted, none lost."""
    from mlift.generate.config import GenerateRecipe
    from mlift.generate.pipeline import Models, run_language
    from mlift.recipe import load_recipe

    fr = "Tous les êtres humains naissent libres et égaux en dignité et en droits. Ils sont doués de raison et de conscience."
    en = "The quick brown fox jumps over the lazy dog while the farmer watches from the old wooden fence nearby."
    rows = [json.dumps({"id": "a", "text": fr}), json.dumps({"id": "b", "text": "   \n  "}), "{not json",
            json.dumps({"id": "c", "text": en}), json.dumps({"id": "d", "text": fr}), json.dumps({"id": "e", "body": "x"}),
            json.dumps({"id": "f", "text": fr.replace("droits", "droits ")})]
    src = tmp_path / "docs.jsonl"
    src.write_bytes(("\n".join(rows) + "\n").encode() + b'{"id": "g", "text": "caf\xe9"}\n')
    base = {"output_dir": str(tmp_path / "out"), "num_shards": 2, "languages": ["fr"],
            "sources": [{"kind": "jsonl", "path": str(src), "id_field": "id"}],
            "fragments": {"min_tokens": 5, "max_tokens": 64},
            "translator": {"kind": "seq2seq", "model": "unused"}, "instruct": {"llm": {"backend": "transformers", "model": "unused"}}}
    cfg = load_recipe(None, GenerateRecipe, base=base).cfg
    models = Models(cfg)
    stats = run_language(cfg, "fr", models, only="fragments", progress=False)["fragments"]
    assert stats.counts["in"] == 8
    assert stats.reasons["quarantine"] == {"unreadable": 3, "empty_document": 1}  # bad JSON, bad bytes, no text field
    assert stats.reasons["drop"].get("lang_id") == 1
    assert stats.counts["keep"] == 3
    dedup = run_language(cfg, "fr", models, only="dedup", progress=False)["dedup"]
    assert dedup.counts["in"] == 3 and dedup.counts["keep"] == 1
    assert dedup.reasons["drop"] == {"exact_duplicate": 1, "near_duplicate": 1}


def test_dedup_and_selection_are_deterministic():
    import numpy as np

    from mlift.generate.config import EmbedderConfig, SelectConfig
    from mlift.generate.dedup import MinHasher
    from mlift.generate.select import Embedder, select_indices

    h = MinHasher(64, 5, seed=1)
    a, b = h("the same sentence about human rights and dignity"), h("the same sentence about human rights and dignity!")
    assert (a == b).mean() > 0.7 and (a == h("completely different words here, nothing shared")).mean() < 0.2
    emb = Embedder(EmbedderConfig(kind="hashing", dim=64))([f"question {i} about topic {i % 7}" for i in range(200)])
    q = np.linspace(0, 1, 200)
    for method in ("kcenter", "cluster"):
        cfg = SelectConfig(target=20, method=method, clusters=5)
        first = select_indices(emb, q, cfg, seed=3)
        assert len(first) == 20 and (first == select_indices(emb, q, cfg, seed=3)).all()
    assert 199 in select_indices(emb, q, SelectConfig(target=5), seed=0)  # k-center starts at the best quality


def test_judge_rating_parse():
    from mlift.generate.instruct import clean_instruction
    from mlift.generate.score import copy_fraction, parse_rating

    assert [parse_rating(t) for t in ["4", "Rating: 5/5", "1. The answer", "4.5", "15", "no idea", None]] == \
        [4, 5, 1, None, None, None, None]
    assert clean_instruction('Instruction: "Explain the right to education."\n\nExtra') == "Explain the right to education."
    assert copy_fraction("everyone has the right to life", "Everyone has the right to life, liberty.") == 1.0


@pytest.mark.slow
def test_generate_kill_and_resume_gives_identical_data(tmp_path, stories260k, tiny_llama):
    clean = tmp_path / "clean"
    killed = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "mlift", "generate", "--no-progress"]
    r1 = _recipe(tmp_path, stories260k, tiny_llama, clean, langs=("fra_Latn", "spa_Latn"))
    r2 = _recipe(tmp_path, stories260k, tiny_llama, killed, langs=("fra_Latn", "spa_Latn"))
    start = time.time()
    subprocess.run([*cmd, str(r1)], env=env, check=True, capture_output=True, cwd=REPO)
    # Kill before the data is complete: the last final-shard marker of the clean run says when that was (the report
    # and plots written after it can take a good part of a run this small).
    full = max(m.stat().st_mtime for m in clean.glob("*/to_target/_done/*")) - start
    delay = random.Random(int(os.environ.get("MLIFT_KILL_SEED", time.time()))).uniform(0.3 * full, 0.8 * full)
    proc = subprocess.Popen([*cmd, str(r2)], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "manifest.json").exists()
    subprocess.run([*cmd, str(r2)], env=env, check=True, capture_output=True, cwd=REPO)
    a, b = _final(clean), _final(killed)
    assert a and a == b, f"killed after {delay:.1f}s of {full:.1f}s"


def test_k_instruction_candidates_are_sampled_cached_and_the_best_scored_one_kept(tmp_path, stories260k):
    """instruct.k = 3: three sampled requests per fragment (seeds seed..seed+2), distinct candidates kept; a rerun is
    served from the cache; the score stage rates every candidate and keeps the one with the highest quality."""
    from pydantic import TypeAdapter

    from mlift.generate.config import InstructConfig, ScoreConfig
    from mlift.generate.instruct import InstructStage
    from mlift.generate.score import ScoreStage
    from mlift.llm import make_llm
    from mlift.llm.base import LLMConfig
    from mlift.records import Record

    llm_cfg = TypeAdapter(LLMConfig).validate_python({"backend": "transformers", "model": str(stories260k),
                                                      "batch_size": 4})
    cfg = InstructConfig(llm=llm_cfg, k=3, temperature=1.0, max_new_tokens=12, min_chars=2)
    frags = ["All human beings are born free and equal in dignity and rights.",
             "Everyone has the right to life, liberty and security of person.",
             "No one shall be held in slavery or servitude in any of its forms."]

    def records() -> list[Record]:
        return [Record(id=f"r{i}", lang="fra_Latn", fields={"fragment": "Tous les êtres humains naissent libres.",
                                                              "fragment_en": t}) for i, t in enumerate(frags)]

    llm = make_llm(llm_cfg, tmp_path, seed=0)
    first = InstructStage(llm, cfg, seed=0).process(records())
    assert llm.counters["requests"] == 9 and llm.counters["generated"] == 9  # 3 seeds x 3 fragments, all distinct
    kept = [o.record for o in first if o.kind == "keep"]
    assert kept, [o.reason for o in first]
    for rec in kept:
        cands = rec["instruction_candidates"]
        assert 1 <= len(cands) <= 3 and len(set(cands)) == len(cands) and rec["instruction_en"] == cands[0]
    assert any(len(rec["instruction_candidates"]) > 1 for rec in kept)  # sampling really varied
    again_llm = make_llm(llm_cfg, tmp_path, seed=0)
    again = InstructStage(again_llm, cfg, seed=0).process(records())
    assert again_llm.counters["cache_hits"] == 9 and again_llm.counters.get("generated", 0) == 0
    assert [o.record.fields for o in again] == [o.record.fields for o in first]

    score_cfg = ScoreConfig(judge=llm_cfg, rating_fallback=3, min_rating=1, min_quality=0.0, min_native_lang=0.0,
                            max_copy=1.0, length_ratio=(0.0, 1000.0))
    scorer = ScoreStage(make_llm(llm_cfg, tmp_path, seed=0), score_cfg, seed=0)
    scored = scorer.process([Record(r.id, r.lang, dict(r.fields), {}) for r in kept])
    for rec, out in zip(kept, scored):
        # each candidate alone, through the same stage: the kept one must be the best of these
        alone = {c: scorer.process([Record(rec.id, rec.lang, {**rec.fields, "instruction_candidates": [c]}, {})])[0]
                 for c in rec["instruction_candidates"]}
        quality = {c: o.record.meta["scores"]["quality"] for c, o in alone.items()}
        assert out.record["instruction_en"] in quality
        assert out.record.meta["scores"]["quality"] == quality[out.record["instruction_en"]] == max(quality.values())


def test_contamination_section_flags_or_drops_final_pairs_and_the_funnel_counts_them(tmp_path, stories260k, tiny_llama):
    """Planted overlap: the eval set holds some of the very UDHR lines the French responses come from. Flag mode keeps
    and marks exactly the pairs that overlap; drop mode (the same run's to_target step redone) drops those pairs."""
    import shutil

    from mlift.data.contamination import EvalSet, NgramIndex, record_text
    from mlift.generate.plan import iter_all

    lines = [x.strip() for x in shared_path("data", "udhr", "fra.txt").read_text(encoding="utf-8").splitlines()]
    planted = tmp_path / "planted_eval.jsonl"
    planted.write_text("".join(json.dumps({"text": x}, ensure_ascii=False) + "\n" for x in lines[2:6]), encoding="utf-8")
    section = {"n": 8, "eval_sets": [{"kind": "jsonl", "path": str(planted), "name": "planted"}]}
    out = tmp_path / "flag"
    assert _run_cli(_recipe(tmp_path, stories260k, tiny_llama, out, langs=("fra_Latn",), contamination=section)) == 0
    index = NgramIndex.build([EvalSet(kind="jsonl", path=str(planted), name="planted")], n=8)
    final = list(iter_all(out / "fra_Latn" / "to_target", 2))
    overlapping = {r.id for r in final if index.hits(record_text(r))}
    assert {r.id for r in final if r.meta["contamination_ngrams"]} == overlapping  # flagged == overlapping
    assert all(r.meta["contamination_sets"] == ("planted" if r.id in overlapping else "") for r in final)
    fun = json.loads((out / "manifest.json").read_text())["funnel"]["fra_Latn"]
    assert fun["contamination"]["flagged"] == len(overlapping) and fun["contamination"]["dropped"] == 0
    assert 0 < len(overlapping) < len(final) and fun["adds_up"]  # some pairs clean, some not
    assert "## Contamination" in (out / "report.md").read_text()

    # drop mode: the same data up to `select`, to_target redone (its translations come from the run's request cache)
    dropped = tmp_path / "drop"
    shutil.copytree(out, dropped, ignore=shutil.ignore_patterns("to_target", "_recipe.json", "manifest.json"))
    recipe = _recipe(tmp_path, stories260k, tiny_llama, dropped, langs=("fra_Latn",),
                     contamination={**section, "drop": True})
    assert _run_cli(recipe) == 0
    kept = {r.id for r in iter_all(dropped / "fra_Latn" / "to_target", 2)}
    assert kept == {r.id for r in final} - overlapping
    fun = json.loads((dropped / "manifest.json").read_text())["funnel"]["fra_Latn"]
    assert fun["contamination"]["dropped"] == len(overlapping) and fun["contamination"]["flagged"] == 0
    assert fun["adds_up"]
