"""Every command, given the bad inputs a new user really types: exit 2, a message naming the file, line or key, and no
traceback. Each case is one `mlift ...` subprocess that fails before any model is loaded (about 1-2 s each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SHARED

UDHR = str(SHARED / "data" / "udhr" / "{iso3}.txt")
ALPACA = str(SHARED / "data" / "alpaca" / "alpaca_tiny.json")
STORIES = str(SHARED / "models" / "stories260K")
LLM = {"backend": "transformers", "model": STORIES}


def generate(tmp: Path, **over) -> dict:
    base = {"output_dir": str(tmp / "gen"), "languages": ["fra_Latn"],
            "sources": [{"kind": "text", "path": UDHR, "unit": "line", "limit": 5}],
            "translator": {"kind": "llm", "mode": "completion", "llm": LLM}, "instruct": {"llm": LLM}}
    return {**base, **over}


def translate(tmp: Path, **over) -> dict:
    base = {"output_dir": str(tmp / "tr"), "input": {"path": str(tmp / "texts.txt"), "lang": "fra_Latn"},
            "target_langs": ["eng_Latn"], "translator": {"kind": "llm", "mode": "completion", "llm": LLM}}
    return {**base, **over}


def alpaca(tmp: Path, **over) -> dict:
    base = {"output_dir": str(tmp / "ta"), "source": {"path": ALPACA, "limit": 4}, "target_langs": ["fra_Latn"],
            "translator": {"kind": "llm", "mode": "completion", "llm": LLM}}
    return {**base, **over}


def pinch(tmp: Path, **over) -> dict:
    mixture = {"kind": "pinch", "english": {"path": ALPACA, "lang": "eng_Latn"}, "multilingual": {"path": ALPACA},
               "langs": ["eng_Latn", "fra_Latn"], "percent": 25, **over}
    return {"output_dir": str(tmp / "mix"), "mixture": mixture}


def judge(tmp: Path) -> dict:
    return {"output_dir": str(tmp / "judge"), "model_a": {"path": str(tmp / "a.jsonl")},
            "model_b": {"path": str(tmp / "b.jsonl")}, "judge": {"backend": "openai", "model": "m",
                                                                  "base_url": "http://127.0.0.1:9/v1"}}


# (case id, how to build the recipe / argv, what stderr must name). {tmp} is the test's directory.
CASES = [
    ("generate-missing-corpus", ["generate", "R"],
     lambda t: generate(t, sources=[{"kind": "text", "path": str(t / "nowhere_{iso3}.txt")}]), "nowhere_fra.txt"),
    ("generate-unknown-language", ["generate", "R"], lambda t: generate(t, languages=["fra_Latn", "xx_Fake"]),
     "languages.1"),
    ("generate-lsh-bands", ["generate", "R"], lambda t: generate(t, fragments={"dedup": {"num_perm": 64, "bands": 5}}),
     "fragments.dedup"),
    ("generate-min-gt-max-tokens", ["generate", "R"],
     lambda t: generate(t, fragments={"min_tokens": 100, "max_tokens": 10}), "min_tokens (100) > max_tokens (10)"),
    ("generate-shard-8-of-8", ["generate", "R", "--shard", "8/8"], generate, "--shard '8/8'"),
    ("generate-unknown-key", ["generate", "R"], lambda t: generate(t, fragmnets={}), "fragmnets"),
    ("translate-missing-input", ["translate", "R"],
     lambda t: translate(t, input={"path": str(t / "nope.txt"), "lang": "fr"}), "input.path"),
    ("translate-json-array-of-strings", ["translate", "R"],
     lambda t: translate(t, input={"path": str(t / "array.json")}), "array.json:1"),
    ("translate-unknown-target", ["translate", "R"], lambda t: translate(t, target_langs=["xx_Fake"]),
     "target_langs.0"),
    ("translate-shard-bad", ["translate", "R", "--shard", "three"], translate, "--shard 'three'"),
    ("baseline-translated-alpaca-unknown-lang", ["baseline", "translated-alpaca", "R"],
     lambda t: alpaca(t, target_langs=["fra_Latn", "xx_Fake"]), "xx_Fake"),
    ("baseline-translated-alpaca-missing-source", ["baseline", "translated-alpaca", "R"],
     lambda t: alpaca(t, source={"path": str(t / "missing_alpaca.json")}), "missing_alpaca.json"),
    ("baseline-sphinx-missing-source", ["baseline", "sphinx", "R"],
     lambda t: {**alpaca(t, source={"path": str(t / "missing_sphinx.json")}), "output_dir": str(t / "sp")},
     "missing_sphinx.json"),
    ("baseline-templated-unknown-lang", ["baseline", "templated", "R"],
     lambda t: {"output_dir": str(t / "tp"), "datasets": [{"task": "summarization", "source": "xlsum",
                                                            "local_dir": str(SHARED / "data" / "xlsum"),
                                                            "langs": ["xx_Fake"], "split": "train"}]}, "xx_Fake"),
    ("mix-pinch-both-percent-and-count", ["mix", "R"], lambda t: pinch(t, count=10), "exactly one of percent or count"),
    ("mix-pinch-neither", ["mix", "R"], lambda t: pinch(t, percent=None), "mixture"),
    ("mix-unknown-lang", ["mix", "R"], lambda t: pinch(t, langs=["eng_Latn", "xx_Fake"]), "mixture.langs.1"),
    ("mix-missing-dataset", ["mix", "R"],
     lambda t: pinch(t, english={"path": str(t / "no_english.jsonl"), "lang": "en"}), "no_english.jsonl"),
    ("check-contamination-missing-dataset", ["check-contamination", "R"],
     lambda t: {"dataset": str(t / "no_dataset"), "output_dir": str(t / "cc"),
                "eval_sets": [{"kind": "flores", "path": str(SHARED / "data" / "flores200" / "devtest")}]},
     "no_dataset"),
    ("train-unknown-key", ["train", "R"],
     lambda t: {"output_dir": str(t / "train"), "model": {"name_or_path": STORIES},
                "data": {"datasets": [{"path": ALPACA}]}, "sft": {"learning_rat": 1e-3}}, "sft.learning_rat"),
    ("train-missing-dataset", ["train", "R"],
     lambda t: {"output_dir": str(t / "train2"), "model": {"name_or_path": STORIES},
                "data": {"datasets": [{"path": str(t / "no_train_data.json")}]}}, "no_train_data.json"),
    ("eval-unknown-language", ["eval", "--model", STORIES, "--suite", str(REPO / "recipes/eval/local_small.yaml"),
                               "--langs", "xx_Fake", "--out", "{tmp}/ev"], None, "xx_Fake"),
    ("eval-missing-suite", ["eval", "--model", STORIES, "--suite", "{tmp}/no_suite.yaml", "--out", "{tmp}/ev"], None,
     "no_suite.yaml"),
    ("judge-answers-without-response", ["judge", "R"], judge, "b.jsonl:2"),
    ("judge-unknown-lang-in-answers", ["judge", "R"],
     lambda t: {**judge(t), "model_b": {"path": str(t / "badlang.jsonl")}}, "badlang.jsonl:1: lang"),
    ("report-malformed-table", ["report", "{tmp}/evdir", "--out", "{tmp}/rep"], None, "table.json"),
    ("report-table-missing-key", ["report", "{tmp}/evdir2", "--out", "{tmp}/rep2"], None, "row 0: missing key 'metric'"),
    ("sweep-unknown-key", ["sweep", "R", "--dry-run"],
     lambda t: {**yaml.safe_load((REPO / "recipes/sweeps/tiny_cpu.yaml").read_text()), "seedz": [1]}, "seedz"),
    ("sweep-missing-dataset-recipe", ["sweep", "R", "--dry-run"],
     lambda t: {**yaml.safe_load((REPO / "recipes/sweeps/tiny_cpu.yaml").read_text()), "output_dir": str(t / "sw"),
                "datasets": [{"name": "x", "command": "mix", "recipe": str(t / "no_mix_recipe.yaml")}]},
     "no_mix_recipe.yaml"),
]


def _inputs(tmp: Path) -> None:
    (tmp / "texts.txt").write_text("Bonjour.\n")
    (tmp / "array.json").write_text(json.dumps(["Bonjour.", "Salut."], indent=1))
    row = {"id": "1", "lang": "fra_Latn", "instruction": "Dis bonjour.", "response": "Bonjour."}
    (tmp / "a.jsonl").write_text(json.dumps(row) + "\n" + json.dumps({**row, "id": "2"}) + "\n")
    (tmp / "b.jsonl").write_text(json.dumps(row) + "\n" + json.dumps({"id": "2", "lang": "fra_Latn",
                                                                      "instruction": "Dis bonjour."}) + "\n")
    (tmp / "badlang.jsonl").write_text(json.dumps({**row, "lang": "xx_Fake"}) + "\n")
    (tmp / "evdir").mkdir()
    (tmp / "evdir" / "table.json").write_text('[{"task": "xlsum_fr", "value": 0.1,')
    (tmp / "evdir2").mkdir()
    (tmp / "evdir2" / "table.json").write_text(json.dumps([{"task": "t", "family": "xlsum", "lang": "fra_Latn",
                                                            "value": 0.1}]))


def mlift(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("WANDB_PROJECT", None)
    return subprocess.run([sys.executable, "-m", "mlift", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_message_with_exit_2(case, tmp_path, shared_dir):
    name, argv, make, expected = case
    _inputs(tmp_path)
    if make is not None:
        recipe = tmp_path / f"{name}.yaml"
        recipe.write_text(yaml.safe_dump(make(tmp_path)))
        argv = [str(recipe) if a == "R" else a for a in argv]
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    proc = mlift(argv, tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert expected in proc.stderr, proc.stderr


def test_a_failed_first_run_leaves_the_directory_to_the_corrected_recipe(tmp_path, shared_dir):
    """A mistyped corpus path fails (exit 2); the corrected recipe then runs in the same output_dir. Once it has
    produced data, a third, different recipe is refused there."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(generate(tmp_path, sources=[{"kind": "text", "path": str(tmp_path / "typo_{iso3}")}])))
    assert mlift(["generate", str(bad), "--no-progress"], tmp_path).returncode == 2
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(generate(tmp_path)))
    proc = mlift(["generate", str(good), "--stage", "fragments", "--no-progress"], tmp_path)  # no model needed
    assert proc.returncode == 0, proc.stderr[-2000:]
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(generate(tmp_path, seed=7)))
    proc = mlift(["generate", str(other), "--stage", "fragments", "--no-progress"], tmp_path)
    assert proc.returncode == 2 and "holds a run of another recipe" in proc.stderr, proc.stderr[-2000:]
