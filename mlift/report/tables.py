"""Comparison tables from eval outputs: rows = training datasets, columns = task x language (+ averages).

Input: eval output dirs (`mlift eval --out DIR` writes DIR/table.json with rows model, task, family, lang, direction,
metric, value, stderr, n). Each is named `LABEL@SEED=DIR` (or just DIR: the label and seed then come from
DIR/manifest.json's `label`/`train_seed`, else the folder name). Seeds of one label are aggregated as mean +- std.
Output: table.md / table.csv / table.tex, deltas against a baseline (absolute and relative %), the papers' reference
figures beside ours where the same comparison is present, one bar chart PNG per task metric, and a self-contained
index.html. Optionally the same tables to W&B (offline works).
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlift.report.averages import AverageSet, comparable_averages
from mlift.report.html import html_page
from mlift.report.items import (
    STATS_FIELDS,
    cell_stats,
    errors,
    fidelity_rows,
    interval_latex,
    interval_tables,
    load_items,
    mark_not_significant,
    missing_lines,
    reference_verdicts,
    stats_row,
)
from mlift.report.references import reference_facts, reference_rows, relative_pct
from mlift.report.rouge import rouge_lines, rouge_setups

FAMILY_ORDER = ["xlsum", "flores", "mmlu", "fidelity"]
# The headline metric(s) of each task family, in the papers' terms.
# fidelity: % of a generative task's outputs in the asked language (mlift.report.items), its metric the task family.
# families from lm-eval's own tasks (eval suite `tasks:`); a filter other than "none" is named in brackets
OTHER_METRICS = ["acc", "exact_match", "exact_match(flexible-extract)", "exact_match(remove_whitespace)"]
DEFAULT_METRICS = {"xlsum": ["rougeL"], "flores": ["chrf++", "spbleu"], "mmlu": ["acc"], "fidelity": ["xlsum", "flores"]}


@dataclass
class Column:
    family: str
    metric: str
    lang: str  # a language, or "avg"
    direction: str | None = None

    @property
    def name(self) -> str:
        where = f"{self.lang}:{self.direction}" if self.direction else self.lang
        return f"{self.family}/{self.metric}/{where}"


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None  # NaN if any seed is NaN: never dropped

    @property
    def std(self) -> float | None:
        if len(self.values) < 2:
            return None
        # statistics.stdev raises on NaN (Python 3.11): a seed without a value makes the spread unknown, not an error
        return math.nan if any(math.isnan(v) for v in self.values) else statistics.stdev(self.values)

    def text(self, digits: int = 2) -> str:
        if self.mean is None:
            return "–"
        if math.isnan(self.mean):
            return "NaN"
        return f"{self.mean:.{digits}f}" + (f" ± {self.std:.{digits}f}" if self.std is not None else "")


@dataclass
class Comparison:
    labels: list[str]
    columns: list[Column]
    cells: dict[tuple[str, str], Cell]  # (label, column name) -> seeds' values
    seeds: dict[str, list[int | str]]
    sources: dict[str, list[str]]
    docs: dict[str, list[int]] = field(default_factory=dict)  # family -> the eval doc counts (n) behind its cells
    averages: list[AverageSet] = field(default_factory=list)  # the languages behind each average column
    rouge: dict[str, list[str]] = field(default_factory=dict)  # label -> how its ROUGE was computed (from manifests)
    rouge_notes: list[str] = field(default_factory=list)  # where that deviates from the XL-Sum authors' setup
    stats: dict[tuple[str, str], Any] = field(default_factory=dict)  # (label, column) -> report_items.CellStats

    def cell(self, label: str, col: Column) -> Cell:
        return self.cells.get((label, col.name), Cell())


def parse_result_arg(arg: str) -> tuple[str | None, str | None, Path]:
    """`LABEL@SEED=DIR`, `LABEL=DIR` or `DIR`."""
    if "=" in arg:
        name, path = arg.split("=", 1)
        label, _, seed = name.partition("@")
        return label, seed or None, Path(path)
    return None, None, Path(arg)


def load_rows(results: list[str]) -> tuple[list[dict[str, Any]], dict[str, list[int | str]], dict[str, list[str]]]:
    rows: list[dict[str, Any]] = []
    seeds: dict[str, list[int | str]] = defaultdict(list)
    sources: dict[str, list[str]] = defaultdict(list)
    for arg in results:
        label, seed, path = parse_result_arg(arg)
        table = path / "table.json"
        if not table.is_file():
            raise FileNotFoundError(f"{arg}: no {table} (expected the output dir of `mlift eval --out`)")
        manifest = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").is_file() else {}
        label = label or manifest.get("label") or path.name
        seed = seed if seed is not None else manifest.get("train_seed", len(seeds[label]))
        seeds[label].append(seed)
        sources[label].append(str(path))
        for row in _table_rows(table):  # a value that could not be computed (None) is kept as NaN
            value = math.nan if row.get("value") is None else row["value"]
            rows.append({**row, "value": value, "label": label, "seed": seed})
    return rows, dict(seeds), dict(sources)


def _table_rows(table: Path) -> list[dict[str, Any]]:
    """The rows of an eval table.json, or a RecipeError naming the file, the row and the key that is wrong."""
    from mlift.recipe import RecipeError

    try:
        data = json.loads(table.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecipeError(f"{table}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise RecipeError(f"{table}: expected a list of rows (as `mlift eval` writes), got {type(data).__name__}")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise RecipeError(f"{table}: row {i}: expected an object, got {type(row).__name__}")
        for key in ("task", "family", "lang", "metric", "value"):
            if key not in row:
                raise RecipeError(f"{table}: row {i}: missing key {key!r}")
        if row["value"] is not None and not isinstance(row["value"], (int, float)):
            raise RecipeError(f"{table}: row {i}: value: expected a number or null, got {row['value']!r}")
    return data


def build_comparison(rows: list[dict[str, Any]], seeds: dict[str, list], sources: dict[str, list[str]],
                     metrics: dict[str, list[str]] | None = None, scale: bool = True) -> Comparison:
    """Pivot to label x column; averages over languages are taken per seed, then over seeds."""
    metrics = metrics or DEFAULT_METRICS
    per_seed: dict[tuple[str, str], dict[Any, float]] = defaultdict(dict)
    columns: dict[str, Column] = {}
    docs: dict[str, set[int]] = defaultdict(set)
    lang_rank = {lang: i for i, lang in enumerate(dict.fromkeys(r["lang"] for r in rows))}  # as the suite lists them
    for row in rows:
        family, metric = row["family"], row["metric"]
        if metric not in metrics.get(family, OTHER_METRICS):
            continue
        value = float(row["value"]) * (100.0 if scale and metric.split("(")[0] in ("acc", "acc_norm", "exact_match")
                                       else 1.0)
        col = Column(family, metric, row["lang"], row.get("direction"))
        columns.setdefault(col.name, col)
        per_seed[(row["label"], col.name)][row["seed"]] = value
        if row.get("n") is not None:
            docs[family].add(int(row["n"]))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    # Averages: per (family, metric, direction), within a seed, over the languages every arm has (report_averages).
    averages, avg_sets = comparable_averages(per_seed, columns, labels, seeds)
    avg_cols = {a.column: Column(a.family, a.metric, "avg", a.direction) for a in avg_sets}
    cells: dict[tuple[str, str], Cell] = {}
    for key, by_seed in per_seed.items():
        cells[key] = Cell([by_seed[s] for s in sorted(by_seed, key=str)])
    for key, values in averages.items():
        cells[key] = Cell(values)

    def order(col: Column) -> tuple:
        fam = FAMILY_ORDER.index(col.family) if col.family in FAMILY_ORDER else 99
        return (fam, metrics.get(col.family, OTHER_METRICS).index(col.metric), col.direction or "", col.lang == "avg",
                lang_rank.get(col.lang, 0))

    ordered = sorted([*columns.values(), *avg_cols.values()], key=order)
    return Comparison(labels, ordered, cells, seeds, sources, {f: sorted(v) for f, v in docs.items()}, avg_sets)


def deltas(comp: Comparison, baseline: str) -> list[dict[str, Any]]:
    """Per label and column: mean, and its difference to the baseline's mean (absolute and relative %)."""
    if baseline not in comp.labels:
        raise ValueError(f"baseline {baseline!r} is not among the results: {', '.join(comp.labels)}")
    out = []
    for label in comp.labels:
        for col in comp.columns:
            mine, base = comp.cell(label, col).mean, comp.cell(baseline, col).mean
            if mine is None or base is None:
                continue
            out.append({"label": label, "column": col.name, "value": mine, "baseline": base,
                        "delta": mine - base, "delta_pct": relative_pct(mine, base)})
    return out


