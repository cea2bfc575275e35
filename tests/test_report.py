"""`mlift report`: tables with mean +- std over seeds, deltas against a baseline, published figures, plots, HTML, W&B."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlift.report import make_report


def eval_dir(root: Path, name: str, scores: dict[tuple[str, str, str, str | None], float]) -> Path:
    """An eval output dir as `mlift eval` writes it (table.json rows)."""
    out = root / name
    out.mkdir(parents=True)
    rows = [{"model": f"models/{name}", "task": f"mlift_{fam}_{lang}", "family": fam, "lang": lang, "direction": d,
             "metric": metric, "value": v, "stderr": None, "n": 10} for (fam, metric, lang, d), v in scores.items()]
    (out / "table.json").write_text(json.dumps(rows))
    return out


def scores(rouge_hi: float, rouge_ar: float, acc: float) -> dict:
    return {("xlsum", "rougeL", "hin_Deva", None): rouge_hi, ("xlsum", "rougeL", "arb_Arab", None): rouge_ar,
            ("xlsum", "rouge1", "hin_Deva", None): 99.0,  # not a headline metric: left out by default
            ("flores", "chrf++", "hin_Deva", "xx-en"): 30.0, ("flores", "chrf++", "hin_Deva", "en-xx"): 20.0,
            ("mmlu", "acc", "hin_Deva", None): acc}


def test_tables_deltas_references_and_files(tmp_path):
    runs = [f"natural@1={eval_dir(tmp_path, 'n1', scores(20.0, 10.0, 0.30))}",
            f"natural@2={eval_dir(tmp_path, 'n2', scores(22.0, 12.0, 0.32))}",
            f"translated@1={eval_dir(tmp_path, 't1', scores(15.0, 10.0, 0.25))}",
            f"translated@2={eval_dir(tmp_path, 't2', scores(15.0, 10.0, 0.27))}"]
    refs = Path(__file__).resolve().parents[1] / "results" / "references.yaml"
    out = tmp_path / "report"
    summary = make_report(runs, out, baseline="translated", references=refs, note="Smoke scale: do not cite.")
    md = (out / "table.md").read_text()
    assert md.splitlines()[2] == "Smoke scale: do not cite." and md.count("Eval docs per cell: n = 10") == 3
    assert "| natural | 21.00 ± 1.41 | 11.00 ± 1.41 | 16.00 ± 1.41 |" in md  # hi, ar, avg (avg per seed: 15, 17)
    assert "rouge1" not in md
    d = {(x["label"], x["column"]): x for x in summary["deltas"]}
    avg = d[("natural", "xlsum/rougeL/avg")]
    assert avg["delta"] == pytest.approx(16.0 - 12.5) and avg["delta_pct"] == pytest.approx(28.0)
    assert d[("natural", "mmlu/acc/hin_Deva")]["value"] == pytest.approx(31.0)  # accuracy shown in %
    assert "xx-en" in md and "en-xx" in md
    [ref] = summary["references"]  # natural vs translated is in the report; vs templated is not
    assert ref["relative_pct"] == 17.57 and ref["ours_pct"] == pytest.approx(28.0)
    assert "+17.57%" in md and "+28.00%" in md
    for name in ("table.csv", "table.tex", "index.html", "report.json"):
        assert (out / name).stat().st_size > 0
    assert sorted(summary["plots"]) == ["flores_chrfpp_en-xx.png", "flores_chrfpp_xx-en.png", "mmlu_acc.png",
                                        "xlsum_rougeL.png"]
    assert (out / "index.html").read_text().count("data:image/png;base64,") == 4
    assert r"\pm" in (out / "table.tex").read_text()
    csv_rows = (out / "table.csv").read_text().splitlines()
    assert csv_rows[0].startswith("dataset,family,metric,lang,direction,mean,std,n_seeds,delta,delta_pct")


def test_wandb_offline_run_holds_the_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    runs = [f"a={eval_dir(tmp_path, 'a', scores(1, 2, 0.3))}", f"b={eval_dir(tmp_path, 'b', scores(2, 3, 0.4))}"]
    summary = make_report(runs, tmp_path / "out", baseline="a", wandb_project="mlift-test", wandb_group="g1")
    from wandb_runs import offline_runs

    [run] = offline_runs(tmp_path / "wandb")
    assert (run["project"], run["group"], run["job_type"]) == ("mlift-test", "g1", "report") and summary["wandb_dir"]
    assert "b/xlsum/rougeL/avg" in run["summary"]
    run_dirs = [run["dir"]]
    tables = list(run_dirs[0].glob("files/media/table/*.table.json"))
    assert {p.name.split("_")[0] for p in tables} >= {"comparison", "deltas"}
    comparison = json.loads(next(p for p in tables if p.name.startswith("comparison")).read_text())
    assert [row[0] for row in comparison["data"]] == ["a", "b"]


def test_cli_and_bad_inputs(tmp_path):
    good = eval_dir(tmp_path, "x", scores(1, 2, 0.3))
    proc = subprocess.run([sys.executable, "-m", "mlift", "report", f"x={good}", str(tmp_path / "missing"),
                           "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert proc.returncode != 0 and "missing/table.json" in proc.stderr
    with pytest.raises(ValueError, match="baseline 'nope' is not among"):
        make_report([f"x={good}"], tmp_path / "r2", baseline="nope")
