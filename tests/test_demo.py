"""`mlift demo --fast` end to end (slow: minutes on 2 CPU cores). Needs the PyPI model packages; skips without them."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlift.sweep.demo import DATA, PACKAGES, RECIPE_FILES, RECIPES

MISSING = [m for m in PACKAGES if importlib.util.find_spec(m) is None]


def test_shipped_demo_data_is_small_and_complete():
    files = [p for p in DATA.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 200_000
    for lang in ("fra_Latn", "spa_Latn", "deu_Latn"):
        paras = [p for p in (DATA / "corpus" / f"{lang}.txt").read_text(encoding="utf-8").split("\n\n") if p.strip()]
        assert len(paras) >= 10 and all(30 <= len(p.split()) <= 120 for p in paras)
        lines = (DATA / "eval" / "flores200" / "test" / f"{lang}.test").read_text(encoding="utf-8").splitlines()
        assert len(lines) == len((DATA / "eval" / "flores200" / "test" / "eng_Latn.test").read_text().splitlines())
    assert len(json.loads((DATA / "alpaca_en.json").read_text())) >= 30
    for name in RECIPE_FILES:
        assert (RECIPES / name).is_file()


def test_demo_recipes_validate():
    from mlift.baselines.translated_alpaca import TranslatedAlpacaRecipe
    from mlift.eval.run import EvalSuite
    from mlift.generate.config import GenerateRecipe
    from mlift.recipe import load_recipe
    from mlift.train.sft import load_train_recipe

    load_recipe(RECIPES / "generate.yaml", GenerateRecipe)
    load_recipe(RECIPES / "baseline_translated_alpaca.yaml", TranslatedAlpacaRecipe)
    load_recipe(RECIPES / "eval.yaml", EvalSuite)
    for which in ("natural", "translated"):
        load_train_recipe(RECIPES / f"train_{which}.yaml")


@pytest.mark.slow
@pytest.mark.skipif(bool(MISSING), reason=f"PyPI model packages not installed: {', '.join(MISSING)} "
                    "(`mlift demo` installs them; the test does not download)")
def test_demo_fast_end_to_end(tmp_path: Path):
    out, results = tmp_path / "run", tmp_path / "results"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "mlift", "demo", "--fast", "--out", str(out), "--results", str(results)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    for name in ("table.md", "index.html", "manifest.json"):
        assert (results / name).is_file(), name
    assert list(results.glob("*.png"))
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["ok"] and set(manifest["steps"]) >= {"generate", "baseline", "train-natural", "eval-natural", "report"}
    table = (results / "table.md").read_text()
    assert "natural" in table and "translated" in table
    # a rerun resumes: every step is skipped
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0
    steps = json.loads((results / "manifest.json").read_text())["steps"]
    assert all(s["status"] == "skipped" for k, s in steps.items() if k != "packages")
