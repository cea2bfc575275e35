"""A run directory holds one recipe's training: the same command resumes its own checkpoints (each stamped inside with
the recipe hash), another recipe is refused by name, and `--fresh` moves earlier work aside without deleting it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import MLIFT
from test_train import base_recipe, make_mlift_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def recipe(tmp_path, stories260k) -> Path:
    """The 260K Llama with LoRA on a small chat set; each test sets steps, saves and lr with --set."""
    data = make_mlift_dataset(tmp_path / "data", n=48)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(base_recipe(stories260k, data, tmp_path / "unused", save_strategy="steps")))
    return path


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), **extra}


def _cmd(recipe: Path, out: Path, *sets: str, flags: tuple[str, ...] = ()) -> list[str]:
    args = [*MLIFT, "train", str(recipe), "--set", f"output_dir={out}", "--set", "sft.logging_steps=1",
            "--no-progress", *flags]
    for s in sets:
        args += ["--set", s]
    return args


def _train(recipe: Path, out: Path, *sets: str, flags: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(recipe, out, *sets, flags=flags), cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=_env(**env))


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _stamp(ckpt: Path) -> str:
    return json.loads((ckpt / "mlift_stamp.json").read_text())["hash"]


FIRST = ("sft.max_steps=6", "sft.save_steps=3", "sft.save_total_limit=2")
SECOND = ("sft.max_steps=2", "sft.save_steps=1", "sft.save_total_limit=2", "sft.learning_rate=0.5")


def test_another_recipe_is_refused_then_fresh_moves_the_first_run_aside(tmp_path, recipe):
    """DESIGN.md section 7: 6 steps saved every 3, then 2 steps with another lr, save_total_limit 2, used to delete the
    first run's checkpoints by rotation. Now the second run is refused by name, and with --fresh nothing is deleted."""
    out = tmp_path / "run"
    first = _train(recipe, out, *FIRST)
    assert first.returncode == 0, first.stderr[-3000:]
    first_hash = json.loads((out / "manifest.json").read_text())["recipe"]["hash"]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    assert {_stamp(c) for c in out.glob("checkpoint-*")} == {first_hash}
    before = _files(out)

    refused = _train(recipe, out, *SECOND, flags=("--resume",))  # --resume, as the requeued sbatch passes it
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "checkpoint-6 was made by another recipe" in refused.stderr and "--fresh" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _files(out) == before, "a refused run touches nothing"

    fresh = _train(recipe, out, *SECOND, flags=("--fresh",))
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    [previous] = list(out.glob("previous-*"))
    assert _files(previous) == before, "the first run is kept whole, byte for byte"
    second_hash = json.loads((out / "manifest.json").read_text())["recipe"]["hash"]
    assert second_hash != first_hash
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert {_stamp(c) for c in out.glob("checkpoint-*")} == {second_hash}


@pytest.mark.slow
def test_the_same_command_resumes_after_ctrl_c_and_then_has_nothing_to_do(tmp_path, recipe):
    """Ctrl-C prints 'rerun the same command to resume': it does, from the latest checkpoint of this recipe."""
    out = tmp_path / "run"
    # long enough that Ctrl-C always lands mid-run, even when this process is slow to see the first checkpoint
    sets = ("sft.max_steps=300", "sft.save_steps=2", "sft.per_device_train_batch_size=2")
    proc = subprocess.Popen(_cmd(recipe, out, *sets), cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.time() + 300
        while not list(out.glob("checkpoint-*/trainer_state.json")):
            assert proc.poll() is None and time.time() < deadline, "training ended before its first checkpoint"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "rerun the same command to resume" in err
    assert not (out / "manifest.json").exists(), "interrupted before the end"
    saved = max(int(p.parent.name.split("-")[1]) for p in out.glob("checkpoint-*/trainer_state.json"))

    again = _train(recipe, out, *sets)
    assert again.returncode == 0, again.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resumed_from"].endswith(f"checkpoint-{saved}") and manifest["metrics"]["global_step"] == 300

    third = _train(recipe, out, *sets)
    assert third.returncode == 0 and "nothing to do" in third.stderr
    assert json.loads((out / "manifest.json").read_text()) == manifest, "a finished run is never redone"


@pytest.mark.slow
def test_stop_file_checkpoints_at_the_next_step_and_exits_75(tmp_path, recipe):
    """The preemption path without Slurm: the stop file the batch script touches makes training save and stop."""
    out = tmp_path / "run"
    stop = tmp_path / "stop"
    stop.touch()
    sets = ("sft.max_steps=4", "sft.save_steps=100")
    first = _train(recipe, out, *sets, MLIFT_STOP_FILE=str(stop))
    assert first.returncode == 75, first.stderr[-3000:]
    assert (out / "checkpoint-1" / "trainer_state.json").is_file() and not (out / "manifest.json").exists()
    stop.unlink()
    second = _train(recipe, out, *sets, MLIFT_STOP_FILE=str(stop))
    assert second.returncode == 0, second.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resumed_from"].endswith("checkpoint-1") and manifest["metrics"]["global_step"] == 4


@pytest.mark.parametrize("stamp", [None, "0123456789abcdef"])
def test_unstamped_or_foreign_checkpoint_is_refused(tmp_path, recipe, stamp):
    out = tmp_path / "run"
    ckpt = out / "checkpoint-5"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text("{}")
    if stamp:
        (ckpt / "mlift_stamp.json").write_text(json.dumps({"hash": stamp}))
    done = _train(recipe, out, "sft.max_steps=1")
    assert done.returncode == 2 and "checkpoint-5 was made by another recipe" in done.stderr, done.stderr[-2000:]
    assert (stamp or "unstamped") in done.stderr and "Traceback" not in done.stderr
