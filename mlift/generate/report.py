"""The data report of a generation run: funnel per step and language (in / kept / dropped by reason / quarantined),
language-ID pass rate, length and score distributions, the diversity figure, the cost ledger; Markdown + PNG plots,
and a dataset card (README.md) next to the data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from mlift.generate.config import GenerateRecipe
from mlift.generate.pipeline import FINAL, STEPS
from mlift.generate.plan import iter_all
from mlift.generate.report_examples import example_lines
from mlift.generate.score import weight_effects
from mlift.languages import get_language
from mlift.runner.stage import collect_stats


def funnel(cfg: GenerateRecipe) -> dict[str, Any]:
    """Per language: each step's counts and reasons, and whether the numbers add up along the chain."""
    out: dict[str, Any] = {}
    for code in cfg.languages:
        lang = get_language(code).flores
        steps = {s: collect_stats(Path(cfg.output_dir) / lang, s, cfg.num_shards).to_json() for s in STEPS}
        problems = []
        for k, s in enumerate(STEPS):
            c = steps[s]["counts"]
            if s != "fragments" and c["in"] != c["keep"] + c["drop"] + c["quarantine"]:
                problems.append(f"{s}: in {c['in']} != kept + dropped + quarantined")
            if k and s != "dedup" and c["in"] != steps[STEPS[k - 1]]["counts"]["keep"]:
                problems.append(f"{s}: in {c['in']} != {STEPS[k - 1]} kept {steps[STEPS[k - 1]]['counts']['keep']}")
        if steps["dedup"]["counts"]["in"] != steps["fragments"]["counts"]["keep"]:
            problems.append("dedup: in != fragments kept")
        frag = steps["fragments"]
        candidates = frag["counts"]["keep"] + frag["counts"]["drop"]
        lang_drops = frag["reasons"]["drop"].get("lang_id", 0)
        checked = candidates - sum(v for r, v in frag["reasons"]["drop"].items() if r in ("too_short", "too_long", "max_per_doc"))
        out[lang] = {"steps": steps, "fragment_candidates": candidates, "documents": frag["counts"]["in"],
                     "lang_id_pass_rate": round(1 - lang_drops / checked, 4) if checked else None,
                     "final": steps[FINAL]["counts"]["keep"], "adds_up": not problems, "problems": problems,
                     "contamination": contamination_counts(cfg, lang, steps[FINAL]) if cfg.contamination else None,
                     # records that failed transiently (server down, timeout) and were retried by a rerun; of them,
                     # the ones quarantined for good after max_attempts
                     "retried": sum(steps[s]["retries"]["retried"] for s in STEPS),
                     "final_after_retries": sum(steps[s]["retries"]["final"] for s in STEPS)}
    return out


def contamination_counts(cfg: GenerateRecipe, lang: str, final: dict[str, Any]) -> dict[str, Any]:
    """Pairs dropped for contamination (the final step's drop reason) and kept-but-flagged ones, with the eval sets
    they overlap."""
    flagged, sets = 0, Counter()
    for rec in iter_all(Path(cfg.output_dir) / lang / FINAL, cfg.num_shards):
        if rec.meta.get("contamination_ngrams"):
            flagged += 1
            sets.update(x for x in str(rec.meta.get("contamination_sets", "")).split(",") if x)
    return {"dropped": final["reasons"]["drop"].get("contamination", 0), "flagged": flagged, "flagged_sets": dict(sets),
            "mode": "drop" if cfg.contamination.drop else "flag", "n": cfg.contamination.n,
            "eval_sets": [e.name or f"{e.kind}:{e.path}" for e in cfg.contamination.eval_sets]}


def language_warnings(cfg: GenerateRecipe) -> dict[str, list[tuple[str, bool]]]:
    """Per language: (warning, fatal) for a language that lost everything (fatal: `mlift generate` exits 1) or most of
    its fragments to language ID. Only steps whose shards are all done are judged."""
    out: dict[str, list[tuple[str, bool]]] = {}
    for code in cfg.languages:
        lang = get_language(code).flores
        warns: list[tuple[str, bool]] = []
        frag = collect_stats(Path(cfg.output_dir) / lang, "fragments", cfg.num_shards)
        if frag.shards_done == cfg.num_shards:
            c, drops = frag.counts, frag.reasons["drop"]
            top = ", ".join(f"{r} {v}" for r, v in drops.most_common(3))
            if c["keep"] == 0:
                warns.append((f"{lang}: no fragment kept ({c['in']} documents, {c['drop']} candidates dropped: "
                              f"{top or 'none'}; {c['quarantine']} quarantined); check fragments.langid "
                              f"(mlift/resources/langid.tsv), the length bounds and the sources", True))
            checked = c["keep"] + drops.get("lang_id", 0)
            if c["keep"] and checked and drops.get("lang_id", 0) / checked > 0.5:
                warns.append((f"{lang}: language ID dropped {drops['lang_id']} of {checked} fragments "
                              f"({100 * drops['lang_id'] / checked:.0f}%)", False))
        last = collect_stats(Path(cfg.output_dir) / lang, FINAL, cfg.num_shards)
        if last.shards_done == cfg.num_shards and last.counts["keep"] == 0 and not any(f for _, f in warns):
            warns.append((f"{lang}: no pairs in the final data (see the funnel for the step that dropped them)", True))
        if warns:
            out[lang] = warns
    return out


