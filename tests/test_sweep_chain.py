"""`mlift sweep` with a data command that has global steps (generate: dedup, select): the chain of job arrays and
global jobs, run for real with --local; stale work after an edited recipe; safe job scripts (hostile values)."""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import pytest
import yaml
from conftest import MLIFT

from mlift.recipe import RecipeError
from mlift.sweep import expand, load_sweep, render, run_local, write_scripts
from mlift.sweep.validate import check_labels

REPO = Path(__file__).resolve().parents[1]
# one language, a dozen UDHR lines: the real pipeline (LLM stages on the 260K Llama) in about a minute
GEN_SETS = ["languages=[fra_Latn]", "sources.0.limit=12", "sources.1.limit=1", "select.target=4"]


def _sweep(tmp_path: Path, datasets: list[dict], **changes) -> Path:
    data = {
        "name": "chain", "output_dir": str(tmp_path / "out"), "seeds": [0], "datasets": datasets,
        "train": {"recipe": "recipes/stories260k/lora-sft/config.yaml", "resources": {"gpus": 0},
                  "set": ["sft.max_steps=2", "sft.logging_steps=1", "sft.save_steps=1000"]},
        "eval": {"suite": "recipes/eval/local_small.yaml", "args": ["--limit", "1", "--langs", "fra_Latn"],
                 "resources": {"gpus": 0}},
        "slurm": {"gres": None, "workdir": str(REPO), "env": {"HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}},
        **changes}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _generate_arm(shards: int = 2) -> dict:
    return {"name": "natural", "command": "generate", "recipe": "recipes/generate/udhr_stories260k.yaml",
            "set": GEN_SETS, "shards": shards}


def test_generate_chain_is_cut_at_the_global_steps(tmp_path, shared_dir):
    from mlift.generate.config import STEP_KINDS

    jobs = expand(load_sweep(_sweep(tmp_path, [_generate_arm()])))
    data = [j for j in jobs if j.label == "natural" and j.kind in ("data", "global", "finalize")]
    assert [(j.name, j.kind, j.array) for j in data] == [
        ("data-natural-fragments", "data", 2), ("global-natural-dedup", "global", None),
        ("data-natural-to_english", "data", 2), ("global-natural-select", "global", None),
        ("data-natural-to_target", "data", 2), ("final-natural", "finalize", None)]
    for parent, child in zip(data, data[1:]):
        assert child.deps == [parent.name]
    assert "--steps to_english,instruct,score" in data[2].command and '--shard "$TASK/2"' in data[2].command
    assert "--steps dedup" in data[1].command and "--shard" not in data[1].command
    assert "--steps" not in data[-1].command and "--shard" not in data[-1].command
    # the cut comes from the pipeline's own step table: every global step is a job of its own
    assert [j.name.rsplit("-", 1)[1] for j in data if j.kind == "global"] == [s for s, g in STEP_KINDS if g]
    by = {j.name: j for j in jobs}
    assert by["train-natural-seed0"].deps == ["final-natural"]


def test_generate_steps_flag_rejects_unknown_step(tmp_path, shared_dir):
    done = subprocess.run([*MLIFT, "generate", "recipes/generate/udhr_stories260k.yaml",
                           "--set", f"output_dir={tmp_path}/g", "--steps", "fragments,dedupe"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "dedupe" in done.stderr and "Traceback" not in done.stderr


def test_generate_arm_runs_through_the_chain_to_the_report(tmp_path, shared_dir):
    """--local: a 2-shard generate arm (7 steps cut into 3 arrays + 2 global jobs + finalize), trained, evaluated,
    reported. Before the chain existed every array task stopped at dedup with exit 3."""
    recipe = load_sweep(_sweep(tmp_path, [_generate_arm()]))
    jobs = expand(recipe)
    lines: list[str] = []
    ok = run_local(recipe, jobs, write_scripts(recipe, jobs), echo=lines.append)
    out = tmp_path / "out"
    assert ok, "\n".join(lines) + "".join(p.read_text()[-2000:] for p in (out / "logs").glob("*.log"))
    # every array task and every global step ran (exit 0), in chain order
    assert [x.split()[1] for x in lines if x.startswith("ok")] == [
        "data-natural-fragments[0]", "data-natural-fragments[1]", "global-natural-dedup",
        "data-natural-to_english[0]", "data-natural-to_english[1]", "global-natural-select",
        "data-natural-to_target[0]", "data-natural-to_target[1]", "final-natural", "train-natural-seed0",
        "eval-natural-seed0", "report"]
    assert json.loads((out / "data/natural/manifest.json").read_text())["dataset"]["data_files"]
    assert (out / "data/natural/fra_Latn/dedup/_plan.json").is_file()
    assert json.loads((out / "report/report.json").read_text())["labels"] == ["natural"]


def _two_mix_arms(tmp_path: Path) -> tuple[Path, Path]:
    mix = tmp_path / "mix.yaml"
    mix.write_text(yaml.safe_dump({"seed": 0, "output_dir": "unused", "mixture": {
        "kind": "weighted", "budget": 8,
        "sources": [{"source": {"path": "../shared/data/alpaca/alpaca_en_demo.json", "lang": "eng_Latn"}, "weight": 1}]}}))
    other = {"name": "templated", "command": "baseline templated", "recipe": "recipes/baselines/templated_xlsum_local.yaml",
             "set": ["datasets.0.langs=[fra_Latn]", "datasets.0.limit=2", "templates_per_example=1"]}
    train = {"recipe": "recipes/stories260k/lora-sft/config.yaml", "resources": {"gpus": 0},
             "set": ["sft.max_steps=2", "sft.logging_steps=1", "sft.save_steps=1000", "sft.max_length=512",
                     "sft.truncation_mode=keep_end"]}
    return _sweep(tmp_path, [{"name": "alpaca", "command": "mix", "recipe": str(mix)}, other], train=train,
                  report={"baseline": "alpaca"}), mix


def _edit(mix: Path) -> None:
    text = yaml.safe_load(mix.read_text())
    text["mixture"]["budget"] = 6
    mix.write_text(yaml.safe_dump(text))


def test_editing_a_dataset_recipe_changes_the_hashes_of_its_arm_only(tmp_path, shared_dir):
    path, mix = _two_mix_arms(tmp_path)
    before = {j.name: j.hash for j in expand(load_sweep(path), validate=False)}
    _edit(mix)
    after = {j.name: j.hash for j in expand(load_sweep(path), validate=False)}
    assert sorted(k for k in before if before[k] != after[k]) == [
        "data-alpaca", "eval-alpaca-seed0", "report", "train-alpaca-seed0"]


@pytest.mark.slow
def test_an_edited_recipe_reruns_its_arm_and_nothing_else(tmp_path, shared_dir):
    """--local, for real: after a complete sweep the mix recipe of one arm is edited; the next run rebuilds that arm
    (the old build set aside, not reused), retrains, re-evaluates it and remakes the report; the other arm is skipped."""
    path, mix = _two_mix_arms(tmp_path)
    recipe = load_sweep(path)
    jobs = expand(recipe)
    lines: list[str] = []
    assert run_local(recipe, jobs, write_scripts(recipe, jobs), echo=lines.append), lines
    _edit(mix)
    jobs = expand(recipe)
    lines = []
    assert run_local(recipe, jobs, write_scripts(recipe, jobs), echo=lines.append), lines
    assert sorted(x.split()[1] for x in lines if x.startswith("ok")) == [
        "data-alpaca", "eval-alpaca-seed0", "report", "train-alpaca-seed0"], lines
    assert all(f"skip   {j.name} (complete)" in lines for j in jobs if j.label == "templated")
    assert any(x.startswith("stale  data-alpaca") for x in lines)
    assert [p.name for p in (tmp_path / "out/data").iterdir() if ".stale-" in p.name]
    manifest = json.loads((tmp_path / "out/data/alpaca/manifest.json").read_text())
    assert "budget': 6" in str(manifest) or '"budget": 6' in json.dumps(manifest)


# --- safe scripts ----------------------------------------------------------------------------------------------------

HOSTILE = ['x"; touch {p}; echo "', "$(touch {p})", "`touch {p}`", "a'b; touch {p}", "x\ntouch {p}\n"]


def _hostile_sweep(tmp_path: Path, template: Path | None = None) -> tuple[Path, list[Path]]:
    pwned = [tmp_path / f"pwned{i}" for i in range(len(HOSTILE) * 2)]
    env = {f"V{i}": v.format(p=pwned[i]) for i, v in enumerate(HOSTILE)}
    sets = [f"mixture.budget={v.format(p=pwned[len(HOSTILE) + i])}" for i, v in enumerate(HOSTILE)]
    # `mlift` is a shell function here that records its arguments: the script runs, nothing real is started
    setup = f'mlift() {{ printf "%s\\n" "$@" > {tmp_path}/args.txt; }}'
    path = _sweep(tmp_path, [{"name": "mix", "command": "mix", "recipe": "recipes/mix/weighted.yaml", "set": sets}],
                  slurm={"gres": None, "workdir": str(tmp_path), "setup": setup, "env": env,
                         **({"template": str(template)} if template else {})})
    return path, pwned


def test_hostile_values_cannot_run_anything(tmp_path):
    path, pwned = _hostile_sweep(tmp_path)
    recipe = load_sweep(path)
    job = expand(recipe, validate=False)[0]
    script = tmp_path / "job.sh"
    script.write_text(render(recipe, job))
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not [p for p in pwned if p.exists()], script.read_text()
    args = (tmp_path / "args.txt").read_text()
    assert f"mixture.budget={HOSTILE[1].format(p=pwned[len(HOSTILE) + 1])}" in args   # arrived literally

    # the control: the same values through the old, unquoted `export KEY="VALUE"` line do run
    old = tmp_path / "unquoted.sbatch"
    old.write_text((REPO / "slurm/job.sbatch").read_text().replace("={{ q(value) }}", '="{{ value }}"'))
    path, pwned = _hostile_sweep(tmp_path / "control", old) if (tmp_path / "control").mkdir() is None else (None, [])
    recipe = load_sweep(path)
    script = tmp_path / "control" / "job.sh"
    script.write_text(render(recipe, expand(recipe, validate=False)[0]))
    subprocess.run(["bash", str(script)], capture_output=True, text=True, cwd=tmp_path / "control")
    assert [p for p in pwned if p.exists()]


def test_bad_env_key_and_line_breaks_in_sbatch_values_are_refused(tmp_path):
    with pytest.raises(RecipeError, match="env keys"):
        load_sweep(_sweep(tmp_path, [{"name": "a", "path": "x.json"}]), ['slurm.env={"A; touch x": "1"}'])
    recipe = load_sweep(_sweep(tmp_path, [{"name": "a", "path": "x.json"}],
                               slurm={"partition": f"debug\ntouch {tmp_path}/x"}))
    with pytest.raises(RecipeError, match="partition"):
        render(recipe, expand(recipe, validate=False)[0])


# --- validation before submission ------------------------------------------------------------------------------------

def _pool_and_mix(tmp_path: Path, mix_langs: list[str], **changes) -> Path:
    return _sweep(tmp_path, [
        {"name": "pool", "command": "baseline translated-alpaca",
         "recipe": "recipes/baselines/translated_alpaca_stories260k.yaml", "train": False},
        {"name": "pinch", "command": "mix", "recipe": "recipes/mix/pinch_stories260k.yaml", "after": ["pool"],
         "set": [f"mixture.langs=[{', '.join(mix_langs)}]"], "grid": {"mixture.percent": [0, 50]},
         "label": "pinch-P{percent}"}], **changes)


def test_mix_languages_must_come_from_its_pool(tmp_path, shared_dir):
    jobs = expand(load_sweep(_pool_and_mix(tmp_path, ["eng_Latn", "fra_Latn", "spa_Latn"])))
    assert {j.label for j in jobs if j.kind == "eval"} == {"pinch-P0", "pinch-P50"}
    with pytest.raises(RecipeError) as err:
        expand(load_sweep(_pool_and_mix(tmp_path, ["eng_Latn", "fra_Latn", "kor_Hang"])))
    msg = str(err.value)
    assert "sweep.yaml" in msg and "dataset pinch-P0" in msg and "mixture.langs" in msg and "kor_Hang" in msg


def test_labels_of_report_baseline_and_references_must_exist(tmp_path, shared_dir):
    with pytest.raises(RecipeError, match=r"sweep.yaml: report.baseline: 'pinch-P1'"):
        expand(load_sweep(_pool_and_mix(tmp_path, ["eng_Latn", "fra_Latn"], report={"baseline": "pinch-P1"})),
               validate=False)
    refs = tmp_path / "refs.yaml"
    refs.write_text(yaml.safe_dump([
        {"paper": "x", "claim": "other sweep", "sweep": "another", "ours": "a", "baseline": "b"},
        {"paper": "y", "claim": "ours", "sweep": "chain", "ours": "pinch-P50", "baseline": "pinch-P0"}]))
    args = {"args": ["--references", str(refs)]}
    expand(load_sweep(_pool_and_mix(tmp_path, ["eng_Latn", "fra_Latn"], report=args)), validate=False)
    refs.write_text(yaml.safe_dump([{"paper": "y", "claim": "ours", "sweep": "chain", "ours": "pinch-P100",
                                     "baseline": "pinch-P0"}]))
    with pytest.raises(RecipeError, match=r"sweep.yaml: .*refs.yaml row 0 .*ours: 'pinch-P100'"):
        expand(load_sweep(_pool_and_mix(tmp_path, ["eng_Latn", "fra_Latn"], report=args)), validate=False)
    # a row without `sweep:` concerns every sweep that has its `ours` arm: a missing baseline arm is warned about
    refs.write_text(yaml.safe_dump([{"paper": "z", "claim": "renamed", "ours": "pinch-P50", "baseline": "pinch-0"},
                                    {"paper": "w", "claim": "elsewhere", "ours": "natural", "baseline": "templated"}]))
    recipe = load_sweep(_pool_and_mix(tmp_path, ["eng_Latn", "fra_Latn"], report=args))
    with pytest.warns(UserWarning, match=r"refs.yaml row 0 .*baseline 'pinch-0'"):
        check_labels(recipe.path, "chain", None, args["args"], {"pinch-P0", "pinch-P50"},
                     warn=lambda m: warnings.warn(m, UserWarning, stacklevel=1))


def test_bad_override_of_a_dataset_recipe_names_sweep_arm_and_key(tmp_path, shared_dir):
    path = _sweep(tmp_path, [{"name": "alpaca", "command": "mix", "recipe": "recipes/mix/weighted.yaml",
                              "set": ["mixture.budgett=3"]}])
    done = subprocess.run([*MLIFT, "sweep", str(path), "--dry-run"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "sweep.yaml: dataset alpaca:" in done.stderr and "budgett" in done.stderr


SWEEPS = sorted(p.stem for p in (REPO / "recipes/sweeps").glob("*.yaml"))


def test_the_paper_sweeps_validate(shared_dir):
    """What a user submits: every recipe of every shipped sweep (and its rehearsal: each one has one) loads with its
    overrides, and their labels match results/references.yaml."""
    for name in SWEEPS:
        for rehearse in (False, True):
            jobs = expand(load_sweep(REPO / "recipes/sweeps" / f"{name}.yaml", rehearse=rehearse))
            assert any(j.kind == "report" for j in jobs)


# --- rehearsals ------------------------------------------------------------------------------------------------------

def test_rehearsal_keeps_the_shape_and_writes_elsewhere(shared_dir):
    for name in SWEEPS:
        real = expand(load_sweep(REPO / "recipes/sweeps" / f"{name}.yaml"), validate=False)
        mini = expand(load_sweep(REPO / "recipes/sweeps" / f"{name}.yaml", rehearse=True), validate=False)
        assert {(j.kind, j.label) for j in real if j.kind != "train"} >= {(j.kind, j.label) for j in mini
                                                                          if j.kind in ("eval", "report")}
        assert {j.label for j in real if j.kind == "eval"} == {j.label for j in mini if j.kind == "eval"}
        assert len({j.seed for j in mini if j.kind == "train"}) >= 2
        sharded = {j.label for j in real if j.kind == "data" and (j.array or 1) > 1}
        assert sharded and sharded == {j.label for j in mini if j.kind == "data" and (j.array or 1) > 1}
        assert all("/runs/rehearsal/" in j.out for j in mini) and not any("/runs/rehearsal/" in j.out for j in real)
        assert not any(j.resources.get("gpus") for j in mini)


def test_rehearsal_that_drops_the_shape_is_refused(tmp_path, shared_dir):
    doc = yaml.safe_load((REPO / "recipes/sweeps/sphinx.yaml").read_text())
    for change, key in (({"seeds": [0]}, "seeds"), ({"datasets": [{"name": "sphinx", "shards": 1}]}, "shards"),
                        ({"datasets": [{"name": "sphinx", "grid": {"nshot.n": [0]}}]}, "arms"),
                        ({"output_dir": doc["output_dir"]}, "output_dir")):
        bad = {**doc, "rehearsal": {**doc["rehearsal"], **change}}
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(RecipeError, match=key):
            load_sweep(path, rehearse=True)
    bad = {**doc, "rehearsal": {**doc["rehearsal"], "datasets": [{"name": "sphinks", "shards": 2}]}}
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(RecipeError, match="rehearsal.datasets: 'sphinks'"):
        load_sweep(path, rehearse=True)
    bad = {**doc, "rehearsal": {**doc["rehearsal"], "trian": {}}}
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(RecipeError, match="trian"):
        load_sweep(path)
