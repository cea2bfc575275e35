"""`mlift sweep FILE --rehearse`: the sweep in miniature, declared in its own `rehearsal:` section.

The section is a partial sweep: its mappings are merged into the sweep's (lists replaced), `datasets:` and `models:`
entries by `name`. Only models, data, step counts and resources should change: the rehearsal keeps the sweep's shape
(every arm and grid point, several seeds, shards > 1 where the sweep shards, the same stages), checked here, and it
writes under runs/rehearsal/<name> (never the real output_dir), so a rehearsal and a real run never mix.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from mlift.recipe import Recipe, RecipeError
from mlift.sweep.schema import SweepRecipe, grid_points, point_label


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(patch)


def _merge_named(where: str, items: list[dict], patches: list[dict]) -> list[dict]:
    by = {item.get("name"): i for i, item in enumerate(items)}
    out = [dict(x) for x in items]
    for patch in patches:
        name = patch.get("name") if isinstance(patch, dict) else None
        if name not in by:
            raise RecipeError(f"rehearsal.{where}: {name!r} is not one of the sweep's {where} ({sorted(map(str, by))})")
        out[by[name]] = _merge(out[by[name]], patch)
    return out


def _apply(out: dict[str, Any], section: dict[str, Any], where: str) -> None:
    try:
        for key, value in section.items():
            if key in ("datasets", "models"):
                out[key] = _merge_named(key, out.get(key) or [], value)
            elif isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = _merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None


def rehearsed(doc: dict[str, Any], source: str, hub_endpoint: str | None = None) -> dict[str, Any]:
    """The sweep document with its rehearsal section applied (and removed). With `hub_endpoint`, the section's `hub:`
    part is applied over it (the sweep's hub dataset ids kept, read from that endpoint; models stay swapped) and every
    job gets HF_ENDPOINT with the hub's offline switches off."""
    section = dict(doc.get("rehearsal") or {})
    if not section:
        raise RecipeError(f"{source}: no `rehearsal:` section (see mlift/sweep/rehearsal.py)")
    hub = section.pop("hub", None)
    out = {k: copy.deepcopy(v) for k, v in doc.items() if k != "rehearsal"}
    _apply(out, section, source)
    out["output_dir"] = section.get("output_dir") or f"runs/rehearsal/{doc.get('name')}"
    if hub_endpoint:
        if not hub:
            raise RecipeError(f"{source}: --hub-endpoint needs a `rehearsal.hub:` section (the overrides that keep the "
                              "sweep's hub datasets)")
        _apply(out, hub, f"{source}: rehearsal.hub")
        out["output_dir"] = hub.get("output_dir") or f"{out['output_dir']}-hub"
        slurm = out.setdefault("slurm", {}) or {}
        out["slurm"] = slurm
        from mlift.sweep.schema import default_env

        slurm["env"] = {**(slurm.get("env") or default_env()), "HF_ENDPOINT": hub_endpoint,
                        **{k: "0" for k in HUB_OFFLINE_VARS}}
    return out


# "0" rather than unset: a job inherits the submitting shell's environment, which may have them on
HUB_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def _labels(cfg: SweepRecipe) -> list[str]:
    return [point_label(d.name, d.label, p) if p else d.name for d in cfg.datasets for p in grid_points(d.grid)]


def check_shape(source: str, real: SweepRecipe, mini: SweepRecipe) -> None:
    """The rehearsal must exercise what the real sweep will: same arms and grid points, several seeds, sharding."""
    problems = []
    if _labels(real) != _labels(mini):
        problems.append(f"datasets: arms {_labels(mini)} != the sweep's {_labels(real)}")
    if [m.name for m in real.models] != [m.name for m in mini.models]:
        problems.append("models: not the sweep's models")
    if len(mini.seeds) < min(2, len(real.seeds)):
        problems.append(f"seeds: {mini.seeds}: keep at least 2 (the sweep has {len(real.seeds)})")
    for a, b in zip(real.datasets, mini.datasets):
        if a.shards > 1 and b.shards < 2:
            problems.append(f"datasets.{a.name}.shards: {b.shards}: keep > 1 (the sweep has {a.shards})")
        if (a.path is None) != (b.path is None) or a.after != b.after or a.train != b.train:
            problems.append(f"datasets.{a.name}: built/ready, after or train differ from the sweep")
    if {k: len(v) for k, v in real.train.grid.items()} != {k: len(v) for k, v in mini.train.grid.items()}:
        problems.append("train.grid: not the sweep's axes")
    if (real.eval is None) != (mini.eval is None) or real.report.enabled != mini.report.enabled:
        problems.append("eval/report: a stage of the sweep is missing")
    if (real.answer is None) != (mini.answer is None) or (real.judge is None) != (mini.judge is None):
        problems.append("answer/judge: a stage of the sweep is missing")
    elif real.judge and mini.judge and (real.judge.reference, real.judge.langs) != (mini.judge.reference, mini.judge.langs):
        problems.append("judge: reference/langs differ from the sweep's (every language's reference must be judged)")
    if Path(real.output_dir).resolve() == Path(mini.output_dir).resolve():
        problems.append("output_dir: the rehearsal would write into the real sweep's output_dir")
    if problems:
        raise RecipeError(f"{source}: rehearsal does not keep the sweep's shape: " + "; ".join(problems))


def load_rehearsal(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
                   hub_endpoint: str | None = None) -> Recipe[SweepRecipe]:
    import yaml

    from mlift.recipe import load_recipe

    real = load_recipe(path, SweepRecipe)
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    mini = load_recipe(None, SweepRecipe, overrides, base=rehearsed(doc, str(path), hub_endpoint))
    mini.path = Path(path)
    check_shape(str(path), real.cfg, mini.cfg)
    return mini


def load_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
               rehearse: bool = False, hub_endpoint: str | None = None) -> Recipe[SweepRecipe]:
    """The sweep recipe; `rehearse`: its miniature twin from its `rehearsal:` section (mlift/sweep/rehearsal.py),
    with `hub_endpoint`: the twin that reads the sweep's hub datasets from that Hugging Face endpoint."""
    from mlift.recipe import load_recipe

    if rehearse:
        return load_rehearsal(path, overrides, hub_endpoint=hub_endpoint)
    return load_recipe(path, SweepRecipe, overrides)
