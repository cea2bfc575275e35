"""Small eval defects of issue 18 item 6: MMLU few-shot examples that fall back to the evaluated split are said so
(manifest source + console)."""

from __future__ import annotations

from pathlib import Path

from conftest import shared_path

from mlift.eval_mmlu import build_mmlu
from mlift.eval_suite import MMLUTask
from mlift.languages import get_language


def test_mmlu_fewshot_from_the_test_split_is_noted(tmp_path: Path, capsys) -> None:
    data = shared_path("data")
    spec = build_mmlu(MMLUTask(format="okapi", fewshot_split="train"), get_language("fr"), tmp_path, data,
                      first=2, pooled=True)  # m_mmlu has dev and val, no train
    note = spec.source["fewshot"]
    assert note["split"] == "val" and "no train split" in note["note"]
    assert "no train split" in capsys.readouterr().err
    assert "fewshot" in spec.to_json()["source"]  # what the eval manifest records
    with_dev = build_mmlu(MMLUTask(format="okapi"), get_language("fr"), tmp_path, data, first=2, pooled=True)
    assert "note" not in with_dev.source["fewshot"]
