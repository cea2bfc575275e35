"""The committed hub tasks in eval/ (issue 12 item 7): they are what the generator writes (no drift), lm-eval's
TaskManager indexes them under their unique names, and plain lm-eval resolves their `!function` hooks from a
directory that is not the repository (so nothing depends on mlift-only import paths)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO, shared_path

from mlift.eval.hub import write_hub_tasks

EVAL = REPO / "eval"


def test_committed_eval_yamls_equal_the_generator(tmp_path: Path) -> None:
    n = write_hub_tasks(tmp_path)
    ours = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text(encoding="utf-8") for p in EVAL.iterdir()
                 if p.suffix in (".yaml", ".py") and p.name != "__init__.py"}
    assert n == len(ours) - 1 and set(ours) == set(committed), "eval/ drifted: run python -m mlift.eval.tasks --write eval/"
    stale = [name for name in ours if ours[name] != committed[name]]
    assert not stale, f"eval/ drifted ({stale[:3]}...): run python -m mlift.eval.tasks --write eval/"


def test_task_manager_lists_the_committed_tasks() -> None:
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(EVAL), include_defaults=False)
    names = set(manager.all_subtasks)
    for task in ("mlift_xlsum_hin_Deva", "mlift_flores_hin_Deva-eng_Latn", "mlift_flores_eng_Latn-zho_Hans",
                 "mlift_mmlu_global_hin_Deva", "mlift_mmlu_okapi_fra_Latn"):
        assert task in names
    assert {"mlift_xlsum", "mlift_flores", "mlift_mmlu"} <= set(manager.all_tags)
    assert len([n for n in names if n.startswith("mlift_")]) == len(list(EVAL.glob("mlift_*.yaml")))


def test_plain_lm_eval_resolves_the_hooks_outside_the_repo(tmp_path: Path) -> None:
    """In a fresh interpreter whose CWD is not the repo: lm-eval's YAML loader resolves `!function utils.*`, and the
    XL-Sum process_docs hook turns real XL-Sum rows into the docs mlift's per-run task would write."""
    rows = shared_path("data", "xlsum", "hindi_test.jsonl")
    script = f"""
import json, datasets
from lm_eval.tasks._yaml_loader import load_yaml
cfg = load_yaml({str(EVAL / 'mlift_xlsum_hin_Deva.yaml')!r}, resolve_func=True)
assert callable(cfg["process_docs"]) and callable(cfg["process_results"])
assert all(callable(m["aggregation"]) for m in cfg["metric_list"])
flores = load_yaml({str(EVAL / 'mlift_flores_hin_Deva-eng_Latn.yaml')!r}, resolve_func=True)
assert callable(flores["process_docs"])
ds = datasets.load_dataset("json", data_files={str(rows)!r}, split="train")
print(json.dumps(cfg["process_docs"](ds).to_list(), ensure_ascii=False))
"""
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    docs = json.loads(done.stdout.strip().splitlines()[-1])
    from mlift.eval.xlsum import xlsum_docs
    from mlift.languages import get_language

    raw = [json.loads(x) for x in rows.read_text(encoding="utf-8").splitlines() if x.strip()]
    assert docs == xlsum_docs(raw, get_language("hin_Deva"))
