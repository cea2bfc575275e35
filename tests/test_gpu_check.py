"""benchmarks/gpu_check.py's dry mode: it checks what the GPU run needs, writes recipes that validate, and plans every
step (LoRA/full SFT via accelerate with DDP and ZeRO-3, eval --adapter, HF generation) without running them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_plans_every_step(shared_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "gpu_check"  # never the checkout's .gpu_check
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "MLIFT_SHARED": str(shared_dir), "HF_HUB_OFFLINE": "1",
           "MLIFT_GPU_CHECK_DIR": str(work)}
    script = str(REPO / "benchmarks/gpu_check.py")
    assert subprocess.run([sys.executable, script, "--prepare"], env=env, capture_output=True).returncode == 0
    done = subprocess.run([sys.executable, script, "--dry-run"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["preflight"]["model"] and summary["preflight"]["data"]
    assert summary["preflight"]["vllm"].startswith(("skip", "present"))
    planned = {s["name"]: s for s in summary["steps"]}
    assert set(planned) == {"lora-ddp", "lora-zero3", "full-zero3", "lora-fsdp", "full-fsdp", "eval-adapter",
                            "hf-generate", "vllm"}
    assert all(str(work) in " ".join(s["command"]) for s in summary["steps"] if "command" in s)
    assert "--adapter" in planned["eval-adapter"]["command"] and "cuda" in planned["hf-generate"]["command"]
    zero3 = (work / "gpu/accelerate-zero3.yaml").read_text()
    assert "DEEPSPEED" in zero3 and "bf16" in zero3 and "gradient_accumulation_steps: auto" in zero3
    fsdp = (work / "gpu/accelerate-fsdp.yaml").read_text()
    assert "distributed_type: FSDP" in fsdp and "fsdp_version: 2" in fsdp and "fsdp_reshard_after_forward: true" in fsdp
    assert "SHARDED_STATE_DICT" in fsdp
