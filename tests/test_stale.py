"""Nothing stale: every file a recipe names (inputs, prompts, few-shot files, chat templates, packaged defaults) is part
of its identity. After an edit, a plain rerun in the same output_dir refuses, naming the file (exit 2); a sweep reruns
the jobs that read it and those after them, and nothing else."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import MLIFT

from mlift.cli import main as mlift
from mlift.sweep import expand, load_sweep
from mlift.train.chat import DEFAULT_CHAT_TEMPLATE

REPO = Path(__file__).resolve().parents[1]
PACKAGED = REPO / "mlift"


def _inputs(tmp_path: Path, shared_dir: Path) -> dict[str, Path]:
    """Copies of every file the tiny sweep reads, so a test may edit them."""
    files = {"alpaca": tmp_path / "alpaca.json", "mix": tmp_path / "mix.json", "fewshot": tmp_path / "fewshot.jsonl",
             "prompt": tmp_path / "translate.jinja", "template": tmp_path / "chat.jinja"}
    shutil.copy(shared_dir / "data/alpaca/alpaca_tiny.json", files["alpaca"])
    shutil.copy(shared_dir / "data/alpaca/alpaca_en_demo.json", files["mix"])
    shutil.copy(PACKAGED / "resources/fewshot_translation.jsonl", files["fewshot"])
    shutil.copy(PACKAGED / "prompts/translate_completion.jinja", files["prompt"])
    files["template"].write_text(DEFAULT_CHAT_TEMPLATE)
    return files


def _tiny_sweep(tmp_path: Path, f: dict[str, Path]) -> Path:
    """Two datasets (a translated-Alpaca baseline through the 260K Llama, a weighted mix without LLM), each trained."""
    data = {
        "name": "stale", "output_dir": str(tmp_path / "out"), "seeds": [0],
        "datasets": [
            {"name": "alpaca", "command": "baseline translated-alpaca",
             "recipe": "recipes/baselines/translated_alpaca_stories260k.yaml",
             "set": [f"source.path={f['alpaca']}", "source.limit=2", "target_langs=[fra_Latn]", "num_shards=1",
                     f"translator.fewshot_file={f['fewshot']}", f"translator.prompt={f['prompt']}",
                     "translator.max_new_tokens=4"]},
            {"name": "mix", "command": "mix", "recipe": "recipes/mix/weighted.yaml",
             "set": [f"mixture.sources=[{{source: {{path: {f['mix']}, lang: eng_Latn}}, weight: 1}}]",
                     "mixture.budget=8"]}],
        "train": {"recipe": "recipes/stories260k/lora-sft/config.yaml",
                  "set": [f"model.chat_template={f['template']}", "sft.max_steps=1", "sft.save_steps=1000",
                          "sft.logging_steps=1"]},
        "slurm": {"workdir": str(REPO), "env": {"HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _incomplete(sweep: Path) -> set[str]:
    return {j.name for j in expand(load_sweep(sweep), validate=False) if not j.complete()}


def _edit(path: Path, text: str) -> str:
    before = path.read_text()
    path.write_text(text)
    return before


def test_sweep_edit_makes_stale_exactly_the_jobs_that_read_it(tmp_path, shared_dir, monkeypatch):
    """Every job marked complete; then each edit (input, prompt, few-shot file, chat template, another input) makes
    incomplete exactly the jobs that read the file and those after them; the old content back makes them complete
    again (content, not mtime, is what counts)."""
    monkeypatch.chdir(REPO)
    f = _inputs(tmp_path, shared_dir)
    sweep = _tiny_sweep(tmp_path, f)
    for job in expand(load_sweep(sweep), validate=False):
        for marker in job.markers():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"hash": job.hash}))
    assert _incomplete(sweep) == set()
    alpaca = {"data-alpaca", "train-alpaca-seed0"}
    cases = [("alpaca", json.dumps([{"instruction": "Say hi.", "input": "", "output": "Hi."}] * 3), alpaca),
             ("prompt", "Translate: {{ text }}", alpaca),
             ("fewshot", json.dumps({"eng_Latn": "Yes.", "fra_Latn": "Oui."}) + "\n", alpaca),
             ("template", DEFAULT_CHAT_TEMPLATE.replace("<|assistant|>", "<|bot|>"),
              {"train-alpaca-seed0", "train-mix-seed0"}),
             ("mix", json.dumps([{"instruction": "Count.", "input": "", "output": "1 2 3"}] * 4),
              {"data-mix", "train-mix-seed0"})]
    for name, text, stale in cases:
        before = _edit(f[name], text)
        assert _incomplete(sweep) == stale, name
        f[name].write_text(before)  # the same content again, with a new mtime
        assert _incomplete(sweep) == set(), name


def _translate_recipe(tmp_path: Path, stories260k: Path, f: dict[str, Path]) -> Path:
    recipe = {"output_dir": str(tmp_path / "tr"), "num_shards": 2,
              "input": {"path": str(f["input"]), "lang": "fra_Latn"}, "target_langs": ["eng_Latn"],
              "translator": {"kind": "llm", "mode": "completion", "fewshot": 1, "max_new_tokens": 4,
                             "on_truncated": "keep", "fewshot_file": str(f["fewshot"]), "prompt": str(f["prompt"]),
                             "llm": {"backend": "transformers", "model": str(stories260k)}}}
    path = tmp_path / "translate.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_plain_rerun_refuses_a_changed_file_by_name(tmp_path, shared_dir, stories260k, capsys):
    """The new user's case: translate three lines, replace the input with four new lines, rerun the same command:
    refused (exit 2) naming the input, not "2 resumed" with the old lines. The same for the prompt and the few-shot
    file; the old content back resumes the run."""
    lines = (shared_dir / "data/flores200/devtest/fra_Latn.devtest").read_text(encoding="utf-8").splitlines()
    f = _inputs(tmp_path, shared_dir)
    f["input"] = tmp_path / "in.txt"
    f["input"].write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    recipe = str(_translate_recipe(tmp_path, stories260k, f))
    assert mlift(["translate", recipe, "--no-progress"]) == 0
    capsys.readouterr()
    cases = [("input", "input.path", "\n".join(lines[3:7]) + "\n"),
             ("prompt", "translator.prompt", "Translate: {{ text }}"),
             ("fewshot", "translator.fewshot_file", json.dumps({"eng_Latn": "Yes.", "fra_Latn": "Oui."}) + "\n")]
    for name, key, text in cases:
        before = _edit(f[name], text)
        assert mlift(["translate", recipe, "--no-progress"]) == 2, name
        err = capsys.readouterr().err
        assert f"{key}: {f[name]}" in err and "changed since" in err and "new output_dir" in err, err
        f[name].write_text(before)
        assert mlift(["translate", recipe, "--no-progress"]) == 0, name
        assert "2 resumed" in capsys.readouterr().out


def test_generate_rerun_refuses_a_changed_corpus(tmp_path, shared_dir, stories260k, capsys):
    """`mlift generate`: an edited corpus file (named through a {iso3} pattern) or instruction prompt is refused."""
    corpus = tmp_path / "udhr"
    corpus.mkdir()
    shutil.copy(shared_dir / "data/udhr/fra.txt", corpus / "fra.txt")
    prompt = tmp_path / "instruct.jinja"
    shutil.copy(PACKAGED / "prompts/instruct_completion.jinja", prompt)
    data = yaml.safe_load((REPO / "recipes/generate/udhr_stories260k.yaml").read_text())
    llm = {"backend": "transformers", "model": str(stories260k), "batch_size": 8}
    data.update(output_dir=str(tmp_path / "gen"), languages=["fra_Latn"],
                sources=[{"kind": "text", "path": f"{corpus}/{{iso3}}.txt", "unit": "line", "limit": 4}])
    data["translator"]["llm"] = llm
    data["instruct"].update(llm=llm, prompt=str(prompt), max_new_tokens=4)
    data["translator"]["max_new_tokens"] = 4
    data["select"]["target"] = 2
    data["report"] = {"enabled": False}
    data["fragments"]["langid"] = {"enabled": False}  # not what is tested here: saves loading a detector
    recipe = tmp_path / "generate.yaml"
    recipe.write_text(yaml.safe_dump(data))
    assert mlift(["generate", str(recipe), "--no-progress"]) in (0, 1)  # 1: gibberish may drop everything
    capsys.readouterr()
    for path, key in ((corpus / "fra.txt", "sources.0.path"), (prompt, "instruct.prompt")):
        before = _edit(path, path.read_text() + "\nUne ligne de plus, assez longue pour faire un fragment de texte.\n")
        assert mlift(["generate", str(recipe), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert key in err and str(path) in err and "changed since" in err, err
        path.write_text(before)


@pytest.mark.slow
def test_train_resume_refuses_an_edited_chat_template(tmp_path, stories260k):
    """`mlift train --resume` after the chat template file changed: refused, naming model.chat_template."""
    template = tmp_path / "chat.jinja"
    template.write_text(DEFAULT_CHAT_TEMPLATE)

    def train() -> subprocess.CompletedProcess:
        sets = [f"output_dir={tmp_path / 'run'}", "sft.max_steps=1", "sft.save_steps=1", "sft.logging_steps=1",
                f"model.chat_template={template}"]
        return subprocess.run([*MLIFT, "train", "recipes/stories260k/lora-sft/config.yaml",
                               *sum((["--set", s] for s in sets), []), "--no-progress", "--resume"],
                              cwd=REPO, capture_output=True, text=True, timeout=600)

    assert train().returncode == 0
    template.write_text(DEFAULT_CHAT_TEMPLATE.replace("<|assistant|>", "<|bot|>"))
    again = train()
    assert again.returncode == 2, again.stderr[-2000:]
    assert f"model.chat_template: {template}" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.slow
def test_sweep_reruns_what_an_edited_prompt_feeds_and_nothing_else(tmp_path, shared_dir):
    """The tiny sweep run for real (--local: the 260K Llama translates, the mix needs no LLM, 1 LoRA step each), then
    the translator's prompt edited: the next run reruns that dataset and its training, moves their old work to
    <dir>.stale-<time>, and skips the mix arm."""
    from mlift.sweep import run_local, write_scripts

    f = _inputs(tmp_path, shared_dir)
    sweep = _tiny_sweep(tmp_path, f)

    def run() -> list[str]:
        recipe = load_sweep(sweep)
        jobs = expand(recipe, validate=False)
        lines: list[str] = []
        assert run_local(recipe, jobs, write_scripts(recipe, jobs), echo=lines.append), lines
        return lines

    first = run()
    assert sum(x.startswith("ok") for x in first) == 4, first
    f["prompt"].write_text("Translate into {{ tgt_name }}: {{ text }}\n")
    second = run()
    assert {x.split()[1].rstrip(":") for x in second if x.startswith("stale")} == {"data-alpaca", "train-alpaca-seed0"}
    assert {x.split()[1] for x in second if x.startswith("ok")} == {"data-alpaca", "train-alpaca-seed0"}, second
    assert "skip   data-mix (complete)" in second and "skip   train-mix-seed0 (complete)" in second
    assert len(list((tmp_path / "out" / "data").glob("alpaca.stale-*"))) == 1
