"""One data-source schema and reader (mlift.data.conversations) for mix, train and the baselines: an Alpaca JSONL file works
everywhere, and its malformed lines are quarantined with file:line and counted."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

GOOD = [{"instruction": f"Name a colour, number {i}.", "input": "" if i % 2 else "Be brief.", "output": f"Blue {i}."}
        for i in range(6)]


def alpaca_jsonl(path: Path) -> Path:
    lines = [json.dumps(r) for r in GOOD[:2]] + ['{"instruction": "cut off', json.dumps(GOOD[2]),
                                                  json.dumps({"instruction": "no output here"})]
    lines += [json.dumps(r) for r in GOOD[3:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path  # bad: line 3 (malformed JSON), line 5 (no output)


def test_reader_reads_alpaca_jsonl_and_names_the_bad_lines(tmp_path):
    from mlift.data.conversations import DataSource, iter_conversations
    from mlift.records import BadLine

    f = alpaca_jsonl(tmp_path / "alpaca.jsonl")
    items = list(iter_conversations(DataSource(path=str(f), lang="eng_Latn")))
    bad = [x for x in items if isinstance(x, BadLine)]
    good = [x for x in items if not isinstance(x, BadLine)]
    assert [(b.line, b.reason.split(":")[0]) for b in bad] == [(3, "malformed JSON"), (5, "row has none of messages, "
                                                                                        "prompt/completion, instruction/output (keys ['instruction'])")]
    assert len(good) == 6 and good[0]["messages"][0]["content"] == "Name a colour, number 0.\n\nBe brief."
    assert good[0].lang == "eng_Latn" and good[0]["output"] == "Blue 0." and good[0].meta["source_row"].endswith(":1")


def test_mix_takes_alpaca_jsonl_and_quarantines_its_bad_lines(tmp_path):
    from mlift.cli import main

    f = alpaca_jsonl(tmp_path / "alpaca.jsonl")
    out = tmp_path / "mix"
    recipe = tmp_path / "mix.yaml"
    recipe.write_text(yaml.safe_dump({"seed": 0, "output_dir": str(out), "mixture": {
        "kind": "monolingual", "lang": "eng_Latn", "budget": 4, "source": {"path": str(f), "lang": "eng_Latn"}}}))
    assert main(["mix", str(recipe), "--no-progress"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["total_records"] == 4 and manifest["bad_lines"] == 2
    assert manifest["sources"][0]["records"] == 6 and manifest["sources"][0]["bad_lines"] == 2
    q = [json.loads(x) for x in (out / "quarantine" / "sources.jsonl").read_text().splitlines()]
    assert [x["where"] for x in q] == [f"{f}:3", f"{f}:5"]
    assert main(["mix", str(recipe), "--no-progress"]) == 0  # a rerun rewrites the quarantine, no duplicates
    assert len((out / "quarantine" / "sources.jsonl").read_text().splitlines()) == 2


def test_train_mixture_takes_alpaca_jsonl_and_counts_bad_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("MLIFT_DATA_CACHE", str(tmp_path / "cache"))
    from mlift.train.data import DatasetSource, build_mixture

    f = alpaca_jsonl(tmp_path / "alpaca.jsonl")
    ds, info = build_mixture([DatasetSource(path=str(f), weight=2.0)], seed=0)
    assert len(ds) == 12 and info["bad_lines"] == 2 and info["sources"][0]["examples"] == 6
    assert info["cache"] == "built" and ds.cache_files  # file-backed Arrow, not an in-memory table
    q = [json.loads(x) for x in Path(info["quarantine"]).read_text().splitlines()]
    assert [x["where"] for x in q] == [f"{f}:3", f"{f}:5"]
    again, info2 = build_mixture([DatasetSource(path=str(f), weight=2.0)], seed=0)
    assert info2["cache"] == "hit" and info2["hash"] == info["hash"] and again["messages"] == ds["messages"]
    f.write_text(f.read_text() + json.dumps(GOOD[0]) + "\n")  # the file changed: a new mixture, not the stale cache
    third, info3 = build_mixture([DatasetSource(path=str(f), weight=2.0)], seed=0)
    assert info3["cache"] == "built" and len(third) == 14


def test_every_shipped_recipe_loads_through_its_schema():
    from mlift.recipe import load_recipe

    repo = Path(__file__).resolve().parents[1]
    from mlift.baselines.sphinx import SphinxRecipe
    from mlift.baselines.translated_alpaca import TranslatedAlpacaRecipe
    from mlift.data.mix import MixRecipe
    from mlift.train.sft import TrainRecipe

    checked = 0
    for path in sorted((repo / "recipes").rglob("*.yaml")):
        schema = {"mix": MixRecipe}.get(path.parent.name)
        if path.parent.name == "baselines" and ("alpaca" in path.name or "dolly" in path.name):
            schema = TranslatedAlpacaRecipe
        if path.parent.name == "baselines" and "sphinx" in path.name:
            schema = SphinxRecipe
        if path.name == "config.yaml" or path.name.startswith("train_"):
            schema = TrainRecipe
        if schema is not None:
            load_recipe(path, schema, [])
            checked += 1
    assert checked >= 12
