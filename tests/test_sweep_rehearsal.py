"""The paper sweeps rehearsed through a real single-node Slurm (slurm/local_cluster.sh) to the report (slow). The
--local executor runs the same scripts; the default suite drives it with a sharded generate arm (test_sweep_chain.py),
and the Pinch rehearsal is in test_pinch_sweep.py. The core comparison rehearses its hub data path: `--hub-endpoint`
with the local Hugging Face endpoint of tests/hub.py (CulturaX streamed, Alpaca, XL-Sum, FLORES+, Global-MMLU)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import MLIFT
from test_sweep import slurm_cluster  # noqa: F401  (the fixture: a real Slurm for the test)

REPO = Path(__file__).resolve().parents[1]
ARMS = {"core_comparison": {"natural", "translated-alpaca", "templated"}, "sphinx": {"sphinx-0shot", "sphinx-3shot"}}


def _mlift(*args: str, timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*MLIFT, "sweep", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _logs(out: Path) -> str:
    return "".join(f"\n--- {p}\n{p.read_text()[-2000:]}" for p in sorted((out / "logs").glob("*.log")))


def _check_report(out: Path, name: str) -> dict:
    report = json.loads((out / "report" / "report.json").read_text())
    assert set(report["labels"]) == ARMS[name]          # one row per arm
    assert report["seeds"] and all(len(s) >= 2 for s in report["seeds"].values()), report["seeds"]
    return report


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ARMS))
def test_rehearsal_on_real_slurm(slurm_cluster, tmp_path, shared_dir, name, request):  # noqa: F811
    out = tmp_path / "out"
    sweep = str(REPO / "recipes" / "sweeps" / f"{name}.yaml")
    hub, env, flags = None, None, ["--rehearse"]
    if name == "core_comparison":  # its hub datasets, from the local endpoint (the jobs inherit HF_HOME from sbatch)
        hub = request.getfixturevalue("hub_server")
        flags += ["--hub-endpoint", hub.url]
        env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "MLIFT_EVAL_DATA_CACHE": str(tmp_path / "eval_data")}
    started = time.time()
    done = _mlift(sweep, *flags, "--set", f"output_dir={out}", "--wait", "--timeout", "2400", timeout=2700, env=env)
    wall = time.time() - started
    print(f"rehearsal {name} on Slurm: {wall:.0f} s")
    (tmp_path.parent / f"wall-{name}.txt").write_text(f"{wall:.0f}\n")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:] + _logs(out)
    report = _check_report(out, name)
    state = json.loads((out / "sweep_state.json").read_text())["jobs"]
    if name == "core_comparison":
        # the generate arm ran as its chain on Slurm, each link afterok on the one before
        chain = ["data-natural-fragments", "global-natural-dedup", "data-natural-to_english", "global-natural-select",
                 "data-natural-to_target", "final-natural"]
        for parent, child in zip(chain, chain[1:]):
            assert state[child]["deps"] == [state[parent]["id"]]
        assert report["references"], "natural vs translated-alpaca/templated: the published figures are shown"
        # the data came from the endpoint: every hub id was served, and the corpus rows name CulturaX
        served = hub.log_path.read_text()
        for repo in ("uonlp/CulturaX", "tatsu-lab/alpaca", "csebuetnlp/xlsum", "openlanguagedata/flores_plus",
                     "CohereForAI/Global-MMLU"):
            assert f"/datasets/{repo}/resolve/" in served, repo
        fragments = next((out / "data" / "natural").glob("*/fragments/shard-00000-of-00002.jsonl"))
        assert '"name":"uonlp/CulturaX"' in fragments.read_text().replace(" ", "")
        tasks = json.loads((out / "eval" / "natural" / "seed0" / "table.json").read_text())
        assert {"global_mmlu_full_fr", "mlift_xlsum_fra_Latn", "mlift_flores_fra_Latn-eng_Latn"} <= {t["task"] for t in tasks}
    st = _mlift(sweep, *flags, "--set", f"output_dir={out}", "--status", "--no-validate", timeout=300, env=env)
    assert st.returncode == 0 and "failed" not in st.stdout, st.stdout
