"""`mlift report`: tables with mean +- std over seeds, deltas against a baseline, published figures, plots, HTML, W&B."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from mlift.report.tables import make_report


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
            f"translated-alpaca@1={eval_dir(tmp_path, 't1', scores(15.0, 10.0, 0.25))}",
            f"translated-alpaca@2={eval_dir(tmp_path, 't2', scores(15.0, 10.0, 0.27))}"]
    refs = Path(__file__).resolve().parents[1] / "results" / "references.yaml"
    out = tmp_path / "report"
    summary = make_report(runs, out, baseline="translated-alpaca", references=refs, note="Smoke scale: do not cite.")
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


def test_averages_use_the_same_languages_in_every_arm(tmp_path):
    """sw is missing in `translated`, ar is NaN (not computed) in `templated`: both are shown, and left out of every
    arm's average, with a note; each average is then over hi only."""
    xl = ("xlsum", "rougeL")
    natural = {(*xl, "hin_Deva", None): 20.0, (*xl, "arb_Arab", None): 10.0, (*xl, "swh_Latn", None): 90.0}
    translated = {(*xl, "hin_Deva", None): 16.0, (*xl, "arb_Arab", None): 12.0}
    templated = {(*xl, "hin_Deva", None): 18.0, (*xl, "arb_Arab", None): None, (*xl, "swh_Latn", None): 5.0}
    runs = [f"natural={eval_dir(tmp_path, 'n', natural)}", f"translated={eval_dir(tmp_path, 't', translated)}",
            f"templated={eval_dir(tmp_path, 'p', templated)}"]
    summary = make_report(runs, tmp_path / "out", baseline="translated")
    md = (tmp_path / "out" / "table.md").read_text()
    assert "| natural | 20.00 | 10.00 | 90.00 | 20.00 |" in md  # hi ar sw avg: the avg is hi alone
    assert "| translated | 16.00 | 12.00 | – | 16.00 |" in md
    assert "| templated | 18.00 | NaN | 5.00 | 18.00 |" in md
    assert summary["averages"]["xlsum/rougeL/avg"] == {
        "langs": ["hin_Deva"], "excluded": {"arb_Arab": ["NaN in templated"], "swh_Latn": ["missing in translated"]}}
    assert "left out of all arms: arb_Arab (NaN in templated); swh_Latn (missing in translated)" in md
    d = {(x["label"], x["column"]): x for x in summary["deltas"]}
    assert d[("natural", "xlsum/rougeL/avg")]["delta"] == pytest.approx(4.0)


def test_a_seed_missing_a_language_excludes_it_and_no_common_language_gives_no_average(tmp_path):
    xl = ("xlsum", "rougeL")
    runs = [f"a@1={eval_dir(tmp_path, 'a1', {(*xl, 'hin_Deva', None): 20.0, (*xl, 'arb_Arab', None): 10.0})}",
            f"a@2={eval_dir(tmp_path, 'a2', {(*xl, 'hin_Deva', None): 22.0})}",
            f"b={eval_dir(tmp_path, 'b', {(*xl, 'hin_Deva', None): None, (*xl, 'arb_Arab', None): 3.0})}"]
    summary = make_report(runs, tmp_path / "out")
    assert summary["averages"]["xlsum/rougeL/avg"] == {
        "langs": [], "excluded": {"hin_Deva": ["NaN in b"], "arb_Arab": ["missing in a"]}}
    md = (tmp_path / "out" / "table.md").read_text()
    assert "| a | 21.00 ± 1.41 | 10.00 | – |" in md and "| b | NaN | 3.00 | – |" in md
    assert "none: no language is scored in every arm" in md