def cost_ledger(cfg: GenerateRecipe) -> dict[str, Any]:
    """Tokens, cost (prices per 1M tokens from the recipe's LLM configs) and wall time, per step and model."""
    rows: dict[str, dict[str, Counter]] = {}
    seconds: Counter = Counter()
    for code in cfg.languages:
        lang = get_language(code).flores
        for s in STEPS:
            st = collect_stats(Path(cfg.output_dir) / lang, s, cfg.num_shards)
            seconds[s] += st.seconds
            for model, c in st.usage.items():
                rows.setdefault(s, {}).setdefault(model, Counter()).update(c)
    total = sum(c.get("cost_usd", 0.0) for m in rows.values() for c in m.values())
    return {"per_step": {s: {m: {k: round(v, 6) for k, v in c.items()} for m, c in ms.items()} for s, ms in rows.items()},
            "seconds": {s: round(v, 3) for s, v in seconds.items()}, "total_cost_usd": round(total, 6)}


def fmt(x: object) -> str:
    return f"{x:.3f}" if isinstance(x, float) else "-"


def _plan_info(cfg: GenerateRecipe, lang: str, step: str) -> dict:
    p = Path(cfg.output_dir) / lang / step / "_plan.json"
    return json.loads(p.read_text(encoding="utf-8")).get("info", {}) if p.exists() else {}


