"""Recipes fail fast and clearly: unknown keys, wrong types and missing fields name the file, line and key path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlift.commands.translate import TranslateRecipe
from mlift.recipe import RecipeError, load_recipe

GOOD = """\
seed: 3
output_dir: runs/x
input:
  path: data.txt
  lang: fr
target_langs: [en]
translator:
  kind: llm
  llm:
    backend: openai
    model: some-model
    base_url: http://127.0.0.1:9/v1
    concurrency: 4
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_valid_recipe_resolves_defaults_and_hash(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD), TranslateRecipe)
    assert recipe.seed == 3
    assert recipe.resolved["num_shards"] == 4  # default filled in
    assert recipe.resolved["translator"]["llm"]["timeout_s"] == 120.0
    again = load_recipe(write(tmp_path, GOOD), TranslateRecipe)
    assert recipe.hash == again.hash and len(recipe.hash) == 16
    changed = load_recipe(write(tmp_path, GOOD), TranslateRecipe, ["seed=4"])
    assert changed.hash != recipe.hash
    assert changed.as_manifest()["overrides"] == ["seed=4"]


def test_misspelt_key_names_file_line_and_key(tmp_path):
    path = write(tmp_path, GOOD.replace("    concurrency: 4", "    concurency: 4"))
    with pytest.raises(RecipeError) as err:
        load_recipe(path, TranslateRecipe)
    msg = str(err.value)
    assert str(path) in msg
    assert f"{path}:13: translator.llm.concurency: unknown key" in msg
    assert "concurrency" in msg  # the expected keys are listed


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(RecipeError, match=r"recipe.yaml:1: sed: unknown key"):
        load_recipe(write(tmp_path, "sed: 1\n" + GOOD), TranslateRecipe)


def test_wrong_type_and_missing_field(tmp_path):
    text = GOOD.replace("seed: 3", "seed: three").replace("output_dir: runs/x\n", "")
    with pytest.raises(RecipeError) as err:
        load_recipe(write(tmp_path, text), TranslateRecipe)
    msg = str(err.value)
    assert "recipe.yaml:1: seed:" in msg and "'three'" in msg
    assert "output_dir: required key is missing" in msg
    assert "2 problems" in msg


def test_wrong_backend_tag_is_named(tmp_path):
    with pytest.raises(RecipeError, match=r"translator.llm.backend"):
        load_recipe(write(tmp_path, GOOD.replace("backend: openai", "backend: opnai")), TranslateRecipe)


def test_overrides_apply_nested_values_and_fail_on_unknown_keys(tmp_path):
    path = write(tmp_path, GOOD)
    recipe = load_recipe(path, TranslateRecipe, ["translator.llm.concurrency=32", "target_langs=[de, es]",
                                                 'translator.llm.params.stop=["\\n"]'])
    assert recipe.cfg.translator.llm.concurrency == 32
    assert recipe.cfg.target_langs == ["de", "es"]
    assert recipe.cfg.translator.llm.params.stop == ["\n"]
    with pytest.raises(RecipeError, match=r"translator.llm.concurrecy: unknown key"):
        load_recipe(path, TranslateRecipe, ["translator.llm.concurrecy=3"])
    with pytest.raises(RecipeError, match="expected KEY=VALUE"):
        load_recipe(path, TranslateRecipe, ["seed"])


def test_cli_reports_misspelt_key_and_exits_nonzero(tmp_path):
    path = write(tmp_path, GOOD.replace("num_shards", "x").replace("target_langs", "target_lang"))
    proc = subprocess.run([sys.executable, "-m", "mlift", "translate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{path}:6: target_lang: unknown key" in proc.stderr
    assert "target_langs: required key is missing" in proc.stderr


def test_help_lists_every_subcommand_and_unbuilt_ones_refuse():
    proc = subprocess.run([sys.executable, "-m", "mlift", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in ("generate", "baseline", "mix", "train", "eval", "report", "sweep", "demo"):
        assert f"\n    {name} " in proc.stdout or f"\n    {name}\n" in proc.stdout, name
    import importlib.util

    from mlift.cli import COMMANDS

    unbuilt = [n for n, (mod, _, _) in COMMANDS.items() if importlib.util.find_spec(mod) is None]
    for name in unbuilt:
        proc = subprocess.run([sys.executable, "-m", "mlift", name], capture_output=True, text=True)
        assert proc.returncode == 2 and "not built yet" in proc.stderr
