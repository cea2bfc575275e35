"""lm-eval's own tasks through an eval suite (`tasks:`): the committed presets name real lm-eval 0.4.13 tasks, and
Global-MMLU (a group of 57 subject tasks) and Belebele run through lm-eval on local files in their hub layouts.

Until the project's local Hugging Face endpoint fixture exists, the data comes from local JSONL files in the real hub
column layouts (CohereLabs/Global-MMLU `hi`, facebook/belebele `hin_Deva`), set through the suite's `overrides`
(dataset_path: json + data_files), which lm-eval passes down to every task of the group."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from conftest import shared_path

from mlift.eval.lmeval import build_lmeval
from mlift.eval.suite import EvalSuite, LmEvalTask
from mlift.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted((REPO / "recipes" / "eval").glob("standard_*.yaml"))


def lm_eval_names() -> set[str]:
    """Every task/group name lm-eval's shipped YAMLs define (read from the files: indexing them all takes ~20 s)."""
    import lm_eval

    names = set()
    for path in (Path(lm_eval.__file__).parent / "tasks").rglob("*.yaml"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("task:", "group:")) and line.split(":", 1)[1].strip():
                names.add(line.split(":", 1)[1].strip().strip("'\""))
    return names


def test_presets_name_real_lm_eval_tasks(tmp_path):
    assert {p.stem for p in PRESETS} == {f"standard_{x}" for x in
                                         ("global_mmlu", "belebele", "mgsm", "xcopa", "xnli", "xstorycloze", "pawsx")}
    known = lm_eval_names()
    for path in PRESETS:
        suite = load_recipe(path, EvalSuite).cfg
        specs = build_lmeval(suite.tasks, suite.langs, tmp_path)
        assert specs and len(specs) == len(suite.langs)
        missing = [s.name for s in specs if s.name not in known]
        assert not missing, f"{path.name}: lm-eval has no {missing}"


def test_names_placeholders_and_the_override_wrapper(tmp_path):
    task = LmEvalTask(lm_eval="xnli_{code}", codes={"zho_Hans": "zh"}, overrides={
        "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": "/d/{flores}/{iso3}.jsonl"}}})
    specs = build_lmeval([task], ["hin_Deva", "zho_Hans"], tmp_path)
    assert [(s.name, s.family, s.lang, s.run_as) for s in specs] == [
        ("xnli_hi", "xnli", "hin_Deva", "mlift_xnli_hi"), ("xnli_zh", "xnli", "zho_Hans", "mlift_xnli_zh")]
    wrapper = yaml.safe_load((tmp_path / "mlift_xnli_hi.yaml").read_text())
    assert wrapper == {"group": "mlift_xnli_hi", "task": ["xnli_hi"], "dataset_path": "json",
                       "dataset_kwargs": {"data_files": {"test": "/d/hin_Deva/hin.jsonl"}}}