def write_report(cfg: GenerateRecipe, recipe_hash: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(cfg.output_dir)
    plots = out / "report"
    plots.mkdir(parents=True, exist_ok=True)
    fun = funnel(cfg)
    ledger = cost_ledger(cfg)
    lengths: dict[str, list[int]] = {}
    quality: dict[str, list[float]] = {}
    ratings: dict[str, list[float]] = {}
    for lang in fun:
        recs = list(iter_all(out / lang / FINAL, cfg.num_shards))
        lengths[lang] = [r.meta.get("tokens", 0) for r in recs]
        quality[lang] = [r.meta.get("scores", {}).get("quality", 0.0) for r in recs]
        ratings[lang] = [r.meta.get("scores", {}).get("rating", 0.0) for r in recs]

    lines = [f"# Generation report: {out.name}", "", f"Recipe hash `{recipe_hash}`, seed {cfg.seed}, "
             f"{cfg.num_shards} shards, languages: {', '.join(fun)}.", "", "## Funnel", ""]
    lines += ["| language | step | in | kept | dropped | quarantined | reasons |", "|---|---|---|---|---|---|---|"]
    for lang, f in fun.items():
        for s in STEPS:
            st = f["steps"][s]
            c = st["counts"]
            reasons = ", ".join([f"{r} {v}" for r, v in st["reasons"]["drop"].items()] +
                                [f"quarantine:{r} {v}" for r, v in st["reasons"]["quarantine"].items()])
            lines.append(f"| {lang} | {s} | {c['in']} | {c['keep']} | {c['drop']} | {c['quarantine']} | {reasons} |")
    lines += ["", "Fragments: `in` counts documents (and unreadable lines); kept + dropped are fragment candidates.", ""]
    warns = language_warnings(cfg)
    if warns:
        lines += ["## Warnings", ""] + [f"- {'**' if fatal else ''}{w}{'**' if fatal else ''}"
                                       for ws in warns.values() for w, fatal in ws] + [""]
    lines += ["## Summary", "", "| language | documents | fragment candidates | lang-ID pass rate | final pairs | "
              "mean cos (selected) | mean cos (random) | adds up |", "|---|---|---|---|---|---|---|---|"]
    for lang, f in fun.items():
        info = _plan_info(cfg, lang, "select")
        lines.append(f"| {lang} | {f['documents']} | {f['fragment_candidates']} | {f['lang_id_pass_rate']} | {f['final']} | "
                     f"{fmt(info.get('mean_cos_selected'))} | {fmt(info.get('mean_cos_random'))} | "
                     f"{'yes' if f['adds_up'] else 'NO: ' + '; '.join(f['problems'])} |")
    if cfg.contamination:
        lines += ["", f"## Contamination ({cfg.contamination.n}-grams against the eval sets, "
                  f"{'dropped' if cfg.contamination.drop else 'flagged'})", "",
                  "| language | dropped | flagged (kept) | eval sets hit by flagged pairs |", "|---|---|---|---|"]
        for lang, f in fun.items():
            c = f["contamination"]
            lines.append(f"| {lang} | {c['dropped']} | {c['flagged']} | {c['flagged_sets'] or '-'} |")
        lines += ["", "Checked against: " + ", ".join(fun[next(iter(fun))]["contamination"]["eval_sets"])]
    effects = {lang: weight_effects([r.meta.get("scores", {}) for r in iter_all(out / lang / "score", cfg.num_shards)],
                                    cfg.score, cfg.select.target) for lang in fun}
    lines += ["", "## Quality weights", "", "Over the pairs the score step kept: each component's weight, its Spearman "
              "rank correlation with the final quality, and the share of the top pairs by quality (the select target, "
              "else the better half) that leave when that weight is set to 0.", "",
              "| language | component | weight | Spearman with quality | top changed when zeroed |", "|---|---|---|---|---|"]
    for lang, eff in effects.items():
        for comp, e in eff.items():
            lines.append(f"| {lang} | {comp} | {e['weight']} | {fmt(e['spearman_with_quality'])} | "
                         f"{e['top_changed_when_zeroed']:.3f} |")
    lines += ["", "## Cost ledger", "", "| step | model | prompt tokens | completion tokens | cost (USD) |", "|---|---|---|---|---|"]
    for s, ms in ledger["per_step"].items():
        for m, c in ms.items():
            lines.append(f"| {s} | {m} | {int(c.get('prompt_tokens', 0))} | {int(c.get('completion_tokens', 0))} | "
                         f"{c.get('cost_usd', 0.0):.6f} |")
    lines += ["", "Wall time per step (s): " + ", ".join(f"{s} {v}" for s, v in ledger["seconds"].items()),
              f"Total cost: {ledger['total_cost_usd']:.6f} USD", ""]

    figs = {"funnel.png": "Kept records per step", "lengths.png": "Response length (tokens)",
            "quality.png": "Quality score of kept pairs"}
    fig, ax = plt.subplots(figsize=(8, 4))
    for lang, f in fun.items():
        ax.plot(STEPS, [f["fragment_candidates"]] + [f["steps"][s]["counts"]["keep"] for s in STEPS[1:]], marker="o", label=lang)
    ax.set_yscale("symlog")
    ax.set_ylabel("records")
    ax.legend(fontsize=7)
    ax.set_title(figs["funnel.png"])
    fig.tight_layout()
    fig.savefig(plots / "funnel.png", dpi=80)
    plt.close(fig)
    for fname, data in (("lengths.png", lengths), ("quality.png", quality)):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist([v for v in data.values()], label=list(data), bins=20, stacked=False)
        ax.legend(fontsize=7)
        ax.set_title(figs[fname])
        fig.tight_layout()
        fig.savefig(plots / fname, dpi=80)
        plt.close(fig)
    lines += ["## Plots", ""] + [f"![{t}](report/{f})" for f, t in figs.items()] + [""]
    lines += example_lines(out, list(fun), list(STEPS), FINAL)
    report = out / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    (out / "report.json").write_text(json.dumps({"funnel": fun, "cost": ledger, "ratings": ratings,
                                                            "quality_weights": effects}, indent=1,
                                                ensure_ascii=False), encoding="utf-8")
    write_card(cfg, fun, recipe_hash)
    return report


def write_card(cfg: GenerateRecipe, fun: dict, recipe_hash: str) -> None:
    langs = list(fun)
    card = [
        "---", "language:", *[f"- {get_language(x).short}" for x in langs], "task_categories:", "- text-generation",
        "configs:", "- config_name: default", "  data_files: '*/to_target/shard-*.jsonl'", "---", "",
        f"# {Path(cfg.output_dir).name}", "",
        "Instruction-response pairs generated by mlift (natural multilingual IFT data from monolingual corpora): native "
        "text fragments are the responses (never machine-translated); instructions were written in English for their "
        "English translation by an instruct LLM, scored for quality and diversity, and translated back.", "",
        "Records: `{id, lang, messages: [{role: user}, {role: assistant}], meta}` (TRL SFTTrainer's messages format).", "",
        "| language | pairs |", "|---|---|", *[f"| {x} | {fun[x]['final']} |" for x in langs], "",
        f"Sources: {', '.join(s.name or s.path or '' for s in cfg.sources)} (check their licenses before sharing).",
        f"Instruct model: {cfg.instruct.llm.model}; judge: {(cfg.score.judge or cfg.instruct.llm).model}; "
        f"recipe hash {recipe_hash}, seed {cfg.seed}. See report.md for the funnel and manifest.json for the ledger.", "",
    ]
    (Path(cfg.output_dir) / "README.md").write_text("\n".join(card), encoding="utf-8")
