"""`accelerate launch` with the shipped DeepSpeed configs on CPU (2 real gloo processes), and kill + `--resume`.
Slow: the first DeepSpeed run JIT-builds an op (~40 s, cached in ~/.cache/torch_extensions)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ACCELERATE_LAUNCH
from test_train import base_recipe, make_mlift_dataset

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def cpu_accelerate_config(name: str, out: Path) -> Path:
    """A shipped config made to run on CPU: use_cpu (not --cpu, which drops DeepSpeed), no bf16, 2 processes; FSDP
    without meta-device loading (it materialises the weights on a GPU)."""
    cfg = yaml.safe_load((REPO / "recipes/accelerate" / name).read_text())
    cfg.update(use_cpu=True, mixed_precision="no", num_processes=2)
    if cfg["distributed_type"] == "FSDP":
        cfg["fsdp_config"]["fsdp_cpu_ram_efficient_loading"] = False
    path = out / f"cpu-{name}"
    path.write_text(yaml.safe_dump(cfg))
    return path


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}


def write_recipe(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("config", ["zero2.yaml", "zero3.yaml"])
def test_accelerate_deepspeed_lora_on_cpu(config, stories260k, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    data = make_mlift_dataset(tmp_path / "data", n=32)
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path / "recipe.yaml",
                          base_recipe(stories260k, data, out, max_steps=6, per_device_train_batch_size=4))
    cmd = [*ACCELERATE_LAUNCH, "--config_file", str(cpu_accelerate_config(config, tmp_path)),
           "-m", "mlift.train", str(recipe), "--no-progress"]
    done = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["world_size"] == 2, "two real processes, not one"
    assert manifest["deepspeed_zero_stage"] == int(config[4]), "DeepSpeed really ran (use_cpu, not --cpu)"
    assert manifest["metrics"]["global_step"] == 6
    adapter = out / "adapter_model.safetensors"
    assert manifest["model"]["adapter_params"] > 0 and adapter.stat().st_size > 1000  # trl#4416: not 40 bytes
    base = AutoModelForCausalLM.from_pretrained(stories260k)
    ids = torch.tensor([[1, 441, 416, 331, 407, 261]])
    with torch.no_grad():
        before = base(input_ids=ids).logits
        after = PeftModel.from_pretrained(base, out)(input_ids=ids).logits
    assert not torch.allclose(before, after), "the reloaded adapter changes the model"


def losses(out: Path) -> dict[int, float]:
    state = json.loads((out / "trainer_state.json").read_text()) if (out / "trainer_state.json").exists() else None
    if state is None:  # final save writes no trainer_state; read the last checkpoint's
        ckpts = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        state = json.loads((ckpts[-1] / "trainer_state.json").read_text())
    return {e["step"]: e["loss"] for e in state["log_history"] if "loss" in e}


def test_kill_then_resume_continues_the_same_loss_curve(stories260k, tmp_path):
    data = make_mlift_dataset(tmp_path / "data", n=64)
    steps, every = 24, 4
    sft = {"max_steps": steps, "save_strategy": "steps", "save_steps": every, "save_total_limit": None,
           "per_device_train_batch_size": 4}
    run = [sys.executable, "-m", "mlift.train", "--no-progress"]

    full = tmp_path / "full"
    r = write_recipe(tmp_path / "full.yaml", {**base_recipe(stories260k, data, full, **sft)})
    done = subprocess.run([*run, str(r)], cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    cut = tmp_path / "cut"
    r = write_recipe(tmp_path / "cut.yaml", {**base_recipe(stories260k, data, cut, **sft)})
    proc = subprocess.Popen([*run, str(r)], cwd=REPO, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while not list(cut.glob("checkpoint-*/trainer_state.json")):
            assert proc.poll() is None, "training ended before its first checkpoint"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # a real crash: no clean shutdown
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (cut / "manifest.json").exists(), "the run was interrupted before the end"
    ckpts = sorted(int(p.name.split("-")[1]) for p in cut.glob("checkpoint-*") if (p / "trainer_state.json").exists())
    resumed_from = ckpts[-1]
    assert resumed_from < steps

    done = subprocess.run([*run, str(r), "--resume"], cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((cut / "manifest.json").read_text())
    assert manifest["resumed_from"].endswith(f"checkpoint-{resumed_from}") and manifest["metrics"]["global_step"] == steps
    a, b = losses(full), losses(cut)
    after = [s for s in a if s > resumed_from]
    assert after and all(s in b for s in after)
    for s in after:
        assert b[s] == pytest.approx(a[s], rel=1e-4, abs=1e-5), (s, a[s], b[s])


def test_deepspeed_takes_gradient_accumulation_from_the_recipe(stories260k, tmp_path):
    """The shipped ZeRO configs say `auto`, so the recipe's gradient_accumulation_steps and max_grad_norm apply: with 2
    processes, 2 per device and 2 accumulation steps the engine's global batch is 8 (a hard-coded 1 made it 4)."""
    data = make_mlift_dataset(tmp_path / "data", n=32)
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path / "recipe.yaml",
                          base_recipe(stories260k, data, out, max_steps=2, per_device_train_batch_size=2,
                                      gradient_accumulation_steps=2, max_grad_norm=0.5))
    cmd = [*ACCELERATE_LAUNCH, "--config_file",
           str(cpu_accelerate_config("zero2.yaml", tmp_path)), "-m", "mlift.train", str(recipe), "--no-progress"]
    done = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    batch = json.loads((out / "manifest.json").read_text())["batch"]
    assert batch["world_size"] == 2 and batch["gradient_accumulation_steps"] == 2
    assert batch["effective"] == 2 * 2 * 2
    assert batch["deepspeed"] == {"train_batch_size": 8, "train_micro_batch_size_per_gpu": 2,
                                  "gradient_accumulation_steps": 2, "gradient_clipping": 0.5}
