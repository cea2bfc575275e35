"""The report end to end on real eval runs, and its HTML in a real headless Chromium (Debian's `chromium`, installed
by the fixture when missing, as slurm/local_cluster.sh installs Slurm): screenshot, no console errors, every table and
chart present, the sample viewer filled by its script."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import shared_path

from mlift.recipe import load_recipe
from mlift.report.tables import make_report

REFS = Path(__file__).resolve().parents[1] / "results" / "references.yaml"


@pytest.fixture(scope="module")
def chromium() -> str:
    if not shutil.which("chromium"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run("apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium", shell=True,
                       check=True, env=env, capture_output=True)
    return shutil.which("chromium") or pytest.fail("chromium did not install")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, stories260k, tiny_llama) -> dict[str, Path]:
    """Two real arms: the pretrained 260K Llama and a random tiny Llama, evaluated by lm-eval on ../shared data."""
    from mlift.eval.run import EvalSuite, run_eval

    root = tmp_path_factory.mktemp("runs")
    suite_file = root / "suite.yaml"
    suite_file.write_text(yaml.safe_dump({
        "seed": 1, "limit": 8, "threads": 1, "data_dir": str(shared_path("data")), "langs": ["hin_Deva", "fra_Latn"],
        "apply_chat_template": False, "xlsum": {"max_gen_toks": 12}, "flores": {"max_gen_toks": 12},
        "mmlu": {"format": "okapi"}}))
    suite = load_recipe(suite_file, EvalSuite, []).cfg
    out = {}
    for name, model in (("natural", tiny_llama), ("translated-alpaca", stories260k)):
        run_eval(suite, str(model), root / name)
        out[name] = root / name
    return out


@pytest.mark.slow
def test_report_on_real_runs_in_a_browser(runs, chromium, tmp_path):
    assert (runs["natural"] / "items.jsonl").is_file()  # the eval keeps per-item scores
    out = tmp_path / "report"
    summary = make_report([f"{k}@1={v}" for k, v in runs.items()], out, baseline="translated-alpaca",
                          references=REFS)
    md = (out / "table.md").read_text(encoding="utf-8")
    # intervals, marks, fidelity and verdicts
    assert "## Intervals and tests" in md and "### fidelity flores (en-xx)" in md and "### mmlu acc" in md
    assert re.search(r"\| hin_Deva \| [\d.]+ \[[\d.]+, [\d.]+\] Δ [-+][\d.]+ \(p=[\d.]+(, n\.s\.)?\) \| [\d.]+ \[", md)
    [ref] = summary["references"]
    assert ref["verdict"] in ("reproduced", "same direction", "not reproduced", "inconclusive")
    assert "flores spbleu: not computed in any arm" in md or "spbleu" not in " ".join(summary["plots"])
    # the per-item scores give back every cell lm-eval computed (corpus chrF++ from summed statistics included)
    with (out / "table.csv").open(encoding="utf-8") as f:
        cells = {f"{r['dataset']}/{r['family']}/{r['metric']}/{r['lang']}"
                 + (f":{r['direction']}" if r["direction"] else ""): r for r in csv.DictReader(f)}
    assert len(summary["intervals"]) >= 20
    for key, iv in summary["intervals"].items():
        assert iv["value"] == pytest.approx(float(cells[key]["mean"]), abs=1e-6), key
        assert iv["ci_low"] <= iv["value"] + 1e-9 and iv["value"] <= iv["ci_high"] + 1e-9
    tex = (out / "table.tex").read_text(encoding="utf-8")
    assert tex.count(r"\begin{tabular}") >= 5
    # the browser: screenshot, console, DOM after the scripts ran
    shot = tmp_path / "shot.png"
    url = (out / "index.html").as_uri()
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,4000"]
    run = subprocess.run([*args, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", url],
                         capture_output=True, text=True, timeout=120)
    assert shot.stat().st_size > 50_000
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    dom = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    n_tables = md.count("\n|---")
    assert dom.count("<table") == n_tables + 1  # every Markdown table + the sample viewer
    assert dom.count("data:image/png;base64,") == len(summary["plots"]) >= 4
    assert "<code>" in dom or "`" not in md  # Markdown rendered, not shown raw
    viewer = dom[dom.index('id="viewer"'):]
    assert viewer.count("<tr>") >= 1 + 8 and "fidelity" in viewer
    shutil.copy(shot, Path(os.environ.get("MLIFT_SCREENSHOT_DIR", tmp_path)) / "report_screenshot.png")
