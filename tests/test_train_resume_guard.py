"""`mlift train --resume` refuses a checkpoint that another recipe made (a changed lr or data would mix two runs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = "recipes/stories260k/lora-sft/config.yaml"


def _train(out: Path, *sets: str) -> subprocess.CompletedProcess:
    args = [str(REPO / ".venv/bin/mlift"), "train", RECIPE, "--set", f"output_dir={out}", "--set", "sft.max_steps=2",
            "--set", "sft.save_steps=1", "--set", "sft.logging_steps=1", "--no-progress", "--resume"]
    for s in sets:
        args += ["--set", s]
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_resume_refuses_another_recipes_checkpoint(tmp_path, stories260k):
    out = tmp_path / "run"
    first = _train(out)
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in out.glob("checkpoint-*"))
    other = _train(out, "sft.learning_rate=0.5")
    assert other.returncode == 2, other.stderr[-3000:]
    assert "made by another recipe" in other.stderr and "Traceback" not in other.stderr
    assert "checkpoint-2" in other.stderr