def hub_layout(root: Path) -> dict[str, dict]:
    """Local copies in the hub layouts, filled with real text from ../shared: Global-MMLU `hi` rows from the Okapi
    Hindi MMLU (one question per subject; every Global-MMLU column), Belebele `hin_Deva` rows over FLORES passages."""
    gm = root / "global_mmlu" / "hi"
    gm.mkdir(parents=True)
    for split, src in (("test", "hi_val.json"), ("dev", "hi_dev.json")):
        by_subject: dict[str, list] = defaultdict(list)
        for r in json.loads(shared_path("data", "m_mmlu", src).read_text(encoding="utf-8")):
            by_subject[r["id"].split("/")[0]].append(r)
        rows = [{"sample_id": f"{s}/{split}/{i}", "subject": s, "subject_category": "Other",
                 "question": r["instruction"], **{f"option_{c}": r[f"option_{c}"] for c in "abcd"},
                 "answer": r["answer"], "required_knowledge": "[]", "time_sensitive": "[]", "reference": "[]",
                 "culture": "[]", "region": "[]", "country": "[]", "cultural_sensitivity_label": "CA",
                 "is_annotated": False}
                for i, (s, rs) in enumerate(sorted(by_subject.items())) for r in rs[:1]]
        (gm / f"{split}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                           encoding="utf-8")
    flores = shared_path("data", "flores200", "devtest", "hin_Deva.devtest").read_text(encoding="utf-8").splitlines()
    bb = root / "belebele"
    bb.mkdir()
    bele = []
    for i in range(6):
        passage = " ".join(flores[3 * i:3 * i + 3])
        options = [flores[3 * j].split()[0] for j in (i, i + 6, i + 12, i + 18)]
        bele.append({"link": f"https://example.org/{i}", "question_number": 1, "flores_passage": passage,
                     "question": "अनुच्छेद का पहला शब्द क्या है?", **{f"mc_answer{k + 1}": o for k, o in enumerate(options)},
                     "correct_answer_num": "1", "dry_run": False, "ds": "2023-05-03"})
    (bb / "hin_Deva.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in bele), encoding="utf-8")
    # MGSM (juletxara/mgsm `fr`): question, answer (None in test), answer_number, equation_solution
    mg = root / "mgsm"
    mg.mkdir()
    problems = [("Marie a 3 pommes et en achète 2 de plus. Combien de pommes a-t-elle ?", 5, "3 + 2 = 5"),
                ("Un train roule 60 km par heure pendant 2 heures. Quelle distance parcourt-il ?", 120, "60 * 2 = 120"),
                ("Paul a 10 euros et dépense 4 euros. Combien lui reste-t-il ?", 6, "10 - 4 = 6"),
                ("Une boîte contient 4 rangées de 5 œufs. Combien d'œufs y a-t-il ?", 20, "4 * 5 = 20")]
    (mg / "fr.jsonl").write_text("".join(json.dumps({"question": q, "answer": None, "answer_number": a,
                                                     "equation_solution": e}, ensure_ascii=False) + "\n"
                                         for q, a, e in problems), encoding="utf-8")
    local = {"dataset_path": "json", "dataset_name": None}
    return {"global_mmlu": {**local, "dataset_kwargs": {"data_files": {"test": str(gm / "test.jsonl"),
                                                                       "dev": str(gm / "dev.jsonl")}}},
            "belebele": {**local, "dataset_kwargs": {"data_files": {"test": str(bb / "{flores}.jsonl")}}},
            "mgsm": {**local, "dataset_kwargs": {"data_files": {"test": str(mg / "{iso1}.jsonl"),
                                                                "train": str(mg / "{iso1}.jsonl")}}}}


@pytest.mark.slow  # lm-eval indexes its ~10k task YAMLs (~20 s)
def test_global_mmlu_and_belebele_through_lm_eval(tmp_path, stories260k):
    from mlift.eval.item_scores import read_items
    from mlift.eval.run import run_eval
    from mlift.report.tables import make_report

    overrides = hub_layout(tmp_path / "hub")
    suite = EvalSuite(seed=1, limit=6, threads=1, langs=["hin_Deva"], apply_chat_template=False, tasks=[
        LmEvalTask(lm_eval="global_mmlu_full_{iso1}", overrides=overrides["global_mmlu"]),
        LmEvalTask(lm_eval="belebele_{flores}", overrides=overrides["belebele"]),
        LmEvalTask(lm_eval="mgsm_direct_{iso1}", langs=["fra_Latn"], overrides=overrides["mgsm"],
                   family="mgsm")])
    out = tmp_path / "run"
    table = run_eval(suite, str(stories260k), out)
    got = {(r["family"], r["lang"], r["metric"]): r for r in table}
    gm, bb = got[("global_mmlu_full", "hin_Deva", "acc")], got[("belebele", "hin_Deva", "acc")]
    assert gm["n"] == 57 and bb["n"] == 6  # one question per subject, each of the group's 57 tasks ran
    items = defaultdict(list)
    for r in read_items(out):
        items[(r["family"], r["metric"])].append(r["stats"][0])
    # the per-language value is lm-eval's size-weighted group accuracy = the mean over all its items
    assert len(items[("global_mmlu_full", "acc")]) == 57
    assert gm["value"] == pytest.approx(sum(items[("global_mmlu_full", "acc")]) / 57)
    assert bb["value"] == pytest.approx(sum(items[("belebele", "acc")]) / 6)
    # MGSM is scored under two lm-eval filters: one metric each, in the table and per item
    for filt in ("flexible-extract", "remove_whitespace"):
        row = got[("mgsm", "fra_Latn", f"exact_match({filt})")]
        scores = items[("mgsm", f"exact_match({filt})")]
        assert row["n"] == 4 and len(scores) == 4 and row["value"] == pytest.approx(sum(scores) / 4)
    summary = make_report([f"stories@1={out}"], tmp_path / "report")
    assert {"global_mmlu_full/acc/hin_Deva", "belebele/acc/hin_Deva", "belebele/acc/avg",
            "mgsm/exact_match(flexible-extract)/fra_Latn"} <= set(summary["columns"])
    md = (tmp_path / "report" / "table.md").read_text(encoding="utf-8")
    assert "### belebele acc" in md and "### global_mmlu_full acc" in md
