"""Two "nodes" on one machine (slow): `accelerate launch` with num_machines 2, machine_rank 0 and 1, one process each
(DeepSpeed ZeRO-2 on CPU, gloo), a rendezvous on 127.0.0.1, the same datasets cache and output directory, as on a
cluster with a network filesystem. The training mixture is built once per job, one W&B run and one adapter are
written, and the losses equal a single-node run with two processes (the same global batch)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ACCELERATE_LAUNCH
from servers import free_port
from test_train import base_recipe, make_mlift_dataset
from test_train_distributed import cpu_accelerate_config, env, losses, write_recipe

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _launch(config: Path, recipe: Path, cache: Path, wandb_dir: Path, machines: int, rank: int, port: int):
    cmd = [*ACCELERATE_LAUNCH, "--config_file", str(config), "--num_machines", str(machines),
           "--num_processes", "2", "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1",
           "--main_process_port", str(port), "-m", "mlift.train", str(recipe), "--no-progress"]
    node_env = {**env(), "HF_DATASETS_CACHE": str(cache), "WANDB_MODE": "offline", "WANDB_DIR": str(wandb_dir)}
    node_env.pop("MLIFT_DATA_CACHE", None)
    return subprocess.Popen(cmd, cwd=REPO, env=node_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_nodes_build_the_data_once_and_match_one_node(stories260k, tmp_path):
    data = make_mlift_dataset(tmp_path / "data", n=3000, shards=8)  # a build long enough to overlap
    config = cpu_accelerate_config("zero2.yaml", tmp_path)
    sft = {"max_steps": 4, "per_device_train_batch_size": 4, "save_strategy": "steps", "save_steps": 4,
           "report_to": "wandb"}
    runs = {}
    for name, machines in (("two-nodes", 2), ("one-node", 1)):
        out = tmp_path / name / "out"
        recipe = write_recipe(tmp_path / f"{name}.yaml", base_recipe(stories260k, data, out, **sft))
        cache, wandb_dir = tmp_path / name / "hf-cache", tmp_path / name / "wandb"
        wandb_dir.mkdir(parents=True)
        port = free_port()
        procs = [_launch(config, recipe, cache, wandb_dir, machines, rank, port) for rank in range(machines)]
        results = [p.communicate(timeout=900) for p in procs]
        for p, (_, err) in zip(procs, results):
            assert p.returncode == 0, err[-4000:]
            assert "Traceback" not in err
        runs[name] = out
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["world_size"] == 2 and manifest["metrics"]["global_step"] == 4
        assert manifest["model"]["adapter_params"] > 0
        builds = sum(err.count("built the training mixture") for _, err in results)
        assert builds == 1, f"{name}: the mixture was built {builds} times in one job"
        assert not list(cache.glob("mlift_mixtures/*.building*")), "no half-built mixture left behind"
        assert len(list(wandb_dir.glob("wandb/offline-run-*"))) == 1, "one W&B run per job"
        assert len(list(out.glob("adapter_model.safetensors"))) == 1
    two, one = losses(runs["two-nodes"]), losses(runs["one-node"])
    print(f"losses two nodes x 1 process: {two}\nlosses one node x 2 processes: {one}")
    assert sorted(two) == sorted(one) == [1, 2, 3, 4]
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-5), (step, two[step], one[step])


@pytest.fixture
def slurm_two_nodes(tmp_path_factory, monkeypatch):
    """slurm/local_cluster.sh with MLIFT_SLURM_NODES=2: nodes n1 and n2, one slurmd each, on this machine."""
    if os.geteuid() != 0 and not shutil.which("slurmctld"):
        pytest.skip("needs root (to install slurm-wlm + munge) or an installed Slurm")
    state = tmp_path_factory.mktemp("slurm2")
    cluster_env = {**os.environ, "MLIFT_SLURMCTLD_PORT": str(free_port()), "MLIFT_SLURMD_PORT": str(free_port()),
                   "MLIFT_SLURM_NODES": "2"}
    script = str(REPO / "slurm" / "local_cluster.sh")
    start = subprocess.run(["bash", script, "start", str(state)], env=cluster_env, capture_output=True, text=True,
                           timeout=600)
    try:
        assert start.returncode == 0, start.stderr
        monkeypatch.setenv("SLURM_CONF", str(state / "slurm.conf"))
        yield state
    finally:
        subprocess.run(["bash", script, "stop", str(state)], env=cluster_env)

