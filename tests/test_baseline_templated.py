"""The templated (xP3/Aya-style) builder on real XL-Sum train files, NLI templates with answer choices on a local file
in XNLI's schema, and the refusal of eval splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlift.baselines.common import read_stage
from mlift.baselines.templated import EvalSplitError, TemplatedSource, load_rows, load_task
from mlift.cli import main


def _write(path: Path, obj: dict) -> Path:
    path.write_text(yaml.safe_dump(obj, allow_unicode=True), encoding="utf-8")
    return path


XNLI_ROWS = [
    {"premise": "Le chat dort sur le canapé.", "hypothesis": "Un animal se repose.", "label": 0},
    {"premise": "Il pleut depuis ce matin.", "hypothesis": "Il fera beau demain.", "label": 1},
    {"premise": "Marie est arrivée en retard.", "hypothesis": "Marie est arrivée en avance.", "label": 2},
    {"premise": "Ligne sans étiquette.", "hypothesis": "Rien.", "label": -1},
]


def test_templated_xlsum_and_xnli_schema(tmp_path, shared_dir):
    xnli = tmp_path / "xnli_fr_train.jsonl"
    xnli.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in XNLI_ROWS), encoding="utf-8")
    out = tmp_path / "tp"
    recipe = _write(tmp_path / "tp.yaml", {
        "seed": 3, "output_dir": str(out), "num_shards": 2, "templates_per_example": 2, "template_langs": "both",
        "datasets": [
            {"task": "summarization", "source": "xlsum", "local_dir": str(shared_dir / "data/xlsum"),
             "langs": ["eng_Latn", "fra_Latn", "hin_Deva"]},
            {"task": "nli", "source": "jsonl", "path": str(xnli), "langs": ["fra_Latn"]},
        ],
    })
    assert main(["baseline", "templated", str(recipe), "--no-progress"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["languages"]["en"] == {"in": 5, "keep": 10, "drop": 0, "quarantine": 0}  # 5 articles x 2 templates
    assert m["languages"]["fr"]["in"] == 5 + 3  # the unlabelled XNLI row (-1) is not a training example
    assert m["total_records"] == sum(v["keep"] for v in m["languages"].values())
    summaries = {json.loads(x)["id"]: json.loads(x) for x in
                 (shared_dir / "data/xlsum/french_train.jsonl").read_text(encoding="utf-8").splitlines()}
    fr = read_stage(out, "dataset/fr")
    templates_used = set()
    nli = [r for r in fr if r.meta["task"] == "nli"]
    for rec in fr:
        user, answer = rec["messages"][0]["content"], rec["messages"][1]["content"]
        templates_used.add(rec.meta["template"])
        assert rec.meta["split"] == "train" and "|||" not in user + answer
        if rec.meta["task"] == "summarization":
            src = summaries[rec.meta["source_id"].split("-xlsum-", 1)[1]]
            assert answer == src["summary"] and src["text"] in user
    assert any(t.endswith("_fr") for t in templates_used) and any(t.endswith("_en") for t in templates_used)
    assert len(nli) == 6
    spec = load_task("nli")
    gold = {r["premise"]: r["label"] for r in XNLI_ROWS}
    for rec in nli:
        premise = next(p for p in gold if p in rec["messages"][0]["content"])
        t = next(t for t in spec.templates if t.name == rec.meta["template"])
        choices = t.answer_choices or spec.answer_choices[t.lang]
        assert rec["messages"][1]["content"] == choices.split("|||")[gold[premise]].strip()
    # "Non" for a French template's contradiction, "No"/"False" for an English one.
    contra = [r for r in nli if "Marie" in r["messages"][0]["content"]]
    assert {r["messages"][1]["content"] for r in contra} <= {"Non", "No", "False"}
    # Deterministic: the same seed picks the same templates.
    out2 = tmp_path / "tp2"
    assert main(["baseline", "templated", str(recipe), "--no-progress", "--set", f"output_dir={out2}"]) == 0
    assert [r.to_json() for r in read_stage(out2, "dataset/fr")] == [r.to_json() for r in fr]


@pytest.mark.parametrize("split", ["test", "validation", "val", "dev"])
def test_templated_refuses_eval_splits(tmp_path, shared_dir, split):
    out = tmp_path / "refused"
    recipe = _write(tmp_path / "r.yaml", {
        "output_dir": str(out),
        "datasets": [{"task": "summarization", "source": "xlsum", "local_dir": str(shared_dir / "data/xlsum"),
                      "langs": ["eng_Latn"], "split": split}],
    })
    assert main(["baseline", "templated", str(recipe), "--no-progress"]) == 2
    assert not list(out.glob("dataset/*/shard-*.jsonl"))
    with pytest.raises(EvalSplitError):
        load_rows(TemplatedSource(task="nli", source="xnli", langs=["fr"], split=split), "fr")  # before any download


def test_templated_refuses_a_local_file_named_like_an_eval_split(tmp_path):
    path = tmp_path / "xnli_fr_test.jsonl"
    path.write_text(json.dumps(XNLI_ROWS[0]) + "\n", encoding="utf-8")
    with pytest.raises(EvalSplitError, match="eval split"):
        load_rows(TemplatedSource(task="nli", source="jsonl", path=str(path), langs=["fr"]), "fr")


def test_every_template_file_renders():
    row = {"text": "Article body.", "summary": "Short.", "title": "T", "premise": "P.", "hypothesis": "H.", "label": 1,
           "sentence1": "A.", "sentence2": "B.", "context": "C.", "question": "Q?", "answer": "A"}
    from mlift.baselines.templated import apply_template

    for task in ("summarization", "nli", "paraphrase", "qa"):
        spec = load_task(task)
        assert len(spec.templates) >= 3 and len({t.lang for t in spec.templates}) >= 3
        for t in spec.templates:
            prompt, target = apply_template(spec, t, row, t.lang)
            assert prompt and target


def test_an_output_dir_resumes_only_its_own_recipe(tmp_path, shared_dir):
    out = tmp_path / "run"
    recipe = _write(tmp_path / "r.yaml", {
        "output_dir": str(out), "num_shards": 1,
        "datasets": [{"task": "summarization", "source": "xlsum", "local_dir": str(shared_dir / "data/xlsum"),
                      "langs": ["sw"]}],
    })
    assert main(["baseline", "templated", str(recipe), "--no-progress"]) == 0
    first = (out / "dataset/sw/shard-00000-of-00001.jsonl").read_bytes()
    assert main(["baseline", "templated", str(recipe), "--no-progress"]) == 0  # resume: same recipe
    # Another seed would reuse the finished shards of the first run without a word: refused instead.
    assert main(["baseline", "templated", str(recipe), "--no-progress", "--set", "seed=5"]) == 2
    assert (out / "dataset/sw/shard-00000-of-00001.jsonl").read_bytes() == first

