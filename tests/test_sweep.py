"""`mlift sweep`: grid expansion, dependency wiring and script rendering (fast); a real sweep on a real single-node
Slurm started with slurm/local_cluster.sh (slow): job arrays, afterok chains, outputs, skip on re-submit, --status."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import MLIFT

from mlift.recipe import RecipeError
from mlift.sweep import expand, load_sweep, render, run_local, status, write_scripts

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "recipes" / "sweeps" / "tiny_cpu.yaml"


def _sweep(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(TINY.read_text())
    data.update(output_dir=str(tmp_path / "out"), slurm={**data.get("slurm", {}), "workdir": str(REPO)})
    data.update(changes)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _grid_sweep(tmp_path: Path) -> Path:
    """2 models x 2 seeds x (templated on 2 shards + pinch P in {0, 10, 100}) with GPUs requested."""
    return _sweep(tmp_path, datasets=[
        {"name": "templated", "command": "baseline templated", "recipe": "recipes/baselines/templated_xlsum_local.yaml",
         "shards": 2, "resources": {"gpus": 0}},
        {"name": "pinch", "command": "mix", "recipe": "recipes/mix/pinch_stories260k.yaml",
         "grid": {"mixture.percent": [0, 10, 100]}, "label": "pinch-P{percent}", "after": ["templated"]},
        {"name": "source-only", "command": "mix", "recipe": "recipes/mix/weighted.yaml", "train": False},
    ], models=[{"name": "m1"}, {"name": "m2", "set": ["lora.r=4"]}],
        train={"recipe": "recipes/stories260k/lora-sft/config.yaml", "resources": {"gpus": 2}},
        eval={"suite": "recipes/eval/local_small.yaml", "args": ["--limit", "1"]},
        report={"baseline": "pinch-P0"}, slurm={"workdir": str(REPO), "setup": "module load x && source env/bin/activate"})


def test_grid_expansion_and_dependencies(tmp_path):
    jobs = expand(load_sweep(_grid_sweep(tmp_path)), validate=False)
    by = {j.name: j for j in jobs}
    kinds = [j.kind for j in jobs]
    # data: templated array + finalize, 3 pinch points, 1 source-only set (built, not trained on);
    # 4 arms x 2 models x 2 seeds trains and evals; 1 report per model
    assert kinds.count("data") == 5 and kinds.count("finalize") == 1
    assert by["data-pinch-P10"].deps == ["final-templated"]
    assert [j.name for j in jobs if j.label == "source-only"] == ["data-source-only"]
    assert kinds.count("train") == 16 and kinds.count("eval") == 16 and kinds.count("report") == 2
    assert by["data-templated"].array == 2 and '--shard "$TASK/2"' in by["data-templated"].command
    assert by["final-templated"].deps == ["data-templated"] and "--shard" not in by["final-templated"].command
    assert "--set mixture.percent=10" in by["data-pinch-P10"].command
    assert by["train-m2-pinch-P10-seed1"].deps == ["data-pinch-P10"]
    assert "--set lora.r=4" in by["train-m2-pinch-P10-seed1"].command
    assert "--set seed=1" in by["train-m2-pinch-P10-seed1"].command
    assert by["train-m1-templated-seed0"].deps == ["final-templated"]
    assert by["eval-m1-templated-seed0"].deps == ["train-m1-templated-seed0"]
    report = by["report-m1"]
    assert sorted(report.deps) == sorted(j.name for j in jobs if j.kind == "eval" and j.model == "m1")
    assert "--baseline pinch-P0" in report.command and "pinch-P100@1=" in report.command
    # parents always come before their children (submission order)
    seen: set[str] = set()
    for job in jobs:
        assert set(job.deps) <= seen, job.name
        seen.add(job.name)


def test_scripts_render_and_parse(tmp_path):
    recipe = load_sweep(_grid_sweep(tmp_path))
    jobs = expand(recipe, validate=False)
    scripts = write_scripts(recipe, jobs)
    for job in jobs:
        text = scripts[job.name].read_text()
        done = subprocess.run(["bash", "-n", str(scripts[job.name])], capture_output=True, text=True)
        assert done.returncode == 0, (job.name, done.stderr)
        assert "module load x && source env/bin/activate" in text and "export WANDB_MODE=offline" in text
        assert "HF_HUB_OFFLINE" not in text  # real sweeps load hub data and models: never forced offline
        assert ("#SBATCH --gres=gpu:2" in text) == (job.kind == "train"), job.name
        assert ("#SBATCH --array=0-1" in text) == (job.name == "data-templated")
    # a cluster that refuses gres: no --gres line at all
    recipe = load_sweep(_grid_sweep(tmp_path), ["slurm.gres=null"])
    assert not any("--gres" in render(recipe, j) for j in expand(recipe, validate=False))


def test_validation_before_anything_runs(tmp_path):
    with pytest.raises(RecipeError, match="unknown key"):
        expand(load_sweep(_sweep(tmp_path, datasets=[{"name": "a", "command": "mix", "recipe": "recipes/mix/weighted.yaml",
                                                      "set": ["mixture.budgett=3"]}])))
    with pytest.raises(RecipeError, match="report.baseline"):
        expand(load_sweep(_sweep(tmp_path), ["report.baseline=nope"]), validate=False)
    with pytest.raises(RecipeError, match="unknown key"):
        load_sweep(_sweep(tmp_path), ["train.recpie=x"])


def test_local_failure_is_visible_and_complete_jobs_skip(tmp_path):
    """--local runs the real scripts: a data job that fails at run time stops its dependents and is listed with its
    log; a job whose marker exists is not run again."""
    recipe = load_sweep(_sweep(tmp_path, datasets=[
        {"name": "broken", "command": "baseline templated", "recipe": "recipes/baselines/templated_xlsum_local.yaml",
         "set": [f"datasets.0.local_dir={tmp_path}/missing"]},
        {"name": "ready", "path": "../shared/data/alpaca/alpaca_tiny.json"}], report={"baseline": "ready"}))
    jobs = expand(recipe, validate=False)
    by = {j.name: j for j in jobs}
    # pretend the `ready` arm is fully done: its jobs must be skipped, not run
    for name in ("train-ready-seed0", "train-ready-seed1", "eval-ready-seed0", "eval-ready-seed1"):
        Path(by[name].out).mkdir(parents=True)
        Path(by[name].out, "_SUCCESS").write_text(json.dumps({"hash": by[name].hash}))
    lines: list[str] = []
    assert not run_local(recipe, jobs, write_scripts(recipe, jobs), echo=lines.append)
    assert any(x.startswith("FAIL   data-broken") for x in lines), lines
    assert "skip   train-broken-seed0 (a dependency failed)" in lines and "skip   report (a dependency failed)" in lines
    assert "skip   train-ready-seed0 (complete)" in lines
    out: list[str] = []
    counts = status(recipe, jobs, echo=out.append)
    assert counts["failed"] == 1 and counts["done"] == 4
    log = next(x for x in out if "log:" in x).split("log: ")[1]
    assert "Traceback" in Path(log).read_text() or "mlift baseline" in Path(log).read_text()


# --- real Slurm ------------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def slurm_cluster(tmp_path_factory, monkeypatch):
    if os.geteuid() != 0 and not shutil.which("slurmctld"):
        pytest.skip("needs root (to install slurm-wlm + munge) or an installed Slurm")
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "MLIFT_SLURMCTLD_PORT": str(_free_port()), "MLIFT_SLURMD_PORT": str(_free_port())}
    start = subprocess.run(["bash", str(REPO / "slurm" / "local_cluster.sh"), "start", str(state)], env=env,
                           capture_output=True, text=True, timeout=600)
    try:
        assert start.returncode == 0, start.stderr
        monkeypatch.setenv("SLURM_CONF", str(state / "slurm.conf"))
        yield state
    finally:
        subprocess.run(["bash", str(REPO / "slurm" / "local_cluster.sh"), "stop", str(state)], env=env)


def _mlift(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*MLIFT, "sweep", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_sweep_on_real_slurm(slurm_cluster, tmp_path, stories260k, shared_dir):
    from wandb_runs import offline_runs

    from mlift.sweep import SlurmOpts

    env = {**SlurmOpts().env, "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}
    tiny_slurm = yaml.safe_load(TINY.read_text())["slurm"]
    # max_array_size 1: the 2-shard array goes in as 2 array jobs (offsets 0 and 1), finalize waits on both
    sweep = _sweep(tmp_path, wandb={"project": "mlift-sweep-test"},
                   slurm={**tiny_slurm, "workdir": str(REPO), "env": env, "max_array_size": 1, "array_throttle": 1})
    out = tmp_path / "out"
    started = time.time()
    done = _mlift(str(sweep), "--wait", "--timeout", "840")
    assert done.returncode == 0, done.stdout + done.stderr + _logs(out)
    print(f"sweep on Slurm: {time.time() - started:.0f} s")
    state = json.loads((out / "sweep_state.json").read_text())["jobs"]
    assert len(state) == 12
    # the array ran 2 tasks; train waited on finalize, eval on train, report on the 4 evals
    assert sorted(p.name for p in (out / "data/templated/_sweep/shards").glob("_SUCCESS.task-*")) == \
        ["_SUCCESS.task-0", "_SUCCESS.task-1"]
    assert state["train-templated-seed0"]["deps"] == [state["final-templated"]["id"]]
    assert len(state["data-templated"]["id"].split(":")) == 2
    assert state["final-templated"]["deps"] == [state["data-templated"]["id"]]
    assert state["eval-alpaca-seed1"]["deps"] == [state["train-alpaca-seed1"]["id"]]
    assert sorted(state["report"]["deps"]) == sorted(state[f"eval-{a}-seed{s}"]["id"]
                                                      for a in ("templated", "alpaca") for s in (0, 1))
    rows = [r for r in (json.loads(line) for line in _shard_lines(out / "data/templated"))]
    assert {r["lang"] for r in rows} == {"fra_Latn", "hin_Deva"}
    for arm in ("templated", "alpaca"):
        for seed in (0, 1):
            adapter = out / "train" / arm / f"seed{seed}" / "adapter_model.safetensors"
            assert adapter.stat().st_size > 1000
            table = json.loads((out / "eval" / arm / f"seed{seed}" / "table.json").read_text())
            assert table and all("metric" in r for r in table)
    assert (out / "report" / "table.md").is_file()
    # seeds really differ: the two adapters of one arm are not byte-identical
    a0, a1 = (out / "train/alpaca" / f"seed{s}" / "adapter_model.safetensors" for s in (0, 1))
    assert a0.read_bytes() != a1.read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seeds"] == [0, 1] and len(manifest["jobs"]) == 12 and manifest["recipe"]["hash"]
    # W&B (offline): one run per data build (not per array task), train, eval and the report, grouped by the sweep
    runs = offline_runs(tmp_path / "wandb")
    kinds = sorted(r["job_type"] for r in runs)
    assert kinds == ["baseline", "eval", "eval", "eval", "eval", "mix", "report", "train", "train", "train", "train"]
    assert {(r["project"], r["group"]) for r in runs} == {("mlift-sweep-test", "tiny-cpu")}
    evals = [r for r in runs if r["job_type"] == "eval"]
    assert all(any(k.startswith(("xlsum/", "flores/", "mmlu/")) for k in r["summary"]) for r in evals)

    # re-submitting skips everything: nothing reaches the queue
    again = _mlift(str(sweep), "--no-validate")
    assert again.returncode == 0, again.stderr
    assert "0 job(s) queued, 12 complete" in again.stdout and "submit " not in again.stdout
    st = _mlift(str(sweep), "--status", "--no-validate")
    assert st.returncode == 0 and "done: 12" in st.stdout, st.stdout

    # dry-run scripts are valid bash and carry the array / no gres
    dry = _mlift(str(sweep), "--dry-run", "--no-validate")
    assert dry.returncode == 0 and "#SBATCH --array=0-1" in dry.stdout and "--gres" not in dry.stdout
    for script in (out / "scripts").glob("*.sbatch"):
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


@pytest.mark.slow
def test_failed_job_listed_with_log_on_slurm(slurm_cluster, tmp_path, shared_dir):
    """A data job that fails on Slurm: --status names it with its log; its dependents never run (kill_invalid_depend)."""
    sweep = _sweep(tmp_path, datasets=[
        {"name": "broken", "command": "baseline templated", "recipe": "recipes/baselines/templated_xlsum_local.yaml",
         "set": [f"datasets.0.local_dir={tmp_path}/missing"]}], report={"enabled": False}, seeds=[0])
    done = _mlift(str(sweep), "--wait", "--timeout", "300")
    assert done.returncode == 1, done.stdout + done.stderr
    st = _mlift(str(sweep), "--status", "--no-validate")
    assert st.returncode == 1
    line = next(x for x in st.stdout.splitlines() if "log:" in x)
    assert "FAILED" in line and Path(line.split("log: ")[1]).is_file()
    assert not (tmp_path / "out" / "train" / "broken" / "seed0").exists()


def _shard_lines(run: Path):
    for f in sorted(run.glob("dataset/*/shard-*.jsonl")):
        yield from (x for x in f.read_text().splitlines() if x.strip())


def _logs(out: Path) -> str:
    return "".join(f"\n--- {p}\n{p.read_text()[-3000:]}" for p in sorted((out / "logs").glob("*.log")))
