"""Arrays that fit the cluster: an array longer than `slurm.max_array_size` is submitted in parts (each part's task
offset in MLIFT_TASK_OFFSET, the next stage after all parts), `slurm.array_throttle` adds `%N`, and on a real Slurm the
whole chain is checked with `sbatch --test-only` before the first job is queued."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import MLIFT
from test_sweep import _sweep, slurm_cluster  # noqa: F401  (the shared fixture: slurm/local_cluster.sh)

from mlift.sweep.slurm import array_parts

REPO = Path(__file__).resolve().parents[1]
TEMPLATED = {"name": "templated", "command": "baseline templated", "recipe": "recipes/baselines/templated_xlsum_local.yaml",
             "shards": 5}


def _mlift_sweep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MLIFT, "sweep", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_array_parts_keep_every_index_below_the_limit():
    assert array_parts(2500, 1001) == [(0, 1001), (1001, 1001), (2002, 498)]
    assert array_parts(3, 1001) == [(0, 3)]
    assert sum(n for _, n in array_parts(7, 2)) == 7


def test_dry_run_splits_a_long_array_and_throttles_it(tmp_path):
    sweep = _sweep(tmp_path, datasets=[TEMPLATED], slurm={"workdir": str(REPO), "gres": None, "max_array_size": 2,
                                                          "array_throttle": 1},
                   report={"baseline": "templated"})
    done = _mlift_sweep(str(sweep), "--dry-run", "--no-validate")
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("# ==== data-templated:")]
    assert [re.search(r"--array=\S+ --export=ALL,MLIFT_TASK_OFFSET=\d+", ln).group(0) for ln in lines] == [
        "--array=0-1%1 --export=ALL,MLIFT_TASK_OFFSET=0", "--array=0-1%1 --export=ALL,MLIFT_TASK_OFFSET=2",
        "--array=0-0%1 --export=ALL,MLIFT_TASK_OFFSET=4"]
    assert "array 0-4 in 3 parts" in done.stderr
    assert "#SBATCH --array=0-4%1" in done.stdout
    # the task index each part's tasks really get, from the rendered script's own line
    script = next((tmp_path / "out/scripts").glob("data-templated*.sbatch")).read_text()
    task_line = next(ln for ln in script.splitlines() if ln.startswith("TASK="))
    echo = subprocess.run(["bash", "-c", f"SLURM_ARRAY_TASK_ID=0 MLIFT_TASK_OFFSET=4; {task_line}; echo $TASK"],
                          capture_output=True, text=True)
    assert echo.stdout.strip() == "4"


@pytest.mark.slow
@pytest.mark.usefixtures("slurm_cluster")
def test_a_chain_the_cluster_refuses_is_not_submitted_at_all(tmp_path):
    """The train job asks for a GPU, which the local cluster refuses ("Invalid generic resource"); the data array
    before it would have been accepted. Nothing is queued."""
    sweep = _sweep(tmp_path, datasets=[TEMPLATED], slurm={"workdir": str(REPO), "gres": "gpu:{n}", "max_array_size": 2},
                   train={"recipe": "recipes/stories260k/lora-sft/config.yaml", "resources": {"gpus": 1}},
                   report={"baseline": "templated"})
    done = _mlift_sweep(str(sweep), "--no-validate")
    assert done.returncode == 1 and "--test-only refused train-" in done.stderr, done.stdout + done.stderr
    assert "nothing was submitted" in done.stderr and "submit " not in done.stdout
    assert subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip() == ""
    state = tmp_path / "out/sweep_state.json"
    assert not state.exists() or json.loads(state.read_text())["jobs"] == {}
