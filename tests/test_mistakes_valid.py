"""Valid inputs that used to lose data or crash (issue 22): a BOM or CRLF file translates every record, a BOM before a
JSON array or a CSV header is not part of the data, and `--set sft.learning_rate=1e-3` (read by YAML as text) trains.
The same walk directory and helpers as the mistake walk (tests/test_mistakes.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from test_mistakes import TRANSLATOR, make_walk_dir, run_cli, train, translate


@pytest.fixture(scope="module")
def walk_dir(tmp_path_factory, shared_dir) -> Path:
    return make_walk_dir(tmp_path_factory.mktemp("walk_valid"))


def _translate_run(T: Path, name: str, path: Path, capsys, **inp) -> tuple[int, str, Path]:
    out = T / "out" / name
    doc = translate(T, output_dir=str(out), input={"path": str(path), **inp}, num_shards=1,
                    translator={**TRANSLATOR, "max_new_tokens": 4, "on_truncated": "keep"})
    recipe = T / "recipes" / f"{name}.yaml"
    recipe.parent.mkdir(exist_ok=True)
    recipe.write_text(yaml.safe_dump(doc))
    rc, output = run_cli(["translate", str(recipe), "--no-progress"], capsys)
    return rc, output, out


def _kept(out: Path) -> list[dict]:
    return [json.loads(x) for f in sorted(out.glob("to_en/shard-*.jsonl")) for x in f.read_text().splitlines()]


def test_bom_jsonl_translates_every_record(walk_dir, capsys):
    rows = [{"id": f"r{i}", "lang": "fra_Latn", "text": t} for i, t in enumerate(["Bonjour.", "Salut.", "Merci."])]
    path = walk_dir / "in" / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\r\n" for r in rows).encode())
    rc, output, out = _translate_run(walk_dir, "tr-bom-jsonl", path, capsys)
    assert rc == 0, output[-3000:]
    assert json.loads((out / "input" / "_complete").read_text())["unreadable"] == 0
    assert sorted(r["id"] for r in _kept(out)) == ["r0", "r1", "r2"], output[-3000:]
    assert "quarantined" not in output.split("to_en:")[0]  # no input line was lost


def test_bom_crlf_text_keeps_no_bom_and_counts_quarantine(walk_dir, capsys):
    path = walk_dir / "in" / "bom_crlf.txt"
    path.write_bytes(b"\xef\xbb\xbfBonjour.\r\nSalut.\r\n")
    rc, output, out = _translate_run(walk_dir, "tr-bom-txt", path, capsys, lang="fra_Latn")
    assert rc == 0, output[-3000:]
    texts = [r["text"] for r in _kept(out)]
    assert sorted(texts) == ["Bonjour.", "Salut."], texts
    # a JSONL with one bad line: translated all the same, and the console says where the bad line went
    bad = walk_dir / "in" / "one_bad.jsonl"
    bad.write_text('{"id": "a", "lang": "fra_Latn", "text": "Bonjour."}\n{"id": "b", "lang": \n')
    rc, output, out = _translate_run(walk_dir, "tr-one-bad", bad, capsys)
    assert rc == 0, output[-3000:]
    assert f"input: 1 unreadable line(s) quarantined, see {out / 'input' / 'quarantine.jsonl'}" in output


def test_bom_json_and_csv_sources_lose_nothing(walk_dir, capsys):
    """A BOM before a JSON array (mix) and before a CSV header (an eval set) is not part of the data."""
    from mlift.data.contamination import EvalSet, eval_texts
    from mlift.data.conversations import DataSource, SourceRead

    rows = [{"instruction": f"Q{i}", "output": f"A{i}", "lang": "fra_Latn"} for i in range(3)]
    path = walk_dir / "in" / "bom_array.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(rows).encode())
    read = SourceRead(DataSource(path=str(path)))
    assert (len(read.records), len(read.bad)) == (3, 0)
    csv_dir = walk_dir / "in" / "mmlu_bom"
    csv_dir.mkdir()
    (csv_dir / "x_test.csv").write_bytes(b"\xef\xbb\xbfquestion,choice0,choice1,choice2,choice3\nQ,a,b,c,d\n")
    assert list(eval_texts(EvalSet(kind="mmlu", path=str(csv_dir)))) == [("mmlu_test", "Q a b c d")]


@pytest.mark.slow
def test_learning_rate_written_as_1e_3_trains(walk_dir, capsys, monkeypatch):
    """The README's `--set sft.learning_rate=1e-3` (YAML reads 1e-3 as text): a number, and the model trains."""
    monkeypatch.chdir(REPO)
    out = walk_dir / "out" / "train-lr-text"
    recipe = walk_dir / "recipes" / "train-lr-text.yaml"
    recipe.parent.mkdir(exist_ok=True)
    recipe.write_text(yaml.safe_dump(train(walk_dir, output_dir=str(out), sft={"learning_rate": "2e-4"})))
    rc, output = run_cli(["train", str(recipe), "--set", "sft.learning_rate=1e-3", "--set", "sft.max_steps=2",
                          "--set", "sft.logging_steps=1", "--no-progress"], capsys)
    assert rc == 0, output[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"]["resolved"]["sft"]["learning_rate"] == 1e-3
    assert manifest["metrics"]["global_step"] == 2 and manifest["metrics"]["last_loss"] is not None


def test_a_gguf_model_directory_is_a_model(tmp_path):
    """A directory holding the recipe's gguf_file (the CPU demo's SmolLM2 and Gemma) has no config.json and is valid;
    the same directory without that file is refused by name."""
    from mlift.commands.modelpath import check_model
    from mlift.recipe import RecipeError

    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    check_model(str(tmp_path), "instruct.llm.model", adapter_ok=True, gguf_file="model.gguf")
    with pytest.raises(RecipeError, match="other.gguf"):
        check_model(str(tmp_path), "instruct.llm.model", adapter_ok=True, gguf_file="other.gguf")
    with pytest.raises(RecipeError, match="no config.json"):
        check_model(str(tmp_path), "instruct.llm.model", adapter_ok=True)