def test_report_says_how_rouge_was_computed(tmp_path):
    xl = ("xlsum", "rougeL")
    a, b = eval_dir(tmp_path, "a", {(*xl, "hin_Deva", None): 1.0}), eval_dir(tmp_path, "b", {(*xl, "hin_Deva", None): 2.0})
    rouge = {"mode": "xlsum", "scorer": "multilingual-rouge 0.0.1",
             "langs": {"ben_Beng": {"notes": ["no stemming: the bengali stemmer failed to load"]}}}
    (a / "manifest.json").write_text(json.dumps({"rouge": rouge}))
    (b / "manifest.json").write_text(json.dumps({"rouge": rouge}))
    make_report([f"a={a}", f"b={b}"], tmp_path / "same")
    md = (tmp_path / "same" / "table.md").read_text()
    assert "ROUGE: xlsum mode, multilingual-rouge 0.0.1 (every arm)." in md and "Warning" not in md
    assert "ben_Beng: no stemming" in md
    (b / "manifest.json").write_text(json.dumps({"rouge": {**rouge, "mode": "unicode", "scorer": "rouge-score"}}))
    summary = make_report([f"a={a}", f"b={b}"], tmp_path / "mixed")
    md = (tmp_path / "mixed" / "table.md").read_text()
    assert "not all scored with the same ROUGE setup" in md and summary["rouge"]["b"] == ["unicode mode, rouge-score"]


def _sweep_labels() -> set[str]:
    """Every dataset label the paper sweeps produce (grid points expanded as `mlift sweep` names them)."""
    import yaml

    from mlift.sweep.schema import grid_points, point_label

    labels = set()
    for path in (Path(__file__).resolve().parents[1] / "recipes" / "sweeps").glob("*.yaml"):
        for spec in yaml.safe_load(path.read_text()).get("datasets", []):
            for point in grid_points(spec.get("grid") or {}):
                labels.add(point_label(spec["name"], spec.get("label"), point) if point else spec["name"])
    return labels


def test_references_name_the_sweeps_labels_and_hold_sourced_facts():
    import fnmatch

    import yaml

    refs = yaml.safe_load((Path(__file__).resolve().parents[1] / "results" / "references.yaml").read_text())
    labels = _sweep_labels()
    assert {"natural", "translated-alpaca", "templated", "pinch-P0", "pinch-P1", "sphinx-3shot"} <= labels
    for ref in refs:
        assert ref.get("paper") and ref.get("source"), ref
        assert sum(k in ref for k in ("relative_pct", "delta_points", "fact")) == 1, ref
        for key in ("ours", "baseline"):
            if key in ref:
                assert ref[key] in labels, f"{key}: {ref[key]!r} is no sweep's label"
        if "applies_to" in ref:
            assert any(fnmatch.fnmatchcase(x, ref["applies_to"]) for x in labels), ref["applies_to"]
    gains = {(r["ours"], r.get("baseline")): r.get("relative_pct", r.get("delta_points")) for r in refs
             if "fact" not in r}
    assert gains[("natural", "translated-alpaca")] == 17.57 and gains[("natural", "templated")] == 15.23
    assert gains[("sphinx-3shot", "sphinx-0shot")] == [3.0, 10.0] and gains[("sphinx-0shot", None)] == [4.2, 5.0]


def test_report_shows_point_gains_and_protocol_facts(tmp_path):
    refs = Path(__file__).resolve().parents[1] / "results" / "references.yaml"
    runs = [f"sphinx-0shot={eval_dir(tmp_path, 's0', scores(10, 10, 0.3))}",
            f"sphinx-3shot={eval_dir(tmp_path, 's3', scores(12, 12, 0.3))}",
            f"pinch-P1={eval_dir(tmp_path, 'p1', scores(12, 12, 0.3))}"]
    summary = make_report(runs, tmp_path / "out", baseline="sphinx-0shot", references=refs)
    md = (tmp_path / "out" / "table.md").read_text()
    assert "+3.0 / +10.0 points" in md and "+4.2 / +5.0 points" in md
    assert "17.57" not in md  # natural is not in this report
    assert {f["applies_to"] for f in summary["facts"]} == {"sphinx-*", "pinch-P*"}
    assert "617 AlpacaFarm instructions" in md and "50 = parity" in md


def test_a_nan_seed_gives_nan_mean_and_spread_not_an_error():
    from mlift.report.tables import Cell

    cell = Cell([0.2, math.nan])
    assert math.isnan(cell.mean) and math.isnan(cell.std)
    assert Cell([0.2, 0.4]).std > 0 and Cell([0.2]).std is None