def _fmt(x: float | None, digits: int = 2, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def markdown(comp: Comparison, baseline: str | None, delta_rows: list[dict[str, Any]], refs: list[dict[str, Any]],
             note: str | None = None, facts: list[dict[str, Any]] | None = None) -> str:
    lines = ["# Comparison", "", *([note, ""] if note else []),
             f"Rows: training datasets ({', '.join(f'{k}: {len(v)} seed(s)' for k, v in comp.seeds.items())}). "
             "Cells: mean ± std over seeds. MMLU accuracy in %, ROUGE/chrF++/spBLEU on a 0-100 scale.", ""]
    for family in dict.fromkeys(c.family for c in comp.columns):
        cols = [c for c in comp.columns if c.family == family]
        n = comp.docs.get(family, [])
        docs = ([f"Eval docs per cell: n = {n[0]}" if len(n) == 1 else f"Eval docs per cell: n = {n[0]}-{n[-1]}", ""]
                if n else [])
        lines += [f"## {family}", "", *docs, "| dataset | " + " | ".join(c.name.split("/", 1)[1] for c in cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for label in comp.labels:
            lines.append(f"| {label} | " + " | ".join(comp.cell(label, c).text() for c in cols) + " |")
        lines.append("")
        lines += [f"Note: {n}" for a in comp.averages if a.family == family and (n := a.note())]
        if family == "xlsum":
            lines += rouge_lines(comp.labels, comp.rouge, comp.rouge_notes)
        if lines[-1]:
            lines.append("")
    if baseline:
        avg_cols = [c for c in comp.columns if c.lang == "avg"]
        lines += [f"## Against {baseline} (averages over languages)", "",
                  "| dataset | " + " | ".join(c.name for c in avg_cols) + " |", "|---|" + "---|" * len(avg_cols)]
        by_key = {(d["label"], d["column"]): d for d in delta_rows}
        for label in comp.labels:
            cells = []
            for c in avg_cols:
                d = by_key.get((label, c.name))
                st = comp.stats.get((label, c.name))
                p = f" p={st.vs.p:.3f}{'' if st.vs.significant else ' n.s.'}" if st and st.vs else ""
                cells.append(f"{_fmt(d['delta'], sign=True)} ({_fmt(d['delta_pct'], sign=True)}%){p}" if d else "–")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    if refs:
        lines += ["## Published figures beside ours", "", "| claim | metric | paper | ours | verdict |",
                  "|---|---|---|---|---|"]
        for r in refs:
            vs = f" vs {r['baseline']}" if r.get("baseline") else ""
            if "relative_pct" in r:
                paper, ours = f"{_fmt(r['relative_pct'], sign=True)}%", f"{_fmt(r.get('ours_pct'), sign=True)}%"
            else:
                paper = " / ".join(f"{_fmt(float(x), 1, sign=True)}" for x in r["delta_points"]) + " points"
                ours = f"{_fmt(r.get('ours_points'), sign=True)} points" if r.get("ours_points") is not None else "–"
            if r.get("ours_ci"):
                ours += f" [{_fmt(r['ours_ci'][0], sign=True)}, {_fmt(r['ours_ci'][1], sign=True)}]"
            lines.append(f"| {r['claim']} ({r['ours']}{vs}) | {r.get('column') or '–'} | {paper} | {ours} | "
                         f"{r.get('verdict', '–')}: {r.get('verdict_why', '')} |")
        notes = [n for r in refs for n in (r.get("metric_note"), r.get("delta_note")) if n]
        lines += ["", *[f"Note: {n}." for n in dict.fromkeys(notes)],
                  "Papers: " + "; ".join(dict.fromkeys(r["paper"] for r in refs)), ""]
    if facts:
        lines += ["## What the papers' protocols were", ""]
        lines += [f"- {f['paper']} ({f['applies_to']}): {f['fact']} Source: {f.get('source', '–')}." for f in facts]
        lines.append("")
    return "\n".join(lines)


def latex(comp: Comparison) -> str:
    cols = comp.columns
    head = " & ".join(_tex(c.name) for c in cols)
    body = "\n".join(f"{_tex(label)} & " + " & ".join(_tex(comp.cell(label, c).text()).replace("±", r"$\pm$")
                                                         for c in cols) + r" \\" for label in comp.labels)
    return ("\\begin{tabular}{l" + "r" * len(cols) + "}\n\\toprule\ndataset & " + head + " \\\\\n\\midrule\n" + body +
            "\n\\bottomrule\n\\end{tabular}\n")


def _tex(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        s = s.replace(a, b)
    return s


def write_csv(comp: Comparison, path: Path, delta_rows: list[dict[str, Any]]) -> None:
    by_key = {(d["label"], d["column"]): d for d in delta_rows}
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["dataset", "family", "metric", "lang", "direction", "mean", "std", "n_seeds", "delta", "delta_pct",
                    *STATS_FIELDS])
        for label in comp.labels:
            for c in comp.columns:
                cell = comp.cell(label, c)
                if cell.mean is None:
                    continue
                d = by_key.get((label, c.name), {})
                w.writerow([label, c.family, c.metric, c.lang, c.direction or "", cell.mean, cell.std or "",
                            len(cell.values), d.get("delta", ""), d.get("delta_pct", ""),
                            *stats_row(comp.stats.get((label, c.name)))])


def plot(comp: Comparison, out: Path) -> list[Path]:
    """One grouped bar chart per (task family, metric[, direction]): languages + avg on x, a bar per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    groups: dict[tuple[str, str, str | None], list[Column]] = defaultdict(list)
    for c in comp.columns:
        groups[(c.family, c.metric, c.direction)].append(c)
    for (family, metric, direction), cols in groups.items():
        if all(comp.cell(label, c).mean is None or math.isnan(comp.cell(label, c).mean)
               for label in comp.labels for c in cols):
            continue  # no value in any arm: the Markdown says why (missing_lines), no empty frame
        fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(cols) * max(1, len(comp.labels)) / 2), 3.6))
        width = 0.8 / max(1, len(comp.labels))
        for k, label in enumerate(comp.labels):
            cells = [comp.cell(label, c) for c in cols]
            xs = [i + k * width for i in range(len(cols))]
            stds = [c.std for c in cells]
            yerr = [x or 0 for x in stds] if any(x is not None for x in stds) else None  # no bars for one seed
            yerr = errors(comp, comp.stats, label, cols) or yerr  # the 95% CI where there are per-item scores
            ax.bar(xs, [c.mean or 0 for c in cells], width, yerr=yerr, label=label, capsize=2)
            mark_not_significant(ax, comp.stats, label, cols, xs)
        ax.set_xticks([i + width * (len(comp.labels) - 1) / 2 for i in range(len(cols))], [c.lang for c in cols])
        title = f"{family} {metric}" + (f" ({direction})" if direction else "")
        ax.set_title(title)
        ax.set_ylabel("% of outputs in the asked language" if family == "fidelity" else metric)
        ax.set_ylim(0, 100.0 if family == "fidelity" else max(ax.get_ylim()[1], 1.0))  # all-zero bars: an axis
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{family}_{metric}{'_' + direction if direction else ''}.png".replace("+", "p").replace("/", "-")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def log_wandb(comp: Comparison, delta_rows: list[dict[str, Any]], project: str | None, group: str | None,
              images: list[Path]) -> str | None:
    """One W&B run (job_type=report): the comparison and the deltas as wandb.Tables, the plots, and the averages as
    summary metrics, so the runs of a sweep compare side by side."""
    from mlift.tracking import log_job

    columns = [c.name for c in comp.columns]
    tables = {"comparison": (["dataset", *columns], [[label, *[comp.cell(label, c).mean for c in comp.columns]]
                                                        for label in comp.labels])}
    if delta_rows:
        tables["deltas"] = (list(delta_rows[0]), [list(d.values()) for d in delta_rows])
    summary = {f"{label}/{c.name}": comp.cell(label, c).mean for label in comp.labels for c in comp.columns
               if c.lang == "avg" and _fmt(comp.cell(label, c).mean) != "–"}
    group = group or os.environ.get("WANDB_RUN_GROUP")
    return log_job("report", "report" + (f"-{group}" if group else ""), {"labels": comp.labels, "seeds": comp.seeds}, summary,
                   tables, images, project=project, group=group)


def make_report(results: list[str], out: str | Path, baseline: str | None = None,
                references: str | Path | None = None, metrics: dict[str, list[str]] | None = None,
                wandb_project: str | None = None, wandb_group: str | None = None,
                note: str | None = None) -> dict[str, Any]:
    """`note`: a paragraph shown under the title (e.g. what scale the numbers come from)."""
    from mlift.records import write_json_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, seeds, sources = load_rows(results)
    if not any(not math.isnan(float(r["value"])) for r in rows):
        raise ValueError("no metric values in the given results")
    items = load_items(seeds, sources)
    rows += fidelity_rows(items)
    comp = build_comparison(rows, seeds, sources, metrics)
    comp.stats = cell_stats(comp, items, baseline)
    comp.rouge, comp.rouge_notes = rouge_setups(results)
    delta_rows = deltas(comp, baseline) if baseline else []
    refs, facts = [], []
    if references and Path(references).is_file():
        published = yaml.safe_load(Path(references).read_text()) or []
        refs, facts = reference_rows(comp, published), reference_facts(comp, published)
        reference_verdicts(comp, items, refs)
    md_text = "\n".join([markdown(comp, baseline, delta_rows, refs, note, facts), *missing_lines(comp),
                         *interval_tables(comp, comp.stats, baseline)])
    (out / "table.md").write_text(md_text + "\n", encoding="utf-8")
    (out / "table.tex").write_text(latex(comp) + "\n" + interval_latex(comp, comp.stats), encoding="utf-8")
    write_csv(comp, out / "table.csv", delta_rows)
    images = plot(comp, out)
    (out / "index.html").write_text(html_page(md_text, comp, images), encoding="utf-8")
    wandb_dir = log_wandb(comp, delta_rows, wandb_project, wandb_group, images)
    summary = {"labels": comp.labels, "seeds": comp.seeds, "sources": comp.sources, "columns": [c.name for c in comp.columns],
               "baseline": baseline, "deltas": delta_rows, "references": refs, "facts": facts,
               "plots": [p.name for p in images],
               "docs_per_cell": comp.docs, "note": note, "wandb_dir": wandb_dir,
               "averages": {a.column: {"langs": a.langs, "excluded": a.excluded} for a in comp.averages},
               "rouge": comp.rouge, "rouge_notes": comp.rouge_notes,
               "intervals": {f"{k[0]}/{k[1]}": stats_row(v, as_dict=True) for k, v in comp.stats.items()}}
    write_json_atomic(out / "report.json", summary)
    return summary
