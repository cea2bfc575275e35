"""FSDP on CPU (slow): the shipped recipes/accelerate/fsdp.yaml (FSDP2, full shard, one unit per block, sharded
checkpoints) launched as 2 real gloo processes, LoRA and full fine-tuning. FSDP really runs (accelerate alone would
train plain DDP on CPU: mlift/train/fsdp.py), the sharded checkpoint is written, the final adapter or model is whole
and reloads, and the losses equal one process with the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import base_recipe, make_mlift_dataset
from test_train_distributed import cpu_accelerate_config, env, losses, write_recipe

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_fsdp_on_cpu_trains_sharded_and_saves_whole(lora, stories260k, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    data = make_mlift_dataset(tmp_path / "data", n=32)
    sft = {"max_steps": 4, "save_strategy": "steps", "save_steps": 2, "save_total_limit": None}
    runs = {}
    for name, launcher, per_device in (("fsdp", ["-m", "accelerate.commands.launch", "--config_file",
                                                 str(cpu_accelerate_config("fsdp.yaml", tmp_path))], 4), ("single", [], 8)):
        out = tmp_path / name
        recipe = base_recipe(stories260k, data, out, per_device_train_batch_size=per_device, **sft)
        if not lora:
            recipe["lora"] = None
        path = write_recipe(tmp_path / f"{name}.yaml", recipe)
        cmd = [sys.executable, *launcher, "-m", "mlift.train", str(path), "--no-progress"]
        done = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-4000:]
        runs[name] = out

    manifest = json.loads((runs["fsdp"] / "manifest.json").read_text())
    assert manifest["world_size"] == 2
    assert manifest["fsdp"] == {"version": 2, "sharding": "FULL_SHARD",
                                "state_dict_type": "StateDictType.FULL_STATE_DICT", "device": "cpu"}, \
        "FSDP really ran (not the plain MULTI_CPU accelerate falls back to)"
    assert list((runs["fsdp"] / "checkpoint-2").glob("pytorch_model_fsdp_0")), "sharded checkpoint while training"
    fsdp_losses, single_losses = losses(runs["fsdp"]), losses(runs["single"])
    assert sorted(fsdp_losses) == [1, 2, 3, 4]
    assert fsdp_losses == pytest.approx(single_losses, rel=1e-4), (fsdp_losses, single_losses)

    ids = torch.tensor([[1, 441, 416, 331, 407, 261]])
    base = AutoModelForCausalLM.from_pretrained(stories260k)
    with torch.no_grad():
        before = base(input_ids=ids).logits
        if lora:
            assert manifest["model"]["adapter_params"] > 0
            after = PeftModel.from_pretrained(base, runs["fsdp"])(input_ids=ids).logits
            reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(stories260k),
                                                  runs["single"])(input_ids=ids).logits
        else:
            after = AutoModelForCausalLM.from_pretrained(runs["fsdp"])(input_ids=ids).logits
            reference = AutoModelForCausalLM.from_pretrained(runs["single"])(input_ids=ids).logits
    assert not torch.allclose(before, after), "the saved weights are the trained ones"
    assert torch.allclose(after, reference, atol=1e-4), "FSDP's gathered weights equal the one-process run's"
